"""Signed acts: a participant's act as an EIP-712 typed message it signs itself, verified on chain.

A self-custody participant's key never reaches the service. Each act that carries legal or money weight has
its own human-readable type (``ConfirmInvoice(address account,uint256 invoiceId,address seller,uint256
amount,...)``), which a wallet shows field by field and which stays, signed, as the evidence of the act. The
``SignedActs`` contract (``contracts/SignedActs.sol``) checks the signature against the key the registry holds
for the account, the deadline and an unordered nonce, then performs the act exactly as if the account had sent
the transaction.

Acts are declared once here, beside the operation they perform (:data:`ACTS`, keyed by catalogue operation):
an act's fields are the operation's call arguments, in order, followed by the terms it restates from the chain
(the invoice a buyer confirms, the request a financier funds), and, around them, ``account`` first and
``nonce`` and ``deadline`` last. :func:`typed_data` builds the EIP-712 document a wallet signs,
:func:`digest` hashes it (an implementation of our own over ``eth_abi``; the tests check it against
eth-account's), :func:`sign` signs it with a local key, and :func:`recover` finds who signed.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_keys import keys
from eth_typing import Hash32
from eth_utils import keccak, to_checksum_address

DOMAIN_NAME: Final = "scf-ledger"
DOMAIN_VERSION: Final = "1"
DOMAIN_FIELDS: Final = (
    ("name", "string"),
    ("version", "string"),
    ("chainId", "uint256"),
    ("verifyingContract", "address"),
)
SECP256K1_N: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
MAX_UINT256: Final = 2**256 - 1

Read = Callable[[str, str, Sequence[Any]], Any]
"""``read(contract key, view function, arguments) → result``: what an act reads of the chain to restate terms."""

Restate = Callable[[Read, Sequence[Any]], Sequence[Any]]
"""``(read, call arguments) → the restated fields' values``, in declaration order."""


@dataclass(frozen=True)
class ActType:
    """One kind of signed act."""

    name: str
    """The EIP-712 primary type, e.g. ``ConfirmInvoice``."""
    function: str
    """The ``SignedActs`` function that performs it."""
    fields: tuple[tuple[str, str], ...]
    """(name, Solidity type) of the act's own fields: the operation's call arguments, then restated terms."""
    restated: int = 0
    """How many of :attr:`fields`, at the end, restate chain state (checked on chain, read here by ``restate``)."""
    restate: Restate | None = None
    sentence: str = ""
    """What the signer undertakes, in words; ``{field}`` placeholders."""

    @property
    def all_fields(self) -> tuple[tuple[str, str], ...]:
        return (("account", "address"), *self.fields, ("nonce", "uint256"), ("deadline", "uint256"))

    @property
    def type_string(self) -> str:
        return f"{self.name}({','.join(f'{kind} {name}' for name, kind in self.all_fields)})"

    @property
    def type_hash(self) -> bytes:
        return keccak(text=self.type_string)

    def message(
        self, account: str, call_args: Sequence[Any], read: Read | None, *, nonce: int, deadline: int
    ) -> dict[str, Any]:
        """The act's message: ``account``, the call's arguments and the restated terms, nonce and deadline."""
        own = len(self.fields) - self.restated
        if len(call_args) != own:
            raise ValueError(f"{self.name} takes {own} call arguments, got {len(call_args)}")
        values = list(call_args)
        if self.restate is not None:
            if read is None:
                raise ValueError(f"{self.name} restates chain state and needs a reader")
            values.extend(self.restate(read, call_args))
        message: dict[str, Any] = {"account": to_checksum_address(account)}
        for (name, kind), value in zip(self.fields, values, strict=True):
            message[name] = _normalise(kind, value)
        message["nonce"] = nonce
        message["deadline"] = deadline
        return message


