"""The indexer in a process of its own (``SCF_INDEXER=process``).

In one process the indexer is a thread sharing the interpreter (and its global lock) with the event loop that
answers requests: under load, decoding logs and writing the projections took about a quarter of the service's
CPU, and every millisecond of it was a millisecond the requests could not run. :class:`IndexerProcess` runs
the same :class:`~ledger.index.indexer.Indexer` loop in a child process with its own interpreter, database
connection and node connection; the service keeps what needs no index work (reading where the index stands,
answering requests once their block is indexed).

The two talk over two pipes: the parent sends a poke (index now: a block with the service's transactions in it
appeared) or ``stop``; the child sends the last block the index holds after every page and every sync, which
the parent hands to its listeners (the service's :class:`api.service.IndexWatch`). The parent never blocks on
its pipe: a poke that finds it full (a child that stopped reading) is dropped, the child being far behind
anyway. The index itself, and where it stands, stays in the database as before, so a reader in any process sees
the same thing.

Failure: the child stops when the parent goes (its end of the pipe closes, also after a ``kill -9``), and a
child that dies is started again by the parent after a pause (the index is idempotent and resumes from its
checkpoint), with the cause in the log.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from ledger.index.indexer import Indexer

logger = logging.getLogger(__name__)

_POKE = b"p"
_STOP = b"s"

#: Seconds between a child's death and its restart (the node or the database may be what killed it).
RESTART_PAUSE = 1.0


@dataclass(frozen=True)
class IndexerConfig:
    """What the child needs to build the indexer the service would have built: all plain values, sent to a
    freshly started (spawned) interpreter."""

    database_url: str = field(repr=False)  # it may hold a password
    rpc_url: str
    chain_id: int
    rpc_timeout: float
    contracts: Mapping[str, str]
    abis: Mapping[str, list[dict[str, Any]]] = field(repr=False)
    start_block: int
    page_size: int
    confirmations: int
    poll_interval: float = 0.25
    log_level: int | None = None
    """The level of the parent's ``ledger`` logger where it has handlers (the child logs to stderr too)."""


def build_indexer(config: IndexerConfig, sessions: sessionmaker[Session]) -> Indexer:
    """The indexer ``config`` describes, on its own connection to the node: the service's (which runs it in a
    thread, or only reads where it stands) and the child's are built alike."""
    from ledger.index.indexer import Indexer  # here: the child imports web3 only once it runs
    from ledger.node import connect

    return Indexer(
        connect(config.rpc_url, config.chain_id, timeout=config.rpc_timeout),
        dict(config.contracts),
        dict(config.abis),
        sessions,
        start_block=config.start_block,
        page_size=config.page_size,
        confirmations=config.confirmations,
    )


class IndexerProcess:
    """Runs :meth:`Indexer.run_forever` in a child process; see the module."""

    def __init__(self, config: IndexerConfig, on_indexed: Callable[[int], None]) -> None:
        self.config = config
        self._on_indexed = on_indexed
        self._context = multiprocessing.get_context("spawn")  # a fresh interpreter: no threads forked mid-flight
        self._lock = threading.Lock()  # pokes come from the event loop and from the pipeline's threads
        self._commands: multiprocessing.connection.Connection | None = None  # to the child, non-blocking
        self._reports: multiprocessing.connection.Connection | None = None  # from the child
        self._process: multiprocessing.process.BaseProcess | None = None
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> None:
        """Start the child and the thread that reads what it reports (and restarts it when it dies)."""
        self._spawn()
        self._supervisor = threading.Thread(target=self._supervise, name="indexer-process", daemon=True)
        self._supervisor.start()

    def poke(self) -> None:
        """Ask the child to sync now rather than at its next poll."""
        self._send(_POKE)

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the child to stop after its current page, wait for it, and kill it if it does not."""
        self._stopping.set()
        self._send(_STOP)
        process = self._process
        if process is not None:
            process.join(timeout)
            if process.is_alive():
                logger.warning("the indexer process did not stop within %g s: killing it", timeout)
                process.kill()
                process.join(5)
        if self._supervisor is not None:
            self._supervisor.join(timeout)
        with self._lock:
            for conn in (self._commands, self._reports):
                if conn is not None:
                    conn.close()
            self._commands = self._reports = None

    def _spawn(self) -> None:
        commands_in, commands = self._context.Pipe(duplex=False)
        reports, reports_out = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=_main, args=(self.config, commands_in, reports_out), name="scf-indexer", daemon=True
        )
        process.start()
        # The child holds its own copies: when it dies, the parent's reports read end-of-file.
        commands_in.close()
        reports_out.close()
        os.set_blocking(commands.fileno(), False)
        with self._lock:
            for conn in (self._commands, self._reports):
                if conn is not None:
                    conn.close()
            self._commands, self._reports, self._process = commands, reports, process
        logger.info("indexer process %s started", process.pid)

    def _send(self, message: bytes) -> None:
        with self._lock:
            if self._commands is None:
                return
            # A full pipe (a child that stopped reading) drops the message: a poke is not needed, and a stop ends
            # in a kill after its wait. Any other error means the child is gone: the supervisor starts another.
            # A message this short is written whole or not at all (a pipe's writes up to PIPE_BUF are atomic).
            with contextlib.suppress(OSError):
                self._commands.send_bytes(message)

    def _supervise(self) -> None:
        while True:
            reports = self._reports
            assert reports is not None
            try:
                while True:
                    self._on_indexed(int.from_bytes(reports.recv_bytes(), "big", signed=True))
            except (EOFError, OSError):
                pass
            if self._stopping.is_set():
                return
            process = self._process
            assert process is not None
            process.join(5)
            logger.error(
                "the indexer process %s ended (exit code %s): starting another in %g s",
                process.pid,
                process.exitcode,
                RESTART_PAUSE,
            )
            if self._stopping.wait(RESTART_PAUSE):
                return
            self._spawn()
            self.restarts += 1


def _main(
    config: IndexerConfig,
    commands: multiprocessing.connection.Connection,
    reports: multiprocessing.connection.Connection,
) -> None:
    """The child: the indexer the service would have run in a thread, with its own connections."""
    if config.log_level is not None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        named = logging.getLogger("ledger")
        named.addHandler(handler)
        named.setLevel(config.log_level)
    from ledger.db import make_engine, make_sessionmaker

    engine = make_engine(config.database_url)
    indexer = build_indexer(config, make_sessionmaker(engine))
    send_lock = threading.Lock()

    def report(block: int) -> None:
        with send_lock:
            try:
                reports.send_bytes(block.to_bytes(8, "big", signed=True))
            except OSError:  # the parent is gone: the listener below stops the loop
                indexer.stop()

    def listen() -> None:
        try:
            while True:
                if commands.recv_bytes() == _STOP:
                    break
                indexer.poke()
        except (EOFError, OSError):  # the parent ended, however it ended
            pass
        indexer.stop()

    indexer.on_indexed(report)
    threading.Thread(target=listen, name="indexer-pipe", daemon=True).start()
    try:
        indexer.run_forever(poll_interval=config.poll_interval)
    finally:
        engine.dispose()
