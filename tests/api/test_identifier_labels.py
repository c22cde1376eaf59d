"""The chain keeps an invoice's number and a lot's number only as a keyed hash (nobody reading the chain can tell
them); the gateway that was given them keeps what each hash stands for (``identifier_labels``), and its lists
show the numbers: ``invoice_number`` on ``GET /invoices``, ``lot_number`` and ``goods_description`` on ``GET
/warehouse-receipts``. A hash the gateway holds no label for (an invoice or receipt issued through another
gateway) lists with null; the goods' description is kept by its keccak, the receipt's ``goods_hash`` on chain, so
a refused request with other goods cannot change what a receipt shows."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import delete, select

from api.store import IdentifierLabelRecord
from tests.api.conftest import Api, Participant
from tests.api.test_warehouse_api import day_after, eventually, fund_with_cash, ok
from tests.stories import receipt_elements

YUAN = 100


def listed(api: Api, who: Participant, path: str) -> dict[str, dict[str, Any]]:
    response = api.http.get(path, headers=who.headers, params={"size": 200})
    assert response.status_code == 200, response.text
    return {str(item["id"]): item for item in response.json()["items"]}


def register(api: Api, seller: Participant, buyer: Participant, number: str) -> str:
    body = {"buyer": buyer.id, "amount": 1_000 * YUAN, "invoice_number": number, "due_date": day_after(api, 60)}
    return str(ok(api.http.post("/invoices", json=body, headers=seller.waiting()))["invoice_id"])


def forget(api: Api, key_hash: str) -> None:
    """As if the act had come through another gateway: this one keeps nothing for the hash."""
    with api.service.sessions() as session:
        session.execute(delete(IdentifierLabelRecord).where(IdentifierLabelRecord.key_hash == key_hash.lower()))
        session.commit()


def test_invoice_lists_show_the_number_this_gateway_registered_and_null_for_one_it_was_not_given(api: Api) -> None:
    seller = api.onboard("Labels Seat Systems", "supplier")
    buyer = api.onboard("Labels Motors", "core-firm")
    stamp = int(time.time() * 1000)
    first, second = f"{stamp:020d}", f"{stamp + 1:020d}"
    first_id, second_id = register(api, seller, buyer, first), register(api, seller, buyer, second)

    eventually(lambda: {first_id, second_id} <= listed(api, seller, "/invoices").keys())
    for who in (seller, buyer):
        invoices = listed(api, who, "/invoices")
        assert invoices[first_id]["invoice_number"] == first
        assert invoices[second_id]["invoice_number"] == second
    forget(api, listed(api, seller, "/invoices")[second_id]["key_hash"])
    invoices = listed(api, buyer, "/invoices")
    assert invoices[first_id]["invoice_number"] == first and invoices[second_id]["invoice_number"] is None


def test_receipt_lists_show_the_canonical_lot_number_and_the_goods_the_chain_holds_the_hash_of(api: Api) -> None:
    agent = api.onboard("Labels Settlement Bank", "settlement-agent")
    warehouse = api.onboard("Labels Warehouse", "warehouse")
    owner = api.onboard("Labels Steel", "supplier")
    fund_with_cash(api, agent, (owner, 1_000 * YUAN))
    goods = "hot-rolled coil Q235B, 1,000 t"
    body = {
        "owner": owner.id,
        "lot_number": "sh-labels-a",  # letters are case-insensitive: the key, and the label, use upper case
        "goods_description": goods,
        "elements": receipt_elements(),
        "quantity": 1_000,
        "unit": "t",
        "valuation": 4_000_000 * YUAN,
        "expiry": day_after(api, 365),
    }
    receipt_id = str(ok(api.http.post("/warehouse-receipts", json=body, headers=warehouse.waiting()))["receipt_id"])
    # The same lot asked again with other goods: refused on chain, and what the chain holds is still the first.
    again = api.http.post(
        "/warehouse-receipts", json={**body, "goods_description": "another coil"}, headers=warehouse.waiting()
    )
    assert again.status_code == 409, again.text

    eventually(lambda: receipt_id in listed(api, warehouse, "/warehouse-receipts"))
    for who in (warehouse, owner):
        receipt = listed(api, who, "/warehouse-receipts")[receipt_id]
        assert receipt["lot_number"] == "SH-LABELS-A"
        assert receipt["goods_description"] == goods  # not "another coil": its keccak is not the goods_hash
    forget(api, receipt["goods_hash"])
    receipt = listed(api, owner, "/warehouse-receipts")[receipt_id]
    assert receipt["lot_number"] == "SH-LABELS-A" and receipt["goods_description"] is None
    forget(api, receipt["lot_key_hash"])
    receipt = listed(api, owner, "/warehouse-receipts")[receipt_id]
    assert receipt["lot_number"] is None and receipt["goods_description"] is None


def test_the_labels_are_kept_by_the_identity_hash_the_chain_holds(api: Api) -> None:
    seller = api.onboard("Labels Hash Seats", "supplier")
    buyer = api.onboard("Labels Hash Motors", "core-firm")
    number = f"{int(time.time() * 1000) + 7:020d}"
    invoice_id = register(api, seller, buyer, number)
    with api.service.sessions() as session:
        [record] = session.scalars(select(IdentifierLabelRecord).where(IdentifierLabelRecord.label == number))
    assert record.kind == "invoice" and record.description is None
    # The hash it is kept by is the one the contract knows the invoice by.
    assert api.service.client.invoice_id_of_key(bytes.fromhex(record.key_hash[2:])) == int(invoice_id)
