"""ERC-3525 value allowances in the index: ``piece_allowances``, a projection of ``ApprovalValue`` events.

The receivables contract announces every change of a value allowance with ``ApprovalValue``, the end of each
one included when a piece changes hands or is burnt, so the allowances are rebuilt from events alone. The
events were already kept in the raw event log; this revision creates the table and fills it from that log, in
chain order, so that an existing index agrees with the chain without a rebuild.

Revision ID: 0009_piece_allowances
Revises: 0008_document_secret_id
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from ledger.index.models import ChainUint

revision: str = "0009_piece_allowances"
down_revision: str | Sequence[str] | None = "0008_document_secret_id"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    allowances = op.create_table(
        "piece_allowances",
        sa.Column("piece_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("operator", sa.String(length=42), nullable=False),
        sa.Column("value", ChainUint(), nullable=False),
        sa.Column("updated_block", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["piece_id"], ["pieces.id"], name=op.f("fk_piece_allowances_piece_id_pieces")),
        sa.PrimaryKeyConstraint("piece_id", "operator", name=op.f("pk_piece_allowances")),
    )
    assert allowances is not None
    events = sa.table(
        "events",
        sa.column("block_number", sa.BigInteger()),
        sa.column("log_index", sa.Integer()),
        sa.column("contract", sa.String()),
        sa.column("name", sa.String()),
        sa.column("args", JSON_DOCUMENT),
    )
    query = (
        sa.select(events.c.block_number, events.c.args)
        .where(events.c.contract == "receivables", events.c.name == "ApprovalValue")
        .order_by(events.c.block_number, events.c.log_index)
    )
    current: dict[tuple[int, str], dict[str, Any]] = {}
    for block_number, args in op.get_bind().execute(query):
        key = (int(args["_tokenId"]), str(args["_operator"]))
        value = int(args["_value"])
        if value == 0:
            current.pop(key, None)
        else:
            current[key] = {"piece_id": key[0], "operator": key[1], "value": value, "updated_block": block_number}
    if current:
        op.bulk_insert(allowances, [current[key] for key in sorted(current)])


def downgrade() -> None:
    op.drop_table("piece_allowances")
