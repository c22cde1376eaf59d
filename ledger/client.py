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
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from eth_utils.abi import function_abi_to_4byte_selector, get_abi_input_types, get_abi_output_types
from web3 import Web3
from web3._utils.abi import map_abi_data
from web3._utils.normalizers import BASE_RETURN_NORMALIZERS
from web3.contract import Contract
from web3.exceptions import TransactionNotFound

from ledger.errors import ContractRevert, ErrorDecoder, OutOfGas, UnknownRevert, abi_type
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
    RequestState,
    Role,
)
from ledger.pipeline import OUT_OF_GAS, Operation, Pipeline, RpcError, UnknownOperation

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
class _ViewSpec:
    """How to call one view function: its selector and argument and result types."""

    selector: bytes
    input_types: list[str]
    output_types: list[str]


@dataclass(frozen=True)
class Event:
    """A decoded event of one of the ledger's contracts."""

    contract: str
    name: str
    args: Mapping[str, Any]
    log_index: int


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


def role_id(role: Role) -> bytes:
    """The on-chain AccessControl id of ``role``."""
    return keccak(text=f"scf.role.{role.role_name}")


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
    ) -> None:
        self.w3 = w3
        self.contracts = dict(contracts)
        self.decoder = decoder
        self._sender = sender
        self._signer = signer
        self._events = _event_map(self.contracts)
        self._view_specs: dict[tuple[str, str], _ViewSpec] = {}

    # -- reads --------------------------------------------------------------------------------------

    def _read(self, contract: str, function: str, *args: Any) -> Any:
        """Call a view function. Encoded and decoded here with the function's ABI, looked up once: web3's
        contract machinery re-validates the whole ABI (a keccak per function) on every call. Returns what
        web3 would: the value of a single output, else the list of outputs, with addresses checksummed."""
        spec = self._view_spec(contract, function)
        data = spec.selector + abi_encode(spec.input_types, args)
        try:
            raw = self.w3.eth.call({"to": self.contracts[contract].address, "data": data})
        except Exception as exc:
            decoded = self.decoder.from_exception(exc)
            if decoded is not None:
                raise decoded from exc
            raise
        values = map_abi_data(BASE_RETURN_NORMALIZERS, spec.output_types, abi_decode(spec.output_types, bytes(raw)))
        return values[0] if len(values) == 1 else list(values)

    def _view_spec(self, contract: str, function: str) -> _ViewSpec:
        key = (contract, function)
        spec = self._view_specs.get(key)
        if spec is None:
            entries = self.contracts[contract].abi
            (abi,) = [e for e in entries if e.get("type") == "function" and e.get("name") == function]
            spec = _ViewSpec(
                function_abi_to_4byte_selector(abi), list(get_abi_input_types(abi)), list(get_abi_output_types(abi))
            )
            self._view_specs[key] = spec
        return spec

    def participant(self, address: str) -> Participant:
        identity, status, frozen, registered_at = self._read("registry", "participant", address)
        return Participant(address, bytes(identity), ParticipantStatus(status), bool(frozen), int(registered_at))

    def has_role(self, address: str, role: Role) -> bool:
        return bool(self._read("registry", "hasRole", role_id(role), address))

    def balance_of(self, address: str) -> int:
        return int(self._read("token", "balanceOf", address))

    def invoice(self, invoice_id: int) -> Invoice:
        f = self._read("receivables", "invoice", invoice_id)
        return Invoice(invoice_id, f[0], f[1], InvoiceState(f[2]), f[3], f[4], f[5], f[6], f[7], bytes(f[8]))

    def obligation_state(self, slot_id: int) -> InvoiceState:
        return InvoiceState(self._read("receivables", "obligationState", slot_id))

    def piece(self, piece_id: int) -> Piece:
        f = self._read("receivables", "piece", piece_id)
        return Piece(piece_id, f[0], f[1], f[2], f[3], f[4], f[5], bool(f[6] & 1))

    def path_of(self, piece_id: int) -> list[int]:
        return [int(i) for i in self._read("receivables", "pathOf", piece_id)]

    def financing_request(self, request_id: int) -> FinancingRequest:
        f = self._read("receivables", "financingRequest", request_id)
        return FinancingRequest(request_id, f[0], f[1], RequestState(f[2]), f[3], f[4], f[5], f[6], f[7], f[8], f[9])

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

    def audit_anchor_head(self, sequence: int) -> bytes:
        """The audit-log head anchored for record ``sequence`` (32 zero bytes when none was)."""
        return bytes(self._read("anchor", "headAt", sequence))

    def latest_audit_anchor(self) -> tuple[int, bytes]:
        """(sequence, head) of the latest audit-log anchor; (0, zero bytes) before the first."""
        head, sequence, _ = self._read("anchor", "latest")
        return int(sequence), bytes(head)

    def audit_anchors(self, from_block: int = 0) -> list[AuditAnchor]:
        """Every audit-log anchor on chain since ``from_block``, in order (from the contract's events)."""
        logs = self.contracts["anchor"].events.AuditLogAnchored.get_logs(from_block=from_block, to_block="latest")
        return [
            AuditAnchor(int(e["args"]["sequence"]), bytes(e["args"]["head"]), e["args"]["operator"], e["blockNumber"])
            for e in logs
        ]

    # -- writes -------------------------------------------------------------------------------------

    async def _submit(
        self, sender: str, contract: str, function: str, args: Sequence[Any], operation_id: str | None
    ) -> Operation:
        target = self.contracts[contract]
        data = bytes.fromhex(target.encode_abi(function, list(args))[2:])
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
        estimate in the same round trip; returns the gas limit to send it with."""
        try:
            return await pipeline.preflight(sender, to, data)
        except RpcError as exc:
            revert = exc.data.get("data") if isinstance(exc.data, Mapping) else exc.data
            if isinstance(revert, str) and revert.startswith("0x") and len(revert) > 2:
                raise self.decoder.decode(bytes.fromhex(revert[2:])) from exc
            if exc.code == 3 or "revert" in exc.message.lower():
                raise UnknownRevert({"reason": exc.message}) from exc
            raise

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
            logs = await self._sender.logs_of(final.operation_id)
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
            if not topics:
                continue
            known = self._events.get((str(log["address"]).lower(), topics[0]))
            if known is None:
                continue
            contract, spec = known
            events.append(Event(contract, spec.name, spec.decode(topics[1:], bytes(log["data"])), int(log["logIndex"])))
        return events

    # participants and cash
    async def send_ether(self, sender: str, to: str, amount_wei: int, operation_id: str | None = None) -> Operation:
        """Send ether for gas (on chains that charge for gas; a permissioned chain usually does not)."""
        transactions, signer = self._writer("send_ether")
        return await transactions.submit(signer(sender), to, b"", 21_000, operation_id, value=amount_wei)

    async def register_participant(
        self, operator: str, account: str, identity_hash: bytes, roles: Sequence[Role], operation_id: str | None = None
    ) -> Operation:
        return await self._submit(
            operator, "registry", "register", [account, identity_hash, [role_id(r) for r in roles]], operation_id
        )

    async def grant_role(self, operator: str, account: str, role: Role, operation_id: str | None = None) -> Operation:
        return await self._submit(operator, "registry", "grantRole", [role_id(role), account], operation_id)

    async def suspend_participant(self, operator: str, account: str, operation_id: str | None = None) -> Operation:
        return await self._submit(operator, "registry", "suspend", [account], operation_id)

    async def reinstate_participant(self, operator: str, account: str, operation_id: str | None = None) -> Operation:
        return await self._submit(operator, "registry", "reinstate", [account], operation_id)

    async def freeze_participant(
        self, regulator: str, account: str, reason: bytes, operation_id: str | None = None
    ) -> Operation:
        return await self._submit(regulator, "registry", "freeze", [account, reason], operation_id)

    async def unfreeze_participant(self, regulator: str, account: str, operation_id: str | None = None) -> Operation:
        return await self._submit(regulator, "registry", "unfreeze", [account], operation_id)

    async def mint_deposit(
        self, agent: str, to: str, amount: int, bank_reference: bytes, operation_id: str | None = None
    ) -> Operation:
        return await self._submit(agent, "token", "mint", [to, amount, bank_reference], operation_id)

    async def burn_deposit(
        self, agent: str, holder: str, amount: int, bank_reference: bytes, operation_id: str | None = None
    ) -> Operation:
        return await self._submit(agent, "token", "burn", [holder, amount, bank_reference], operation_id)

    async def approve_settlement(
        self, holder: str, spender_contract: str, operation_id: str | None = None
    ) -> Operation:
        """Let a ledger contract (``receivables`` or ``receipts``) draw the holder's cash legs."""
        spender = self.contracts[spender_contract].address
        return await self._submit(holder, "token", "approve", [spender, 2**256 - 1], operation_id)

    # receivables
    async def set_credit_line(
        self, grantor: str, core_firm: str, grant: int, operation_id: str | None = None
    ) -> Operation:
        return await self._submit(grantor, "receivables", "setCreditLine", [core_firm, grant], operation_id)

    async def register_invoice(
        self,
        seller: str,
        key_hash: bytes,
        buyer: str,
        amount: int,
        currency: str,
        due_date: int,
        document_hash: bytes,
        operation_id: str | None = None,
    ) -> Operation:
        args = [key_hash, buyer, amount, currency.encode("ascii"), due_date, document_hash]
        return await self._submit(seller, "receivables", "registerInvoice", args, operation_id)

    async def confirm_invoice(self, buyer: str, invoice_id: int, operation_id: str | None = None) -> Operation:
        return await self._submit(buyer, "receivables", "confirmInvoice", [invoice_id], operation_id)

    async def reject_invoice(
        self, buyer: str, invoice_id: int, reason: bytes, operation_id: str | None = None
    ) -> Operation:
        return await self._submit(buyer, "receivables", "rejectInvoice", [invoice_id, reason], operation_id)

    async def transfer_piece(
        self, holder: str, piece_id: int, to: str, amount: int, operation_id: str | None = None
    ) -> Operation:
        """Move ``amount`` of a piece to ``to``: into a new piece recording its parent (ERC-3525 value
        transfer), or the whole piece when ``amount`` is all of it."""
        if amount == self.piece(piece_id).value:
            whole = "transferFrom(address,address,uint256)"
            return await self._submit(holder, "receivables", whole, [holder, to, piece_id], operation_id)
        return await self._submit(
            holder, "receivables", "transferFrom(uint256,address,uint256)", [piece_id, to, amount], operation_id
        )

    async def request_financing(
        self, holder: str, piece_id: int, amount: int, financier: str, operation_id: str | None = None
    ) -> Operation:
        return await self._submit(
            holder, "receivables", "requestFinancing", [piece_id, amount, financier], operation_id
        )

    async def approve_financing(
        self,
        financier: str,
        request_id: int,
        discount_rate_bps: int,
        fee: int,
        day_count_basis: int = 365,
        operation_id: str | None = None,
    ) -> Operation:
        args = [request_id, discount_rate_bps, fee, day_count_basis]
        return await self._submit(financier, "receivables", "approveFinancing", args, operation_id)

    async def fund_financing(self, financier: str, request_id: int, operation_id: str | None = None) -> Operation:
        return await self._submit(financier, "receivables", "fundFinancing", [request_id], operation_id)

    async def decline_financing(self, financier: str, request_id: int, operation_id: str | None = None) -> Operation:
        return await self._submit(financier, "receivables", "declineFinancing", [request_id], operation_id)

    async def cancel_financing(self, holder: str, request_id: int, operation_id: str | None = None) -> Operation:
        return await self._submit(holder, "receivables", "cancelFinancing", [request_id], operation_id)

    async def repay(self, payer: str, slot_id: int, amount: int, operation_id: str | None = None) -> Operation:
        return await self._submit(payer, "receivables", "repay", [slot_id, amount], operation_id)

    async def redeem(self, holder: str, piece_id: int, operation_id: str | None = None) -> Operation:
        return await self._submit(holder, "receivables", "redeem", [piece_id], operation_id)

    async def mark_defaulted(
        self, caller: str, slot_id: int, piece_id: int = 0, operation_id: str | None = None
    ) -> Operation:
        return await self._submit(caller, "receivables", "markDefaulted", [slot_id, piece_id], operation_id)

    async def freeze_piece(
        self, regulator: str, piece_id: int, reason: bytes, operation_id: str | None = None
    ) -> Operation:
        return await self._submit(regulator, "receivables", "freezePiece", [piece_id, reason], operation_id)

    async def unfreeze_piece(self, regulator: str, piece_id: int, operation_id: str | None = None) -> Operation:
        return await self._submit(regulator, "receivables", "unfreezePiece", [piece_id], operation_id)

    # warehouse receipts and pledge loans
    async def issue_receipt(
        self,
        warehouse: str,
        owner: str,
        lot_key_hash: bytes,
        goods_hash: bytes,
        quantity: int,
        unit: str,
        valuation: int,
        expiry: int,
        document_hash: bytes,
        operation_id: str | None = None,
    ) -> Operation:
        unit_bytes = unit.encode("ascii")
        if len(unit_bytes) > 8:
            raise ValueError(f"unit {unit!r} is longer than 8 characters")
        args = [
            owner,
            lot_key_hash,
            goods_hash,
            quantity,
            unit_bytes.ljust(8, b"\x00"),
            valuation,
            expiry,
            document_hash,
        ]
        return await self._submit(warehouse, "receipts", "issueReceipt", args, operation_id)

    async def revalue_receipt(
        self, valuer: str, receipt_id: int, valuation: int, attestation_hash: bytes, operation_id: str | None = None
    ) -> Operation:
        args = [receipt_id, valuation, attestation_hash]
        return await self._submit(valuer, "receipts", "revalueReceipt", args, operation_id)

    async def update_goods_status(
        self,
        valuer: str,
        receipt_id: int,
        status: GoodsStatus,
        attestation_hash: bytes,
        operation_id: str | None = None,
    ) -> Operation:
        args = [receipt_id, int(status), attestation_hash]
        return await self._submit(valuer, "receipts", "updateGoodsStatus", args, operation_id)

    async def appoint_oracle(self, warehouse: str, oracle: str, operation_id: str | None = None) -> Operation:
        return await self._submit(warehouse, "receipts", "appointOracle", [oracle], operation_id)

    async def transfer_receipt(
        self, owner: str, receipt_id: int, to: str, operation_id: str | None = None
    ) -> Operation:
        return await self._submit(owner, "receipts", "transferFrom", [owner, to, receipt_id], operation_id)

    async def pledge(
        self,
        owner: str,
        receipt_id: int,
        financier: str,
        principal: int,
        rate_bps: int,
        due_date: int,
        operation_id: str | None = None,
    ) -> Operation:
        """Ask ``financier`` for a loan of ``principal`` against the receipt (the financier then funds it)."""
        args = [receipt_id, financier, principal, rate_bps, due_date]
        return await self._submit(owner, "receipts", "requestPledge", args, operation_id)

    async def fund_pledge(self, financier: str, pledge_id: int, operation_id: str | None = None) -> Operation:
        return await self._submit(financier, "receipts", "fundPledge", [pledge_id], operation_id)

    async def decline_pledge(self, financier: str, pledge_id: int, operation_id: str | None = None) -> Operation:
        return await self._submit(financier, "receipts", "declinePledge", [pledge_id], operation_id)

    async def cancel_pledge(self, owner: str, pledge_id: int, operation_id: str | None = None) -> Operation:
        return await self._submit(owner, "receipts", "cancelPledge", [pledge_id], operation_id)

    async def repay_pledge(
        self, borrower: str, pledge_id: int, amount: int | None = None, operation_id: str | None = None
    ) -> Operation:
        """Pay ``amount`` towards the loan (interest first), or with ``amount=None`` everything owed when the
        transaction runs (interest accrues by the second, so a quoted figure is stale by then); paying
        everything releases the lien."""
        on_chain = 2**256 - 1 if amount is None else amount
        return await self._submit(borrower, "receipts", "repayPledge", [pledge_id, on_chain], operation_id)

    async def enforce_pledge(self, financier: str, pledge_id: int, operation_id: str | None = None) -> Operation:
        return await self._submit(financier, "receipts", "enforcePledge", [pledge_id], operation_id)

    async def request_redemption(self, owner: str, receipt_id: int, operation_id: str | None = None) -> Operation:
        return await self._submit(owner, "receipts", "requestRedemption", [receipt_id], operation_id)

    async def withdraw_redemption(self, owner: str, receipt_id: int, operation_id: str | None = None) -> Operation:
        return await self._submit(owner, "receipts", "withdrawRedemption", [receipt_id], operation_id)

    async def confirm_redemption(self, warehouse: str, receipt_id: int, operation_id: str | None = None) -> Operation:
        return await self._submit(warehouse, "receipts", "confirmRedemption", [receipt_id], operation_id)

    async def freeze_receipt(
        self, regulator: str, receipt_id: int, reason: bytes, operation_id: str | None = None
    ) -> Operation:
        return await self._submit(regulator, "receipts", "freezeReceipt", [receipt_id, reason], operation_id)

    async def unfreeze_receipt(self, regulator: str, receipt_id: int, operation_id: str | None = None) -> Operation:
        return await self._submit(regulator, "receipts", "unfreezeReceipt", [receipt_id], operation_id)

    async def set_advance_rate(
        self, operator: str, financier: str, advance_rate_bps: int, operation_id: str | None = None
    ) -> Operation:
        args = [financier, advance_rate_bps]
        return await self._submit(operator, "receipts", "setFinancierAdvanceRate", args, operation_id)

    # the service's audit log
    async def anchor_audit_log(
        self, operator: str, sequence: int, head: bytes, operation_id: str | None = None
    ) -> Operation:
        """Anchor the audit log's head on chain: it holds ``sequence`` records and the last hashes to ``head``."""
        return await self._submit(operator, "anchor", "anchor", [sequence, head], operation_id)


