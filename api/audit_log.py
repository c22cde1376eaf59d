"""The audit log: one hash-chained record per API action, its head anchored on chain.

Every *action* (a request with a method other than GET, HEAD or OPTIONS, and every read of a document) is
written to ``audit_log`` by :class:`AuditLogMiddleware` before its response leaves the service: who (the
authenticated participant, or none), the method, the route (its template, e.g. ``/invoices/{invoice_id}/
confirm``) and path, the ledger operation it started, the SHA-256 of the request body as the service read
it, the status code and the outcome (``ok``, ``accepted``, or the problem's ``type``), whether it was an
idempotent replay, and the request id. Record ``n`` stores the hash of record ``n - 1`` (``prev_hash``; 64
zeros for the first) and its own ``hash``: SHA-256 of a canonical JSON of all its fields, ``prev_hash``
included. Changing, inserting or deleting any record therefore breaks the chain from that record on.

Whoever can write the database could rewrite the whole chain after a change, so the head is anchored on
chain (``contracts/AuditAnchor.sol``): the operator records ``(sequence, hash)`` of the head every
:attr:`~ledger.settings.Settings.audit_anchor_every` records or every
:attr:`~ledger.settings.Settings.audit_anchor_seconds` seconds when the log has grown, whichever comes
first (:class:`AuditAnchorer`, through the transaction pipeline). Anchors only move forward and are never
overwritten. :meth:`AuditLog.verify` recomputes every hash and compares the log with *every* anchor on the
chain: a rewritten anchored prefix, or records deleted below an anchor, are caught; only the records after the
latest anchor rest on the hashes alone.

The request body is hashed as the service reads it, never stored: documents and keys stay out of the log. A
request refused before its body was read (wrong credentials on an upload) has no body hash.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, cast

from sqlalchemy import (
    Boolean,
    Connection,
    DateTime,
    Engine,
    Executable,
    Integer,
    String,
    Table,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.models import AuditAnchorView, AuditHeadView, AuditRecordView, AuditVerificationView
from ledger.client import LedgerClient
from ledger.db import Base, utc_now
from ledger.errors import ContractRevert
from ledger.models import AuditAnchor

logger = logging.getLogger("api.audit")

GENESIS_HASH: Final = "0" * 64
"""The ``prev_hash`` of the first record."""
HASH_DOMAIN: Final = b"scf-ledger audit log v1\n"
"""Prefixed to every record's canonical form before hashing."""
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_PATH: Final = 500
MAX_ROUTE: Final = 200
MAX_OUTCOME: Final = 200
MAX_REQUEST_ID: Final = 100
_PROBLEM_CAPTURE: Final = 64 * 1024
"""A problem body longer than this is not parsed for its type (the outcome is then ``http-<status>``)."""


class AuditRecord(Base):
    """One API action (see the module's docstring). ``ledger/migrations/versions/0004_audit_log.py`` creates it."""

    __tablename__ = "audit_log"

    sequence: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str | None] = mapped_column(String(42), index=True)
    method: Mapped[str] = mapped_column(String(10))
    route: Mapped[str] = mapped_column(String(MAX_ROUTE))
    path: Mapped[str] = mapped_column(String(MAX_PATH))
    operation_id: Mapped[str | None] = mapped_column(String(100))
    body_sha256: Mapped[str | None] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(MAX_OUTCOME))
    replayed: Mapped[bool] = mapped_column(Boolean)
    request_id: Mapped[str | None] = mapped_column(String(MAX_REQUEST_ID))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


_AUDIT_TABLE: Final = cast(Table, AuditRecord.__table__)
_INSERT_RECORD: Final = insert(_AUDIT_TABLE)
_LAST_RECORD: Final = (
    select(_AUDIT_TABLE.c.sequence, _AUDIT_TABLE.c.hash).order_by(_AUDIT_TABLE.c.sequence.desc()).limit(1)
)


# -- records and their hashes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditEntry:
    """What is recorded of one action, before it has a place in the chain."""

    actor: str | None
    method: str
    route: str
    path: str
    operation_id: str | None
    body_sha256: str | None
    status_code: int
    outcome: str
    replayed: bool = False
    request_id: str | None = None


