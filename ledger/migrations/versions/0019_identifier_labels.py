"""Invoice and lot numbers by their keyed hash (``identifier_labels``): what the chain's identity hashes stand
for, as this gateway was told, so that lists show the number rather than the hash.

Revision ID: 0019_identifier_labels
Revises: 0016_financing_caps
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_identifier_labels"
down_revision: str | Sequence[str] | None = "0016_financing_caps"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "identifier_labels",
        sa.Column("key_hash", sa.String(length=66), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_hash"),
    )


def downgrade() -> None:
    op.drop_table("identifier_labels")
