"""The service as a process (``scf serve``): listen, start the ledger, serve; or say in one line why it cannot.

The cheap checks come first, so that a service that cannot serve sends nothing to a chain: the secret settings
(:func:`ledger.secrets.check_secrets`), then the listening socket (bound here and handed to uvicorn, so a port
that is taken is found before anything starts), then the ledger (:meth:`api.service.LedgerService.start`:
database, chain, deployment), and only then uvicorn. Every expected start-up failure has a one-line message
naming the setting to change (:func:`failure_message`); ``scf serve`` prints it and exits with code 1, and
``scf --debug serve`` adds the traceback.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import multiprocessing
import os
import signal
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from ledger.compiler import CompilationError
from ledger.db import DatabaseUnavailable
from ledger.deployment import DeploymentError, OperatorKeyMissing, RegulatorMissing
from ledger.node import ChainIdMismatch, ChainUnreachable
from ledger.secrets import SecretRefused
from ledger.settings import Settings


class StartupFailure(Exception):
    """The service cannot start; the message is one line naming the setting to change."""


def failure_message(exc: BaseException, settings: Settings) -> str | None:
    """The one line that explains ``exc`` as a start-up failure, or None when it is not an expected one."""
    expected = (
        StartupFailure,
        SecretRefused,
        OperatorKeyMissing,
        RegulatorMissing,
        ChainIdMismatch,
        DatabaseUnavailable,
    )
    if isinstance(exc, expected):
        return first_line(str(exc))
    if isinstance(exc, ChainUnreachable):
        local = urlsplit(settings.rpc_url).hostname in ("127.0.0.1", "localhost", "::1")
        hint = " or start the local chain (`scf chain start`, or `scf serve` without --no-chain)" if local else ""
        return f"{first_line(str(exc))}; check SCF_RPC_URL{hint}"
    if isinstance(exc, DeploymentError):
        return f"{first_line(str(exc))} (the operator, SCF_OPERATOR_KEY, deploys and pays for gas)"
    if isinstance(exc, CompilationError):
        return f"the contracts do not compile: {first_line(str(exc))} (`make setup` compiles them)"
    return None


def first_line(text: str) -> str:
    """The first non-blank line of ``text``, saying when there is more (shown with --debug)."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return "(no message)"
    return lines[0] + (" (more with --debug)" if len(lines) > 1 else "")


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (not yet listening: uvicorn listens on it), or a
    :class:`StartupFailure` naming ``SCF_API_PORT`` / ``SCF_API_HOST``."""
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise StartupFailure(f"SCF_API_HOST {host!r} is not an address of this machine: {exc.strerror}") from exc
    sock = socket.socket(family, kind, protocol)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # not past a listener: only TIME_WAIT leftovers
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise StartupFailure(
                f"port {port} on {host} is taken by another program; set SCF_API_PORT to a free port"
            ) from exc
        if exc.errno == errno.EACCES:
            raise StartupFailure(
                f"port {port} on {host} needs privileges this user lacks; set SCF_API_PORT above 1023"
            ) from exc
        raise StartupFailure(f"cannot listen on {host}:{port}: {exc.strerror}; check SCF_API_HOST") from exc
    return sock


def check_workers(settings: Settings) -> None:
    """Several processes (``SCF_WORKERS``) share one database: PostgreSQL only."""
    if settings.workers > 1 and not settings.resolved_database_url.startswith("postgresql"):
        raise StartupFailure(
            f"SCF_WORKERS={settings.workers} needs a PostgreSQL database (SCF_DATABASE_URL=postgresql+psycopg://…): "
            "SQLite serves one process; or set SCF_WORKERS=1"
        )


EXIT_START_FAILED = 1
"""A worker's exit code when it could not start (the settings are wrong: starting it again would not help)."""


