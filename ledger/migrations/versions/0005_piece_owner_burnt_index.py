"""The receivables list's index: pieces by ``(owner, burnt, id)`` instead of ``(owner, id)``.

``GET /receivables`` lists the caller's unburnt pieces by id. With ``burnt`` in the index its pages (by cursor)
and its count are read from the index alone; with ``(owner, id)`` the count read every one of the caller's
rows from the table to check ``burnt``, which made the list grow slower with the pieces held.

Revision ID: 0005_piece_owner_burnt_index
Revises: 0004_audit_log
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005_piece_owner_burnt_index"
down_revision: str | Sequence[str] | None = "0004_audit_log"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("pieces", schema=None) as batch_op:
        batch_op.create_index("ix_pieces_owner_burnt_id", ["owner", "burnt", "id"], unique=False)
        batch_op.drop_index("ix_pieces_owner_id")


def downgrade() -> None:
    with op.batch_alter_table("pieces", schema=None) as batch_op:
        batch_op.create_index("ix_pieces_owner_id", ["owner", "id"], unique=False)
        batch_op.drop_index("ix_pieces_owner_burnt_id")