@dataclass(frozen=True)
class _EventSpec:
    name: str
    indexed: tuple[tuple[str, str], ...]
    plain: tuple[tuple[str, str], ...]
    order: tuple[str, ...]

    def decode(self, topics: Sequence[bytes], data: bytes) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for (name, type_), topic in zip(self.indexed, topics, strict=True):
            values[name] = topic if _is_dynamic(type_) else abi_decode([type_], topic)[0]
        for (name, _), value in zip(self.plain, abi_decode([t for _, t in self.plain], data), strict=True):
            values[name] = value
        return {name: _checksummed(values[name]) for name in self.order}


def _is_dynamic(type_: str) -> bool:
    return type_ in ("string", "bytes") or type_.endswith("]") or type_.startswith("(")


def _checksummed(value: Any) -> Any:
    if isinstance(value, str) and len(value) == 42 and value.startswith("0x"):
        return to_checksum_address(value)
    if isinstance(value, tuple | list):
        return type(value)(_checksummed(v) for v in value)
    return value


def _event_map(contracts: Mapping[str, Contract]) -> dict[tuple[str, bytes], tuple[str, _EventSpec]]:
    """(address lower-case, topic 0) → (contract key, event spec), for every event of every contract."""
    events: dict[tuple[str, bytes], tuple[str, _EventSpec]] = {}
    for key, contract in contracts.items():
        abi: list[dict[str, Any]] = cast(list[dict[str, Any]], contract.abi)
        for entry in abi:
            if entry.get("type") != "event" or entry.get("anonymous"):
                continue
            inputs: list[dict[str, Any]] = entry.get("inputs", [])
            types = [abi_type(i) for i in inputs]
            signature = f"{entry['name']}({','.join(types)})"
            spec = _EventSpec(
                name=str(entry["name"]),
                indexed=tuple((str(i["name"]), t) for i, t in zip(inputs, types, strict=True) if i.get("indexed")),
                plain=tuple((str(i["name"]), t) for i, t in zip(inputs, types, strict=True) if not i.get("indexed")),
                order=tuple(str(i["name"]) for i in inputs),
            )
            events[(str(contract.address).lower(), keccak(text=signature))] = (key, spec)
    return events
