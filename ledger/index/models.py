"""Tables of the event index: the raw event log, the blocks it came from, and the projections built from it.

The raw event log (``events``) is what the chain said; every other table here is a projection of it,
rebuilt exactly by replaying the log (docs/design.md, invariant 8). Projection rows are keyed by the ids the
contracts use, and every list the service will serve (by owner, seller, buyer, financier, state, block) has
an index that starts with its filter and ends with the id it pages by, so a page costs the same at 1,000
receivables as at 100,000.

Conventions: addresses are EIP-55 checksummed strings; hashes are ``0x``-prefixed lower-case hex; money is
an exact integer in minor units (:class:`ChainUint`, never a float); rates are basis points; times are Unix
seconds; states are the Solidity enums of :mod:`ledger.models`, stored as their integer values.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine, UserDefinedType

from ledger.db import Base
from ledger.models import GoodsStatus, InvoiceState, ParticipantStatus, PledgeState, ReceiptState, RequestState

_INT64_MAX = 2**63 - 1
_UINT256_DIGITS = 78  # len(str(2**256 - 1))

ADDRESS = 42
"""Length of an EIP-55 address string."""
HASH = 66
"""Length of a ``0x``-prefixed 32-byte hash."""


class _SQLiteUint(UserDefinedType[int]):
    """SQLite column type for :class:`ChainUint`. Its declared name contains ``BLOB`` and not ``INT`` (so
    not ``UINT`` either), which gives the column BLOB affinity: SQLite keeps values as bound, where NUMERIC or
    INTEGER affinity would turn integers beyond 64 bits into lossy REALs."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "BIGNUM_BLOB"


class ChainUint(TypeDecorator[int]):
    """An unsigned integer of the chain (``uint64`` … ``uint256``: amounts, values, dates a participant
    chooses), exact on every database and read back as ``int``.

    PostgreSQL stores it as ``NUMERIC(78, 0)``, which holds any ``uint256``. SQLite has no exact type wider
    than 64 bits, so values up to 2**63 − 1 are stored as INTEGER (readable, summable, indexable) and larger
    ones as 78-digit zero-padded TEXT. SQLite orders every INTEGER before every TEXT, and padded TEXT values
    order among themselves as numbers, so comparisons and ``ORDER BY`` stay numeric across the two forms.
    """

    impl = Numeric(_UINT256_DIGITS, 0)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(_SQLiteUint())
        return dialect.type_descriptor(Numeric(_UINT256_DIGITS, 0))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        number = int(value)
        if number < 0:
            raise ValueError(f"a chain uint cannot be negative: {number}")
        if dialect.name == "sqlite" and number > _INT64_MAX:
            return f"{number:0{_UINT256_DIGITS}d}"
        return number

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        return int(value)

    @property
    def python_type(self) -> type[int]:
        return int


E = TypeVar("E", bound=IntEnum)


class IntEnumColumn(TypeDecorator[E], Generic[E]):
    """A Solidity enum, stored as its integer value and read back as the mirrored :class:`IntEnum`."""

    impl = SmallInteger
    cache_ok = True

    def __init__(self, enum_type: type[E]) -> None:
        super().__init__()
        self.enum_type = enum_type

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | None:
        return None if value is None else int(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> E | None:
        return None if value is None else self.enum_type(value)


_JSON = JSON().with_variant(JSONB(), "postgresql")
_BLOCK = BigInteger
_ID = BigInteger


# -- the raw event log and its blocks ----------------------------------------------------------------------


class EventRow(Base):
    """One log of a ledger contract, decoded: the source every projection is rebuilt from.

    ``(block_hash, log_index)`` is the idempotency key: a log is stored once however often its block is read.
    ``args`` holds the decoded arguments by name as JSON: integers exact, addresses checksummed, byte
    strings as ``0x`` hex.
    """

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("block_hash", "log_index", name="uq_events_block_hash_log_index"),
        Index("ix_events_tx_hash", "tx_hash"),
        Index("ix_events_contract_name_block", "contract", "name", "block_number"),
    )

    block_number: Mapped[int] = mapped_column(_BLOCK, primary_key=True, autoincrement=False)
    log_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    block_hash: Mapped[str] = mapped_column(String(HASH))
    block_timestamp: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(HASH))
    tx_index: Mapped[int] = mapped_column(Integer)
    contract: Mapped[str] = mapped_column(String(32))
    """The ledger's name of the emitting contract: ``registry``, ``token``, ``receivables``, ``receipts``."""
    address: Mapped[str] = mapped_column(String(ADDRESS))
    name: Mapped[str] = mapped_column(String(64))
    """The event's name, e.g. ``InvoiceConfirmed``."""
    args: Mapped[dict[str, Any]] = mapped_column(_JSON)


