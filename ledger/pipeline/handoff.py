"""Several service processes on one database, one pipeline owner: the hand-off of submissions between them.

Only one process may sign for the ledger's senders at a time (two would assign the same nonces). When several
processes share one PostgreSQL database, the one that holds the database's pipeline lease
(:mod:`ledger.pipeline.lease`) runs the pipeline as a single process does: it signs, journals, sends and
follows the chain. The others run it on **standby**: they pre-flight and read like the owner (over their own
JSON-RPC connection), but a submission is written to the ``submission_queue`` table instead of being signed.
The owner takes what is queued every ``poll_interval``, submits it under its own operation id (the journal's
idempotency: an id already journaled is never signed twice) and deletes the row; the standby process answers
its caller once the operation is in the journal, and waits for its outcome there.

Fail-over: when the owner dies, its database session ends and the lease with it; a standby process takes the
lease (:meth:`Handoff.promote`), recovers what the journal holds in flight (as a restarted service does: the
same bytes sent again, nonces read from the node and the journal) and takes over the queue, rows the dead
owner had claimed but perhaps not journaled included. A queued submission is therefore signed once or never:

- the owner *claims* rows (``claimed_by`` = its term) before it submits them and deletes them once journaled;
- a standby caller that gives up waiting withdraws its row only while nobody has claimed it, so an answer of
  "not taken" is never followed by the operation being sent;
- a new owner re-submits rows claimed by an earlier term: an operation that was journaled comes back from the
  journal as it is, one that was not is signed now.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, cast

from eth_account.signers.local import LocalAccount
from sqlalchemy import (
    BigInteger,
    DateTime,
    Engine,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    bindparam,
    delete,
    exists,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.dml import Insert

from ledger.aio import wait_event
from ledger.db import Base, utc_now
from ledger.journal import JournalTransaction
from ledger.notify import JOURNAL, QUEUE, Listener, notify
from ledger.pipeline.exceptions import (
    JournalWriteError,
    NodeUnavailable,
    PipelineError,
    PipelineNotRunning,
    UnknownOperation,
)
from ledger.pipeline.state import PipelineState
from ledger.pipeline.tracked import Operation

if TYPE_CHECKING:
    from ledger.pipeline.tracked import _Tracked

logger = logging.getLogger("ledger.pipeline")

TAKE_AT_ONCE: Final = 1_000
"""Most queued submissions the owner takes in one poll."""
TRANSIENT: Final = (NodeUnavailable, JournalWriteError, PipelineNotRunning)
"""What makes the owner put a queued submission back for its next poll rather than fail it."""
HEARD_POLL: Final = 1.0
"""Seconds between the queue's and the journal's polls while notifications are heard (``poll_interval`` if
longer): a notification lost in a failing connection is caught up by then."""
NAP_FLOOR: Final = 0.05
"""The least time between two looks at the queue or the journal, however many notifications arrive: under load
(a notification every few milliseconds) no more looks than the 50 ms polls made before there were
notifications, each taking what gathered meanwhile; at rest, a notification is acted on at once."""


class QueuedSubmission(Base):
    """A submission made by a standby process, waiting for the pipeline's owner (see the module's docstring)."""

    __tablename__ = "submission_queue"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    operation_id: Mapped[str] = mapped_column(String(100), unique=True)
    sender: Mapped[str] = mapped_column(String(42))
    to_address: Mapped[str | None] = mapped_column(String(42), nullable=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    gas: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    value: Mapped[str] = mapped_column(String(80))
    """Wei, as a decimal string (it may exceed 64 bits)."""
    enqueued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    claimed_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    """The owner's term (a UUID per promotion) that took the row; null while it waits."""
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    """Why the owner could not submit it (the standby caller raises it and deletes the row)."""


_QUEUE: Final = cast(Table, QueuedSubmission.__table__)
_JOURNAL: Final = cast(Table, JournalTransaction.__table__)


_QUEUED_COLUMNS: Final = ("operation_id", "sender", "to_address", "data", "gas", "value", "enqueued_at")


