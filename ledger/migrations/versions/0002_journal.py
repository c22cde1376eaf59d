"""The transaction journal (``ledger.journal.JournalTransaction``).

Revision ID: 0002_journal
Revises: 0001_index
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_journal"
down_revision = "0001_index"
branch_labels = None
depends_on = None

_STATUSES = ("pending", "sent", "confirmed", "failed", "replaced")
_KINDS = ("operation", "nonce-filler")


def upgrade() -> None:
    op.create_table(
        "journal_transactions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("operation_id", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.Enum(*_KINDS, name="transactionkind", native_enum=False, length=20), nullable=False),
        sa.Column("sender", sa.String(length=42), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("raw_tx", sa.LargeBinary(), nullable=False),
        sa.Column("to", sa.String(length=42), nullable=True),
        sa.Column("selector", sa.String(length=10), nullable=True),
        sa.Column("gas_limit", sa.BigInteger(), nullable=False),
        sa.Column(
            "status", sa.Enum(*_STATUSES, name="transactionstatus", native_enum=False, length=20), nullable=False
        ),
        sa.Column("superseded", sa.Boolean(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("block_hash", sa.String(length=66), nullable=True),
        sa.Column("gas_used", sa.BigInteger(), nullable=True),
        sa.Column("error_name", sa.String(length=100), nullable=True),
        sa.Column("error_args", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journal_transactions")),
        sa.UniqueConstraint("operation_id", name=op.f("uq_journal_transactions_operation_id")),
        sa.UniqueConstraint("tx_hash", name=op.f("uq_journal_transactions_tx_hash")),
    )
    op.create_index("ix_journal_transactions_status", "journal_transactions", ["status"], unique=False)
    op.create_index(
        "uq_journal_transactions_sender_nonce",
        "journal_transactions",
        ["sender", "nonce"],
        unique=True,
        sqlite_where=sa.text("superseded = false"),
        postgresql_where=sa.text("superseded = false"),
    )


def downgrade() -> None:
    op.drop_index("uq_journal_transactions_sender_nonce", table_name="journal_transactions")
    op.drop_index("ix_journal_transactions_status", table_name="journal_transactions")
    op.drop_table("journal_transactions")
