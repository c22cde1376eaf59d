"""Registration in 中登网 over HTTP: the financier records it (strict number and date at the edge, on chain
once), a second financier of a registered receivable is refused with a 409, the filing's fields (JSON and CSV),
and the regulator's report of what is still unregistered after the grace period (its own chain: it moves the
clock)."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.api.conftest import WAIT, Api
from tests.api.test_receivables_api import cast, due_in, ok, problem
from tests.api.test_warehouse_api import fund_with_cash, issue

YUAN = 100
DAY = 86_400
NUMBER = "04539487000452458806"


def _today(api: Api, days: int = 0) -> str:
    return (datetime.fromtimestamp(api.now(), UTC).date() + timedelta(days=days)).isoformat()


def _eventually(read: Any, check: Any, seconds: float = 20.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = read()
        if check(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.25)


def test_registration_is_recorded_by_the_financier_filed_and_reported(api: Api) -> None:
    p = cast(api)
    http = api.http
    regulator = api.onboard("Registration regulator", "regulator")
    bank = api.onboard("Registration Bank", "financier")
    ok(
        http.post(
            "/deposits",
            json={"participant": bank.id, "amount": 5_000_000 * YUAN, "bank_reference": "opening bank"},
            headers=p["agent"].waiting(),
        )
    )
    invoice_number = f"{int(time.time() * 1000):020d}"
    body = {
        "buyer": p["automaker"].id,
        "amount": 1_000_000 * YUAN,
        "currency": "CNY",
        "invoice_number": invoice_number,
        "due_date": due_in(90, api),
    }
    invoice_id = ok(http.post("/invoices", json=body, headers=p["seatmaker"].waiting()))["result"]["invoice_id"]
    piece = ok(http.post(f"/invoices/{invoice_id}/confirm", headers=p["automaker"].waiting()))["result"]["piece_id"]

    def finance(financier: Any, amount: int) -> tuple[int, Any]:
        asking = {
            "piece_id": piece,
            "amount": amount,
            "financier": financier.id,
            "max_discount_rate_bps": 600,
            "max_fee": 0,
        }
        rid = ok(http.post("/financing-requests", json=asking, headers=p["seatmaker"].waiting()))["result"][
            "request_id"
        ]
        terms = {"discount_rate_bps": 500, "fee": 0}
        ok(http.post(f"/financing-requests/{rid}/approve", json=terms, headers=financier.waiting()))
        return rid, http.post(f"/financing-requests/{rid}/fund", headers=financier.waiting())

    request_id, funded = finance(p["factor"], 400_000 * YUAN)
    ok(funded)

    # The filing: what the factor types into 中登网, before it registered.
    path = f"/financing-requests/{request_id}/registration-filing"
    filing = _eventually(lambda: http.get(path, headers=p["factor"].headers), lambda r: r.status_code == 200).json()
    assert filing["registration_type"] == "应收账款转让（保理）"
    assert (filing["secured_party"], filing["secured_party_name"]) == (p["factor"].id, "Northeast Factoring")
    assert (filing["grantor"], filing["grantor_name"], filing["obligor"]) == (
        p["seatmaker"].id,
        "Changchun Seats",
        p["automaker"].id,
    )
    assert filing["invoice_number"] == invoice_number and invoice_number in filing["collateral"]
    assert filing["collateral_amount"] == 400_000 * YUAN and 0 < filing["secured_amount"] < 400_000 * YUAN
    assert filing["period_months"] in (3, 4) and filing["registration_number"] is None
    as_csv = http.get(path, params={"format": "csv"}, headers=p["seatmaker"].headers)
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    [row] = list(csv.DictReader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    assert row["registration_type"] == "应收账款转让（保理）" and row["collateral_amount"] == str(400_000 * YUAN)
    problem(http.get(path, headers=bank.headers), 404)  # not its request

    # The edge: 20 ASCII digits and a date not after today; only the request's financier.
    record = f"/financing-requests/{request_id}/registration"
    for wrong in ("0453948700045245880", "045394870004524588061", "04539487000452458８06", 4539487000452458806):
        problem(
            http.post(record, json={"number": wrong, "registered_on": _today(api)}, headers=p["factor"].waiting()), 422
        )
    future = {"number": NUMBER, "registered_on": _today(api, 2)}
    problem(http.post(record, json=future, headers=p["factor"].waiting()), 422)
    problem(http.post(record, json={"number": NUMBER, "registered_on": _today(api)}, headers=bank.waiting()), 404)
    problem(
        http.post(record, json={"number": NUMBER, "registered_on": _today(api)}, headers=p["seatmaker"].waiting()),
        403,
    )
    done = ok(http.post(record, json={"number": NUMBER, "registered_on": _today(api)}, headers=p["factor"].waiting()))
    assert "FinancingRegistered" in {e["name"] for e in done["result"]["events"]}
    again = problem(
        http.post(record, json={"number": NUMBER, "registered_on": _today(api)}, headers=p["factor"].waiting()), 409
    )
    assert again["error"] == "ReceivablesFinancingAlreadyRegistered"
    filed = _eventually(
        lambda: http.get(path, headers=regulator.headers).json(), lambda f: f["registration_number"] is not None
    )
    assert filed["registration_number"] == NUMBER

    # A second financier of the same receivable (the obligation) is refused while it is outstanding.
    _, second = finance(bank, 300_000 * YUAN)
    refused = problem(second, 409)
    assert refused["error"] == "ReceivablesRegisteredElsewhere"

    # A pledge, funded and left unregistered; the report after the grace period lists it, not the registered one.
    warehouse = api.onboard("Registration Warehouse", "warehouse")
    steel = api.onboard("Registration Steel", "supplier")
    fund_with_cash(api, p["agent"], (steel, 100_000 * YUAN))
    receipt_id = issue(api, warehouse, steel, "REG-LOT-1", 1_000_000 * YUAN)
    terms = {
        "receipt_id": receipt_id,
        "financier": bank.id,
        "principal": 500_000 * YUAN,
        "rate_bps": 600,
        "due_date": _today(api, 60),
    }
    pledge_id = ok(http.post("/pledges", json=terms, headers=steel.waiting()))["result"]["pledge_id"]
    ok(http.post(f"/pledges/{pledge_id}/fund", headers=bank.waiting()))
    pledge_filing = _eventually(
        lambda: http.get(f"/pledges/{pledge_id}/registration-filing", headers=bank.headers),
        lambda r: r.status_code == 200,
    ).json()
    assert pledge_filing["registration_type"] == "动产质押（仓单）" and pledge_filing["lot_number"] == "REG-LOT-1"
    assert (pledge_filing["secured_amount"], pledge_filing["collateral_amount"]) == (500_000 * YUAN, 1_000_000 * YUAN)
    assert "hot-rolled coil Q235B, lot REG-LOT-1" in pledge_filing["collateral"]  # the goods, kept by their keccak

    problem(http.get("/reports/unregistered", headers=bank.headers), 403)
    report = ok(http.get("/reports/unregistered", headers=regulator.headers))
    assert not [i for i in report["items"] if i["id"] in (request_id, pledge_id)]  # within the grace period
    api.travel(31 * DAY)

    def listed() -> dict[str, Any]:
        return ok(http.get("/reports/unregistered", headers=regulator.headers))

    report = _eventually(listed, lambda r: any(i["kind"] == "pledge" and i["id"] == pledge_id for i in r["items"]))
    assert report["grace_days"] == 30
    [item] = [i for i in report["items"] if i["kind"] == "pledge" and i["id"] == pledge_id]
    assert item["days_unregistered"] in (31, 32) and item["financier"] == bank.id and item["grantor"] == steel.id
    assert not [i for i in report["items"] if i["kind"] == "financing" and i["id"] == request_id]
    longer = ok(http.get("/reports/unregistered", params={"grace_days": 40}, headers={**regulator.headers, **WAIT}))
    assert not [i for i in longer["items"] if i["kind"] == "pledge" and i["id"] == pledge_id]
    as_csv = http.get("/reports/unregistered", params={"format": "csv"}, headers=regulator.headers)
    rows = list(csv.DictReader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    assert any(r["kind"] == "pledge" and r["id"] == str(pledge_id) for r in rows)
    assert rows[-1]["kind"].startswith("total:")

    # Registered, it leaves the report.
    pledge_record = {"number": "04539487000452458807", "registered_on": _today(api)}
    ok(http.post(f"/pledges/{pledge_id}/registration", json=pledge_record, headers=bank.waiting()))
    report = _eventually(listed, lambda r: not any(i["kind"] == "pledge" and i["id"] == pledge_id for i in r["items"]))
    assert not any(i["kind"] == "pledge" and i["id"] == pledge_id for i in report["items"])
