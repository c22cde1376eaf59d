"""The event feed: one row per ledger event in the chain's order, and one more when a reorganisation drops one.

The feed is what integrators read (``GET /events``, the stream, webhooks): a numbered, append-only list of
business events. Its sequence number (``seq``) is the consumer's cursor; it only grows, so a consumer that
remembers the last number it saw never misses a row and never sees one twice.

- ``added``: the index stored the event (:func:`append_added`, called by the indexer in the transaction that
  inserts the events' rows). Rows are appended in block and log order, so the feed follows the chain.
- ``retracted``: a reorganisation took the event off the chain (:func:`append_retracted`, called by the
  indexer in the transaction that deletes the events' rows). The row repeats the dropped event's fields,
  under the same ``event_id``; the event is never silently changed or removed.

Because both happen in the index's own transactions, the feed never disagrees with the ``events`` table: the
live events of the feed (those whose last row is ``added``) are exactly the rows of ``events``. An event
already live in the feed is not appended again (an index rebuilt from the chain reads every event again).

Each row carries its business ``kind`` (``invoice.confirmed``, ``piece.transferred``, …: :func:`kind_of`), the
event's arguments in snake_case (``fields``: amounts as integer fen, ids as integers, addresses checksummed,
``bytes32`` as hex) and the participants who may see it (``parties``, also in ``event_feed_parties`` for the
lists): the addresses among its arguments and, for an event that names an object only by its id, the parties
of that object as the index holds them once the event's page is applied (a piece: its holder and its
invoice's seller and buyer; an invoice or obligation: those and every holder of one of its pieces). The
regulator and the operator see every row.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any, Protocol

from sqlalchemy import JSON, BigInteger, Index, Integer, String, Table, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, Session, mapped_column

from ledger.db import Base
from ledger.index.models import (
    ADDRESS,
    HASH,
    EventRow,
    FinancingRequestRow,
    InvoiceRow,
    PieceRow,
    PledgeRow,
    WarehouseReceiptRow,
)

ADDED = "added"
RETRACTED = "retracted"
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"

_JSON = JSON().with_variant(JSONB(), "postgresql")


class FeedRow(Base):
    """One row of the event feed (see the module's documentation)."""

    __tablename__ = "event_feed"
    __table_args__ = (
        Index("ix_event_feed_event_id", "event_id"),
        Index("ix_event_feed_kind_seq", "kind", "seq"),
    )

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    """The feed's cursor: 1, 2, 3, … in the order rows were appended."""
    event_id: Mapped[str] = mapped_column(String(80))
    """``<block_hash>:<log_index>``: the event's stable id (the same in its ``added`` and ``retracted`` rows)."""
    action: Mapped[str] = mapped_column(String(10))
    block_number: Mapped[int] = mapped_column(BigInteger)
    log_index: Mapped[int] = mapped_column(Integer)
    block_time: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(HASH))
    contract: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(64))
    fields: Mapped[dict[str, Any]] = mapped_column(_JSON)
    parties: Mapped[list[str]] = mapped_column(_JSON)


class FeedPartyRow(Base):
    """Who may see a feed row: one row per participant and feed row, keyed for the list of one participant."""

    __tablename__ = "event_feed_parties"

    party: Mapped[str] = mapped_column(String(ADDRESS), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)


FEED_TABLES: tuple[type[Base], ...] = (FeedRow, FeedPartyRow)

# -- kinds ---------------------------------------------------------------------------------------------------

#: The business nouns an event name may start with (``InvoiceConfirmed`` → ``invoice.confirmed``).
NOUNS = frozenset({"invoice", "piece", "financing", "obligation", "pledge", "participant", "deposit", "receipt"})

#: The kind of the events whose name does not start with their noun.
IRREGULAR_KINDS: Mapping[tuple[str, str], str] = {
    ("token", "Transfer"): "deposit.transferred",
    ("token", "Approval"): "deposit.approved",
    ("receivables", "Transfer"): "piece.transferred",
    ("receivables", "TransferValue"): "piece.value-transferred",
    ("receivables", "ApprovalValue"): "piece.value-approved",
    ("receivables", "Approval"): "piece.approved",
    ("receivables", "ApprovalForAll"): "piece.approved-for-all",
    ("receivables", "SlotChanged"): "piece.slot-changed",
    ("receivables", "CreditLineSet"): "credit-line.set",
    ("receivables", "ParametersUpdated"): "ledger.parameters-updated",
    ("receipts", "Transfer"): "receipt.transferred",
    ("receipts", "Approval"): "receipt.approved",
    ("receipts", "ApprovalForAll"): "receipt.approved-for-all",
    ("receipts", "OracleAppointed"): "receipt.oracle-appointed",
    ("receipts", "AdvanceRateSet"): "financier.advance-rate-set",
    ("receipts", "MaintenanceRatioSet"): "ledger.maintenance-ratio-set",
    ("registry", "RoleGranted"): "participant.role-granted",
    ("registry", "RoleRevoked"): "participant.role-revoked",
    ("registry", "RoleAdminChanged"): "participant.role-admin-changed",
    ("anchor", "AuditLogAnchored"): "audit.anchored",
}

