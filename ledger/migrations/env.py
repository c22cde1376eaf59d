"""Alembic environment of the ledger's database: the event index, the transaction journal and the service's
records, all declared on :data:`ledger.db.Base`.

The database URL is, in order: a connection or URL handed over by :func:`ledger.migrations.upgrade`,
``alembic -x url=...``, ``sqlalchemy.url`` in ``alembic.ini``, and otherwise the ledger's settings
(``Settings.resolved_database_url``: ``SCF_DATABASE_URL``, else the SQLite file under the data folder).
"""

from __future__ import annotations

import importlib
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

from ledger.db import Base, make_engine
from ledger.migrations import ensure_sqlite_folder

#: Every module that declares tables on ``Base.metadata``; one that does not exist yet is skipped.
TABLE_MODULES = (
    "ledger.index.models",
    "ledger.index.feed",
    "ledger.journal",
    "ledger.pipeline.handoff",
    "ledger.documents",
    "ledger.docex",
    "api.store",
    "api.audit_log",
    "api.webhooks",
)

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

for module in TABLE_MODULES:
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise

target_metadata = Base.metadata


def database_url() -> str:
    url = config.attributes.get("url") or context.get_x_argument(as_dictionary=True).get("url")
    url = url or config.get_main_option("sqlalchemy.url")
    if url:
        return str(url)
    from ledger.settings import get_settings

    return get_settings().resolved_database_url


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(url=database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    url = database_url()
    ensure_sqlite_folder(url)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            run_migrations(connection)
            connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
