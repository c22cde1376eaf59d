"""The typed client of the ledger: domain methods over the contracts, for the REST service and scripts.

Reads return the dataclasses of :mod:`ledger.models`. Writes encode the call, *pre-flight* it with
``eth_call`` from the sender (so a call the contracts would refuse raises its named error at once, as a
:class:`~ledger.errors.ContractRevert` subclass, and nothing is signed), then hand it to the transaction
pipeline, which signs, journals, sends and follows it; they return the pipeline's
:class:`~ledger.pipeline.Operation` (pending). A call that passes pre-flight can still fail on chain when
another transaction got there first (two financiers funding one piece): the operation then ends ``failed``
with the decoded error.

Participants' keys come from the keystore by address; the client never sees a plaintext key on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import TransactionNotFound

from ledger import acts
from ledger.abi import Codec
from ledger.catalogue import CATALOGUE, Catalogue, role_id
from ledger.errors import ContractRevert, ErrorDecoder, OutOfGas, UnknownRevert
from ledger.journal import TransactionStatus
from ledger.models import (
    AuditAnchor,
    CreditLine,
    FinancingRequest,
    GoodsStatus,
    Invoice,
    InvoiceState,
    Participant,
    ParticipantStatus,
    Piece,
    Pledge,
    PledgeState,
    Receipt,
    ReceiptState,
    Registration,
    RequestState,
    Role,
)
from ledger.pipeline import (
    OUT_OF_GAS,
    NodeUnavailable,
    Operation,
    Pipeline,
    PipelineNotRunning,
    RpcError,
    UnknownOperation,
)
from ledger.pipeline.rpc import plain_reader

logger = logging.getLogger(__name__)


ZERO_ADDRESS = "0x" + "00" * 20


class TransactionSender(Protocol):
    """What the client needs of a sender: :class:`ledger.pipeline.Pipeline` on a node, :class:`Web3Sender` on
    an in-process chain."""

    async def submit(
        self,
        sender: LocalAccount,
        to: str | None,
        data: bytes,
        gas: int | None = None,
        operation_id: str | None = None,
        *,
        value: int = 0,
    ) -> Operation: ...

    async def wait(self, operation_id: str, timeout: float | None = None) -> Operation: ...


class ReadOnlyClient(RuntimeError):
    """A write (or a wait) on a client built without a sender and signer."""


class OperationFailed(Exception):
    """An operation ended without effect and without a contract error (``replaced`` by another transaction
    with its nonce, or ``dropped``)."""

    def __init__(self, operation: Operation) -> None:
        self.operation = operation
        super().__init__(f"operation {operation.operation_id} ended {operation.status.value}")


class OperationRolledBack(Exception):
    """The operation was confirmed, but the block that held it is gone (a reorg, or a node restarted behind
    after a crash). The pipeline's block follower puts it back in flight and sends it again: it is in flight."""

    def __init__(self, operation: Operation) -> None:
        self.operation = operation
        super().__init__(f"operation {operation.operation_id}: its block is no longer on the chain")


@dataclass(frozen=True)
class Event:
    """A decoded event of one of the ledger's contracts."""

    contract: str
    name: str
    args: Mapping[str, Any]
    log_index: int


@dataclass(frozen=True)
class ActEvidence:
    """A relayed signed act as the chain holds it: the typed data, the signature, and what the contract
    announced (the digest it verified, the account and the key that signed)."""

    act: str
    typed_data: dict[str, Any]
    signature: bytes
    digest: bytes
    account: str
    signer: str
    tx_hash: str
    block_number: int


@dataclass(frozen=True)
class Outcome:
    """A confirmed operation with the events its transaction emitted, in log order."""

    operation: Operation
    events: tuple[Event, ...]

    def event(self, name: str) -> Mapping[str, Any]:
        """The arguments of the first event called ``name``; ``LookupError`` when there is none."""
        for event in self.events:
            if event.name == name:
                return event.args
        raise LookupError(f"operation {self.operation.operation_id} emitted no {name} event")

    def named(self, name: str) -> list[Mapping[str, Any]]:
        return [e.args for e in self.events if e.name == name]


