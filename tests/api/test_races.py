"""Races over HTTP against a real anvil: 100 concurrent attempts at the same thing, released together by a
barrier. Exactly one succeeds; every other gets a clean 409 with the contract's error (never a 5xx, never a
second success); and the chain, read afterwards, holds exactly one invoice, one financing, one lien."""

from __future__ import annotations

import os
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from ledger.models import PledgeState, ReceiptState, RequestState
from tests.api.conftest import Api, Participant, at_once
from tests.stories import receipt_elements

YUAN = 100
ATTEMPTS = 100
SOAK_ROUNDS = int(os.environ.get("SCF_SOAK_ROUNDS", "10"))
SOAK_ATTEMPTS = int(os.environ.get("SCF_SOAK_ATTEMPTS", "200"))
RACE_WAIT = {"Prefer": "wait=90"}
"""How long each attempt waits for its answer: the losers that passed their pre-flight together revert on chain
and are each traced for the contract's error, which on a loaded machine takes longer than the suite's usual 20 s
(this module proves outcomes, not latency)."""


def one_winner(responses: list[httpx.Response], *errors: str) -> dict[str, Any]:
    """Exactly one 200 with a confirmed operation; every other answer a 409 problem naming one of ``errors``."""
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 1, 409: len(responses) - 1}, (
        statuses,
        [r.text for r in responses if r.status_code >= 500],
    )
    for response in responses:
        if response.status_code == 409:
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["error"] in errors, response.text
    (winner,) = [r.json() for r in responses if r.status_code == 200]
    assert winner["status"] == "confirmed", winner
    return winner["result"]  # type: ignore[no-any-return]


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return response.json()["result"]  # type: ignore[no-any-return]


def events_since(api: Api, contract: str, event: str, block: int) -> list[dict[str, Any]]:
    handle = getattr(api.service.client.contracts[contract].events, event)
    return [dict(e["args"]) for e in handle.get_logs(from_block=block)]


def balance(api: Api, who: Participant) -> int:
    return int(api.http.get("/balances/me", headers=who.headers).json()["balance"])


def chain_date(api: Api, days: int) -> str:
    return (datetime.fromtimestamp(api.now(), UTC).date() + timedelta(days=days)).isoformat()


@pytest.fixture(scope="module")
def cast(api: Api) -> dict[str, Participant]:
    people = {
        "agent": api.onboard("Race Settlement Bank", "settlement-agent"),
        "buyer": api.onboard("Race Automaker", "core-firm"),
        "supplier": api.onboard("Race Seat Maker", "supplier"),
        "factor": api.onboard("Race Factor", "financier"),
        "warehouse": api.onboard("Race Warehouse", "warehouse"),
        "steel": api.onboard("Race Steel Trader", "supplier"),
        "bank": api.onboard("Race Bank", "financier"),
    }
    for name in ("factor", "bank"):
        body = {"participant": people[name].id, "amount": 50_000_000 * YUAN, "bank_reference": f"opening {name}"}
        ok(api.http.post("/deposits", json=body, headers=people["agent"].waiting(**RACE_WAIT)))
    line = {"core_firm": people["buyer"].id, "limit": 100_000_000 * YUAN}
    ok(api.http.post("/credit-lines", json=line, headers={**api.operator_headers, "Prefer": "wait=20"}))
    return people


def invoice_body(api: Api, buyer: Participant, number: str) -> dict[str, Any]:
    return {
        "buyer": buyer.id,
        "amount": 1_000_000 * YUAN,
        "currency": "CNY",
        "invoice_number": number,
        "due_date": chain_date(api, 90),
    }


def test_a_hundred_registrations_of_one_invoice_register_it_once(api: Api, cast: dict[str, Participant]) -> None:
    race_to_register_one_invoice(api, cast, ATTEMPTS)


def test_a_hundred_attempts_to_finance_one_piece_open_one_request_and_fund_it_once(
    api: Api, cast: dict[str, Participant]
) -> None:
    race_to_finance_one_piece(api, cast, ATTEMPTS)


def test_a_hundred_pledges_of_one_receipt_open_one_lien_and_fund_it_once(
    api: Api, cast: dict[str, Participant]
) -> None:
    race_to_pledge_one_receipt(api, cast, ATTEMPTS)


@pytest.mark.soak
def test_races_hold_round_after_round(api: Api, cast: dict[str, Participant]) -> None:
    """`make soak`: SOAK_ROUNDS rounds of each race with SOAK_ATTEMPTS attempts."""
    for _ in range(SOAK_ROUNDS):
        race_to_register_one_invoice(api, cast, SOAK_ATTEMPTS)
        race_to_finance_one_piece(api, cast, SOAK_ATTEMPTS)
        race_to_pledge_one_receipt(api, cast, SOAK_ATTEMPTS)


