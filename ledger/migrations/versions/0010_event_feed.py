"""The event feed (``event_feed``, ``event_feed_parties``): one numbered row per ledger event, in the chain's
order, and one per event a reorganisation drops (:mod:`ledger.index.feed`).

The upgrade fills the feed from the raw event log the index already holds, in block and log order, as the
indexer would have appended it, so that an existing index needs no rebuild and its consumers start from a feed
that agrees with the ``events`` table. (The parties of an event that names an object only by id are those of
the object as the index holds it at the upgrade, where the live feed has those of the moment it appended the
event: a piece's holder then.)

Revision ID: 0010_event_feed
Revises: 0009_piece_allowances
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

revision: str = "0010_event_feed"
down_revision: str | Sequence[str] | None = "0009_piece_allowances"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_CHUNK = 5_000


def upgrade() -> None:
    op.create_table(
        "event_feed",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("event_id", sa.String(length=80), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("block_time", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("contract", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("fields", JSON_DOCUMENT, nullable=False),
        sa.Column("parties", JSON_DOCUMENT, nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_event_feed")),
    )
    op.create_index("ix_event_feed_event_id", "event_feed", ["event_id"], unique=False)
    op.create_index("ix_event_feed_kind_seq", "event_feed", ["kind", "seq"], unique=False)
    op.create_table(
        "event_feed_parties",
        sa.Column("party", sa.String(length=42), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("party", "seq", name=op.f("pk_event_feed_parties")),
    )
    from ledger.index.feed import append_added
    from ledger.index.models import EventRow

    session = Session(bind=op.get_bind())
    after: tuple[int, int] = (-1, -1)
    while True:
        chunk = list(
            session.scalars(
                sa.select(EventRow)
                .where(sa.tuple_(EventRow.block_number, EventRow.log_index) > sa.tuple_(*after))
                .order_by(EventRow.block_number, EventRow.log_index)
                .limit(_CHUNK)
            )
        )
        if not chunk:
            break
        append_added(session, chunk)
        after = (chunk[-1].block_number, chunk[-1].log_index)
    session.flush()


def downgrade() -> None:
    op.drop_table("event_feed_parties")
    op.drop_index("ix_event_feed_kind_seq", table_name="event_feed")
    op.drop_index("ix_event_feed_event_id", table_name="event_feed")
    op.drop_table("event_feed")
