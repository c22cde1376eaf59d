"""Who is calling, remembered: API keys and participants already looked up, so that a request does not query
the database to authenticate (:mod:`api.auth`).

Revocation rule: **a change to an API key or a participant takes effect on the next request.** In this process
that holds exactly: every statement that writes ``api_keys`` or ``api_participants`` through the service's
database engine (a key rotated, a participant's roles or custody changed, a test or the operator deleting
rows) forgets everything cached, and while such a write's transaction is open, and until its connection is
back in the pool (after its commit or rollback), nothing read meanwhile is remembered: a request that read the
old rows just before the commit cannot put them back.

A write by another process (a second service process, ``scf api-key reissue``, ``psql``):

- on **PostgreSQL** it is heard: a statement trigger on both tables notifies channel ``scf_auth`` (migration
  ``0024_auth_notify``), and each process keeps one connection listening (:class:`ledger.notify.Listener`) that forgets
  everything cached when a notification of its own schema arrives, milliseconds after the write's commit.
  While it listens, an entry is trusted for :data:`LISTENING_SECONDS` (or ``SCF_AUTH_CACHE_SECONDS`` if
  longer): the bound on what a listening connection that failed unnoticed could miss. When the connection
  fails, everything cached is forgotten and entries are trusted for ``SCF_AUTH_CACHE_SECONDS`` until it is
  back;
- on **SQLite** (one service process; the command line may write beside it) each entry is trusted for
  ``SCF_AUTH_CACHE_SECONDS`` (1 s by default) after it was read, then read again, so another process's
  revocation takes effect within that time.

``SCF_AUTH_CACHE_SECONDS=0`` turns the cache off: every request reads the database.

Only what was found is remembered (an unknown or revoked key is looked up every time, so that guessing keys
cannot fill the memory), and at most :data:`MAX_ENTRIES` entries.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Engine, event

from api.store import ParticipantRecord
from ledger.notify import AUTH, Listener

MAX_ENTRIES: Final = 10_000
LISTENING_SECONDS: Final = 10.0
"""How long an entry is trusted while this process hears the database's notifications of changes."""
_TABLES: Final = ("api_keys", "api_participants")
_WRITING: Final = "scf_auth_write"
"""Marks, in a pooled connection's ``info``, a write to the cached tables not yet ended."""


class NotRemembered(LookupError):
    """Asked for a remembered entry only, and none is (see :meth:`ParticipantCache.get`)."""


@dataclass(frozen=True)
class KnownParticipant:
    """What authentication needs of a participant of the service, as its record was read."""

    address: str
    name: str
    roles: frozenset[str]
    custody: str

    @classmethod
    def of(cls, record: ParticipantRecord) -> KnownParticipant:
        return cls(record.address, record.name, frozenset(record.roles), record.custody)


class ParticipantCache:
    """API keys (by their hash) and participants (by address) as last read (see the module)."""

    def __init__(self, engine: Engine, seconds: float) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], tuple[float, KnownParticipant]] = {}
        self._generation = 0
        self._writing = 0
        self.listener: Listener | None = None
        if seconds > 0:
            event.listen(engine, "before_cursor_execute", self._statement)
            event.listen(engine, "checkin", self._checkin)
            event.listen(engine, "invalidate", self._invalidated)

    def get(self, kind: str, key: str, read: Callable[[], ParticipantRecord | None] | None) -> KnownParticipant | None:
        """The participant of ``kind`` (``key`` or ``address``) ``key``, remembered or ``read()`` now; with no
        ``read``, :class:`NotRemembered` unless remembered (the event loop asks so, without touching the
        database)."""
        now = time.monotonic()
        entry = self._entries.get((kind, key)) if self.seconds > 0 else None
        if entry is not None and entry[0] > now:
            return entry[1]
        if read is None:
            raise NotRemembered(kind)
        if self.seconds <= 0:
            record = read()
            return None if record is None else KnownParticipant.of(record)
        generation = self._generation
        trusted = self.trusted_seconds
        record = read()
        if record is None:
            return None
        known = KnownParticipant.of(record)
        with self._lock:
            # Remembered only if no write to the tables began or ended (here or, heard, elsewhere) while it was
            # read, and the listener did not stop meanwhile (it forgets all when it does: the generation moves).
            if self._generation == generation and self._writing == 0:
                if len(self._entries) >= MAX_ENTRIES:
                    self._entries.clear()
                self._entries[(kind, key)] = (now + trusted, known)
        return known

    @property
    def trusted_seconds(self) -> float:
        """How long an entry read now is trusted: longer while this process hears other processes' changes."""
        if self.listener is not None and self.listener.listening:
            return max(self.seconds, LISTENING_SECONDS)
        return self.seconds

    def listen(self, engine: Engine) -> None:
        """On PostgreSQL, hear other processes' changes (see the module); nothing on SQLite or with no cache."""
        if self.seconds <= 0 or engine.dialect.name != "postgresql" or self.listener is not None:
            return
        # Connected or lost, what is remembered may have missed a change: forget it either way.
        self.listener = Listener(
            engine.url, {AUTH: self.forget}, name="scf auth listener", on_state=lambda _listening: self.forget()
        )
        self.listener.start()

    def close(self) -> None:
        """Stop listening (the service's shutdown)."""
        if self.listener is not None:
            self.listener.stop()
            self.listener = None

    def forget(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()

    def _statement(self, connection: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not any(table in statement for table in _TABLES) or statement.lstrip()[:6].upper() == "SELECT":
            return
        with self._lock:
            if not connection.info.get(_WRITING):
                connection.info[_WRITING] = True
                self._writing += 1
            self._generation += 1
            self._entries.clear()

    def _invalidated(self, dbapi_connection: Any, record: Any, exception: Any) -> None:
        self._checkin(dbapi_connection, record)

    def _checkin(self, dbapi_connection: Any, record: Any) -> None:
        if record is None or not record.info.pop(_WRITING, False):
            return
        with self._lock:
            self._writing -= 1
            self._generation += 1
            self._entries.clear()
