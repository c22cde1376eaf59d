"""Financiers' standing terms (``financing_offers``): per financier and core firm (or any, ``core_firm`` empty),
the discount rate, fee and day count a supplier is quoted before it asks.

Revision ID: 0015_financing_offers
Revises: 0014_act_approvals
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_financing_offers"
down_revision: str | Sequence[str] | None = "0014_act_approvals"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "financing_offers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("financier", sa.String(length=42), nullable=False),
        sa.Column("core_firm", sa.String(length=42), nullable=False),
        sa.Column("discount_rate_bps", sa.Integer(), nullable=False),
        sa.Column("fee", sa.BigInteger(), nullable=False),
        sa.Column("day_count_basis", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("financier", "core_firm"),
    )
    op.create_index("ix_financing_offers_financier", "financing_offers", ["financier"])


def downgrade() -> None:
    op.drop_index("ix_financing_offers_financier", table_name="financing_offers")
    op.drop_table("financing_offers")
