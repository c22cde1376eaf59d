"""Schema migrations of the ledger's database (alembic; ``alembic.ini`` at the repository root).

:func:`upgrade` brings a database to the newest schema from Python, as ``alembic upgrade head`` does from
the command line; the service and the tests call it at start.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from ledger.secrets import MasterSecrets

MIGRATIONS_DIR = Path(__file__).resolve().parent


def alembic_config(url: str | None = None) -> Config:
    """An alembic configuration for this project without reading ``alembic.ini``; ``url`` overrides the
    settings' database URL."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.attributes["url"] = url
    return config


def ensure_sqlite_folder(url: str) -> None:
    """Create the folder of a SQLite database file (SQLite creates the file, not its folder)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def upgrade(url: str | None = None, revision: str = "head", *, secrets: MasterSecrets | None = None) -> None:
    """Migrate the database at ``url`` (default: the settings' database) up to ``revision``. ``secrets``: the
    master secrets a migration that encrypts existing rows uses (default: the settings' ones, read only when
    such rows exist: see :func:`migration_secrets`)."""
    config = alembic_config(url)
    if secrets is not None:
        config.attributes["master_secrets"] = secrets
    command.upgrade(config, revision)


def downgrade(url: str | None = None, revision: str = "base", *, secrets: MasterSecrets | None = None) -> None:
    """Migrate the database at ``url`` down to ``revision`` (everything removed by default)."""
    config = alembic_config(url)
    if secrets is not None:
        config.attributes["master_secrets"] = secrets
    command.downgrade(config, revision)


def migration_secrets() -> MasterSecrets:
    """The master secrets for a migration that encrypts or decrypts rows: those handed to :func:`upgrade` or
    :func:`downgrade`, else the settings' (``SCF_MASTER_SECRET``, ``SCF_PREVIOUS_MASTER_SECRETS``), as
    ``alembic upgrade head`` from the command line has them."""
    from alembic import context

    from ledger.secrets import master_secrets
    from ledger.settings import get_settings

    given = context.config.attributes.get("master_secrets")
    return given if given is not None else master_secrets(get_settings())
