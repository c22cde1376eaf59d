"""The regulator's routes against a real chain: the audit trail, the large-transaction report, freezes, and
encrypted documents readable by their parties only."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from eth_utils import keccak
from sqlalchemy import func, select

from api.store import DocumentRecord, ParticipantRecord
from ledger.identifiers import synthetic_credit_code
from ledger.journal import JournalTransaction
from ledger.models import Role
from tests.api.conftest import Api, Participant


def _eventually(read: Callable[[], Any], check: Callable[[Any], bool], timeout: float = 20.0) -> Any:
    """``read()`` once ``check`` holds for it (lists come from the index, which trails the chain)."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if check(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.25)


def _deposit(api: Api, agent: Participant, to: str, amount: int, reference: str) -> Any:
    body = {"participant": to, "amount": amount, "bank_reference": reference}
    return api.http.post("/deposits", json=body, headers=agent.waiting())


def test_audit_trail_and_large_transaction_report(api: Api) -> None:
    regulator = api.onboard("Municipal financial regulator", "regulator")
    agent = api.onboard("Settlement bank", "settlement-agent")
    supplier = api.onboard("Seat maker", "supplier")

    assert api.http.get("/audit/events", headers=supplier.headers).status_code == 403
    assert api.http.get("/reports/large-transactions", headers=supplier.headers).status_code == 403

    for amount, reference in ((5_000_000, "large-1"), (1_500_000, "small-1")):
        answer = _deposit(api, agent, supplier.id, amount, reference)
        assert answer.status_code == 200 and answer.json()["status"] == "confirmed", answer.text

    events = _eventually(
        lambda: api.http.get(
            "/audit/events",
            params={"participant": supplier.id.lower(), "contract": "token", "name": "DepositMinted"},
            headers=regulator.headers,
        ).json(),
        lambda body: body.get("total") == 2,
    )
    assert events["total"] == 2, events
    newest, oldest = events["items"]
    assert (newest["block_number"], newest["log_index"]) > (oldest["block_number"], oldest["log_index"])
    assert [e["args"]["amount"] for e in events["items"]] == [1_500_000, 5_000_000]
    assert all(supplier.id in e["args"].values() for e in events["items"])
    everything = api.http.get("/audit/events", params={"participant": supplier.id}, headers=api.operator_headers)
    assert everything.status_code == 200
    assert "ParticipantRegistered" in {e["name"] for e in everything.json()["items"]}
    since = api.http.get("/audit/events", params={"from_time": api.now() + 3600}, headers=regulator.headers)
    assert since.json()["total"] == 0

    today = datetime.fromtimestamp(api.now(), UTC).date().isoformat()
    params = {"date_from": today, "date_to": today, "daily_threshold": 6_500_000}
    report = api.http.get("/reports/large-transactions", params=params, headers=regulator.headers).json()
    mine = [item for item in report["single"] if item["recipient"] == supplier.id]
    assert [(i["kind"], i["amount"], i["sender"]) for i in mine] == [("deposit", 5_000_000, None)], report
    assert report["single_threshold"] == api.settings.large_single_threshold == 5_000_000
    daily = [d for d in report["daily"] if d["participant"] == supplier.id]
    assert daily == [
        {
            "participant": supplier.id,
            "date": today,
            "sent": 0,
            "received": 6_500_000,
            "total": 6_500_000,
            "movements": 2,
        }
    ], report
    higher = api.http.get(
        "/reports/large-transactions", params={**params, "daily_threshold": 6_500_001}, headers=api.operator_headers
    ).json()
    assert not [d for d in higher["daily"] if d["participant"] == supplier.id]
    bad = api.http.get(
        "/reports/large-transactions", params={"date_from": today, "date_to": "2000-01-01"}, headers=regulator.headers
    )
    assert bad.status_code == 422


