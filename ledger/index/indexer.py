"""The event indexer: reads the ledger contracts' logs into SQL, block range by block range.

How it works
------------
- One ``eth_getLogs`` per page of blocks for every ledger contract at once. Pages are sized from the
  density of the previous page (about 10,000 logs a page, at most ``page_size`` blocks, 2,000 by default,
  the service's ``SCF_LOGS_MAX_RANGE``) and halved when the node refuses a range (for the rest of the sync,
  no page is as wide as a refused one). Logs are decoded straight from their hex with the ABIs (a
  ``(contract, topic0) → event`` map built once; fixed-size arguments are read word by word, anything else
  goes through ``eth_abi``), which is many times faster than web3's contract event processing.
- Block times come from the logs where the node puts them there (anvil, reth, recent geth); otherwise the
  headers of the blocks that hold events are fetched, in JSON-RPC batches. The page's first and last
  headers are always read: the first must follow the checkpoint, the last is read before and after the
  logs to pin the chain the logs came from.
- Each page is written in one database transaction: the raw events (``events``), the blocks they came
  from, every projection they change, and the checkpoint (last block number and hash). Projections are
  worked out in memory: the rows a page touches are loaded with one ``SELECT … IN`` per table, the events
  are applied to them in block and log order by one function per event, and the results are written back
  with one bulk ``INSERT`` and one bulk ``UPDATE`` per table.
- Idempotent: ``(block_hash, log_index)`` is unique, and a page skips the events already stored, so reading
  a block twice changes nothing.
- Reorganisations (a competing chain, or anvil restarted behind what it had mined): before reading, the
  checkpoint's hash is compared with the chain's block at that height. On a mismatch the indexer walks back
  over the blocks it stored until one is still on the chain, deletes the raw events above it, rebuilds the
  projections by replaying the raw event log that remains (no chain access; reorgs are rare, and a replay
  is exactly the rebuild the index must support anyway) and reads forward again. All of that is one
  transaction, so a reader sees the index before the reorg or after it, never in between.

The raw event log is the source of truth of the index: :meth:`Indexer.rebuild_projections` replays it,
:meth:`Indexer.rebuild` reads it again from the chain, and :func:`snapshot_tables` compares two indexes.

Where each part lives: :mod:`ledger.index.source` reads the chain, :mod:`ledger.index.decoding` decodes its
logs, :mod:`ledger.index.unit_of_work` holds a transaction's projection rows in memory,
:mod:`ledger.index.projections` has one function per event (a module per contract) and
:mod:`ledger.index.snapshot` compares indexes. This module is the sync and reorganisation loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_utils import to_checksum_address
from sqlalchemy import delete, select, tuple_
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from web3 import Web3

from ledger.db import Base
from ledger.index import feed
from ledger.index.decoding import ChainEvent, EventDecoder
from ledger.index.errors import ChainMovedError, IndexInconsistencyError, IndexMismatchError, LogSourceError
from ledger.index.models import PROJECTIONS, BlockRow, EventRow, IndexCheckpointRow
from ledger.index.source import BlockHeader, LogSource, Web3LogSource
from ledger.index.unit_of_work import Projector, insert_many, table_of

logger = logging.getLogger(__name__)

#: The ledger's name of each contract the index reads → its artifact (contract) name.
CONTRACT_ARTIFACTS: Mapping[str, str] = {
    "registry": "ParticipantRegistry",
    "token": "DepositToken",
    "receivables": "Receivables",
    "receipts": "WarehouseReceipts",
    "anchor": "AuditAnchor",
    "acts": "SignedActs",
}
_NAME_OF_ARTIFACT = {artifact: name for name, artifact in CONTRACT_ARTIFACTS.items()}

_CHECKPOINT_ID = 1
_FIRST_PAGE_BLOCKS = 16
_REPLAY_CHUNK = 5_000


# ---------------------------------------------------------------------------------------------------------
# The indexer
# ---------------------------------------------------------------------------------------------------------


@dataclass
class _Page:
    first: int
    last: int
    last_header: BlockHeader
    events: list[ChainEvent]
    blocks: list[BlockHeader]
    log_count: int


@dataclass
class SyncStats:
    """What a sync did, for logs and benchmarks."""

    events: int = 0
    pages: int = 0
    blocks: int = 0
    reorgs: int = 0
    seconds: float = 0.0
    per_page: list[tuple[int, int, int]] = field(default_factory=list)
    """(first block, last block, events) of each page."""


class Indexer:
    """Keeps the event index of the ledger's contracts up to date with the chain.

    ``contracts`` maps the ledger's names (``registry``, ``token``, ``receivables``, ``receipts``; the
    artifact names ``ParticipantRegistry`` … are accepted too) to addresses; ``abis`` maps the same names to
    ABIs. A contract absent from ``contracts`` is simply not read. ``session_factory`` makes sessions on the
    index database (whose schema :func:`ledger.migrations.upgrade` creates).

    Pages: ``eth_getLogs`` covers at most ``page_size`` blocks. A sync starts with a few blocks and sizes
    each next page from the density of the last one, aiming at ``events_per_page`` logs (one database
    transaction each), so a chain mined at the node's ceiling (thousands of logs a block) is read in bounded
    pieces while a quiet chain is read 2,000 blocks at a time; a range the node refuses is halved, and for the
    rest of that sync no page is as wide as a refused one. Give a node with a range limit (Besu's
    ``--rpc-max-logs-range``) a ``page_size`` within it (the service's ``SCF_LOGS_MAX_RANGE``).
    ``start_block`` is where a new index starts (the deployment's block); ``confirmations`` keeps that many
    of the newest blocks unread (0 on a chain with immediate finality, such as Besu QBFT).
    """

    def __init__(
        self,
        w3: Web3 | None,
        contracts: Mapping[str, str],
        abis: Mapping[str, Sequence[Mapping[str, Any]]],
        session_factory: Callable[[], Session],
        *,
        source: LogSource | None = None,
        start_block: int = 0,
        page_size: int = 2_000,
        events_per_page: int = 10_000,
        confirmations: int = 0,
    ) -> None:
        if source is None:
            if w3 is None:
                raise ValueError("give a Web3 connection or a log source")
            source = Web3LogSource(w3)
        self.source = source
        self.contracts = {_ledger_name(name): to_checksum_address(address) for name, address in contracts.items()}
        named_abis = {_ledger_name(name): abi for name, abi in abis.items()}
        missing = sorted(set(self.contracts) - set(named_abis))
        if missing:
            raise ValueError(f"no ABI for {', '.join(missing)}")
        self.decoder = EventDecoder(self.contracts, named_abis)
        self.session_factory = session_factory
        self.start_block = start_block
        self.page_size = page_size
        self.events_per_page = events_per_page
        self.confirmations = confirmations
        self.last_sync = SyncStats()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._listeners: list[Callable[[int], None]] = []
        self.indexed_through: int | None = None
        """The last block the index holds, as this indexer last wrote or found it (None before its first sync)."""
        self._chain_id: int | None = None

    # -- public operations ------------------------------------------------------------------------------------

    def on_indexed(self, listener: Callable[[int], None]) -> None:
        """Call ``listener(block)`` (from the indexing thread) each time the index holds the blocks up to ``block``:
        after every page written, and after every sync. The service uses it to answer an operation confirmed
        only once its block is indexed, so that the next read shows it."""
        self._listeners.append(listener)

    def poke(self) -> None:
        """Sync now instead of at the next poll (an operation was just confirmed: its block is there to index)."""
        self._wake.set()

    def _indexed(self, block: int | None) -> None:
        self.indexed_through = block
        if block is None:
            return
        for listener in self._listeners:
            try:
                listener(block)
            except Exception:  # a listener's failure must not stop the indexer
                logger.exception("index listener failed")

    def sync_once(self, *, to_block: int | None = None) -> int:
        """Read every block from the checkpoint up to the chain's head (less ``confirmations``, or up to
        ``to_block``), following a reorganisation first if there was one. Returns how many events were
        stored."""
        return self._sync(to_block, interruptible=False)

    def _sync(self, to_block: int | None, *, interruptible: bool) -> int:
        started = time.perf_counter()
        stats = SyncStats()
        target = self.source.head() - self.confirmations
        if to_block is not None:
            target = min(target, to_block)
        for _attempt in range(5):
            checkpoint = self._reconcile(stats)
            try:
                self._read_forward(checkpoint, target, stats, interruptible=interruptible)
            except ChainMovedError as exc:
                logger.warning("the chain moved while reading (%s); reconciling again", exc)
                continue
            break
        stats.seconds = time.perf_counter() - started
        self.last_sync = stats
        self._indexed(self.indexed_block())
        return stats.events

    def run_forever(self, poll_interval: float = 1.0) -> None:
        """Sync, then sync again every ``poll_interval`` seconds until :meth:`stop` (which also ends a long
        sync between two pages). Errors of the node or the database are logged and retried with a growing
        pause. An inconsistent index (an event about a row the index does not hold: the chain moved under it in
        a way its rollback did not follow) is logged as an error and the index is rebuilt from the chain, so
        that the lists never stay wrong and the thread never dies."""
        pause = poll_interval
        while not self._stop.is_set():
            try:
                self._sync(None, interruptible=True)
                pause = poll_interval
            except (LogSourceError, OSError, OperationalError) as exc:
                pause = min(pause * 2, 60.0)
                logger.warning("indexer sync failed (%s); retrying in %.1f s", exc, pause)
            except IndexInconsistencyError as exc:
                logger.error("the index is inconsistent with the chain (%s); rebuilding it from the chain", exc)
                try:
                    self.rebuild()
                except (LogSourceError, OSError, OperationalError, IndexInconsistencyError) as again:
                    pause = min(pause * 2, 60.0)
                    logger.warning("index rebuild failed (%s); retrying in %.1f s", again, pause)
            self._wake.wait(pause)
            self._wake.clear()

    def stop(self) -> None:
        """Ask :meth:`run_forever` to return after its current sync."""
        self._stop.set()
        self._wake.set()

    def indexed_block(self) -> int | None:
        """The last block the index holds (None before the first sync)."""
        with self.session_factory() as session:
            checkpoint = session.get(IndexCheckpointRow, _CHECKPOINT_ID)
            return None if checkpoint is None else checkpoint.block_number

    def rebuild(self) -> int:
        """Forget everything indexed (raw events and projections) and read the chain again from the start
        block. Returns how many events were stored."""
        with self.session_factory() as session, session.begin():
            _clear(session, (*reversed(PROJECTIONS), EventRow, BlockRow, IndexCheckpointRow))
        return self.sync_once()

    def rebuild_projections(self) -> int:
        """Rebuild every projection from the raw event log alone (no chain access), in one transaction.
        Returns how many events were replayed."""
        with self.session_factory() as session, session.begin():
            return _replay(session)

    # -- reconciling with the chain ---------------------------------------------------------------------------

    def _reconcile(self, stats: SyncStats) -> IndexCheckpointRow:
        """The checkpoint, after rolling the index back to the chain if the chain no longer holds the block
        the checkpoint names."""
        with self.session_factory() as session, session.begin():
            checkpoint = self._checkpoint(session)
            if checkpoint.block_number is None:
                return _detached(checkpoint)
            header = self.source.headers([checkpoint.block_number]).get(checkpoint.block_number)
            if header is not None and header.hash == checkpoint.block_hash:
                return _detached(checkpoint)
            base = self._common_block(session)
            logger.warning(
                "reorganisation: block %s is no longer %s; rolling the index back to %s",
                checkpoint.block_number,
                checkpoint.block_hash,
                "the start" if base is None else f"block {base.number}",
            )
            _roll_back(session, base)
            checkpoint.block_number = None if base is None else base.number
            checkpoint.block_hash = None if base is None else base.hash
            stats.reorgs += 1
            return _detached(checkpoint)

    def _checkpoint(self, session: Session) -> IndexCheckpointRow:
        checkpoint = session.get(IndexCheckpointRow, _CHECKPOINT_ID)
        if self._chain_id is None:
            self._chain_id = self.source.chain_id()
        if checkpoint is None:
            checkpoint = IndexCheckpointRow(
                id=_CHECKPOINT_ID,
                chain_id=self._chain_id,
                contracts=dict(self.contracts),
                block_number=None,
                block_hash=None,
            )
            session.add(checkpoint)
            session.flush()
            return checkpoint
        if checkpoint.chain_id != self._chain_id or checkpoint.contracts != self.contracts:
            raise IndexMismatchError(
                f"the index holds chain {checkpoint.chain_id} contracts {checkpoint.contracts}, not chain "
                f"{self._chain_id} contracts {self.contracts}; rebuild it"
            )
        return checkpoint

    def _common_block(self, session: Session) -> BlockHeader | None:
        """The highest stored block the chain still holds, walking back from the newest."""
        below: int | None = None
        while True:
            query = select(BlockRow.number, BlockRow.hash, BlockRow.timestamp).order_by(BlockRow.number.desc())
            if below is not None:
                query = query.where(BlockRow.number < below)
            stored = session.execute(query.limit(64)).all()
            if not stored:
                return None
            chain = self.source.headers(number for number, _, _ in stored)
            for number, block_hash, _timestamp in stored:
                header = chain.get(number)
                if header is not None and header.hash == block_hash:
                    return header
            below = stored[-1][0]

    # -- reading forward --------------------------------------------------------------------------------------

    def _read_forward(
        self, checkpoint: IndexCheckpointRow, target: int, stats: SyncStats, *, interruptible: bool
    ) -> None:
        previous = (checkpoint.block_number, checkpoint.block_hash)
        first = self.start_block if previous[0] is None else previous[0] + 1
        addresses = self.decoder.addresses
        size = min(self.page_size, _FIRST_PAGE_BLOCKS)
        # Pages never grow back to a span the node refused during this sync (a node's range limit, such as Besu's
        # --rpc-max-logs-range, would refuse it again); the next sync starts afresh, so a passing failure of the
        # node does not shrink the pages for good.
        ceiling = self.page_size
        while first <= target and not (interruptible and self._stop.is_set()):
            last = min(first + size - 1, target)
            try:
                page = self._read_page(first, last, addresses, previous[1] if previous[0] is not None else None)
            except LogSourceError as exc:
                if last == first:
                    raise
                ceiling = min(ceiling, last - first)
                size = max(1, min(size // 2, ceiling))
                logger.info("eth_getLogs %s..%s failed (%s); page size now %s", first, last, exc, size)
                continue
            stored = self._write_page(page, previous)
            self._indexed(last)
            stats.events += stored
            stats.pages += 1
            stats.blocks += last - first + 1
            stats.per_page.append((first, last, len(page.events)))
            previous = (last, page.last_header.hash)
            size = min(self._next_page_size(last - first + 1, page.log_count), ceiling)
            first = last + 1

    def _next_page_size(self, blocks: int, logs: int) -> int:
        """Up to four times the last page, less if its density says the next would exceed
        ``events_per_page`` logs."""
        size = min(self.page_size, blocks * 4)
        if logs:
            size = min(size, blocks * self.events_per_page // logs)
        return max(1, size)

    def _read_page(self, first: int, last: int, addresses: Sequence[str], previous_hash: str | None) -> _Page:
        """Read blocks ``first``..``last``. The last block's header is read before and after the logs: if it
        is the same both times, the logs are of that chain (a reorganisation below it would have changed its
        hash). Block times come from the logs when the node includes them, else from headers, fetched in
        one batch only for blocks that hold events."""
        pinned = self.source.headers([last]).get(last)
        if pinned is None:
            raise ChainMovedError(f"block {last} is gone")
        logs = self.source.logs(first, last, addresses) if addresses else []
        untimed = {log.block_number for log in logs if log.block_timestamp is None}
        headers = self.source.headers(untimed | {first, last})
        if headers.get(last) != pinned:
            raise ChainMovedError(f"block {last} changed while its logs were read")
        first_header = headers.get(first)
        if previous_hash is not None and (first_header is None or first_header.parent_hash != previous_hash):
            raise ChainMovedError(f"block {first} no longer follows the checkpoint")
        events: list[ChainEvent] = []
        blocks: dict[int, BlockHeader] = {}
        for log in sorted(logs, key=lambda entry: (entry.block_number, entry.log_index)):
            block = blocks.get(log.block_number)
            if block is None:
                header = headers.get(log.block_number)
                if header is None:
                    if log.block_timestamp is None:
                        raise ChainMovedError(f"block {log.block_number} is gone")
                    header = BlockHeader(log.block_number, log.block_hash, "", log.block_timestamp)
                block = blocks[log.block_number] = header
            if block.hash != log.block_hash:
                raise ChainMovedError(f"block {log.block_number} changed while its logs were read")
            event = self.decoder.decode(log, block.timestamp)
            if event is not None:
                events.append(event)
        event_blocks = {event.block_number for event in events}
        return _Page(
            first=first,
            last=last,
            last_header=pinned,
            events=events,
            blocks=[block for number, block in sorted(blocks.items()) if number in event_blocks],
            log_count=len(logs),
        )

    def _write_page(self, page: _Page, previous: tuple[int | None, str | None]) -> int:
        with self.session_factory() as session, session.begin():
            checkpoint = session.get(IndexCheckpointRow, _CHECKPOINT_ID)
            if checkpoint is None or (checkpoint.block_number, checkpoint.block_hash) != previous:
                raise ChainMovedError("the checkpoint moved under the indexer (another indexer on this database?)")
            events = page.events
            if events:
                stored = {
                    (block_hash, log_index)
                    for block_hash, log_index in session.execute(
                        select(EventRow.block_hash, EventRow.log_index).where(
                            EventRow.block_number.between(page.first, page.last)
                        )
                    )
                }
                if stored:
                    events = [e for e in events if (e.block_hash, e.log_index) not in stored]
            if events:
                insert_many(session, table_of(EventRow), [event.as_row() for event in events])
                known = set(
                    session.scalars(select(BlockRow.number).where(BlockRow.number.in_([b.number for b in page.blocks])))
                )
                new_blocks = [
                    {"number": b.number, "hash": b.hash, "timestamp": b.timestamp}
                    for b in page.blocks
                    if b.number not in known
                ]
                if new_blocks:
                    insert_many(session, table_of(BlockRow), new_blocks)
                projector = Projector(session)
                projector.apply(events)
                projector.write()
                feed.append_added(session, events)
            checkpoint.block_number = page.last
            checkpoint.block_hash = page.last_header.hash
        if events:
            logger.debug("indexed %d events of blocks %d..%d", len(events), page.first, page.last)
        return len(events)


def _ledger_name(name: str) -> str:
    return _NAME_OF_ARTIFACT.get(name, name)


def _detached(checkpoint: IndexCheckpointRow) -> IndexCheckpointRow:
    """A copy of the checkpoint that outlives its session."""
    return IndexCheckpointRow(
        id=checkpoint.id,
        chain_id=checkpoint.chain_id,
        contracts=dict(checkpoint.contracts),
        block_number=checkpoint.block_number,
        block_hash=checkpoint.block_hash,
    )


def _clear(session: Session, models: Iterable[type[Base]]) -> None:
    for model in models:
        session.execute(delete(table_of(model)))


def _roll_back(session: Session, base: BlockHeader | None) -> None:
    """Delete what the index holds above ``base`` (everything when None) and rebuild the projections from
    the raw events that remain."""
    first_gone = 0 if base is None else base.number + 1
    feed.append_retracted(session, first_gone)
    removed = session.execute(delete(EventRow).where(EventRow.block_number >= first_gone)).rowcount  # type: ignore[attr-defined]
    session.execute(delete(BlockRow).where(BlockRow.number >= first_gone))
    if removed:
        _replay(session)


def _replay(session: Session) -> int:
    """Rebuild every projection from the raw event log, in chain order, in chunks."""
    _clear(session, reversed(PROJECTIONS))
    replayed = 0
    after: tuple[int, int] | None = None
    table = table_of(EventRow)
    while True:
        query = select(table).order_by(table.c.block_number, table.c.log_index).limit(_REPLAY_CHUNK)
        if after is not None:
            query = query.where(tuple_(table.c.block_number, table.c.log_index) > tuple_(*after))
        chunk = [ChainEvent.from_row(row) for row in session.execute(query).mappings()]
        if not chunk:
            return replayed
        projector = Projector(session)
        projector.apply(chunk)
        projector.write()
        replayed += len(chunk)
        after = (chunk[-1].block_number, chunk[-1].log_index)
