"""The state the pipeline's parts share, declared once: :class:`~ledger.pipeline.pipeline.Pipeline` sets it up,
its submission (:mod:`~ledger.pipeline.submission`), confirmation (:mod:`~ledger.pipeline.confirmation`) and
revert (:mod:`~ledger.pipeline.reverts`) parts read and change it, all on one asyncio event loop."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

import coincurve
from eth_account.signers.local import LocalAccount

from ledger.errors import ErrorDecoder
from ledger.pipeline.block_clock import BlockClock
from ledger.pipeline.exceptions import PipelineNotRunning
from ledger.pipeline.journal_store import JournalStore
from ledger.pipeline.registry import Registry
from ledger.pipeline.rpc import JsonRpcClient
from ledger.pipeline.tracked import Operation, _Tracked

if TYPE_CHECKING:
    from ledger.pipeline.submission import KnownGas

T = TypeVar("T")


class PipelineState:
    """What every part of the pipeline may use (see ``Pipeline.__init__`` for the options)."""

    rpc_url: str
    chain_id: int
    max_priority_fee_per_gas: int
    base_fee_multiplier: int
    gas_margin_percent: int
    gas_estimate_every: int
    fallback_gas: int
    max_batch: int
    send_batch: int
    send_concurrency: int
    poll_interval: float
    reconcile_interval: float
    resend_after: float
    block_window: int
    keep_final: int
    confirmations: int

    _journal: JournalStore
    _decoder: ErrorDecoder
    _rpc_timeout: float
    _rpc: JsonRpcClient | None
    _rpc_loop: asyncio.AbstractEventLoop | None  # the event loop the connection belongs to
    _db_executor: ThreadPoolExecutor | None
    _running: bool
    _tasks: list[asyncio.Task[None]]

    _registry: Registry
    _claims: dict[str, asyncio.Future[Operation | None]]
    _lookups: dict[str, asyncio.Future[_Tracked | None]]
    _lookup_task: asyncio.Task[None] | None
    _preflights: list[tuple[dict[str, str], bool, asyncio.Future[tuple[Any, Any]]]]
    _preflight_tasks: set[asyncio.Task[None]]
    _known_gas: dict[tuple[str, bytes, int], KnownGas]

    # submission
    _next_nonce: dict[str, int]
    _nonce_locks: dict[str, asyncio.Lock]
    _keys: dict[str, coincurve.PrivateKey]
    _signer: Callable[[str], LocalAccount] | None
    _checksummed: dict[str, str]
    _journal_queue: asyncio.Queue[_Tracked]
    _send_queue: asyncio.Queue[list[_Tracked]]
    _reconcile_soon: asyncio.Event

    # following the chain
    _followed: int  # last block processed by the follower
    _block_hashes: dict[int, str]
    _base_fee: int
    _block_gas_limit: int | None
    _trace_supported: bool
    _gas_unknown: deque[_Tracked]
    _block_clock: BlockClock
    on_block: Callable[[int], None] | None

    # several processes (handoff)
    _handoff: bool
    _standby: bool

    # -- database (run on the pipeline's one database thread) ----------------------------------------

    async def _db(self, function: Callable[..., T], *args: Any) -> T:
        if self._db_executor is None:
            raise PipelineNotRunning("the pipeline is not running")
        return await asyncio.get_running_loop().run_in_executor(self._db_executor, function, *args)

    def _require_rpc(self) -> JsonRpcClient:
        if self._rpc is None:
            raise PipelineNotRunning("the pipeline is not running")
        return self._rpc
