"""The pipeline's hand-off between processes sharing one PostgreSQL database (``ledger.pipeline.handoff``), each
rule on its own: two pipelines in this process stand for two service processes (one the lease's holder, one on
standby), on a real anvil and a fresh schema of the local PostgreSQL (skipped, saying why, where none answers).

Each submission is a 1-wei transfer from an anvil dev account, so the node's nonce of that account shows
whether anything was sent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from ledger.compiler import compile_contracts
from ledger.db import make_engine, make_sessionmaker
from ledger.errors import ErrorDecoder
from ledger.journal import JournalTransaction, TransactionStatus
from ledger.migrations import upgrade
from ledger.node import dev_key
from ledger.pipeline import NodeUnavailable, Pipeline, PipelineError
from ledger.pipeline.handoff import QueuedSubmission
from ledger.tooling.chain import Anvil
from tests.api.conftest import NO_POSTGRES, postgres_answers, postgres_schema

SENDER: LocalAccount = Account.from_key(dev_key(5))
STRANGER: LocalAccount = Account.create()  # no process holds its key
TO = Account.from_key(dev_key(6)).address


@pytest.fixture
def database() -> Iterator[tuple[str, sessionmaker[Session]]]:
    if not postgres_answers():
        pytest.skip(NO_POSTGRES)
    with postgres_schema("scf_handoff") as url:
        upgrade(url)
        engine = make_engine(url)
        yield url, make_sessionmaker(engine)
        engine.dispose()


def pipeline(anvil: Anvil, sessions: sessionmaker[Session], **options: Any) -> Pipeline:
    decoder = ErrorDecoder(a.abi for a in compile_contracts().values())
    keys = {SENDER.address: SENDER}

    def signer(address: str) -> LocalAccount:
        return keys[address]

    return Pipeline(anvil.rpc_url, anvil.chain_id, sessions, decoder, signer=signer, handoff=True, **options)


def journaled(sessions: sessionmaker[Session], operation_id: str) -> list[JournalTransaction]:
    with sessions() as session:
        return list(session.scalars(select(JournalTransaction).where(JournalTransaction.operation_id == operation_id)))


def queued(sessions: sessionmaker[Session]) -> list[QueuedSubmission]:
    with sessions() as session:
        return list(session.scalars(select(QueuedSubmission)))


def sent_count(anvil: Anvil) -> int:
    from ledger.node import connect

    return int(connect(anvil.rpc_url, anvil.chain_id).eth.get_transaction_count(SENDER.address, "pending"))


def run(coroutine: Callable[[], Any]) -> Any:
    return asyncio.run(coroutine())


def test_a_standby_submission_is_signed_once_by_the_owner_and_answered_from_the_journal(
    anvil: Anvil, database: tuple[str, sessionmaker[Session]]
) -> None:
    _, sessions = database

    async def scenario() -> None:
        owner, standby = pipeline(anvil, sessions), pipeline(anvil, sessions)
        await owner.start()
        await standby.start_standby()
        try:
            operation = await standby.submit(SENDER, TO, b"", 21_000, "handoff-1", value=1)
            assert operation.tx_hash.startswith("0x") and operation.sender == SENDER.address
            final = await standby.wait("handoff-1", 20)
            assert final.status == TransactionStatus.CONFIRMED
            again = await standby.submit(SENDER, TO, b"", 21_000, "handoff-1", value=1)
            assert again.tx_hash == operation.tx_hash, "the same operation id is the same transaction"
            assert standby.handed_off == 1, "a journaled operation is answered from the journal, not queued again"
            # Its outcome's logs (a receipt: the standby followed no block) without a second journal look-up when
            # the caller has the final transaction; without it, one.
            looked_up: list[list[str]] = []
            journal = standby._journal
            select_operations = journal.select_operations

            def counted(operation_ids: list[str]) -> list[Any]:
                looked_up.append(operation_ids)
                return select_operations(operation_ids)

            journal.select_operations = counted  # type: ignore[method-assign]
            assert await standby.logs_of("handoff-1", final.tx_hash) == []  # a plain value transfer logs nothing
            assert looked_up == []
            assert await standby.logs_of("handoff-1") == [] and looked_up == [["handoff-1"]]
        finally:
            await standby.stop()
            await owner.stop()

    before = sent_count(anvil)
    run(scenario)
    assert len(journaled(sessions, "handoff-1")) == 1
    assert sent_count(anvil) == before + 1, "signed and sent once"
    assert queued(sessions) == []


def test_a_submission_no_owner_takes_is_withdrawn_before_the_caller_hears_and_never_sent(
    anvil: Anvil, database: tuple[str, sessionmaker[Session]]
) -> None:
    _, sessions = database

    async def scenario() -> None:
        standby = pipeline(anvil, sessions, rpc_timeout=0.3)
        await standby.start_standby()
        try:
            started = time.monotonic()
            with pytest.raises(NodeUnavailable, match="not sent"):
                await standby.submit(SENDER, TO, b"", 21_000, "orphan-1", value=1)
            assert time.monotonic() - started < 5
        finally:
            await standby.stop()
        owner = pipeline(anvil, sessions)
        await owner.start()  # an owner comes later: there is nothing left for it to send
        await asyncio.sleep(0.5)
        await owner.stop()

    before = sent_count(anvil)
    run(scenario)
    assert queued(sessions) == []
    assert journaled(sessions, "orphan-1") == []
    assert sent_count(anvil) == before


def test_notified_the_owner_takes_a_queued_submission_and_the_standby_finds_it_journaled_without_their_polls(
    anvil: Anvil, database: tuple[str, sessionmaker[Session]]
) -> None:
    """Both polls every 30 s: the owner's of the queue and the standby's of the journal. A standby submission
    answered within a few seconds was taken, and found journaled, on the notifications (``ledger.notify``); and
    a refusal reaches its caller the same way."""
    _, sessions = database

    async def scenario() -> None:
        owner, standby = pipeline(anvil, sessions, poll_interval=30.0), pipeline(anvil, sessions, poll_interval=30.0)
        await owner.start()
        await standby.start_standby()
        try:
            for process in (owner, standby):
                listener = process._listener
                assert listener is not None
                deadline = time.monotonic() + 10
                while not listener.listening and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                assert listener.listening
            started = time.monotonic()
            operation = await standby.submit(SENDER, TO, b"", 21_000, "notified-1", value=1)
            assert operation.tx_hash.startswith("0x")
            with pytest.raises(PipelineError, match=STRANGER.address):
                await standby.submit(STRANGER, TO, b"", 21_000, "notified-2", value=1)
            assert time.monotonic() - started < 5.0
        finally:
            await standby.stop()
            await owner.stop()

    run(scenario)
    assert len(journaled(sessions, "notified-1")) == 1
    assert queued(sessions) == []


def test_what_the_owner_cannot_sign_is_refused_to_the_standby_caller_with_the_reason(
    anvil: Anvil, database: tuple[str, sessionmaker[Session]]
) -> None:
    _, sessions = database

    async def scenario() -> None:
        owner, standby = pipeline(anvil, sessions), pipeline(anvil, sessions)
        await owner.start()
        await standby.start_standby()
        try:
            with pytest.raises(PipelineError, match=STRANGER.address):
                await standby.submit(STRANGER, TO, b"", 21_000, "stranger-1", value=1)
        finally:
            await standby.stop()
            await owner.stop()

    run(scenario)
    assert queued(sessions) == [], "the refused row is gone once its caller heard"
    assert journaled(sessions, "stranger-1") == []


def test_a_new_owner_takes_over_rows_a_dead_owner_claimed_and_signs_each_once(
    anvil: Anvil, database: tuple[str, sessionmaker[Session]]
) -> None:
    """Rows claimed by an owner that died before (or after) journaling them: the next owner submits them; one
    already journaled comes back from the journal, not signed again."""
    _, sessions = database

    async def scenario() -> None:
        first = pipeline(anvil, sessions)
        await first.start()
        journaled_first = await first.submit(SENDER, TO, b"", 21_000, "claimed-journaled", value=1)
        await first.wait("claimed-journaled", 20)
        await first.stop()
        with sessions() as session, session.begin():
            for operation_id in ("claimed-journaled", "claimed-unjournaled"):
                session.execute(
                    insert(QueuedSubmission).values(
                        operation_id=operation_id,
                        sender=SENDER.address,
                        to_address=TO,
                        data=b"",
                        gas=21_000,
                        value="1",
                        claimed_by="00000000-0000-0000-0000-00000000dead",
                    )
                )
        successor = pipeline(anvil, sessions)
        await successor.start_standby()
        await successor.promote()
        try:
            deadline = time.monotonic() + 20
            while queued(sessions) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            final = await successor.wait("claimed-unjournaled", 20)
            assert final.status == TransactionStatus.CONFIRMED
            assert successor.status("claimed-journaled").tx_hash == journaled_first.tx_hash
        finally:
            await successor.stop()

    before = sent_count(anvil)
    run(scenario)
    assert queued(sessions) == []
    assert len(journaled(sessions, "claimed-journaled")) == 1
    assert len(journaled(sessions, "claimed-unjournaled")) == 1
    assert sent_count(anvil) == before + 2, "two operations, two transactions"