def _text(value: str, limit: int) -> str:
    """``value`` as stored: at most ``limit`` characters, NUL replaced (PostgreSQL refuses it in text)."""
    return value.replace("\x00", "\ufffd")[:limit]


def _timestamp(value: datetime) -> str:
    """UTC to the microsecond (SQLite hands timestamps back without a zone: they were written in UTC)."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record_hash(record: AuditRecord) -> str:
    """The hash of ``record``: SHA-256 of :data:`HASH_DOMAIN` and the canonical JSON of every field but ``hash``."""
    return _row_hash({field: getattr(record, field) for field in _HASHED})


_HASHED: Final = (
    "sequence",
    "recorded_at",
    "actor",
    "method",
    "route",
    "path",
    "operation_id",
    "body_sha256",
    "status_code",
    "outcome",
    "replayed",
    "request_id",
    "prev_hash",
)
"""The fields a record's hash covers, in the order of its canonical form."""


def _row_hash(row: Mapping[str, Any]) -> str:
    """:func:`record_hash` of a record as a row (a mapping of its fields)."""
    canonical = json.dumps(
        [
            row["sequence"],
            _timestamp(row["recorded_at"]),
            row["actor"],
            row["method"],
            row["route"],
            row["path"],
            row["operation_id"],
            row["body_sha256"],
            row["status_code"],
            row["outcome"],
            bool(row["replayed"]),
            row["request_id"],
            row["prev_hash"],
        ],
        separators=(",", ":"),
    )
    return hashlib.sha256(HASH_DOMAIN + canonical.encode("ascii")).hexdigest()


def record_view(record: AuditRecord) -> AuditRecordView:
    return AuditRecordView(
        sequence=record.sequence,
        recorded_at=_timestamp(record.recorded_at),
        actor=record.actor,
        method=record.method,
        route=record.route,
        path=record.path,
        operation_id=record.operation_id,
        body_sha256=record.body_sha256,
        status_code=record.status_code,
        outcome=record.outcome,
        replayed=record.replayed,
        request_id=record.request_id,
        prev_hash=record.prev_hash,
        hash=record.hash,
    )


@dataclass(frozen=True)
class AuditHead:
    sequence: int
    """How many records the log holds (0 when empty)."""
    hash: str
    """The last record's hash (:data:`GENESIS_HASH` when empty)."""


GENESIS: Final = AuditHead(0, GENESIS_HASH)

Write = tuple[Executable, Mapping[str, Any]]
"""A statement and its parameters, executed in the transaction that appends a request's audit record."""


def execute_writes(connection: Connection, writes: Sequence[Write]) -> None:
    """Execute ``writes`` in ``connection``'s transaction, those of one statement together (one executemany: a
    batch's hundred operation records are one statement, not a hundred), statements in the order of their first
    write. Deferred writes never depend on each other (each inserts a request's own new row, or updates the row
    its request claimed), so only their statements' order is kept, not their interleaving."""
    grouped: dict[int, tuple[Executable, list[Mapping[str, Any]]]] = {}
    for statement, parameters in writes:
        grouped.setdefault(id(statement), (statement, []))[1].append(parameters)
    for statement, rows in grouped.values():
        connection.execute(statement, rows[0] if len(rows) == 1 else rows)


DEFERRED_WRITES: Final = "audit_deferred_writes"
"""The request state's :class:`RequestWrites`: the request's own writes (its operation record, its idempotency
answer) that :class:`AuditLogMiddleware` makes in the transaction of its audit record (:mod:`api.operations`)."""


@dataclass
class RequestWrites:
    """A request's own writes, made in the transaction of its audit record, and what to do once committed."""

    writes: list[Write] = field(default_factory=list)
    committed: list[Callable[[], None]] = field(default_factory=list)
    """Called once the writes are committed (e.g. remembering a record that is now in the database)."""

    def add(self, statement: Executable, parameters: Mapping[str, Any], then: Callable[[], None] | None = None) -> None:
        self.writes.append((statement, parameters))
        if then is not None:
            self.committed.append(then)

    def done(self) -> None:
        for then in self.committed:
            then()


