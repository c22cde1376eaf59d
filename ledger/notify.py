"""PostgreSQL's notifications (``LISTEN`` / ``NOTIFY``) between the processes of one service.

Several service processes share one PostgreSQL database (``SCF_WORKERS``): what one of them writes that the
others wait for is announced on a channel, so that they act at once instead of at their next poll. A
notification is sent in the writer's own transaction (:func:`notify`) and delivered when it commits, never
before; its payload is the schema the writer works in, so that ledgers in several schemas of one database (the
tests' layout) hear only their own. The channels:

- ``scf_auth``: an API key or a participant changed (a trigger of migration ``0024_auth_notify``, so that a
  change made by any tool counts): every process forgets the callers it remembers (``api.auth_cache``);
- ``scf_queue``: a standby process queued a submission: the pipeline's owner takes it
  (``ledger.pipeline.handoff``);
- ``scf_journal``: the owner journaled transactions or their outcomes: standby processes look for what they
  wait on.

A :class:`Listener` keeps one connection of its own (not the pool's: it stays in ``LISTEN`` for as long as the
process runs) and calls back from its thread. Notifications are a shortcut, never the only way: a listener that
lost its connection misses what was sent meanwhile, so whoever relies on one also polls, and is told when the
listener connects and fails (``on_state``) to catch up.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Final

import psycopg
from sqlalchemy import Connection, text
from sqlalchemy.engine import URL

logger = logging.getLogger("ledger.notify")

AUTH: Final = "scf_auth"
QUEUE: Final = "scf_queue"
JOURNAL: Final = "scf_journal"

PING_SECONDS: Final = 1.0
"""How often a listening connection is asked whether it still answers (and how soon it notices a stop)."""
RETRY_SECONDS: Final = 1.0
"""The wait before connecting again after a listening connection failed."""

_NOTIFY: Final = text("SELECT pg_notify(:channel, current_schema())")


def notify(connection: Connection, channel: str) -> None:
    """Announce on ``channel``, delivered when ``connection``'s transaction commits (identical notifications of
    one transaction are delivered once). PostgreSQL only."""
    connection.execute(_NOTIFY, {"channel": channel})


class Listener:
    """Listens on the channels of ``callbacks`` on a connection of its own and calls a channel's callback, from
    its thread, for each notification of its schema. ``on_state(listening)`` is called, from its thread too,
    once it listens (after a reconnection as well) and once it stopped listening (its connection failed, or
    :meth:`stop`): what was sent in between was not heard."""

    def __init__(
        self,
        url: URL,
        callbacks: Mapping[str, Callable[[], None]],
        *,
        name: str,
        on_state: Callable[[bool], None] | None = None,
    ) -> None:
        self._conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._callbacks = dict(callbacks)
        self._on_state = on_state
        self._name = name
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.listening = False
        """Whether the connection is up and listening."""
        self.heard = 0
        """Notifications of this schema heard so far."""
        self.backend_pid: int | None = None
        """The listening session's server process (``pg_stat_activity.pid``) while connected."""

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=PING_SECONDS + 5)

    def _state(self, listening: bool) -> None:
        self.listening = listening
        if self._on_state is not None:
            self._on_state(listening)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                with psycopg.connect(
                    self._conninfo, autocommit=True, connect_timeout=5, application_name=self._name
                ) as connection:
                    self.backend_pid = connection.info.backend_pid
                    row = connection.execute("SELECT current_schema()").fetchone()
                    schema = row[0] if row else None
                    for channel in self._callbacks:
                        connection.execute(f"LISTEN {channel}")
                    self._state(True)
                    while not self._stopping.is_set():
                        for notification in connection.notifies(timeout=PING_SECONDS):
                            callback = self._callbacks.get(notification.channel)
                            if callback is not None and notification.payload == schema:
                                self.heard += 1
                                callback()
                        connection.execute("SELECT 1")
            except Exception as exc:
                if not self._stopping.is_set():
                    logger.warning(
                        "%s: listening for notifications failed (%s); polling until it is back", self._name, exc
                    )
            finally:
                self.backend_pid = None
                if self.listening:
                    self._state(False)
            self._stopping.wait(RETRY_SECONDS)
