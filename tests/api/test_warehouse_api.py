"""Warehouse receipts and pledge loans over HTTP: the story of a steel coil, enforcement after the due date,
who may do what, and the validation of bodies. Every test onboards its own participants."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from tests.api.conftest import Api, Participant
from tests.stories import receipt_elements

YUAN = 100
DAY = 86_400


def day_after(api: Api, days: int) -> str:
    """The chain's date ``days`` days from now (ISO)."""
    today: date = datetime.fromtimestamp(api.now(), UTC).date()
    return (today + timedelta(days=days)).isoformat()


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == "confirmed", body
    return body["result"]  # type: ignore[no-any-return]


def refused(response: httpx.Response, status: int, error: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    if error is not None:
        assert body.get("error") == error, body
    return body


def event_names(result: dict[str, Any]) -> list[str]:
    return [e["name"] for e in result["events"]]


def eventually(probe: Callable[[], bool], seconds: float = 15.0) -> None:
    """Wait for the index to catch up with the chain (lists read the index)."""
    deadline = time.monotonic() + seconds
    while not probe():
        assert time.monotonic() < deadline, "the index did not catch up"
        time.sleep(0.2)


def ids_in(api: Api, who: Participant, path: str, **params: Any) -> set[str]:
    response = api.http.get(path, headers=who.headers, params={"size": 200, **params})
    assert response.status_code == 200, response.text
    return {str(item["id"]) for item in response.json()["items"]}


def fund_with_cash(api: Api, agent: Participant, *pairs: tuple[Participant, int]) -> None:
    for who, amount in pairs:
        body = {"participant": who.id, "amount": amount, "bank_reference": f"opening {who.id}"}
        ok(api.http.post("/deposits", json=body, headers=agent.waiting()))


def balance(api: Api, who: Participant) -> int:
    response = api.http.get("/balances/me", headers=who.headers)
    assert response.status_code == 200, response.text
    return int(response.json()["balance"])


def issue(api: Api, warehouse: Participant, owner: Participant, lot: str, valuation: int, **extra: Any) -> str:
    body = {
        "owner": owner.id,
        "lot_number": lot,
        "goods_description": f"hot-rolled coil Q235B, lot {lot}",
        "elements": receipt_elements(),
        "quantity": 1_000,
        "unit": "t",
        "valuation": valuation,
        "expiry": day_after(api, 365),
        **extra,
    }
    result = ok(api.http.post("/warehouse-receipts", json=body, headers=warehouse.waiting()))
    return str(result["receipt_id"])


def test_receipt_and_pledge_story(api: Api) -> None:
    agent = api.onboard("Story Settlement Bank", "settlement-agent")
    warehouse = api.onboard("Story Warehouse", "warehouse")
    steel = api.onboard("Story Steel Trading", "supplier")
    bank = api.onboard("Story Bank", "financier")
    factor = api.onboard("Story Factor", "financier")
    fund_with_cash(api, agent, (bank, 10_000_000 * YUAN), (steel, 500_000 * YUAN))

    valuation = 4_000_000 * YUAN
    receipt_id = issue(api, warehouse, steel, "SH-STORY-A", valuation, document_sha256="ab" * 32)
    # The same lot again: the contract refuses, whatever the rest of the body.
    again = api.http.post(
        "/warehouse-receipts",
        json={
            "owner": steel.id,
            "lot_number": "SH-STORY-A",
            "goods_description": "the same coil",
            "elements": receipt_elements(),
            "quantity": 1,
            "unit": "t",
            "valuation": 1,
            "expiry": day_after(api, 30),
        },
        headers=warehouse.waiting(),
    )
    refused(again, 409, "ReceiptLotAlreadyReceipted")

    view = api.http.get(f"/warehouse-receipts/{receipt_id}", headers=steel.headers).json()
    assert view["id"] == receipt_id and view["owner"] == steel.id and view["warehouse"] == warehouse.id
    assert view["state"] == "active" and view["goods_status"] == "sound" and view["unit"] == "t"
    assert view["valuation"] == valuation and view["pledge_id"] is None and view["owed"] is None

    # A pledge loan at the bank's advance limit (70% by default); a penny more is refused.
    limit = valuation * 7_000 // 10_000
    terms = {"receipt_id": receipt_id, "financier": bank.id, "rate_bps": 600, "due_date": day_after(api, 180)}
    refused(
        api.http.post("/pledges", json={**terms, "principal": limit + 1}, headers=steel.waiting()),
        422,
        "PledgeExceedsAdvanceLimit",
    )
    pledge_id = ok(api.http.post("/pledges", json={**terms, "principal": limit}, headers=steel.waiting()))["pledge_id"]
    requested = api.http.get(f"/pledges/{pledge_id}", headers=bank.headers).json()
    assert requested["state"] == "requested" and requested["advance_limit"] == limit
    assert requested["borrower"] == steel.id and requested["receipt_id"] == receipt_id

    # Only the financier asked funds it: another financier cannot even see it, a supplier lacks the role.
    refused(api.http.post(f"/pledges/{pledge_id}/fund", headers=factor.waiting()), 404)
    body = refused(api.http.post(f"/pledges/{pledge_id}/fund", headers=steel.waiting()), 403)
    assert body["type"] == "urn:scf:problem:forbidden-role"
    cash = balance(api, steel)
    funded = ok(api.http.post(f"/pledges/{pledge_id}/fund", headers=bank.waiting()))
    assert funded["principal"] == limit and "PledgeFunded" in event_names(funded)
    assert balance(api, steel) == cash + limit

    # The same goods cannot back a second loan, nor leave the owner, nor leave the warehouse.
    second = {**terms, "financier": factor.id, "principal": 1_000 * YUAN}
    body = refused(api.http.post("/pledges", json=second, headers=steel.waiting()), 409)
    assert body["error"] in ("ReceiptAlreadyPledged", "ReceiptLocked")
    assert body["type"] == f"urn:scf:problem:contract:{body['error']}"
    moved = api.http.post(
        f"/warehouse-receipts/{receipt_id}/transfers", json={"to": factor.id}, headers=steel.waiting()
    )
    refused(moved, 409, "ReceiptLocked")
    refused(api.http.post(f"/warehouse-receipts/{receipt_id}/redeem", headers=steel.waiting()), 409)

    # The financier sees the receipt it lends against, with the loan and what is owed.
    pledged = api.http.get(f"/warehouse-receipts/{receipt_id}", headers=bank.headers).json()
    assert pledged["state"] == "pledged" and pledged["pledge_id"] == pledge_id
    assert pledged["owed"]["principal"] == limit

    # Coil prices fall 20%: the loan is now above the maintenance ratio, a margin call.
    revalue = {"valuation": valuation * 8 // 10, "attestation": "Shanghai coil price list, week 23"}
    refused(api.http.post(f"/warehouse-receipts/{receipt_id}/valuations", json=revalue, headers=steel.waiting()), 403)
    called = ok(
        api.http.post(f"/warehouse-receipts/{receipt_id}/valuations", json=revalue, headers=warehouse.waiting())
    )
    assert "ReceiptRevalued" in event_names(called) and "PledgeMarginCalled" in event_names(called)

    # The lender sees the margin call on its pledge, and so does the borrower; another financier does not.
    def margin_calls(who: Participant, path: str = "/margin-calls") -> list[dict[str, Any]]:
        response = api.http.get(path, headers=who.headers, params={"size": 200})
        assert response.status_code == 200, response.text
        return [call for call in response.json()["items"] if call["pledge_id"] == pledge_id]

    eventually(lambda: bool(margin_calls(bank)))
    [call] = margin_calls(bank, f"/pledges/{pledge_id}/margin-calls")
    assert call["receipt_id"] == receipt_id and (call["borrower"], call["financier"]) == (steel.id, bank.id)
    assert (call["principal"], call["valuation"]) == (limit, revalue["valuation"])
    assert call["maintenance_ratio_bps"] == 8_000 and call["principal"] * 10_000 > call["valuation"] * 8_000
    assert margin_calls(bank) == margin_calls(steel) == margin_calls(steel, f"/pledges/{pledge_id}/margin-calls")
    assert margin_calls(bank) == [call]
    assert margin_calls(factor) == []
    refused(api.http.get(f"/pledges/{pledge_id}/margin-calls", headers=factor.headers), 404)
    inspected = {"status": "sound", "attestation": "inspected on site"}
    status = ok(
        api.http.post(f"/warehouse-receipts/{receipt_id}/goods-status", json=inspected, headers=warehouse.waiting())
    )
    assert "ReceiptGoodsStatusUpdated" in event_names(status)

    # Repay a quarter, then everything owed: the lien is released.
    api.travel(30 * DAY)
    part = ok(api.http.post(f"/pledges/{pledge_id}/repay", json={"amount": limit // 4}, headers=steel.waiting()))
    assert part["amount"] == limit // 4 and 0 < part["principal_outstanding"] < limit
    active = api.http.get(f"/pledges/{pledge_id}", headers=steel.headers).json()
    assert active["state"] == "active" and active["owed"]["principal"] == part["principal_outstanding"]
    cash = balance(api, steel)
    released = ok(api.http.post(f"/pledges/{pledge_id}/repay", json={"amount": None}, headers=steel.waiting()))
    assert "PledgeReleased" in event_names(released)
    assert released["amount"] >= active["owed"]["total"] and balance(api, steel) == cash - released["amount"]
    assert api.http.get(f"/pledges/{pledge_id}", headers=bank.headers).json()["state"] == "released"
    free = api.http.get(f"/warehouse-receipts/{receipt_id}", headers=steel.headers).json()
    assert free["state"] == "active" and free["pledge_id"] is None

    # The goods leave: ask, withdraw, ask again; only the issuing warehouse confirms; the receipt is burnt.
    ok(api.http.post(f"/warehouse-receipts/{receipt_id}/redeem", headers=steel.waiting()))
    ok(api.http.post(f"/warehouse-receipts/{receipt_id}/redemption/withdraw", headers=steel.waiting()))
    ok(api.http.post(f"/warehouse-receipts/{receipt_id}/redeem", headers=steel.waiting()))
    refused(api.http.post(f"/warehouse-receipts/{receipt_id}/redemption/confirm", headers=steel.waiting()), 403)
    redeemed = ok(api.http.post(f"/warehouse-receipts/{receipt_id}/redemption/confirm", headers=warehouse.waiting()))
    assert "ReceiptRedeemed" in event_names(redeemed)
    gone = api.http.get(f"/warehouse-receipts/{receipt_id}", headers=warehouse.headers).json()
    assert gone["state"] == "redeemed" and gone["owner"] is None
    assert api.http.get(f"/warehouse-receipts/{receipt_id}", headers=steel.headers).json()["state"] == "redeemed"

    # The lists, from the index: each sees its own.
    eventually(lambda: receipt_id in ids_in(api, warehouse, "/warehouse-receipts", state="redeemed"))
    assert receipt_id not in ids_in(api, factor, "/warehouse-receipts")
    assert str(pledge_id) in ids_in(api, steel, "/pledges") and str(pledge_id) in ids_in(api, bank, "/pledges")
    assert str(pledge_id) not in ids_in(api, factor, "/pledges")
    assert str(pledge_id) in ids_in(api, bank, "/pledges", state="released")
    assert str(pledge_id) not in ids_in(api, bank, "/pledges", state="active")


def test_enforcement_cancel_and_decline(api: Api) -> None:
    agent = api.onboard("Enforce Settlement Bank", "settlement-agent")
    warehouse = api.onboard("Enforce Warehouse", "warehouse")
    steel = api.onboard("Enforce Steel Trading", "supplier")
    bank = api.onboard("Enforce Bank", "financier")
    factor = api.onboard("Enforce Factor", "financier")
    fund_with_cash(api, agent, (bank, 5_000_000 * YUAN))
    receipt_id = issue(api, warehouse, steel, "SH-ENFORCE-B", 4_000_000 * YUAN)
    terms = {"receipt_id": receipt_id, "principal": 100_000 * YUAN, "rate_bps": 800, "due_date": day_after(api, 3)}

    # One request cancelled by the borrower, one declined by the financier.
    cancelled = ok(api.http.post("/pledges", json={**terms, "financier": factor.id}, headers=steel.waiting()))
    refused(api.http.post(f"/pledges/{cancelled['pledge_id']}/cancel", headers=factor.waiting()), 403)
    ok(api.http.post(f"/pledges/{cancelled['pledge_id']}/cancel", headers=steel.waiting()))
    declined = ok(api.http.post("/pledges", json={**terms, "financier": factor.id}, headers=steel.waiting()))
    # While it is open the financier asked sees the receipt and finds it in its list.
    seen = api.http.get(f"/warehouse-receipts/{receipt_id}", headers=factor.headers).json()
    assert seen["state"] == "pledge_requested" and seen["pledge_id"] == declined["pledge_id"]
    eventually(lambda: receipt_id in ids_in(api, factor, "/warehouse-receipts"))
    ok(api.http.post(f"/pledges/{declined['pledge_id']}/decline", headers=factor.waiting()))
    refused(api.http.post(f"/pledges/{declined['pledge_id']}/decline", headers=factor.waiting()), 409)
    states = {
        p: api.http.get(f"/pledges/{p}", headers=steel.headers).json()["state"]
        for p in (cancelled["pledge_id"], declined["pledge_id"])
    }
    assert states == {cancelled["pledge_id"]: "cancelled", declined["pledge_id"]: "declined"}
    refused(api.http.get(f"/warehouse-receipts/{receipt_id}", headers=factor.headers), 404)

    # A loan left unpaid: not enforceable before its due date, then the receipt goes to the bank.
    loan_id = ok(api.http.post("/pledges", json={**terms, "financier": bank.id}, headers=steel.waiting()))["pledge_id"]
    ok(api.http.post(f"/pledges/{loan_id}/fund", headers=bank.waiting()))
    refused(api.http.post(f"/pledges/{loan_id}/enforce", headers=bank.waiting()), 422, "PledgeNotDue")
    refused(api.http.post(f"/pledges/{loan_id}/enforce", headers=steel.waiting()), 403)
    api.travel(5 * DAY)
    enforced = ok(api.http.post(f"/pledges/{loan_id}/enforce", headers=bank.waiting()))
    assert "PledgeEnforced" in event_names(enforced)
    assert api.http.get(f"/pledges/{loan_id}", headers=steel.headers).json()["state"] == "enforced"
    taken = api.http.get(f"/warehouse-receipts/{receipt_id}", headers=bank.headers).json()
    assert taken["owner"] == bank.id and taken["state"] == "active" and taken["pledge_id"] is None
    refused(api.http.get(f"/warehouse-receipts/{receipt_id}", headers=steel.headers), 404)
    eventually(lambda: receipt_id in ids_in(api, bank, "/warehouse-receipts"))
    eventually(lambda: receipt_id not in ids_in(api, steel, "/warehouse-receipts"))


def test_roles_and_ownership(api: Api) -> None:
    warehouse = api.onboard("Roles Warehouse", "warehouse")
    other_warehouse = api.onboard("Roles Other Warehouse", "warehouse")
    steel = api.onboard("Roles Steel Trading", "supplier")
    outsider = api.onboard("Roles Outsider", "supplier", "financier")
    regulator = api.onboard("Roles Regulator", "regulator")
    body = {
        "owner": steel.id,
        "lot_number": "SH-ROLES-C",
        "goods_description": "copper cathode",
        "elements": receipt_elements(),
        "quantity": 25,
        "unit": "t",
        "valuation": 1_000_000 * YUAN,
        "expiry": day_after(api, 90),
    }
    refused(api.http.post("/warehouse-receipts", json=body, headers=steel.waiting()), 403)
    receipt_id = ok(api.http.post("/warehouse-receipts", json=body, headers=warehouse.waiting()))["receipt_id"]
    receipt_id = str(receipt_id)
    # The same lot number at another warehouse is another lot.
    other_id = str(ok(api.http.post("/warehouse-receipts", json=body, headers=other_warehouse.waiting()))["receipt_id"])
    assert other_id != receipt_id

    # Somebody else's receipt: unseen (404) to an outsider, forbidden (403) to a party who may see it.
    refused(api.http.get(f"/warehouse-receipts/{receipt_id}", headers=outsider.headers), 404)
    refused(api.http.post(f"/warehouse-receipts/{receipt_id}/redeem", headers=outsider.waiting()), 404)
    pledge = {"receipt_id": receipt_id, "financier": outsider.id, "principal": 1, "rate_bps": 0}
    pledge["due_date"] = day_after(api, 30)
    refused(api.http.post("/pledges", json=pledge, headers=outsider.waiting()), 404)
    refused(api.http.post("/pledges", json=pledge, headers=warehouse.waiting()), 403)
    refused(api.http.post(f"/warehouse-receipts/{receipt_id}/redeem", headers=warehouse.waiting()), 403)
    revalue = {"valuation": 1, "attestation": "guess"}
    refused(
        api.http.post(f"/warehouse-receipts/{receipt_id}/valuations", json=revalue, headers=other_warehouse.waiting()),
        404,
    )
    refused(api.http.post(f"/warehouse-receipts/{receipt_id}/valuations", json=revalue, headers=steel.waiting()), 403)
    # No redemption was asked for: the contract refuses the warehouse's confirmation.
    refused(api.http.post(f"/warehouse-receipts/{receipt_id}/redemption/confirm", headers=warehouse.waiting()), 409)
    # A regulator reads everything but moves nothing.
    assert api.http.get(f"/warehouse-receipts/{receipt_id}", headers=regulator.headers).status_code == 200
    refused(api.http.post(f"/warehouse-receipts/{receipt_id}/redeem", headers=regulator.waiting()), 403)

    pledge_id = ok(api.http.post("/pledges", json=pledge, headers=steel.waiting()))["pledge_id"]
    refused(api.http.get(f"/pledges/{pledge_id}", headers=warehouse.headers), 404)
    refused(api.http.post(f"/pledges/{pledge_id}/fund", headers=warehouse.waiting()), 403)  # not a financier
    refused(api.http.post(f"/pledges/{pledge_id}/repay", json={}, headers=outsider.waiting()), 403)  # the lender

    # Unknown objects.
    refused(api.http.get("/warehouse-receipts/12345", headers=regulator.headers), 404)
    refused(api.http.get("/pledges/987654321", headers=regulator.headers), 404)
    refused(api.http.post("/pledges/987654321/fund", headers=outsider.waiting()), 404)

    # Lists: a warehouse sees what it issued, an owner what it owns, the regulator everything.
    eventually(lambda: str(pledge_id) in ids_in(api, regulator, "/pledges"))
    assert {receipt_id, other_id} <= ids_in(api, steel, "/warehouse-receipts")
    assert receipt_id in ids_in(api, warehouse, "/warehouse-receipts") - ids_in(
        api, other_warehouse, "/warehouse-receipts"
    )
    assert {receipt_id, other_id} <= ids_in(api, regulator, "/warehouse-receipts")
    assert receipt_id in ids_in(api, outsider, "/warehouse-receipts")  # a financier asked for a loan against it
    assert str(pledge_id) not in ids_in(api, warehouse, "/pledges")
    refused(api.http.get("/warehouse-receipts", headers=steel.headers, params={"state": "lost"}), 422)


def test_validation(api: Api) -> None:
    warehouse = api.onboard("Validation Warehouse", "warehouse")
    steel = api.onboard("Validation Steel Trading", "supplier")
    good = {
        "owner": steel.id,
        "lot_number": "SH-VALID-D",
        "goods_description": "aluminium ingots",
        "elements": receipt_elements(),
        "quantity": 10,
        "unit": "t",
        "valuation": 100 * YUAN,
        "expiry": day_after(api, 60),
    }
    for bad in (
        {"valuation": -1},
        {"valuation": 0},
        {"valuation": 2**96},
        {"quantity": 0},
        {"unit": "kilograms"},
        {"unit": ""},
        {"unit": "吨"},
        {"owner": "0x1234"},
        {"owner": "not an address"},
        {"expiry": "tomorrow"},
        {"document_sha256": "00"},
        {"goods_description": ""},
    ):
        refused(api.http.post("/warehouse-receipts", json={**good, **bad}, headers=warehouse.waiting()), 422)
    missing = {k: v for k, v in good.items() if k != "valuation"}
    refused(api.http.post("/warehouse-receipts", json=missing, headers=warehouse.waiting()), 422)
    body = refused(
        api.http.post("/warehouse-receipts", json={**good, "lot_number": "bad lot!"}, headers=warehouse.waiting()), 422
    )
    assert "lot number" in body["detail"]
    # An expiry the chain has passed is the contract's refusal.
    past = {**good, "expiry": day_after(api, -2)}
    refused(api.http.post("/warehouse-receipts", json=past, headers=warehouse.waiting()), 422, "ReceiptInvalidExpiry")

    receipt_id = ok(api.http.post("/warehouse-receipts", json=good, headers=warehouse.waiting()))["receipt_id"]
    status = {"status": "melted", "attestation": "x"}
    refused(
        api.http.post(f"/warehouse-receipts/{receipt_id}/goods-status", json=status, headers=warehouse.waiting()), 422
    )
    pledge = {"receipt_id": receipt_id, "financier": warehouse.id, "principal": 10, "rate_bps": 100}
    pledge["due_date"] = day_after(api, 30)
    for bad in (
        {"principal": -5},
        {"rate_bps": 10_001},
        {"financier": "0xZZ"},
        {"receipt_id": 0},
        {"due_date": "next week"},
    ):
        refused(api.http.post("/pledges", json={**pledge, **bad}, headers=steel.waiting()), 422)
    refused(api.http.post("/pledges/1/repay", json={"amount": 0}, headers=steel.waiting()), 422)
    refused(api.http.post("/pledges/1/repay", json={"amount": -3}, headers=steel.waiting()), 422)
    refused(api.http.get("/warehouse-receipts/not-a-number", headers=steel.headers), 422)
