"""The ledger's domain objects as Python sees them: states mirrored from Solidity, records as dataclasses.

The enums are the Solidity enums value for value (``contracts/interfaces/*.sol``); a test compares them with
the ABIs. Money is ``int`` in minor units (fen); rates are basis points; times are Unix seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from eth_utils import keccak


class ParticipantStatus(IntEnum):
    """``IParticipantRegistry.ParticipantStatus``."""

    UNREGISTERED = 0
    ACTIVE = 1
    SUSPENDED = 2


class InvoiceState(IntEnum):
    """``IReceivables.InvoiceState``: an invoice, and the obligation it becomes once confirmed.

    ``OVERDUE`` is never stored; the contract reports it for a confirmed obligation past maturity plus grace.
    """

    NONE = 0
    REGISTERED = 1
    REJECTED = 2
    CONFIRMED = 3
    PAID = 4
    DEFAULTED = 5
    OVERDUE = 6


class RequestState(IntEnum):
    """``IReceivables.RequestState``: a financing request."""

    NONE = 0
    REQUESTED = 1
    APPROVED = 2
    FUNDED = 3
    DECLINED = 4
    CANCELLED = 5


class ReceiptState(IntEnum):
    """``IWarehouseReceipts.ReceiptState``."""

    NONE = 0
    ACTIVE = 1
    PLEDGE_REQUESTED = 2
    PLEDGED = 3
    REDEMPTION_REQUESTED = 4
    REDEEMED = 5


class GoodsStatus(IntEnum):
    """``IWarehouseReceipts.GoodsStatus``."""

    SOUND = 0
    DAMAGED = 1
    DISPUTED = 2
    MISSING = 3


class PledgeState(IntEnum):
    """``IWarehouseReceipts.PledgeState``."""

    NONE = 0
    REQUESTED = 1
    CANCELLED = 2
    DECLINED = 3
    ACTIVE = 4
    RELEASED = 5
    ENFORCED = 6


class Role(IntEnum):
    """The participant roles of docs/design.md; ``role_name`` gives the on-chain id's preimage."""

    OPERATOR = 0
    CORE_FIRM = 1
    SUPPLIER = 2
    FINANCIER = 3
    WAREHOUSE = 4
    REGULATOR = 5
    SETTLEMENT_AGENT = 6
    SYSTEM = 7

    @property
    def role_name(self) -> str:
        """``keccak256("scf.role.<role_name>")`` is the role's AccessControl id (``contracts/Roles.sol``)."""
        return self.name.lower().replace("_", "-")

    @property
    def role_id(self) -> bytes:
        """The role's on-chain AccessControl id, ``keccak256("scf.role.<role_name>")``: derived here only."""
        return keccak(text=f"scf.role.{self.role_name}")

    @classmethod
    def named(cls, role_name: str) -> Role:
        """The role whose :attr:`role_name` is ``role_name`` (``"core-firm"``); ValueError for another name."""
        for role in cls:
            if role.role_name == role_name:
                return role
        raise ValueError(f"unknown role {role_name!r}")


@dataclass(frozen=True)
class Participant:
    address: str
    identity_hash: bytes
    status: ParticipantStatus
    frozen: bool
    registered_at: int


@dataclass(frozen=True)
class Invoice:
    """An invoice; once confirmed, also obligation (slot) ``invoice_id``."""

    invoice_id: int
    seller: str
    due_date: int
    state: InvoiceState
    buyer: str
    confirmed_at: int
    amount: int
    repaid: int
    redeemed: int
    document_hash: bytes

    @property
    def outstanding(self) -> int:
        """What the buyer still owes."""
        return self.amount - self.repaid


@dataclass(frozen=True)
class Piece:
    """A piece of an obligation. ``owner`` is the zero address once redeemed away (burnt)."""

    piece_id: int
    owner: str
    slot_id: int
    parent_id: int
    value: int
    checkpoint: int
    open_request_id: int
    frozen: bool


@dataclass(frozen=True)
class Registration:
    """A registration in 中登网 (动产和权利担保统一登记) as a financier recorded it on chain: the initial registration
    number (ASCII digits) and the registration's date (a Unix time of that day)."""

    number: str
    registered_at: int

    @classmethod
    def of(cls, number: bytes, registered_at: int) -> Registration | None:
        """From the chain's ``(bytes32 number, uint64 registeredAt)``; None when nothing was recorded."""
        if registered_at == 0 and not any(number):
            return None
        return cls(number.rstrip(b"\0").decode("ascii", "replace"), registered_at)


@dataclass(frozen=True)
class FinancingRequest:
    request_id: int
    holder: str
    piece_id: int
    state: RequestState
    discount_rate_bps: int
    day_count_basis: int
    financier: str
    fee: int
    amount: int
    price: int
    funded_piece_id: int
    max_discount_rate_bps: int
    """The most the holder accepted when it asked: a rate a year on a 365-day basis."""
    max_fee: int
    review: bytes
    """The financier's credit review (hash or reference of its document); 32 zero bytes when none."""


@dataclass(frozen=True)
class CreditLine:
    core_firm: str
    limit: int
    used: int

    @property
    def available(self) -> int:
        return self.limit - self.used


@dataclass(frozen=True)
class Receipt:
    receipt_id: int
    owner: str
    warehouse: str
    valuation: int
    quantity: int
    unit: str
    valued_at: int
    expiry: int
    goods_status: GoodsStatus
    state: ReceiptState
    frozen: bool


@dataclass(frozen=True)
class Pledge:
    pledge_id: int
    borrower: str
    receipt_id: int
    rate_bps: int
    state: PledgeState
    financier: str
    principal: int
    interest_due: int
    due_date: int
    accrued_from: int


@dataclass(frozen=True)
class AuditAnchor:
    """An anchor of the service's audit log on chain: the log had ``sequence`` records and the last one hashed
    to ``head`` (``AuditAnchor.Anchor``, or an ``AuditLogAnchored`` event)."""

    sequence: int
    head: bytes
    operator: str
    block_number: int
