"""The pipeline's in-memory bookkeeping of operations: those in flight (by operation id and by transaction hash),
a bounded number of recently finished ones, and the logs of recently confirmed transactions (so that a caller
asking for an operation's events reads what the block follower already fetched, not the receipt again)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from ledger.pipeline.tracked import _Tracked


class Registry:
    """Operations in memory. ``keep_final`` bounds the finished ones kept, ``keep_logs`` the confirmed
    transactions whose logs are kept (the oldest go first; the journal and the node still have them)."""

    def __init__(self, keep_final: int, keep_logs: int) -> None:
        self.keep_final = keep_final
        self.keep_logs = keep_logs
        self.inflight: dict[str, _Tracked] = {}  # operation id → tracked, not final
        self.by_hash: dict[str, _Tracked] = {}  # tx hash → tracked, not final
        self.final: OrderedDict[str, _Tracked] = OrderedDict()  # recently finished, bounded
        self._logs: OrderedDict[str, Sequence[Mapping[str, Any]]] = OrderedDict()  # tx hash → its logs, bounded

    def get(self, operation_id: str) -> _Tracked | None:
        """The operation in flight or recently finished, if held in memory."""
        return self.inflight.get(operation_id) or self.final.get(operation_id)

    def track(self, tracked: _Tracked) -> None:
        """Hold ``tracked`` as in flight."""
        self.inflight[tracked.operation_id] = tracked
        self.by_hash[tracked.tx_hash] = tracked

    def remember(self, tracked: _Tracked) -> _Tracked:
        """Track a transaction read from the journal (in flight ones are already tracked since ``start``)."""
        current = self.get(tracked.operation_id)
        if current is not None:
            return current
        if tracked.status.is_final:
            tracked.done.set()
            self.keep(tracked)
        return tracked

    def keep(self, tracked: _Tracked) -> None:
        """Hold ``tracked`` as finished (the oldest finished one goes beyond ``keep_final``)."""
        self.final[tracked.operation_id] = tracked
        while len(self.final) > self.keep_final:
            self.final.popitem(last=False)

    def keep_logs_of(self, tx_hash: str, logs: Sequence[Mapping[str, Any]]) -> None:
        """Hold the logs of a confirmed transaction (the oldest go beyond ``keep_logs``)."""
        self._logs[tx_hash] = logs
        while len(self._logs) > self.keep_logs:
            self._logs.popitem(last=False)

    def logs(self, tx_hash: str) -> Sequence[Mapping[str, Any]] | None:
        """The logs held for a confirmed transaction, None when not held."""
        return self._logs.get(tx_hash)

    def forget_logs(self, tx_hash: str) -> None:
        """Its block was lost: the logs are no longer the chain's."""
        self._logs.pop(tx_hash, None)