def _normalise(kind: str, value: Any) -> Any:
    if kind == "address":
        return to_checksum_address(value)
    if kind.startswith("bytes"):
        size = int(kind[5:])
        raw = bytes.fromhex(value[2:]) if isinstance(value, str) else bytes(value)
        if len(raw) != size:
            raise ValueError(f"a {kind} field needs {size} bytes, got {len(raw)}")
        return raw
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"a {kind} field needs an integer, got {type(value).__name__}")
    return value


def _invoice_terms(read: Read, args: Sequence[Any]) -> Sequence[Any]:
    invoice = read("receivables", "invoice", [args[0]])
    currency = read("token", "currency", [])
    # Invoice: seller, dueDate, state, buyer, confirmedAt, amount, repaid, redeemed, documentHash
    return [invoice[0], invoice[5], currency, invoice[1]]


def _request_terms(read: Read, args: Sequence[Any]) -> Sequence[Any]:
    r = read("receivables", "financingRequest", [args[0]])
    # FinancingRequest: holder, pieceId, state, discountRateBps, dayCountBasis, financier, fee, amount, ...
    return [r[0], r[7], r[3], r[6], r[4]]


def _pledge_terms(read: Read, args: Sequence[Any]) -> Sequence[Any]:
    p = read("receipts", "pledge", [args[0]])
    # Pledge: borrower, receiptId, rateBps, state, financier, principal, interestDue, dueDate, accruedFrom
    return [p[1], p[0], p[5], p[2], p[7]]