class BlockRow(Base):
    """A block that holds at least one indexed event: its hash (to notice a reorganisation) and time."""

    __tablename__ = "blocks"

    number: Mapped[int] = mapped_column(_BLOCK, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(HASH), unique=True)
    timestamp: Mapped[int] = mapped_column(BigInteger)


class IndexCheckpointRow(Base):
    """The single row saying how far the index has read the chain and for which contracts.

    ``block_number``/``block_hash`` is the last block read (with or without events); it advances in the same
    transaction as the events of the blocks before it, so the index never holds half a block range.
    """

    __tablename__ = "index_checkpoint"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    contracts: Mapped[dict[str, str]] = mapped_column(_JSON)
    """Contract name → address the index reads."""
    block_number: Mapped[int | None] = mapped_column(_BLOCK)
    block_hash: Mapped[str | None] = mapped_column(String(HASH))


# -- participants ------------------------------------------------------------------------------------------


class ParticipantRow(Base):
    """A participant of the registry (``IParticipantRegistry.Participant``)."""

    __tablename__ = "participants"
    __table_args__ = (Index("ix_participants_status", "status"),)

    account: Mapped[str] = mapped_column(String(ADDRESS), primary_key=True)
    identity_hash: Mapped[str] = mapped_column(String(HASH))
    status: Mapped[ParticipantStatus] = mapped_column(IntEnumColumn(ParticipantStatus))
    frozen: Mapped[bool] = mapped_column(Boolean)
    freeze_reason: Mapped[str | None] = mapped_column(String(HASH))
    registered_at: Mapped[int] = mapped_column(BigInteger)
    registered_by: Mapped[str] = mapped_column(String(ADDRESS))
    updated_block: Mapped[int] = mapped_column(_BLOCK)


class ParticipantRoleRow(Base):
    """A role a participant holds (AccessControl ``RoleGranted`` less ``RoleRevoked``).

    ``role`` is the role's name from ``contracts/Roles.sol`` (``core-firm``), ``admin`` for
    ``DEFAULT_ADMIN_ROLE``, or the role id in hex for a role the ledger does not know.
    """

    __tablename__ = "participant_roles"
    __table_args__ = (Index("ix_participant_roles_role_account", "role", "account"),)

    account: Mapped[str] = mapped_column(String(ADDRESS), primary_key=True)
    role: Mapped[str] = mapped_column(String(HASH), primary_key=True)
    granted_by: Mapped[str] = mapped_column(String(ADDRESS))
    updated_block: Mapped[int] = mapped_column(_BLOCK)


# -- receivables -------------------------------------------------------------------------------------------


