"""The service's HTTP edge, for running it behind a reverse proxy that terminates TLS: whom to believe about the
client, how large a request may be, the security headers of every answer, and a per-client rate limiter.

- **Forwarded headers.** ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed only from the proxies named
  in ``SCF_TRUSTED_PROXIES`` (addresses or CIDR networks; none by default). From such a peer the client is the
  right-most address of ``X-Forwarded-For`` that is not itself a trusted proxy, and the scheme the right-most
  ``X-Forwarded-Proto`` (the one the nearest proxy wrote). From anyone else both headers are ignored: a client
  cannot pose as another address, or claim TLS it does not have.
- **Request size.** A request body is at most ``SCF_MAX_REQUEST_BYTES`` (1 MiB), a document upload
  (``POST /documents``) ``SCF_MAX_DOCUMENT_BYTES`` (20 MiB) plus 64 KiB of multipart framing. A declared
  ``Content-Length`` beyond is answered 413 before anything is read; a body that grows beyond while read is cut
  off with the same 413 (``urn:scf:problem:too-large``).
- **Headers of every answer.** ``Strict-Transport-Security: max-age=31536000`` when the request came over TLS
  (directly, or by a trusted proxy's ``X-Forwarded-Proto: https``), never over plain HTTP, where a browser
  ignores it anyway; ``Cache-Control: no-store`` unless the route set its own (every answer of the API is a
  participant's private data, and some carry secrets: new API keys, sign-in tokens, documents), except the
  documentation's static files; ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``,
  ``X-Frame-Options: DENY``; and a Content-Security-Policy: :data:`API_CSP` on the API (JSON answers load
  nothing), :data:`DOCS_CSP` on the ``/docs`` page, which runs Swagger UI from this origin only, and
  :data:`PORTAL_CSP` on the web portal (``/`` and ``/portal/``, :mod:`api.portal`).
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import Problem, problem_response
from ledger.settings import Settings

API_CSP: Final = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
"""The API's answers are data, never a page: they may load, run and frame nothing."""

DOCS_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
"""The ``/docs`` page: scripts, styles, the OpenAPI document and images from this origin only, no inline script
and no ``eval``. Swagger UI sets inline styles and draws its icons as ``data:`` SVG images, so those two are
allowed; an inline style cannot run code."""

PORTAL_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
"""The portal (``/`` and ``/portal/``): its scripts, stylesheet and API calls from this origin only, no inline
script or style and no ``eval``; ``blob:`` images for the CSV exports' downloads and charts drawn in SVG."""

HSTS: Final = "max-age=31536000"
"""One year; ``includeSubDomains`` is left to whoever owns the domain (set it at the proxy)."""

DOCS_PREFIX: Final = "/docs"
PORTAL_PREFIX: Final = "/portal"
DOCS_ASSETS_PREFIX: Final = "/docs/assets/"
"""The documentation's static files (Swagger UI's script, stylesheet and icons): cacheable."""

MULTIPART_FRAMING_BYTES: Final = 64 * 1024
"""What a multipart upload may add to the document: its framing and fields."""


# -- trusted proxies ----------------------------------------------------------------------------------------

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(value: str) -> tuple[Network, ...]:
    """The addresses and networks of ``SCF_TRUSTED_PROXIES`` (separated by commas or spaces)."""
    networks = []
    for part in value.replace(",", " ").split():
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"SCF_TRUSTED_PROXIES: {part!r} is not an IP address or network") from None
    return tuple(networks)


def _is_in(host: str, networks: Iterable[Network]) -> bool:
    try:
        address = ipaddress.ip_address(host.strip().strip("[]"))
    except ValueError:
        return False
    return any(address in network for network in networks)


def _header_values(scope: Scope, name: bytes) -> list[str]:
    """Every comma-separated value of header ``name``, over all its lines, in order."""
    values: list[str] = []
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            values.extend(v.strip() for v in value.decode("latin-1").split(","))
    return [v for v in values if v]


def resolve_forwarded(scope: Scope, trusted: tuple[Network, ...]) -> None:
    """Set ``scope["client"]`` and ``scope["scheme"]`` from ``X-Forwarded-For`` / ``-Proto`` when the peer is a
    trusted proxy (see the module's docstring); leave them alone otherwise."""
    client = scope.get("client")
    if not trusted or not client or not _is_in(client[0], trusted):
        return
    forwarded_for = _header_values(scope, b"x-forwarded-for")
    if forwarded_for:
        host = forwarded_for[0]
        for candidate in reversed(forwarded_for):
            host = candidate
            if not _is_in(candidate, trusted):
                break
        scope["client"] = (host, 0)
    forwarded_proto = _header_values(scope, b"x-forwarded-proto")
    if forwarded_proto and forwarded_proto[-1].lower() in ("http", "https"):
        scope["scheme"] = forwarded_proto[-1].lower()


# -- the middleware -----------------------------------------------------------------------------------------


