"""Acts of contract accounts awaiting their owners' signatures (maker/checker): ``act_approvals`` holds the act
(its EIP-712 document, keyed by its digest) and the operation that relayed it once enough owners signed;
``act_approval_signatures`` each owner's signature.

Revision ID: 0014_act_approvals
Revises: 0013_self_custody
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_act_approvals"
down_revision: str | Sequence[str] | None = "0013_self_custody"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "act_approvals",
        sa.Column("digest", sa.String(length=66), nullable=False),
        sa.Column("account", sa.String(length=42), nullable=False),
        sa.Column("typed_data", sa.JSON(), nullable=False),
        sa.Column("deadline", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("operation_id", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("digest"),
    )
    op.create_index("ix_act_approvals_account", "act_approvals", ["account"])
    op.create_table(
        "act_approval_signatures",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("digest", sa.String(length=66), nullable=False),
        sa.Column("owner", sa.String(length=42), nullable=False),
        sa.Column("signature", sa.String(length=132), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["digest"], ["act_approvals.digest"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("digest", "owner"),
    )
    op.create_index("ix_act_approval_signatures_digest", "act_approval_signatures", ["digest"])


def downgrade() -> None:
    op.drop_index("ix_act_approval_signatures_digest", table_name="act_approval_signatures")
    op.drop_table("act_approval_signatures")
    op.drop_index("ix_act_approvals_account", table_name="act_approvals")
    op.drop_table("act_approvals")
