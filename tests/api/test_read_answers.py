"""Every read route answers as it did before the answers became models (:mod:`api.models`).

One story walks the ledger through the states in which the answers differ (an invoice registered and confirmed,
a piece split, a financing request requested and approved, a receipt free and pledged, a pledge requested and
active, a margin call, a freeze) and reads every ``GET`` route in each. The shape of each answer (its field names
in order, their nesting, and the JSON type of every value: integer, string, boolean, null, object, array) is
compared with ``data/read-answers-before.json``, which the same story recorded on the code before the change
(``SCF_RECORD_READ_ANSWERS=1`` records it again). Values differ from run to run (accounts, ids); shapes do not.

The models of list items mirror the index tables column for column; :func:`test_list_items_mirror_the_index`
keeps them in step.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import WAIT, Api, Participant
from tests.stories import receipt_elements

RECORDED = Path(__file__).parent / "data" / "read-answers-before.json"
YUAN = 100
DAY = 86_400


FREE_FORM = {"args"}
"""Objects whose keys come in the database's order (PostgreSQL's JSONB orders an event's arguments its own way)."""


def shape(value: Any, ordered: bool = True) -> Any:
    """The JSON shape of ``value``: objects keep their keys in order (but :data:`FREE_FORM`), arrays the distinct
    shapes of their items."""
    if isinstance(value, dict):
        fields = [[key, shape(item, key not in FREE_FORM)] for key, item in value.items()]
        return {"object": fields if ordered else sorted(fields)}
    if isinstance(value, list):
        shapes: list[Any] = []
        for item in value:
            if shape(item, ordered) not in shapes:
                shapes.append(shape(item, ordered))
        return {"array": shapes}
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"