def test_freeze_refuses_deposits_until_lifted(api: Api) -> None:
    regulator = api.onboard("Municipal financial regulator", "regulator")
    agent = api.onboard("Settlement bank", "settlement-agent")
    trader = api.onboard("Resin trader", "supplier")
    reason = "suspected circular invoicing, case 2025-117"
    freeze = {"kind": "participant", "target": trader.id, "reason": reason}

    assert api.http.post("/freezes", json=freeze, headers=trader.waiting()).status_code == 403
    frozen = api.http.post("/freezes", json=freeze, headers=regulator.waiting())
    assert frozen.status_code == 200 and frozen.json()["status"] == "confirmed", frozen.text

    refused = _deposit(api, agent, trader.id, 100_000, "while-frozen")
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == "RegistryParticipantFrozen"

    freeze_id = f"participant:{trader.id}"
    listed = _eventually(
        lambda: api.http.get("/freezes", headers=regulator.headers).json(),
        lambda body: freeze_id in {i["id"] for i in body["items"]},
    )
    (entry,) = [i for i in listed["items"] if i["id"] == freeze_id]
    assert entry["reason_hash"] == "0x" + keccak(text=reason).hex()
    assert entry["frozen_by"] == regulator.id

    missing = api.http.post(
        "/freezes", json={"kind": "piece", "target": "999999", "reason": "x"}, headers=regulator.waiting()
    )
    assert missing.status_code == 404 and missing.json()["error"] == "ReceivablesNonexistentPiece"

    lifted = api.http.delete(f"/freezes/{freeze_id}", headers=regulator.waiting())
    assert lifted.status_code == 200 and lifted.json()["status"] == "confirmed", lifted.text
    again = api.http.delete(f"/freezes/{freeze_id}", headers=regulator.waiting())
    assert again.status_code == 409 and again.json()["error"] == "RegistryNoChange"

    accepted = _deposit(api, agent, trader.id, 100_000, "after-lift")
    assert accepted.status_code == 200 and accepted.json()["status"] == "confirmed", accepted.text


def test_documents_are_readable_by_their_parties_only(api: Api) -> None:
    uploader = api.onboard("Foam chemicals", "supplier")
    party = api.onboard("Factoring company", "financier")
    stranger = api.onboard("Another supplier", "supplier")
    regulator = api.onboard("Municipal financial regulator", "regulator")
    content = b"%PDF-1.7 invoice 25117000000000123456 foam " + os.urandom(16)
    digest = hashlib.sha256(content).hexdigest()

    created = api.http.post(
        "/documents",
        files={"file": ("invoice.pdf", content, "application/pdf")},
        data={"parties": party.id},
        headers=uploader.headers,
    )
    assert created.status_code == 201, created.text
    assert created.json() == {"sha256": digest, "size": len(content)}
    again = api.http.post(
        "/documents", content=content, headers={**uploader.headers, "Content-Type": "application/pdf"}
    )
    assert again.status_code == 200 and again.json()["sha256"] == digest

    for reader in (uploader.headers, party.headers, regulator.headers, api.operator_headers):
        read = api.http.get(f"/documents/{digest}", headers=reader)
        assert read.status_code == 200, read.text
        assert read.content == content and read.headers["content-type"] == "application/pdf"
    assert api.http.get(f"/documents/{digest}", headers=stranger.headers).status_code == 404
    assert api.http.get("/documents/not-a-hash", headers=uploader.headers).status_code == 404

    with api.http.app.state.ledger.sessions() as session, session.begin():  # type: ignore[attr-defined]
        record = session.get(DocumentRecord, digest)
        record.ciphertext = record.ciphertext[:-1] + bytes([record.ciphertext[-1] ^ 1])
    damaged = api.http.get(f"/documents/{digest}", headers=uploader.headers)
    assert damaged.status_code == 409, damaged.text
    assert damaged.json()["type"] == "urn:scf:problem:document-integrity"


