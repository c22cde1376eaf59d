"""On PostgreSQL, every change to ``api_keys`` or ``api_participants`` notifies channel ``scf_auth`` (a statement
trigger, so that a change made by any process or tool counts: another worker, ``scf api-key reissue``, ``psql``).
Each service process listens and forgets the API keys and participants it remembers (``api.auth_cache``). The
payload is the schema the table is in, so that ledgers in several schemas of one database hear only their own.
Nothing on SQLite, which serves one process.

Revision ID: 0024_auth_notify
Revises: 0023_act_nonce_reservations
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0024_auth_notify"
down_revision: str | Sequence[str] | None = "0023_act_nonce_reservations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("api_keys", "api_participants")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION scf_auth_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('scf_auth', TG_TABLE_SCHEMA);
            RETURN NULL;
        END
        $$
        """
    )
    for table in _TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION scf_auth_changed()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in _TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_changed ON {table}")
    op.execute("DROP FUNCTION IF EXISTS scf_auth_changed()")
