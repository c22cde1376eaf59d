"""The journal's persistence: what the pipeline asks of the journal (:class:`JournalStore`), and its SQL
implementation on the ``journal_transactions`` table (:class:`SqlJournalStore`).

Every method is blocking; the pipeline runs them on its one database thread, never on the event loop (but
:meth:`JournalStore.select_operations`, which ``Pipeline.status`` calls directly).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, Protocol, cast

from sqlalchemy import Connection, Engine, Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from ledger.journal import IN_FLIGHT_STATUSES, JournalTransaction, TransactionStatus, utc_now
from ledger.notify import notify
from ledger.pipeline.tracked import OUT_OF_GAS, _Outcome, _Supersession, _Tracked

_JOURNAL: Final = cast(Table, JournalTransaction.__table__)
_INSERT: Final = insert(_JOURNAL)
_MARK_SENT: Final = (
    update(_JOURNAL)
    .where(_JOURNAL.c.tx_hash.in_(bindparam("hashes", expanding=True)))
    .where(_JOURNAL.c.status == TransactionStatus.PENDING)
    .values(status=TransactionStatus.SENT, updated_at=bindparam("now"))
)
_SELECT_OPERATIONS: Final = select(_JOURNAL).where(_JOURNAL.c.operation_id.in_(bindparam("ids", expanding=True)))
_SELECT_STATUSES: Final = select(_JOURNAL.c.operation_id, _JOURNAL.c.status).where(
    _JOURNAL.c.operation_id.in_(bindparam("ids", expanding=True))
)
"""Prepared once (Core, on a plain connection): the journal's per-transaction writes, and the look-up of an
operation id that every keyed submission makes, cost less than building statements and running them through the
ORM's session (the look-up: about a fifth)."""


class JournalStore(Protocol):
    """The journal as the pipeline uses it: write first, then send; read back what is in flight at start."""

    def insert_rows(self, rows: list[dict[str, Any]], supersessions: Sequence[_Supersession] = ()) -> None:
        """Journal new transactions (``_Tracked.row()``), renaming the spent attempts they supersede."""
        ...

    def mark_sent(self, tx_hashes: list[str]) -> None:
        """``pending`` → ``sent`` for these transactions."""
        ...

    def write_outcomes(self, outcomes: Sequence[_Outcome], superseded: bool) -> None:
        """Record how these transactions finished."""
        ...

    def replace_transaction(self, tx_hash: str, replacement: _Tracked) -> None:
        """Journal ``replacement`` in place of transaction ``tx_hash``."""
        ...

    def write_gas_used(self, values: list[tuple[str, int]]) -> None:
        """(transaction hash, gas used) of confirmed transactions."""
        ...

    def max_journaled_nonce(self, sender: str) -> int | None:
        """The highest nonce journaled for ``sender`` (superseded transactions aside)."""
        ...

    def select_operations(self, operation_ids: list[str]) -> list[_Tracked]:
        """The journaled transactions of these operation ids."""
        ...

    def select_statuses(self, operation_ids: list[str]) -> dict[str, TransactionStatus]:
        """The status of each of these operation ids that is journaled (two columns: a light poll)."""
        ...

    def select_in_flight(self) -> list[_Tracked]:
        """Every transaction not final, by sender and nonce."""
        ...

    def recent_blocks(self, above: int) -> dict[int, set[str]]:
        """Block number → block hashes recorded by finished transactions mined above ``above``."""
        ...

    def reopen_after(self, fork: int) -> list[_Tracked]:
        """Put transactions mined above block ``fork`` back in flight; return them."""
        ...


