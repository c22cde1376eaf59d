"""The request id and the request's log line and metrics, for every answer.

:class:`RequestLogMiddleware` gives each request an id (its ``X-Request-ID`` header, else a fresh one) that the
answer carries back in ``X-Request-ID``, counts the request and its latency by route template
(:func:`api.routes.system.observe`), and logs one line per request (``api`` logger, INFO): the id, method,
path, status, milliseconds, the caller, and the operation and transaction it became. The latency is taken when
the answer's head goes out. A plain ASGI middleware: Starlette's ``BaseHTTPMiddleware`` (``@app.middleware``)
runs the rest of the application in a task of its own and streams the answer through a memory channel, which
cost more CPU than any route's own work.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import MutableMapping
from typing import Any

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.routes import system

logger = logging.getLogger("api")

_REQUEST_ID = b"x-request-id"


class RequestLogMiddleware:
    """See the module."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = ""
        for name, value in scope.get("headers", ()):
            if name == _REQUEST_ID:
                rid = value.decode("latin-1")
                break
        rid = rid or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid  # for the audit records of a batch's items
        started = time.perf_counter()

        async def logged_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != _REQUEST_ID]
                headers.append((_REQUEST_ID, rid.encode("latin-1")))
                message = {**message, "headers": headers}
                _observe(scope, int(message["status"]), headers, time.perf_counter() - started, rid)
            await send(message)

        await self.app(scope, receive, logged_send)


def _observe(scope: Scope, status: int, headers: list[tuple[bytes, bytes]], seconds: float, rid: str) -> None:
    system.observe(Request(scope), status, seconds)
    if not logger.isEnabledFor(logging.INFO):
        return
    state: MutableMapping[str, Any] = scope.get("state", {})
    location = next((v.decode("latin-1") for k, v in headers if k.lower() == b"location"), "")
    operation_id = state.get("operation_id") or location
    logger.info(
        "request_id=%s method=%s path=%s status=%s ms=%.1f caller=%s operation_id=%s tx_hash=%s",
        rid,
        scope["method"],
        scope["path"],
        status,
        seconds * 1000,
        state.get("caller") or "-",
        operation_id.removeprefix("/operations/") or "-",
        state.get("tx_hash") or "-",
    )