_ACTS: tuple[tuple[str, ActType], ...] = (
    (
        "invoice.register",
        ActType(
            "RegisterInvoice",
            "registerInvoice",
            (
                ("keyHash", "bytes32"),
                ("buyer", "address"),
                ("amount", "uint256"),
                ("currency", "bytes3"),
                ("dueDate", "uint64"),
                ("documentHash", "bytes32"),
            ),
            sentence="Register invoice {keyHash} of {amount} fen on {buyer}, due {dueDate}",
        ),
    ),
    (
        "invoice.confirm",
        ActType(
            "ConfirmInvoice",
            "confirmInvoice",
            (
                ("invoiceId", "uint256"),
                ("seller", "address"),
                ("amount", "uint256"),
                ("currency", "bytes3"),
                ("dueDate", "uint64"),
            ),
            restated=4,
            restate=_invoice_terms,
            sentence="Confirm invoice {invoiceId}: pay {amount} fen to {seller} on {dueDate}",
        ),
    ),
    (
        "invoice.reject",
        ActType(
            "RejectInvoice",
            "rejectInvoice",
            (("invoiceId", "uint256"), ("reason", "bytes32")),
            sentence="Reject invoice {invoiceId}",
        ),
    ),
    (
        "credit-line.set",
        ActType(
            "SetCreditLine",
            "setCreditLine",
            (("coreFirm", "address"), ("grant", "uint256")),
            sentence="Grant {grant} fen of credit to {coreFirm}",
        ),
    ),
    (
        "receivable.transfer",
        ActType(
            "AssignPiece",
            "assignPiece",
            (("pieceId", "uint256"), ("to", "address"), ("value", "uint256")),
            sentence="Assign {value} fen of receivable piece {pieceId} to {to}",
        ),
    ),
    (
        "financing.request",
        ActType(
            "RequestFinancing",
            "requestFinancing",
            (
                ("pieceId", "uint256"),
                ("amount", "uint256"),
                ("financier", "address"),
                ("maxDiscountRateBps", "uint16"),
                ("maxFee", "uint256"),
            ),
            sentence="Ask {financier} to finance {amount} fen of piece {pieceId}, accepting at most"
            " {maxDiscountRateBps} bp a year (365-day basis) and a fee of at most {maxFee} fen",
        ),
    ),
    (
        "financing.approve",
        ActType(
            "ApproveFinancing",
            "approveFinancing",
            (
                ("requestId", "uint256"),
                ("discountRateBps", "uint16"),
                ("fee", "uint256"),
                ("dayCountBasis", "uint16"),
                ("review", "bytes32"),
            ),
            sentence="Offer request {requestId} a discount of {discountRateBps} bp a year and a fee of {fee} fen"
            " ({dayCountBasis}-day basis; credit review {review})",
        ),
    ),
    (
        "financing.fund",
        ActType(
            "FundFinancing",
            "fundFinancing",
            (
                ("requestId", "uint256"),
                ("holder", "address"),
                ("amount", "uint256"),
                ("discountRateBps", "uint16"),
                ("fee", "uint256"),
                ("dayCountBasis", "uint16"),
            ),
            restated=5,
            restate=_request_terms,
            sentence="Fund request {requestId}: buy {amount} fen from {holder} at {discountRateBps} bp, fee {fee} fen",
        ),
    ),
    (
        "financing.register",
        ActType(
            "RecordFinancingRegistration",
            "recordFinancingRegistration",
            (("requestId", "uint256"), ("number", "bytes32"), ("registeredAt", "uint64")),
            sentence="Record the 中登网 registration {number} of {registeredAt} of financing request {requestId}",
        ),
    ),
    (
        "financing.decline",
        ActType(
            "DeclineFinancing",
            "declineFinancing",
            (("requestId", "uint256"),),
            sentence="Decline request {requestId}",
        ),
    ),
    (
        "financing.cancel",
        ActType(
            "CancelFinancing",
            "cancelFinancing",
            (("requestId", "uint256"),),
            sentence="Withdraw request {requestId}",
        ),
    ),
    (
        "obligation.repay",
        ActType(
            "Repay",
            "repay",
            (("invoiceId", "uint256"), ("amount", "uint256")),
            sentence="Pay {amount} fen towards obligation {invoiceId}",
        ),
    ),
    (
        "receivable.redeem",
        ActType("Redeem", "redeem", (("pieceId", "uint256"),), sentence="Redeem piece {pieceId}"),
    ),
    (
        "settlement.approve",
        ActType(
            "ApproveSettlement",
            "approveSettlement",
            (("spender", "address"), ("amount", "uint256")),
            sentence="Allow {spender} to draw {amount} fen in cash legs",
        ),
    ),
    (
        "receipt.issue",
        ActType(
            "IssueReceipt",
            "issueReceipt",
            (
                ("owner", "address"),
                ("lotKeyHash", "bytes32"),
                ("goodsHash", "bytes32"),
                ("quantity", "uint256"),
                ("unit", "bytes8"),
                ("valuation", "uint256"),
                ("expiry", "uint64"),
                ("documentHash", "bytes32"),
            ),
            sentence="Issue a receipt to {owner} for {quantity} units valued at {valuation} fen",
        ),
    ),
    (
        "receipt.revalue",
        ActType(
            "RevalueReceipt",
            "revalueReceipt",
            (("receiptId", "uint256"), ("valuation", "uint256"), ("attestationHash", "bytes32")),
            sentence="Value the goods of receipt {receiptId} at {valuation} fen",
        ),
    ),
    (
        "pledge.request",
        ActType(
            "RequestPledge",
            "requestPledge",
            (
                ("receiptId", "uint256"),
                ("financier", "address"),
                ("principal", "uint256"),
                ("rateBps", "uint16"),
                ("dueDate", "uint64"),
            ),
            sentence="Ask {financier} to lend {principal} fen at {rateBps} bp against receipt {receiptId}",
        ),
    ),
    (
        "pledge.fund",
        ActType(
            "FundPledge",
            "fundPledge",
            (
                ("pledgeId", "uint256"),
                ("receiptId", "uint256"),
                ("borrower", "address"),
                ("principal", "uint256"),
                ("rateBps", "uint16"),
                ("dueDate", "uint64"),
            ),
            restated=5,
            restate=_pledge_terms,
            sentence="Lend {principal} fen to {borrower} at {rateBps} bp against receipt {receiptId}",
        ),
    ),
    (
        "pledge.register",
        ActType(
            "RecordPledgeRegistration",
            "recordPledgeRegistration",
            (("pledgeId", "uint256"), ("number", "bytes32"), ("registeredAt", "uint64")),
            sentence="Record the 中登网 registration {number} of {registeredAt} of pledge {pledgeId}",
        ),
    ),
    (
        "pledge.decline",
        ActType("DeclinePledge", "declinePledge", (("pledgeId", "uint256"),), sentence="Decline pledge {pledgeId}"),
    ),
    (
        "pledge.cancel",
        ActType("CancelPledge", "cancelPledge", (("pledgeId", "uint256"),), sentence="Withdraw pledge {pledgeId}"),
    ),
    (
        "pledge.repay",
        ActType(
            "RepayPledge",
            "repayPledge",
            (("pledgeId", "uint256"), ("amount", "uint256")),
            sentence="Repay {amount} fen of pledge loan {pledgeId}",
        ),
    ),
    (
        "obligation.default",
        ActType(
            "MarkDefaulted",
            "markDefaulted",
            (("invoiceId", "uint256"), ("pieceId", "uint256")),
            sentence="Declare obligation {invoiceId} defaulted, as holder of piece {pieceId}",
        ),
    ),
    (
        "receipt.transfer",
        ActType(
            "TransferReceipt",
            "transferReceipt",
            (("receiptId", "uint256"), ("to", "address")),
            sentence="Transfer warehouse receipt {receiptId} to {to}",
        ),
    ),
    (
        "receipt.goods-status",
        ActType(
            "UpdateGoodsStatus",
            "updateGoodsStatus",
            (("receiptId", "uint256"), ("status", "uint8"), ("attestationHash", "bytes32")),
            sentence="Attest the goods of receipt {receiptId} as status {status} (attestation {attestationHash})",
        ),
    ),
    (
        "receipt.appoint-oracle",
        ActType(
            "AppointOracle",
            "appointOracle",
            (("oracle", "address"),),
            sentence="Appoint {oracle} to attest the value and state of my receipts' goods",
        ),
    ),
    (
        "pledge.enforce",
        ActType(
            "EnforcePledge",
            "enforcePledge",
            (("pledgeId", "uint256"),),
            sentence="Enforce overdue pledge {pledgeId}: take the pledged receipt",
        ),
    ),
    (
        "receipt.redeem",
        ActType(
            "RequestRedemption",
            "requestRedemption",
            (("receiptId", "uint256"),),
            sentence="Ask to take the goods of receipt {receiptId} out of the warehouse",
        ),
    ),
    (
        "receipt.redemption-withdraw",
        ActType(
            "WithdrawRedemption",
            "withdrawRedemption",
            (("receiptId", "uint256"),),
            sentence="Withdraw my request to redeem receipt {receiptId}",
        ),
    ),
    (
        "receipt.redemption-confirm",
        ActType(
            "ConfirmRedemption",
            "confirmRedemption",
            (("receiptId", "uint256"),),
            sentence="Confirm the goods of receipt {receiptId} were handed over (the receipt is burnt)",
        ),
    ),
)