def run_workers(settings: Settings, sock: socket.socket) -> str | None:
    """Serve with ``settings.workers`` processes on ``sock`` (forked, sharing the socket, the database and the
    keystore): one of them owns the pipeline (:mod:`ledger.pipeline.lease`), the others queue their submissions
    for it and take over when it goes. A worker that dies (a crash, ``kill -9``) is started again; one that
    cannot start stops them all. SIGINT or SIGTERM stops every worker (each finishes what it holds) and
    returns. Returns None, or the one line that says why a worker could not start."""
    log = logging.getLogger("api")
    context = multiprocessing.get_context("fork")  # before any thread or event loop: nothing but the socket is shared
    workers: dict[int, multiprocessing.process.BaseProcess] = {}
    stopping = False
    failed = False
    reasons = context.SimpleQueue()  # a worker that cannot start says why here

    def start(number: int) -> None:
        process = context.Process(target=_worker, args=(settings, sock, number, reasons), name=f"scf-worker-{number}")
        process.start()
        workers[number] = process

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for number in range(settings.workers):
            start(number)
        print(
            f"serving the API on http://{settings.api_host}:{settings.api_port} with {settings.workers} processes "
            "(docs at /docs)",
            flush=True,
        )
        signalled = False
        while workers:
            time.sleep(0.2)
            if stopping and not signalled:
                signalled = True
                for process in workers.values():
                    if process.pid is not None and process.is_alive():
                        os.kill(process.pid, signal.SIGTERM)
            for number, process in list(workers.items()):
                if process.is_alive():
                    continue
                process.join()
                del workers[number]
                if stopping:
                    continue
                if process.exitcode == EXIT_START_FAILED:
                    failed = stopping = True
                    continue
                log.warning("worker %d (pid %s) ended with %s: starting another", number, process.pid, process.exitcode)
                start(number)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not failed:
        return None
    return str(reasons.get()) if not reasons.empty() else "a worker could not start (its output says why)"


def _worker(settings: Settings, sock: socket.socket, number: int, reasons: Any) -> None:
    """One worker process: serve until SIGTERM; exit 1, saying why in one line (to the parent), when it cannot
    start."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the workers (Ctrl-C reaches them too)
    try:
        run(settings, sock, announce=False)
    except Exception as exc:
        message = failure_message(exc, settings) or f"unexpected {type(exc).__name__}: {first_line(str(exc))}"
        reasons.put(message)
        os._exit(EXIT_START_FAILED)
    os._exit(0)


HTTP_PROTOCOL = "httptools"
"""uvicorn's HTTP/1.1 implementation: httptools (llhttp, in C) rather than h11 (pure Python)."""
EVENT_LOOP = "uvloop"
"""The event loop the service runs on: uvloop (libuv) rather than asyncio's selector loop."""


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """What creates the service's event loop (:data:`EVENT_LOOP`)."""
    import uvloop

    return uvloop.new_event_loop


def run(settings: Settings, sock: socket.socket, *, announce: bool = True) -> None:
    """Start the ledger, then serve the API on ``sock`` until interrupted (the ledger stops with it)."""
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(_serve(settings, sock, announce))


async def _serve(settings: Settings, sock: socket.socket, announce: bool) -> None:
    import uvicorn

    from api.app import create_app
    from api.service import LedgerService

    service = await LedgerService.start(settings)
    app = create_app(service=service)
    # The API logs one line per request itself (with request id, operation id and transaction hash), so
    # uvicorn's own access log would only repeat it. X-Forwarded-* are read by api.edge, from the proxies
    # named in SCF_TRUSTED_PROXIES only, so uvicorn's own reading of them (from 127.0.0.1 by default) is off.
    config = uvicorn.Config(
        app,
        http=HTTP_PROTOCOL,
        loop=EVENT_LOOP,
        log_level="info",
        access_log=False,
        proxy_headers=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    if announce:
        print(f"serving the API on http://{settings.api_host}:{settings.api_port} (docs at /docs)", flush=True)
    await server.serve(sockets=[sock])
