"""Documents between gateways (docs/consortium.md, "Documents between gateways"), three real gateways in one
process on one anvil: the operator's (which deploys and onboards), the supplier's and the financier's
(``SCF_GATEWAY_ROLE=member``, each its own SQLite database, master secret and funded relayer). The financier's
gateway is served over real HTTP by uvicorn on its own port, started only after the supplier's gateway has tried
and failed to deliver to it. The core firm's and the regulator's gateways are peers in the configuration (their
URL answers nothing here): their exchange keys open the very envelope the supplier's outbox holds.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import uvicorn
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select

from api.app import create_app
from api.service import LedgerService
from ledger import docex
from ledger.documents import DocumentRecord
from ledger.identifiers import synthetic_credit_code
from ledger.index.models import InvoiceRow
from ledger.node import connect
from ledger.secrets import MasterSecret
from ledger.settings import Settings
from ledger.tooling.chain import Anvil
from tests.api.conftest import WAIT, free_port

PDF = b"%PDF-1.7 invoice 25117000000000000042: 400 seat frames, 1,000,000.00 CNY"


@dataclass
class Node:
    """One gateway: its app (lifespan run by the TestClient), its settings, its admin's API key."""

    name: str
    http: TestClient
    settings: Settings
    account: LocalAccount
    secret: MasterSecret

    @property
    def service(self) -> LedgerService:
        service: LedgerService = self.http.app.state.ledger  # type: ignore[attr-defined]
        return service

    @property
    def admin(self) -> dict[str, str]:
        key = self.service.operator_api_key
        assert key is not None
        return {"Authorization": f"Bearer {key}"}

    @property
    def exchange_key(self) -> str:
        return docex.public_hex(docex.exchange_key(self.secret))


@dataclass
class World:
    anvil: Anvil
    operator: Node
    supplier_gw: Node
    financier_gw: Node
    financier_port: int
    firm_secret: MasterSecret
    regulator_secret: MasterSecret
    keys: dict[str, dict[str, str]]
    ids: dict[str, str]
    server: uvicorn.Server | None = None

    def serve_financier(self) -> None:
        """The financier's gateway comes up: uvicorn serves its (already started) app on its port."""
        config = uvicorn.Config(
            self.financier_gw.http.app, host="127.0.0.1", port=self.financier_port, lifespan="off", log_level="warning"
        )
        self.server = uvicorn.Server(config)
        threading.Thread(target=self.server.run, daemon=True).start()
        deadline = time.monotonic() + 20
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.server.started


def _secret() -> MasterSecret:
    return MasterSecret.of(SecretStr(Account.create().key.hex()))


def _fund(anvil: Anvil, address: str) -> None:
    w3 = connect(anvil.rpc_url, anvil.chain_id)
    w3.provider.make_request("anvil_setBalance", [address, hex(100 * 10**18)])  # type: ignore[arg-type]


def _peer(url: str, account: str, key: str, role: str, serves: list[str]) -> dict[str, Any]:
    return {"url": url, "account": account, "exchange_key": key, "role": role, "serves": serves}