def race_to_register_one_invoice(api: Api, cast: dict[str, Participant], attempts: int) -> None:
    supplier = cast["supplier"]
    body = invoice_body(api, cast["buyer"], f"{time.time_ns() % 10**20:020d}")
    block = api.service.w3.eth.block_number
    responses = at_once(
        attempts, lambda _: api.http.post("/invoices", json=body, headers=supplier.waiting(**RACE_WAIT))
    )
    winner = one_winner(responses, "ReceivablesInvoiceAlreadyRegistered")

    registered = events_since(api, "receivables", "InvoiceRegistered", block)
    assert [e["invoiceId"] for e in registered if e["seller"] == supplier.id] == [winner["invoice_id"]]
    invoice = api.service.client.invoice(winner["invoice_id"])
    assert (invoice.seller, invoice.buyer, invoice.amount) == (supplier.id, cast["buyer"].id, body["amount"])


def race_to_finance_one_piece(api: Api, cast: dict[str, Participant], attempts: int) -> None:
    supplier, buyer, factor = cast["supplier"], cast["buyer"], cast["factor"]
    body = invoice_body(api, buyer, f"{time.time_ns() % 10**20:020d}")
    invoice_id = ok(api.http.post("/invoices", json=body, headers=supplier.waiting(**RACE_WAIT)))["invoice_id"]
    piece_id = ok(api.http.post(f"/invoices/{invoice_id}/confirm", headers=buyer.waiting(**RACE_WAIT)))["piece_id"]
    client = api.service.client

    block = client.w3.eth.block_number
    ask = {
        "piece_id": piece_id,
        "amount": body["amount"],
        "financier": factor.id,
        "max_discount_rate_bps": 600,
        "max_fee": 500 * YUAN,
    }
    responses = at_once(
        attempts, lambda _: api.http.post("/financing-requests", json=ask, headers=supplier.waiting(**RACE_WAIT))
    )
    request_id = one_winner(responses, "ReceivablesPieceLocked")["request_id"]
    requested = events_since(api, "receivables", "FinancingRequested", block)
    assert [e["requestId"] for e in requested if e["pieceId"] == piece_id] == [request_id]

    terms = {"discount_rate_bps": 600, "fee": 500 * YUAN}
    assert api.http.post(
        f"/financing-requests/{request_id}/approve", json=terms, headers=factor.waiting(**RACE_WAIT)
    ).is_success
    cash = (balance(api, supplier), balance(api, factor))
    block = client.w3.eth.block_number
    responses = at_once(
        attempts, lambda _: api.http.post(f"/financing-requests/{request_id}/fund", headers=factor.waiting(**RACE_WAIT))
    )
    funded = one_winner(responses, "ReceivablesRequestInvalidTransition")
    assert [e["requestId"] for e in events_since(api, "receivables", "FinancingFunded", block)] == [request_id]
    assert client.financing_request(request_id).state is RequestState.FUNDED
    assert client.piece(funded["piece_id"]).owner == factor.id
    price = funded["price"]
    assert (balance(api, supplier), balance(api, factor)) == (cash[0] + price, cash[1] - price)


def race_to_pledge_one_receipt(api: Api, cast: dict[str, Participant], attempts: int) -> None:
    warehouse, steel, bank = cast["warehouse"], cast["steel"], cast["bank"]
    lot = {
        "owner": steel.id,
        "lot_number": f"RACE-{time.time_ns()}",
        "goods_description": "hot-rolled coil Q235B, 1,000 t",
        "elements": receipt_elements(),
        "quantity": 1_000,
        "unit": "t",
        "valuation": 4_000_000 * YUAN,
        "expiry": chain_date(api, 365),
    }
    receipt_id = ok(api.http.post("/warehouse-receipts", json=lot, headers=warehouse.waiting(**RACE_WAIT)))[
        "receipt_id"
    ]
    client = api.service.client

    block = client.w3.eth.block_number
    terms = {
        "receipt_id": receipt_id,
        "financier": bank.id,
        "principal": 1_000_000 * YUAN,
        "rate_bps": 600,
        "due_date": chain_date(api, 180),
    }
    responses = at_once(attempts, lambda _: api.http.post("/pledges", json=terms, headers=steel.waiting(**RACE_WAIT)))
    pledge_id = one_winner(responses, "ReceiptAlreadyPledged", "ReceiptLocked", "ReceiptInvalidTransition")["pledge_id"]
    requested = events_since(api, "receipts", "PledgeRequested", block)
    on_chain_id = int(receipt_id)  # receipt ids are lot-key hashes: JSON carries them as decimal strings
    assert [e["pledgeId"] for e in requested if e["receiptId"] == on_chain_id] == [pledge_id]
    assert client.pledge_of(on_chain_id) == pledge_id

    cash = balance(api, steel)
    block = client.w3.eth.block_number
    responses = at_once(
        attempts, lambda _: api.http.post(f"/pledges/{pledge_id}/fund", headers=bank.waiting(**RACE_WAIT))
    )
    one_winner(responses, "PledgeInvalidTransition")
    assert [e["pledgeId"] for e in events_since(api, "receipts", "PledgeFunded", block)] == [pledge_id]
    assert client.pledge_loan(pledge_id).state is PledgeState.ACTIVE
    assert client.receipt(on_chain_id).state is ReceiptState.PLEDGED
    assert balance(api, steel) == cash + terms["principal"]
