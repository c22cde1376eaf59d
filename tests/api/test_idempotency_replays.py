"""Replays over HTTP against a real anvil: 1,000 replays of keyed requests send no transaction (counted on
the chain and in the journal) and each gets the first answer back; 100 concurrent requests with one key send
one transaction; a sign-in challenge is spent by its first use, even when 50 uses race."""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from sqlalchemy import func, or_, select

from api.audit_log import AuditRecord
from api.operations import _claim_new
from api.store import IdempotencyRecord
from ledger.journal import JournalTransaction
from tests.api.conftest import Api, Participant, at_once

YUAN = 100
REPLAYS = 1_000
SOAK_REPLAYS = int(os.environ.get("SCF_SOAK_REPLAYS", "10000"))
# The sign-in tests replay one challenge hundreds of times from one client: no rate limit here (its own tests
# are in test_edge.py).
SETTINGS = {"sign_in_requests_per_minute": 1_000_000}


def ledger_transactions(api: Api) -> int:
    """Transactions the service signed for ledger operations (the audit log's anchors left out)."""
    service = api.service
    anchor = service.client.contracts["anchor"].address
    with service.sessions() as session:
        count = session.scalar(
            select(func.count())
            .select_from(JournalTransaction)
            .where(or_(JournalTransaction.to.is_(None), JournalTransaction.to != anchor))
        )
    return int(count or 0)


def nonces(api: Api, *who: Participant) -> list[int]:
    w3 = api.service.w3
    return [w3.eth.get_transaction_count(p.id, "pending") for p in who]  # type: ignore[arg-type]


def balance(api: Api, who: Participant) -> int:
    return int(api.http.get("/balances/me", headers=who.headers).json()["balance"])


@pytest.fixture(scope="module")
def cast(api: Api) -> dict[str, Participant]:
    return {
        "agent": api.onboard("Replay Settlement Bank", "settlement-agent"),
        "buyer": api.onboard("Replay Automaker", "core-firm"),
        "supplier": api.onboard("Replay Seat Maker", "supplier"),
    }


def test_a_thousand_replays_of_keyed_requests_send_no_transaction(api: Api, cast: dict[str, Participant]) -> None:
    replay_keyed_requests(api, cast, REPLAYS, clients=8)


@pytest.mark.soak
def test_ten_thousand_replays_from_many_clients_send_no_transaction(api: Api, cast: dict[str, Participant]) -> None:
    """`make soak`: SOAK_REPLAYS replays from 32 clients at a time."""
    replay_keyed_requests(api, cast, SOAK_REPLAYS, clients=32)