class InvoiceRow(Base):
    """An invoice and, once confirmed, the obligation (ERC-3525 slot) of the same id.

    ``state`` is the stored state; ``Overdue`` is never stored (it depends on the time of asking).
    """

    __tablename__ = "invoices"
    __table_args__ = (
        Index("ix_invoices_seller_id", "seller", "id"),
        Index("ix_invoices_buyer_id", "buyer", "id"),
        Index("ix_invoices_state_id", "state", "id"),
        Index("ix_invoices_due_date", "due_date"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=False)
    key_hash: Mapped[str] = mapped_column(String(HASH), unique=True)
    seller: Mapped[str] = mapped_column(String(ADDRESS))
    buyer: Mapped[str] = mapped_column(String(ADDRESS))
    amount: Mapped[int] = mapped_column(ChainUint())
    currency: Mapped[str] = mapped_column(String(3))
    due_date: Mapped[int] = mapped_column(ChainUint())
    document_hash: Mapped[str] = mapped_column(String(HASH))
    state: Mapped[InvoiceState] = mapped_column(IntEnumColumn(InvoiceState))
    registered_at: Mapped[int] = mapped_column(BigInteger)
    confirmed_at: Mapped[int | None] = mapped_column(BigInteger)
    first_piece_id: Mapped[int | None] = mapped_column(_ID)
    rejection_reason: Mapped[str | None] = mapped_column(String(HASH))
    repaid: Mapped[int] = mapped_column(ChainUint())
    redeemed: Mapped[int] = mapped_column(ChainUint())
    defaulted_by: Mapped[str | None] = mapped_column(String(ADDRESS))
    updated_block: Mapped[int] = mapped_column(_BLOCK)


class PieceRow(Base):
    """A piece of an obligation (an ERC-3525 token) and where it sits in the tree of splits.

    ``root_id`` is the slot's first piece, ``depth`` the number of splits from it and ``path`` the ids from
    the root down to this piece joined by ``/`` (``pathOf`` without walking parents). A piece redeemed to
    nothing is burnt: ``burnt`` is true and ``owner`` is None, as on chain.
    """

    __tablename__ = "pieces"
    __table_args__ = (
        # GET /receivables: the caller's unburnt pieces by id; the index alone answers its pages and its count
        Index("ix_pieces_owner_burnt_id", "owner", "burnt", "id"),
        Index("ix_pieces_slot_id_id", "slot_id", "id"),
        Index("ix_pieces_parent_id", "parent_id"),
        Index("ix_pieces_root_id", "root_id"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=False)
    slot_id: Mapped[int] = mapped_column(_ID, ForeignKey("invoices.id"))
    owner: Mapped[str | None] = mapped_column(String(ADDRESS))
    value: Mapped[int] = mapped_column(ChainUint())
    checkpoint: Mapped[int] = mapped_column(ChainUint())
    """The obligation's repaid total when the piece last redeemed (what its next payout is counted from)."""
    parent_id: Mapped[int | None] = mapped_column(_ID, ForeignKey("pieces.id"))
    root_id: Mapped[int] = mapped_column(_ID)
    depth: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(Text)
    frozen: Mapped[bool] = mapped_column(Boolean)
    open_request_id: Mapped[int | None] = mapped_column(_ID)
    """The financing request the piece is locked in, if any."""
    burnt: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_block: Mapped[int] = mapped_column(_BLOCK)


class PieceAllowanceRow(Base):
    """An ERC-3525 value allowance: ``operator`` may still move ``value`` out of piece ``piece_id``
    (``2**256 - 1``: without limit), as ``allowance(piece_id, operator)`` answers.

    Built from ``ApprovalValue`` events alone: the holder's ``approve``, an operator's spending, and the end of
    every allowance when the whole piece changes hands or is burnt (the contract announces each with an
    ``ApprovalValue`` of 0). A row exists only while the allowance is not zero.
    """

    __tablename__ = "piece_allowances"

    piece_id: Mapped[int] = mapped_column(_ID, ForeignKey("pieces.id"), primary_key=True, autoincrement=False)
    operator: Mapped[str] = mapped_column(String(ADDRESS), primary_key=True)
    value: Mapped[int] = mapped_column(ChainUint())
    updated_block: Mapped[int] = mapped_column(_BLOCK)


class FinancingRequestRow(Base):
    """A holder's request to finance a piece with a named financier, its terms and its settlement."""

    __tablename__ = "financing_requests"
    __table_args__ = (
        Index("ix_financing_requests_holder_id", "holder", "id"),
        Index("ix_financing_requests_financier_id", "financier", "id"),
        Index("ix_financing_requests_state_id", "state", "id"),
        Index("ix_financing_requests_piece_id", "piece_id"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=False)
    piece_id: Mapped[int] = mapped_column(_ID, ForeignKey("pieces.id"))
    holder: Mapped[str] = mapped_column(String(ADDRESS))
    financier: Mapped[str] = mapped_column(String(ADDRESS))
    amount: Mapped[int] = mapped_column(ChainUint())
    state: Mapped[RequestState] = mapped_column(IntEnumColumn(RequestState))
    discount_rate_bps: Mapped[int | None] = mapped_column(Integer)
    day_count_basis: Mapped[int | None] = mapped_column(Integer)
    fee: Mapped[int | None] = mapped_column(ChainUint())
    discount: Mapped[int | None] = mapped_column(ChainUint())
    price: Mapped[int | None] = mapped_column(ChainUint())
    funded_piece_id: Mapped[int | None] = mapped_column(_ID)
    max_discount_rate_bps: Mapped[int | None] = mapped_column(Integer)
    """The most the holder accepted when it asked: a rate a year on a 365-day basis (null: indexed before)."""
    max_fee: Mapped[int | None] = mapped_column(ChainUint())
    review: Mapped[str | None] = mapped_column(String(HASH))
    """The financier's credit review recorded with its approval (32 zero bytes: none); null until approved."""
    requested_at: Mapped[int] = mapped_column(BigInteger)
    approved_at: Mapped[int | None] = mapped_column(BigInteger)
    closed_at: Mapped[int | None] = mapped_column(BigInteger)
    """When the request was funded, declined or cancelled."""
    registration_number: Mapped[str | None] = mapped_column(String(32))
    """The 中登网 initial registration number its financier recorded (ASCII digits); null while unregistered."""
    registered_at: Mapped[int | None] = mapped_column(BigInteger)
    """The registration's date as the financier recorded it (a Unix time of that day)."""
    registration_recorded_at: Mapped[int | None] = mapped_column(BigInteger)
    """When the financier recorded the registration on chain (block time)."""
    updated_block: Mapped[int] = mapped_column(_BLOCK)


class RepaymentRow(Base):
    """A payment of the buyer against an obligation (``ObligationRepaid``)."""

    __tablename__ = "repayments"
    __table_args__ = (
        Index("ix_repayments_slot_id", "slot_id"),
        Index("ix_repayments_payer", "payer"),
    )

    block_number: Mapped[int] = mapped_column(_BLOCK, primary_key=True, autoincrement=False)
    log_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    tx_hash: Mapped[str] = mapped_column(String(HASH))
    block_timestamp: Mapped[int] = mapped_column(BigInteger)
    slot_id: Mapped[int] = mapped_column(_ID)
    payer: Mapped[str] = mapped_column(String(ADDRESS))
    amount: Mapped[int] = mapped_column(ChainUint())
    repaid: Mapped[int] = mapped_column(ChainUint())
    """The obligation's repaid total after this payment."""
    outstanding: Mapped[int] = mapped_column(ChainUint())


class RedemptionRow(Base):
    """A holder's redemption of a piece for deposit tokens (``PieceRedeemed``)."""

    __tablename__ = "redemptions"
    __table_args__ = (
        Index("ix_redemptions_holder", "holder"),
        Index("ix_redemptions_slot_id", "slot_id"),
        Index("ix_redemptions_piece_id", "piece_id"),
    )

    block_number: Mapped[int] = mapped_column(_BLOCK, primary_key=True, autoincrement=False)
    log_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    tx_hash: Mapped[str] = mapped_column(String(HASH))
    block_timestamp: Mapped[int] = mapped_column(BigInteger)
    piece_id: Mapped[int] = mapped_column(_ID)
    slot_id: Mapped[int] = mapped_column(_ID)
    holder: Mapped[str] = mapped_column(String(ADDRESS))
    payout: Mapped[int] = mapped_column(ChainUint())
    remaining: Mapped[int] = mapped_column(ChainUint())


class CreditLineRow(Base):
    """A core firm's credit line: the sum of its grants, and its confirmed-unpaid total."""

    __tablename__ = "credit_lines"

    core_firm: Mapped[str] = mapped_column(String(ADDRESS), primary_key=True)
    credit_limit: Mapped[int] = mapped_column(ChainUint())
    used: Mapped[int] = mapped_column(ChainUint())
    updated_block: Mapped[int] = mapped_column(_BLOCK)


class CreditGrantRow(Base):
    """What one grantor (a financier or the operator) grants to a core firm's credit line."""

    __tablename__ = "credit_grants"
    __table_args__ = (Index("ix_credit_grants_core_firm", "core_firm"),)

    grantor: Mapped[str] = mapped_column(String(ADDRESS), primary_key=True)
    core_firm: Mapped[str] = mapped_column(String(ADDRESS), primary_key=True)
    amount: Mapped[int] = mapped_column(ChainUint())
    updated_block: Mapped[int] = mapped_column(_BLOCK)


# -- deposit token -----------------------------------------------------------------------------------------


class DepositTransferRow(Base):
    """A movement of the deposit token (ERC-20 ``Transfer``): ``sender`` None for an issue (mint),
    ``recipient`` None for a redemption (burn), which also carry the settlement agent's bank reference.
    The regulator's large-transaction report reads this table by time and amount."""

    __tablename__ = "deposit_transfers"
    __table_args__ = (
        Index("ix_deposit_transfers_sender_block", "sender", "block_number"),
        Index("ix_deposit_transfers_recipient_block", "recipient", "block_number"),
        Index("ix_deposit_transfers_block_timestamp", "block_timestamp"),
        Index("ix_deposit_transfers_amount", "amount"),
    )

    block_number: Mapped[int] = mapped_column(_BLOCK, primary_key=True, autoincrement=False)
    log_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    tx_hash: Mapped[str] = mapped_column(String(HASH))
    block_timestamp: Mapped[int] = mapped_column(BigInteger)
    sender: Mapped[str | None] = mapped_column(String(ADDRESS))
    recipient: Mapped[str | None] = mapped_column(String(ADDRESS))
    amount: Mapped[int] = mapped_column(ChainUint())
    bank_reference: Mapped[str | None] = mapped_column(String(HASH))
    agent: Mapped[str | None] = mapped_column(String(ADDRESS))


# -- warehouse receipts ------------------------------------------------------------------------------------


class WarehouseReceiptRow(Base):
    """A warehouse receipt (ERC-721) for one lot of goods. ``owner`` is None once redeemed (burnt)."""

    __tablename__ = "warehouse_receipts"
    __table_args__ = (
        Index("ix_warehouse_receipts_owner_id", "owner", "id"),
        Index("ix_warehouse_receipts_warehouse_id", "warehouse", "id"),
        Index("ix_warehouse_receipts_state_id", "state", "id"),
    )

    id: Mapped[int] = mapped_column(ChainUint(), primary_key=True, autoincrement=False)
    """The receipt's token id: the lot key hash read as a ``uint256`` (wider than 64 bits)."""
    warehouse: Mapped[str] = mapped_column(String(ADDRESS))
    owner: Mapped[str | None] = mapped_column(String(ADDRESS))
    lot_key_hash: Mapped[str] = mapped_column(String(HASH), unique=True)
    goods_hash: Mapped[str] = mapped_column(String(HASH))
    document_hash: Mapped[str] = mapped_column(String(HASH))
    quantity: Mapped[int] = mapped_column(ChainUint())
    unit: Mapped[str] = mapped_column(String(8))
    valuation: Mapped[int] = mapped_column(ChainUint())
    valued_at: Mapped[int] = mapped_column(BigInteger)
    expiry: Mapped[int] = mapped_column(ChainUint())
    goods_status: Mapped[GoodsStatus] = mapped_column(IntEnumColumn(GoodsStatus))
    state: Mapped[ReceiptState] = mapped_column(IntEnumColumn(ReceiptState))
    frozen: Mapped[bool] = mapped_column(Boolean)
    pledge_id: Mapped[int | None] = mapped_column(_ID)
    """The latest pledge requested against the receipt (``pledgeOf``); open while the state says so."""
    oracle: Mapped[str | None] = mapped_column(String(ADDRESS))
    """An oracle appointed for this receipt alone."""
    issued_at: Mapped[int] = mapped_column(BigInteger)
    updated_block: Mapped[int] = mapped_column(_BLOCK)


class PledgeRow(Base):
    """A pledge loan against a warehouse receipt."""

    __tablename__ = "pledges"
    __table_args__ = (
        Index("ix_pledges_borrower_id", "borrower", "id"),
        Index("ix_pledges_financier_id", "financier", "id"),
        Index("ix_pledges_state_id", "state", "id"),
        Index("ix_pledges_receipt_id", "receipt_id"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=False)
    receipt_id: Mapped[int] = mapped_column(ChainUint(), ForeignKey("warehouse_receipts.id"))
    borrower: Mapped[str] = mapped_column(String(ADDRESS))
    financier: Mapped[str] = mapped_column(String(ADDRESS))
    state: Mapped[PledgeState] = mapped_column(IntEnumColumn(PledgeState))
    rate_bps: Mapped[int] = mapped_column(Integer)
    due_date: Mapped[int] = mapped_column(ChainUint())
    principal_requested: Mapped[int] = mapped_column(ChainUint())
    principal: Mapped[int] = mapped_column(ChainUint())
    """Principal still owed (the requested principal until funded)."""
    interest_due: Mapped[int] = mapped_column(ChainUint())
    """Interest accrued up to ``accrued_from`` and not yet paid."""
    accrued_from: Mapped[int | None] = mapped_column(BigInteger)
    funded_at: Mapped[int | None] = mapped_column(BigInteger)
    closed_at: Mapped[int | None] = mapped_column(BigInteger)
    """When the pledge was cancelled, declined, released or enforced."""
    margin_called_at: Mapped[int | None] = mapped_column(BigInteger)
    """When a revaluation last raised a margin call on it."""
    requested_at: Mapped[int] = mapped_column(BigInteger)
    registration_number: Mapped[str | None] = mapped_column(String(32))
    """The 中登网 initial registration number its financier recorded (ASCII digits); null while unregistered."""
    registered_at: Mapped[int | None] = mapped_column(BigInteger)
    """The registration's date as the financier recorded it (a Unix time of that day)."""
    registration_recorded_at: Mapped[int | None] = mapped_column(BigInteger)
    """When the financier recorded the registration on chain (block time)."""
    updated_block: Mapped[int] = mapped_column(_BLOCK)


class PledgeRepaymentRow(Base):
    """A borrower's payment on a pledge loan (``PledgeRepaid``)."""

    __tablename__ = "pledge_repayments"
    __table_args__ = (Index("ix_pledge_repayments_pledge_id", "pledge_id"),)

    block_number: Mapped[int] = mapped_column(_BLOCK, primary_key=True, autoincrement=False)
    log_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    tx_hash: Mapped[str] = mapped_column(String(HASH))
    block_timestamp: Mapped[int] = mapped_column(BigInteger)
    pledge_id: Mapped[int] = mapped_column(_ID)
    amount: Mapped[int] = mapped_column(ChainUint())
    interest_paid: Mapped[int] = mapped_column(ChainUint())
    principal_paid: Mapped[int] = mapped_column(ChainUint())
    principal_outstanding: Mapped[int] = mapped_column(ChainUint())
    interest_outstanding: Mapped[int] = mapped_column(ChainUint())


class PledgeMarginCallRow(Base):
    """A margin call on a pledge loan (``PledgeMarginCalled``): a revaluation put the outstanding principal above
    the maintenance ratio of the receipt's new valuation. The lender and the borrower read these; the pledge
    itself stays active."""

    __tablename__ = "pledge_margin_calls"
    __table_args__ = (
        Index("ix_pledge_margin_calls_pledge_block", "pledge_id", "block_number", "log_index"),
        Index("ix_pledge_margin_calls_borrower_block", "borrower", "block_number", "log_index"),
        Index("ix_pledge_margin_calls_financier_block", "financier", "block_number", "log_index"),
    )

    block_number: Mapped[int] = mapped_column(_BLOCK, primary_key=True, autoincrement=False)
    log_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    tx_hash: Mapped[str] = mapped_column(String(HASH))
    block_timestamp: Mapped[int] = mapped_column(BigInteger)
    pledge_id: Mapped[int] = mapped_column(_ID)
    receipt_id: Mapped[int] = mapped_column(ChainUint())
    borrower: Mapped[str] = mapped_column(String(ADDRESS))
    financier: Mapped[str] = mapped_column(String(ADDRESS))
    principal: Mapped[int] = mapped_column(ChainUint())
    """The principal outstanding when the call was raised, fen."""
    valuation: Mapped[int] = mapped_column(ChainUint())
    """The receipt's new valuation that raised it, fen."""
    maintenance_ratio_bps: Mapped[int] = mapped_column(Integer)
    """The ratio the principal went above: principal × 10,000 > valuation × this."""


class WarehouseOracleRow(Base):
    """The oracle a warehouse appointed to attest for all its receipts."""

    __tablename__ = "warehouse_oracles"

    warehouse: Mapped[str] = mapped_column(String(ADDRESS), primary_key=True)
    oracle: Mapped[str] = mapped_column(String(ADDRESS))
    updated_block: Mapped[int] = mapped_column(_BLOCK)


class LedgerParameterRow(Base):
    """A rule parameter set by the operator, by name: ``receivables.max_tenor``,
    ``receivables.grace_period``, ``receivables.review_tenor``, ``receipts.maintenance_ratio_bps``,
    ``receipts.advance_rate_bps`` (the default) and ``receipts.advance_rate_bps.<financier>``."""

    __tablename__ = "ledger_parameters"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[int] = mapped_column(ChainUint())
    updated_block: Mapped[int] = mapped_column(_BLOCK)


#: The projection tables, parents before children (insert in this order, delete in reverse).
PROJECTIONS: tuple[type[Base], ...] = (
    ParticipantRow,
    ParticipantRoleRow,
    InvoiceRow,
    PieceRow,
    PieceAllowanceRow,
    FinancingRequestRow,
    RepaymentRow,
    RedemptionRow,
    CreditLineRow,
    CreditGrantRow,
    DepositTransferRow,
    WarehouseReceiptRow,
    PledgeRow,
    PledgeRepaymentRow,
    PledgeMarginCallRow,
    WarehouseOracleRow,
    LedgerParameterRow,
)

#: Every table of the event index: the raw log, its blocks, the checkpoint and the projections.
INDEX_TABLES: tuple[type[Base], ...] = (EventRow, BlockRow, IndexCheckpointRow, *PROJECTIONS)
