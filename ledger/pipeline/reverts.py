"""Revert and out-of-gas detection: how a mined transaction whose receipt is at hand finished.

**Out of gas is not a refusal**: a transaction that ran out of gas (its trace says so, or, where the node does
not trace, it reverted without data having used all but the 1/64 EIP-150 keeps back) is not the contract's
answer. Its operation is signed again with a fresh estimate, at least twice the gas, under a new nonce, and the
spent attempt is kept in the journal as ``<operation id>~oog<n>``; only when the gas cannot grow any more does
the operation fail, with ``OutOfGas``. A reverted transaction is traced (``debug_traceTransaction``, or failing
that replayed with ``eth_call`` at the parent block) and its custom error decoded by name.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from ledger.errors import ContractRevert, UnknownRevert
from ledger.journal import TransactionKind, TransactionStatus
from ledger.pipeline.exceptions import RpcError
from ledger.pipeline.rpc import _call, _hex_int
from ledger.pipeline.signing import decode_dynamic_fee_transaction
from ledger.pipeline.state import PipelineState
from ledger.pipeline.submission import _gas_kind
from ledger.pipeline.tracked import OUT_OF_GAS, _attempt_id, _is_spent_attempt, _Outcome, _Supersession, _Tracked

logger = logging.getLogger("ledger.pipeline")

MAX_GAS_RETRIES: Final = 3
"""How many times an operation that ran out of gas is signed again with more gas."""


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


class Reverts(PipelineState):
    """Finishing mined transactions from their receipts (a part of :class:`~ledger.pipeline.Pipeline`)."""

    if TYPE_CHECKING:

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
        ) -> _Tracked: ...

        def _has_key(self, address: str) -> bool: ...

        def _checksum(self, address: str) -> str: ...

        def _with_margin(self, estimate: int, headroom: int = 0) -> int: ...

        def _learn_gas(self, kind: tuple[str, bytes, int], estimate: int) -> int: ...

        async def _ensure_nonce(self, address: str) -> None: ...

        async def _finalize(self, outcomes: Sequence[_Outcome], *, superseded: bool = False) -> None: ...

    async def _finalize_mined(self, mined: Sequence[tuple[_Tracked, Mapping[str, Any]]]) -> None:
        outcomes: list[_Outcome] = []
        for tracked, receipt in mined:
            if tracked.status.is_final or tracked.finalizing:
                continue
            block_number = _hex_int(receipt["blockNumber"])
            gas_used = _hex_int(receipt["gasUsed"])
            if _hex_int(receipt["status"]) == 1:
                outcomes.append(
                    _Outcome(
                        tracked,
                        TransactionStatus.CONFIRMED,
                        block_number,
                        receipt["blockHash"],
                        gas_used,
                        logs=receipt.get("logs"),
                    )
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
            raw = _hex_int(await self._require_rpc().call("eth_estimateGas", _call(tracked.sender, to, data, value)))
        except RpcError:  # it would revert now: send it with more gas anyway, so that the refusal is on record
            estimate = 0
        else:
            estimate = self._with_margin(raw if to is None else self._learn_gas(_gas_kind(to, data), raw))
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
        self._registry.by_hash.pop(tracked.tx_hash, None)
        self._registry.inflight[retry.operation_id] = retry
        self._registry.by_hash[retry.tx_hash] = retry
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
