"""The :class:`Pipeline` facade: its options, life cycle and reads. It composes the parts of the package: the
submission policy (:mod:`.submission`), revert and out-of-gas handling (:mod:`.reverts`), confirmation following
and reconciliation (:mod:`.confirmation`), over the JSON-RPC client (:mod:`.rpc`), the in-memory registry of
operations (:mod:`.registry`) and the journal's store (:mod:`.journal_store`)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from eth_account.signers.local import LocalAccount
from sqlalchemy.orm import Session, sessionmaker

from ledger.errors import ErrorDecoder
from ledger.node import ChainIdMismatch
from ledger.notify import JOURNAL
from ledger.pipeline.block_clock import BlockClock
from ledger.pipeline.confirmation import Confirmation
from ledger.pipeline.exceptions import NodeUnavailable, PipelineNotRunning, RpcError, UnknownOperation
from ledger.pipeline.handoff import Handoff, insert_new_statement
from ledger.pipeline.journal_store import SqlJournalStore
from ledger.pipeline.registry import Registry
from ledger.pipeline.reverts import Reverts
from ledger.pipeline.rpc import JsonRpcClient, _hex_int, web3_log
from ledger.pipeline.submission import DEFAULT_FALLBACK_GAS, Submission
from ledger.pipeline.tracked import Operation, _Tracked

logger = logging.getLogger("ledger.pipeline")


class Pipeline(Submission, Reverts, Confirmation, Handoff):
    """Signs, journals, sends and follows the ledger's transactions. Use from one asyncio event loop.

    ``session_factory`` opens sessions on the database holding ``journal_transactions``; ``decoder`` turns revert
    data into the contracts' named errors. ``confirmations``: how many blocks must be on top of a transaction's
    block before its operation is reported confirmed (or failed). 0 suits a chain with immediate finality (Besu
    QBFT). On the local anvil, whose ``kill -9`` loses the blocks since its last consistent state dump (one to
    three, typically), a few make a reported confirmation survive such a crash, at that many block times of
    latency. ``keep_final``: how many finished operations to hold in memory (older ones are read from the
    journal); ``keep_logs``: of how many confirmed transactions to hold the logs for :meth:`logs_of` (older ones
    cost one receipt fetch). ``handoff``: several processes share the database, one owning the pipeline at a
    time: the owner takes the submissions the others queue (:mod:`.handoff`); start the others with
    :meth:`start_standby`, and :meth:`promote` one when it takes the lease. ``gas_estimate_every``: a call whose
    gas was estimated before (same contract, function and calldata length) is estimated again only every that
    many pre-flights, and given its highest estimate in between (:meth:`preflight`); 1 estimates every call.
    """

    def __init__(
        self,
        rpc_url: str,
        chain_id: int,
        session_factory: sessionmaker[Session],
        decoder: ErrorDecoder,
        *,
        max_priority_fee_per_gas: int = 0,
        base_fee_multiplier: int = 2,
        gas_margin_percent: int = 30,
        gas_estimate_every: int = 16,
        fallback_gas: int = DEFAULT_FALLBACK_GAS,
        max_batch: int = 1_000,
        send_batch: int = 250,
        send_concurrency: int = 2,
        poll_interval: float = 0.05,
        reconcile_interval: float = 1.0,
        resend_after: float = 3.0,
        rpc_timeout: float = 10.0,
        block_window: int = 256,
        keep_final: int = 200_000,
        keep_logs: int = 10_000,
        confirmations: int = 0,
        signer: Callable[[str], LocalAccount] | None = None,
        handoff: bool = False,
    ) -> None:
        if base_fee_multiplier < 1:
            raise ValueError("base_fee_multiplier must be at least 1")
        if confirmations < 0:
            raise ValueError("confirmations must not be negative")
        if gas_estimate_every < 1:
            raise ValueError("gas_estimate_every must be at least 1")
        self.rpc_url = rpc_url
        self.chain_id = chain_id
        self.max_priority_fee_per_gas = max_priority_fee_per_gas
        self.base_fee_multiplier = base_fee_multiplier
        self.gas_margin_percent = gas_margin_percent
        self.gas_estimate_every = gas_estimate_every
        self.fallback_gas = fallback_gas
        self.max_batch = max_batch
        self.send_batch = send_batch
        self.send_concurrency = send_concurrency
        self.poll_interval = poll_interval
        self.reconcile_interval = reconcile_interval
        self.resend_after = resend_after
        self.block_window = block_window
        self.keep_final = keep_final
        self.confirmations = confirmations
        self._journal = SqlJournalStore(session_factory)
        self._decoder = decoder
        self._rpc_timeout = rpc_timeout
        self._rpc = None
        self._rpc_loop = None
        self._reads: dict[tuple[str, str], asyncio.Future[Any]] = {}
        self._db_executor = None
        self._running = False
        self._tasks = []

        self._registry = Registry(keep_final, keep_logs)
        self._claims = {}
        self._lookups = {}
        self._lookup_task = None
        self._preflights = []
        self._preflight_tasks = set()
        self._known_gas = {}

        self._next_nonce = {}
        self._nonce_locks = {}
        self._keys = {}
        self._signer = signer
        self._checksummed = {}

        self._journal_queue = asyncio.Queue()
        self._send_queue = asyncio.Queue()
        self._reconcile_soon = asyncio.Event()

        self._followed = -1  # last block processed by the follower
        self._block_hashes = {}
        self._base_fee = 0
        self._block_gas_limit = None
        self._trace_supported = True
        self._gas_unknown = deque()
        self._block_clock = BlockClock()
        self.on_block: Callable[[int], None] | None = None
        """Called on the event loop with the new head's number when the follower finds a new block while
        transactions are in flight, before it confirms them: the service wakes its indexer with it, which then
        reads the block while the follower confirms its operations (an operation is answered once both have)."""

        self._handoff = handoff
        self._standby = False
        self._term = str(uuid.uuid4())
        self._waiters = {}
        self.handed_off = 0
        self._queue_engine = session_factory.kw["bind"]
        self._insert_new = insert_new_statement(self._queue_engine.dialect.name)
        self._notifying = handoff and self._queue_engine.dialect.name == "postgresql"
        if self._notifying:
            self._journal.notify_channel = JOURNAL
        self._listener = None
        self._queue_wake = asyncio.Event()
        self._journal_wake = asyncio.Event()

    # -- life cycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Check the chain id, recover what the journal holds in flight, then start the background tasks."""
        if self._running:
            return
        await self._connect()
        try:
            await self._take_over()
        except BaseException:
            await self._close_resources()
            raise
        self._running = True
        self._start_tasks()

    async def _connect(self) -> None:
        """Open the JSON-RPC connection and the journal's thread, and check the node's chain id."""
        self._rpc = JsonRpcClient(self.rpc_url, timeout=self._rpc_timeout)
        self._rpc_loop = asyncio.get_running_loop()
        self._db_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal")
        try:
            node_chain_id = _hex_int(await self._rpc.call("eth_chainId"))
            if node_chain_id != self.chain_id:
                raise ChainIdMismatch(self.rpc_url, self.chain_id, node_chain_id)
        except BaseException:
            await self._close_resources()
            raise

    async def _take_over(self) -> None:
        """Start following from the chain's head and recover what the journal holds in flight."""
        head = await self._require_rpc().call("eth_getBlockByNumber", "latest", False)
        self._accept_header(head)
        self._followed = _hex_int(head["number"])
        await self._recover()

    def _start_tasks(self) -> None:
        self._tasks += [
            asyncio.create_task(self._journal_writer(), name="pipeline-journal-writer"),
            asyncio.create_task(self._sender(), name="pipeline-sender"),
            asyncio.create_task(self._block_follower(), name="pipeline-block-follower"),
            asyncio.create_task(self._reconciler(), name="pipeline-reconciler"),
        ]
        if self._handoff:
            self._listen()
            self._tasks.append(asyncio.create_task(self._queue_consumer(), name="pipeline-queue-consumer"))

    async def stop(self) -> None:
        """Finish journaling and sending what was submitted, then stop. In-flight operations stay in the journal
        and are picked up by the next ``start``."""
        if not self._running:
            return
        self._running = False
        unsent = [t.sent for t in self._registry.inflight.values() if t.sent is not None and not t.sent.done()]
        if unsent:
            await asyncio.wait(unsent, timeout=self._rpc_timeout * 3)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        # After the reconciler stopped: a batch it was filling when cancelled is back in the queue (not lost).
        try:
            await self._fill_gas_used()
        except (NodeUnavailable, RpcError) as exc:
            logger.info("gas used of %d transactions left unknown: %s", len(self._gas_unknown), exc)
        await self._close_resources()

    async def _close_resources(self) -> None:
        await self._stop_listening()
        if self._lookup_task is not None:
            self._lookup_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._lookup_task
            self._lookup_task = None
        if self._rpc is not None:
            await self._rpc.aclose()
            self._rpc = None
        if self._db_executor is not None:
            self._db_executor.shutdown(wait=True)
            self._db_executor = None

    async def __aenter__(self) -> Pipeline:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        return self._running

    @property
    def in_flight(self) -> int:
        """How many operations are signed and not yet final."""
        return len(self._registry.inflight)

    # -- reading operations -------------------------------------------------------------------------

    def status(self, operation_id: str) -> Operation:
        """The operation as last seen (from memory, else from the journal). Raises :class:`UnknownOperation`."""
        known = self._registry.get(operation_id)
        if known is not None:
            return known.snapshot()
        rows = self._journal.select_operations([operation_id])
        if not rows:
            raise UnknownOperation(operation_id)
        return rows[0].snapshot()

    async def read(self, method: str, *params: Any) -> Any:
        """A read-only JSON-RPC call (``eth_call``) over the pipeline's asynchronous connection to the node,
        from the event loop the pipeline runs on. Raises :class:`PipelineNotRunning` when it is not running or
        is called from another event loop, :class:`RpcError` for an error answer and :class:`NodeUnavailable`
        when the node does not answer."""
        if self._rpc is None or self._rpc_loop is not asyncio.get_running_loop():
            raise PipelineNotRunning("the pipeline's connection is not open on this event loop")
        # The same read asked again while it is on its way shares its answer: a batch's items about one piece
        # read that piece once, not once each. Either answer is the node's latest state when it answered.
        key = (method, repr(params))
        pending = self._reads.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._rpc.call(method, *params))
            self._reads[key] = pending
            pending.add_done_callback(functools.partial(self._read_done, key))
        return await asyncio.shield(pending)  # one caller's cancellation does not cancel the others' read

    def _read_done(self, key: tuple[str, str], done: asyncio.Future[Any]) -> None:
        self._reads.pop(key, None)
        if not done.cancelled():
            done.exception()  # retrieved, even where every caller was cancelled meanwhile

    async def wait(self, operation_id: str, timeout: float | None = None) -> Operation:
        """Wait until the operation is final (confirmed, failed or replaced) or ``timeout`` seconds pass; return
        it either way: a timeout leaves it pending, it does not fail it. Raises :class:`UnknownOperation` when
        neither memory nor the journal knows it."""
        if self._standby:
            return await self._standby_wait(operation_id, timeout)
        tracked = self._registry.get(operation_id)
        if tracked is None:
            if not self._running:
                return self.status(operation_id)
            found = await self._lookup(operation_id)
            if found is None:  # the journal was just asked: asking it again (``status``) would answer the same
                raise UnknownOperation(operation_id)
            tracked = self._registry.remember(found)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if not tracked.status.is_final:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(tracked.done.wait(), remaining)
            if tracked.superseded_by is None:
                return tracked.snapshot()
            tracked = tracked.superseded_by  # it ran out of gas and was signed again: wait for the new attempt
            if deadline is not None and time.monotonic() >= deadline:
                return tracked.snapshot()

    async def sync(self, timeout: float = 30.0) -> int:
        """Return once the block follower has processed the node's current head block (with ``confirmations``,
        the block that many below the head), and that block's number.

        After the node went back (a crash of anvil, a reorg), operations confirmed in the lost blocks still read
        ``confirmed`` until the follower notices; once ``sync`` returns they are back in flight. Raises
        ``TimeoutError`` when the follower has not caught up within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        rpc = self._require_rpc()
        while True:
            if self.confirmations:
                number = _hex_int(await rpc.call("eth_blockNumber")) - self.confirmations
                head = await rpc.call("eth_getBlockByNumber", hex(max(number, 0)), False) if number >= 0 else None
            else:
                head = await rpc.call("eth_getBlockByNumber", "latest", False)
                number = _hex_int(head["number"])
            if head is not None and self._followed == number and self._block_hashes.get(number) == head["hash"]:
                return number
            if time.monotonic() > deadline:
                raise TimeoutError(f"the block follower has not reached block {number} within {timeout:g} s")
            await asyncio.sleep(self.poll_interval)

    async def logs_of(self, operation_id: str, tx_hash: str | None = None) -> list[dict[str, Any]] | None:
        """The logs of the operation's (current) transaction, in log order and in the shape web3 gives
        ``receipt["logs"]`` (see :func:`~ledger.pipeline.rpc.web3_log`).

        A transaction this pipeline confirmed recently has its logs from the block the follower read: nothing is
        fetched. Otherwise (confirmed before a restart, or beyond ``keep_logs``) they come from one
        ``eth_getTransactionReceipt``. None when the node does not hold the transaction (its block was lost).
        ``tx_hash``: the final transaction of the operation, where the caller has it (a final
        :class:`Operation`'s): an operation this process does not hold in memory (a standby process's) is then not
        looked up in the journal again. Raises :class:`UnknownOperation`, and :class:`PipelineNotRunning` when a
        receipt is needed and the pipeline is stopped."""
        tracked = self._registry.get(operation_id)
        if tracked is None and tx_hash is None and self._running:
            tracked = await self._lookup(operation_id)
        if tracked is not None:
            tx_hash = tracked.tx_hash
        elif tx_hash is None:
            tx_hash = self.status(operation_id).tx_hash
        # Kept logs are a confirmed transaction's; the caller's ``tx_hash`` is a final operation's.
        logs = self._registry.logs(tx_hash) if tracked is None or tracked.confirmed else None
        if logs is None:
            receipt = await self._require_rpc().call("eth_getTransactionReceipt", tx_hash)
            if not isinstance(receipt, Mapping):
                return None
            logs = receipt["logs"]
        return [web3_log(log) for log in logs]

    async def _lookup(self, operation_id: str) -> _Tracked | None:
        """Journal look-up of one operation id; concurrent look-ups share one query."""
        future = self._lookups.get(operation_id)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._lookups[operation_id] = future
            if self._lookup_task is None or self._lookup_task.done():
                self._lookup_task = asyncio.create_task(self._flush_lookups())
        return await asyncio.shield(future)

    async def _flush_lookups(self) -> None:
        while self._lookups:
            await asyncio.sleep(0)
            pending, self._lookups = self._lookups, {}
            try:
                rows = await self._db(self._journal.select_operations, list(pending))
            except Exception as exc:
                for future in pending.values():
                    if not future.done():
                        future.set_exception(exc)
                continue
            found = {row.operation_id: row for row in rows}
            for operation_id, future in pending.items():
                if not future.done():
                    future.set_result(found.get(operation_id))
