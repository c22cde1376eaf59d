"""Load over real HTTP: concurrent clients each run financing flows (register an invoice, the core firm confirms
it, the supplier asks to finance the piece, the financier approves and funds it), every request answered
``202`` at once and followed on ``GET /operations/{id}``. Afterwards:

- every accepted request ended exactly once: confirmed, or failed with a reason (a problem ``type``);
- requests accepted = events on chain = rows of the index, per kind of request;
- no nonce gaps: each sender's journaled nonces are contiguous and the chain has used exactly those.

Fast: 5 clients × 2 flows. ``make soak``: 50 clients × 20 flows (5,000 requests).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from ledger.deployment import bind_contracts
from ledger.index.models import EventRow, FinancingRequestRow, InvoiceRow
from ledger.journal import JournalTransaction, TransactionStatus
from ledger.models import RequestState
from tests.api.served import Served, serve

FINAL = {"confirmed", "failed", "replaced", "dropped"}
AMOUNT = 1_000_000  # fen per invoice
#: request kind → the event its confirmation emits.
EVENTS = {
    "invoice.register": "InvoiceRegistered",
    "invoice.confirm": "InvoiceConfirmed",
    "financing.request": "FinancingRequested",
    "financing.approve": "FinancingApproved",
    "financing.fund": "FinancingFunded",
}


@dataclass
class Ledger:
    """What the clients saw: every accepted operation, and how it ended."""

    accepted: dict[str, str] = field(default_factory=dict)  # operation id → kind
    final: dict[str, dict[str, Any]] = field(default_factory=dict)  # operation id → its final view
    refused: list[tuple[str, int, str]] = field(default_factory=list)  # kind, status, body of a non-202 answer


async def submit(http: httpx.AsyncClient, ledger: Ledger, kind: str, path: str, key: str, body: Any = None) -> Any:
    """POST, expect 202, then follow the operation to its end; return its result (None if it did not confirm)."""
    answer = await http.post(path, json=body, headers={"Authorization": f"Bearer {key}"})
    if answer.status_code != 202:
        ledger.refused.append((kind, answer.status_code, answer.text))
        return None
    operation_id = answer.json()["operation_id"]
    assert operation_id not in ledger.accepted, "an operation id was handed out twice"
    ledger.accepted[operation_id] = kind
    assert answer.headers["location"] == f"/operations/{operation_id}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        view = await http.get(
            f"/operations/{operation_id}", headers={"Authorization": f"Bearer {key}", "Prefer": "wait=20"}
        )
        assert view.status_code in (200, 202), view.text
        data = view.json()
        if data["status"] in FINAL:
            ledger.final[operation_id] = data
            return data["result"] if data["status"] == "confirmed" else None
    raise AssertionError(f"operation {operation_id} ({kind}) did not end in 300 s")


async def financing_flows(served: Served, ledger: Ledger, client: int, flows: int, due: str) -> None:
    supplier = served.keys[f"supplier-{client}"]
    core, financier = served.keys["core"], served.keys["financier"]
    limits = httpx.Limits(max_connections=4)
    async with httpx.AsyncClient(base_url=served.base_url, timeout=120, limits=limits) as http:
        for flow in range(flows):
            invoice = {
                "buyer": served.addresses["core"],
                "amount": AMOUNT + client * 1_000 + flow,
                "currency": "CNY",
                "invoice_number": f"{os.getpid() % 10_000:04d}{client:04d}{flow:06d}{int(time.time()) % 10**6:06d}",
                "due_date": due,
            }
            registered = await submit(http, ledger, "invoice.register", "/invoices", supplier, invoice)
            if registered is None:
                continue
            confirmed = await submit(
                http, ledger, "invoice.confirm", f"/invoices/{registered['invoice_id']}/confirm", core
            )
            if confirmed is None:
                continue
            asked = {
                "piece_id": confirmed["piece_id"],
                "amount": invoice["amount"],
                "financier": served.addresses["financier"],
                "max_discount_rate_bps": 609,  # 600 on a 360-day basis, at its 365-day equivalent (rounded up)
                "max_fee": 100,
            }
            requested = await submit(http, ledger, "financing.request", "/financing-requests", supplier, asked)
            if requested is None:
                continue
            request_id = requested["request_id"]
            terms = {"discount_rate_bps": 600, "fee": 100, "day_count_basis": 360}
            approved = await submit(
                http, ledger, "financing.approve", f"/financing-requests/{request_id}/approve", financier, terms
            )
            if approved is None:
                continue
            await submit(http, ledger, "financing.fund", f"/financing-requests/{request_id}/fund", financier)


def wait_for_index(served: Served, timeout: float = 120) -> int:
    """Until the index holds the chain's head; returns that block."""
    head = int(served.service.w3.eth.block_number)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        indexed = served.service.indexer.indexed_block()
        if indexed is not None and indexed >= head:
            return head
        time.sleep(0.25)
    raise AssertionError(f"the index did not reach block {head}")