class Web3Sender:
    """A sender for in-process chains (eth-tester) and small scripts: signs locally, sends, and waits for each
    receipt before returning, one transaction at a time. Nothing is journaled, so it is *not* for a service
    (use :class:`ledger.pipeline.Pipeline`); a failed transaction is decoded the same way as the pipeline does
    (replayed with ``eth_call`` at its block's parent)."""

    def __init__(self, w3: Web3, decoder: ErrorDecoder, *, chain_id: int | None = None) -> None:
        self.w3 = w3
        self.decoder = decoder
        self.chain_id = chain_id if chain_id is not None else w3.eth.chain_id
        self._operations: dict[str, Operation] = {}

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
        operation_id = operation_id or uuid.uuid4().hex
        known = self._operations.get(operation_id)
        if known is not None:
            return known
        call: dict[str, Any] = {"from": sender.address, "data": data, "value": value}
        if to is not None:
            call["to"] = to
        gas_limit = gas if gas is not None else self.w3.eth.estimate_gas(call) * 13 // 10  # type: ignore[arg-type]
        nonce = self.w3.eth.get_transaction_count(sender.address, "pending")
        base_fee = int(self.w3.eth.get_block("latest").get("baseFeePerGas", 0))
        transaction: dict[str, Any] = {
            **call,
            "gas": gas_limit,
            "nonce": nonce,
            "chainId": self.chain_id,
            "maxFeePerGas": 2 * base_fee + 1,
            "maxPriorityFeePerGas": 1,
        }
        signed = sender.sign_transaction(transaction)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash)
        error_name: str | None = None
        error_args: dict[str, Any] | None = None
        if receipt["status"] != 1:
            revert = self._replay(call, receipt["blockNumber"])
            error_name, error_args = revert.name, dict(revert.arguments)
        operation = Operation(
            operation_id=operation_id,
            sender=sender.address,
            nonce=nonce,
            tx_hash="0x" + bytes(tx_hash).hex(),
            status=TransactionStatus.CONFIRMED if error_name is None else TransactionStatus.FAILED,
            to=to,
            selector="0x" + data[:4].hex() if data else None,
            gas_limit=gas_limit,
            block_number=int(receipt["blockNumber"]),
            block_hash="0x" + bytes(receipt["blockHash"]).hex(),
            gas_used=int(receipt["gasUsed"]),
            error_name=error_name,
            error_args=error_args,
        )
        self._operations[operation_id] = operation
        return operation

    def _replay(self, call: Mapping[str, Any], block_number: int) -> ContractRevert:
        try:
            self.w3.eth.call(dict(call), block_number - 1)  # type: ignore[arg-type]
        except Exception as exc:
            decoded = self.decoder.from_exception(exc)
            if decoded is not None:
                return decoded
        return UnknownRevert({"data": b""})

    async def wait(self, operation_id: str, timeout: float | None = None) -> Operation:
        try:
            return self._operations[operation_id]
        except KeyError:
            raise UnknownOperation(operation_id) from None


class OperationMethod:
    """A client method that submits one catalogue operation: ``client.confirm_invoice(buyer, invoice_id)`` is
    ``client.submit("invoice.confirm", buyer, [invoice_id])``. Arguments go by position in the operation's
    order or by name, defaults as the catalogue declares them, then ``operation_id`` (by position after the
    last argument, or by name)."""

    def __init__(self, operation: str) -> None:
        self.operation = operation
        self.__doc__ = CATALOGUE[operation].summary if operation in CATALOGUE else None

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, client: LedgerClient | None, owner: type) -> Any:
        if client is None:
            return self
        spec = client.catalogue[self.operation]

        async def method(sender: str, *args: Any, operation_id: str | None = None, **named: Any) -> Operation:
            positional = list(args)
            if len(positional) > len(spec.params):  # the operation id, by position after the arguments
                if len(positional) != len(spec.params) + 1 or operation_id is not None:
                    raise TypeError(f"{self.name}: too many arguments")
                operation_id = positional.pop()
            values = dict(zip(spec.params, positional, strict=False))
            if set(values) & set(named):
                raise TypeError(f"{self.name}: an argument given twice: {sorted(set(values) & set(named))}")
            return await client.submit(self.operation, sender, {**values, **named}, operation_id)

        method.__name__ = self.name
        method.__doc__ = spec.summary
        return method