def confirmed(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == "confirmed", body
    return body


def eventually(probe: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not probe():
        assert time.monotonic() < deadline, "the index did not catch up"
        time.sleep(0.2)


def day_after(api: Api, days: int) -> str:
    return (datetime.fromtimestamp(api.now(), UTC).date() + timedelta(days=days)).isoformat()


class Reader:
    """Reads answers and keeps their shapes by name."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.shapes: dict[str, Any] = {}

    def read(self, name: str, path: str, who: Participant | dict[str, str], /, **params: Any) -> Any:
        headers = who.headers if isinstance(who, Participant) else who
        response = self.api.http.get(path, headers=headers, params=params)
        assert response.status_code == 200, (name, response.text)
        assert response.headers["content-type"] == "application/json", name
        body = response.json()
        self.shapes[name] = shape(body)
        return body


def story(api: Api) -> dict[str, Any]:
    http, operator = api.http, api.operator_headers
    reader = Reader(api)
    read = reader.read
    agent = api.onboard("Answers Settlement Bank", "settlement-agent")
    core = api.onboard("Answers Automaker", "core-firm")
    seller = api.onboard("Answers Seats", "supplier")
    tier2 = api.onboard("Answers Foam", "supplier")
    factor = api.onboard("Answers Factoring", "financier")
    warehouse = api.onboard("Answers Warehouse", "warehouse")
    regulator = api.onboard("Answers Regulator", "regulator")
    for who, amount in ((core, 5_000_000 * YUAN), (factor, 50_000_000 * YUAN), (seller, 500_000 * YUAN)):
        body = {"participant": who.id, "amount": amount, "bank_reference": f"opening {who.id}"}
        confirmed(http.post("/deposits", json=body, headers=agent.waiting()))
    line = {"core_firm": core.id, "limit": 10_000_000 * YUAN}
    confirmed(http.post("/credit-lines", json=line, headers=operator | WAIT))

    read("participants", "/participants", operator, size=200)
    read("participants.mine", "/participants", seller)
    read("participant", f"/participants/{seller.id}", operator)
    read("credit-line", f"/credit-lines/{core.id}", factor)
    read("balance", "/balances/me", seller)

    invoice = {
        "buyer": core.id,
        "amount": 1_000_000 * YUAN,
        "currency": "CNY",
        "invoice_number": f"{int(time.time() * 1000) % 10**20:020d}",
        "due_date": day_after(api, 90),
    }
    invoice_id = confirmed(http.post("/invoices", json=invoice, headers=seller.waiting()))["result"]["invoice_id"]
    read("invoice.registered", f"/invoices/{invoice_id}", seller)
    piece_id = confirmed(http.post(f"/invoices/{invoice_id}/confirm", headers=core.waiting()))["result"]["piece_id"]
    read("invoice.confirmed", f"/invoices/{invoice_id}", seller)
    read("invoices", "/invoices", seller)
    read("invoices.by-state", "/invoices", operator, state="confirmed", size=200, total="true")
    split = {"to": tier2.id, "amount": 300_000 * YUAN}
    part = confirmed(http.post(f"/receivables/{piece_id}/transfers", json=split, headers=seller.waiting()))
    part_id = part["result"]["piece_id"]
    read("receivable", f"/receivables/{part_id}", tier2)
    read("receivable.root", f"/receivables/{piece_id}", seller)
    read("receivables", "/receivables", tier2)
    first = read("receivables.by-cursor", "/receivables", seller, size=1)
    if first["next"] is not None:
        read("receivables.after", "/receivables", seller, size=1, after=first["next"])

    financing = {
        "piece_id": part_id,
        "amount": 300_000 * YUAN,
        "financier": factor.id,
        "max_discount_rate_bps": 600,
        "max_fee": 500 * YUAN,
    }
    request_id = confirmed(http.post("/financing-requests", json=financing, headers=tier2.waiting()))["result"][
        "request_id"
    ]
    read("financing-request.requested", f"/financing-requests/{request_id}", tier2)
    terms = {"discount_rate_bps": 600, "fee": 500 * YUAN}
    confirmed(http.post(f"/financing-requests/{request_id}/approve", json=terms, headers=factor.waiting()))
    read("financing-request.approved", f"/financing-requests/{request_id}", tier2)
    confirmed(http.post(f"/financing-requests/{request_id}/fund", headers=factor.waiting()))
    read("financing-request.funded", f"/financing-requests/{request_id}", factor)
    read("financing-requests", "/financing-requests", factor)

    valuation = 4_000_000 * YUAN
    lot = {
        "owner": seller.id,
        "lot_number": f"ANSWERS-{time.time_ns()}",
        "goods_description": "hot-rolled coil Q235B",
        "elements": receipt_elements(),
        "quantity": 1_000,
        "unit": "t",
        "valuation": valuation,
        "expiry": day_after(api, 365),
    }
    receipt_id = confirmed(http.post("/warehouse-receipts", json=lot, headers=warehouse.waiting()))["result"][
        "receipt_id"
    ]
    read("receipt.free", f"/warehouse-receipts/{receipt_id}", seller)
    limit = valuation * 7_000 // 10_000
    pledge = {
        "receipt_id": receipt_id,
        "financier": factor.id,
        "rate_bps": 600,
        "due_date": day_after(api, 180),
        "principal": limit,
    }
    pledge_id = confirmed(http.post("/pledges", json=pledge, headers=seller.waiting()))["result"]["pledge_id"]
    read("pledge.requested", f"/pledges/{pledge_id}", factor)
    read("receipt.requested", f"/warehouse-receipts/{receipt_id}", factor)
    confirmed(http.post(f"/pledges/{pledge_id}/fund", headers=factor.waiting()))
    read("pledge.active", f"/pledges/{pledge_id}", seller)
    read("receipt.pledged", f"/warehouse-receipts/{receipt_id}", factor)
    revalue = {"valuation": valuation * 8 // 10, "attestation": "coil prices fell"}
    confirmed(http.post(f"/warehouse-receipts/{receipt_id}/valuations", json=revalue, headers=warehouse.waiting()))
    eventually(lambda: bool(http.get("/margin-calls", headers=factor.headers).json()["items"]))
    read("margin-calls", "/margin-calls", factor)
    read("pledge.margin-calls", f"/pledges/{pledge_id}/margin-calls", seller)
    read("receipts", "/warehouse-receipts", factor)
    read("receipts.by-state", "/warehouse-receipts", operator, state="pledged", size=200)
    read("pledges", "/pledges", seller)

    freeze = {"kind": "piece", "target": str(piece_id), "reason": "an inquiry"}
    confirmed(http.post("/freezes", json=freeze, headers=regulator.waiting()))
    eventually(lambda: bool(http.get("/freezes", headers=regulator.headers, params={"kind": "piece"}).json()["items"]))
    read("freezes", "/freezes", regulator, kind="piece")
    read("audit-events", "/audit/events", regulator, name="InvoiceConfirmed", size=5)
    read("audit-events.all", "/audit/events", regulator, size=200)
    read(
        "large-transactions",
        "/reports/large-transactions",
        regulator,
        single_threshold=100_000 * YUAN,
        daily_threshold=100_000 * YUAN,
        date_from=day_after(api, -1),
        date_to=day_after(api, 1),
    )
    read("large-transactions.defaults", "/reports/large-transactions", operator)
    read("payment-discipline", "/reports/payment-discipline", regulator)
    read("audit-log", "/audit/log", regulator, size=5)
    read("audit-log.verify", "/audit/log/verify", operator)
    last = {"participant": seller.id, "amount": 1, "bank_reference": "last"}
    operation = http.post("/deposits", json=last, headers=agent.waiting())
    read("operation", f"/operations/{confirmed(operation)['operation_id']}", agent)
    eventually(lambda: isinstance(http.get("/health").json().get("lag"), int))
    read("health", "/health", {})
    return reader.shapes


def test_read_answers_keep_their_shapes(api: Api) -> None:
    shapes = story(api)
    if os.environ.get("SCF_RECORD_READ_ANSWERS"):
        RECORDED.write_text(json.dumps(shapes, indent=1) + "\n")
        pytest.skip(f"recorded {len(shapes)} answers in {RECORDED.name}")
    recorded = json.loads(RECORDED.read_text())
    assert sorted(shapes) == sorted(recorded)
    for name, before in recorded.items():
        assert shapes[name] == before, name


def test_metrics_stay_prometheus_text(api: Api) -> None:
    response = api.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    assert "scf_http_requests_total" in response.text


@pytest.mark.parametrize(
    ("item", "table"),
    [
        ("InvoiceItem", "invoices"),
        ("PieceItem", "pieces"),
        ("FinancingRequestItem", "financing_requests"),
        ("ReceiptItem", "warehouse_receipts"),
        ("PledgeItem", "pledges"),
        ("MarginCallItem", "pledge_margin_calls"),
        ("EventItem", "events"),
    ],
)
def test_list_items_mirror_the_index(item: str, table: str) -> None:
    """A list item has the index row's columns, in their order (the lists answer every column), then the fields
    it joins from other rows (a financing request's obligor and due date, from its piece's invoice; an invoice's
    or a receipt's number, from what this gateway was told, ``identifier_labels``)."""
    from api import models
    from ledger.index.models import Base

    columns = [column.key for column in Base.metadata.tables[table].columns]
    assert list(getattr(models, item).model_fields)[: len(columns)] == columns
    assert list(getattr(models, item).model_fields)[len(columns) :] == JOINED.get(item, [])


JOINED = {
    "FinancingRequestItem": ["obligor", "obligor_name", "due_date"],
    "InvoiceItem": ["invoice_number"],
    "ReceiptItem": ["lot_number", "goods_description"],
}
"""The fields a list item adds to its index row's, in order."""
