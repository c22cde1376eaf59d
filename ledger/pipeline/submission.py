"""Submission policy: nonces, gas, signing, pre-flight, and the journal writer and sender that journal each
signed transaction before sending it, in batches.

- **Nonces** are assigned per sender by the pipeline itself: read once from the node (``pending`` count, or one
  past the journal's highest nonce, whichever is higher), then incremented locally. Never
  ``eth_getTransactionCount`` under concurrency.
- **Signing** is local (EIP-1559, type 2) with an explicit gas limit (the caller's, or ``eth_estimateGas`` of
  that very call with a margin; a pre-flighted call like others estimated before takes their highest estimate,
  and is estimated itself only now and then: :meth:`Submission.preflight`), ``maxFeePerGas`` from the base fee
  of the last block seen.
- **Journal first**: every signed transaction is committed to the journal before it is sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import coincurve
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from ledger.journal import TransactionKind, TransactionStatus
from ledger.pipeline.exceptions import JournalWriteError, NodeUnavailable, PipelineError, PipelineNotRunning, RpcError
from ledger.pipeline.rpc import JsonRpcClient, _call, _classify_send_error, _hex_int
from ledger.pipeline.signing import sign_dynamic_fee_transaction
from ledger.pipeline.state import PipelineState
from ledger.pipeline.tracked import Operation, _Outcome, _Tracked

logger = logging.getLogger("ledger.pipeline")

INTRINSIC_GAS: Final = 21_000
FILLER_GAS: Final = 21_000
DEFAULT_FALLBACK_GAS: Final = 2_000_000
FRESH_SLOT_GAS: Final = 22_100
"""The gas of one storage slot written from zero (EIP-2929 cold access and EIP-2200 set): the headroom a known
gas limit keeps above the highest estimate of its kind."""


@dataclass
class KnownGas:
    """What the pipeline knows of the gas of one kind of call (:func:`_gas_kind`)."""

    highest: int
    """The highest estimate of the kind's calls."""
    unestimated: int = 0
    """Pre-flights of the kind since one was last estimated."""


def _gas_kind(to: str, data: bytes) -> tuple[str, bytes, int]:
    """What makes calls alike enough to share a gas estimate: the contract, the function's selector and the
    calldata's length (strings and arrays of other lengths are other kinds)."""
    return to.lower(), data[:4], len(data)


