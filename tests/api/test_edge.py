"""The service behind a reverse proxy, over HTTP against a real anvil: security headers on every answer (HSTS
only over TLS, a strict Content-Security-Policy, no-store on answers that carry secrets), X-Forwarded-* believed
only from configured proxies, request-size limits (413 before anything is stored), and the sign-in routes
rate-limited per client (429 with Retry-After, nothing written for a refused request, expired challenges
deleted)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.edge import API_CSP, DOCS_CSP, HSTS, RateLimiter, client_key, parse_networks, resolve_forwarded
from api.store import AuthChallengeRecord
from ledger.documents import DocumentRecord
from ledger.identifiers import synthetic_credit_code
from tests.api.conftest import Api

PROXY = "10.9.3.4"
"""A peer inside SCF_TRUSTED_PROXIES."""
STRANGER = "192.0.2.77"
"""A peer outside it."""
SIGN_IN_PER_MINUTE = 5
MAX_REQUEST = 16 * 1024
MAX_DOCUMENT = 64 * 1024

SETTINGS = {
    "trusted_proxies": "10.9.0.0/16, 127.0.0.1",
    "max_request_bytes": MAX_REQUEST,
    "max_document_bytes": MAX_DOCUMENT,
    "sign_in_requests_per_minute": SIGN_IN_PER_MINUTE,
    "challenge_ttl_seconds": 2,
}


@pytest.fixture
def from_peer(api: Api) -> Iterator[Any]:
    """TestClients on the running app that connect from a given peer address (and scheme)."""
    made: list[TestClient] = []

    def client(host: str, base_url: str = "http://testserver") -> TestClient:
        made.append(TestClient(api.http.app, base_url=base_url, client=(host, 40000), raise_server_exceptions=False))
        return made[-1]

    yield client
    for each in made:
        each.close()


def challenge_rows(api: Api) -> int:
    with api.service.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(AuthChallengeRecord)) or 0)


def is_problem(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["type"] == f"urn:scf:problem:{kind}"
    return body


# -- headers ---------------------------------------------------------------------------------------------------


def test_every_api_answer_carries_the_strict_headers_and_no_hsts_over_plain_http(api: Api) -> None:
    answers = [
        api.http.get("/health"),
        api.http.get("/participants", headers=api.operator_headers),
        api.http.get("/participants"),  # a 401 problem
        api.http.get("/no/such/route"),
    ]
    for answer in answers:
        assert answer.headers["content-security-policy"] == API_CSP, answer.request.url
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert answer.headers["x-frame-options"] == "DENY"
        assert "strict-transport-security" not in answer.headers


def test_the_started_service_freezes_its_start_up_objects_and_collects_young_garbage_less_often(api: Api) -> None:
    """api.gc_policy: the collector skips what start-up left alive and runs its youngest generation every 20,000
    allocations (the defaults are 700, 10, 10 and nothing frozen)."""
    import gc

    from api.gc_policy import THRESHOLDS

    assert api.http.get("/health").status_code == 200
    assert gc.get_threshold() == THRESHOLDS == (20_000, 20, 20)
    assert gc.get_freeze_count() > 10_000


def test_answers_that_carry_secrets_are_not_stored_by_any_cache(api: Api) -> None:
    wallet = Account.create()
    onboarded = api.http.post(
        "/participants",
        json={
            "name": "Cache Test Supplier",
            "credit_code": synthetic_credit_code(int.from_bytes(os.urandom(3), "big")),
            "roles": ["supplier"],
            "login_address": wallet.address,
        },
        headers={**api.operator_headers, "Prefer": "wait=20"},
    )
    assert onboarded.status_code == 201 and onboarded.json()["api_key"], onboarded.text
    assert onboarded.headers["cache-control"] == "no-store"
    participant = onboarded.json()["participant"]["id"]
    new_key = api.http.post(f"/participants/{participant}/keys", headers=api.operator_headers)
    assert new_key.status_code == 201 and new_key.json()["api_key"].startswith("scf_")
    assert new_key.headers["cache-control"] == "no-store"
    challenge = api.http.post("/auth/challenge", json={"address": wallet.address})
    assert challenge.status_code == 201 and challenge.headers["cache-control"] == "no-store"
    signature = wallet.sign_message(encode_defunct(text=challenge.json()["message"])).signature.to_0x_hex()
    body = {"address": wallet.address, "nonce": challenge.json()["nonce"], "signature": signature}
    token = api.http.post("/auth/token", json=body)
    assert token.status_code == 200 and "access_token" in token.json(), token.text
    assert token.headers["cache-control"] == "no-store"


def test_hsts_is_sent_over_tls_and_behind_a_trusted_proxy_that_says_https_only(api: Api, from_peer: Any) -> None:
    assert from_peer(STRANGER, "https://testserver").get("/health").headers["strict-transport-security"] == HSTS
    forwarded_https = {"X-Forwarded-Proto": "https"}
    assert from_peer(PROXY).get("/health", headers=forwarded_https).headers["strict-transport-security"] == HSTS
    spoofed = from_peer(STRANGER).get("/health", headers=forwarded_https)
    assert "strict-transport-security" not in spoofed.headers  # not a proxy of ours: its claim is ignored
    plain = from_peer(PROXY).get("/health", headers={"X-Forwarded-Proto": "http"})
    assert "strict-transport-security" not in plain.headers


def test_the_docs_page_may_run_scripts_from_its_own_origin_only(api: Api) -> None:
    answer = api.http.get("/docs")
    assert answer.headers["content-security-policy"] == DOCS_CSP
    directives = dict(d.strip().split(" ", 1) for d in DOCS_CSP.split(";"))
    assert directives["script-src"] == "'self'"  # no inline script, no eval, no other host
    assert directives["connect-src"] == "'self'" and directives["default-src"] == "'none'"
    assert "http" not in DOCS_CSP  # no CDN or any other host anywhere
    assert api.http.get("/openapi.json").headers["content-security-policy"] == API_CSP


# -- request size ----------------------------------------------------------------------------------------------


def test_a_json_body_beyond_the_limit_is_refused_413_declared_or_streamed(api: Api) -> None:
    large = b'{"name": "' + b"x" * MAX_REQUEST + b'", "credit_code": "x", "roles": []}'
    declared = api.http.post(
        "/participants", content=large, headers={**api.operator_headers, "Content-Type": "application/json"}
    )
    body = is_problem(declared, 413, "too-large")
    assert str(MAX_REQUEST) in body["detail"]

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(large), 4096):
            yield large[start : start + 4096]

    streamed = api.http.post(
        "/participants", content=chunks(), headers={**api.operator_headers, "Content-Type": "application/json"}
    )
    assert "content-length" not in streamed.request.headers
    is_problem(streamed, 413, "too-large")


def test_a_document_beyond_its_limit_is_refused_413_and_nothing_is_stored(api: Api) -> None:
    supplier = api.onboard("Upload Limit Supplier", "supplier")
    with api.service.sessions() as session:
        before = session.scalar(select(func.count()).select_from(DocumentRecord))
    headers = {**supplier.headers, "Content-Type": "application/pdf"}
    too_large = api.http.post("/documents", content=b"%PDF" + b"\x01" * MAX_DOCUMENT, headers=headers)
    is_problem(too_large, 413, "too-large")
    multipart = api.http.post(
        "/documents",
        files={"file": ("scan.pdf", b"%PDF" + b"\x02" * MAX_DOCUMENT, "application/pdf")},
        headers=supplier.headers,
    )
    is_problem(multipart, 413, "too-large")
    with api.service.sessions() as session:
        assert session.scalar(select(func.count()).select_from(DocumentRecord)) == before
    fits = api.http.post("/documents", content=b"%PDF" + b"\x03" * (MAX_DOCUMENT - 4), headers=headers)
    assert fits.status_code == 201, fits.text


# -- sign-in rate limits ---------------------------------------------------------------------------------------


def test_sign_in_is_rate_limited_per_client_with_429_retry_after_and_nothing_stored(api: Api, from_peer: Any) -> None:
    client = from_peer("198.51.100.20")
    address = {"address": Account.create().address}
    for _ in range(SIGN_IN_PER_MINUTE):
        assert client.post("/auth/challenge", json=address).status_code == 201
    rows = challenge_rows(api)
    refused = client.post("/auth/challenge", json=address)
    body = is_problem(refused, 429, "too-many-requests")
    assert f"at most {SIGN_IN_PER_MINUTE} sign-in requests a minute" in body["detail"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60 / SIGN_IN_PER_MINUTE + 1
    token = client.post("/auth/token", json={**address, "nonce": "00", "signature": "0x00"})
    is_problem(token, 429, "too-many-requests")  # the token route draws on the same allowance
    assert challenge_rows(api) == rows
    other = from_peer("198.51.100.21")  # another client still has its own allowance
    assert other.post("/auth/challenge", json=address).status_code == 201


def test_forwarded_for_names_the_client_only_from_a_trusted_proxy(api: Api, from_peer: Any) -> None:
    address = {"address": Account.create().address}
    proxy = from_peer(PROXY)
    first = {"X-Forwarded-For": "203.0.113.7"}
    for _ in range(SIGN_IN_PER_MINUTE):
        assert proxy.post("/auth/challenge", json=address, headers=first).status_code == 201
    assert proxy.post("/auth/challenge", json=address, headers=first).status_code == 429
    # The proxy forwards another client: its own allowance (the left part is what the client claimed).
    second = {"X-Forwarded-For": "203.0.113.7, 203.0.113.8"}
    assert proxy.post("/auth/challenge", json=address, headers=second).status_code == 201
    # A stranger cannot escape its limit by claiming to forward for others.
    stranger = from_peer(STRANGER)
    statuses = [
        stranger.post("/auth/challenge", json=address, headers={"X-Forwarded-For": f"203.0.113.{100 + i}"}).status_code
        for i in range(SIGN_IN_PER_MINUTE + 1)
    ]
    assert statuses == [201] * SIGN_IN_PER_MINUTE + [429]


def test_expired_challenges_are_deleted_when_new_ones_are_made(api: Api, from_peer: Any) -> None:
    client = from_peer("198.51.100.40")
    address = {"address": Account.create().address}
    assert client.post("/auth/challenge", json=address).status_code == 201
    nonce = client.post("/auth/challenge", json=address).json()["nonce"]
    time.sleep(api.settings.challenge_ttl_seconds + 0.5)
    assert client.post("/auth/challenge", json=address).status_code == 201
    with api.service.sessions() as session:
        assert session.get(AuthChallengeRecord, nonce) is None
        now_rows = session.scalars(select(AuthChallengeRecord.nonce)).all()
    assert len(now_rows) >= 1 and nonce not in now_rows


# -- the parts, without a service ------------------------------------------------------------------------------


def test_the_rate_limiter_refills_at_its_rate_and_forgets_the_longest_idle_clients() -> None:
    now = [1000.0]
    limiter = RateLimiter(6, max_clients=2, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(6)] == [None] * 6
    wait = limiter.take("a")
    assert wait is not None and 9.9 < wait <= 10.0  # one request per 10 s at 6 a minute
    now[0] += 10.0
    assert limiter.take("a") is None and limiter.take("a") is not None
    limiter.take("b")
    limiter.take("c")  # a third client: "a", the longest idle, is forgotten
    assert limiter.take("a") is None


def test_client_keys_group_an_ipv6_subscriber_and_unwrap_ipv4_mapped_addresses() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    assert client_key("::ffff:192.0.2.1") == client_key("192.0.2.1") == "192.0.2.1"
    assert client_key(None) == "-"


def test_forwarded_headers_from_a_chain_of_trusted_proxies() -> None:
    trusted = parse_networks("10.0.0.0/8 192.168.1.1")
    scope: dict[str, Any] = {
        "client": ("10.1.1.1", 5),
        "scheme": "http",
        "headers": [
            (b"x-forwarded-for", b"198.51.100.9, 203.0.113.5"),
            (b"x-forwarded-for", b"192.168.1.1"),
            (b"x-forwarded-proto", b"http, https"),
        ],
    }
    resolve_forwarded(scope, trusted)
    assert scope["client"] == ("203.0.113.5", 0) and scope["scheme"] == "https"
    with pytest.raises(ValueError, match=r"SCF_TRUSTED_PROXIES: 'proxy\.example' is not an IP"):
        parse_networks("10.0.0.1, proxy.example")
