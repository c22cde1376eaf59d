"""Documents between gateways: the outbox of envelopes to deliver to peers (``document_outbox``) and the inbox of
envelopes received, once each (``document_inbox``). See :mod:`ledger.docex`.

Revision ID: 0021_document_exchange
Revises: 0017_sensor_readings
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_document_exchange"
down_revision: str | Sequence[str] | None = "0017_sensor_readings"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "document_outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("envelope_id", sa.String(length=32), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("peer_account", sa.String(length=42), nullable=False),
        sa.Column("peer_url", sa.String(length=500), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_document_outbox_envelope_id", "document_outbox", ["envelope_id"])
    op.create_table(
        "document_inbox",
        sa.Column("envelope_id", sa.String(length=32), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("sender", sa.String(length=42), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("envelope_id"),
    )


def downgrade() -> None:
    op.drop_table("document_inbox")
    op.drop_index("ix_document_outbox_envelope_id", table_name="document_outbox")
    op.drop_table("document_outbox")
