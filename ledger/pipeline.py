"""The transaction pipeline: the one place that signs and sends the ledger's transactions.

Built for throughput and for never losing or duplicating an operation:

- **Nonces** are assigned per sender by the pipeline itself: read once from the node (``pending`` count, or one
  past the journal's highest nonce, whichever is higher), then incremented locally. Never
  ``eth_getTransactionCount`` under concurrency.
- **Signing** is local (EIP-1559, type 2) with an explicit gas limit (the caller's, or ``eth_estimateGas`` of
  that very call with a margin: never an estimate of another call of the same function, whose cost can differ,
  e.g. by a balance written from zero), ``maxFeePerGas`` from the base fee of the last block seen. The
  transaction hash is computed before anything is sent.
- **Out of gas is not a refusal**: a transaction that ran out of gas (its trace says so, or, where the node does
  not trace, it reverted without data having used all but the 1/64 EIP-150 keeps back) is not the contract's
  answer. Its operation is signed again with a fresh estimate, at least twice the gas, under a new nonce, and
  the spent attempt is kept in the journal as ``<operation id>~oog<n>``; only when the gas cannot grow any more
  does the operation fail, with ``OutOfGas``.
- **Journal first**: every signed transaction is committed to the journal (``ledger.journal``) before it is
  sent. Submissions that arrive together are journaled in one database transaction and sent in one JSON-RPC
  batch; many operations are in flight at once.
- **Receipts per block**: one task follows the chain block by block (checking each block's parent hash),
  matches the block's transactions with those in flight and takes their receipts with one
  ``eth_getBlockReceipts``. A reverted transaction is traced (``debug_traceTransaction``, or failing that
  replayed with ``eth_call`` at the parent block) and its custom error decoded by name.
- **A timeout means "look it up"**, never "failed". A reconciler looks up every transaction that has been in
  flight for a while: one the node does not know is sent again from the journal, in nonce order (same bytes,
  same hash, so it cannot execute twice); one whose nonce the node has already used for something else is
  ``replaced``. When the chain goes back (a reorg, or anvil restarted behind after a crash), the transactions
  of the lost blocks are put back in flight and sent again. This runs at start too, so a restarted service
  finishes what the previous one left.

The pipeline must be the only signer of its senders' accounts: a transaction signed elsewhere with the same
account takes a nonce the pipeline already assigned, and the pipeline's transaction is then ``replaced``.

``naive_send`` at the end is the usual web3 way (sign, send, wait for the receipt, one at a time), kept only
as the benchmarks' baseline.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar, cast

import coincurve
import httpx
from eth_account.signers.local import LocalAccount
from eth_hash.auto import keccak
from eth_utils import to_checksum_address
from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3
from web3.types import TxReceipt

from ledger.errors import ContractRevert, ErrorDecoder, UnknownRevert
from ledger.journal import IN_FLIGHT_STATUSES, JournalTransaction, TransactionKind, TransactionStatus, utc_now
from ledger.node import ChainIdMismatch

logger = logging.getLogger(__name__)

T = TypeVar("T")

_JOURNAL: Final = cast(Table, JournalTransaction.__table__)

INTRINSIC_GAS: Final = 21_000
FILLER_GAS: Final = 21_000
DEFAULT_FALLBACK_GAS: Final = 2_000_000
OUT_OF_GAS: Final = "OutOfGas"
"""``error_name`` of a transaction that ran out of gas (never a contract's error)."""
MAX_GAS_RETRIES: Final = 3
"""How many times an operation that ran out of gas is signed again with more gas."""
REPLACED_AFTER: Final = 5.0
"""Seconds a transaction's nonce must stay used by something else, with the transaction unknown to the node,
before it is given up as ``replaced``."""


# ---------------------------------------------------------------------------------------------------------------
# Exceptions


class PipelineError(Exception):
    """Base of the pipeline's errors."""


class PipelineNotRunning(PipelineError):
    """``submit`` before ``start`` or after ``stop``."""


class UnknownOperation(PipelineError, KeyError):
    """No operation with this id in the journal."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown operation"


class JournalWriteError(PipelineError):
    """The journal could not be written: the transaction was not sent, its nonce is given back."""


class NodeUnavailable(PipelineError):
    """The node did not answer (connection refused, timeout, malformed response)."""


class RpcError(PipelineError):
    """The node answered a JSON-RPC request with an error."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        self.code = code
        self.message = message
        self.data = data
        super().__init__(f"JSON-RPC error {code}: {message}")


# ---------------------------------------------------------------------------------------------------------------
# The public view of an operation


@dataclass(frozen=True)
class Operation:
    """An operation as the pipeline last saw it (a snapshot; ask again for news)."""

    operation_id: str
    sender: str
    nonce: int
    tx_hash: str
    status: TransactionStatus
    to: str | None
    selector: str | None
    gas_limit: int
    kind: TransactionKind = TransactionKind.OPERATION
    block_number: int | None = None
    block_hash: str | None = None
    gas_used: int | None = None
    error_name: str | None = None
    error_args: Mapping[str, Any] | None = None

    @property
    def is_final(self) -> bool:
        return self.status.is_final

    @property
    def confirmed(self) -> bool:
        return self.status is TransactionStatus.CONFIRMED


@dataclass(eq=False)
class _Tracked:
    """The pipeline's working copy of one journaled transaction."""

    operation_id: str
    kind: TransactionKind
    sender: str
    nonce: int
    tx_hash: str
    raw_tx: bytes
    to: str | None
    selector: str | None
    gas_limit: int
    status: TransactionStatus = TransactionStatus.PENDING
    block_number: int | None = None
    block_hash: str | None = None
    gas_used: int | None = None
    error_name: str | None = None
    error_args: dict[str, Any] | None = None
    last_seen: float = 0.0
    """Monotonic time of the last send attempt or of the last time the node was seen to know it."""
    check_now: bool = False
    """Look it up at the next reconciliation whatever ``last_seen`` says."""
    nonce_taken_rounds: int = 0
    """Consecutive look-ups that found the hash unknown and the nonce used: two, ``REPLACED_AFTER`` seconds
    apart at least, make it ``replaced``."""
    nonce_taken_since: float | None = None
    """Monotonic time of the first of those look-ups."""
    lost_block: int | None = None
    """The block it was mined in before the chain went back under it: lost transactions are sent again in the
    order of those blocks, so that one built on another's result (a confirmation of a registered invoice) does
    not reach the node before it."""
    finalizing: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)
    sent: asyncio.Future[None] | None = None
    gas_retries: int = 0
    """How many earlier attempts of this operation ran out of gas."""
    supersedes: _Supersession | None = None
    """The attempt that ran out of gas, which the journal writer closes when it journals this one."""
    superseded_by: _Tracked | None = None
    """The attempt that took over this operation after this one ran out of gas: waiters follow it."""

    def snapshot(self) -> Operation:
        return Operation(
            operation_id=self.operation_id,
            sender=self.sender,
            nonce=self.nonce,
            tx_hash=self.tx_hash,
            status=self.status,
            to=self.to,
            selector=self.selector,
            gas_limit=self.gas_limit,
            kind=self.kind,
            block_number=self.block_number,
            block_hash=self.block_hash,
            gas_used=self.gas_used,
            error_name=self.error_name,
            error_args=self.error_args,
        )

    def row(self) -> dict[str, Any]:
        now = utc_now()
        return {
            "operation_id": self.operation_id,
            "kind": self.kind,
            "sender": self.sender,
            "nonce": self.nonce,
            "tx_hash": self.tx_hash,
            "raw_tx": self.raw_tx,
            "to": self.to,
            "selector": self.selector,
            "gas_limit": self.gas_limit,
            "status": self.status,
            "superseded": False,
            "created_at": now,
            "updated_at": now,
        }

    @classmethod
    def from_row(cls, row: JournalTransaction) -> _Tracked:
        return cls(
            operation_id=row.operation_id,
            kind=row.kind,
            sender=row.sender,
            nonce=row.nonce,
            tx_hash=row.tx_hash,
            raw_tx=row.raw_tx,
            to=row.to,
            selector=row.selector,
            gas_limit=row.gas_limit,
            status=row.status,
            block_number=row.block_number,
            block_hash=row.block_hash,
            gas_used=row.gas_used,
            error_name=row.error_name,
            error_args=row.error_args,
        )