class RequestTooLarge(HTTPException):
    """A request body beyond its limit (413, answered as ``urn:scf:problem:too-large``)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is limited to {limit} bytes")
        self.limit = limit


@dataclass(frozen=True)
class EdgePolicy:
    trusted_proxies: tuple[Network, ...]
    max_request_bytes: int
    max_upload_bytes: int

    @classmethod
    def of(cls, settings: Settings) -> EdgePolicy:
        return cls(
            parse_networks(settings.trusted_proxies),
            settings.max_request_bytes,
            settings.max_document_bytes + MULTIPART_FRAMING_BYTES,
        )

    def body_limit(self, scope: Scope) -> int:
        if scope["method"] == "POST" and scope["path"].rstrip("/") == "/documents":
            return self.max_upload_bytes
        if scope["method"] == "POST" and scope["path"] == "/gateway/inbox":
            return self.max_upload_bytes * 4 // 3 + 64 * 1024  # a document in base64, in an envelope
        return self.max_request_bytes


def _declared_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def security_headers(scope: Scope, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` of an answer to ``scope`` with the security headers added (see the module's docstring)."""
    path: str = scope.get("path", "")
    present = {key.lower() for key, _ in headers}
    docs = path == DOCS_PREFIX or path.startswith(DOCS_PREFIX + "/")
    portal = path == "/" or path.startswith(PORTAL_PREFIX + "/")
    policy = DOCS_CSP if docs else PORTAL_CSP if portal else API_CSP
    added: list[tuple[bytes, bytes]] = [
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
        (b"content-security-policy", policy.encode()),
    ]
    if scope.get("scheme") == "https":
        added.append((b"strict-transport-security", HSTS.encode()))
    if b"cache-control" not in present and not path.startswith(DOCS_ASSETS_PREFIX):
        added.append((b"cache-control", b"no-store"))
    return [*[(k, v) for k, v in headers if k.lower() not in {name for name, _ in added}], *added]


class _Lazy:
    """The edge policy, made from the settings at the first request (the application may be built before its
    settings are read)."""

    def __init__(self, settings_of: Callable[[], Settings]) -> None:
        self.settings_of = settings_of
        self._policy: EdgePolicy | None = None

    @property
    def policy(self) -> EdgePolicy:
        if self._policy is None:
            self._policy = EdgePolicy.of(self.settings_of())
        return self._policy


class EdgeMiddleware(_Lazy):
    """Forwarded headers from trusted proxies, and the security headers of every answer (module docstring).
    The outermost of the application's middleware, so that all of them see the client and the scheme the
    trusted proxy reported."""

    def __init__(self, app: ASGIApp, settings_of: Callable[[], Settings]) -> None:
        super().__init__(settings_of)
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        resolve_forwarded(scope, self.policy.trusted_proxies)

        async def secured_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": security_headers(scope, list(message.get("headers", [])))}
            await send(message)

        await self.app(scope, receive, secured_send)


class BodyLimitMiddleware(_Lazy):
    """The request-size limits (module docstring). The innermost middleware: the route reads the body through
    it, so a body that outgrows its limit raises :class:`RequestTooLarge` in the route, answered as a 413
    problem like any other error."""

    def __init__(self, app: ASGIApp, settings_of: Callable[[], Settings]) -> None:
        super().__init__(settings_of)
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.policy.body_limit(scope)
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await problem_response(_too_large(limit))(scope, receive, send)
            return
        received = 0

        async def capped_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise RequestTooLarge(limit)
            return message

        await self.app(scope, capped_receive, send)


def _too_large(limit: int) -> Problem:
    return Problem(413, "too-large", "Request too large", f"the request body is limited to {limit} bytes")


# -- a rate limiter per client ------------------------------------------------------------------------------


def client_key(host: str | None) -> str:
    """Whom a limit counts: an IPv4 address, or an IPv6 address's /64 (one subscriber's usual share)."""
    if not host:
        return "-"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class RateLimiter:
    """A token bucket per client: ``per_minute`` requests a minute, in bursts of as many. Thread-safe; it
    remembers at most ``max_clients`` clients (the longest idle, whose bucket has refilled, are forgotten
    first), so that a flood of addresses cannot fill the memory either."""

    def __init__(
        self, per_minute: int, *, max_clients: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, client: str) -> float | None:
        """Take one request for ``client``: None if allowed, else the seconds until one is."""
        now = self.clock()
        with self._lock:
            tokens, then = self._buckets.pop(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - then) * self.rate)
            if tokens >= 1:
                self._buckets[client] = (tokens - 1, now)
                allowed = True
            else:
                self._buckets[client] = (tokens, now)
                allowed = False
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        return None if allowed else (1 - tokens) / self.rate

    def refused(self, client: str, what: str) -> Problem | None:
        """A 429 problem with ``Retry-After`` when ``client`` is over its limit, else None (the request counts)."""
        wait = self.take(client)
        if wait is None:
            return None
        per_minute = int(self.capacity)
        return Problem(
            429,
            "too-many-requests",
            "Too many requests",
            f"at most {per_minute} {what} a minute from one client; retry in {math.ceil(wait)} s",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