def run_load(served: Served, clients: int, flows: int) -> Ledger:
    with httpx.Client(base_url=served.base_url, timeout=120) as http:
        served.onboard(http, "agent", "settlement-agent")
        served.onboard(http, "core", "core-firm")
        served.onboard(http, "financier", "financier")
        for client in range(clients):
            served.onboard(http, f"supplier-{client}", "supplier")
        served.deposit(http, "agent", "financier", AMOUNT * 2 * clients * flows)
        line = {"core_firm": served.addresses["core"], "limit": AMOUNT * 2 * clients * flows}
        assert (
            http.post("/credit-lines", json=line, headers=served.headers("operator", Prefer="wait=30")).status_code
            == 200
        )
        now = int(served.service.w3.eth.get_block("latest")["timestamp"])
    due = (datetime.fromtimestamp(now, UTC).date() + timedelta(days=90)).isoformat()
    ledger = Ledger()

    async def everyone() -> None:
        await asyncio.gather(*(financing_flows(served, ledger, c, flows, due) for c in range(clients)))

    started = time.monotonic()
    asyncio.run(everyone())
    elapsed = time.monotonic() - started
    print(
        f"\n[load] {clients} clients × {flows} flows: {len(ledger.accepted)} requests accepted, "
        f"{sum(1 for v in ledger.final.values() if v['status'] == 'confirmed')} confirmed in {elapsed:.1f} s"
    )
    return ledger


def assert_each_accepted_request_ended_once_and_matches_chain_and_index(served: Served, ledger: Ledger) -> None:
    assert not ledger.refused, f"requests refused under load: {ledger.refused[:5]}"
    assert set(ledger.final) == set(ledger.accepted), "an accepted request never ended"
    endings = Counter(view["status"] for view in ledger.final.values())
    for view in ledger.final.values():
        if view["status"] != "confirmed":
            assert view["error"] and view["error"]["type"].startswith("urn:scf:problem:"), view  # failed with a reason
    # Healthy node, distinct invoices, enough credit and cash: every flow runs to its end.
    assert endings == {"confirmed": len(ledger.accepted)}, endings
    accepted = Counter(ledger.accepted.values())

    # On chain: one event per accepted request of each kind, in the transaction the operation names.
    head = wait_for_index(served)
    service = served.service
    contract = bind_contracts(service.w3, service.deployment, service.artifacts)["receivables"]
    tx_of = {operation_id: view["tx_hash"] for operation_id, view in ledger.final.items()}
    for kind, event in EVENTS.items():
        logs = getattr(contract.events, event)().get_logs(from_block=0, to_block=head)
        assert len(logs) == accepted[kind], (kind, len(logs), accepted[kind])
        mined = Counter("0x" + bytes(log["transactionHash"]).hex().removeprefix("0x") for log in logs)
        ours = [tx_of[o] for o, k in ledger.accepted.items() if k == kind]
        assert all(mined[tx.lower()] == 1 for tx in ours), f"{kind}: not exactly one event per operation"

    # In the index: the raw event log and the projections say the same.
    with service.sessions() as session:
        for kind, event in EVENTS.items():
            rows = session.scalar(select(func.count()).select_from(EventRow).where(EventRow.name == event))
            assert rows == accepted[kind], (kind, rows)
        assert session.scalar(select(func.count()).select_from(InvoiceRow)) == accepted["invoice.register"]
        funded = (
            select(func.count())
            .select_from(FinancingRequestRow)
            .where(FinancingRequestRow.state == RequestState.FUNDED)
        )
        assert session.scalar(funded) == accepted["financing.fund"]

        # No nonce gaps: each sender's journal holds contiguous nonces, all used on chain, none twice.
        journal = session.execute(
            select(JournalTransaction.sender, JournalTransaction.nonce, JournalTransaction.status)
        )
        nonces: dict[str, list[int]] = defaultdict(list)
        for sender, nonce, status in journal:
            assert status is TransactionStatus.CONFIRMED, (sender, nonce, status)
            nonces[sender].append(nonce)
    for sender, used in nonces.items():
        used.sort()
        assert used == list(range(used[0], used[0] + len(used))), f"nonce gap or repeat for {sender}"
        assert service.w3.eth.get_transaction_count(sender) == used[-1] + 1, f"chain and journal differ for {sender}"


@pytest.fixture
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("load")) as running:
        yield running


def test_concurrent_financing_flows_end_exactly_once_and_match_chain_and_index(served: Served) -> None:
    ledger = run_load(served, clients=5, flows=2)
    assert len(ledger.accepted) == 5 * 2 * len(EVENTS)
    assert_each_accepted_request_ended_once_and_matches_chain_and_index(served, ledger)


@pytest.mark.soak
def test_concurrent_financing_flows_end_exactly_once_and_match_chain_and_index_soak(served: Served) -> None:
    ledger = run_load(served, clients=50, flows=20)
    assert len(ledger.accepted) == 50 * 20 * len(EVENTS)
    assert_each_accepted_request_ended_once_and_matches_chain_and_index(served, ledger)
