"""Read-your-writes: a client told "confirmed" sees the operation in its very next read of a list, and a capped
``Prefer: wait`` says so."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from tests.api.conftest import WAIT, Api

YUAN = 100


def test_a_confirmed_operation_is_in_the_next_list_read(api: Api) -> None:
    core = api.onboard("FAW Automotive (reads)", "core-firm")
    seller = api.onboard("Changchun Seats (reads)", "supplier")
    credit = {"core_firm": core.id, "limit": 100_000_000 * YUAN}
    assert api.http.post("/credit-lines", json=credit, headers={**api.operator_headers, **WAIT}).status_code == 200
    due = (datetime.fromtimestamp(api.now(), UTC).date() + timedelta(days=60)).isoformat()
    base = int(time.time() * 1000) % 10**12
    for round_ in range(8):
        body = {
            "buyer": core.id,
            "amount": (1_000 + round_) * YUAN,
            "invoice_number": f"26{base:012d}{round_:06d}",
            "due_date": due,
        }
        registered = api.http.post("/invoices", json=body, headers=seller.waiting())
        assert registered.status_code == 200 and registered.json()["status"] == "confirmed", registered.text
        invoice_id = registered.json()["result"]["invoice_id"]
        listed = api.http.get("/invoices", params={"size": 5, "total": "false"}, headers=seller.headers).json()
        assert invoice_id in [i["id"] for i in listed["items"]], (round_, invoice_id, listed)

        confirmed = api.http.post(f"/invoices/{invoice_id}/confirm", headers=core.waiting())
        assert confirmed.status_code == 200, confirmed.text
        piece_id = confirmed.json()["result"]["piece_id"]
        pieces = api.http.get("/receivables", params={"size": 50, "total": "false"}, headers=seller.headers).json()
        assert piece_id in [p["id"] for p in pieces["items"]], (round_, piece_id, pieces)
        # the operation read back later says the same
        operation = api.http.get(f"/operations/{confirmed.json()['operation_id']}", headers=core.headers).json()
        assert operation["status"] == "confirmed"


def test_a_capped_prefer_wait_says_what_was_applied(api: Api) -> None:
    agent = api.onboard("Settlement bank (prefer)", "settlement-agent")
    holder = api.onboard("Foam maker (prefer)", "supplier")
    body = {"participant": holder.id, "amount": 1, "bank_reference": f"prefer {time.time_ns()}"}
    answer = api.http.post("/deposits", json=body, headers={**agent.headers, "Prefer": "wait=999"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["Preference-Applied"] == f"wait={api.settings.max_wait_seconds:g}"
    operation = api.http.get(
        f"/operations/{answer.json()['operation_id']}", headers={**agent.headers, "Prefer": "wait=5"}
    )
    assert operation.headers["Preference-Applied"] == "wait=5"
    without = api.http.get(f"/operations/{answer.json()['operation_id']}", headers=agent.headers)
    assert "Preference-Applied" not in without.headers
