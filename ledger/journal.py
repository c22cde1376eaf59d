"""The transaction journal: every transaction the ledger signs, written down before it is sent.

One row per signed transaction and per operation (``operation_id`` is the caller's idempotency key). The row
holds the exact signed bytes, so the pipeline can send the same transaction again after the node lost it
(anvil restarted behind its last blocks, or dropped it from its pool): same nonce, same hash, so it can never
be executed twice. ``ledger/migrations/versions/0002_journal.py`` creates the same table.

Lifecycle (:class:`TransactionStatus`)::

    pending ──► sent ──► confirmed        mined, receipt status 1
       │          │  └─► failed           mined, receipt status 0 (decoded error stored)
       │          └────► replaced         its nonce was used by another transaction: it will never be mined
       └─► failed                         refused by the node for good (``TransactionRejected``)

``pending`` and ``sent`` are both "in flight": a timeout never turns them into a failure. A mined transaction
whose block is later lost (a reorg, anvil restarted behind) goes back to ``sent`` and is sent again.

A nonce of a sender is held by at most one row that is not ``superseded``: a rejected transaction's nonce
is taken over by a filler transaction (a zero-value transfer to the sender itself), so later nonces never
wait behind a gap.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Enum, Index, Integer, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column

from ledger.db import Base, utc_now


class TransactionStatus(enum.StrEnum):
    """Where a journaled transaction stands."""

    PENDING = "pending"
    """Signed and journaled; the node has not acknowledged it yet."""
    SENT = "sent"
    """The node accepted it into its pool (or already knew it)."""
    CONFIRMED = "confirmed"
    """Mined with receipt status 1."""
    FAILED = "failed"
    """Mined and reverted, or refused by the node for good; ``error_name`` says why."""
    REPLACED = "replaced"
    """Its nonce was consumed by a transaction the pipeline did not sign; it will never be mined."""

    @property
    def is_final(self) -> bool:
        return self in _FINAL

    @property
    def in_flight(self) -> bool:
        return not self.is_final


_FINAL = frozenset({TransactionStatus.CONFIRMED, TransactionStatus.FAILED, TransactionStatus.REPLACED})
IN_FLIGHT_STATUSES = (TransactionStatus.PENDING, TransactionStatus.SENT)
FINAL_STATUSES = tuple(_FINAL)


class TransactionKind(enum.StrEnum):
    """Why the pipeline signed a transaction."""

    OPERATION = "operation"
    """A caller's operation (``Pipeline.submit``)."""
    NONCE_FILLER = "nonce-filler"
    """A zero-value self-transfer that takes the nonce of a transaction the node refused."""


class JournalTransaction(Base):
    """One signed transaction of one operation."""

    __tablename__ = "journal_transactions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    operation_id: Mapped[str] = mapped_column(String(100), unique=True)
    """The caller's idempotency key (a UUID unless the caller chose one)."""
    kind: Mapped[TransactionKind] = mapped_column(
        Enum(TransactionKind, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e]),
        default=TransactionKind.OPERATION,
    )
    sender: Mapped[str] = mapped_column(String(42))
    """Checksum address of the signer."""
    nonce: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(66), unique=True)
    """``0x`` + keccak256 of ``raw_tx``, lower-case hex."""
    raw_tx: Mapped[bytes] = mapped_column(LargeBinary)
    """The signed EIP-2718 envelope exactly as sent."""
    to: Mapped[str | None] = mapped_column(String(42))
    """Checksum address called (``None`` for a contract creation)."""
    selector: Mapped[str | None] = mapped_column(String(10))
    """``0x`` + the first 4 bytes of the call data: which function was called."""
    gas_limit: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[TransactionStatus] = mapped_column(
        Enum(TransactionStatus, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e]),
        default=TransactionStatus.PENDING,
    )
    superseded: Mapped[bool] = mapped_column(Boolean, default=False)
    """True when this transaction no longer holds its nonce (refused by the node or replaced)."""
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    block_hash: Mapped[str | None] = mapped_column(String(66))
    gas_used: Mapped[int | None] = mapped_column(BigInteger)
    error_name: Mapped[str | None] = mapped_column(String(100))
    """Name of the contract's custom error (``DepositZeroAmount``), or ``TransactionRejected`` /
    ``NonceTaken`` / ``UnknownRevert`` when there is none."""
    error_args: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """The error's arguments by name (bytes as ``0x`` hex, integers as JSON numbers)."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now, onupdate=utc_now)

    __table_args__ = (
        Index(
            "uq_journal_transactions_sender_nonce",
            "sender",
            "nonce",
            unique=True,
            sqlite_where=text("superseded = false"),
            postgresql_where=text("superseded = false"),
        ),
        Index("ix_journal_transactions_status", "status"),
    )

    def __repr__(self) -> str:
        return (
            f"JournalTransaction(operation_id={self.operation_id!r}, sender={self.sender}, nonce={self.nonce}, "
            f"status={self.status.value}, tx_hash={self.tx_hash})"
        )
