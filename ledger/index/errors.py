"""The indexer's errors, in one hierarchy under :class:`IndexerError`."""

from __future__ import annotations


class IndexerError(Exception):
    """Base of the indexer's errors."""


class IndexMismatchError(IndexerError):
    """The database holds an index of another chain or other contracts; rebuild it (:meth:`Indexer.rebuild`)."""


class IndexInconsistencyError(IndexerError):
    """An event refers to something the index does not hold (an event the contracts failed to emit, or a
    projection bug). The page is not written; the indexer stops rather than serve a wrong index."""


class LogSourceError(IndexerError):
    """The node refused or failed a request (too many results, a timeout, an error answer)."""


class ChainMovedError(IndexerError):
    """The chain changed under a page while it was being read (a reorganisation in progress)."""
