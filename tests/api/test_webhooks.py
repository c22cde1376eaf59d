"""Webhook subscriptions against a real anvil: a receiver written as the README tells integrators (it runs the
README's own verification code) gets every event it may see once, in order, signed; a failing receiver is
retried, paused and resumed from the event that failed; a slow one holds up no other subscription; private,
metadata and redirecting targets are refused at creation or recorded as failed deliveries."""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ledger.settings import PROJECT_ROOT
from tests.api.conftest import Api, Participant
from tests.api.test_events import all_events, ok, problem, receivable_story

SETTINGS = {
    "webhook_allow": "127.0.0.1",
    "webhook_backoff_seconds": 0.05,
    "webhook_backoff_max_seconds": 0.2,
    "webhook_max_failures": 3,
    "webhook_timeout_seconds": 1.5,
}


def readme_verifier() -> Callable[..., bool]:
    """``verify_signature`` as the README writes it (the code block after its ``webhook-verify`` marker)."""
    text = (PROJECT_ROOT / "README.md").read_text()
    found = re.search(r"<!-- webhook-verify[^>]*-->\s*```python\n(.*?)```", text, re.DOTALL)
    assert found, "the README lost its webhook verification example"
    namespace: dict[str, Any] = {}
    exec(compile(found.group(1), "README.md", "exec"), namespace)
    verify: Callable[..., bool] = namespace["verify_signature"]
    return verify


verify_signature = readme_verifier()


@dataclass
class Receiver:
    """An integrator's webhook endpoint on 127.0.0.1: verifies each request as the README says and keeps the
    events it accepted. ``mode``: ``ok``, ``fail`` (500), ``slow`` (answers after 5 s), ``redirect`` (302 to
    the metadata service)."""

    secret: str = ""
    mode: str = "ok"
    events: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0
    requests: int = 0
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/scf-hook"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()
    state.server = serve(state)
    yield state
    state.server.shutdown()
    state.server.server_close()