ACTS: Final[Mapping[str, ActType]] = dict(_ACTS)
"""The signed act of each catalogue operation that has one."""

ROTATE_KEY: Final = ActType(
    "RotateKey", "rotateKey", (("newSigner", "address"),), sentence="Replace my signing key by {newSigner}"
)
"""Not an operation of the catalogue: a self-custody participant replacing its own key."""

ACT_TYPES: Final[Mapping[str, ActType]] = {act.name: act for act in (*ACTS.values(), ROTATE_KEY)}
"""Every act type by its EIP-712 name."""


def act_call_args(operation: str, function: str, call_args: Sequence[Any], values: Mapping[str, Any]) -> list[Any]:
    """The act's own arguments for a catalogue operation's call: the call's arguments, except for a piece's
    assignment, whose two overloads the act folds into one (piece, to, value), and a receipt's transfer, whose
    ``from`` is the act's account."""
    if operation == "receivable.transfer":
        return [values["piece_id"], values["to"], values["amount"]]
    if operation == "receipt.transfer":  # transferFrom(sender, to, receiptId): the sender is the act's account
        return [values["receipt_id"], values["to"]]
    return list(call_args)


def domain(chain_id: int, verifying_contract: str) -> dict[str, Any]:
    return {
        "name": DOMAIN_NAME,
        "version": DOMAIN_VERSION,
        "chainId": chain_id,
        "verifyingContract": to_checksum_address(verifying_contract),
    }


