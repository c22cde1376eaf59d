"""Sensors watching the goods of a warehouse receipt (docs/sensors.md): the lots watched and their rules'
parameters (``sensor_lots``), their devices (``sensor_devices``), the valid readings (``sensor_readings``),
the refused ones counted per lot and reason (``sensor_refusals``) and the periods anchored on chain
(``sensor_anchors``).

Revision ID: 0017_sensor_readings
Revises: 0019_identifier_labels
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ledger.index.models import ChainUint

revision: str = "0017_sensor_readings"
down_revision: str | Sequence[str] | None = "0019_identifier_labels"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sensor_lots",
        sa.Column("receipt_id", ChainUint(), autoincrement=False, nullable=False),
        sa.Column("warehouse", sa.String(length=42), nullable=False),
        sa.Column("silence_seconds", sa.Integer(), nullable=False),
        sa.Column("tolerance_bps", sa.Integer(), nullable=False),
        sa.Column("period_seconds", sa.Integer(), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("anchored_until", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("receipt_id", name=op.f("pk_sensor_lots")),
    )
    op.create_table(
        "sensor_devices",
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("receipt_id", ChainUint(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("units_per_quantity", sa.BigInteger(), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["receipt_id"],
            ["sensor_lots.receipt_id"],
            name=op.f("fk_sensor_devices_receipt_id_sensor_lots"),
        ),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_sensor_devices")),
    )
    op.create_index(op.f("ix_sensor_devices_receipt_id"), "sensor_devices", ["receipt_id"], unique=False)
    op.create_table(
        "sensor_readings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("receipt_id", ChainUint(), nullable=False),
        sa.Column("device", sa.String(length=42), nullable=False),
        sa.Column("seq", ChainUint(), nullable=False),
        sa.Column("observed_at", ChainUint(), nullable=False),
        sa.Column("weight", ChainUint(), nullable=False),
        sa.Column("count", ChainUint(), nullable=False),
        sa.Column("temperature_centi", sa.BigInteger(), nullable=False),
        sa.Column("location", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=132), nullable=False),
        sa.Column("struct_hash", sa.String(length=66), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.Column("via", sa.String(length=8), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sensor_readings")),
        sa.UniqueConstraint("device", "seq", name=op.f("uq_sensor_readings_device")),
        sa.UniqueConstraint("struct_hash", name=op.f("uq_sensor_readings_struct_hash")),
    )
    op.create_index(
        "ix_sensor_readings_receipt_received", "sensor_readings", ["receipt_id", "received_at"], unique=False
    )
    op.create_table(
        "sensor_refusals",
        sa.Column("receipt_id", ChainUint(), autoincrement=False, nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_detail", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("receipt_id", "reason", name=op.f("pk_sensor_refusals")),
    )
    op.create_table(
        "sensor_anchors",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("receipt_id", ChainUint(), nullable=False),
        sa.Column("period_start", sa.BigInteger(), nullable=False),
        sa.Column("period_end", sa.BigInteger(), nullable=False),
        sa.Column("digest", sa.String(length=66), nullable=False),
        sa.Column("readings", sa.Integer(), nullable=False),
        sa.Column("observed_quantity", ChainUint(), nullable=True),
        sa.Column("shortfall", sa.Boolean(), nullable=False),
        sa.Column("margin_called", sa.Boolean(), nullable=False),
        sa.Column("operation_id", sa.String(length=100), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sensor_anchors")),
    )
    op.create_index(op.f("ix_sensor_anchors_receipt_id"), "sensor_anchors", ["receipt_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_sensor_anchors_receipt_id"), table_name="sensor_anchors")
    op.drop_table("sensor_anchors")
    op.drop_table("sensor_refusals")
    op.drop_index("ix_sensor_readings_receipt_received", table_name="sensor_readings")
    op.drop_table("sensor_readings")
    op.drop_index(op.f("ix_sensor_devices_receipt_id"), table_name="sensor_devices")
    op.drop_table("sensor_devices")
    op.drop_table("sensor_lots")