#: The noun of a contract's events that start with none of :data:`NOUNS`.
_CONTRACT_NOUNS: Mapping[str, str] = {
    "registry": "participant",
    "token": "deposit",
    "receivables": "piece",
    "receipts": "receipt",
    "anchor": "audit",
    "acts": "act",
}

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z0-9]+")


def _words(name: str) -> list[str]:
    return [word.lower() for word in _WORD.findall(name)]


@lru_cache(maxsize=1024)
def kind_of(contract: str, name: str) -> str:
    """The business kind of event ``name`` of ``contract``: its noun, a dot, the rest of its name in kebab case
    (``PledgeMarginCalled`` → ``pledge.margin-called``), or the kind :data:`IRREGULAR_KINDS` gives."""
    irregular = IRREGULAR_KINDS.get((contract, name))
    if irregular is not None:
        return irregular
    words = _words(name)
    if len(words) > 1 and words[0] in NOUNS:
        return f"{words[0]}.{'-'.join(words[1:])}"
    return f"{_CONTRACT_NOUNS.get(contract, contract)}.{'-'.join(words)}"


@lru_cache(maxsize=4096)
def snake_case(name: str) -> str:
    """An argument's name in snake case, without the leading underscore of ERC-3525's (``_tokenId`` →
    ``token_id``, ``maintenanceRatioBps`` → ``maintenance_ratio_bps``)."""
    return "_".join(_words(name.lstrip("_")))


# -- rows ----------------------------------------------------------------------------------------------------


class FeedEvent(Protocol):
    """What the feed reads of an event (the indexer's ``ChainEvent`` and ``EventRow`` both have it)."""

    block_number: int
    block_hash: str
    block_timestamp: int
    tx_hash: str
    log_index: int
    contract: str
    name: str
    args: dict[str, Any]


def event_id(block_hash: str, log_index: int) -> str:
    return f"{block_hash}:{log_index}"


def _addresses(args: Mapping[str, Any]) -> set[str]:
    return {
        value
        for value in args.values()
        if isinstance(value, str) and len(value) == 42 and value.startswith("0x") and value != ZERO_ADDRESS
    }


#: Arguments that name an object by id → how to find that object's parties (see :class:`_Parties`).
_PIECE_ARGS = frozenset({"pieceId", "_tokenId", "_fromTokenId", "_toTokenId", "parentId", "tokenId"})
_RECEIPT_ARGS = frozenset({"receiptId", "tokenId"})


