"""Documents between gateways (docs/consortium.md, "Documents between gateways"): five real gateways in one
process on one anvil, each its own database (the supplier's and the financier's in PostgreSQL where a server
answers at 127.0.0.1:5432, the others in SQLite files), master secret and account: the operator's (which deploys and
onboards), the supplier's, the financier's and the core firm's (``SCF_GATEWAY_ROLE=member``, relayers funded with
gas; each participant's key made in its gateway's keystore, onboarded by address and proof) and the regulator's
(``SCF_GATEWAY_ROLE=regulator``, the regulator named at deployment). The gateways that receive are served over
real HTTP by uvicorn on their own ports; the financier's comes up only after the supplier's gateway has tried and
failed to deliver to it.
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
from tests.api.conftest import WAIT, free_port, postgres_answers, postgres_schema

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
    firm_gw: Node
    regulator_gw: Node
    ports: dict[str, int]
    keys: dict[str, dict[str, str]]
    ids: dict[str, str]
    servers: list[uvicorn.Server]

    def serve(self, node: Node) -> None:
        """``node``'s gateway comes up on its port: uvicorn serves its (already started) app."""
        config = uvicorn.Config(
            node.http.app, host="127.0.0.1", port=self.ports[node.name], lifespan="off", log_level="warning"
        )
        server = uvicorn.Server(config)
        self.servers.append(server)
        threading.Thread(target=server.run, daemon=True).start()
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started


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
    members = ("supplier", "financier", "firm", "regulator")
    secrets = {name: _secret() for name in ("operator", *members)}
    accounts = {name: Account.create() for name in members}
    ports = {name: free_port() for name in members}
    url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    stack = contextlib.ExitStack()
    servers: list[uvicorn.Server] = []
    try:
        base = {
            "rpc_url": anvil.rpc_url,
            "chain_id": anvil.chain_id,
            "audit_anchor_every": 0,
            "audit_anchor_seconds": 0,
            "docex_backoff_seconds": 0.2,
            "docex_backoff_max_seconds": 0.4,
        }

        # The outbox's and the inbox's gateways keep their databases in PostgreSQL where a server answers.
        databases = {name: f"sqlite:///{root / name / 'ledger.sqlite3'}" for name in ("operator", *members)}
        if postgres_answers():
            for name in ("supplier", "financier"):
                databases[name] = stack.enter_context(postgres_schema(f"scf_docex_{name}"))

        def settings(name: str, **more: Any) -> Settings:
            data = root / name
            return Settings(
                data_dir=data,
                database_url=databases[name],
                deployments_dir=data / "deployments",
                master_secret=SecretStr(secrets[name].material.decode()),
                **base,
                **more,
            )

        def start(name: str, s: Settings) -> Node:
            http = stack.enter_context(TestClient(create_app(s), raise_server_exceptions=False))
            return Node(name, http, s, http.app.state.ledger.operator, secrets[name])  # type: ignore[attr-defined]

        # The operator's gateway deploys, naming the regulator whose key the regulator's gateway holds.
        operator = start("operator", settings("operator", regulator_address=accounts["regulator"].address))
        # The others: the operator's deployment record copied, the members' relayers funded with gas.
        nodes: dict[str, Node] = {}
        for name in members:
            shutil.copytree(operator.settings.deployments_dir, root / name / "deployments")
            role = "regulator" if name == "regulator" else "member"
            if role == "member":
                _fund(anvil, accounts[name].address)
            key = SecretStr(accounts[name].key.hex())
            nodes[name] = start(name, settings(name, gateway_role=role, operator_key=key))
        supplier, supplier_key = _host(operator, nodes["supplier"], "Changchun Seat Systems", "supplier")
        financier, financier_key = _host(operator, nodes["financier"], "Northeast Factoring", "financier")
        firm, firm_key = _host(operator, nodes["firm"], "FAW", "core-firm")
        # The peers list every gateway is given (the participants' accounts are known only now).
        exchange = {name: docex.public_hex(docex.exchange_key(secrets[name])) for name in members}
        serves = {"supplier": [supplier], "financier": [financier], "firm": [firm], "regulator": []}
        configured = json.dumps(
            [
                _peer(
                    url[name],
                    accounts[name].address,
                    exchange[name],
                    "regulator" if name == "regulator" else "member",
                    serves[name],
                )
                for name in members
            ]
        )
        for node in (operator, *nodes.values()):
            node.settings.gateway_peers = configured
            assert node.service.docex is not None
            node.service.docex.peers = docex.parse_peers(configured)
        w = World(
            anvil,
            operator,
            nodes["supplier"],
            nodes["financier"],
            nodes["firm"],
            nodes["regulator"],
            ports,
            {"supplier": supplier_key, "financier": financier_key, "firm": firm_key},
            {"supplier": supplier, "financier": financier, "firm": firm},
            servers,
        )
        # The core firm's and the regulator's gateways are up; the financier's comes up in the first test.
        w.serve(nodes["firm"])
        w.serve(nodes["regulator"])
        yield w
    finally:
        for server in servers:
            server.should_exit = True
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

    world.serve(world.financier_gw)
    _wait(lambda: all(r.state == "delivered" for r in _outbox(world.supplier_gw, sent["envelope_id"])))
    # Each reads it at its own gateway: the financier, the core firm (the invoice's buyer), the regulator.
    for gateway, headers in (
        (world.financier_gw, world.keys["financier"]),
        (world.firm_gw, world.keys["firm"]),
        (world.regulator_gw, world.regulator_gw.admin),
    ):
        content = gateway.http.get(f"/documents/{sha}", headers=headers)
        assert content.status_code == 200 and content.content == PDF, (gateway.name, content.text)
    # The operator's gateway, not addressed, has nothing of it.
    assert world.operator.http.get(f"/documents/{sha}", headers=world.operator.admin).status_code == 404
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
    for secret in (world.firm_gw.secret, world.regulator_gw.secret):
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


def test_an_envelope_not_addressed_to_a_gateway_is_refused_for_good_even_before_its_index_holds_the_invoice(
    world: World,
) -> None:
    # An invoice this gateway's index does not hold (yet): the envelope is not its to open, so the answer is the
    # final 403, not the 503 that would have the sender retry.
    envelope = docex.seal(
        PDF + b" (for another gateway)",
        invoice_id=10**9,
        sender=str(world.supplier_gw.account.address),
        recipients=[world.financier_gw.exchange_key],
    )
    refused = _signed_post(world, world.operator, docex.encode(envelope))
    assert refused.status_code == 403 and refused.json()["type"] == "urn:scf:problem:not-addressed", refused.text


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


def test_a_stored_document_that_does_not_authenticate_is_not_sent(world: World) -> None:
    sha, invoice_id = _upload_and_register(world, PDF + b" (to be altered at rest)")
    with world.supplier_gw.service.sessions() as session, session.begin():
        record = session.get(DocumentRecord, sha)
        assert record is not None
        record.ciphertext = bytes([record.ciphertext[0] ^ 1]) + record.ciphertext[1:]
    refused = world.supplier_gw.http.post(
        f"/documents/{sha}/deliveries",
        json={"invoice_id": invoice_id, "recipients": [world.ids["financier"]]},
        headers=world.keys["supplier"],
    )
    assert refused.status_code == 409 and refused.json()["type"] == "urn:scf:problem:document-integrity", refused.text
    with world.supplier_gw.service.sessions() as session:
        assert session.scalar(select(docex.OutboxRecord).where(docex.OutboxRecord.sha256 == sha)) is None
