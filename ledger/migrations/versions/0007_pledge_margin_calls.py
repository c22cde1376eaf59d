"""Margin calls on pledge loans (``pledge_margin_calls``), so that a lender and a borrower can list them.

The index kept only the time of a pledge's last margin call (``pledges.margin_called_at``); every call is now a
row of its own, projected from ``PledgeMarginCalled``. The upgrade fills the table from the raw event log the
index already holds, as a replay of the log would, so an existing index needs no rebuild.

Revision ID: 0007_pledge_margin_calls
Revises: 0006_participants_order_index
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from ledger.index.models import ChainUint

revision: str = "0007_pledge_margin_calls"
down_revision: str | Sequence[str] | None = "0006_participants_order_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_EVENTS = sa.table(
    "events",
    sa.column("block_number", sa.BigInteger()),
    sa.column("log_index", sa.Integer()),
    sa.column("block_timestamp", sa.BigInteger()),
    sa.column("tx_hash", sa.String()),
    sa.column("contract", sa.String()),
    sa.column("name", sa.String()),
    sa.column("args", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")),
)


def upgrade() -> None:
    margin_calls = op.create_table(
        "pledge_margin_calls",
        sa.Column("block_number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("log_index", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("block_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("pledge_id", sa.BigInteger(), nullable=False),
        sa.Column("receipt_id", ChainUint(), nullable=False),
        sa.Column("borrower", sa.String(length=42), nullable=False),
        sa.Column("financier", sa.String(length=42), nullable=False),
        sa.Column("principal", ChainUint(), nullable=False),
        sa.Column("valuation", ChainUint(), nullable=False),
        sa.Column("maintenance_ratio_bps", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("block_number", "log_index", name=op.f("pk_pledge_margin_calls")),
    )
    for column, name in (("pledge_id", "pledge"), ("borrower", "borrower"), ("financier", "financier")):
        op.create_index(
            f"ix_pledge_margin_calls_{name}_block",
            "pledge_margin_calls",
            [column, "block_number", "log_index"],
            unique=False,
        )
    connection = op.get_bind()
    called = connection.execute(
        sa.select(_EVENTS)
        .where(_EVENTS.c.contract == "receipts", _EVENTS.c.name == "PledgeMarginCalled")
        .order_by(_EVENTS.c.block_number, _EVENTS.c.log_index)
    ).mappings()
    rows = [
        {
            "block_number": event["block_number"],
            "log_index": event["log_index"],
            "tx_hash": event["tx_hash"],
            "block_timestamp": event["block_timestamp"],
            "pledge_id": int(event["args"]["pledgeId"]),
            "receipt_id": int(event["args"]["receiptId"]),
            "borrower": event["args"]["borrower"],
            "financier": event["args"]["financier"],
            "principal": int(event["args"]["principal"]),
            "valuation": int(event["args"]["valuation"]),
            "maintenance_ratio_bps": int(event["args"]["maintenanceRatioBps"]),
        }
        for event in called
    ]
    if rows:
        op.bulk_insert(margin_calls, rows)


def downgrade() -> None:
    op.drop_table("pledge_margin_calls")
