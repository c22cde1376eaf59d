"""The SQL database: one declarative base for every table (event index, transaction journal, service
records) and the engine factory. SQLite by default, PostgreSQL by URL; the schema is managed by alembic
(``ledger/migrations``). The chain is the source of truth for money; this database never is.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from ledger import jsontext

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utc_now() -> datetime:
    """The current time in UTC, timezone-aware: the default of every timestamp column."""
    return datetime.now(UTC)


class DatabaseUnavailable(Exception):
    """The database cannot be reached, opened or migrated; the message is one line naming ``SCF_DATABASE_URL``."""

    def __init__(self, url: str, cause: BaseException) -> None:
        self.url = redact_database_url(url)
        reason = (str(getattr(cause, "orig", None) or cause) or type(cause).__name__).strip().splitlines()
        super().__init__(
            f"the database {self.url} cannot be used: {reason[0] if reason else type(cause).__name__}; "
            "check SCF_DATABASE_URL (and SCF_DATA_DIR for the default SQLite file)"
        )


def redact_database_url(url: str) -> str:
    """``url`` with its password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(an unreadable URL)"


class Base(DeclarativeBase):
    """Declarative base of every table of the ledger."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def make_engine(url: str) -> Engine:
    """An engine for ``url``. SQLite gets WAL mode, foreign keys and a busy timeout so that the indexer
    and the service can share the file."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, json_serializer=jsontext.dumps_text
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, json_serializer=jsontext.dumps_text)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