class _Parties:
    """The parties of the objects a batch of events names by id, loaded with one ``SELECT … IN`` per table."""

    def __init__(self, session: Session, events: Sequence[FeedEvent]) -> None:
        pieces: set[int] = set()
        slots: set[int] = set()
        obligations: set[int] = set()
        requests: set[int] = set()
        receipts: set[int] = set()
        pledges: set[int] = set()
        for event in events:
            args = event.args
            if event.contract == "receivables":
                pieces.update(int(args[n]) for n in _PIECE_ARGS if n in args and int(args[n]) != 0)
                for name in ("slotId", "invoiceId"):
                    if name in args:
                        slots.add(int(args[name]))
                        obligations.add(int(args[name]))
                if "requestId" in args:
                    requests.add(int(args["requestId"]))
            elif event.contract == "receipts":
                receipts.update(int(args[n]) for n in _RECEIPT_ARGS if n in args and int(args[n]) != 0)
                if "pledgeId" in args:
                    pledges.add(int(args["pledgeId"]))
        self.pieces: dict[int, set[str]] = {}
        self.slots: dict[int, set[str]] = {}
        """An invoice's seller and buyer (who see its pieces, as ``GET /receivables/{id}`` shows them)."""
        self.holders: dict[int, set[str]] = {}
        """Who holds a piece of an invoice (who hear of its obligation: repaid, paid, defaulted)."""
        self.requests: dict[int, set[str]] = {}
        self.receipts: dict[int, set[str]] = {}
        self.pledges: dict[int, set[str]] = {}
        for request_id, holder, financier in _chunked(
            session,
            select(FinancingRequestRow.id, FinancingRequestRow.holder, FinancingRequestRow.financier),
            FinancingRequestRow.id,
            requests,
        ):
            self.requests[request_id] = {holder, financier}
        self.piece_slots: dict[int, int] = {}
        for piece_id, slot_id, owner in _chunked(
            session, select(PieceRow.id, PieceRow.slot_id, PieceRow.owner), PieceRow.id, pieces
        ):
            self.pieces[piece_id] = {owner} if owner else set()
            self.piece_slots[piece_id] = slot_id
            slots.add(slot_id)
        for invoice_id, seller, buyer in _chunked(
            session, select(InvoiceRow.id, InvoiceRow.seller, InvoiceRow.buyer), InvoiceRow.id, slots
        ):
            self.slots[invoice_id] = {seller, buyer}
        query = select(PieceRow.slot_id, PieceRow.owner)
        for slot_id, owner in _chunked(session, query, PieceRow.slot_id, obligations):
            if owner:
                self.holders.setdefault(slot_id, set()).add(owner)
        for receipt_id, warehouse, owner in _chunked(
            session,
            select(WarehouseReceiptRow.id, WarehouseReceiptRow.warehouse, WarehouseReceiptRow.owner),
            WarehouseReceiptRow.id,
            receipts,
        ):
            self.receipts[receipt_id] = {warehouse} | ({owner} if owner else set())
        for pledge_id, borrower, financier in _chunked(
            session, select(PledgeRow.id, PledgeRow.borrower, PledgeRow.financier), PledgeRow.id, pledges
        ):
            self.pledges[pledge_id] = {borrower, financier}

    def of(self, event: FeedEvent) -> list[str]:
        args = event.args
        found = _addresses(args)
        if event.contract == "receivables":
            for name in _PIECE_ARGS:
                if name in args:
                    piece = int(args[name])
                    found |= self.pieces.get(piece, set())
                    if piece in self.piece_slots:
                        found |= self.slots.get(self.piece_slots[piece], set())
            for name in ("slotId", "invoiceId"):
                if name in args:
                    found |= self.slots.get(int(args[name]), set()) | self.holders.get(int(args[name]), set())
            if "requestId" in args:
                found |= self.requests.get(int(args["requestId"]), set())
        elif event.contract == "receipts":
            for name in _RECEIPT_ARGS:
                if name in args:
                    found |= self.receipts.get(int(args[name]), set())
            if "pledgeId" in args:
                found |= self.pledges.get(int(args["pledgeId"]), set())
        return sorted(found - {ZERO_ADDRESS})


def _chunked(session: Session, query: Any, column: Any, keys: Iterable[int]) -> Iterable[Any]:
    wanted = sorted(set(keys))
    for start in range(0, len(wanted), 500):
        yield from session.execute(query.where(column.in_(wanted[start : start + 500])))


def _fields(args: Mapping[str, Any]) -> dict[str, Any]:
    return {snake_case(name): value for name, value in args.items()}


def _live(session: Session, ids: Sequence[str]) -> set[str]:
    """Which of ``ids`` are live in the feed: their last row is ``added``."""
    last: dict[str, str] = {}
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        query = select(FeedRow.event_id, FeedRow.action).where(FeedRow.event_id.in_(chunk)).order_by(FeedRow.seq)
        for identifier, action in session.execute(query):
            last[identifier] = action
    return {identifier for identifier, action in last.items() if action == ADDED}