def replay_keyed_requests(api: Api, cast: dict[str, Participant], replays: int, *, clients: int) -> None:
    """Send four keyed requests once, then replay them ``replays`` times in all from ``clients`` threads: each
    replay gets the first answer, and neither the journal, the senders' nonces nor a balance moves."""
    agent, buyer, supplier = cast["agent"], cast["buyer"], cast["supplier"]
    operator = {**api.operator_headers, "Prefer": "wait=20"}
    due = (datetime.fromtimestamp(api.now(), UTC).date() + timedelta(days=90)).isoformat()
    tag = str(time.time_ns())
    invoice = {"buyer": buyer.id, "amount": 700_000, "invoice_number": f"{int(tag) % 10**20:020d}", "due_date": due}
    deposit = {"participant": supplier.id, "amount": 12_345, "bank_reference": f"replayed wire {tag}"}
    line = {"core_firm": buyer.id, "limit": 5_000_000}

    def keyed(headers: dict[str, str], key: str) -> dict[str, str]:
        return {**headers, "Idempotency-Key": f"{key}-{tag}"}

    requests: list[tuple[str, dict[str, Any] | None, dict[str, str]]] = [
        ("/credit-lines", line, keyed(operator, "line")),
        ("/deposits", deposit, keyed(agent.waiting(), "deposit")),
        ("/invoices", invoice, keyed(supplier.waiting(), "invoice")),
    ]
    first: list[httpx.Response] = []
    for path, body, headers in requests:
        response = api.http.post(path, json=body, headers=headers)
        assert response.status_code == 200 and response.json()["status"] == "confirmed", response.text
        first.append(response)
    invoice_id = first[2].json()["result"]["invoice_id"]
    confirm = (f"/invoices/{invoice_id}/confirm", None, keyed(buyer.waiting(), "confirm"))
    first.append(api.http.post(confirm[0], headers=confirm[2]))
    assert first[-1].status_code == 200 and first[-1].json()["status"] == "confirmed", first[-1].text
    requests.append(confirm)

    transactions, sent = ledger_transactions(api), nonces(api, agent, buyer, supplier)
    cash = balance(api, supplier)
    audited = api.service.audit_log.head().sequence

    def replay(i: int) -> None:
        path, body, headers = requests[i % len(requests)]
        answer = api.http.post(path, json=body, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.headers["Idempotent-Replayed"] == "true"
        assert answer.json() == first[i % len(requests)].json()

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:  # several clients at a time: replays also race each other
        list(pool.map(replay, range(replays)))
    elapsed = time.perf_counter() - started

    time.sleep(4 * api.anvil.block_time)  # a few blocks later: anything sent would be in them
    assert ledger_transactions(api) == transactions
    assert nonces(api, agent, buyer, supplier) == sent
    assert balance(api, supplier) == cash
    with api.service.sessions() as session:
        records = list(session.scalars(select(AuditRecord).where(AuditRecord.sequence > audited)))
    assert len(records) == replays and all(r.replayed and r.status_code == 200 for r in records)
    assert Counter(r.operation_id for r in records) == {a.json()["operation_id"]: replays // 4 for a in first}
    print(f"{replays} replays in {elapsed:.1f} s: 0 transactions sent")


def test_a_hundred_concurrent_requests_with_one_key_send_one_transaction(
    api: Api, cast: dict[str, Participant]
) -> None:
    agent, supplier = cast["agent"], cast["supplier"]
    body = {"participant": supplier.id, "amount": 777, "bank_reference": f"raced wire {time.time_ns()}"}
    headers = agent.waiting(**{"Idempotency-Key": f"raced-{time.time_ns()}"})
    transactions, (sent,) = ledger_transactions(api), nonces(api, agent)
    cash = balance(api, supplier)

    responses = at_once(100, lambda _: api.http.post("/deposits", json=body, headers=headers))
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {200, 409} and statuses[200] >= 1, statuses
    answers = [r for r in responses if r.status_code == 200]
    assert len({r.json()["operation_id"] for r in answers}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") != "true" for r in answers) == 1
    for refused in (r for r in responses if r.status_code == 409):
        assert refused.json()["type"] == "urn:scf:problem:idempotency-in-progress"

    assert ledger_transactions(api) == transactions + 1
    assert nonces(api, agent) == [sent + 1]
    assert balance(api, supplier) == cash + 777


def test_a_key_claimed_for_a_request_cancelled_while_it_waited_for_the_claim_is_free_again(
    api: Api, cast: dict[str, Participant]
) -> None:
    """Keys claimed in one turn of the event loop are inserted together; a request cancelled before its claim
    was made must not leave its key claimed with no answer (every retry would be told it is in progress)."""
    agent, supplier = cast["agent"], cast["supplier"]
    key = f"cancelled-{time.time_ns()}"
    body = {"participant": supplier.id, "amount": 5, "bank_reference": f"cancelled wire {time.time_ns()}"}
    claim = {"participant": agent.id, "key": key, "request_hash": "0" * 64}

    async def cancelled_while_waiting() -> None:
        waiting = asyncio.ensure_future(_claim_new(api.service, claim))
        await asyncio.sleep(0)  # it has asked; its claim is made in the next turn
        waiting.cancel()
        for _ in range(3):
            await asyncio.sleep(0)

    asyncio.run(cancelled_while_waiting())
    with api.service.sessions() as session:
        left = session.scalars(select(IdempotencyRecord).where(IdempotencyRecord.key == key)).all()
    assert left == []
    answer = api.http.post("/deposits", json=body, headers=agent.waiting(**{"Idempotency-Key": key}))
    assert answer.status_code == 200 and answer.json()["status"] == "confirmed", answer.text


def signed_challenge(api: Api, wallet: Any) -> dict[str, str]:
    challenge = api.http.post("/auth/challenge", json={"address": wallet.address})
    assert challenge.status_code == 201, challenge.text
    message = challenge.json()["message"]
    signature = wallet.sign_message(encode_defunct(text=message)).signature.to_0x_hex()
    return {"address": wallet.address, "nonce": challenge.json()["nonce"], "signature": signature}


def test_a_replayed_sign_in_challenge_is_refused_every_time(api: Api) -> None:
    wallet = Account.create()
    api.onboard("Replay Wallet Supplier", "supplier", login_address=wallet.address)
    body = signed_challenge(api, wallet)
    token = api.http.post("/auth/token", json=body)
    assert token.status_code == 200, token.text
    for _ in range(100):
        replay = api.http.post("/auth/token", json=body)
        assert replay.status_code == 401 and "already used" in replay.json()["detail"], replay.text


def test_fifty_concurrent_uses_of_one_challenge_give_one_token(api: Api) -> None:
    wallet = Account.create()
    api.onboard("Racing Wallet Supplier", "supplier", login_address=wallet.address)
    for _ in range(3):
        body = signed_challenge(api, wallet)
        responses = at_once(50, lambda _, body=body: api.http.post("/auth/token", json=body))  # type: ignore[misc]
        statuses = Counter(r.status_code for r in responses)
        assert statuses == {200: 1, 401: 49}, (statuses, [r.text for r in responses if r.status_code >= 500][:1])
