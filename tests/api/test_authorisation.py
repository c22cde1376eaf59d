"""The authorisation matrix: every role (and a stranger of each kind) against every state-changing route, and
every caller against other participants' objects.

One world per database kind: a core firm, the supplier that holds everything (``seller``), a supplier with
nothing (``other_supplier``), the financier addressed by the open requests (``financier``) and another
(``other_financier``), the issuing warehouse and another, the regulator, the settlement agent and the operator.
The table below names, for each state-changing route, who may call it; the test fails if a route in the
OpenAPI document has no entry.

Refusals are checked first, while nothing has moved: each caller outside the allowed set gets ``403`` (wrong
role, or not yours) or ``404`` (not even visible), as ``application/problem+json``, and not one transaction is
signed for all of them together (the journal does not grow). Then each allowed caller makes the call for real,
in table order: the API lets it through and so does the chain, so whatever the answer is (done, or a state
rule such as "not due yet"), it is never 401, 403 or 404.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from ledger.identifiers import synthetic_credit_code
from ledger.journal import JournalTransaction
from tests.api.conftest import WAIT, Api, Participant
from tests.stories import receipt_elements

YUAN = 100
SETTINGS = {"webhook_allow": "127.0.0.1"}  # the subscription routes' test URLs (nothing listens there)
_numbers = itertools.count(int.from_bytes(os.urandom(3), "big") * 1000)

CALLERS = (
    "operator",
    "core",
    "seller",
    "other_supplier",
    "financier",
    "other_financier",
    "warehouse",
    "other_warehouse",
    "regulator",
    "agent",
)


@dataclass
class World:
    api: Api
    who: dict[str, Participant]
    ids: dict[str, Any] = field(default_factory=dict)

    def headers(self, caller: str) -> dict[str, str]:
        if caller == "operator":
            return dict(self.api.operator_headers)
        return dict(self.who[caller].headers)

    def id(self, caller: str) -> str:
        return self.who[caller].id


def _invoice_number() -> str:
    return f"{25_117_000_000_000_000_000 + next(_numbers):020d}"[-20:]


def _day(api: Api, days: int) -> str:
    return (datetime.fromtimestamp(api.now(), UTC).date() + timedelta(days=days)).isoformat()


def _done(response: Any) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    assert body.get("status", "confirmed") == "confirmed", body
    return body.get("result") or body


def _invoice_body(world: World) -> dict[str, Any]:
    return {
        "buyer": world.id("core"),
        "amount": 100_000 * YUAN,
        "currency": "CNY",
        "invoice_number": _invoice_number(),
        "due_date": _day(world.api, 90),
    }


def _receipt_body(world: World) -> dict[str, Any]:
    return {
        "owner": world.id("seller"),
        "lot_number": f"AUTHZ-{next(_numbers)}",
        "goods_description": "cold-rolled coil SPCC",
        "elements": receipt_elements(),
        "quantity": 500,
        "unit": "t",
        "valuation": 2_000_000 * YUAN,
        "expiry": _day(world.api, 365),
    }


@pytest.fixture(scope="module")
def world(api: Api) -> World:
    who = {
        "core": api.onboard("Authz Automotive", "core-firm"),
        "seller": api.onboard("Authz Seats", "supplier"),
        "other_supplier": api.onboard("Authz Foam", "supplier"),
        "financier": api.onboard("Authz Bank", "financier"),
        "other_financier": api.onboard("Authz Factor", "financier"),
        "warehouse": api.onboard("Authz Warehouse", "warehouse"),
        "other_warehouse": api.onboard("Authz Other Warehouse", "warehouse"),
        "regulator": api.onboard("Authz Regulator", "regulator"),
        "agent": api.onboard("Authz Settlement Bank", "settlement-agent"),
        "disposable": api.onboard("Authz Disposable", "supplier"),
    }
    world = World(api, who)
    http, operator = api.http, {**api.operator_headers, **WAIT}
    for name in ("core", "financier", "seller"):
        body = {"participant": world.id(name), "amount": 1_000_000 * YUAN, "bank_reference": f"authz {name}"}
        _done(http.post("/deposits", json=body, headers=who["agent"].waiting()))
    _done(http.post("/credit-lines", json={"core_firm": world.id("core"), "limit": 10**7 * YUAN}, headers=operator))

    def confirmed_piece() -> tuple[int, int]:
        invoice = _done(http.post("/invoices", json=_invoice_body(world), headers=who["seller"].waiting()))
        piece = _done(http.post(f"/invoices/{invoice['invoice_id']}/confirm", headers=who["core"].waiting()))
        return int(invoice["invoice_id"]), int(piece["piece_id"])

    world.ids["slot"], world.ids["piece"] = confirmed_piece()
    _, financed_piece = confirmed_piece()
    world.ids["request"] = _done(
        http.post(
            "/financing-requests",
            json={
                "piece_id": financed_piece,
                "amount": 100_000 * YUAN,
                "financier": world.id("financier"),
                "max_discount_rate_bps": 450,
                "max_fee": 0,
            },
            headers=who["seller"].waiting(),
        )
    )["request_id"]
    world.ids["pending_invoice"] = _done(
        http.post("/invoices", json=_invoice_body(world), headers=who["seller"].waiting())
    )["invoice_id"]
    world.ids["receipt"] = _done(
        http.post("/warehouse-receipts", json=_receipt_body(world), headers=who["warehouse"].waiting())
    )["receipt_id"]
    world.ids["pledged_receipt"] = _done(
        http.post("/warehouse-receipts", json=_receipt_body(world), headers=who["warehouse"].waiting())
    )["receipt_id"]
    world.ids["pledge"] = _done(
        http.post(
            "/pledges",
            json={
                "receipt_id": world.ids["pledged_receipt"],
                "financier": world.id("financier"),
                "principal": 100_000 * YUAN,
                "rate_bps": 550,
                "due_date": _day(api, 120),
            },
            headers=who["seller"].waiting(),
        )
    )["pledge_id"]
    # A loan the financier funded whose receipt then lost value: a margin call on it.
    margin_receipt = _done(
        http.post("/warehouse-receipts", json=_receipt_body(world), headers=who["warehouse"].waiting())
    )["receipt_id"]
    world.ids["margin_pledge"] = _done(
        http.post(
            "/pledges",
            json={
                "receipt_id": margin_receipt,
                "financier": world.id("financier"),
                "principal": 100_000 * YUAN,
                "rate_bps": 550,
                "due_date": _day(api, 120),
            },
            headers=who["seller"].waiting(),
        )
    )["pledge_id"]
    _done(http.post(f"/pledges/{world.ids['margin_pledge']}/fund", headers=who["financier"].waiting()))
    called = _done(
        http.post(
            f"/warehouse-receipts/{margin_receipt}/valuations",
            json={"valuation": 110_000 * YUAN, "attestation": "coil price collapse"},
            headers=who["warehouse"].waiting(),
        )
    )
    assert "PledgeMarginCalled" in {event["name"] for event in called["events"]}
    uploaded = http.post(
        "/documents",
        content=b"%PDF-1.7 authz purchase contract",
        params={"parties": [world.id("financier")]},
        headers={**who["seller"].headers, "Content-Type": "application/pdf"},
    )
    assert uploaded.status_code == 201, uploaded.text
    world.ids["document"] = uploaded.json()["sha256"]
    world.ids["operation"] = http.post(
        "/deposits",
        json={"participant": world.id("seller"), "amount": 1, "bank_reference": "authz operation"},
        headers=who["agent"].waiting(),
    ).json()["operation_id"]
    subscription = http.post(
        "/subscriptions",
        json={"url": "http://127.0.0.1:9/", "kinds": ["audit.anchored"]},
        headers=who["seller"].headers,
    )
    assert subscription.status_code == 201, subscription.text
    world.ids["subscription"] = subscription.json()["id"]
    return world


# -- the table ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # the OpenAPI path
    path: Callable[[World], str]
    allowed: frozenset[str]
    body: Callable[[World, str], dict[str, Any]] | None = None
    content: bytes | None = None


def _route(
    method: str,
    template: str,
    path: Callable[[World], str],
    allowed: set[str],
    body: Callable[[World, str], dict[str, Any]] | None = None,
    content: bytes | None = None,
) -> Route:
    return Route(method, template, path, frozenset(allowed), body, content)


def _fixed(path: str) -> Callable[[World], str]:
    return lambda world: path


EVERYONE = set(CALLERS)

# In the order the allowed callers run them: what an earlier call changes must not hide a later route's object
# from its allowed callers (a receipt is transferred only after every other receipt route has run).
ROUTES = (
    _route(
        "POST",
        "/participants",
        _fixed("/participants"),
        {"operator"},
        lambda w, c: {
            "name": f"Authz new {c}",
            "credit_code": synthetic_credit_code(next(_numbers)),
            "roles": ["supplier"],
        },
    ),
    _route(
        "POST",
        "/participants/{participant_id}/suspend",
        lambda w: f"/participants/{w.id('disposable')}/suspend",
        {"operator"},
    ),
    _route(
        "POST",
        "/participants/{participant_id}/reinstate",
        lambda w: f"/participants/{w.id('disposable')}/reinstate",
        {"operator"},
    ),
    _route(
        "POST",
        "/participants/{participant_id}/keys",
        lambda w: f"/participants/{w.id('disposable')}/keys",
        {"operator"},
    ),
    # Self-custody: the world's participants are hosted, so the allowed callers get through the API to a state
    # answer (a proof that is nobody's signature: 422; a hosted participant's key recovery or rotation: 409).
    _route(
        "POST",
        "/participants/{participant_id}/self-custody",
        lambda w: f"/participants/{w.id('disposable')}/self-custody",
        {"operator"},
        lambda w, c: {"signer": w.id("other_supplier"), "proof": "0x" + "11" * 65},
    ),
    _route(
        "POST",
        "/participants/{participant_id}/key-recovery",
        lambda w: f"/participants/{w.id('disposable')}/key-recovery",
        {"operator"},
        lambda w, c: {"signer": w.id("other_supplier")},
    ),
    _route(
        "POST",
        "/participants/{participant_id}/key-recovery/approve",
        lambda w: f"/participants/{w.id('disposable')}/key-recovery/approve",
        {"regulator"},
        lambda w, c: {"signer": w.id("other_supplier")},
    ),
    _route(
        "POST",
        "/participants/me/key-rotation",
        _fixed("/participants/me/key-rotation"),
        EVERYONE,
        lambda w, c: {"new_signer": w.id("other_supplier")},
    ),
    # Only the gateway's own account (here the operator's) makes hosted keys and serves participants adopted
    # from the chain (a hosted participant is served by the gateway that holds its key only: 409 or 422 here).
    _route(
        "POST",
        "/gateway/keys",
        _fixed("/gateway/keys"),
        {"operator"},
        lambda w, c: {"credit_code": synthetic_credit_code(next(_numbers))},
    ),
    _route(
        "POST",
        "/gateway/participants",
        _fixed("/gateway/participants"),
        {"operator"},
        lambda w, c: {
            "address": w.id("disposable"),
            "name": "Authz served",
            "credit_code": synthetic_credit_code(next(_numbers)),
        },
    ),
    # Any participant relays any signed act (the signature authorises it): an act of no known type is a 422.
    _route(
        "POST",
        "/acts",
        _fixed("/acts"),
        EVERYONE,
        lambda w, c: {"typed_data": {"primaryType": "Nothing"}, "signature": "0x" + "11" * 65},
    ),
    # A contract account's owners approve its acts one by one; only the account collects them (checked once the
    # act is known: an act of no known type is a 422 to everyone).
    _route(
        "POST",
        "/acts/approvals",
        _fixed("/acts/approvals"),
        EVERYONE,
        lambda w, c: {"typed_data": {"primaryType": "Nothing"}, "signature": "0x" + "11" * 65},
    ),
    # A batch: anyone may send one; each item is then authorised as its single route would authorise it
    # (tests/api/test_batch.py).
    _route(
        "POST",
        "/batch",
        _fixed("/batch"),
        EVERYONE,
        lambda w, c: {"items": [{"operation": "approve_settlement", "body": {"spender_contract": "receivables"}}]},
    ),
    _route(
        "POST",
        "/settlement-approvals",
        _fixed("/settlement-approvals"),
        EVERYONE,
        lambda w, c: {"spender_contract": "receivables"},
    ),
    _route(
        "POST",
        "/credit-lines",
        _fixed("/credit-lines"),
        {"operator", "financier", "other_financier"},
        lambda w, c: {"core_firm": w.id("core"), "limit": 5_000_000 * YUAN},
    ),
    # A financier's standing terms are its own to publish (kept by the service, nothing signed).
    _route(
        "PUT",
        "/financing-offers",
        _fixed("/financing-offers"),
        {"financier", "other_financier"},
        lambda w, c: {"core_firm": w.id("core"), "discount_rate_bps": 365, "fee": 0, "day_count_basis": 365},
    ),
    _route(
        "POST",
        "/deposits",
        _fixed("/deposits"),
        {"agent"},
        lambda w, c: {"participant": w.id("seller"), "amount": 10 * YUAN, "bank_reference": f"authz {c}"},
    ),
    _route(
        "POST",
        "/withdrawals",
        _fixed("/withdrawals"),
        {"agent"},
        lambda w, c: {"participant": w.id("seller"), "amount": 1 * YUAN, "bank_reference": f"authz {c}"},
    ),
    _route("POST", "/invoices", _fixed("/invoices"), {"seller", "other_supplier"}, lambda w, c: _invoice_body(w)),
    _route(
        "POST",
        "/invoices/{invoice_id}/reject",
        lambda w: f"/invoices/{w.ids['pending_invoice']}/reject",
        {"core"},
        lambda w, c: {"reason": "quantity differs from the delivery note"},
    ),
    _route(
        "POST", "/invoices/{invoice_id}/confirm", lambda w: f"/invoices/{w.ids['pending_invoice']}/confirm", {"core"}
    ),
    _route(
        "POST",
        "/receivables/{piece_id}/transfers",
        lambda w: f"/receivables/{w.ids['piece']}/transfers",
        {"seller"},
        lambda w, c: {"to": w.id("other_supplier"), "amount": 1 * YUAN},
    ),
    _route("POST", "/receivables/{piece_id}/redeem", lambda w: f"/receivables/{w.ids['piece']}/redeem", {"seller"}),
    _route(
        "POST",
        "/obligations/{slot_id}/repayments",
        lambda w: f"/obligations/{w.ids['slot']}/repayments",
        {"core"},
        lambda w, c: {"amount": 1 * YUAN},
    ),
    _route(
        "POST",
        "/financing-requests",
        _fixed("/financing-requests"),
        {"seller"},
        lambda w, c: {
            "piece_id": w.ids["piece"],
            "amount": 1_000 * YUAN,
            "financier": w.id("financier"),
            "max_discount_rate_bps": 450,
            "max_fee": 0,
        },
    ),
    _route(
        "POST",
        "/financing-requests/{request_id}/approve",
        lambda w: f"/financing-requests/{w.ids['request']}/approve",
        {"financier"},
        lambda w, c: {"discount_rate_bps": 450, "fee": 0},
    ),
    _route(
        "POST",
        "/financing-requests/{request_id}/fund",
        lambda w: f"/financing-requests/{w.ids['request']}/fund",
        {"financier"},
    ),
    _route(
        "POST",
        "/financing-requests/{request_id}/registration",
        lambda w: f"/financing-requests/{w.ids['request']}/registration",
        {"financier"},
        lambda w, c: {"number": "04539487000452458806", "registered_on": _day(w.api, 0)},
    ),
    _route(
        "POST",
        "/financing-requests/{request_id}/decline",
        lambda w: f"/financing-requests/{w.ids['request']}/decline",
        {"financier"},
    ),
    _route(
        "POST",
        "/financing-requests/{request_id}/cancel",
        lambda w: f"/financing-requests/{w.ids['request']}/cancel",
        {"seller"},
    ),
    _route(
        "POST",
        "/warehouse-receipts",
        _fixed("/warehouse-receipts"),
        {"warehouse", "other_warehouse"},
        lambda w, c: _receipt_body(w),
    ),
    _route(
        "POST",
        "/warehouse-receipts/{receipt_id}/valuations",
        lambda w: f"/warehouse-receipts/{w.ids['receipt']}/valuations",
        {"warehouse"},
        lambda w, c: {"valuation": 1_900_000 * YUAN, "attestation": "monthly mark to the SHFE settlement price"},
    ),
    _route(
        "POST",
        "/warehouse-receipts/{receipt_id}/goods-status",
        lambda w: f"/warehouse-receipts/{w.ids['receipt']}/goods-status",
        {"warehouse"},
        lambda w, c: {"status": "sound", "attestation": "quarterly inspection"},
    ),
    # A warehouse appoints the oracle that attests for all its receipts (here the settlement agent, a participant).
    _route(
        "PUT",
        "/oracle-appointment",
        _fixed("/oracle-appointment"),
        {"warehouse", "other_warehouse"},
        lambda w, c: {"oracle": w.id("agent")},
    ),
    # A lot's sensors and their rules are its issuing warehouse's to register (kept by the service).
    _route(
        "PUT",
        "/warehouse-receipts/{receipt_id}/sensors",
        lambda w: f"/warehouse-receipts/{w.ids['receipt']}/sensors",
        {"warehouse"},
        lambda w, c: {
            "devices": [{"address": "0x" + (c.encode().hex() + "00" * 20)[:40], "kind": "weighbridge"}],
            "silence_seconds": 600,
            "tolerance_bps": 200,
            "period_seconds": 300,
        },
    ),
    _route(
        "POST",
        "/warehouse-receipts/{receipt_id}/redeem",
        lambda w: f"/warehouse-receipts/{w.ids['receipt']}/redeem",
        {"seller"},
    ),
    _route(
        "POST",
        "/warehouse-receipts/{receipt_id}/redemption/withdraw",
        lambda w: f"/warehouse-receipts/{w.ids['receipt']}/redemption/withdraw",
        {"seller"},
    ),
    _route(
        "POST",
        "/warehouse-receipts/{receipt_id}/redemption/confirm",
        lambda w: f"/warehouse-receipts/{w.ids['receipt']}/redemption/confirm",
        {"warehouse"},
    ),
    _route(
        "POST",
        "/warehouse-receipts/{receipt_id}/transfers",
        lambda w: f"/warehouse-receipts/{w.ids['receipt']}/transfers",
        {"seller"},
        lambda w, c: {"to": w.id("other_supplier")},
    ),
    _route(
        "POST",
        "/pledges",
        _fixed("/pledges"),
        {"seller"},
        lambda w, c: {
            "receipt_id": w.ids["pledged_receipt"],
            "financier": w.id("other_financier"),
            "principal": 1_000 * YUAN,
            "rate_bps": 600,
            "due_date": _day(w.api, 90),
        },
    ),
    _route("POST", "/pledges/{pledge_id}/fund", lambda w: f"/pledges/{w.ids['pledge']}/fund", {"financier"}),
    _route(
        "POST",
        "/pledges/{pledge_id}/registration",
        lambda w: f"/pledges/{w.ids['margin_pledge']}/registration",
        {"financier"},
        lambda w, c: {"number": "04539487000452458807", "registered_on": _day(w.api, 0)},
    ),
    _route(
        "POST",
        "/pledges/{pledge_id}/repay",
        lambda w: f"/pledges/{w.ids['pledge']}/repay",
        {"seller"},
        lambda w, c: {"amount": 1},
    ),
    _route("POST", "/pledges/{pledge_id}/enforce", lambda w: f"/pledges/{w.ids['pledge']}/enforce", {"financier"}),
    _route("POST", "/pledges/{pledge_id}/decline", lambda w: f"/pledges/{w.ids['pledge']}/decline", {"financier"}),
    _route("POST", "/pledges/{pledge_id}/cancel", lambda w: f"/pledges/{w.ids['pledge']}/cancel", {"seller"}),
    _route(
        "POST",
        "/freezes",
        _fixed("/freezes"),
        {"regulator"},
        lambda w, c: {"kind": "participant", "target": w.id("disposable"), "reason": "court order 2026-0042"},
    ),
    _route("DELETE", "/freezes/{freeze_id}", lambda w: f"/freezes/participant:{w.id('disposable')}", {"regulator"}),
    _route("POST", "/documents", _fixed("/documents"), EVERYONE - {"regulator"}, content=b"%PDF-1.7 a delivery note"),
    _route(
        "POST",
        "/documents/{sha256}/deliveries",
        lambda w: f"/documents/{w.ids['document']}/deliveries",
        {"seller"},
        lambda w, c: {"invoice_id": int(w.ids["slot"]), "recipients": [w.id("financier")]},
    ),
    _route("POST", "/audit/log/anchors", _fixed("/audit/log/anchors"), {"operator"}),
    _route("POST", "/subscriptions", _fixed("/subscriptions"), EVERYONE, lambda w, c: {"url": "http://127.0.0.1:9/"}),
    _route(
        "POST",
        "/subscriptions/{subscription_id}/resume",
        lambda w: f"/subscriptions/{w.ids['subscription']}/resume",
        {"seller"},
    ),
    _route(
        "DELETE",
        "/subscriptions/{subscription_id}",
        lambda w: f"/subscriptions/{w.ids['subscription']}",
        {"seller"},
    ),
)

#: Routes that need no credentials (or other ones: a peer gateway's signature), or change only the caller's own session.
UNGUARDED = {
    ("POST", "/auth/challenge"),
    ("POST", "/auth/token"),
    # A device's reading carries its own signature, the credential (tests/api/test_sensors.py).
    ("POST", "/readings"),
    # A peer gateway's delivery: authenticated by the peer's signature, not an API key (tests/api/test_docex.py).
    ("POST", "/gateway/inbox"),
}


def _send(world: World, route: Route, caller: str | None, *, wait: bool = False) -> Any:
    headers = world.headers(caller) if caller is not None else {}
    if wait:
        headers.update(WAIT)
    kwargs: dict[str, Any] = {"headers": headers}
    if route.body is not None:
        kwargs["json"] = route.body(world, caller or "anonymous")
    if route.content is not None:
        kwargs["content"] = route.content + (caller or "").encode()
        headers["Content-Type"] = "application/pdf"
    return world.api.http.request(route.method, route.path(world), **kwargs)


def _journal_size(api: Api) -> int:
    with api.service.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(JournalTransaction)))


def test_every_state_changing_route_is_in_the_authorisation_matrix(api: Api) -> None:
    spec = api.http.get("/openapi.json").json()
    state_changing = {
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        for method in operations
        if method in ("post", "put", "patch", "delete")
    }
    assert state_changing - UNGUARDED == {(r.method, r.template) for r in ROUTES}


def test_every_state_changing_route_refuses_a_caller_without_credentials(world: World) -> None:
    for route in ROUTES:
        for headers in ({}, {"Authorization": "Bearer scf_not_a_key"}):
            kwargs: dict[str, Any] = {"headers": headers}
            if route.body is not None:
                kwargs["json"] = route.body(world, "anonymous")
            response = world.api.http.request(route.method, route.path(world), **kwargs)
            assert response.status_code == 401, (route.method, route.template, response.text)
            assert response.json()["type"] == "urn:scf:problem:unauthenticated"


def test_every_role_outside_a_routes_allowed_callers_is_refused_and_nothing_is_signed(world: World) -> None:
    before = _journal_size(world.api)
    refusals = 0
    for route in ROUTES:
        for caller in sorted(set(CALLERS) - route.allowed):
            response = _send(world, route, caller)
            where = (route.method, route.template, caller)
            assert response.status_code in (403, 404), (where, response.text)
            assert response.headers["content-type"].startswith("application/problem+json"), where
            body = response.json()
            assert body["type"].startswith("urn:scf:problem:") and "operation_id" not in body, (where, body)
            refusals += 1
    assert refusals > 200
    assert _journal_size(world.api) == before  # not one transaction signed for any refused request


# -- other participants' objects --------------------------------------------------------------------------------

#: (path, who sees it): everyone else gets 404, as for an object that does not exist.
OBJECTS: tuple[tuple[Callable[[World], str], set[str]], ...] = (
    (lambda w: f"/invoices/{w.ids['slot']}", {"seller", "core", "regulator", "operator"}),
    (lambda w: f"/receivables/{w.ids['piece']}", {"seller", "core", "regulator", "operator"}),
    (lambda w: f"/financing-requests/{w.ids['request']}", {"seller", "financier", "regulator", "operator"}),
    (
        lambda w: f"/warehouse-receipts/{w.ids['pledged_receipt']}",
        {"seller", "warehouse", "financier", "regulator", "operator"},
    ),
    (lambda w: f"/pledges/{w.ids['pledge']}", {"seller", "financier", "regulator", "operator"}),
    (lambda w: f"/pledges/{w.ids['margin_pledge']}/margin-calls", {"seller", "financier", "regulator", "operator"}),
    (lambda w: f"/participants/{w.id('seller')}", {"seller", "regulator", "operator"}),
    (lambda w: f"/operations/{w.ids['operation']}", {"agent", "regulator", "operator"}),
    (lambda w: f"/documents/{w.ids['document']}", {"seller", "financier", "regulator", "operator"}),
)


def test_other_participants_objects_are_invisible_to_everyone_but_their_parties(world: World) -> None:
    for path_of, parties in OBJECTS:
        path = path_of(world)
        for caller in CALLERS:
            response = world.api.http.get(path, headers=world.headers(caller))
            expected = 200 if caller in parties else 404
            assert response.status_code == expected, (path, caller, response.text)


#: (list route, the seller's object, who finds it in the list, the item's field naming the object)
LISTS: tuple[tuple[str, str, set[str], str], ...] = (
    ("/invoices", "slot", {"seller", "core", "regulator", "operator"}, "id"),
    ("/financing-requests", "request", {"seller", "financier", "regulator", "operator"}, "id"),
    ("/pledges", "pledge", {"seller", "financier", "regulator", "operator"}, "id"),
    ("/margin-calls", "margin_pledge", {"seller", "financier", "regulator", "operator"}, "pledge_id"),
)


def test_lists_show_a_caller_only_its_own_objects_and_the_regulator_everything(world: World) -> None:
    import time

    for path, key, parties, field_name in LISTS:
        target = str(world.ids[key])
        deadline = time.monotonic() + 15
        for caller in CALLERS:
            while True:
                response = world.api.http.get(path, params={"size": 200}, headers=world.headers(caller))
                assert response.status_code == 200, (path, caller, response.text)
                listed = {str(item[field_name]) for item in response.json()["items"]}
                if target in listed or caller not in parties or time.monotonic() > deadline:
                    break
                time.sleep(0.2)  # the index catches up with the chain
            assert (target in listed) == (caller in parties), (path, caller)


# -- last: the allowed calls change the world -------------------------------------------------------------


def test_every_allowed_caller_gets_through_the_api_and_the_chain(world: World) -> None:
    """Last in the module (pytest keeps the file's order): these calls change the world for real."""
    for route in ROUTES:
        for caller in sorted(route.allowed):
            response = _send(world, route, caller, wait=True)
            assert response.status_code not in (401, 403, 404), (route.method, route.template, caller, response.text)
            assert response.status_code < 500, (route.method, route.template, caller, response.text)
