"""The event index: the ledger contracts' events in SQL tables, rebuildable from the chain alone.

:class:`Indexer` reads the chain into the raw event log and the projections of :mod:`ledger.index.models`;
:func:`snapshot_tables` compares two indexes (a live one and one rebuilt from block 0 must be equal).
"""

from ledger.index.decoding import ChainEvent, EventDecoder
from ledger.index.errors import IndexerError, IndexInconsistencyError, IndexMismatchError, LogSourceError
from ledger.index.indexer import CONTRACT_ARTIFACTS, Indexer, SyncStats
from ledger.index.snapshot import snapshot_tables
from ledger.index.source import BlockHeader, LogSource, RawLog, Web3LogSource

__all__ = [
    "CONTRACT_ARTIFACTS",
    "BlockHeader",
    "ChainEvent",
    "EventDecoder",
    "IndexInconsistencyError",
    "IndexMismatchError",
    "Indexer",
    "IndexerError",
    "LogSource",
    "LogSourceError",
    "RawLog",
    "SyncStats",
    "Web3LogSource",
    "snapshot_tables",
]