@dataclass
class AuditVerification:
    """What :meth:`AuditLog.verify` found. ``valid`` is False from the first broken record or anchor on."""

    valid: bool
    records: int
    """Records checked (all of them when the log is valid, else up to the first broken one)."""
    head: AuditHead
    anchors_checked: int = 0
    latest_anchor: AuditAnchor | None = None
    first_invalid: int | None = None
    """The sequence of the first record that does not verify."""
    reason: str | None = None

    @property
    def unanchored(self) -> int:
        """Records after the latest anchor: they rest on the hash chain alone."""
        return self.head.sequence - (self.latest_anchor.sequence if self.latest_anchor else 0)

    def view(self) -> AuditVerificationView:
        anchor = self.latest_anchor
        return AuditVerificationView(
            valid=self.valid,
            records=self.records,
            head=AuditHeadView(sequence=self.head.sequence, hash=self.head.hash),
            anchors_checked=self.anchors_checked,
            latest_anchor=None
            if anchor is None
            else AuditAnchorView(sequence=anchor.sequence, hash=anchor.head.hex(), block_number=anchor.block_number),
            unanchored_records=self.unanchored,
            first_invalid=self.first_invalid,
            reason=self.reason,
        )


# -- the log --------------------------------------------------------------------------------------------------


_APPEND_LOCK: Final = 0x5CF_A0D17
"""The PostgreSQL advisory-lock key that serialises appends to the log across processes."""


def _lock_the_log(session: Session | Connection) -> None:
    """Take, for the rest of ``session``'s transaction, the lock that lets one process at a time append.

    SQLite has one writer per file: a write statement (here one that changes nothing) takes the file's write lock
    at once, waiting out the busy timeout, before the head is read. PostgreSQL takes a transaction-scoped advisory
    lock; at READ COMMITTED the head read after it sees every append committed before."""
    dialect = session.dialect if isinstance(session, Connection) else session.get_bind().dialect
    if dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _APPEND_LOCK})
    else:
        session.execute(text("UPDATE audit_log SET sequence = sequence WHERE 0 = 1"))