def _insert(session: Session, rows: list[dict[str, Any]]) -> None:
    """Append ``rows`` in order, numbered from the last sequence number on, and their parties (one
    ``executemany`` each). The indexer is the feed's only writer (its checkpoint check stops a second one), so
    numbers are handed out in commit order: a reader never sees a number appear below one it has seen."""
    if not rows:
        return
    seq = int(session.scalar(select(func.max(FeedRow.seq))) or 0)
    parties: list[tuple[str, int]] = []
    for row in rows:
        seq += 1
        row["seq"] = seq
        parties.extend((party, seq) for party in row["parties"])
    session.execute(_table(FeedRow).insert(), rows)
    if parties:
        # About three of these a feed row: plain pairs straight to the driver (SQLAlchemy's per-row parameter
        # processing would cost more than the database's work), on PostgreSQL as one statement of two arrays.
        connection = session.connection()
        table = FeedPartyRow.__tablename__
        if connection.dialect.name == "postgresql":
            statement = f"INSERT INTO {table} (party, seq) SELECT * FROM unnest(%s::varchar[], %s::bigint[])"
            connection.exec_driver_sql(statement, ([p for p, _ in parties], [s for _, s in parties]))
        else:
            mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
            connection.exec_driver_sql(f"INSERT INTO {table} (party, seq) VALUES ({mark}, {mark})", parties)


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def append_added(session: Session, events: Sequence[FeedEvent]) -> int:
    """Append an ``added`` row for each of ``events`` (in chain order) that is not live in the feed already.
    Call it in the transaction that stores the events, after the projections are written. Returns how many
    rows were appended."""
    if not events:
        return 0
    ordered = sorted(events, key=lambda e: (e.block_number, e.log_index))
    live = _live(session, [event_id(e.block_hash, e.log_index) for e in ordered])
    fresh = [e for e in ordered if event_id(e.block_hash, e.log_index) not in live]
    if not fresh:
        return 0
    parties = _Parties(session, fresh)
    _insert(
        session,
        [
            {
                "event_id": event_id(e.block_hash, e.log_index),
                "action": ADDED,
                "block_number": e.block_number,
                "log_index": e.log_index,
                "block_time": e.block_timestamp,
                "tx_hash": e.tx_hash,
                "contract": e.contract,
                "name": e.name,
                "kind": kind_of(e.contract, e.name),
                "fields": _fields(e.args),
                "parties": parties.of(e),
            }
            for e in fresh
        ],
    )
    return len(fresh)


def append_retracted(session: Session, first_gone: int) -> int:
    """Append a ``retracted`` row for every event the index holds from block ``first_gone`` on, newest first
    (the reverse of the order they were added). Call it in the transaction that deletes them, before the
    delete. Returns how many rows were appended."""
    gone = list(
        session.scalars(
            select(EventRow)
            .where(EventRow.block_number >= first_gone)
            .order_by(EventRow.block_number.desc(), EventRow.log_index.desc())
        )
    )
    if not gone:
        return 0
    ids = [event_id(e.block_hash, e.log_index) for e in gone]
    live = _live(session, ids)
    added: dict[str, FeedRow] = {}
    for start in range(0, len(ids), 500):
        chunk = [identifier for identifier in ids[start : start + 500] if identifier in live]
        for found in session.scalars(
            select(FeedRow).where(FeedRow.event_id.in_(chunk), FeedRow.action == ADDED).order_by(FeedRow.seq)
        ):
            added[found.event_id] = found
    rows = []
    for identifier in ids:
        row = added.get(identifier)
        if row is None:
            continue
        rows.append(
            {
                "event_id": identifier,
                "action": RETRACTED,
                "block_number": row.block_number,
                "log_index": row.log_index,
                "block_time": row.block_time,
                "tx_hash": row.tx_hash,
                "contract": row.contract,
                "name": row.name,
                "kind": row.kind,
                "fields": dict(row.fields),
                "parties": list(row.parties),
            }
        )
    _insert(session, rows)
    return len(rows)


def feed_view(row: FeedRow) -> dict[str, Any]:
    """A feed row as the API shows it."""
    return {
        "seq": row.seq,
        "id": row.event_id,
        "action": row.action,
        "kind": row.kind,
        "block_number": row.block_number,
        "log_index": row.log_index,
        "block_time": row.block_time,
        "tx_hash": row.tx_hash,
        "contract": row.contract,
        "event": row.name,
        "fields": dict(row.fields),
        "parties": list(row.parties),
    }


def read_feed(
    session: Session,
    after: int,
    limit: int,
    *,
    party: str | None = None,
    kinds: Sequence[str] = (),
    counterparty: str | None = None,
) -> list[FeedRow]:
    """The feed rows after sequence number ``after``, oldest first, at most ``limit``: those ``party`` may see
    (None: all, for the regulator and the operator), of one of ``kinds`` (none: any), naming ``counterparty``
    among their parties (None: any). One index range read: ``event_feed_parties`` by party and sequence."""
    query = select(FeedRow)
    order: Any = FeedRow.seq
    if party is not None:
        own = _table(FeedPartyRow).alias("own")
        query = query.join(own, own.c.seq == FeedRow.seq).where(own.c.party == party, own.c.seq > after)
        order = own.c.seq
    else:
        query = query.where(FeedRow.seq > after)
    if kinds:
        query = query.where(FeedRow.kind.in_(list(kinds)))
    if counterparty is not None:
        other = _table(FeedPartyRow).alias("other")
        query = query.join(other, other.c.seq == FeedRow.seq).where(other.c.party == counterparty)
    return list(session.scalars(query.order_by(order).limit(limit)))


def last_seq(session: Session) -> int:
    """The newest sequence number of the feed (0 when it is empty)."""
    return int(session.scalar(select(func.max(FeedRow.seq))) or 0)