class Submission(PipelineState):
    """The pipeline's submitting side (a part of :class:`~ledger.pipeline.Pipeline`)."""

    if TYPE_CHECKING:

        async def _lookup(self, operation_id: str) -> _Tracked | None: ...

        async def _finalize(self, outcomes: Sequence[_Outcome], *, superseded: bool = False) -> None: ...

        async def _enqueue(
            self, sender: str, to: str | None, data: bytes, gas: int | None, operation_id: str | None, value: int
        ) -> Operation: ...

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
        if self._standby:  # another process owns the pipeline: it signs (ledger.pipeline.handoff)
            return await self._enqueue(self._checksum(str(sender.address)), to, data, gas, operation_id, value)
        if operation_id is None:
            return await self._submit_new(sender, to, data, gas, str(uuid.uuid4()), value)
        known = self._registry.get(operation_id)
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
                self._registry.remember(journaled)
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
        self._registry.inflight[operation_id] = tracked
        self._registry.by_hash[tracked.tx_hash] = tracked
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

    def _with_margin(self, estimate: int, headroom: int = 0) -> int:
        gas = estimate * (100 + self.gas_margin_percent) // 100 + headroom
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
        latest block, beside those of the other pre-flights pending at the same moment); return the gas limit to
        submit it with (the estimate plus ``gas_margin_percent``).

        A call like one estimated before (the same contract, function and calldata length) is only pre-flighted,
        but for every ``gas_estimate_every``-th: its gas limit is the highest estimate of its kind with the margin,
        plus :data:`FRESH_SLOT_GAS` (one more storage slot written from zero than in any estimate: a payee's first
        piece, say). An estimate runs the call several times in the node (a search for the least gas that
        passes), about six times the node's work of the call itself; a limit too low is not a refusal: the
        transaction that ran out is signed again with a fresh estimate (:mod:`.reverts`), which also raises the
        kind's.

        Raises :class:`RpcError` when the call reverts (the revert data in ``data``, as :meth:`call`) and
        :class:`NodeUnavailable` when the node does not answer."""
        call = _call(sender, to, data, value)
        kind = _gas_kind(to, data)
        known = self._known_gas.get(kind)
        if known is not None and known.unestimated < self.gas_estimate_every - 1:
            known.unestimated += 1
            result, _ = await self._preflight_together(call, estimate=False)
            if isinstance(result, RpcError):
                raise result
            return self._with_margin(known.highest, FRESH_SLOT_GAS)
        if known is not None:
            known.unestimated = 0  # now, not when the estimate comes back: the calls meanwhile count towards the next
        result, estimate = await self._preflight_together(call, estimate=True)
        if isinstance(result, RpcError):
            raise result
        if isinstance(estimate, RpcError):  # the call passed a moment ago: estimate once more, alone
            return await self._gas_for(sender, to, data, value)
        return self._with_margin(self._learn_gas(kind, _hex_int(estimate)))

    def _learn_gas(self, kind: tuple[str, bytes, int], estimate: int) -> int:
        """Note ``estimate`` for calls of ``kind``: their highest (and a kind seen for the first time starts its count
        of pre-flights without an estimate)."""
        known = self._known_gas.get(kind)
        if known is None:
            self._known_gas[kind] = KnownGas(estimate)
        else:
            known.highest = max(known.highest, estimate)
        return estimate

    async def _preflight_together(self, call: dict[str, str], *, estimate: bool) -> tuple[Any, Any]:
        """``eth_call`` of ``call`` and, with ``estimate``, its ``eth_estimateGas`` (else None), in one JSON-RPC
        batch with those of every other pre-flight asked for in the same turn of the event loop (the items of a
        batch request, concurrent requests): one round trip for all of them. A batch is sent as soon as the loop
        has run the tasks ready when the first call came; calls that come while it is on its way go in the next,
        which does not wait for it."""
        rpc = self._require_rpc()
        future: asyncio.Future[tuple[Any, Any]] = asyncio.get_running_loop().create_future()
        self._preflights.append((call, estimate, future))
        if len(self._preflights) == 1:
            asyncio.get_running_loop().call_soon(self._send_preflights, rpc)
        return await future

    def _send_preflights(self, rpc: JsonRpcClient) -> None:
        pending, self._preflights = self._preflights, []

        async def send() -> None:
            calls: list[tuple[str, list[Any]]] = []
            for call, estimate, _ in pending:
                calls.append(("eth_call", [call, "latest"]))
                if estimate:
                    calls.append(("eth_estimateGas", [call]))
            try:
                answers = await rpc.batch(calls)
            except asyncio.CancelledError:  # the pipeline stops
                for _, _, future in pending:
                    future.cancel()
                raise
            except Exception as exc:  # the node did not answer: each caller's pre-flight raises it
                for _, _, future in pending:
                    if not future.done():
                        future.set_exception(exc)
                return
            position = 0
            for _, estimate, future in pending:
                result = answers[position]
                gas = answers[position + 1] if estimate else None
                position += 2 if estimate else 1
                if not future.done():
                    future.set_result((result, gas))

        task = asyncio.get_running_loop().create_task(send())
        self._preflight_tasks.add(task)
        task.add_done_callback(self._preflight_tasks.discard)

    async def _ensure_nonce(self, address: str) -> None:
        if address in self._next_nonce:
            return
        lock = self._nonce_locks.setdefault(address, asyncio.Lock())
        async with lock:
            if address in self._next_nonce:
                return
            node_next = _hex_int(await self._require_rpc().call("eth_getTransactionCount", address, "pending"))
            journal_max = await self._db(self._journal.max_journaled_nonce, address)
            journal_next = -1 if journal_max is None else journal_max + 1
            self._next_nonce[address] = max(node_next, journal_next)

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
                await self._db(self._journal.insert_rows, [tracked.row() for tracked in batch], supersessions)
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
            self._registry.inflight.pop(tracked.operation_id, None)
            self._registry.by_hash.pop(tracked.tx_hash, None)
            self._next_nonce.pop(tracked.sender, None)
            if tracked.supersedes is not None:  # the spent attempt is still the operation's: look it up again
                spent = tracked.supersedes.tracked
                spent.superseded_by, spent.finalizing, spent.check_now = None, False, True
                spent.status, spent.error_name, spent.error_args = TransactionStatus.SENT, None, None
                spent.done = asyncio.Event()
                self._registry.inflight[spent.operation_id] = spent
                self._registry.by_hash[spent.tx_hash] = spent
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
            await self._db(self._journal.mark_sent, [t.tx_hash for t in newly_sent])
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
        self._registry.inflight[filler.operation_id] = filler
        self._registry.by_hash[filler.tx_hash] = filler
        self._journal_queue.put_nowait(filler)

    async def call(self, sender: str, to: str, data: bytes) -> bytes:
        """``eth_call`` from ``sender`` on the latest block over the pipeline's own (async) connection: what a
        pre-flight needs without a blocking round trip. Raises :class:`RpcError` when the call reverts (the
        revert data in ``data``) and :class:`NodeUnavailable` when the node does not answer."""
        result = await self._require_rpc().call(
            "eth_call", {"from": sender, "to": to, "data": "0x" + data.hex()}, "latest"
        )
        return bytes.fromhex(str(result)[2:])