class AuditLog:
    """Appends records to ``audit_log`` (one, or a batch's items together) and verifies the whole chain.

    Each append reads the head and writes the next record in one transaction that first takes the database's
    write lock for the log (PostgreSQL: a transaction-scoped advisory lock; SQLite: the file's write lock), so
    appends from any number of service processes queue one behind another and the chain never forks. The
    primary key on ``sequence`` stays as the last guard."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self._lock = threading.Lock()
        self._head: AuditHead | None = None
        self._waiting: list[tuple[AuditEntry, Sequence[Write], asyncio.Future[None]]] = []

    async def append_together(self, entry: AuditEntry, also: Sequence[Write] = ()) -> None:
        """:meth:`append`, in one transaction with every other request's append asked for in the same turn of
        the event loop (the answers of a block's operations, confirmed together, are written together): one
        lock, head read and commit for all of them instead of one each. Returns once committed; when the
        shared transaction fails, each is written alone, so that one request's failure stays its own (raised
        to it, as :meth:`append` raises)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._waiting.append((entry, also, future))
        if len(self._waiting) == 1:
            loop.call_soon(self._append_waiting)
        await future

    def _append_waiting(self) -> None:
        waiting, self._waiting = self._waiting, []
        if len(waiting) > 1:
            try:
                self.append_all([entry for entry, _, _ in waiting], [w for _, also, _ in waiting for w in also])
            except Exception:
                logger.warning("appending %d audit records together failed; appending each alone", len(waiting))
            else:
                for _, _, future in waiting:
                    if not future.done():
                        future.set_result(None)
                return
        for entry, also, future in waiting:
            try:
                self.append(entry, also)
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
            else:
                if not future.done():
                    future.set_result(None)

    def latest(self) -> AuditHead:
        """The head this process last appended (or the database's, before its first append)."""
        return self._head or self.head()

    def head(self) -> AuditHead:
        """The head as the database has it now."""
        with self.sessions() as session:
            last = session.scalars(select(AuditRecord).order_by(AuditRecord.sequence.desc()).limit(1)).first()
        return GENESIS if last is None else AuditHead(last.sequence, last.hash)

    def append(self, entry: AuditEntry, also: Sequence[Write] = ()) -> AuditHead:
        """Write ``entry`` as the next record and return the new head (Core statements: the ORM's unit of work
        cost more than the statements themselves); ``also``: other writes of the same request, made in the same
        transaction (see :meth:`append_all`)."""
        return self.append_all([entry], also)

    def append_all(self, entries: Sequence[AuditEntry], also: Sequence[Write] = ()) -> AuditHead:
        """Write ``entries`` as the next records, in order and in one transaction (the items of a batch), and
        return the new head. ``also``: other statements (with their parameters) executed in that transaction
        after the records, e.g. the operation record of the request recorded (:mod:`api.operations`): one
        commit for all of a request's records; if one fails, none is written."""
        engine: Engine = self.sessions.kw["bind"]
        with self._lock, engine.begin() as connection:
            _lock_the_log(connection)
            last = connection.execute(_LAST_RECORD).first()
            head = GENESIS if last is None else AuditHead(int(last[0]), str(last[1]))
            rows = []
            for entry in entries:
                row: dict[str, Any] = {
                    "sequence": head.sequence + 1,
                    "recorded_at": utc_now(),
                    "actor": entry.actor,
                    "method": _text(entry.method, 10),
                    "route": _text(entry.route, MAX_ROUTE),
                    "path": _text(entry.path, MAX_PATH),
                    "operation_id": entry.operation_id,
                    "body_sha256": entry.body_sha256,
                    "status_code": entry.status_code,
                    "outcome": _text(entry.outcome, MAX_OUTCOME),
                    "replayed": entry.replayed,
                    "request_id": None if entry.request_id is None else _text(entry.request_id, MAX_REQUEST_ID),
                    "prev_hash": head.hash,
                }
                row["hash"] = _row_hash(row)
                rows.append(row)
                head = AuditHead(row["sequence"], row["hash"])
            if rows:
                connection.execute(_INSERT_RECORD, rows[0] if len(rows) == 1 else rows)
            execute_writes(connection, also)
        self._head = head
        return head

    def page(self, first: int, size: int) -> list[AuditRecord]:
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(AuditRecord).where(AuditRecord.sequence >= first).order_by(AuditRecord.sequence).limit(size)
                ).all()
            )

    def count(self) -> int:
        with self.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(AuditRecord)) or 0)

    def verify(self, anchors: Iterable[AuditAnchor], *, batch: int = 2_000) -> AuditVerification:
        """Recompute every record's hash and link, in order, and compare the log with every anchor in
        ``anchors`` (as read from the chain)."""
        by_sequence: dict[int, AuditAnchor] = {}
        latest: AuditAnchor | None = None
        for anchor in anchors:
            by_sequence[anchor.sequence] = anchor
            if latest is None or anchor.sequence > latest.sequence:
                latest = anchor
        previous = GENESIS
        checked = checked_anchors = 0

        def broken(sequence: int, reason: str) -> AuditVerification:
            return AuditVerification(False, checked, previous, checked_anchors, latest, sequence, reason)

        while True:
            records = self.page(previous.sequence + 1, batch)
            if not records:
                break
            for record in records:
                expected = previous.sequence + 1
                if record.sequence != expected:
                    return broken(expected, f"record {expected} is missing (the next is {record.sequence})")
                if record.prev_hash != previous.hash:
                    return broken(expected, f"record {expected} does not link to record {previous.sequence}")
                if record_hash(record) != record.hash:
                    return broken(expected, f"record {expected} was altered: its content does not match its hash")
                at = by_sequence.get(expected)
                if at is not None:
                    if at.head.hex() != record.hash:
                        return broken(
                            expected,
                            f"record {expected} is not the one anchored on chain in block {at.block_number}: "
                            "the log was rewritten",
                        )
                    checked_anchors += 1
                previous = AuditHead(expected, record.hash)
                checked += 1
        beyond = [a for a in by_sequence.values() if a.sequence > previous.sequence]
        if beyond:
            first = min(a.sequence for a in beyond)
            return broken(
                previous.sequence + 1,
                f"the log ends at record {previous.sequence}, but record {first} was anchored on chain: "
                "records were deleted",
            )
        return AuditVerification(True, checked, previous, checked_anchors, latest)


# -- anchoring ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnchorResult:
    sequence: int
    hash: str
    operation_id: str
    block_number: int | None