def serve(state: Receiver, tls: ssl.SSLContext | None = None) -> ThreadingHTTPServer:
    """A receiver's HTTP server on a free port of 127.0.0.1, in a thread (HTTPS with ``tls``)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.requests += 1
            if state.mode == "slow":
                time.sleep(5)  # longer than the service waits (SCF_WEBHOOK_TIMEOUT_SECONDS)
                return
            if state.mode == "redirect":
                self.send_response(302)
                self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
                self.end_headers()
                return
            if state.mode == "fail":
                self.send_response(500)
                self.end_headers()
                return
            if not verify_signature(state.secret, body, self.headers.get("SCF-Signature", "")):
                state.refused += 1
                self.send_response(400)
                self.end_headers()
                return
            event = json.loads(body)
            assert self.headers["SCF-Event-Id"] == event["id"]
            state.events.append(event)
            self.send_response(204)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:  # a handshake the client refuses fails in accept(), which the server shrugs off
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def story(api: Api) -> dict[str, Any]:
    return receivable_story(api)


def subscribe(api: Api, who: Participant | None, receiver: Receiver, **body: Any) -> dict[str, Any]:
    headers = api.operator_headers if who is None else who.headers
    created = ok(api.http.post("/subscriptions", json={"url": receiver.url, **body}, headers=headers), 201)
    receiver.secret = created.pop("secret")
    assert receiver.secret.startswith("whsec_")
    return created  # type: ignore[no-any-return]


def wait_for(condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_the_readme_verifier_accepts_only_a_fresh_signature_of_the_body() -> None:
    from api.webhooks import signature_header

    now = int(time.time())
    header = signature_header("whsec_x", b'{"a":1}', now)
    assert verify_signature("whsec_x", b'{"a":1}', header)
    assert not verify_signature("whsec_y", b'{"a":1}', header)
    assert not verify_signature("whsec_x", b'{"a":2}', header)
    assert not verify_signature("whsec_x", b'{"a":1}', header, now=now + 301)  # a replay, later
    assert not verify_signature("whsec_x", b'{"a":1}', "v1=00")


def test_a_receiver_gets_every_event_it_may_see_once_in_order(
    api: Api, story: dict[str, Any], receiver: Receiver
) -> None:
    seatmaker: Participant = story["people"]["seatmaker"]
    subscription = subscribe(api, seatmaker, receiver, start=0)
    expected = all_events(api, seatmaker.headers)
    wait_for(lambda: len(receiver.events) >= len(expected))
    time.sleep(0.5)  # nothing more, nothing twice
    assert [e["id"] for e in receiver.events] == [e["id"] for e in expected]
    assert [{k: v for k, v in e.items() if k != "subscription"} for e in receiver.events] == expected
    assert all(e["subscription"] == subscription["id"] for e in receiver.events)
    assert receiver.refused == 0
    assert (
        ok(api.http.get(f"/subscriptions/{subscription['id']}", headers=seatmaker.headers))["cursor"]
        == (expected[-1]["seq"])
    )
    log = ok(api.http.get(f"/subscriptions/{subscription['id']}/deliveries", headers=seatmaker.headers))["items"]
    assert [d["seq"] for d in log] == [e["seq"] for e in expected] and all(d["ok"] for d in log)

    # Someone else's subscription does not exist for another participant.
    stranger: Participant = story["people"]["stranger"]
    problem(api.http.get(f"/subscriptions/{subscription['id']}", headers=stranger.headers), 404)
    problem(api.http.delete(f"/subscriptions/{subscription['id']}", headers=stranger.headers), 404)
    assert subscription["id"] not in {
        s["id"] for s in ok(api.http.get("/subscriptions", headers=stranger.headers))["items"]
    }

    # New events arrive as they happen; a deleted subscription gets no more.
    before = len(receiver.events)
    api.onboard("Late Supplier", "supplier")  # the seatmaker sees none of it
    agent: Participant = story["people"]["agent"]
    body = {"participant": seatmaker.id, "amount": 12_345, "bank_reference": f"late {time.time()}"}
    ok(api.http.post("/deposits", json=body, headers=agent.waiting()))
    wait_for(lambda: any(e["kind"] == "deposit.minted" for e in receiver.events[before:]))
    minted = next(e for e in receiver.events[before:] if e["kind"] == "deposit.minted")
    assert minted["fields"]["amount"] == 12_345
    assert api.http.delete(f"/subscriptions/{subscription['id']}", headers=seatmaker.headers).status_code == 204
    problem(api.http.get(f"/subscriptions/{subscription['id']}", headers=seatmaker.headers), 404)


def test_a_regulator_subscription_filters_by_kind_and_counterparty(
    api: Api, story: dict[str, Any], receiver: Receiver
) -> None:
    regulator: Participant = story["people"]["regulator"]
    factor: Participant = story["people"]["factor"]
    subscribe(
        api, regulator, receiver, start=0, kinds=["financing.funded", "obligation.repaid"], counterparty=factor.id
    )
    expected = all_events(api, regulator.headers, kinds="financing.funded,obligation.repaid", counterparty=factor.id)
    assert {e["kind"] for e in expected} == {"financing.funded", "obligation.repaid"}
    wait_for(lambda: len(receiver.events) >= len(expected))
    assert [e["id"] for e in receiver.events] == [e["id"] for e in expected]


def test_a_failing_receiver_is_retried_then_paused_and_resumes_where_it_failed(
    api: Api, story: dict[str, Any], receiver: Receiver
) -> None:
    foammaker: Participant = story["people"]["foammaker"]
    receiver.mode = "fail"
    subscription = subscribe(api, foammaker, receiver, start=0)
    path = f"/subscriptions/{subscription['id']}"

    def status() -> str:
        return str(ok(api.http.get(path, headers=foammaker.headers))["status"])

    wait_for(lambda: status() == "paused")
    paused = ok(api.http.get(path, headers=foammaker.headers))
    assert paused["failures"] == 3 and "500" in paused["paused_reason"]
    log = ok(api.http.get(f"{path}/deliveries", headers=foammaker.headers))["items"]
    first = all_events(api, foammaker.headers)[0]
    assert [(d["seq"], d["attempt"], d["ok"], d["status_code"]) for d in log] == [
        (first["seq"], attempt, False, 500) for attempt in (1, 2, 3)
    ]
    time.sleep(0.5)
    assert receiver.requests == 3  # paused: no more attempts

    receiver.mode = "ok"
    assert ok(api.http.post(f"{path}/resume", headers=foammaker.headers))["status"] == "active"
    expected = all_events(api, foammaker.headers)
    wait_for(lambda: len(receiver.events) >= len(expected))
    assert [e["id"] for e in receiver.events] == [e["id"] for e in expected]


def test_a_slow_receiver_holds_up_no_other_subscription(api: Api, story: dict[str, Any], receiver: Receiver) -> None:
    factor: Participant = story["people"]["factor"]
    expected = all_events(api, factor.headers)

    def delivery_time(target: Receiver) -> float:
        started = time.monotonic()
        subscribe(api, factor, target, start=0)
        wait_for(lambda: len(target.events) >= len(expected))
        return time.monotonic() - started

    alone = delivery_time(receiver)
    slow = Receiver(mode="slow")
    with_slow = Receiver()
    servers = []
    for target in (slow, with_slow):
        target.server = serve(target)
        servers.append(target.server)
    try:
        subscribe(api, factor, slow, start=0)
        time.sleep(0.3)
        beside_slow = delivery_time(with_slow)
        assert [e["id"] for e in with_slow.events] == [e["id"] for e in expected]
        print(f"\n[webhooks] {len(expected)} events: {alone:.2f} s alone, {beside_slow:.2f} s beside a 5 s receiver")
        assert beside_slow < alone + 3.0
        assert len(slow.events) == 0
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


@pytest.mark.parametrize(
    "url",
    [
        "http://10.1.2.3/hook",
        "http://192.168.0.10:8080/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://[::1]:8000/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "ftp://127.0.0.1/hook",
        "http://user:pass@127.0.0.1/hook",
        "not a url",
    ],
)
def test_targets_outside_the_allow_list_are_refused_at_creation(api: Api, url: str) -> None:
    answer = problem(api.http.post("/subscriptions", json={"url": url}, headers=api.operator_headers), 422)
    assert answer["type"] == "urn:scf:problem:webhook-target-refused"


def test_bad_subscription_input_is_refused(api: Api) -> None:
    for body in (
        {"url": "http://127.0.0.1:9/", "start": "later"},
        {"url": "http://127.0.0.1:9/", "start": 1.0},
        {"url": "http://127.0.0.1:9/", "start": True},
        {"url": "http://127.0.0.1:9/", "kinds": ["Not A Kind"]},
        {"url": "http://127.0.0.1:9/", "counterparty": "0x12"},
        {"url": "http://127.0.0.1:9/", "extra": 1},
    ):
        problem(api.http.post("/subscriptions", json=body, headers=api.operator_headers), 422)


def test_a_redirect_is_a_recorded_failure_and_never_followed(
    api: Api, story: dict[str, Any], receiver: Receiver
) -> None:
    seatmaker: Participant = story["people"]["seatmaker"]
    receiver.mode = "redirect"
    subscription = subscribe(api, seatmaker, receiver, start=0)
    path = f"/subscriptions/{subscription['id']}"
    wait_for(lambda: ok(api.http.get(path, headers=seatmaker.headers))["status"] == "paused")
    log = ok(api.http.get(f"{path}/deliveries", headers=seatmaker.headers))["items"]
    assert log and all(d["status_code"] == 302 and "redirect" in d["error"] for d in log)
    assert receiver.requests == len(log)


def test_the_migration_creates_exactly_the_webhook_models(tmp_path: Any) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from ledger.db import Base, make_engine
    from ledger.migrations import downgrade, upgrade

    url = f"sqlite:///{tmp_path / 'schema.sqlite3'}"
    upgrade(url)
    engine = make_engine(url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert [d for d in differences if "webhook" in repr(d) or "event_feed" in repr(d)] == []
    downgrade(url, "0009_piece_allowances")
    upgrade(url)


def test_a_request_goes_to_the_address_that_was_checked_with_tls_on_the_name() -> None:
    from api.webhooks import pin

    assert pin("https://erp.example.com/hook?x=1", "93.184.215.14") == (
        "https://93.184.215.14/hook?x=1",
        {"sni_hostname": "erp.example.com"},
    )
    assert pin("http://erp.example.com:8080/hook", "2001:db8::1") == ("http://[2001:db8::1]:8080/hook", {})
    assert pin("http://127.0.0.1:9/hook", "127.0.0.1") == ("http://127.0.0.1:9/hook", {})


# -- bad receivers: each a recorded failure; the deliverer goes on delivering to everyone else ----------------


def failed_deliveries(api: Api, who: Participant, receiver_url: str, count: int = 1) -> list[dict[str, Any]]:
    """Subscribe ``who`` to ``receiver_url`` (from the first event), wait for ``count`` recorded attempts, delete
    the subscription and return its delivery log."""
    created = ok(api.http.post("/subscriptions", json={"url": receiver_url, "start": 0}, headers=who.headers), 201)
    path = f"/subscriptions/{created['id']}"
    log: list[dict[str, Any]] = []

    def attempted() -> bool:
        log[:] = ok(api.http.get(f"{path}/deliveries", headers=who.headers))["items"]
        return len(log) >= count

    wait_for(attempted)
    assert api.http.delete(path, headers=who.headers).status_code == 204
    assert log and not any(d["ok"] for d in log), [d["error"] for d in log]
    return log


def assert_the_deliverer_still_delivers(api: Api, who: Participant) -> None:
    """A healthy receiver subscribed now still gets every event ``who`` may see."""
    healthy = Receiver()
    healthy.server = serve(healthy)
    try:
        subscription = subscribe(api, who, healthy, start=0)
        expected = all_events(api, who.headers)
        wait_for(lambda: len(healthy.events) >= len(expected))
        assert [e["id"] for e in healthy.events] == [e["id"] for e in expected]
        assert api.http.delete(f"/subscriptions/{subscription['id']}", headers=who.headers).status_code == 204
    finally:
        healthy.server.shutdown()
        healthy.server.server_close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again on leaving: nothing listens there


def test_an_unreachable_receiver_is_a_recorded_connection_failure(api: Api, story: dict[str, Any]) -> None:
    seatmaker: Participant = story["people"]["seatmaker"]
    log = failed_deliveries(api, seatmaker, f"http://127.0.0.1:{closed_port()}/scf-hook", count=2)
    errors = [d["error"] for d in log]
    assert all(d["status_code"] is None and d["error"].startswith("connection refused") for d in log), errors
    assert [d["attempt"] for d in log[:2]] == [1, 2]
    assert_the_deliverer_still_delivers(api, seatmaker)


def test_a_host_that_does_not_resolve_is_refused_at_creation(api: Api) -> None:
    body = {"url": "https://erp.scf-ledger-test.invalid/hook"}  # .invalid never resolves (RFC 2606)
    answer = problem(api.http.post("/subscriptions", json=body, headers=api.operator_headers), 422)
    assert answer["type"] == "urn:scf:problem:webhook-target-refused"
    assert "does not resolve" in answer["detail"]


@dataclass
class Flood:
    """A receiver that answers 200 with a body of ``size`` bytes, written as fast as the reader takes them;
    ``sent`` counts what it managed to write before the other side hung up."""

    size: int = 256 * 1024 * 1024
    sent: list[int] = field(default_factory=list)


def serve_flood(flood: Flood) -> ThreadingHTTPServer:
    chunk = b"x" * 65_536

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(flood.size))
            self.end_headers()
            written = 0
            try:
                while written < flood.size:
                    self.wfile.write(chunk)
                    written += len(chunk)
            except OSError:  # the deliverer hung up: what it did not read never left this process
                pass
            flood.sent.append(written)
            self.close_connection = True

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_a_huge_answer_is_a_recorded_failure_and_is_not_read_past_the_cap(api: Api, story: dict[str, Any]) -> None:
    seatmaker: Participant = story["people"]["seatmaker"]
    flood = Flood()
    server = serve_flood(flood)
    try:
        log = failed_deliveries(api, seatmaker, f"http://127.0.0.1:{server.server_address[1]}/scf-hook")
        wait_for(lambda: len(flood.sent) >= 1)
    finally:
        server.shutdown()
        server.server_close()
    first = log[0]
    assert first["status_code"] == 200 and "over 65536 bytes" in first["error"], first
    # The service hung up after its 64 KiB: the receiver could not push its 256 MiB (what it wrote is at most
    # what the loopback's socket buffers hold, a few MiB), and the attempt took no time to speak of.
    assert max(flood.sent) < 32 * 1024 * 1024, flood.sent
    assert first["duration_ms"] < 1_500
    assert_the_deliverer_still_delivers(api, seatmaker)


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that no one signed but itself, and its key (PEM files)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "receiver.crt", folder / "receiver.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_a_receiver_whose_certificate_does_not_verify_is_a_recorded_tls_failure(
    api: Api, story: dict[str, Any], tmp_path: Path
) -> None:
    seatmaker: Participant = story["people"]["seatmaker"]
    cert, key = self_signed_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    tls = Receiver()
    tls.server = serve(tls, context)
    try:
        log = failed_deliveries(api, seatmaker, f"https://127.0.0.1:{tls.server.server_address[1]}/scf-hook")
    finally:
        tls.server.shutdown()
        tls.server.server_close()
    errors = [d["error"] for d in log]
    assert all(e.startswith("TLS error: certificate verify failed") for e in errors), errors
    assert all(d["status_code"] is None for d in log)
    assert "self-signed certificate" in log[0]["error"], log[0]
    assert tls.requests == 0  # nothing was sent over a connection that did not verify
    assert_the_deliverer_still_delivers(api, seatmaker)


class Silent:
    """Receivers that never answer: a socket that listens but never accepts (the request sits in the kernel's
    queue), and an HTTP server that sends its status line and then one byte of headers every half second."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.stop = threading.Event()
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(64)
        self.port = int(self.socket.getsockname()[1])
        if kind == "trickle":
            threading.Thread(target=self._trickle, daemon=True).start()

    def _trickle(self) -> None:
        self.socket.settimeout(0.2)
        while not self.stop.is_set():
            try:
                connection, _ = self.socket.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._drip, args=(connection,), daemon=True).start()

    def _drip(self, connection: socket.socket) -> None:
        with connection:
            try:
                connection.sendall(b"HTTP/1.1 200 OK\r\n")
                while not self.stop.wait(0.5):
                    connection.sendall(b"X")
            except OSError:
                pass

    def close(self) -> None:
        self.stop.set()
        self.socket.close()