@dataclass(frozen=True)
class _Supersession:
    """An attempt that ran out of gas, renamed in the journal in the transaction that journals its successor."""

    tracked: _Tracked
    renamed: str
    """``<operation id>~oog<n>``: the operation id stays with the new attempt."""
    block_number: int
    block_hash: str
    gas_used: int


def _attempt_id(operation_id: str, retry: int) -> str:
    return f"{operation_id}~oog{retry}"


def _is_spent_attempt(operation_id: str) -> bool:
    return "~oog" in operation_id


@dataclass(frozen=True)
class _Outcome:
    """How a transaction finished."""

    tracked: _Tracked
    status: TransactionStatus
    block_number: int | None = None
    block_hash: str | None = None
    gas_used: int | None = None
    error_name: str | None = None
    error_args: dict[str, Any] | None = None


# ---------------------------------------------------------------------------------------------------------------
# Local signing of EIP-1559 transactions
#
# eth_account's ``sign_transaction`` validates and normalises a dictionary through several layers and takes
# about 1 ms; encoding the nine fields directly and signing with libsecp256k1 (coincurve) takes about 70 µs,
# which matters at a thousand transactions a second. The test suite checks byte equality with eth_account.


def _rlp_length_prefix(length: int, offset: int) -> bytes:
    if length < 56:
        return bytes((offset + length,))
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((offset + 55 + len(encoded),)) + encoded


def _rlp_bytes(value: bytes) -> bytes:
    if len(value) == 1 and value[0] < 0x80:
        return value
    return _rlp_length_prefix(len(value), 0x80) + value