def test_the_regulator_stores_no_document_and_nothing_is_stored_for_its_attempt(api: Api) -> None:
    regulator = api.onboard("Municipal financial regulator", "regulator")
    content = b"%PDF-1.7 an inspection note " + os.urandom(16)
    digest = hashlib.sha256(content).hexdigest()
    raw = {**regulator.headers, "Content-Type": "application/pdf"}
    for refused in (
        api.http.post(
            "/documents", files={"file": ("note.pdf", content, "application/pdf")}, headers=regulator.headers
        ),
        api.http.post("/documents", content=content, headers=raw),
    ):
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["type"] == "urn:scf:problem:forbidden-role"
    with api.http.app.state.ledger.sessions() as session:  # type: ignore[attr-defined]
        assert session.get(DocumentRecord, digest) is None
    # It still reads what participants store.
    supplier = api.onboard("Resin trader", "supplier")
    stored = api.http.post(
        "/documents", content=content, headers={**supplier.headers, "Content-Type": "application/pdf"}
    )
    assert stored.status_code == 201, stored.text
    assert api.http.get(f"/documents/{digest}", headers=regulator.headers).content == content


def test_a_regulator_onboarded_here_is_admitted_by_the_regulator_named_at_deployment_not_the_operator(
    api: Api,
) -> None:
    """On the local chain the service hosts the first regulator (named at deployment): the operator registers the
    account and that regulator grants the role. The operator signs no grant of the regulator role."""
    hosted = api.service.regulator
    assert hosted is not None and hosted.address == api.service.deployment.regulator
    regulator = api.onboard("Provincial financial regulator", "regulator")
    registry = api.service.client.contracts["registry"]
    grants = registry.events.RoleGranted().get_logs(
        from_block=0, argument_filters={"role": Role.REGULATOR.role_id, "account": regulator.id}
    )
    assert [(g["args"]["sender"], g["transactionHash"]) for g in grants] != []
    assert {g["args"]["sender"] for g in grants} == {hosted.address}
    assert registry.functions.getRoleAdmin(Role.REGULATOR.role_id).call() == Role.REGULATOR.role_id
    assert api.http.get(f"/participants/{regulator.id}", headers=regulator.headers).json()["roles"] == ["regulator"]


def test_a_regulator_onboarded_without_waiting_is_admitted_once_its_registration_is_confirmed(api: Api) -> None:
    body = {
        "name": "County financial regulator",
        "credit_code": synthetic_credit_code(9_999_002),
        "roles": ["regulator"],
    }
    answer = api.http.post("/participants", json=body, headers=api.operator_headers)
    assert answer.status_code == 201, answer.text
    account = answer.json()["participant"]["id"]
    client = api.service.client
    assert _eventually(lambda: client.has_role(account, Role.REGULATOR), bool)
    assert not client.has_role(api.service.operator.address, Role.REGULATOR)


def test_onboarding_a_regulator_without_a_hosted_regulator_is_the_registrys_named_refusal(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A service that holds no regulator's key (any chain but the local one) cannot onboard a regulator: the
    registry refuses the role to the operator, and that refusal is the answer, 403 by its name, before anything
    is stored or signed."""
    monkeypatch.setattr(api.service, "regulator", None)
    code = synthetic_credit_code(9_999_001)
    body = {"name": "A regulator of the operator's making", "credit_code": code, "roles": ["regulator", "supplier"]}
    signed_before = _journal_size(api)
    answer = api.http.post("/participants", json=body, headers={**api.operator_headers, "Prefer": "wait=20"})
    assert answer.status_code == 403, answer.text
    problem = answer.json()
    assert problem["type"] == "urn:scf:problem:contract:RegistryRoleNotOperatorManaged"
    assert problem["arguments"] == {"role": "0x" + Role.REGULATOR.role_id.hex()}
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert _journal_size(api) == signed_before  # nothing signed
    with api.service.sessions() as session:  # nothing stored: no record, no API key
        assert session.scalar(select(ParticipantRecord).where(ParticipantRecord.credit_code == code)) is None


def _journal_size(api: Api) -> int:
    with api.service.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(JournalTransaction)) or 0)