def _done(response: Any, status: int = 201) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _host(operator: Node, gateway: Node, name: str, role: str) -> tuple[str, dict[str, str]]:
    """A participant whose key is made in ``gateway``'s keystore, onboarded by the operator by address and proof,
    then served by ``gateway``: its address and API key there."""
    code = synthetic_credit_code(int.from_bytes(name.encode()[:3], "big") + 7_000)
    hosted = _done(gateway.http.post("/gateway/keys", json={"credit_code": code}, headers=gateway.admin))
    body = {"name": name, "credit_code": code, "roles": [role], "address": hosted["address"], "proof": hosted["proof"]}
    _done(operator.http.post("/participants", json=body, headers={**operator.admin, **WAIT}))
    served = _done(
        gateway.http.post(
            "/gateway/participants",
            json={"address": hosted["address"], "name": name, "credit_code": code},
            headers=gateway.admin,
        )
    )
    assert served["hosted"] is True, served
    return hosted["address"], {"Authorization": f"Bearer {served['api_key']}"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("docex")
    anvil = Anvil(root / "chain-node", port=free_port(), block_time=0.25)
    anvil.start()
    secrets = {name: _secret() for name in ("operator", "supplier", "financier", "firm", "regulator")}
    accounts = {name: Account.create() for name in ("supplier", "financier", "firm", "regulator")}
    ports = {name: free_port() for name in ("supplier", "financier", "firm", "regulator")}
    url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    stack = contextlib.ExitStack()
    try:
        base = {
            "rpc_url": anvil.rpc_url,
            "chain_id": anvil.chain_id,
            "audit_anchor_every": 0,
            "audit_anchor_seconds": 0,
            "docex_backoff_seconds": 0.2,
            "docex_backoff_max_seconds": 0.4,
        }

        def settings(name: str, **more: Any) -> Settings:
            data = root / name
            return Settings(
                data_dir=data,
                database_url=f"sqlite:///{data / 'ledger.sqlite3'}",
                deployments_dir=data / "deployments",
                master_secret=SecretStr(secrets[name].material.decode()),
                **base,
                **more,
            )

        def start(name: str, s: Settings, account: LocalAccount) -> Node:
            http = stack.enter_context(TestClient(create_app(s), raise_server_exceptions=False))
            return Node(name, http, s, account, secrets[name])

        operator_settings = settings("operator")
        operator_http = stack.enter_context(TestClient(create_app(operator_settings), raise_server_exceptions=False))
        operator = Node(
            "operator",
            operator_http,
            operator_settings,
            operator_http.app.state.ledger.operator,  # type: ignore[attr-defined]
            secrets["operator"],
        )
        # The members' gateways: the operator's deployment record copied, their relayers funded with gas.
        for name in ("supplier", "financier"):
            shutil.copytree(operator_settings.deployments_dir, root / name / "deployments")
            _fund(anvil, accounts[name].address)
        keys = {name: docex.public_hex(docex.exchange_key(secrets[name])) for name in secrets}
        # The participants' accounts are known only once made; the peers lists are set then (below).
        supplier_gw = start(
            "supplier",
            settings("supplier", gateway_role="member", operator_key=SecretStr(accounts["supplier"].key.hex())),
            accounts["supplier"],
        )
        financier_gw = start(
            "financier",
            settings("financier", gateway_role="member", operator_key=SecretStr(accounts["financier"].key.hex())),
            accounts["financier"],
        )
        supplier, supplier_key = _host(operator, supplier_gw, "Changchun Seat Systems", "supplier")
        financier, financier_key = _host(operator, financier_gw, "Northeast Factoring", "financier")
        firm_created = _done(
            operator.http.post(
                "/participants",
                json={"name": "FAW", "credit_code": synthetic_credit_code(7_777), "roles": ["core-firm"]},
                headers={**operator.admin, **WAIT},
            )
        )
        firm = firm_created["participant"]["id"]
        peers = [
            _peer(url["supplier"], accounts["supplier"].address, keys["supplier"], "member", [supplier]),
            _peer(url["financier"], accounts["financier"].address, keys["financier"], "member", [financier]),
            _peer(url["firm"], accounts["firm"].address, keys["firm"], "member", [firm]),
            _peer(url["regulator"], accounts["regulator"].address, keys["regulator"], "regulator", []),
        ]
        configured = json.dumps(peers)
        for node in (operator, supplier_gw, financier_gw):
            node.settings.gateway_peers = configured
        assert supplier_gw.service.docex is not None
        supplier_gw.service.docex.peers = docex.parse_peers(configured)
        yield World(
            anvil,
            operator,
            supplier_gw,
            financier_gw,
            ports["financier"],
            secrets["firm"],
            secrets["regulator"],
            {"supplier": supplier_key, "financier": financier_key, "firm": _bearer(firm_created["api_key"])},
            {"supplier": supplier, "financier": financier, "firm": firm},
        )
    finally:
        with contextlib.suppress(Exception):
            stack.close()
        with contextlib.suppress(Exception):
            anvil.kill()


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _upload_and_register(world: World, content: bytes) -> tuple[str, int]:
    """The supplier uploads ``content`` at its gateway and registers an invoice naming its SHA-256 there."""
    gw = world.supplier_gw
    sha = _done(
        gw.http.post(
            "/documents", content=content, headers={**world.keys["supplier"], "Content-Type": "application/pdf"}
        )
    )["sha256"]
    invoice = {
        "buyer": world.ids["firm"],
        "amount": 100_000_000,
        "currency": "CNY",
        "invoice_number": f"{time.time_ns() // 1000:020d}",
        "due_date": (datetime.now(UTC).date() + timedelta(days=90)).isoformat(),
        "document_sha256": sha,
    }
    done = _done(gw.http.post("/invoices", json=invoice, headers={**world.keys["supplier"], **WAIT}), 200)
    invoice_id = int(done["result"]["invoice_id"])

    def indexed_by_the_financiers_gateway() -> bool:
        with world.financier_gw.service.sessions() as session:
            return session.get(InvoiceRow, invoice_id) is not None

    _wait(indexed_by_the_financiers_gateway)
    return sha, invoice_id


def _outbox(node: Node, envelope_id: str) -> list[docex.OutboxRecord]:
    with node.service.sessions() as session:
        rows = list(session.scalars(select(docex.OutboxRecord).where(docex.OutboxRecord.envelope_id == envelope_id)))
        for row in rows:
            session.expunge(row)
        return rows


def _inbox(node: Node) -> list[docex.InboxRecord]:
    with node.service.sessions() as session:
        return list(session.scalars(select(docex.InboxRecord)))


def _wait(condition: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _signed_post(world: World, target: Node, body: bytes, signer: LocalAccount | None = None) -> Any:
    signer = signer or world.supplier_gw.account
    headers = docex.sign_request(signer, str(target.account.address), "POST", docex.INBOX_PATH, body)
    return target.http.post(docex.INBOX_PATH, content=body, headers={**headers, "Content-Type": "application/json"})


# -- the tests (in order: the first brings the financier's gateway up) ------------------------------------------


def test_a_document_reaches_the_financiers_gateway_once_it_comes_up_and_is_delivered_once(world: World) -> None:
    sha, invoice_id = _upload_and_register(world, PDF)
    # Before: the financier reads nothing of it at its gateway.
    assert world.financier_gw.http.get(f"/documents/{sha}", headers=world.keys["financier"]).status_code == 404
    sent = _done(
        world.supplier_gw.http.post(
            f"/documents/{sha}/deliveries",
            json={"invoice_id": invoice_id, "recipients": [world.ids["firm"], world.ids["financier"]]},
            headers=world.keys["supplier"],
        ),
        202,
    )
    assert {d["role"] for d in sent["deliveries"]} == {"member", "regulator"} and len(sent["deliveries"]) == 3
    financier_account = str(world.financier_gw.account.address)

    def to_financier() -> docex.OutboxRecord:
        return next(r for r in _outbox(world.supplier_gw, sent["envelope_id"]) if r.peer_account == financier_account)

    # The financier's gateway is down: tried, failed, tried again with a backoff, still pending.
    _wait(lambda: to_financier().attempts >= 2)
    row = to_financier()
    assert row.state == "pending" and row.last_error is not None and "unreachable" in row.last_error, row.last_error
    assert not _inbox(world.financier_gw)

    world.serve_financier()
    _wait(lambda: to_financier().state == "delivered")
    content = world.financier_gw.http.get(f"/documents/{sha}", headers=world.keys["financier"])
    assert content.status_code == 200 and content.content == PDF
    # Stored at rest under the financier's gateway's own master secret, by the invoice's seller, for its parties.
    with world.financier_gw.service.sessions() as session:
        stored = session.get(DocumentRecord, sha)
        assert stored is not None and PDF not in stored.ciphertext
        assert stored.uploaded_by == world.ids["supplier"] and world.ids["financier"] in stored.parties
    attempts = to_financier().attempts
    time.sleep(1.0)  # the deliverer keeps running: a delivered row is not sent again
    assert to_financier().attempts == attempts
    assert [r.envelope_id for r in _inbox(world.financier_gw)] == [sent["envelope_id"]]

    # The same envelope again (a retry whose answer was lost): answered 200, stored once.
    again = _signed_post(world, world.financier_gw, to_financier().body)
    assert again.status_code == 200 and again.json()["status"] == "already-received", again.text
    docex.verify_answer(
        again.headers,
        again.status_code,
        again.content,
        again.request.headers[docex.HEADER_SIGNATURE],
        docex.parse_peers(world.supplier_gw.settings.gateway_peers)[1],
    )
    assert len(_inbox(world.financier_gw)) == 1


def test_the_core_firms_and_the_regulators_keys_open_the_envelope_and_the_operators_does_not(world: World) -> None:
    sha, invoice_id = _upload_and_register(world, PDF + b" (second delivery)")
    sent = _done(
        world.supplier_gw.http.post(
            f"/documents/{sha}/deliveries",
            json={"invoice_id": invoice_id, "recipients": [world.ids["firm"]]},
            headers=world.keys["supplier"],
        ),
        202,
    )
    rows = _outbox(world.supplier_gw, sent["envelope_id"])
    assert len(rows) == 2  # the core firm's gateway and the regulator's
    envelope = docex.check_shape(json.loads(rows[0].body))
    assert b"second delivery" not in rows[0].body  # only ciphertext is held in transit
    for secret in (world.firm_secret, world.regulator_secret):
        assert docex.open_envelope(envelope, docex.exchange_key(secret)) == PDF + b" (second delivery)"
    # The operator's gateway's key (the one GET /gateway publishes, signed by its account) cannot open it.
    published = _done(world.operator.http.get("/gateway", headers=world.operator.admin), 200)
    assert published["exchange_key"] == world.operator.exchange_key
    statement = docex.key_statement(published["account"], published["chain_id"], published["exchange_key"])
    signer = Account.recover_message(encode_defunct(text=statement), signature=published["exchange_key_signature"])
    assert signer == published["account"]
    operator_key = docex.exchange_key(world.operator.secret)
    with pytest.raises(docex.NotAddressed):
        docex.open_envelope(envelope, operator_key)
    # Not even by naming its key in a recipient's slot: the wrapped key is bound to the recipient's key.
    forged = {**envelope, "recipients": [{**envelope["recipients"][0], "key": world.operator.exchange_key}]}
    with pytest.raises(docex.EnvelopeError):
        docex.open_envelope(forged, operator_key)
    # Sent to the operator's gateway, which trusts the supplier's: refused as not addressed, nothing stored.
    refused = _signed_post(world, world.operator, rows[0].body)
    assert refused.status_code == 403 and refused.json()["type"] == "urn:scf:problem:not-addressed", refused.text
    with world.operator.service.sessions() as session:
        assert session.get(DocumentRecord, sha) is None


def test_a_document_whose_hash_differs_from_the_chains_is_refused(world: World) -> None:
    sha, invoice_id = _upload_and_register(world, PDF + b" (the genuine one)")
    forged = PDF + b" (altered: 9,000,000.00 CNY)"
    # At the sender: a document that is not the invoice's.
    other = _done(
        world.supplier_gw.http.post(
            "/documents", content=forged, headers={**world.keys["supplier"], "Content-Type": "application/pdf"}
        )
    )["sha256"]
    refused = world.supplier_gw.http.post(
        f"/documents/{other}/deliveries",
        json={"invoice_id": invoice_id, "recipients": [world.ids["financier"]]},
        headers=world.keys["supplier"],
    )
    assert refused.status_code == 422 and refused.json()["type"] == "urn:scf:problem:document-hash-mismatch"
    # At the receiver: a sender that skips the check is refused on arrival, nothing stored.
    envelope = docex.seal(
        forged,
        invoice_id=invoice_id,
        sender=str(world.supplier_gw.account.address),
        recipients=[world.financier_gw.exchange_key],
    )
    answer = _signed_post(world, world.financier_gw, docex.encode(envelope))
    assert answer.status_code == 422 and answer.json()["type"] == "urn:scf:problem:document-hash-mismatch"
    with world.financier_gw.service.sessions() as session:
        assert session.get(DocumentRecord, hashlib.sha256(forged).hexdigest()) is None
        assert session.get(DocumentRecord, sha) is None
    # The genuine document is taken.
    genuine = docex.seal(
        PDF + b" (the genuine one)",
        invoice_id=invoice_id,
        sender=str(world.supplier_gw.account.address),
        recipients=[world.financier_gw.exchange_key],
    )
    assert _signed_post(world, world.financier_gw, docex.encode(genuine)).status_code == 201


def test_a_request_without_a_valid_gateway_signature_is_refused(world: World) -> None:
    sha, invoice_id = _upload_and_register(world, PDF + b" (signatures)")
    envelope = docex.seal(
        PDF + b" (signatures)",
        invoice_id=invoice_id,
        sender=str(world.supplier_gw.account.address),
        recipients=[world.financier_gw.exchange_key],
    )
    body = docex.encode(envelope)
    gw = world.financier_gw
    receiver = str(gw.account.address)
    good = docex.sign_request(world.supplier_gw.account, receiver, "POST", docex.INBOX_PATH, body)
    stale = dict(good)
    stale[docex.HEADER_TIMESTAMP] = str(int(time.time()) - 3600)
    cases = {
        "unsigned": {},
        "an untrusted gateway's": docex.sign_request(Account.create(), receiver, "POST", docex.INBOX_PATH, body),
        "another body's": docex.sign_request(world.supplier_gw.account, receiver, "POST", docex.INBOX_PATH, b"{}"),
        "for another gateway": docex.sign_request(
            world.supplier_gw.account, str(world.operator.account.address), "POST", docex.INBOX_PATH, body
        ),
        "stale": stale,
        "claiming the supplier's gateway, signed by another": {
            **docex.sign_request(Account.create(), receiver, "POST", docex.INBOX_PATH, body),
            docex.HEADER_GATEWAY: str(world.supplier_gw.account.address),
        },
    }
    for case, headers in cases.items():
        answer = gw.http.post(docex.INBOX_PATH, content=body, headers={**headers, "Content-Type": "application/json"})
        assert answer.status_code == 401, (case, answer.text)
        assert answer.json()["type"] == "urn:scf:problem:gateway-signature", (case, answer.text)
    with gw.service.sessions() as session:
        assert session.get(DocumentRecord, sha) is None
    # A trusted peer's signature, but the envelope names another sender: refused.
    posed = {**envelope, "sender": str(world.financier_gw.account.address)}
    answer = _signed_post(world, gw, docex.encode(posed))
    assert answer.status_code == 403 and answer.json()["type"] == "urn:scf:problem:sender-mismatch", answer.text
    assert _signed_post(world, gw, body).status_code == 201