def typed_data(act: ActType, message: Mapping[str, Any], chain_id: int, verifying_contract: str) -> dict[str, Any]:
    """The EIP-712 document of an act (``eth_signTypedData_v4``'s argument), with bytes as 0x-hex."""
    return {
        "types": {
            "EIP712Domain": [{"name": n, "type": t} for n, t in DOMAIN_FIELDS],
            act.name: [{"name": n, "type": t} for n, t in act.all_fields],
        },
        "primaryType": act.name,
        "domain": domain(chain_id, verifying_contract),
        "message": {k: ("0x" + v.hex() if isinstance(v, bytes) else v) for k, v in message.items()},
    }


def act_of(document: Mapping[str, Any]) -> ActType:
    """The act type of a typed-data document, checked against the declared one field by field."""
    act = ACT_TYPES.get(str(document.get("primaryType")))
    if act is None:
        raise ValueError(f"unknown act type {document.get('primaryType')!r}")
    declared = [{"name": n, "type": t} for n, t in act.all_fields]
    if document.get("types", {}).get(act.name) != declared:
        raise ValueError(f"the fields of {act.name} are not the declared ones")
    return act


def _encode_value(kind: str, value: Any) -> Any:
    if kind.startswith("bytes") and isinstance(value, str):
        return bytes.fromhex(value[2:] if value.startswith("0x") else value)
    return value


def struct_hash(act: ActType, message: Mapping[str, Any]) -> bytes:
    kinds = [kind for _, kind in act.all_fields]
    values = [_encode_value(kind, message[name]) for name, kind in act.all_fields]
    return keccak(act.type_hash + abi_encode(kinds, values))


def domain_separator(chain_id: int, verifying_contract: str) -> bytes:
    domain_type = "EIP712Domain(" + ",".join(f"{t} {n}" for n, t in DOMAIN_FIELDS) + ")"
    return keccak(
        abi_encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [
                keccak(text=domain_type),
                keccak(text=DOMAIN_NAME),
                keccak(text=DOMAIN_VERSION),
                chain_id,
                to_checksum_address(verifying_contract),
            ],
        )
    )


def digest(document: Mapping[str, Any]) -> bytes:
    """The EIP-712 hash of a typed-data document: what the signature is over."""
    act = act_of(document)
    d = document["domain"]
    if (d.get("name"), d.get("version")) != (DOMAIN_NAME, DOMAIN_VERSION):
        raise ValueError("the document's domain is not the ledger's")
    separator = domain_separator(int(d["chainId"]), str(d["verifyingContract"]))
    return keccak(b"\x19\x01" + separator + struct_hash(act, document["message"]))


def sign(document: Mapping[str, Any], key: LocalAccount | bytes) -> bytes:
    """A 65-byte signature (r, s, v with v 27 or 28, s low) of the document by a local key."""
    account = key if isinstance(key, LocalAccount) else Account.from_key(key)
    signed = account.unsafe_sign_hash(Hash32(digest(document)))
    return bytes(signed.signature)


def recover(document: Mapping[str, Any], signature: bytes) -> str | None:
    """The address that signed, or None for a malformed or malleable (high-s) signature."""
    return recover_hash(digest(document), signature)


def fresh_nonce() -> int:
    """A nonce for an act signed without asking the chain: random in a space of 2^64 words of 256, so two never
    collide in practice. The first nonce of a word costs a fresh storage word (about 17,000 gas more than a
    nonce in a word already in use); :func:`next_nonce` picks the cheap one when the bitmap is at hand."""
    return secrets.randbits(72)


