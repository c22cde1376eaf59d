"""The pipeline's lease: which of the processes sharing a PostgreSQL database signs for the ledger's senders;
and the start-up lock that makes those processes start one at a time.

A session-level advisory lock (``pg_try_advisory_lock``) on a connection the lease keeps to itself. PostgreSQL
releases it the moment that session ends, a crash or ``kill -9`` of the holder included (the server sees the
socket close), so a standby process takes over within one poll. The lock's key is derived from the schema the
connection works in (``current_schema()``): two ledgers in two schemas of one database (the tests' layout) hold
two leases.

The holder checks that its session still answers (:meth:`PipelineLease.held`) before every poll; a holder that
lost its connection (a network partition from the database) must stop signing at once, since PostgreSQL has
already let another process take the lease: the service exits (``api.service``), leaving what it signed in
the journal for the next owner.
"""

from __future__ import annotations

import logging
import threading
from typing import Final

from sqlalchemy import Connection, Engine, text

logger = logging.getLogger("ledger.pipeline")

_KEY: Final = "hashtextextended(current_schema() || :purpose, 0)"
"""An advisory lock's key: the schema the session works in and what the lock is for."""
_PURPOSE: Final = {"purpose": ":scf-pipeline-owner"}
_STARTUP: Final = {"purpose": ":scf-start"}


class PipelineLease:
    """One process's hold (or wish to hold) on the pipeline of the database behind ``engine``."""

    def __init__(self, engine: Engine) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError("the pipeline lease needs PostgreSQL (SQLite serves one process)")
        self._engine = engine
        self._connection: Connection | None = None
        self._held = False
        self._lock = threading.Lock()

    @property
    def is_held(self) -> bool:
        """Whether this process took the lease (and has not noticed losing it)."""
        return self._held

    def try_acquire(self) -> bool:
        """Take the lease if no other session holds it; whether this process holds it now."""
        with self._lock:
            if self._held:
                return True
            if self._connection is None:
                self._connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            try:
                self._held = bool(
                    self._connection.execute(text(f"SELECT pg_try_advisory_lock({_KEY})"), _PURPOSE).scalar()
                )
            except Exception:
                self._drop_connection()
                raise
            return self._held

    def held(self) -> bool:
        """Whether the lease's session still answers (and so still holds the lock); False once it failed."""
        with self._lock:
            if not self._held or self._connection is None:
                return False
            try:
                self._connection.execute(text("SELECT 1"))
            except Exception as exc:
                logger.critical("the pipeline lease's database session failed: %s", exc)
                self._held = False
                self._drop_connection()
                return False
            return True

    def release(self) -> None:
        """Let go of the lease (a clean stop: a standby process takes it at its next poll)."""
        with self._lock:
            if self._connection is not None and self._held:
                try:
                    self._connection.execute(text(f"SELECT pg_advisory_unlock({_KEY})"), _PURPOSE)
                except Exception as exc:  # the session is gone, and the lock with it
                    logger.info("releasing the pipeline lease: %s", exc)
            self._held = False
            self._drop_connection()

    def _drop_connection(self) -> None:
        if self._connection is not None:
            try:
                self._connection.invalidate()
                self._connection.close()
            except Exception as exc:
                logger.debug("closing the lease's connection: %s", exc)
            self._connection = None


def take_startup_lock(engine: Engine) -> Connection | None:
    """On PostgreSQL, wait for the database's start-up lock (a session advisory lock on a connection of its own),
    so that processes sharing the database migrate, deploy and bootstrap one at a time; release it with
    :func:`release_startup_lock`. None on SQLite (one process)."""
    if engine.dialect.name != "postgresql":
        return None
    connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        connection.execute(text(f"SELECT pg_advisory_lock({_KEY})"), _STARTUP)
    except BaseException:
        connection.invalidate()
        connection.close()
        raise
    return connection


def release_startup_lock(connection: Connection) -> None:
    """Unlock, and end the session (a pooled connection would keep a session lock)."""
    try:
        connection.execute(text(f"SELECT pg_advisory_unlock({_KEY})"), _STARTUP)
    finally:
        connection.invalidate()
        connection.close()
