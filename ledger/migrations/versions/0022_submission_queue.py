"""The submission queue: operations submitted by a service process that does not own the pipeline, waiting for
the one that does (several processes on one PostgreSQL database, ``ledger.pipeline.handoff``).

Revision ID: 0022_submission_queue
Revises: 0020_registrations
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022_submission_queue"
down_revision: str | Sequence[str] | None = "0020_registrations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "submission_queue",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("operation_id", sa.String(length=100), nullable=False),
        sa.Column("sender", sa.String(length=42), nullable=False),
        sa.Column("to_address", sa.String(length=42), nullable=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("gas", sa.BigInteger(), nullable=True),
        sa.Column("value", sa.String(length=80), nullable=False),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(length=36), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_submission_queue")),
        sa.UniqueConstraint("operation_id", name=op.f("uq_submission_queue_operation_id")),
    )


def downgrade() -> None:
    op.drop_table("submission_queue")