@pytest.mark.parametrize("kind", ["never-accepts", "trickle"])
def test_a_receiver_that_never_answers_is_a_recorded_timeout(api: Api, story: dict[str, Any], kind: str) -> None:
    seatmaker: Participant = story["people"]["seatmaker"]
    silent = Silent(kind)
    try:
        log = failed_deliveries(api, seatmaker, f"http://127.0.0.1:{silent.port}/scf-hook")
    finally:
        silent.close()
    timeout = SETTINGS["webhook_timeout_seconds"]
    assert log[0]["error"] == f"no answer within {timeout:g} s" and log[0]["status_code"] is None, log[0]
    assert timeout * 1000 <= log[0]["duration_ms"] < timeout * 1000 + 1_000
    assert_the_deliverer_still_delivers(api, seatmaker)


# -- the signing secret at rest -----------------------------------------------------------------------------


def test_the_database_holds_no_signing_secret_in_clear(api: Api, story: dict[str, Any], receiver: Receiver) -> None:
    from sqlalchemy import MetaData, select

    from api.webhooks import SubscriptionRecord, signing_secret

    seatmaker: Participant = story["people"]["seatmaker"]
    subscription = subscribe(api, seatmaker, receiver, start=0)
    secret = receiver.secret
    engine = api.service.sessions.kw["bind"]
    tables = MetaData()
    tables.reflect(engine)
    with engine.connect() as connection:
        for table in tables.sorted_tables:
            for row in connection.execute(select(table)):
                for value in row:
                    text = value.decode("latin-1") if isinstance(value, bytes | memoryview) else str(value)
                    assert secret not in text and secret.removeprefix("whsec_") not in text, table.name
    with api.service.sessions() as session:
        record = session.get(SubscriptionRecord, subscription["id"])
        assert record is not None and record.secret_key_id == api.service.secrets.current.id
        assert signing_secret(record, api.service.secrets) == secret  # what the deliverer signs with
    expected = all_events(api, seatmaker.headers)
    wait_for(lambda: len(receiver.events) >= len(expected))
    assert receiver.refused == 0  # each delivery verified with the secret shown at creation


