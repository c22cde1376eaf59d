"""The participants list's index: ``api_participants`` by ``(created_at, address)``, its onboarding order.

``GET /participants`` pages by cursor like the other lists; with this index a page reads only its own rows.

Revision ID: 0006_participants_order_index
Revises: 0005_piece_owner_burnt_index
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006_participants_order_index"
down_revision: str | Sequence[str] | None = "0005_piece_owner_burnt_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_participants", schema=None) as batch_op:
        batch_op.create_index("ix_api_participants_created_at_address", ["created_at", "address"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("api_participants", schema=None) as batch_op:
        batch_op.drop_index("ix_api_participants_created_at_address")