@dataclass
class AuditAnchorer:
    """Anchors the log's head on chain (see the module's docstring), one anchor at a time."""

    log: AuditLog
    client: LedgerClient
    operator: str
    every: int
    """Anchor when this many records were appended since the latest anchor (0: never by count)."""
    seconds: float
    """Anchor when the log grew and this long passed since the latest anchor (0: never by time)."""
    timeout: float = 30.0
    poll_interval: float = 0.5
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    _task: asyncio.Task[None] | None = field(default=None, repr=False)
    _last_anchor_at: float = field(default_factory=time.monotonic, repr=False)
    _anchored: int | None = field(default=None, repr=False)
    """The latest anchored sequence as last seen (None: read it from the chain)."""

    def start(self) -> None:
        if self._task is None and (self.every > 0 or self.seconds > 0):
            self._task = asyncio.create_task(self._run(), name="audit-anchorer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _operation_id(self, sequence: int) -> str:
        address = str(self.client.contracts["anchor"].address).lower()
        return f"audit-anchor-{address[2:14]}-{sequence}"

    async def anchor(self) -> AnchorResult | None:
        """Anchor the head now, unless it is anchored already; wait for the block. Raises the contract's
        error if the chain refuses (another process anchored further meanwhile: ``AuditAnchorNotAdvancing``)."""
        async with self._lock:
            self._anchored = None
            head = await asyncio.to_thread(self.log.head)
            anchored, _ = await asyncio.to_thread(self.client.latest_audit_anchor)
            if head.sequence <= anchored:
                self._anchored = anchored
                return None
            operation = await self.client.anchor_audit_log(
                self.operator, head.sequence, bytes.fromhex(head.hash), self._operation_id(head.sequence)
            )
            outcome = await self.client.outcome(operation, timeout=self.timeout)
            self._anchored, self._last_anchor_at = head.sequence, time.monotonic()
            logger.info("audit log anchored at record %s (%s)", head.sequence, head.hash)
            return AnchorResult(head.sequence, head.hash, operation.operation_id, outcome.operation.block_number)

    def due(self, head: int, anchored: int) -> bool:
        grown = head - anchored
        if grown <= 0:
            return False
        if self.every > 0 and grown >= self.every:
            return True
        return self.seconds > 0 and time.monotonic() - self._last_anchor_at >= self.seconds

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                if self._anchored is None:
                    self._anchored, _ = await asyncio.to_thread(self.client.latest_audit_anchor)
                head = await asyncio.to_thread(self.log.latest)
                if self.due(head.sequence, self._anchored or 0):
                    await self.anchor()
            except asyncio.CancelledError:
                raise
            except (ContractRevert, TimeoutError) as exc:
                logger.warning("anchoring the audit log: %s; trying again", exc)
            except Exception:
                logger.exception("anchoring the audit log failed; trying again")


# -- recording every action -----------------------------------------------------------------------------------


def is_action(method: str, path: str) -> bool:
    """Whether a request is recorded: anything but a safe method, and every read of a document."""
    return method not in SAFE_METHODS or (method == "GET" and path.startswith("/documents/"))


def _outcome(status: int, problem: bytes | None) -> str:
    if status >= 400:
        if problem:
            with contextlib.suppress(ValueError, AttributeError):
                kind = json.loads(problem).get("type")
                if isinstance(kind, str) and kind:
                    return kind
        return f"http-{status}"
    return "accepted" if status == 202 else "ok"


class AuditLogMiddleware:
    """ASGI middleware writing one :class:`AuditRecord` per action, before the response leaves.

    The log is found at ``app.state.ledger.audit_log`` (none while the service starts or stops: nothing is
    recorded then, and the service answers 503). The caller is the address :func:`api.auth.current_caller`
    put in ``request.state.caller``; the operation is ``request.state.operation_id`` (set by
    :func:`api.operations.perform`) or the ``Location: /operations/{id}`` of the response (a replay). Installed
    outermost, so it sees the final status and the ``X-Request-ID`` header."""

    def __init__(self, app: ASGIApp, log_of: Callable[[Scope], AuditLog | None]) -> None:
        self.app = app
        self.log_of = log_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_action(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        state: MutableMapping[str, Any] = scope.setdefault("state", {})
        digest = hashlib.sha256()
        body = {"read": False}
        if not _declares_body(scope):
            body["read"] = True  # nothing to read: the hash is that of no bytes

        async def hashing_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                digest.update(message.get("body", b""))
                if not message.get("more_body", False):
                    body["read"] = True
            return message

        held: list[Message] = []
        recorded = {"done": False}
        deferred = RequestWrites()
        started_log = self.log_of(scope)
        if started_log is not None:  # else the service is starting or stopping: nothing is deferred
            state[DEFERRED_WRITES] = deferred

        def entry_of(status: int, headers: Mapping[str, str], problem: bytes | None) -> AuditEntry:
            route = scope.get("route")
            location = headers.get("location", "")
            operation_id = state.get("operation_id") or (
                location.removeprefix("/operations/") if location.startswith("/operations/") else None
            )
            caller = state.get("caller")
            return AuditEntry(
                actor=caller if isinstance(caller, str) else getattr(caller, "address", None),
                method=scope["method"],
                route=str(getattr(route, "path", scope["path"])),
                path=scope["path"],
                operation_id=operation_id,
                body_sha256=digest.hexdigest() if body["read"] else None,
                status_code=status,
                outcome=_outcome(status, problem),
                replayed=headers.get("idempotent-replayed") == "true",
                request_id=headers.get("x-request-id"),
            )

        def begin_record() -> AuditLog | None:
            """Mark the request recorded; the log to record it in (None: write the request's own records alone)."""
            recorded["done"] = True
            state.pop(DEFERRED_WRITES, None)  # anything written after this point is written where it is made
            return self.log_of(scope)

        def record_failed() -> None:
            """The answer still goes out; the failure is loud in the log. The request's own records are not lost
            with the audit record: written alone, as they were before they joined its transaction (a failure
            here fails the request, as it did then)."""
            logger.exception("could not record %s %s in the audit log", scope["method"], scope["path"])
            _write(deferred.writes)

        async def record(status: int, headers: Mapping[str, str], problem: bytes | None) -> None:
            log = begin_record()
            if log is None:
                _write(deferred.writes)
            else:
                try:
                    await log.append_together(entry_of(status, headers, problem), deferred.writes)
                except Exception:
                    record_failed()
            deferred.done()

        def record_now(status: int, headers: Mapping[str, str], problem: bytes | None) -> None:
            """:func:`record` without waiting on the event loop (a request that failed, cancelled maybe)."""
            log = begin_record()
            if log is None:
                _write(deferred.writes)
            else:
                try:
                    log.append(entry_of(status, headers, problem), deferred.writes)
                except Exception:
                    record_failed()
            deferred.done()

        def _write(writes: Sequence[Write]) -> None:
            if not writes:
                return
            assert started_log is not None  # writes are deferred only when there was a log
            engine: Engine = started_log.sessions.kw["bind"]
            with engine.begin() as connection:
                execute_writes(connection, writes)

        async def recording_send(message: Message) -> None:
            if recorded["done"]:
                await send(message)
                return
            if message["type"] == "http.response.start":
                headers = _headers(message)
                if headers.get("content-type", "").startswith("application/problem+json"):
                    held.append(message)  # record once the problem's type is known
                    return
                await record(int(message["status"]), headers, None)
                await send(message)
                return
            if message["type"] == "http.response.body" and held:
                held.append(message)
                if message.get("more_body", False) and sum(len(m.get("body", b"")) for m in held) < _PROBLEM_CAPTURE:
                    return
                start = held[0]
                problem = b"".join(m.get("body", b"") for m in held[1:])
                await record(int(start["status"]), _headers(start), problem)
                for waiting in held:
                    await send(waiting)
                held.clear()
                return
            await send(message)

        try:
            await self.app(scope, hashing_receive, recording_send)
        except BaseException:
            if not recorded["done"]:
                record_now(500, {}, b'{"type": "urn:scf:problem:internal"}')
            raise


def _headers(message: Message) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in message.get("headers", [])}


def _declares_body(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"transfer-encoding":
            return True
        if name == b"content-length":
            return value.strip() not in (b"", b"0")
    return False