class SqlJournalStore:
    """:class:`JournalStore` on the database ``session_factory`` opens sessions on."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._sessions = session_factory
        self._engine: Engine = session_factory.kw["bind"]
        self.notify_channel: str | None = None
        """Where set (several processes on PostgreSQL: :mod:`ledger.pipeline.handoff`), each write of new
        transactions or of their outcomes also notifies this channel, in its own transaction."""

    def _announce(self, connection: Connection) -> None:
        if self.notify_channel is not None:
            notify(connection, self.notify_channel)

    def insert_rows(self, rows: list[dict[str, Any]], supersessions: Sequence[_Supersession] = ()) -> None:
        """Journal new transactions; in the same database transaction, rename each attempt that ran out of gas
        (``supersessions``), so that the operation id passes to its new attempt atomically."""
        with self._engine.begin() as connection:
            for spent in supersessions:
                connection.execute(
                    update(_JOURNAL)
                    .where(_JOURNAL.c.tx_hash == spent.tracked.tx_hash)
                    .values(
                        operation_id=spent.renamed,
                        status=TransactionStatus.FAILED,
                        block_number=spent.block_number,
                        block_hash=spent.block_hash,
                        gas_used=spent.gas_used,
                        error_name=OUT_OF_GAS,
                        error_args={"gas_limit": spent.tracked.gas_limit, "gas_used": spent.gas_used},
                        updated_at=utc_now(),
                    )
                )
            connection.execute(_INSERT, rows)
            self._announce(connection)

    def mark_sent(self, tx_hashes: list[str]) -> None:
        now = utc_now()
        with self._engine.begin() as connection:
            for start in range(0, len(tx_hashes), 500):
                connection.execute(_MARK_SENT, {"hashes": tx_hashes[start : start + 500], "now": now})

    def write_outcomes(self, outcomes: Sequence[_Outcome], superseded: bool) -> None:
        now = utc_now()
        plain = [o for o in outcomes if o.status is TransactionStatus.CONFIRMED and o.gas_used is None]
        if len(plain) == len(outcomes) and len({(o.block_number, o.block_hash) for o in plain}) == 1:
            # confirmed from one block's logs: one UPDATE ... IN (...) per 500 rows instead of one per row
            hashes = [o.tracked.tx_hash for o in plain]
            with self._sessions() as session, session.begin():
                for start in range(0, len(hashes), 500):
                    session.execute(
                        update(_JOURNAL)
                        .where(_JOURNAL.c.tx_hash.in_(hashes[start : start + 500]))
                        .values(
                            status=TransactionStatus.CONFIRMED,
                            block_number=plain[0].block_number,
                            block_hash=plain[0].block_hash,
                            superseded=superseded,
                            updated_at=now,
                        )
                    )
                self._announce(session.connection())
            return
        params = [
            {
                "_tx_hash": o.tracked.tx_hash,
                "status": o.status,
                "block_number": o.block_number,
                "block_hash": o.block_hash,
                "gas_used": o.gas_used,
                "error_name": o.error_name,
                "error_args": o.error_args,
                "superseded": superseded,
                "updated_at": now,
            }
            for o in outcomes
        ]
        statement = update(_JOURNAL).where(_JOURNAL.c.tx_hash == bindparam("_tx_hash"))
        with self._sessions() as session, session.begin():
            session.connection().execute(statement, params)
            self._announce(session.connection())

    def replace_transaction(self, tx_hash: str, replacement: _Tracked) -> None:
        """Journal ``replacement`` in place of transaction ``tx_hash`` (same operation id, sender and nonce)."""
        with self._sessions() as session, session.begin():
            session.execute(
                update(_JOURNAL)
                .where(_JOURNAL.c.tx_hash == tx_hash)
                .values(
                    kind=replacement.kind,
                    tx_hash=replacement.tx_hash,
                    raw_tx=replacement.raw_tx,
                    to=replacement.to,
                    selector=replacement.selector,
                    gas_limit=replacement.gas_limit,
                    status=replacement.status,
                    updated_at=utc_now(),
                )
            )

    def write_gas_used(self, values: list[tuple[str, int]]) -> None:
        if not values:
            return
        statement = update(_JOURNAL).where(_JOURNAL.c.tx_hash == bindparam("_tx_hash"))
        with self._sessions() as session, session.begin():
            session.connection().execute(statement, [{"_tx_hash": h, "gas_used": g} for h, g in values])

    def max_journaled_nonce(self, sender: str) -> int | None:
        with self._sessions() as session:
            return session.scalar(
                select(func.max(JournalTransaction.nonce)).where(
                    JournalTransaction.sender == sender, JournalTransaction.superseded.is_(False)
                )
            )

    def select_operations(self, operation_ids: list[str]) -> list[_Tracked]:
        with self._engine.connect() as connection:
            rows = connection.execute(_SELECT_OPERATIONS, {"ids": operation_ids}).all()
        return [_Tracked.from_row(row) for row in rows]

    def select_statuses(self, operation_ids: list[str]) -> dict[str, TransactionStatus]:
        with self._engine.connect() as connection:
            rows = connection.execute(_SELECT_STATUSES, {"ids": operation_ids}).all()
        return {str(row[0]): TransactionStatus(row[1]) for row in rows}

    def select_in_flight(self) -> list[_Tracked]:
        with self._sessions() as session:
            rows = session.scalars(
                select(JournalTransaction)
                .where(JournalTransaction.status.in_(IN_FLIGHT_STATUSES))
                .order_by(JournalTransaction.sender, JournalTransaction.nonce)
            ).all()
            return [_Tracked.from_row(row) for row in rows]

    def recent_blocks(self, above: int) -> dict[int, set[str]]:
        """Block number → block hashes recorded by finished transactions mined above ``above``."""
        with self._sessions() as session:
            rows = session.execute(
                select(JournalTransaction.block_number, JournalTransaction.block_hash)
                .where(JournalTransaction.block_number.is_not(None), JournalTransaction.block_number > above)
                .distinct()
            ).all()
        recent: dict[int, set[str]] = {}
        for number, block_hash in rows:
            if number is not None:
                recent.setdefault(int(number), set()).add(str(block_hash))
        return recent

    def reopen_after(self, fork: int) -> list[_Tracked]:
        """Put transactions mined above block ``fork`` back in flight (``sent``); return them."""
        with self._sessions() as session, session.begin():
            rows = session.scalars(
                select(JournalTransaction).where(
                    JournalTransaction.block_number > fork,
                    JournalTransaction.status.in_((TransactionStatus.CONFIRMED, TransactionStatus.FAILED)),
                )
            ).all()
            lost_blocks = {row.operation_id: row.block_number for row in rows}
            for row in rows:
                row.status = TransactionStatus.SENT
                row.block_number = row.block_hash = row.gas_used = None
                row.error_name = None
                row.error_args = None
            session.flush()
            reopened = [_Tracked.from_row(row) for row in rows]
        for tracked in reopened:
            tracked.lost_block = lost_blocks[tracked.operation_id]
        return reopened
