"""Self-custody participants: ``api_participants.custody`` says who holds a participant's key (``hosted``: the
service's keystore; ``self``: the participant, who signs its own acts), and ``signer`` the key that signs them
when it is not the account itself (after a rotation or a recovery). Every existing participant is hosted.

Revision ID: 0013_self_custody
Revises: 0012_webhook_secret_sealed
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_self_custody"
down_revision: str | Sequence[str] | None = "0012_webhook_secret_sealed"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_participants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("custody", sa.String(length=8), nullable=False, server_default="hosted"))
        batch_op.add_column(sa.Column("signer", sa.String(length=42), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_participants", schema=None) as batch_op:
        batch_op.drop_column("signer")
        batch_op.drop_column("custody")