def _rlp_int(value: int) -> bytes:
    if value < 0:
        raise ValueError("RLP integers are unsigned")
    if value == 0:
        return b"\x80"
    return _rlp_bytes(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def _rlp_list(encoded_items: Iterable[bytes]) -> bytes:
    body = b"".join(encoded_items)
    return _rlp_length_prefix(len(body), 0xC0) + body


_EMPTY_ACCESS_LIST: Final = b"\xc0"


def sign_dynamic_fee_transaction(
    key: coincurve.PrivateKey,
    *,
    chain_id: int,
    nonce: int,
    max_priority_fee_per_gas: int,
    max_fee_per_gas: int,
    gas: int,
    to: bytes | None,
    value: int,
    data: bytes,
) -> tuple[bytes, bytes]:
    """Sign an EIP-1559 transaction with an empty access list; return the raw envelope and its hash."""
    fields = [
        _rlp_int(chain_id),
        _rlp_int(nonce),
        _rlp_int(max_priority_fee_per_gas),
        _rlp_int(max_fee_per_gas),
        _rlp_int(gas),
        _rlp_bytes(to or b""),
        _rlp_int(value),
        _rlp_bytes(data),
        _EMPTY_ACCESS_LIST,
    ]
    signature = key.sign_recoverable(keccak(b"\x02" + _rlp_list(fields)), hasher=None)
    fields.append(_rlp_int(signature[64]))
    fields.append(_rlp_int(int.from_bytes(signature[:32], "big")))
    fields.append(_rlp_int(int.from_bytes(signature[32:64], "big")))
    raw = b"\x02" + _rlp_list(fields)
    return raw, keccak(raw)


def decode_dynamic_fee_transaction(raw: bytes) -> dict[str, Any]:
    """The fields of a signed type-2 transaction (for replaying it as a call)."""
    import rlp  # type: ignore[import-untyped]  # local: only needed to replay a revert

    if raw[:1] != b"\x02":
        raise ValueError("not an EIP-1559 transaction")
    items = rlp.decode(raw[1:])
    chain_id, nonce, tip, fee_cap, gas, to, value, data = items[:8]
    return {
        "chain_id": int.from_bytes(chain_id, "big"),
        "nonce": int.from_bytes(nonce, "big"),
        "max_priority_fee_per_gas": int.from_bytes(tip, "big"),
        "max_fee_per_gas": int.from_bytes(fee_cap, "big"),
        "gas": int.from_bytes(gas, "big"),
        "to": to_checksum_address(to) if to else None,
        "value": int.from_bytes(value, "big"),
        "data": bytes(data),
    }


# ---------------------------------------------------------------------------------------------------------------
# JSON-RPC over one pooled keep-alive HTTP client


class JsonRpcClient:
    """Minimal asynchronous JSON-RPC 2.0 client with batches (web3's provider stack costs more than the
    calls themselves at these rates)."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url
        self._client = httpx.AsyncClient(
            timeout=timeout,
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=16),
            headers={"content-type": "application/json"},
        )
        self._ids = itertools.count(1)

    async def _post(self, payload: Any) -> Any:
        try:
            response = await self._client.post(self.url, content=json.dumps(payload, separators=(",", ":")))
        except httpx.TransportError as exc:
            raise NodeUnavailable(f"{self.url}: {exc!r}") from exc
        if response.status_code != 200:
            raise NodeUnavailable(f"{self.url}: HTTP {response.status_code}")
        try:
            return json.loads(response.content)
        except ValueError as exc:
            raise NodeUnavailable(f"{self.url}: malformed JSON-RPC response") from exc

    @staticmethod
    def _outcome(message: Mapping[str, Any]) -> Any:
        error = message.get("error")
        if error is not None:
            return RpcError(int(error.get("code", 0)), str(error.get("message", "")), error.get("data"))
        return message.get("result")

    async def call(self, method: str, *params: Any) -> Any:
        """One request; raises :class:`RpcError` for an error answer."""
        answer = await self._post({"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params})
        if not isinstance(answer, Mapping):
            raise NodeUnavailable(f"{self.url}: unexpected answer to {method}")
        outcome = self._outcome(answer)
        if isinstance(outcome, RpcError):
            raise outcome
        return outcome

    async def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """A JSON-RPC batch: one result per call, in order, an :class:`RpcError` instance where it failed."""
        if not calls:
            return []
        first = next(self._ids)
        ids = range(first, first + len(calls))
        self._ids = itertools.count(first + len(calls))
        payload = [
            {"jsonrpc": "2.0", "id": i, "method": method, "params": list(params)}
            for i, (method, params) in zip(ids, calls, strict=True)
        ]
        answer = await self._post(payload)
        if isinstance(answer, Mapping):  # a node that refuses batches answers with a single error
            outcome = self._outcome(answer)
            raise outcome if isinstance(outcome, RpcError) else NodeUnavailable("batch answered with one object")
        by_id = {message.get("id"): message for message in answer if isinstance(message, Mapping)}
        results: list[Any] = []
        for i in ids:
            message = by_id.get(i)
            results.append(RpcError(-32603, "no answer in batch") if message is None else self._outcome(message))
        return results

    async def aclose(self) -> None:
        await self._client.aclose()


# Error messages of eth_sendRawTransaction, as geth, Besu, Nethermind and anvil word them.
_ALREADY_KNOWN = ("already known", "already imported", "known transaction", "already in pool", "alreadyknown")
_NONCE_TOO_LOW = ("nonce too low", "nonce_too_low", "oldnonce", "nonce is too low")
_TRANSIENT = (
    "insufficient funds",
    "underpriced",
    "fee cap",
    "base fee",
    "basefee",
    "pool",
    "limit reached",
    "too many",
    "timeout",
    "busy",
    "try again",
    "upfront cost",
)


def _classify_send_error(message: str) -> str:
    text = message.lower()
    if any(marker in text for marker in _ALREADY_KNOWN):
        return "known"
    if any(marker in text for marker in _NONCE_TOO_LOW):
        return "nonce-too-low"
    if any(marker in text for marker in _TRANSIENT):
        return "transient"
    return "rejected"


def _jsonable(value: Any) -> Any:
    """Decoded error arguments as JSON: bytes as ``0x`` hex, addresses checksummed, tuples as lists."""
    if isinstance(value, str) and len(value) == 42 and value.startswith("0x"):
        try:
            return to_checksum_address(value)
        except ValueError:
            return value
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _trace_ran_out_of_gas(trace: Any) -> bool:
    """Whether a ``callTracer`` trace has a frame that ran out of gas (the top call or any inner one: an inner call
    out of gas makes its caller revert without data)."""
    if not isinstance(trace, Mapping):
        return False
    error = str(trace.get("error") or "").lower().replace(" ", "")
    if "outofgas" in error:
        return True
    return any(_trace_ran_out_of_gas(frame) for frame in trace.get("calls") or ())


def _looks_out_of_gas(revert: ContractRevert, gas_used: int, gas_limit: int) -> bool:
    """Without a trace: a revert with no data (no contract error says nothing) that used all the gas but the 1/64
    EIP-150 keeps back for the caller of an inner call."""
    return isinstance(revert, UnknownRevert) and not revert.data and gas_used * 64 >= gas_limit * 63


def _call(sender: str, to: str | None, data: bytes, value: int) -> dict[str, str]:
    """The JSON-RPC call object of ``eth_call`` and ``eth_estimateGas``."""
    call = {"from": sender, "data": "0x" + data.hex(), "value": hex(value)}
    if to is not None:
        call["to"] = to
    return call


def _hex_int(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) else int(value)


# ---------------------------------------------------------------------------------------------------------------
# The pipeline


class Pipeline:
    """Signs, journals, sends and follows the ledger's transactions. Use from one asyncio event loop.

    ``session_factory`` opens sessions on the database holding ``journal_transactions``; ``decoder`` turns revert
    data into the contracts' named errors. ``confirmations``: how many blocks must be on top of a transaction's
    block before its operation is reported confirmed (or failed). 0 suits a chain with immediate finality (Besu
    QBFT). On the local anvil, whose ``kill -9`` loses the blocks since its last consistent state dump (one to
    three, typically), a few make a reported confirmation survive such a crash, at that many block times of
    latency.
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
        confirmations: int = 0,
        signer: Callable[[str], LocalAccount] | None = None,
    ) -> None:
        if base_fee_multiplier < 1:
            raise ValueError("base_fee_multiplier must be at least 1")
        if confirmations < 0:
            raise ValueError("confirmations must not be negative")
        self.rpc_url = rpc_url
        self.chain_id = chain_id
        self.max_priority_fee_per_gas = max_priority_fee_per_gas
        self.base_fee_multiplier = base_fee_multiplier
        self.gas_margin_percent = gas_margin_percent
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
        self._sessions = session_factory
        self._decoder = decoder
        self._rpc_timeout = rpc_timeout
        self._rpc: JsonRpcClient | None = None
        self._db_executor: ThreadPoolExecutor | None = None
        self._running = False
        self._tasks: list[asyncio.Task[None]] = []

        self._inflight: dict[str, _Tracked] = {}  # operation id → tracked, not final
        self._by_hash: dict[str, _Tracked] = {}  # tx hash → tracked, not final
        self._final: OrderedDict[str, _Tracked] = OrderedDict()  # recently finished, bounded
        self._claims: dict[str, asyncio.Future[Operation | None]] = {}
        self._lookups: dict[str, asyncio.Future[_Tracked | None]] = {}
        self._lookup_task: asyncio.Task[None] | None = None

        self._next_nonce: dict[str, int] = {}
        self._nonce_locks: dict[str, asyncio.Lock] = {}
        self._keys: dict[str, coincurve.PrivateKey] = {}
        self._signer = signer
        self._checksummed: dict[str, str] = {}

        self._journal_queue: asyncio.Queue[_Tracked] = asyncio.Queue()
        self._send_queue: asyncio.Queue[list[_Tracked]] = asyncio.Queue()
        self._reconcile_soon = asyncio.Event()

        self._followed: int = -1  # last block processed by the follower
        self._block_hashes: dict[int, str] = {}
        self._base_fee: int = 0
        self._block_gas_limit: int | None = None
        self._trace_supported = True
        self._gas_unknown: deque[_Tracked] = deque()

    # -- life cycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Check the chain id, recover what the journal holds in flight, then start the background tasks."""
        if self._running:
            return
        self._rpc = JsonRpcClient(self.rpc_url, timeout=self._rpc_timeout)
        self._db_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal")
        try:
            node_chain_id = _hex_int(await self._rpc.call("eth_chainId"))
            if node_chain_id != self.chain_id:
                raise ChainIdMismatch(self.rpc_url, self.chain_id, node_chain_id)
            head = await self._rpc.call("eth_getBlockByNumber", "latest", False)
            self._accept_header(head)
            self._followed = _hex_int(head["number"])
            await self._recover()
        except BaseException:
            await self._close_resources()
            raise
        self._running = True
        self._tasks = [
            asyncio.create_task(self._journal_writer(), name="pipeline-journal-writer"),
            asyncio.create_task(self._sender(), name="pipeline-sender"),
            asyncio.create_task(self._block_follower(), name="pipeline-block-follower"),
            asyncio.create_task(self._reconciler(), name="pipeline-reconciler"),
        ]

    async def stop(self) -> None:
        """Finish journaling and sending what was submitted, then stop. In-flight operations stay in the journal
        and are picked up by the next ``start``."""
        if not self._running:
            return
        self._running = False
        unsent = [t.sent for t in self._inflight.values() if t.sent is not None and not t.sent.done()]
        if unsent:
            await asyncio.wait(unsent, timeout=self._rpc_timeout * 3)
        try:
            await self._fill_gas_used()
        except (NodeUnavailable, RpcError) as exc:
            logger.info("gas used of %d transactions left unknown: %s", len(self._gas_unknown), exc)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self._close_resources()

    async def _close_resources(self) -> None:
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
        return len(self._inflight)

    # -- submitting ---------------------------------------------------------------------------------

    async def submit(
        self,
        sender: LocalAccount,
        to: str | None,
        data: bytes,
        gas: int | None = None,
        operation_id: str | None = None,
        *,
        value: int = 0,
    ) -> Operation:
        """Sign, journal and send a call of ``to`` with ``data`` from ``sender``; return at once (pending).

        ``gas`` None: ``eth_estimateGas`` of this call, plus ``gas_margin_percent`` (see :meth:`preflight`, which
        pre-flights and estimates in one round trip).
        ``operation_id`` is the idempotency key: submitting an id again returns the journaled operation and
        sends nothing. Raises :class:`JournalWriteError` when the journal cannot be written (nothing is sent
        then) and :class:`NodeUnavailable` when a gas estimate or the first nonce cannot be read.
        """
        if not self._running:
            raise PipelineNotRunning("the pipeline is not running")
        if value < 0:
            raise ValueError("value must not be negative")
        if gas is not None:
            self._check_gas(gas)
        if operation_id is None:
            return await self._submit_new(sender, to, data, gas, str(uuid.uuid4()), value)
        known = self._inflight.get(operation_id) or self._final.get(operation_id)
        if known is not None:
            return known.snapshot()
        claim = self._claims.get(operation_id)
        if claim is not None:
            existing = await asyncio.shield(claim)
            if existing is None:
                raise PipelineError(f"the first submission of operation {operation_id} failed")
            return existing
        claim = asyncio.get_running_loop().create_future()
        self._claims[operation_id] = claim
        try:
            journaled = await self._lookup(operation_id)
            if journaled is not None:
                self._remember(journaled)
                result = journaled.snapshot()
            else:
                result = await self._submit_new(sender, to, data, gas, operation_id, value)
        except BaseException:
            claim.set_result(None)
            raise
        finally:
            self._claims.pop(operation_id, None)
        claim.set_result(result)
        return result

    async def _submit_new(
        self, sender: LocalAccount, to: str | None, data: bytes, gas: int | None, operation_id: str, value: int
    ) -> Operation:
        address = self._checksum(str(sender.address))
        target = None if to is None else self._checksum(to)
        if gas is None:
            gas = await self._gas_for(address, target, data, value)
        await self._ensure_nonce(address)
        # From here to the queue there is no await: nonces are assigned and queued in the same order.
        nonce = self._next_nonce[address]
        self._next_nonce[address] = nonce + 1
        tracked = self._sign(sender, address, nonce, target, data, gas, value, operation_id, TransactionKind.OPERATION)
        self._inflight[operation_id] = tracked
        self._by_hash[tracked.tx_hash] = tracked
        self._journal_queue.put_nowait(tracked)
        assert tracked.sent is not None
        await asyncio.shield(tracked.sent)
        return tracked.snapshot()

    def _sign(
        self,
        account: LocalAccount | None,
        address: str,
        nonce: int,
        to: str | None,
        data: bytes,
        gas: int,
        value: int,
        operation_id: str,
        kind: TransactionKind,
    ) -> _Tracked:
        key = self._keys.get(address)
        if key is None and account is not None:
            key = coincurve.PrivateKey(bytes(account.key))
            self._keys[address] = key
        elif key is None and self._has_key(address):
            key = self._keys[address]
        if key is None:
            raise PipelineError(f"no key for {address}")
        max_fee = self._base_fee * self.base_fee_multiplier + self.max_priority_fee_per_gas
        raw, tx_hash = sign_dynamic_fee_transaction(
            key,
            chain_id=self.chain_id,
            nonce=nonce,
            max_priority_fee_per_gas=self.max_priority_fee_per_gas,
            max_fee_per_gas=max_fee,
            gas=gas,
            to=bytes.fromhex(to[2:]) if to is not None else None,
            value=value,
            data=data,
        )
        return _Tracked(
            operation_id=operation_id,
            kind=kind,
            sender=address,
            nonce=nonce,
            tx_hash="0x" + tx_hash.hex(),
            raw_tx=raw,
            to=to,
            selector="0x" + data[:4].hex() if len(data) >= 4 else None,
            gas_limit=gas,
            sent=asyncio.get_running_loop().create_future(),
        )

    def _has_key(self, address: str) -> bool:
        """Whether the pipeline can sign for ``address`` without a caller handing it the account: a key it used
        before, or one the ``signer`` given at construction provides (after a restart, for re-signing)."""
        if address in self._keys:
            return True
        if self._signer is None:
            return False
        try:
            account = self._signer(address)
        except Exception:  # no such key in the keystore
            return False
        self._keys[address] = coincurve.PrivateKey(bytes(account.key))
        return True

    def _checksum(self, address: str) -> str:
        known = self._checksummed.get(address)
        if known is None:
            known = to_checksum_address(address)
            self._checksummed[address] = known
        return known

    def _check_gas(self, gas: int) -> None:
        if gas < INTRINSIC_GAS:
            raise ValueError(f"gas {gas} is below the intrinsic {INTRINSIC_GAS}")
        if self._block_gas_limit is not None and gas > self._block_gas_limit:
            raise ValueError(f"gas {gas} exceeds the block gas limit {self._block_gas_limit}")

    def _with_margin(self, estimate: int) -> int:
        gas = estimate * (100 + self.gas_margin_percent) // 100
        return gas if self._block_gas_limit is None else min(gas, self._block_gas_limit)

    async def _gas_for(self, sender: str, to: str | None, data: bytes, value: int) -> int:
        """``eth_estimateGas`` of this very call, with the margin (a call that would revert now gets the fallback
        gas: it is sent anyway, so that its failure is on record)."""
        try:
            estimated = _hex_int(await self._require_rpc().call("eth_estimateGas", _call(sender, to, data, value)))
        except RpcError as exc:
            logger.info("gas estimate of %s on %s reverts (%s); using the fallback gas", data[:4].hex(), to, exc)
            return self.fallback_gas
        return self._with_margin(estimated)

    async def preflight(self, sender: str, to: str, data: bytes, value: int = 0) -> int:
        """Pre-flight a call and estimate its gas in one JSON-RPC batch (``eth_call`` and ``eth_estimateGas`` on the
        latest block); return the gas limit to submit it with (the estimate plus ``gas_margin_percent``).

        Raises :class:`RpcError` when the call reverts (the revert data in ``data``, as :meth:`call`) and
        :class:`NodeUnavailable` when the node does not answer."""
        call = _call(sender, to, data, value)
        result, estimate = await self._require_rpc().batch(
            [("eth_call", [call, "latest"]), ("eth_estimateGas", [call])]
        )
        if isinstance(result, RpcError):
            raise result
        if isinstance(estimate, RpcError):  # the call passed a moment ago: estimate once more, alone
            return await self._gas_for(sender, to, data, value)
        return self._with_margin(_hex_int(estimate))

    async def _ensure_nonce(self, address: str) -> None:
        if address in self._next_nonce:
            return
        lock = self._nonce_locks.setdefault(address, asyncio.Lock())
        async with lock:
            if address in self._next_nonce:
                return
            node_next = _hex_int(await self._require_rpc().call("eth_getTransactionCount", address, "pending"))
            journal_max = await self._db(self._max_journaled_nonce, address)
            journal_next = -1 if journal_max is None else journal_max + 1
            self._next_nonce[address] = max(node_next, journal_next)

    # -- reading operations -------------------------------------------------------------------------

    def status(self, operation_id: str) -> Operation:
        """The operation as last seen (from memory, else from the journal). Raises :class:`UnknownOperation`."""
        known = self._inflight.get(operation_id) or self._final.get(operation_id)
        if known is not None:
            return known.snapshot()
        rows = self._select_operations([operation_id])
        if not rows:
            raise UnknownOperation(operation_id)
        return rows[0].snapshot()

    async def wait(self, operation_id: str, timeout: float | None = None) -> Operation:
        """Wait until the operation is final (confirmed, failed or replaced) or ``timeout`` seconds pass; return
        it either way: a timeout leaves it pending, it does not fail it."""
        tracked = self._inflight.get(operation_id) or self._final.get(operation_id)
        if tracked is None:
            found = await self._lookup(operation_id) if self._running else None
            if found is None:
                return self.status(operation_id)
            tracked = self._remember(found)
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

    def _remember(self, tracked: _Tracked) -> _Tracked:
        """Track a transaction read from the journal (in flight ones are already tracked since ``start``)."""
        current = self._inflight.get(tracked.operation_id) or self._final.get(tracked.operation_id)
        if current is not None:
            return current
        if tracked.status.is_final:
            tracked.done.set()
            self._keep_final(tracked)
        return tracked

    def _keep_final(self, tracked: _Tracked) -> None:
        self._final[tracked.operation_id] = tracked
        while len(self._final) > self.keep_final:
            self._final.popitem(last=False)

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
                rows = await self._db(self._select_operations, list(pending))
            except Exception as exc:
                for future in pending.values():
                    if not future.done():
                        future.set_exception(exc)
                continue
            found = {row.operation_id: row for row in rows}
            for operation_id, future in pending.items():
                if not future.done():
                    future.set_result(found.get(operation_id))

    # -- journal writer and sender ------------------------------------------------------------------

    async def _journal_writer(self) -> None:
        """Commit queued transactions to the journal, a batch per database transaction, then hand them over to
        the sender."""
        while True:
            batch = [await self._journal_queue.get()]
            while len(batch) < self.max_batch and not self._journal_queue.empty():
                batch.append(self._journal_queue.get_nowait())
            try:
                supersessions = [tracked.supersedes for tracked in batch if tracked.supersedes is not None]
                await self._db(self._insert_rows, [tracked.row() for tracked in batch], supersessions)
            except Exception as exc:
                logger.exception("journal write failed; %d transactions not sent", len(batch))
                self._abandon_unjournaled(batch, exc)
                continue
            self._send_queue.put_nowait(batch)

    def _abandon_unjournaled(self, batch: list[_Tracked], exc: Exception) -> None:
        """Drop every signed transaction that is not journaled (this batch and all queued after it) and give their
        nonces back: the next submission of each sender reads its nonce afresh."""
        stranded = list(batch)
        while not self._journal_queue.empty():
            stranded.append(self._journal_queue.get_nowait())
        for tracked in stranded:
            self._inflight.pop(tracked.operation_id, None)
            self._by_hash.pop(tracked.tx_hash, None)
            self._next_nonce.pop(tracked.sender, None)
            if tracked.supersedes is not None:  # the spent attempt is still the operation's: look it up again
                spent = tracked.supersedes.tracked
                spent.superseded_by, spent.finalizing, spent.check_now = None, False, True
                spent.status, spent.error_name, spent.error_args = TransactionStatus.SENT, None, None
                spent.done = asyncio.Event()
                self._inflight[spent.operation_id] = spent
                self._by_hash[spent.tx_hash] = spent
            if tracked.sent is not None and not tracked.sent.done():
                tracked.sent.set_exception(JournalWriteError(f"journal write failed: {exc!r}"))
                tracked.sent.exception()  # retrieved here; the submitter re-raises it

    async def _sender(self) -> None:
        """Send journaled transactions in JSON-RPC batches of ``send_batch``, ``send_concurrency`` batches at a
        time (anvil accepts transactions fastest that way; one arriving before a lower nonce of the same sender
        simply waits in the node's queue for it)."""
        slots = asyncio.Semaphore(self.send_concurrency)
        sending: set[asyncio.Task[None]] = set()
        while True:
            batch = await self._send_queue.get()
            while len(batch) < self.send_batch and not self._send_queue.empty():
                batch.extend(self._send_queue.get_nowait())
            for start in range(0, len(batch), self.send_batch):
                await slots.acquire()
                task = asyncio.create_task(self._send_chunk(batch[start : start + self.send_batch], slots))
                sending.add(task)
                task.add_done_callback(sending.discard)

    async def _send_chunk(self, chunk: list[_Tracked], slots: asyncio.Semaphore) -> None:
        try:
            await self._send(chunk)
        except Exception:
            logger.exception("sending %d transactions failed; the reconciler will retry", len(chunk))
        finally:
            slots.release()
            for tracked in chunk:
                if tracked.sent is not None and not tracked.sent.done():
                    tracked.sent.set_result(None)

    async def _send(self, batch: Sequence[_Tracked]) -> None:
        """Send journaled transactions in one JSON-RPC batch and sort the answers."""
        calls = [("eth_sendRawTransaction", ["0x" + tracked.raw_tx.hex()]) for tracked in batch]
        now = time.monotonic()
        for tracked in batch:
            tracked.last_seen = now
        try:
            answers = await self._require_rpc().batch(calls)
        except (NodeUnavailable, RpcError) as exc:
            logger.warning("could not send %d transactions (%s); they stay pending", len(batch), exc)
            return
        accepted: list[_Tracked] = []
        rejected: list[tuple[_Tracked, str]] = []
        for tracked, answer in zip(batch, answers, strict=True):
            if not isinstance(answer, RpcError):
                accepted.append(tracked)
                continue
            verdict = _classify_send_error(answer.message)
            if verdict == "known":
                accepted.append(tracked)
            elif verdict == "nonce-too-low":  # mined already (a re-send) or taken: look it up
                tracked.check_now = True
                self._reconcile_soon.set()
            elif verdict == "transient":
                logger.info("node refused %s for now: %s", tracked.tx_hash, answer.message)
            else:
                rejected.append((tracked, answer.message))
        newly_sent = [t for t in accepted if t.status is TransactionStatus.PENDING]
        for tracked in newly_sent:
            tracked.status = TransactionStatus.SENT
        if newly_sent:
            await self._db(self._mark_sent, [t.tx_hash for t in newly_sent])
        for tracked, message in rejected:
            await self._reject(tracked, message)

    async def _reject(self, tracked: _Tracked, message: str) -> None:
        """The node refused a transaction for good: fail its operation and fill its nonce with a no-op transfer
        so that the sender's later transactions are not stuck behind a gap."""
        if tracked.status.is_final or tracked.finalizing:
            return
        logger.error("node rejected %s of %s: %s", tracked.tx_hash, tracked.operation_id, message)
        await self._finalize(
            [
                _Outcome(
                    tracked, TransactionStatus.FAILED, error_name="TransactionRejected", error_args={"message": message}
                )
            ],
            superseded=True,
        )
        if tracked.kind is TransactionKind.NONCE_FILLER:
            logger.error(
                "nonce filler %s rejected: nonce %d of %s stays open", tracked.tx_hash, tracked.nonce, tracked.sender
            )
            return
        filler = self._sign(
            None,
            tracked.sender,
            tracked.nonce,
            tracked.sender,
            b"",
            FILLER_GAS,
            0,
            f"nonce-filler:{tracked.sender}:{tracked.nonce}:{tracked.tx_hash[2:18]}",
            TransactionKind.NONCE_FILLER,
        )
        self._inflight[filler.operation_id] = filler
        self._by_hash[filler.tx_hash] = filler
        self._journal_queue.put_nowait(filler)

    # -- following the chain ------------------------------------------------------------------------

    def _accept_header(self, header: Mapping[str, Any]) -> None:
        number = _hex_int(header["number"])
        self._block_hashes[number] = str(header["hash"])
        for old in [n for n in self._block_hashes if n <= number - self.block_window]:
            del self._block_hashes[old]
        base_fee = header.get("baseFeePerGas")
        self._base_fee = _hex_int(base_fee) if base_fee is not None else 0
        self._block_gas_limit = _hex_int(header["gasLimit"])

    async def _block_follower(self) -> None:
        failures = 0
        while True:
            try:
                await self._follow()
                failures = 0
            except (NodeUnavailable, RpcError) as exc:
                failures += 1
                if failures in (1, 10) or failures % 100 == 0:
                    logger.warning("following blocks: %s (attempt %d)", exc, failures)
            except Exception:
                logger.exception("following blocks failed")
            await asyncio.sleep(self.poll_interval)

    async def _follow(self) -> None:
        rpc = self._require_rpc()
        head = _hex_int(await rpc.call("eth_blockNumber"))
        if head < self._followed:
            await self._rewind(head)
            return
        settled = head - self.confirmations
        if settled <= self._followed:
            return
        numbers = range(self._followed + 1, min(settled, self._followed + 32) + 1)
        headers = await rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
        for number, header in zip(numbers, headers, strict=True):
            if isinstance(header, RpcError) or header is None:
                return  # try again at the next poll
            expected_parent = self._block_hashes.get(number - 1)
            if expected_parent is not None and header["parentHash"] != expected_parent:
                await self._rewind(number - 1)
                return
            ours = [self._by_hash[h] for h in header["transactions"] if h in self._by_hash]
            if ours and not await self._collect_receipts(header, ours):
                return
            self._accept_header(header)
            self._followed = number

    async def _collect_receipts(self, header: Mapping[str, Any], ours: list[_Tracked]) -> bool:
        """Finalize our transactions mined in ``header``'s block; False when the block changed meanwhile.

        Receipts are expensive on anvil (about 0.5 ms of its time each, as much as accepting the transaction in
        the first place), logs are cheap. A transaction that emitted a log succeeded (a reverted one emits none,
        and every state change of the ledger's contracts emits an event): it is confirmed from the block's logs,
        and its gas used is filled in later, while the pipeline is idle. Only transactions without logs (reverted,
        or successful calls that emit nothing) have their receipt fetched at once.
        """
        rpc = self._require_rpc()
        block_hash = str(header["hash"])
        logs = await rpc.call("eth_getLogs", {"blockHash": block_hash})
        logged = {str(log["transactionHash"]) for log in logs if log.get("blockHash") == block_hash}
        confirmed = [t for t in ours if t.tx_hash in logged]
        unlogged = [t for t in ours if t.tx_hash not in logged]
        receipts = await rpc.batch([("eth_getTransactionReceipt", [t.tx_hash]) for t in unlogged])
        if any(not isinstance(r, Mapping) or r.get("blockHash") != block_hash for r in receipts):
            return False
        number = _hex_int(header["number"])
        await self._finalize([_Outcome(t, TransactionStatus.CONFIRMED, number, block_hash) for t in confirmed])
        self._gas_unknown.extend(confirmed)
        await self._finalize_mined(list(zip(unlogged, receipts, strict=True)))
        return True

    async def _fill_gas_used(self) -> None:
        """Fetch the receipts of confirmed transactions whose gas used is not known yet, a batch at a time,
        while nothing is in flight (receipts compete with new transactions for the node's time)."""
        while self._gas_unknown and not self._inflight:
            batch = [self._gas_unknown.popleft() for _ in range(min(500, len(self._gas_unknown)))]
            batch = [t for t in batch if t.status is TransactionStatus.CONFIRMED and t.gas_used is None]
            if not batch:
                continue
            receipts = await self._require_rpc().batch([("eth_getTransactionReceipt", [t.tx_hash]) for t in batch])
            filled = [
                (t, _hex_int(r["gasUsed"]))
                for t, r in zip(batch, receipts, strict=True)
                if isinstance(r, Mapping) and r.get("blockHash") == t.block_hash
            ]
            await self._db(self._write_gas_used, [(t.tx_hash, gas) for t, gas in filled])
            for tracked, gas in filled:
                tracked.gas_used = gas

    async def _finalize_mined(self, mined: Sequence[tuple[_Tracked, Mapping[str, Any]]]) -> None:
        outcomes: list[_Outcome] = []
        for tracked, receipt in mined:
            if tracked.status.is_final or tracked.finalizing:
                continue
            block_number = _hex_int(receipt["blockNumber"])
            gas_used = _hex_int(receipt["gasUsed"])
            if _hex_int(receipt["status"]) == 1:
                outcomes.append(
                    _Outcome(tracked, TransactionStatus.CONFIRMED, block_number, receipt["blockHash"], gas_used)
                )
            else:
                revert, out_of_gas = await self._revert_of(tracked, block_number)
                if out_of_gas or _looks_out_of_gas(revert, gas_used, tracked.gas_limit):
                    if await self._retry_with_more_gas(tracked, block_number, str(receipt["blockHash"]), gas_used):
                        continue
                    name, arguments = OUT_OF_GAS, {"gas_limit": tracked.gas_limit, "gas_used": gas_used}
                else:
                    name, arguments = revert.name, _jsonable(revert.arguments)
                outcomes.append(
                    _Outcome(
                        tracked, TransactionStatus.FAILED, block_number, receipt["blockHash"], gas_used, name, arguments
                    )
                )
        await self._finalize(outcomes)

    async def _retry_with_more_gas(self, tracked: _Tracked, block_number: int, block_hash: str, gas_used: int) -> bool:
        """Sign ``tracked``'s operation again, with a fresh estimate and at least twice the gas, under a new nonce;
        False when it cannot be (not an operation, the gas at the block's limit, retries used up, no key)."""
        cap = self._block_gas_limit or self.fallback_gas
        if (
            tracked.kind is not TransactionKind.OPERATION
            or _is_spent_attempt(tracked.operation_id)
            or tracked.gas_retries >= MAX_GAS_RETRIES
            or tracked.gas_limit >= cap
            or not self._has_key(tracked.sender)
        ):
            return False
        fields = decode_dynamic_fee_transaction(tracked.raw_tx)
        to = None if fields["to"] is None else self._checksum(str(fields["to"]))
        data, value = bytes(fields["data"]), int(fields["value"])
        try:
            estimate = self._with_margin(
                _hex_int(await self._require_rpc().call("eth_estimateGas", _call(tracked.sender, to, data, value)))
            )
        except RpcError:  # it would revert now: send it with more gas anyway, so that the refusal is on record
            estimate = 0
        gas = min(cap, max(estimate, tracked.gas_limit * 2))
        await self._ensure_nonce(tracked.sender)
        if tracked.status.is_final or tracked.finalizing or tracked.superseded_by is not None:
            return True  # settled meanwhile (another look-up finalized it)
        nonce = self._next_nonce[tracked.sender]
        self._next_nonce[tracked.sender] = nonce + 1
        retry = self._sign(
            None, tracked.sender, nonce, to, data, gas, value, tracked.operation_id, TransactionKind.OPERATION
        )
        retry.gas_retries = tracked.gas_retries + 1
        retry.supersedes = _Supersession(
            tracked, _attempt_id(tracked.operation_id, retry.gas_retries), block_number, block_hash, gas_used
        )
        logger.warning(
            "%s of %s ran out of gas (%d of %d): signed again with %d gas as %s",
            tracked.tx_hash,
            tracked.operation_id,
            gas_used,
            tracked.gas_limit,
            gas,
            retry.tx_hash,
        )
        tracked.status, tracked.superseded_by = TransactionStatus.FAILED, retry
        tracked.block_number, tracked.block_hash, tracked.gas_used = block_number, block_hash, gas_used
        tracked.error_name = OUT_OF_GAS
        tracked.error_args = {"gas_limit": tracked.gas_limit, "gas_used": gas_used}
        self._by_hash.pop(tracked.tx_hash, None)
        self._inflight[retry.operation_id] = retry
        self._by_hash[retry.tx_hash] = retry
        self._journal_queue.put_nowait(retry)
        tracked.done.set()
        return True

    async def _revert_of(self, tracked: _Tracked, block_number: int) -> tuple[ContractRevert, bool]:
        """The decoded error of a mined, reverted transaction, and whether its trace shows it ran out of gas: from
        its trace when the node traces, else by replaying it as a call on the state before its block (which misses
        the effect of earlier transactions of the same block; the trace flag is then False)."""
        rpc = self._require_rpc()
        if self._trace_supported:
            try:
                trace = await rpc.call("debug_traceTransaction", tracked.tx_hash, {"tracer": "callTracer"})
            except RpcError as exc:
                if exc.code in (-32601, -32600) or "not" in exc.message.lower():
                    self._trace_supported = False
            else:
                out_of_gas = _trace_ran_out_of_gas(trace)
                output = trace.get("output") if isinstance(trace, Mapping) else None
                if isinstance(output, str) and len(output) > 2:
                    return self._decoder.decode(bytes.fromhex(output[2:])), out_of_gas
                reason = trace.get("error") if isinstance(trace, Mapping) else None
                return UnknownRevert({"reason": str(reason or "reverted without data")}), out_of_gas
        fields = decode_dynamic_fee_transaction(tracked.raw_tx)
        call = {
            "from": tracked.sender,
            "data": "0x" + fields["data"].hex(),
            "gas": hex(fields["gas"]),
            "value": hex(fields["value"]),
        }
        if fields["to"] is not None:
            call["to"] = fields["to"]
        try:
            await rpc.call("eth_call", call, hex(max(block_number - 1, 0)))
        except RpcError as exc:
            data = exc.data
            if isinstance(data, Mapping):
                data = data.get("data")
            if isinstance(data, str) and data.startswith("0x") and len(data) > 2:
                return self._decoder.decode(bytes.fromhex(data[2:])), False
            return UnknownRevert({"reason": exc.message}), False
        return UnknownRevert({"reason": "the call succeeds when replayed before its block"}), False

    async def _rewind(self, below: int) -> None:
        """The chain no longer holds the blocks we followed above some height (a reorg, or the node restarted
        behind): find the last block we share with it, put the transactions of the lost blocks back in flight
        and follow again from there."""
        rpc = self._require_rpc()
        known = sorted((n for n in self._block_hashes if n <= below), reverse=True)
        fork = (min(self._block_hashes) - 1) if self._block_hashes else -1
        if known:
            headers = await rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in known])
            for number, header in zip(known, headers, strict=True):
                if isinstance(header, Mapping) and header.get("hash") == self._block_hashes[number]:
                    fork = number
                    break
        logger.warning("chain went back: following again from block %d (was at %d)", fork, self._followed)
        reopened = await self._neutralise_spent_attempts(await self._db(self._reopen_after, fork))
        self._reopen(reopened)
        for number in [n for n in self._block_hashes if n > fork]:
            del self._block_hashes[number]
        self._followed = fork
        self._reconcile_soon.set()

    async def _neutralise_spent_attempts(self, reopened: list[_Tracked]) -> list[_Tracked]:
        """An attempt that ran out of gas and was signed again must not run a second time now that its block is
        lost: mined again it might succeed, beside its successor. Its nonce is given to a nonce filler instead (a
        zero transfer to the sender itself), so the successor, with a later nonce, is not stuck behind a gap."""
        out: list[_Tracked] = []
        for tracked in reopened:
            if not _is_spent_attempt(tracked.operation_id) or tracked.kind is not TransactionKind.OPERATION:
                out.append(tracked)
                continue
            if not self._has_key(tracked.sender):
                logger.error("%s (%s) is in flight again and cannot be neutralised: no key", tracked.tx_hash, tracked)
                out.append(tracked)
                continue
            filler = self._sign(
                None,
                tracked.sender,
                tracked.nonce,
                tracked.sender,
                b"",
                FILLER_GAS,
                0,
                tracked.operation_id,
                TransactionKind.NONCE_FILLER,
            )
            filler.status, filler.lost_block = TransactionStatus.SENT, tracked.lost_block
            assert filler.sent is not None
            filler.sent.set_result(None)
            await self._db(self._replace_transaction, tracked.tx_hash, filler)
            logger.warning("%s ran out of gas in a lost block: its nonce goes to filler %s", tracked.tx_hash, filler)
            out.append(filler)
        return out

    def _reopen(self, rows: Sequence[_Tracked]) -> None:
        for row in rows:
            tracked = self._final.pop(row.operation_id, None) or self._inflight.get(row.operation_id) or row
            tracked.lost_block = row.lost_block
            tracked.status = TransactionStatus.SENT
            tracked.block_number = tracked.block_hash = tracked.gas_used = None
            tracked.error_name = None
            tracked.error_args = None
            tracked.finalizing = False
            tracked.done = asyncio.Event()
            tracked.check_now = True
            self._inflight[tracked.operation_id] = tracked
            self._by_hash[tracked.tx_hash] = tracked
        if rows:
            logger.warning("%d transactions of lost blocks are in flight again", len(rows))

    # -- reconciling with the node ------------------------------------------------------------------

    async def _reconciler(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reconcile_soon.wait(), self.reconcile_interval)
            self._reconcile_soon.clear()
            try:
                await self._reconcile()
                await self._fill_gas_used()
            except (NodeUnavailable, RpcError) as exc:
                logger.info("reconciliation postponed: %s", exc)
            except Exception:
                logger.exception("reconciliation failed")

    async def _recover(self) -> None:
        """At start: re-check the blocks of recently finished transactions, track everything the journal holds in
        flight, and reconcile all of it with the node at once."""
        rpc = self._require_rpc()
        recent = await self._db(self._recent_blocks, self._followed - self.block_window)
        lost_above: int | None = None
        if recent:
            numbers = sorted(recent)
            headers = await rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
            for number, header in zip(numbers, headers, strict=True):
                if not isinstance(header, Mapping) or recent[number] != {header.get("hash")}:
                    lost_above = number - 1
                    break
        lost_in: dict[str, int | None] = {}
        if lost_above is not None:
            logger.warning("blocks above %d were lost while the pipeline was stopped", lost_above)
            reopened = await self._neutralise_spent_attempts(await self._db(self._reopen_after, lost_above))
            lost_in = {t.operation_id: t.lost_block for t in reopened}
        for tracked in await self._db(self._select_in_flight):
            tracked.lost_block = lost_in.get(tracked.operation_id)
            tracked.check_now = True
            self._inflight[tracked.operation_id] = tracked
            self._by_hash[tracked.tx_hash] = tracked
        if self._inflight:
            logger.info("recovering %d in-flight transactions from the journal", len(self._inflight))
        await self._reconcile(everything=True)

    async def _reconcile(self, *, everything: bool = False) -> None:
        """Compare in-flight transactions not seen for ``resend_after`` seconds with the node's nonces.

        Per sender, two cheap questions: how many transactions are mined (``latest`` count) and how many are
        mined or waiting in the pool (``pending`` count). A transaction whose nonce is at or above the pending
        count is neither mined nor waiting: the node lost it (or never got it), so it is sent again, in nonce
        order. One whose nonce is below the mined count was mined without the block follower seeing it (it was
        journaled by an earlier run, or its block was followed before it was tracked): it is looked up by hash
        and finalized from its receipt, or, when the node does not know its hash at two looks in a row, it is
        ``replaced``: another transaction used its nonce. Anything in between waits in the pool.
        """
        now = time.monotonic()
        due = [
            t
            for t in self._inflight.values()
            if not t.finalizing
            and (t.sent is None or t.sent.done())
            and (everything or t.check_now or now - t.last_seen >= self.resend_after)
        ]
        if not due:
            return
        rpc = self._require_rpc()
        senders = sorted({t.sender for t in due})
        counts = await rpc.batch(
            [("eth_getTransactionCount", [s, tag]) for s in senders for tag in ("latest", "pending")]
        )
        mined_count: dict[str, int] = {}
        pool_count: dict[str, int] = {}
        for index, sender in enumerate(senders):
            latest, pending = counts[2 * index], counts[2 * index + 1]
            if not isinstance(latest, RpcError) and not isinstance(pending, RpcError):
                mined_count[sender] = _hex_int(latest)
                pool_count[sender] = max(_hex_int(pending), mined_count[sender])
        below: list[_Tracked] = []
        resend: list[_Tracked] = []
        newly_known: list[_Tracked] = []
        for tracked in due:
            if tracked.sender not in mined_count:
                continue
            tracked.check_now = False
            if tracked.nonce < mined_count[tracked.sender]:
                below.append(tracked)
                continue
            # Its nonce is free again (the chain went back, say): earlier looks that found it taken do not count.
            tracked.nonce_taken_rounds, tracked.nonce_taken_since = 0, None
            if tracked.nonce >= pool_count[tracked.sender]:
                resend.append(tracked)
            else:
                tracked.last_seen = now
                if tracked.status is TransactionStatus.PENDING:
                    tracked.status = TransactionStatus.SENT
                    newly_known.append(tracked)
        if newly_known:
            await self._db(self._mark_sent, [t.tx_hash for t in newly_known])
        if below:
            await self._settle_mined_nonces(below, mined_count)
        resend = self._next_wave(resend)
        if resend:
            logger.info("sending again %d transactions the node does not hold", len(resend))
            for start in range(0, len(resend), self.max_batch):
                await self._send(resend[start : start + self.max_batch])

    def _next_wave(self, resend: list[_Tracked]) -> list[_Tracked]:
        """Which of the transactions the node does not hold to send again now, each sender's in nonce order.

        Transactions of lost blocks go back one lost block at a time: those of the earliest lost block still in
        flight, and the next block's only once those are mined. An operation confirmed in one block can be what
        an operation in a later block built on (an invoice confirmed after its registration was confirmed), and
        a node orders the transactions of one block as it likes, so sending two lost blocks' transactions
        together could mine them in the wrong order and fail the later one. Transactions the node simply dropped
        go once no lost block's transaction is in flight.
        """
        if not resend:
            return []  # the common round: nothing to send, no need to look through everything in flight
        lost = [t.lost_block for t in self._inflight.values() if t.lost_block is not None and not t.status.is_final]
        if not lost:
            return sorted(resend, key=lambda t: (t.sender, t.nonce))
        earliest = min(lost)
        # With a sender's transactions of the earliest lost block go the sender's lower nonces the node does not
        # hold either, whatever block they were lost from (a second crash can lose a re-sent one again, in a
        # later block): without them the wave would wait on a nonce gap for ever.
        reach: dict[str, int] = {}
        for tracked in resend:
            if tracked.lost_block == earliest:
                reach[tracked.sender] = max(reach.get(tracked.sender, -1), tracked.nonce)
        wave = [t for t in resend if t.nonce <= reach.get(t.sender, -1)]
        for tracked in resend:
            if tracked.nonce > reach.get(tracked.sender, -1):
                tracked.check_now = True  # due again at the next round
        return sorted(wave, key=lambda t: (t.sender, t.nonce))

    async def _settle_mined_nonces(self, below: list[_Tracked], mined_count: Mapping[str, int]) -> None:
        """Transactions whose nonce the node has used: finalize ours from their receipts, mark the others
        ``replaced``. The counts were read before the hashes are looked up, so a transaction mined in between is
        found by its hash and never taken for replaced."""
        rpc = self._require_rpc()
        infos: list[Any] = []
        for start in range(0, len(below), 2_000):
            chunk = below[start : start + 2_000]
            infos.extend(await rpc.batch([("eth_getTransactionByHash", [t.tx_hash]) for t in chunk]))
        mined: list[_Tracked] = []
        taken: list[_Tracked] = []
        for tracked, info in zip(below, infos, strict=True):
            if isinstance(info, RpcError) or tracked.status.is_final or tracked.finalizing:
                continue
            if info is None:
                # "Replaced" is final, so it takes two looks at least REPLACED_AFTER seconds apart: a node just
                # restarted from its state file can answer for a moment before it serves every block it loaded.
                tracked.nonce_taken_rounds += 1
                now = time.monotonic()
                if tracked.nonce_taken_since is None:
                    tracked.nonce_taken_since = now
                if tracked.nonce_taken_rounds >= 2 and now - tracked.nonce_taken_since >= REPLACED_AFTER:
                    taken.append(tracked)
                else:
                    tracked.check_now = True  # look again at the next round before giving it up
                continue
            tracked.nonce_taken_rounds, tracked.nonce_taken_since = 0, None
            block = info.get("blockNumber")
            if block is not None and _hex_int(block) <= self._followed:
                mined.append(tracked)
            # else: mined in a block the follower has not reached yet; it will collect it
        if mined:
            receipts = await rpc.batch([("eth_getTransactionReceipt", [t.tx_hash]) for t in mined])
            await self._finalize_mined([(t, r) for t, r in zip(mined, receipts, strict=True) if isinstance(r, Mapping)])
        if taken:
            for tracked in taken:
                logger.error(
                    "nonce %d of %s was used by another transaction: %s (%s) is replaced",
                    tracked.nonce,
                    tracked.sender,
                    tracked.tx_hash,
                    tracked.operation_id,
                )
            await self._finalize(
                [
                    _Outcome(
                        t,
                        TransactionStatus.REPLACED,
                        error_name="NonceTaken",
                        error_args={"nonce": t.nonce, "node_nonce": mined_count[t.sender]},
                    )
                    for t in taken
                ],
                superseded=True,
            )

    # -- finishing ----------------------------------------------------------------------------------

    async def _finalize(self, outcomes: Sequence[_Outcome], *, superseded: bool = False) -> None:
        todo = [o for o in outcomes if not o.tracked.status.is_final and not o.tracked.finalizing]
        if not todo:
            return
        for outcome in todo:
            outcome.tracked.finalizing = True
        try:
            await self._db(self._write_outcomes, todo, superseded)
        except BaseException:
            for outcome in todo:
                outcome.tracked.finalizing = False
            raise
        for outcome in todo:
            tracked = outcome.tracked
            tracked.status = outcome.status
            tracked.block_number = outcome.block_number
            tracked.block_hash = outcome.block_hash
            tracked.gas_used = outcome.gas_used
            tracked.error_name = outcome.error_name
            tracked.error_args = outcome.error_args
            tracked.finalizing = False
            self._inflight.pop(tracked.operation_id, None)
            self._by_hash.pop(tracked.tx_hash, None)
            self._keep_final(tracked)
            tracked.done.set()

    # -- database (run on the pipeline's one database thread) ----------------------------------------

    async def _db(self, function: Callable[..., T], *args: Any) -> T:
        if self._db_executor is None:
            raise PipelineNotRunning("the pipeline is not running")
        return await asyncio.get_running_loop().run_in_executor(self._db_executor, function, *args)

    def _insert_rows(self, rows: list[dict[str, Any]], supersessions: Sequence[_Supersession] = ()) -> None:
        """Journal new transactions; in the same database transaction, rename each attempt that ran out of gas
        (``supersessions``), so that the operation id passes to its new attempt atomically."""
        with self._sessions() as session, session.begin():
            for spent in supersessions:
                session.execute(
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
            session.execute(insert(JournalTransaction), rows)

    def _mark_sent(self, tx_hashes: list[str]) -> None:
        table = _JOURNAL
        with self._sessions() as session, session.begin():
            for start in range(0, len(tx_hashes), 500):
                session.execute(
                    update(table)
                    .where(table.c.tx_hash.in_(tx_hashes[start : start + 500]))
                    .where(table.c.status == TransactionStatus.PENDING)
                    .values(status=TransactionStatus.SENT, updated_at=utc_now())
                )

    def _write_outcomes(self, outcomes: Sequence[_Outcome], superseded: bool) -> None:
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

    def _replace_transaction(self, tx_hash: str, replacement: _Tracked) -> None:
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

    def _write_gas_used(self, values: list[tuple[str, int]]) -> None:
        if not values:
            return
        statement = update(_JOURNAL).where(_JOURNAL.c.tx_hash == bindparam("_tx_hash"))
        with self._sessions() as session, session.begin():
            session.connection().execute(statement, [{"_tx_hash": h, "gas_used": g} for h, g in values])

    def _max_journaled_nonce(self, sender: str) -> int | None:
        with self._sessions() as session:
            return session.scalar(
                select(func.max(JournalTransaction.nonce)).where(
                    JournalTransaction.sender == sender, JournalTransaction.superseded.is_(False)
                )
            )

    def _select_operations(self, operation_ids: list[str]) -> list[_Tracked]:
        with self._sessions() as session:
            rows = session.scalars(
                select(JournalTransaction).where(JournalTransaction.operation_id.in_(operation_ids))
            ).all()
            return [_Tracked.from_row(row) for row in rows]

    def _select_in_flight(self) -> list[_Tracked]:
        with self._sessions() as session:
            rows = session.scalars(
                select(JournalTransaction)
                .where(JournalTransaction.status.in_(IN_FLIGHT_STATUSES))
                .order_by(JournalTransaction.sender, JournalTransaction.nonce)
            ).all()
            return [_Tracked.from_row(row) for row in rows]

    def _recent_blocks(self, above: int) -> dict[int, set[str]]:
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

    def _reopen_after(self, fork: int) -> list[_Tracked]:
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

    async def call(self, sender: str, to: str, data: bytes) -> bytes:
        """``eth_call`` from ``sender`` on the latest block over the pipeline's own (async) connection: what a
        pre-flight needs without a blocking round trip. Raises :class:`RpcError` when the call reverts (the
        revert data in ``data``) and :class:`NodeUnavailable` when the node does not answer."""
        result = await self._require_rpc().call(
            "eth_call", {"from": sender, "to": to, "data": "0x" + data.hex()}, "latest"
        )
        return bytes.fromhex(str(result)[2:])

    def _require_rpc(self) -> JsonRpcClient:
        if self._rpc is None:
            raise PipelineNotRunning("the pipeline is not running")
        return self._rpc


# ---------------------------------------------------------------------------------------------------------------
# The naive baseline (benchmarks only)


def naive_send(w3: Web3, account: LocalAccount, to: str, data: bytes) -> TxReceipt:
    """Send one call the way most web3.py services do: read the nonce, estimate gas, sign, send, and wait for
    the receipt before doing anything else. Only the benchmarks use it, as the baseline the pipeline is
    measured against."""
    transaction: dict[str, Any] = {
        "from": account.address,
        "to": to_checksum_address(to),
        "data": data,
        "value": 0,
        "nonce": w3.eth.get_transaction_count(account.address, "pending"),
        "chainId": w3.eth.chain_id,
    }
    transaction["gas"] = w3.eth.estimate_gas(transaction)  # type: ignore[arg-type]
    base_fee = int(w3.eth.get_block("latest").get("baseFeePerGas", 0))
    transaction["maxPriorityFeePerGas"] = 0
    transaction["maxFeePerGas"] = 2 * base_fee
    signed = account.sign_transaction(transaction)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120, poll_latency=0.1)