def test_the_migration_seals_existing_signing_secrets_and_unseals_them_going_down(tmp_path: Path) -> None:
    from sqlalchemy import inspect, text

    from ledger.db import make_engine
    from ledger.migrations import downgrade, upgrade
    from ledger.secrets import MasterSecrets, open_webhook_secret

    url = f"sqlite:///{tmp_path / 'sealing.sqlite3'}"
    secrets = MasterSecrets.of("migration test master secret")
    upgrade(url, "0011_webhook_subscriptions")
    engine = make_engine(url)
    clear = "whsec_written-in-clear-by-an-older-version"
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO webhook_subscriptions (id, owner, url, kinds, counterparty, secret, cursor, status, "
                "failures, created_at) VALUES (7, :owner, 'http://127.0.0.1:9/', '[]', NULL, :secret, 0, 'active', "
                "0, '2026-12-01 00:00:00')"
            ),
            {"owner": "0x" + "11" * 20, "secret": clear},
        )
    upgrade(url, secrets=secrets)
    assert "secret" not in {c["name"] for c in inspect(engine).get_columns("webhook_subscriptions")}
    with engine.connect() as connection:
        key_id, sealed = connection.execute(
            text("SELECT secret_key_id, secret_sealed FROM webhook_subscriptions WHERE id = 7")
        ).one()
    assert key_id == secrets.current.id and clear.encode() not in sealed
    assert open_webhook_secret(secrets, key_id, 7, sealed) == clear
    downgrade(url, "0011_webhook_subscriptions", secrets=secrets)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT secret FROM webhook_subscriptions WHERE id = 7")).scalar_one() == clear
    engine.dispose()


