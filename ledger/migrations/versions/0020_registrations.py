"""Registrations in 中登网 (动产和权利担保统一登记) recorded by financiers on chain: the initial registration number,
the registration's date and when it was recorded, on ``financing_requests`` and ``pledges`` (null while
unregistered). The events (``FinancingRegistered``, ``PledgeRegistered``) may already be in the raw event log (an
index downgraded and upgraded again): this revision fills the columns from that log, so the index agrees with
the chain without a rebuild.

Revision ID: 0020_registrations
Revises: 0021_document_exchange
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0020_registrations"
down_revision: str | Sequence[str] | None = "0021_document_exchange"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> (contract, event, the event's id argument)
_TABLES = {
    "financing_requests": ("receivables", "FinancingRegistered", "requestId"),
    "pledges": ("receipts", "PledgeRegistered", "pledgeId"),
}


def upgrade() -> None:
    # Plain ALTER TABLE on both databases, as in 0016 (a batch copy would reflect ChainUint columns untyped).
    for table in _TABLES:
        op.add_column(table, sa.Column("registration_number", sa.String(length=32), nullable=True))
        op.add_column(table, sa.Column("registered_at", sa.BigInteger(), nullable=True))
        op.add_column(table, sa.Column("registration_recorded_at", sa.BigInteger(), nullable=True))
    events = sa.table(
        "events",
        sa.column("block_number", sa.BigInteger()),
        sa.column("log_index", sa.Integer()),
        sa.column("block_timestamp", sa.BigInteger()),
        sa.column("contract", sa.String()),
        sa.column("name", sa.String()),
        sa.column("args", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")),
    )
    bind = op.get_bind()
    for name, (contract, event, key) in _TABLES.items():
        rows = sa.table(
            name,
            sa.column("id", sa.BigInteger()),
            sa.column("registration_number", sa.String()),
            sa.column("registered_at", sa.BigInteger()),
            sa.column("registration_recorded_at", sa.BigInteger()),
        )
        query = (
            sa.select(events.c.block_timestamp, events.c.args)
            .where(events.c.contract == contract, events.c.name == event)
            .order_by(events.c.block_number, events.c.log_index)
        )
        for timestamp, args in bind.execute(query).all():
            number = bytes.fromhex(str(args["number"])[2:]).rstrip(b"\0").decode("ascii", errors="replace")
            values = {
                "registration_number": number,
                "registered_at": int(args["registeredAt"]),
                "registration_recorded_at": int(timestamp),
            }
            bind.execute(rows.update().where(rows.c.id == int(args[key])).values(**values))


def downgrade() -> None:
    for table in _TABLES:
        op.drop_column(table, "registration_recorded_at")
        op.drop_column(table, "registered_at")
        op.drop_column(table, "registration_number")
