"""The nonces of acts handed out to self-custody participants to sign, reserved in the database, so that several
service processes on one database never hand out the same nonce (``api.signing.NonceAllocator``).

Revision ID: 0023_act_nonce_reservations
Revises: 0022_submission_queue
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023_act_nonce_reservations"
down_revision: str | Sequence[str] | None = "0022_submission_queue"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "act_nonce_reservations",
        sa.Column("account", sa.String(length=42), nullable=False),
        sa.Column("nonce", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account", "nonce", name=op.f("pk_act_nonce_reservations")),
    )


def downgrade() -> None:
    op.drop_table("act_nonce_reservations")