class LedgerClient:
    """Domain methods of the ledger. ``contracts`` maps ``registry``, ``token``, ``receivables`` and
    ``receipts`` to web3 contract objects bound to the deployment's addresses."""

    def __init__(
        self,
        w3: Web3,
        contracts: Mapping[str, Contract],
        decoder: ErrorDecoder,
        sender: TransactionSender | None = None,
        signer: Callable[[str], LocalAccount] | None = None,
        catalogue: Catalogue = CATALOGUE,
        *,
        logs_max_range: int = 2_000,
    ) -> None:
        if logs_max_range < 1:
            raise ValueError("logs_max_range must be at least 1")
        self.w3 = w3
        self.catalogue = catalogue
        self.logs_max_range = logs_max_range
        """Most blocks one ``eth_getLogs`` of this client spans (a node such as Besu refuses wider ranges)."""
        self.contracts = dict(contracts)
        self.decoder = decoder
        self._sender = sender
        self._signer = signer
        self.codec = Codec({key: cast(list[dict[str, Any]], contract.abi) for key, contract in self.contracts.items()})
        self._contract_of = {str(contract.address).lower(): key for key, contract in self.contracts.items()}
        self._chain_id: int | None = None
        self._reader = plain_reader(w3)

    # -- reads --------------------------------------------------------------------------------------

    def _read(self, contract: str, function: str, *args: Any) -> Any:
        """Call a view function, encoded and decoded by the codec. Returns the value of a single output, else the
        tuple of outputs, with addresses checksummed."""
        spec = self.codec.function(contract, function)
        to, data = str(self.contracts[contract].address), spec.encode_call(args)
        if self._reader is not None:  # the common case without web3's request stack; anything unusual goes below
            try:
                answer = self._reader.call("eth_call", {"to": to, "data": "0x" + data.hex()}, "latest")
            except RpcError as exc:
                revert = exc.data.get("data") if isinstance(exc.data, Mapping) else exc.data
                if isinstance(revert, str) and revert.startswith("0x") and len(revert) > 2:
                    raise self.decoder.decode(bytes.fromhex(revert[2:])) from exc
            except NodeUnavailable:
                pass  # web3 tries too, and fails (or answers) as reads always did
            else:
                if isinstance(answer, str) and answer.startswith("0x"):
                    values = spec.decode_result(bytes.fromhex(answer[2:]))
                    return values[0] if len(values) == 1 else values
        try:
            raw = self.w3.eth.call({"to": to, "data": data})
        except Exception as exc:
            decoded = self.decoder.from_exception(exc)
            if decoded is not None:
                raise decoded from exc
            raise
        values = spec.decode_result(bytes(raw))
        return values[0] if len(values) == 1 else values

    def participant(self, address: str) -> Participant:
        identity, status, frozen, registered_at = self._read("registry", "participant", address)
        return Participant(address, bytes(identity), ParticipantStatus(status), bool(frozen), int(registered_at))

    def has_role(self, address: str, role: Role) -> bool:
        return bool(self._read("registry", "hasRole", role_id(role), address))

    async def read_async(self, contract: str, function: str, *args: Any) -> Any:
        """:meth:`_read` from the event loop, without a worker thread: over the pipeline's asynchronous JSON-RPC
        connection (:meth:`ledger.pipeline.Pipeline.read`) where :meth:`_read` would use its plain reader. Anything
        else (another sender, an error answer, no answer, an answer that is not data) goes to :meth:`_read` in a
        worker thread, which calls again and answers or raises as it always does."""
        read = getattr(self._sender, "read", None)
        if read is not None and self._reader is not None:
            spec = self.codec.function(contract, function)
            to, data = str(self.contracts[contract].address), spec.encode_call(args)
            try:
                answer = await read("eth_call", {"to": to, "data": "0x" + data.hex()}, "latest")
            except (RpcError, NodeUnavailable, PipelineNotRunning):
                answer = None
            if isinstance(answer, str) and answer.startswith("0x"):
                values = spec.decode_result(bytes.fromhex(answer[2:]))
                return values[0] if len(values) == 1 else values
        return await asyncio.to_thread(self._read, contract, function, *args)

    def balance_of(self, address: str) -> int:
        return int(self._read("token", "balanceOf", address))

    async def balance_of_async(self, address: str) -> int:
        """:meth:`balance_of` from the event loop (:meth:`read_async`)."""
        return int(await self.read_async("token", "balanceOf", address))

    def invoice(self, invoice_id: int) -> Invoice:
        f = self._read("receivables", "invoice", invoice_id)
        return Invoice(invoice_id, f[0], f[1], InvoiceState(f[2]), f[3], f[4], f[5], f[6], f[7], bytes(f[8]))

    def obligation_state(self, slot_id: int) -> InvoiceState:
        return InvoiceState(self._read("receivables", "obligationState", slot_id))

    def piece(self, piece_id: int) -> Piece:
        return _piece_of(piece_id, self._read("receivables", "piece", piece_id))

    async def piece_async(self, piece_id: int) -> Piece:
        """:meth:`piece` from the event loop (:meth:`read_async`)."""
        return _piece_of(piece_id, await self.read_async("receivables", "piece", piece_id))

    def path_of(self, piece_id: int) -> list[int]:
        return [int(i) for i in self._read("receivables", "pathOf", piece_id)]

    def financing_request(self, request_id: int) -> FinancingRequest:
        f = self._read("receivables", "financingRequest", request_id)
        holder, piece_id, state, rate, basis, financier, fee, amount, price, funded, max_rate, max_fee, review = f
        return FinancingRequest(
            request_id,
            holder,
            piece_id,
            RequestState(state),
            rate,
            basis,
            financier,
            fee,
            amount,
            price,
            funded,
            max_rate,
            max_fee,
            bytes(review),
        )

    def financing_registration(self, request_id: int) -> Registration | None:
        """The 中登网 registration its financier recorded for a financing request, or None."""
        number, registered_at = self._read("receivables", "financingRegistration", request_id)
        return Registration.of(bytes(number), int(registered_at))

    def pledge_registration(self, pledge_id: int) -> Registration | None:
        """The 中登网 registration its financier recorded for a pledge, or None."""
        number, registered_at = self._read("receipts", "pledgeRegistration", pledge_id)
        return Registration.of(bytes(number), int(registered_at))

    def quote_financing(self, request_id: int) -> tuple[int, int, int]:
        """(discount, fee, price) funding would settle now."""
        discount, fee, price = self._read("receivables", "quoteFinancing", request_id)
        return int(discount), int(fee), int(price)

    def credit_line(self, core_firm: str) -> CreditLine:
        limit, used = self._read("receivables", "creditLine", core_firm)
        return CreditLine(core_firm, int(limit), int(used))

    def redeemable(self, piece_id: int) -> int:
        return int(self._read("receivables", "redeemable", piece_id))

    def receipt(self, receipt_id: int) -> Receipt:
        f = self._read("receipts", "receipt", receipt_id)
        owner = (
            ZERO_ADDRESS
            if ReceiptState(f[7]) is ReceiptState.REDEEMED
            else self._read("receipts", "ownerOf", receipt_id)
        )
        unit = bytes(f[3]).rstrip(b"\x00").decode("ascii", "replace")
        return Receipt(
            receipt_id, owner, f[0], f[1], f[2], unit, f[4], f[5], GoodsStatus(f[6]), ReceiptState(f[7]), f[8]
        )

    def pledge_loan(self, pledge_id: int) -> Pledge:
        f = self._read("receipts", "pledge", pledge_id)
        return Pledge(pledge_id, f[0], f[1], f[2], PledgeState(f[3]), f[4], f[5], f[6], f[7], f[8])

    def receipt_id_of_lot(self, lot_key_hash: bytes) -> int:
        """The receipt of a lot key hash, 0 when none was issued."""
        return int(self._read("receipts", "receiptIdOfLot", lot_key_hash))

    def invoice_id_of_key(self, key_hash: bytes) -> int:
        """The invoice of an invoice key hash, 0 when none was registered."""
        return int(self._read("receivables", "invoiceIdOfKey", key_hash))

    def pledge_of(self, receipt_id: int) -> int:
        """The latest pledge requested against a receipt (0 if none); it is open exactly while the receipt is
        ``PLEDGE_REQUESTED`` or ``PLEDGED``."""
        return int(self._read("receipts", "pledgeOf", receipt_id))

    def amount_owed(self, pledge_id: int) -> tuple[int, int]:
        """(principal, interest) the borrower owes on a pledge now."""
        principal, interest = self._read("receipts", "amountOwed", pledge_id)
        return int(principal), int(interest)

    def advance_limit(self, receipt_id: int, financier: str) -> int:
        """The most ``financier`` may lend against the receipt at its current valuation."""
        return int(self._read("receipts", "advanceLimit", receipt_id, financier))

    def rules(self) -> dict[str, int]:
        """The ledger's rule parameters now, as the contracts hold them (seconds, basis points)."""
        return {
            "max_tenor": int(self._read("receivables", "maxTenor")),
            "grace_period": int(self._read("receivables", "gracePeriod")),
            "review_tenor": int(self._read("receivables", "reviewTenor")),
            "maintenance_ratio_bps": int(self._read("receipts", "maintenanceRatioBps")),
            "default_advance_rate_bps": int(self._read("receipts", "defaultAdvanceRateBps")),
        }

    def audit_anchor_head(self, sequence: int) -> bytes:
        """The audit-log head anchored for record ``sequence`` (32 zero bytes when none was)."""
        return bytes(self._read("anchor", "headAt", sequence))

    def latest_audit_anchor(self) -> tuple[int, bytes]:
        """(sequence, head) of the latest audit-log anchor; (0, zero bytes) before the first."""
        head, sequence, _ = self._read("anchor", "latest")
        return int(sequence), bytes(head)

    def audit_anchors(self, from_block: int = 0) -> list[AuditAnchor]:
        """Every audit-log anchor on chain since ``from_block``, in order (from the contract's events), read in
        ranges of at most :attr:`logs_max_range` blocks up to the head as it was when the reading began."""
        event = self.contracts["anchor"].events.AuditLogAnchored
        head = int(self.w3.eth.block_number)
        anchors: list[AuditAnchor] = []
        for first in range(from_block, head + 1, self.logs_max_range):
            last = min(first + self.logs_max_range - 1, head)
            anchors.extend(
                AuditAnchor(
                    int(e["args"]["sequence"]), bytes(e["args"]["head"]), e["args"]["operator"], e["blockNumber"]
                )
                for e in event.get_logs(from_block=first, to_block=last)
            )
        return anchors

    # -- writes -------------------------------------------------------------------------------------

    async def _submit(
        self, sender: str, contract: str, function: str, args: Sequence[Any], operation_id: str | None
    ) -> Operation:
        target = self.contracts[contract]
        data = self.codec.encode_call(contract, function, args)
        transactions, signer = self._writer(function)
        if operation_id is not None:
            # Submitted before (a retry after a lost answer or a crash): that operation, and no second pre-flight,
            # which would see the operation's own effects (a bank reference used, an invoice registered).
            with contextlib.suppress(UnknownOperation):
                return await transactions.wait(operation_id, 0)
        gas: int | None = None
        if isinstance(transactions, Pipeline):  # over the pipeline's async connection: no thread, no blocking
            gas = await self._preflight_async(transactions, sender, target.address, data)
        else:
            await asyncio.to_thread(self.preflight, sender, target.address, data)
        return await transactions.submit(signer(sender), target.address, data, gas, operation_id)

    def _writer(self, what: str) -> tuple[TransactionSender, Callable[[str], LocalAccount]]:
        if self._sender is None or self._signer is None:
            raise ReadOnlyClient(f"{what}: this client was built for reads only (no sender or signer)")
        return self._sender, self._signer

    def preflight(self, sender: str, to: str, data: bytes) -> None:
        """Raise the contracts' named error if ``sender`` calling ``to`` with ``data`` would revert now."""
        try:
            self.w3.eth.call({"from": sender, "to": to, "data": data})
        except Exception as exc:
            decoded = self.decoder.from_exception(exc)
            if decoded is None:
                raise
            if isinstance(decoded, UnknownRevert) and not decoded.data:
                raise
            raise decoded from exc

    async def _preflight_async(self, pipeline: Pipeline, sender: str, to: str, data: bytes) -> int:
        """:meth:`preflight` through ``pipeline``'s asynchronous JSON-RPC connection, with this call's own gas
        estimate in the same round trip; returns the gas limit to send it with.

        An error answer that is not a revert is asked once more: a node can fail a call on the latest block while
        it replaces that block (anvil with ``--prune-history`` answers "BlockOutOfRangeError" for the block it has
        just pruned); a second such answer is raised (:class:`RpcError`: the service answers 503)."""
        try:
            return await pipeline.preflight(sender, to, data)
        except RpcError as exc:
            self._raise_revert(exc)
            logger.info("pre-flight answered %s; asking once more", exc)
        try:
            return await pipeline.preflight(sender, to, data)
        except RpcError as exc:
            self._raise_revert(exc)
            raise

    def _raise_revert(self, exc: RpcError) -> None:
        """Raise the contract's error when ``exc`` is a revert (named when its data decodes); else return."""
        revert = exc.data.get("data") if isinstance(exc.data, Mapping) else exc.data
        if isinstance(revert, str) and revert.startswith("0x") and len(revert) > 2:
            raise self.decoder.decode(bytes.fromhex(revert[2:])) from exc
        if exc.code == 3 or "revert" in exc.message.lower():
            raise UnknownRevert({"reason": exc.message}) from exc

    async def outcome(self, operation: Operation, timeout: float | None = 60.0) -> Outcome:
        """Wait until ``operation`` is final. Confirmed: its events, decoded. Failed: raise its contract error
        (the same exception class pre-flight raises). Replaced or dropped: raise :class:`OperationFailed`."""
        if not operation.is_final and self._sender is None:
            raise ReadOnlyClient("outcome: this client has no sender to wait on")
        final = operation if operation.is_final else await self._sender.wait(operation.operation_id, timeout)  # type: ignore[union-attr]
        if final.status is TransactionStatus.FAILED and final.error_name == OUT_OF_GAS:
            raise OutOfGas(final.error_args)
        if final.status is TransactionStatus.FAILED and final.error_name is not None:
            raise ErrorDecoder.exception_class(final.error_name)(final.error_args or {})
        if not final.is_final:
            raise TimeoutError(f"operation {final.operation_id} is still {final.status.value} after {timeout} s")
        if not final.confirmed:
            raise OperationFailed(final)
        if isinstance(self._sender, Pipeline):  # the logs its block follower already read: no receipt fetched again
            logs = await self._sender.logs_of(final.operation_id, final.tx_hash)
            if logs is None:
                raise OperationRolledBack(final)
            return Outcome(final, tuple(self.decode_logs(logs)))
        try:
            receipt = await asyncio.to_thread(self.w3.eth.get_transaction_receipt, final.tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            raise OperationRolledBack(final) from None
        return Outcome(final, tuple(self.decode_logs(receipt["logs"])))

    def decode_logs(self, logs: Sequence[Mapping[str, Any]]) -> list[Event]:
        """The ledger contracts' events among ``logs`` (others are skipped)."""
        events = []
        for log in logs:
            topics = [bytes(t) for t in log["topics"]]
            contract = self._contract_of.get(str(log["address"]).lower())
            spec = None if contract is None or not topics else self.codec.event(contract, topics[0])
            if spec is None:
                continue
            args = spec.decode(topics, bytes(log["data"]))
            events.append(Event(spec.contract, spec.name, args, int(log["logIndex"])))
        return events

    # -- operations ---------------------------------------------------------------------------------

    def address_of(self, contract: str) -> str:
        """The deployed address of a ledger contract, by key."""
        return str(self.contracts[contract].address)

    async def submit(
        self,
        name: str,
        sender: str,
        args: Mapping[str, Any] | Sequence[Any],
        operation_id: str | None = None,
    ) -> Operation:
        """Submit catalogue operation ``name`` from ``sender`` with ``args`` (by name, or in the operation's
        order): encoded, pre-flighted and handed to the pipeline (see the module's docstring)."""
        spec = self.catalogue[name]
        function, call_args = spec.call(self, sender, args)
        return await self._submit(sender, spec.contract, function, call_args, operation_id)

    def check(self, name: str, sender: str, args: Mapping[str, Any] | Sequence[Any]) -> None:
        """Pre-flight catalogue operation ``name`` from ``sender`` without sending it: raise the contracts' named
        error if it would revert now (so that a caller can refuse before it stores or signs anything)."""
        spec = self.catalogue[name]
        function, call_args = spec.call(self, sender, args)
        self.preflight(
            sender, self.contracts[spec.contract].address, self.codec.encode_call(spec.contract, function, call_args)
        )

    # -- signed acts --------------------------------------------------------------------------------

    @property
    def chain_id(self) -> int:
        """The chain's id, asked once."""
        if self._chain_id is None:
            self._chain_id = int(self.w3.eth.chain_id)
        return self._chain_id

    def chain_time(self) -> int:
        """The timestamp of the chain's latest block (what a deadline is compared with on chain)."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def signer_of(self, account: str) -> str:
        """The key that signs ``account``'s acts (the account itself unless rotated or recovered)."""
        return str(self._read("registry", "signerOf", account))

    def is_self_custody(self, account: str) -> bool:
        return bool(self._read("registry", "isSelfCustody", account))

    def nonce_bitmap(self, account: str, word: int) -> int:
        return int(self._read("acts", "nonceBitmap", account, word))

    def act_document(
        self,
        name: str,
        account: str,
        args: Mapping[str, Any] | Sequence[Any],
        *,
        nonce: int,
        deadline: int,
    ) -> dict[str, Any]:
        """The EIP-712 document of catalogue operation ``name`` as ``account``'s signed act (reads the chain:
        the terms the act restates, and the overload a piece's assignment takes). Raises ``LookupError`` for an
        operation that has no signed act."""
        act = acts.ACTS.get(name)
        if act is None:
            raise LookupError(f"{name} has no signed act")
        spec = self.catalogue[name]
        values = spec.bind(args)
        function, call_args = spec.call(self, account, values)
        own = acts.act_call_args(name, function, call_args, values)

        def read(contract: str, function: str, arguments: Sequence[Any]) -> Any:
            return self._read(contract, function, *arguments)

        message = act.message(account, own, read, nonce=nonce, deadline=deadline)
        return acts.typed_data(act, message, self.chain_id, self.address_of("acts"))

    def holds_key(self, account: str, message_hash: bytes, signature: bytes) -> bool:
        """Whether ``signature`` over ``message_hash`` is ``account``'s: its key's (ECDSA, low s), or, for a
        contract account, what its ERC-1271 ``isValidSignature`` accepts."""
        if self.w3.eth.get_code(account):  # type: ignore[arg-type]
            selector = bytes.fromhex("1626ba7e")
            data = selector + abi_encode(["bytes32", "bytes"], [message_hash, signature])
            try:
                answer = bytes(self.w3.eth.call({"to": account, "data": data}))
            except Exception:
                return False
            return answer[:4] == acts.ERC1271_MAGIC
        return acts.recover_hash(message_hash, signature) == to_checksum_address(account)

    def rotation_document(self, account: str, new_signer: str, *, nonce: int, deadline: int) -> dict[str, Any]:
        """The EIP-712 document of ``account`` replacing its key by ``new_signer``."""
        message = acts.ROTATE_KEY.message(account, [new_signer], None, nonce=nonce, deadline=deadline)
        return acts.typed_data(acts.ROTATE_KEY, message, self.chain_id, self.address_of("acts"))

    def check_document(self, document: Mapping[str, Any]) -> acts.ActType:
        """The act type of ``document``, once its domain is this deployment's on this chain (``ValueError``
        otherwise: the contract would refuse its signature anyway, but a clear answer comes first)."""
        act = acts.act_of(document)
        domain = document.get("domain", {})
        if domain != acts.domain(self.chain_id, self.address_of("acts")):
            raise ValueError("the act's domain is not this ledger's (chain id, contract, name or version differ)")
        return act

    async def submit_act(
        self,
        document: Mapping[str, Any],
        signature: bytes,
        relayer: str,
        operation_id: str | None = None,
    ) -> Operation:
        """Relay a signed act from ``relayer`` (who pays the gas; it changes nothing else): pre-flighted like any
        operation, so the contracts' named error (a bad signature, a used nonce, the act's own refusal) comes
        back before anything is sent."""
        act = self.check_document(document)
        arguments = acts.call_arguments(act, document["message"], signature)
        return await self._submit(relayer, "acts", act.function, arguments, operation_id)

    def act_evidence(self, tx_hash: str) -> ActEvidence:
        """The signed act a transaction relayed, rebuilt from the chain alone (the transaction's input and its
        ``ActPerformed`` event), so that anyone can check it with any EIP-712 implementation. ``LookupError``
        when the transaction is unknown or relayed no act of this deployment."""
        try:
            tx = self.w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
            receipt = self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            raise LookupError(f"no transaction {tx_hash}") from None
        if str(tx.get("to") or "").lower() != self.address_of("acts").lower() or receipt["status"] != 1:
            raise LookupError(f"transaction {tx_hash} relayed no act of this ledger")
        data = bytes(tx["input"])
        spec = next((f for f in self.codec.functions("acts") if f.selector == data[:4] and f.changes_state), None)
        act = None if spec is None else next((a for a in acts.ACT_TYPES.values() if a.function == spec.name), None)
        if spec is None or act is None:
            raise LookupError(f"transaction {tx_hash} relayed no act of this ledger")
        fields, signature = abi_decode(list(spec.argument_types), data[4:])
        message = {name: value for (name, _), value in zip(act.all_fields, fields, strict=True)}
        message = {k: (str(to_checksum_address(v)) if isinstance(v, str) else v) for k, v in message.items()}
        document = acts.typed_data(act, message, self.chain_id, self.address_of("acts"))
        events = [e for e in self.decode_logs(receipt["logs"]) if e.name == "ActPerformed"]
        if not events:  # pragma: no cover - a successful act always announces itself
            raise LookupError(f"transaction {tx_hash} announced no act")
        event = events[0].args
        return ActEvidence(
            act=act.name,
            typed_data=document,
            signature=bytes(signature),
            digest=bytes(event["digest"]),
            account=str(event["account"]),
            signer=str(event["signer"]),
            tx_hash=receipt["transactionHash"].to_0x_hex(),
            block_number=int(receipt["blockNumber"]),
        )

    async def send_ether(self, sender: str, to: str, amount_wei: int, operation_id: str | None = None) -> Operation:
        """Send ether for gas (on chains that charge for gas; a permissioned chain usually does not)."""
        transactions, signer = self._writer("send_ether")
        return await transactions.submit(signer(sender), to, b"", 21_000, operation_id, value=amount_wei)

    # One line per catalogue operation (see ledger.catalogue): ``client.confirm_invoice(buyer, invoice_id)``.
    register_participant = OperationMethod("participant.register")
    register_self_custody = OperationMethod("participant.register-self-custody")
    adopt_self_custody = OperationMethod("participant.adopt-self-custody")
    propose_key_recovery = OperationMethod("key.recovery.propose")
    approve_key_recovery = OperationMethod("key.recovery.approve")
    grant_role = OperationMethod("participant.grant-role")
    admit_regulator = OperationMethod("participant.admit-regulator")
    suspend_participant = OperationMethod("participant.suspend")
    reinstate_participant = OperationMethod("participant.reinstate")
    freeze_participant = OperationMethod("freeze.participant")
    unfreeze_participant = OperationMethod("unfreeze.participant")
    mint_deposit = OperationMethod("deposit")
    burn_deposit = OperationMethod("withdrawal")
    approve_settlement = OperationMethod("settlement.approve")
    set_credit_line = OperationMethod("credit-line.set")
    register_invoice = OperationMethod("invoice.register")
    confirm_invoice = OperationMethod("invoice.confirm")
    reject_invoice = OperationMethod("invoice.reject")
    transfer_piece = OperationMethod("receivable.transfer")
    request_financing = OperationMethod("financing.request")
    approve_financing = OperationMethod("financing.approve")
    fund_financing = OperationMethod("financing.fund")
    record_financing_registration = OperationMethod("financing.register")
    decline_financing = OperationMethod("financing.decline")
    cancel_financing = OperationMethod("financing.cancel")
    repay = OperationMethod("obligation.repay")
    redeem = OperationMethod("receivable.redeem")
    mark_defaulted = OperationMethod("obligation.default")
    freeze_piece = OperationMethod("freeze.piece")
    unfreeze_piece = OperationMethod("unfreeze.piece")
    issue_receipt = OperationMethod("receipt.issue")
    revalue_receipt = OperationMethod("receipt.revalue")
    update_goods_status = OperationMethod("receipt.goods-status")
    anchor_readings = OperationMethod("receipt.anchor-readings")
    appoint_oracle = OperationMethod("receipt.appoint-oracle")
    transfer_receipt = OperationMethod("receipt.transfer")
    pledge = OperationMethod("pledge.request")
    fund_pledge = OperationMethod("pledge.fund")
    record_pledge_registration = OperationMethod("pledge.register")
    decline_pledge = OperationMethod("pledge.decline")
    cancel_pledge = OperationMethod("pledge.cancel")
    repay_pledge = OperationMethod("pledge.repay")
    enforce_pledge = OperationMethod("pledge.enforce")
    request_redemption = OperationMethod("receipt.redeem")
    withdraw_redemption = OperationMethod("receipt.redemption-withdraw")
    confirm_redemption = OperationMethod("receipt.redemption-confirm")
    freeze_receipt = OperationMethod("freeze.receipt")
    unfreeze_receipt = OperationMethod("unfreeze.receipt")
    set_advance_rate = OperationMethod("advance-rate.set")
    anchor_audit_log = OperationMethod("audit.anchor")


def _piece_of(piece_id: int, f: Sequence[Any]) -> Piece:
    return Piece(piece_id, f[0], f[1], f[2], f[3], f[4], f[5], bool(f[6] & 1))
