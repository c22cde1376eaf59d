"""Webhook signing secrets are stored encrypted under the master secret, never in clear: the column ``secret``
of ``webhook_subscriptions`` gives way to ``secret_sealed`` (nonce, AES-256-GCM ciphertext and tag, bound to
the subscription's id: :func:`ledger.secrets.seal_webhook_secret`) and ``secret_key_id`` (the id of the master
secret that sealed it). Existing rows are sealed with the current master secret (:func:`migration_secrets`);
going down opens them again with the secret each names.

Revision ID: 0012_webhook_secret_sealed
Revises: 0011_webhook_subscriptions
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ledger.migrations import migration_secrets
from ledger.secrets import open_webhook_secret, seal_webhook_secret

revision: str = "0012_webhook_secret_sealed"
down_revision: str | Sequence[str] | None = "0011_webhook_subscriptions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

subscriptions = sa.table(
    "webhook_subscriptions",
    sa.column("id", sa.BigInteger()),
    sa.column("secret", sa.String()),
    sa.column("secret_sealed", sa.LargeBinary()),
    sa.column("secret_key_id", sa.String()),
)


def upgrade() -> None:
    with op.batch_alter_table("webhook_subscriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("secret_sealed", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("secret_key_id", sa.String(length=16), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(sa.select(subscriptions.c.id, subscriptions.c.secret)).all()
    if rows:
        current = migration_secrets().current
        for subscription_id, secret in rows:
            connection.execute(
                subscriptions.update()
                .where(subscriptions.c.id == subscription_id)
                .values(secret_sealed=seal_webhook_secret(current, subscription_id, secret), secret_key_id=current.id)
            )
    with op.batch_alter_table("webhook_subscriptions", schema=None) as batch_op:
        batch_op.alter_column("secret_sealed", existing_type=sa.LargeBinary(), nullable=False)
        batch_op.alter_column("secret_key_id", existing_type=sa.String(length=16), nullable=False)
        batch_op.drop_column("secret")


def downgrade() -> None:
    with op.batch_alter_table("webhook_subscriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("secret", sa.String(length=80), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(subscriptions.c.id, subscriptions.c.secret_key_id, subscriptions.c.secret_sealed)
    ).all()
    if rows:
        secrets = migration_secrets()
        for subscription_id, secret_id, sealed in rows:
            connection.execute(
                subscriptions.update()
                .where(subscriptions.c.id == subscription_id)
                .values(secret=open_webhook_secret(secrets, secret_id, subscription_id, sealed))
            )
    with op.batch_alter_table("webhook_subscriptions", schema=None) as batch_op:
        batch_op.alter_column("secret", existing_type=sa.String(length=80), nullable=False)
        batch_op.drop_column("secret_key_id")
        batch_op.drop_column("secret_sealed")
