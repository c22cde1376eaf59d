"""Documents record the id of the master secret that encrypted them (``documents.secret_id``), so that after the
master secret changed each is read with the right one and ``scf secrets rotate`` finds those left to
re-encrypt. Rows from before stay empty: they are read by trying each configured master secret, and the next
rotation stamps them.

Revision ID: 0008_document_secret_id
Revises: 0007_pledge_margin_calls
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_document_secret_id"
down_revision: str | Sequence[str] | None = "0007_pledge_margin_calls"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("secret_id", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_column("secret_id")