def next_nonce(bitmap: int, word: int, taken: set[int] | None = None) -> int | None:
    """The lowest nonce of ``word`` not set in its ``bitmap`` (nor in ``taken``, nonces handed out but not yet
    on chain), or None when the word is full."""
    for bit in range(256):
        nonce = (word << 8) | bit
        if not bitmap >> bit & 1 and (taken is None or nonce not in taken):
            return nonce
    return None


def call_arguments(act: ActType, message: Mapping[str, Any], signature: bytes) -> list[Any]:
    """The ``SignedActs`` function's arguments: the act as a tuple in field order, and the signature."""
    return [tuple(_encode_value(kind, message[name]) for name, kind in act.all_fields), signature]


class _Fen(int):
    """An amount in fen that formats as ``¥1,234.56 (123456 fen)`` under the spec ``fen``."""

    def __format__(self, spec: str) -> str:
        if spec != "fen":
            return int.__format__(self, spec)
        if self == MAX_UINT256:
            return "any amount"
        yuan, fen = divmod(int(self), 100)
        return f"¥{yuan:,}.{fen:02d} ({int(self)} fen)"


#: Fields that are unix times, shown as UTC dates.
_DATE_FIELDS: Final = frozenset({"dueDate", "expiry", "registeredAt"})
#: Fields that are ASCII text left-aligned in 32 bytes (a 中登网 registration number), shown as the text.
_TEXT_FIELDS: Final = frozenset({"number"})


def sentence(act: ActType, message: Mapping[str, Any]) -> str:
    """The act in words, with its fields filled in: amounts in yuan with the exact fen beside them ("¥250,000.00
    (25000000 fen)"), due dates, expiries and registration dates as UTC dates, a registration number as its
    text, other bytes as 0x-hex."""
    values: dict[str, Any] = {}
    for name, value in message.items():
        if isinstance(value, bytes) and name in _TEXT_FIELDS:
            values[name] = value.rstrip(b"\0").decode("ascii", "replace")
        elif isinstance(value, bytes):
            values[name] = "0x" + value.hex()
        elif name in _DATE_FIELDS and isinstance(value, int):
            values[name] = datetime.fromtimestamp(value, UTC).date().isoformat()
        elif isinstance(value, int) and not isinstance(value, bool):
            values[name] = _Fen(value)
        else:
            values[name] = value
    return re.sub(r"\{(\w+)\} fen", r"{\1:fen}", act.sentence).format(**values)


ERC1271_MAGIC: Final = bytes.fromhex("1626ba7e")


def possession_message(account: str, chain_id: int, registry: str, credit_code: str) -> str:
    """The text a self-custody participant signs (EIP-191 ``personal_sign``) to prove it holds the key of
    ``account`` before it is onboarded: it names the chain, the registry and the participant, so a proof for
    one ledger or one participant proves nothing for another."""
    return (
        "scf-ledger: I hold the key of this account and sign my own acts.\n"
        f"account: {to_checksum_address(account)}\n"
        f"chain: {chain_id}\n"
        f"registry: {to_checksum_address(registry)}\n"
        f"participant: {credit_code}"
    )


def possession_hash(message: str) -> bytes:
    """The EIP-191 hash of a possession message (what a key signs, and what a contract account's
    ``isValidSignature`` is asked about)."""
    raw = message.encode("utf-8")
    return keccak(b"\x19Ethereum Signed Message:\n" + str(len(raw)).encode() + raw)


def recover_hash(message_hash: bytes, signature: bytes) -> str | None:
    """The key that signed a 32-byte hash, or None for a malformed or high-s signature."""
    if len(signature) != 65:
        return None
    r, s, v = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big"), signature[64]
    if v not in (27, 28) or not 0 < r < SECP256K1_N or not 0 < s <= SECP256K1_N // 2:
        return None
    public_key = keys.Signature(vrs=(v - 27, r, s)).recover_public_key_from_msg_hash(message_hash)
    return str(public_key.to_checksum_address())