def test_a_sealed_secret_opens_only_with_its_master_secret_and_its_subscription() -> None:
    from ledger.secrets import MasterSecrets, SealedSecretError, open_webhook_secret, seal_webhook_secret

    ring = MasterSecrets.of("current master secret", ["previous master secret"])
    old = ring.previous[0]
    sealed = seal_webhook_secret(old, 3, "whsec_abc")
    assert open_webhook_secret(ring, old.id, 3, sealed) == "whsec_abc"  # a previous secret still reads
    for secret_id, subscription_id, value in (
        (old.id, 4, sealed),  # moved to another subscription's row
        (ring.current.id, 3, sealed),  # claimed to be under another secret
        (old.id, 3, sealed[:-1] + bytes([sealed[-1] ^ 1])),  # altered
        ("0" * 16, 3, sealed),  # a secret no longer configured
    ):
        with pytest.raises(SealedSecretError):
            open_webhook_secret(ring, secret_id, subscription_id, value)


def test_a_subscription_whose_secret_does_not_open_is_paused_with_the_reason(
    api: Api, story: dict[str, Any], receiver: Receiver
) -> None:
    from api.webhooks import SubscriptionRecord

    seatmaker: Participant = story["people"]["seatmaker"]
    subscription = subscribe(api, seatmaker, receiver)  # from now on: nothing to deliver yet
    with api.service.sessions() as session, session.begin():
        record = session.get(SubscriptionRecord, subscription["id"])
        assert record is not None
        record.secret_key_id = "0" * 16  # as if sealed with a master secret the service no longer has
    path = f"/subscriptions/{subscription['id']}"
    wait_for(lambda: ok(api.http.get(path, headers=seatmaker.headers))["status"] == "paused")
    reason = ok(api.http.get(path, headers=seatmaker.headers))["paused_reason"]
    assert "master secret 0000000000000000" in reason and "SCF_PREVIOUS_MASTER_SECRETS" in reason, reason
    assert receiver.requests == 0
