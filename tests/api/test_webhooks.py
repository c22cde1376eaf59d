"""Webhook subscriptions against a real anvil: a receiver written as the README tells integrators (it runs the
README's own verification code) gets every event it may see once, in order, signed; a failing receiver is
retried, paused and resumed from the event that failed; a slow one holds up no other subscription; private,
metadata and redirecting targets are refused at creation or recorded as failed deliveries."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


def serve(state: Receiver) -> ThreadingHTTPServer:
    """A receiver's HTTP server on a free port of 127.0.0.1, in a thread."""

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
