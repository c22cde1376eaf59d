"""The service's own records (the chain holds the money; these hold who may ask for what).

- ``api_participants``: the participants the operator onboarded through the service: their on-chain account
  (custodial: its key is in the keystore), display name, unified social credit code, roles, and optionally a
  wallet address of their own for signing in with an Ethereum signature.
- ``api_keys``: API keys, stored as SHA-256 hashes (keys are 256-bit random, so a fast hash is enough); a
  rotated key is revoked, never deleted.
- ``auth_challenges``: single-use sign-in nonces with an expiry.
- ``idempotency_records``: the first response to each (participant, ``Idempotency-Key``), with the hash of the
  request it answered.
- ``service_operations``: which participant started which pipeline operation, and what kind it is (to show
  the operation's result, and only to its owner).
- ``identifier_labels``: the invoice numbers and lot numbers (with the goods' description) this gateway was
  given, by the keyed hash that stands for them on chain: the chain keeps only the hash, so that nobody reading
  it can tell an invoice's number; the parties' lists show the number from here (null for an invoice or receipt
  registered through another gateway).
- ``act_nonce_reservations``: the nonces of acts handed out to self-custody participants to sign and not yet
  lapsed (:mod:`api.signing`): the primary key (account, nonce) makes every process on the database hand out a
  nonce once.
- ``documents``: uploaded documents, encrypted with AES-GCM; the SHA-256 of the plaintext goes on chain. Its
  record, :class:`ledger.documents.DocumentRecord`, is declared with the cipher in the ledger (and re-exported
  here).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ledger.db import Base, utc_now
from ledger.documents import DocumentRecord as DocumentRecord
from ledger.index.models import ChainUint


class ParticipantRecord(Base):
    __tablename__ = "api_participants"
    # GET /participants pages in onboarding order, by cursor, from this index.
    __table_args__ = (Index("ix_api_participants_created_at_address", "created_at", "address"),)

    address: Mapped[str] = mapped_column(String(42), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    credit_code: Mapped[str] = mapped_column(String(18), unique=True)
    roles: Mapped[list[str]] = mapped_column(JSON)
    login_address: Mapped[str | None] = mapped_column(String(42), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    custody: Mapped[str] = mapped_column(String(8), default="hosted", server_default="hosted")
    """``hosted`` (the key is in the service's keystore) or ``self`` (the participant signs its own acts)."""
    signer: Mapped[str | None] = mapped_column(String(42))
    """The key that signs a self-custody participant's acts when it is not the account itself."""


class ApiKeyRecord(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    participant: Mapped[str] = mapped_column(String(42), ForeignKey("api_participants.address"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuthChallengeRecord(Base):
    __tablename__ = "auth_challenges"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    address: Mapped[str] = mapped_column(String(42))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("participant", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    participant: Mapped[str] = mapped_column(String(42))
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class ActNonceReservation(Base):
    """A nonce handed out with an act to sign, reserved until ``expires_at`` (the act's deadline)."""

    __tablename__ = "act_nonce_reservations"

    account: Mapped[str] = mapped_column(String(42), primary_key=True)
    nonce: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ServiceOperationRecord(Base):
    __tablename__ = "service_operations"

    operation_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    participant: Mapped[str] = mapped_column(String(42), index=True)
    kind: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class ActApprovalRecord(Base):
    """An act of a contract account (a Safe) awaiting its owners' signatures: maker/checker. Kept until the
    owners who signed reach the Safe's threshold; then relayed once, with the operation that relayed it."""

    __tablename__ = "act_approvals"

    digest: Mapped[str] = mapped_column(String(66), primary_key=True)
    account: Mapped[str] = mapped_column(String(42), index=True)
    typed_data: Mapped[dict[str, Any]] = mapped_column(JSON)
    deadline: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    operation_id: Mapped[str | None] = mapped_column(String(100))


class ActApprovalSignatureRecord(Base):
    """One owner's signature of an act awaiting approval (its Safe message hash, 65 bytes)."""

    __tablename__ = "act_approval_signatures"
    __table_args__ = (UniqueConstraint("digest", "owner"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    digest: Mapped[str] = mapped_column(String(66), ForeignKey("act_approvals.digest"), index=True)
    owner: Mapped[str] = mapped_column(String(42))
    signature: Mapped[str] = mapped_column(String(132))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class FinancingOfferRecord(Base):
    """A financier's standing terms, published so that a supplier sees the price before it asks: for one core
    firm's obligations, or for any (``core_firm`` empty). Indicative: the terms that bind are those the
    financier approves a request with, on chain."""

    __tablename__ = "financing_offers"
    __table_args__ = (UniqueConstraint("financier", "core_firm"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    financier: Mapped[str] = mapped_column(String(42), index=True)
    core_firm: Mapped[str] = mapped_column(String(42))
    """The obligor these terms are for, or ``""`` for any."""
    discount_rate_bps: Mapped[int] = mapped_column(Integer)
    fee: Mapped[int] = mapped_column(BigInteger)
    day_count_basis: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class IdentifierLabelRecord(Base):
    """What a hash on chain stands for, as this gateway was told when it sent the act: an invoice's number
    (``kind`` ``invoice``, by its keyed identity hash; ``description`` its older VAT invoice code, if any), a lot's
    number (``lot``, by its keyed identity hash), or a receipt's goods (``goods``, by the keccak of the
    description, the receipt's ``goodsHash``; ``label`` empty). Each hash is a function of what it stands for
    (HMAC under the deployment's key salt, or keccak), so a label written for an act that then failed is still
    true of its hash."""

    __tablename__ = "identifier_labels"

    key_hash: Mapped[str] = mapped_column(String(66), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    label: Mapped[str] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


# -- sensors (docs/sensors.md) ---------------------------------------------------------------------------------


class SensorLotRecord(Base):
    """A lot (warehouse receipt) watched by sensors: the rules' parameters, set by its warehouse."""

    __tablename__ = "sensor_lots"

    receipt_id: Mapped[int] = mapped_column(ChainUint(), primary_key=True, autoincrement=False)
    warehouse: Mapped[str] = mapped_column(String(42))
    silence_seconds: Mapped[int] = mapped_column(Integer)
    """No valid reading observed for this long (seconds): the receipt shows ``unmonitored``."""
    tolerance_bps: Mapped[int] = mapped_column(Integer)
    """Observed quantity below the receipt's by more than this: a collateral alert on chain."""
    period_seconds: Mapped[int] = mapped_column(Integer)
    """A digest of the readings is anchored on chain once per period."""
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    anchored_until: Mapped[int] = mapped_column(BigInteger)
    """Unix seconds: readings received before this were anchored (the end of the last period)."""


class SensorDeviceRecord(Base):
    """A device registered for a lot; a device watches one lot."""

    __tablename__ = "sensor_devices"

    address: Mapped[str] = mapped_column(String(42), primary_key=True)
    receipt_id: Mapped[int] = mapped_column(ChainUint(), ForeignKey("sensor_lots.receipt_id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    units_per_quantity: Mapped[int] = mapped_column(BigInteger)
    """Units of the device's weight or count readings that make one unit of the receipt's quantity."""
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class SensorReadingRecord(Base):
    """A valid reading, as signed, with when and how it arrived."""

    __tablename__ = "sensor_readings"
    __table_args__ = (
        UniqueConstraint("device", "seq"),
        Index("ix_sensor_readings_receipt_received", "receipt_id", "received_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    receipt_id: Mapped[int] = mapped_column(ChainUint())
    device: Mapped[str] = mapped_column(String(42))
    seq: Mapped[int] = mapped_column(ChainUint())
    observed_at: Mapped[int] = mapped_column(ChainUint())
    weight: Mapped[int] = mapped_column(ChainUint())
    count: Mapped[int] = mapped_column(ChainUint())
    temperature_centi: Mapped[int] = mapped_column(BigInteger)
    location: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(132))
    struct_hash: Mapped[str] = mapped_column(String(66), unique=True)
    received_at: Mapped[int] = mapped_column(BigInteger)
    """Unix seconds (the service's clock): the period a reading belongs to."""
    via: Mapped[str] = mapped_column(String(8))
    """``mqtt`` or ``http``."""


class SensorRefusalRecord(Base):
    """Readings refused, counted per lot (as the reading named it; 0 when it named none) and reason."""

    __tablename__ = "sensor_refusals"

    receipt_id: Mapped[int] = mapped_column(ChainUint(), primary_key=True, autoincrement=False)
    reason: Mapped[str] = mapped_column(String(20), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)
    last_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    last_detail: Mapped[str] = mapped_column(String(200))


class SensorAnchorRecord(Base):
    """A period of readings anchored on chain (``anchorReadings``)."""

    __tablename__ = "sensor_anchors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    receipt_id: Mapped[int] = mapped_column(ChainUint(), index=True)
    period_start: Mapped[int] = mapped_column(BigInteger)
    period_end: Mapped[int] = mapped_column(BigInteger)
    digest: Mapped[str] = mapped_column(String(66))
    readings: Mapped[int] = mapped_column(Integer)
    observed_quantity: Mapped[int | None] = mapped_column(ChainUint())
    shortfall: Mapped[bool] = mapped_column(Boolean)
    margin_called: Mapped[bool] = mapped_column(Boolean)
    operation_id: Mapped[str] = mapped_column(String(100))
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