def insert_new_statement(dialect: str) -> Insert:
    """The queue's INSERT of one row (its columns as bound parameters), returning its ``seq``, that does nothing
    when its operation is journaled already (an idempotent retry: nothing to hand over) or queued already (``ON
    CONFLICT DO NOTHING``, PostgreSQL's and SQLite's): one statement and one round trip instead of three."""
    dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    values = select(*(bindparam(name, type_=_QUEUE.c[name].type) for name in _QUEUED_COLUMNS)).where(
        ~exists().where(_JOURNAL.c.operation_id == bindparam("operation_id"))
    )
    return (
        dialect_insert(_QUEUE)
        .from_select(list(_QUEUED_COLUMNS), values)
        .on_conflict_do_nothing(index_elements=[_QUEUE.c.operation_id])
        .returning(_QUEUE.c.seq)  # a row when it was queued (the driver's rowcount of INSERT ... SELECT is -1)
    )


class Handoff(PipelineState):
    """The standby side and the owner's queue consumer (part of :class:`~ledger.pipeline.pipeline.Pipeline`)."""

    _standby: bool
    _term: str
    _waiters: dict[str, list[tuple[bool, asyncio.Future[Operation]]]]
    _queue_engine: Engine
    _insert_new: Insert
    _notifying: bool
    """Whether queue and journal writes are announced (:mod:`ledger.notify`): several processes on PostgreSQL."""
    _listener: Listener | None
    _queue_wake: asyncio.Event
    _journal_wake: asyncio.Event
    handed_off: int
    """How many submissions this process queued for another process (it was on standby then)."""

    if TYPE_CHECKING:

        async def submit(
            self,
            sender: LocalAccount,
            to: str | None,
            data: bytes,
            gas: int | None = None,
            operation_id: str | None = None,
            *,
            value: int = 0,
        ) -> Operation: ...

        async def _connect(self) -> None: ...

        async def _take_over(self) -> None: ...

        def _start_tasks(self) -> None: ...

    @property
    def standby(self) -> bool:
        """Whether this pipeline waits for the lease (submissions queued for the owner) rather than signing."""
        return self._standby

    # -- notifications ------------------------------------------------------------------------------

    def _listen(self) -> None:
        """On PostgreSQL, hear the other processes' queue and journal writes (:mod:`ledger.notify`): the owner
        takes a queued submission, and a standby process finds what it waits for, at once instead of at the
        next poll; both still poll, rarely (:data:`HEARD_POLL`) while the notifications are heard."""
        if not self._notifying or self._listener is not None:
            return
        loop = asyncio.get_running_loop()

        def waking(event: asyncio.Event) -> Callable[[], None]:
            def wake() -> None:
                loop.call_soon_threadsafe(event.set)

            return wake

        # Connected or lost, something may have been missed: look now.
        def on_state(_listening: bool) -> None:
            loop.call_soon_threadsafe(self._queue_wake.set)
            loop.call_soon_threadsafe(self._journal_wake.set)

        self._listener = Listener(
            self._queue_engine.url,
            {QUEUE: waking(self._queue_wake), JOURNAL: waking(self._journal_wake)},
            name="scf pipeline listener",
            on_state=on_state,
        )
        self._listener.start()

    async def _nap(self, wake: asyncio.Event) -> None:
        """Until ``wake`` is set (a notification) or the next poll: ``poll_interval`` without notifications,
        :data:`HEARD_POLL` while they are heard; and at least :data:`NAP_FLOOR` after the last look, so that a
        stream of notifications under load costs no more than a poll every ``NAP_FLOOR``."""
        heard = self._listener is not None and self._listener.listening
        await wait_event(wake, max(self.poll_interval, HEARD_POLL) if heard else self.poll_interval)
        wake.clear()
        await asyncio.sleep(NAP_FLOOR)

    async def _stop_listening(self) -> None:
        if self._listener is not None:
            await asyncio.to_thread(self._listener.stop)
            self._listener = None

    # -- standby ------------------------------------------------------------------------------------

    async def start_standby(self) -> None:
        """Start without signing: pre-flights, calls and reads work; submissions are queued for the owner."""
        if self._running:
            return
        await self._connect()
        self._standby = True
        self._running = True
        self._listen()
        self._tasks = [asyncio.create_task(self._watch_journal(), name="pipeline-standby-watch")]

    async def promote(self) -> None:
        """The lease was taken: become the owner. Recover what the journal holds in flight (what the previous
        owner signed), then sign, send and follow the chain, and take over the queue."""
        if not self._standby:
            return
        await self._take_over()
        self._standby = False
        self._term = str(uuid.uuid4())
        self._start_tasks()
        logger.info("this process owns the pipeline now (term %s)", self._term)

    async def _enqueue(
        self, sender: str, to: str | None, data: bytes, gas: int | None, operation_id: str | None, value: int
    ) -> Operation:
        """Queue a submission for the owner; return once the owner has journaled it (or raise what the owner
        could not get past). Gives up after ``3 × rpc_timeout`` without an owner, withdrawing the row first
        (:class:`NodeUnavailable`): unless an owner had claimed it meanwhile, then it waits on."""
        operation_id = operation_id or str(uuid.uuid4())
        if await self._db(self._insert_queued, operation_id, sender, to, data, gas, value):
            self.handed_off += 1
        give_up = time.monotonic() + 3 * self._rpc_timeout
        while True:
            try:
                return await self._await_journal(operation_id, final=False, until=give_up)
            except TimeoutError:
                if await self._db(self._withdraw, operation_id):
                    raise NodeUnavailable(
                        f"no process took operation {operation_id} within {3 * self._rpc_timeout:g} s (the pipeline's "
                        "owner is down); it was not sent"
                    ) from None
                give_up = time.monotonic() + 3 * self._rpc_timeout  # claimed: it is being journaled

    def _insert_queued(
        self, operation_id: str, sender: str, to: str | None, data: bytes, gas: int | None, value: int
    ) -> bool:
        """Queue the submission unless its operation is journaled already (an idempotent retry: nothing to hand
        over) or queued; whether it was queued now."""
        row = {
            "operation_id": operation_id,
            "sender": sender,
            "to_address": to,
            "data": data,
            "gas": gas,
            "value": str(value),
            "enqueued_at": utc_now(),
        }
        with self._queue_engine.begin() as connection:
            queued = connection.execute(self._insert_new, row).first() is not None
            if queued and self._notifying:
                notify(connection, QUEUE)
        return queued

    def _withdraw(self, operation_id: str) -> bool:
        """Delete the queued row unless an owner claimed it; whether it was deleted."""
        with self._queue_engine.begin() as connection:
            deleted = connection.execute(
                delete(_QUEUE).where(_QUEUE.c.operation_id == operation_id, _QUEUE.c.claimed_by.is_(None))
            ).rowcount
        return bool(deleted)

    async def _await_journal(self, operation_id: str, *, final: bool, until: float | None) -> Operation:
        """The operation once the journal has it (``final``: once it is confirmed, failed or replaced); raises
        ``TimeoutError`` at ``until`` (monotonic) and the owner's error for a submission it refused."""
        future: asyncio.Future[Operation] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(operation_id, []).append((final, future))
        try:
            timeout = None if until is None else max(0.0, until - time.monotonic())
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        finally:
            waiting = self._waiters.get(operation_id, [])
            with contextlib.suppress(ValueError):
                waiting.remove((final, future))
            if not waiting:
                self._waiters.pop(operation_id, None)

    async def _watch_journal(self) -> None:
        """One query per ``poll_interval`` for everything this process waits for: the journal's statuses of the
        awaited operations, the rows of those whose waiters it answers, and the owner's errors on queued ones."""
        while True:
            await self._nap(self._journal_wake)
            if not self._waiters:
                continue
            wanted = list(self._waiters)
            final_only = {i for i in wanted if all(final for final, _ in self._waiters[i])}
            try:
                found, errors = await self._db(self._look_up_awaited, wanted, final_only)
            except Exception as exc:  # the database is away for a moment: the waiters wait on
                logger.warning("reading the journal for %d awaited operations failed: %s", len(wanted), exc)
                continue
            for operation_id in wanted:
                waiting = self._waiters.get(operation_id, [])
                row = found.get(operation_id)
                error = errors.get(operation_id)
                for final, future in list(waiting):
                    if future.done():
                        continue
                    if row is not None and (not final or row.status.is_final):
                        future.set_result(row.snapshot())
                    elif row is None and error is not None:
                        future.set_exception(PipelineError(f"the pipeline's owner refused the submission: {error}"))

    def _look_up_awaited(
        self, operation_ids: list[str], final_only: set[str]
    ) -> tuple[dict[str, _Tracked], dict[str, str]]:
        """The journaled rows of the operations a waiter can be answered with (journaled; final, for those
        in ``final_only``), read in full only for those: most of a poll's operations are still waiting for
        their block; and the owner's errors on the ones not journaled."""
        statuses = self._journal.select_statuses(operation_ids)
        ready = [i for i, status in statuses.items() if status.is_final or i not in final_only]
        found = {t.operation_id: t for t in self._journal.select_operations(ready)} if ready else {}
        missing = [i for i in operation_ids if i not in statuses]
        errors: dict[str, str] = {}
        if missing:
            with self._queue_engine.begin() as connection:
                rows = connection.execute(
                    delete(_QUEUE)
                    .where(_QUEUE.c.operation_id.in_(missing), _QUEUE.c.error.is_not(None))
                    .returning(_QUEUE.c.operation_id, _QUEUE.c.error)
                ).all()
            errors = {str(r[0]): str(r[1]) for r in rows}
        return found, errors

    async def _standby_wait(self, operation_id: str, timeout: float | None) -> Operation:
        until = None if timeout is None else time.monotonic() + timeout
        try:
            return await self._await_journal(operation_id, final=True, until=until)
        except TimeoutError:
            rows = await self._db(self._journal.select_operations, [operation_id])
            if not rows:
                raise UnknownOperation(operation_id) from None
            return rows[0].snapshot()

    # -- the owner's side ---------------------------------------------------------------------------

    async def _queue_consumer(self) -> None:
        """Take what standby processes queued, submit it, delete what was journaled (see the module's
        docstring)."""
        while True:
            await self._nap(self._queue_wake)
            try:
                rows = await self._db(self._claim, self._term)
            except Exception as exc:
                logger.warning("reading the submission queue failed: %s", exc)
                continue
            if rows:
                await self._submit_queued(rows)

    def _claim(self, term: str) -> Sequence[Any]:
        with self._queue_engine.begin() as connection:
            seqs = select(_QUEUE.c.seq).where(
                or_(_QUEUE.c.claimed_by.is_(None), _QUEUE.c.claimed_by != term), _QUEUE.c.error.is_(None)
            )
            return connection.execute(
                update(_QUEUE)
                .where(_QUEUE.c.seq.in_(seqs.order_by(_QUEUE.c.seq).limit(TAKE_AT_ONCE).scalar_subquery()))
                .values(claimed_by=term)
                .returning(*_QUEUE.c)
            ).all()

    async def _submit_queued(self, rows: Sequence[Any]) -> None:
        signer = self._signer
        ordered = sorted(rows, key=lambda r: r.seq)

        async def one(row: Any) -> Operation:
            if signer is None:
                raise PipelineError("this pipeline has no signer for queued submissions")
            account = signer(row.sender)
            return await self.submit(account, row.to_address, row.data, row.gas, row.operation_id, value=int(row.value))

        results = await asyncio.gather(*(one(row) for row in ordered), return_exceptions=True)
        done: list[int] = []
        back: list[int] = []
        failed: list[tuple[int, str]] = []
        for row, result in zip(ordered, results, strict=True):
            if not isinstance(result, BaseException):
                done.append(row.seq)
            elif isinstance(result, TRANSIENT):
                back.append(row.seq)
            else:
                failed.append((row.seq, f"{type(result).__name__}: {result}"[:2000]))
        await self._db(self._settle_queued, done, back, failed)

    def _settle_queued(self, done: list[int], back: list[int], failed: list[tuple[int, str]]) -> None:
        with self._queue_engine.begin() as connection:
            if done:
                connection.execute(delete(_QUEUE).where(_QUEUE.c.seq.in_(done)))
            if back:
                connection.execute(update(_QUEUE).where(_QUEUE.c.seq.in_(back)).values(claimed_by=None))
            for seq, error in failed:
                connection.execute(update(_QUEUE).where(_QUEUE.c.seq == seq).values(error=error))
            if failed and self._notifying:  # the standby caller waits for its error
                notify(connection, JOURNAL)
