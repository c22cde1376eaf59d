"""Webhook subscriptions: the event feed (:mod:`ledger.index.feed`) POSTed to integrators' URLs.

A subscription names a URL, the kinds it wants (none: every kind), a counterparty (optional: only events that
name it) and where it starts in the feed. The :class:`Deliverer` (an asyncio task the service starts and
stops) runs one worker task per active subscription, so a slow or failing receiver holds up only its own
subscription. A worker sends the subscription's events one at a time, in feed order, and moves its cursor only
past an event the receiver accepted (a 2xx answer): delivery is at least once, in order, and a redelivery
carries the same event id.

Each request is signed as Stripe's are: ``SCF-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>"
with the subscription's secret>`` (:func:`signature_header`; the README shows how to verify it). A failure (an
error answer, a redirect, which is never followed, a timeout, a refused target) is recorded in the delivery
log and retried after an exponential back-off with full jitter; after ``SCF_WEBHOOK_MAX_FAILURES`` failures
in a row the subscription is paused until its owner resumes it.

Targets are checked before every request, not only at creation (a name may resolve elsewhere later): the host
is resolved and every address must be public (no private, loopback, link-local, unique-local, shared, reserved
or cloud-metadata address) unless the operator allow-listed it (``SCF_WEBHOOK_ALLOW``: host names and
networks). The answer is read as it streams in, up to ``SCF_WEBHOOK_MAX_RESPONSE_BYTES`` (a longer one is a
failure and the connection is dropped there), and the whole request is bounded by
``SCF_WEBHOOK_TIMEOUT_SECONDS``. A failure is recorded in words (:func:`transport_error`): connection refused,
a TLS certificate that does not verify, no answer in time, the status, the body cap.

The signing secret is kept sealed under the master secret (:func:`seal_secret`, :func:`signing_secret`,
:func:`ledger.secrets.seal_webhook_secret`); the database never holds it in clear.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
import random
import secrets
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Index, Integer, LargeBinary, String, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from api.store import ParticipantRecord
from ledger.aio import wait_event
from ledger.db import Base
from ledger.index.feed import FeedRow, feed_view, read_feed
from ledger.models import Role
from ledger.secrets import MasterSecrets, SealedSecretError, open_webhook_secret, seal_webhook_secret
from ledger.settings import Settings

logger = logging.getLogger("api.webhooks")

ACTIVE = "active"
PAUSED = "paused"
DELETED = "deleted"

SIGNATURE_HEADER = "SCF-Signature"
EVENT_ID_HEADER = "SCF-Event-Id"
_JSON = JSON().with_variant(JSONB(), "postgresql")
_ID = BigInteger().with_variant(Integer(), "sqlite")  # SQLite auto-increments only an INTEGER PRIMARY KEY

#: Cloud metadata services, refused whatever their range (some are not in a private one).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "192.0.0.192")
)


def utc_now() -> datetime:
    return datetime.now(UTC)


class SubscriptionRecord(Base):
    """A webhook subscription. ``cursor`` is the sequence number of the last event the receiver accepted (or
    the feed's position when it started): delivery resumes after it."""

    __tablename__ = "webhook_subscriptions"
    __table_args__ = (Index("ix_webhook_subscriptions_owner_id", "owner", "id"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    owner: Mapped[str] = mapped_column(String(42))
    url: Mapped[str] = mapped_column(String(2048))
    kinds: Mapped[list[str]] = mapped_column(_JSON)
    counterparty: Mapped[str | None] = mapped_column(String(42))
    secret_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    """The signing secret (shown once, at creation), encrypted under the master secret
    (:func:`ledger.secrets.seal_webhook_secret`): the database never holds it in clear."""
    secret_key_id: Mapped[str] = mapped_column(String(16))
    """The id of the master secret it is sealed with (``0012_webhook_secret_sealed``)."""
    cursor: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(10))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    """Failed attempts in a row (0 after a success)."""
    paused_reason: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class DeliveryRecord(Base):
    """One attempt to deliver one event to one subscription: the delivery log its owner reads."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_subscription_id", "subscription_id", "id"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    subscription_id: Mapped[int] = mapped_column(BigInteger)
    seq: Mapped[int] = mapped_column(BigInteger)
    event_id: Mapped[str] = mapped_column(String(80))
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    ok: Mapped[bool] = mapped_column(Boolean)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(300))
    duration_ms: Mapped[int] = mapped_column(Integer)


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def seal_secret(record: SubscriptionRecord, secrets: MasterSecrets, value: str) -> None:
    """Store ``value`` as ``record``'s signing secret, sealed with the current master secret (the record must
    have its id: the sealed secret is bound to it)."""
    record.secret_sealed = seal_webhook_secret(secrets.current, record.id, value)
    record.secret_key_id = secrets.current.id


def signing_secret(record: SubscriptionRecord, secrets: MasterSecrets) -> str:
    """``record``'s signing secret, opened with the master secret it names."""
    return open_webhook_secret(secrets, record.secret_key_id, record.id, record.secret_sealed)


def reseal_webhook_secrets(sessions: sessionmaker[Session], secrets: MasterSecrets, *, batch: int = 100) -> int:
    """Seal again with the current master secret every signing secret sealed with another (after the master
    secret changed: ``scf secrets rotate``); return how many. Each batch commits on its own."""
    done = 0
    while True:
        with sessions() as session, session.begin():
            records = session.scalars(
                select(SubscriptionRecord)
                .where(SubscriptionRecord.secret_key_id != secrets.current.id)
                .order_by(SubscriptionRecord.id)
                .limit(batch)
                .with_for_update()
            ).all()
            for record in records:
                seal_secret(record, secrets, signing_secret(record, secrets))
        done += len(records)
        if len(records) < batch:
            return done


def webhook_secrets_not_under(sessions: sessionmaker[Session], secrets: MasterSecrets) -> int:
    """How many signing secrets are sealed with another master secret than the current one."""
    with sessions() as session:
        return len(
            session.scalars(
                select(SubscriptionRecord.id).where(SubscriptionRecord.secret_key_id != secrets.current.id)
            ).all()
        )


def signature_header(secret: str, body: bytes, timestamp: int) -> str:
    """``t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>.<body>" keyed with the secret>``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def subscription_view(record: SubscriptionRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "owner": record.owner,
        "url": record.url,
        "kinds": list(record.kinds),
        "counterparty": record.counterparty,
        "cursor": record.cursor,
        "status": record.status,
        "failures": record.failures,
        "paused_reason": record.paused_reason,
        "created_at": record.created_at,
    }


def delivery_view(record: DeliveryRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "seq": record.seq,
        "event_id": record.event_id,
        "attempt": record.attempt,
        "at": record.at,
        "ok": record.ok,
        "status_code": record.status_code,
        "error": record.error,
        "duration_ms": record.duration_ms,
    }


# -- targets ------------------------------------------------------------------------------------------------


class TargetRefused(ValueError):
    """The URL may not be called: not http(s), unresolvable, or an address the service does not call."""


@dataclass(frozen=True)
class AllowList:
    """What the operator allows besides public addresses (``SCF_WEBHOOK_ALLOW``): host names and networks."""

    hosts: frozenset[str]
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    @classmethod
    def parse(cls, text: str) -> AllowList:
        hosts: set[str] = set()
        networks = []
        for entry in (part.strip() for part in text.split(",")):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def allows(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(address in network for network in self.networks)


def refusal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why ``address`` is not called (None: it is a public address)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return refusal(address.ipv4_mapped)
    if address in METADATA_ADDRESSES:
        return "a cloud metadata service"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_private:
        return "a private-range address"
    if not address.is_global:
        return "not a public address"
    return None


async def check_target(url: str, allow: AllowList) -> list[str]:
    """The addresses ``url``'s host resolves to, all of them callable; :class:`TargetRefused` otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused("the URL must be http:// or https:// with a host")
    if parts.username or parts.password:
        raise TargetRefused("the URL may not carry credentials")
    host = parts.hostname.lower().rstrip(".")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise TargetRefused("the URL's port is not a port number") from None
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise TargetRefused(f"the host {host} does not resolve ({exc})") from None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if host in allow.hosts:
        return [str(a) for a in addresses]
    for address in addresses:
        reason = refusal(address)
        if reason is not None and not allow.allows(address):
            raise TargetRefused(
                f"{host} resolves to {address}, {reason}; the operator must allow-list it (SCF_WEBHOOK_ALLOW)"
            )
    return [str(a) for a in addresses]


def pin(url: str, address: str) -> tuple[str, dict[str, Any]]:
    """``url`` with its host replaced by the checked ``address``, so that the request goes where the check
    looked (no second resolution a DNS rebinding could answer differently), and the request extensions that
    keep TLS on the original name (SNI and the certificate's host name); the caller sends ``Host``."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return url, {}
    literal = f"[{address}]" if ":" in address else address
    netloc = literal if parts.port is None else f"{literal}:{parts.port}"
    extensions: dict[str, Any] = {"sni_hostname": host} if parts.scheme == "https" else {}
    return parts._replace(netloc=netloc).geturl(), extensions


# -- delivery -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: int


@dataclass(frozen=True)
class WebhookSettings:
    allow: AllowList
    timeout: float
    max_response_bytes: int
    max_failures: int
    backoff_base: float
    backoff_cap: float
    poll: float = 0.25

    @classmethod
    def of(cls, settings: Settings) -> WebhookSettings:
        return cls(
            allow=AllowList.parse(settings.webhook_allow),
            timeout=settings.webhook_timeout_seconds,
            max_response_bytes=settings.webhook_max_response_bytes,
            max_failures=settings.webhook_max_failures,
            backoff_base=settings.webhook_backoff_seconds,
            backoff_cap=settings.webhook_backoff_max_seconds,
        )


def backoff(failures: int, base: float, cap: float) -> float:
    """Exponential back-off with full jitter: a random wait up to ``base × 2^(failures-1)``, at most ``cap``."""
    return random.uniform(0, min(cap, base * 2 ** max(0, failures - 1)))


async def post_event(
    client: httpx.AsyncClient, url: str, secret: str, row: FeedRow, subscription_id: int, config: WebhookSettings
) -> Attempt:
    """POST one event, signed; a 2xx answer is a success, anything else (a redirect included) a failure."""
    started = time.monotonic()
    body = json.dumps({**feed_view(row), "subscription": subscription_id}, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature_header(secret, body, int(time.time())),
        EVENT_ID_HEADER: row.event_id,
        "SCF-Event-Seq": str(row.seq),
        "User-Agent": "scf-ledger-webhooks/1",
    }

    def done(ok: bool, status: int | None, error: str | None) -> Attempt:
        return Attempt(ok, status, None if error is None else error[:300], int((time.monotonic() - started) * 1000))

    try:
        addresses = await check_target(url, config.allow)
    except TargetRefused as exc:
        return done(False, None, f"target refused: {exc}")
    pinned, extensions = pin(url, addresses[0])
    if pinned != url:
        headers["Host"] = urlsplit(url).netloc
    read = 0
    try:
        async with asyncio.timeout(config.timeout):
            request = client.build_request("POST", pinned, content=body, headers=headers, extensions=extensions)
            async with contextlib.aclosing(await client.send(request, stream=True)) as response:
                async for chunk in response.aiter_raw():
                    read += len(chunk)
                    if read > config.max_response_bytes:
                        break  # the answer's body is not used; read no more of a huge one (closing drops it)
                status = response.status_code
    except TimeoutError:
        return done(False, None, f"no answer within {config.timeout:g} s")
    except (httpx.HTTPError, OSError) as exc:
        return done(False, None, transport_error(exc))
    if read > config.max_response_bytes:
        return done(
            False,
            status,
            f"answered {status} with a body over {config.max_response_bytes} bytes (SCF_WEBHOOK_MAX_RESPONSE_BYTES); "
            "the rest was not read",
        )
    if 300 <= status < 400:
        return done(False, status, "redirect (webhooks do not follow redirects)")
    if not 200 <= status < 300:
        return done(False, status, f"answered {status}")
    return done(True, status, None)


def transport_error(exc: BaseException) -> str:
    """What went wrong before an answer came, in words: a TLS failure (an untrusted or expired certificate, a
    name that does not match), a refused or unreachable connection, or the transport's own message."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"TLS error: certificate verify failed: {seen.verify_message} ({type(exc).__name__})"
        if isinstance(seen, ssl.SSLError):
            return f"TLS error: {seen.reason or seen} ({type(exc).__name__}: {exc})"
        if isinstance(seen, ConnectionRefusedError):
            return f"connection refused ({type(exc).__name__}: {exc})"
        seen = seen.__cause__ or seen.__context__
    if isinstance(exc, httpx.ConnectError):
        if "CERTIFICATE_VERIFY_FAILED" in str(exc) or "SSL" in str(exc):
            return f"TLS error: {exc}"
        return f"cannot connect ({type(exc).__name__}: {exc})"
    return f"{type(exc).__name__}: {exc}"


class Deliverer:
    """Delivers every active subscription's events: one worker task per subscription, supervised by one loop
    that starts workers for subscriptions that became active and lets go of the others."""

    def __init__(self, sessions: sessionmaker[Session], config: WebhookSettings, secrets: MasterSecrets) -> None:
        self.sessions = sessions
        self.config = config
        self.secrets = secrets
        self._workers: dict[int, asyncio.Task[None]] = {}
        self._supervisor: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._wake = asyncio.Event()

    def start(self) -> None:
        self._client = httpx.AsyncClient(follow_redirects=False, timeout=self.config.timeout, trust_env=False)
        self._supervisor = asyncio.create_task(self._supervise(), name="webhook-deliverer")

    async def stop(self) -> None:
        tasks = [t for t in (self._supervisor, *self._workers.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._workers.clear()
        if self._client is not None:
            await self._client.aclose()

    def poke(self) -> None:
        """Look at the subscriptions now (one was created or resumed)."""
        self._wake.set()

    async def _supervise(self) -> None:
        while True:
            try:
                active = await asyncio.to_thread(self._active_ids)
            except Exception:  # a database hiccup: try again on the next round
                logger.exception("webhook deliverer: cannot read the subscriptions")
                active = set(self._workers)
            for subscription_id, task in list(self._workers.items()):
                if task.done():
                    del self._workers[subscription_id]
                elif subscription_id not in active:
                    task.cancel()
                    del self._workers[subscription_id]
            for subscription_id in active - set(self._workers):
                self._workers[subscription_id] = asyncio.create_task(
                    self._work(subscription_id), name=f"webhook-{subscription_id}"
                )
            await wait_event(self._wake, 1.0)
            self._wake.clear()

    def _active_ids(self) -> set[int]:
        with self.sessions() as session:
            return set(session.scalars(select(SubscriptionRecord.id).where(SubscriptionRecord.status == ACTIVE)))

    def _next(self, subscription_id: int) -> tuple[SubscriptionRecord, str, list[FeedRow]] | None:
        with self.sessions() as session:
            record = session.get(SubscriptionRecord, subscription_id)
            if record is None or record.status != ACTIVE:
                return None
            owner = session.get(ParticipantRecord, record.owner)
            roles = set(owner.roles) if owner is not None else set()
            sees_all = bool(roles & {Role.OPERATOR.role_name, Role.REGULATOR.role_name})
            rows = read_feed(
                session,
                record.cursor,
                20,
                party=None if sees_all else record.owner,
                kinds=list(record.kinds),
                counterparty=record.counterparty,
            )
            try:
                secret = signing_secret(record, self.secrets)
            except SealedSecretError as exc:
                session.rollback()
                self._pause(subscription_id, str(exc))
                return None
            session.expunge_all()
            return record, secret, rows

    def _pause(self, subscription_id: int, reason: str) -> None:
        """Pause a subscription that cannot be delivered whatever the receiver does (its secret does not open)."""
        logger.error("webhook subscription %s paused: %s", subscription_id, reason)
        with self.sessions() as session, session.begin():
            record = session.get(SubscriptionRecord, subscription_id, with_for_update=True)
            if record is not None and record.status == ACTIVE:
                record.status = PAUSED
                record.paused_reason = reason[:300]

    def _record(self, subscription_id: int, row: FeedRow, attempt: int, result: Attempt) -> str:
        """Log the attempt and move the subscription on: past the event on success, towards a pause on failure.
        Returns the subscription's status afterwards."""
        with self.sessions() as session, session.begin():
            record = session.get(SubscriptionRecord, subscription_id, with_for_update=True)
            if record is None:
                return DELETED
            session.add(
                DeliveryRecord(
                    subscription_id=subscription_id,
                    seq=row.seq,
                    event_id=row.event_id,
                    attempt=attempt,
                    ok=result.ok,
                    status_code=result.status_code,
                    error=result.error,
                    duration_ms=result.duration_ms,
                )
            )
            if record.status != ACTIVE:
                return record.status
            if result.ok:
                record.cursor = max(record.cursor, row.seq)
                record.failures = 0
            else:
                record.failures += 1
                if record.failures >= self.config.max_failures:
                    record.status = PAUSED
                    record.paused_reason = f"{record.failures} failed deliveries in a row; last: {result.error}"
            return record.status

    async def _work(self, subscription_id: int) -> None:
        assert self._client is not None
        try:
            while True:
                found = await asyncio.to_thread(self._next, subscription_id)
                if found is None:
                    return
                record, secret, rows = found
                if not rows:
                    await asyncio.sleep(self.config.poll)
                    continue
                if not await self._deliver(record, secret, rows):
                    return
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("webhook subscription %s: the worker failed; it restarts", subscription_id)

    async def _deliver(self, record: SubscriptionRecord, secret: str, rows: Sequence[FeedRow]) -> bool:
        """Deliver ``rows`` in order; False when the subscription stopped being active."""
        assert self._client is not None
        for row in rows:
            attempt = 0
            while True:
                attempt += 1
                result = await post_event(self._client, record.url, secret, row, record.id, self.config)
                status = await asyncio.to_thread(self._record, record.id, row, attempt, result)
                if status != ACTIVE:
                    return False
                if result.ok:
                    break
                await asyncio.sleep(backoff(attempt, self.config.backoff_base, self.config.backoff_cap))
        return True
