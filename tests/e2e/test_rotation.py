"""Rotation, end to end with real processes: the master secret changed without downtime (the service restarted
with the new secret and the old one as previous, ``scf secrets rotate`` run while it serves), documents and
hosted keys readable throughout and after, nothing left under the old secret, sign-in tokens of the old secret
refused after their lifetime; and the operator's lost API key reissued from the service's machine."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from api.webhooks import SubscriptionRecord
from ledger.documents import DocumentIntegrityError, DocumentRecord, decrypt
from ledger.identifiers import synthetic_credit_code
from ledger.keystore import SECRET_ID_FIELD
from ledger.secrets import MasterSecret, MasterSecrets, SealedSecretError, open_webhook_secret
from ledger.settings import Settings
from ledger.tooling.chain import Anvil
from tests.e2e.processes import Served, base_environment, run_scf, serving, strong, token

TOKEN_TTL = 25
"""Seconds a sign-in token lives in these services: long enough to outlast a restart, short enough to wait out."""
WAIT = {"Prefer": "wait=30"}


@dataclass
class Member:
    id: str
    headers: dict[str, str]


def onboard(served: Served, operator: dict[str, str], name: str, role: str, login: str | None = None) -> Member:
    body: dict[str, Any] = {
        "name": name,
        "credit_code": synthetic_credit_code(int.from_bytes(os.urandom(3), "big")),
        "roles": [role],
    }
    if login:
        body["login_address"] = login
    answer = httpx.post(f"{served.base_url}/participants", json=body, headers={**operator, **WAIT}, timeout=60)
    assert answer.status_code == 201 and answer.json()["status"] == "confirmed", answer.text
    return Member(answer.json()["participant"]["id"], served.headers(answer.json()["api_key"]))


def deposit(served: Served, agent: Member, to: Member, amount: int) -> None:
    body = {"participant": to.id, "amount": amount, "bank_reference": f"wire {os.urandom(6).hex()}"}
    answer = httpx.post(f"{served.base_url}/deposits", json=body, headers={**agent.headers, **WAIT}, timeout=60)
    assert answer.status_code == 200 and answer.json()["status"] == "confirmed", answer.text


def balance(served: Served, bearer: str) -> httpx.Response:
    return httpx.get(f"{served.base_url}/balances/me", headers=served.headers(bearer), timeout=30)


def sign_in(served: Served, wallet: LocalAccount) -> str:
    challenge = httpx.post(f"{served.base_url}/auth/challenge", json={"address": wallet.address}).json()
    signature = wallet.sign_message(encode_defunct(text=challenge["message"])).signature.to_0x_hex()
    body = {"address": wallet.address, "nonce": challenge["nonce"], "signature": signature}
    answer = httpx.post(f"{served.base_url}/auth/token", json=body)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def document(served: Served, who: Member, sha256: str) -> bytes:
    answer = httpx.get(f"{served.base_url}/documents/{sha256}", headers=who.headers, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.content


def until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()))


def stored_documents(data_dir: Path) -> list[DocumentRecord]:
    engine = create_engine(f"sqlite:///{data_dir / 'ledger.sqlite3'}")
    try:
        with Session(engine) as session:
            records = list(session.scalars(select(DocumentRecord)))
            session.expunge_all()
            return records
    finally:
        engine.dispose()


def stored_subscriptions(data_dir: Path) -> list[SubscriptionRecord]:
    engine = create_engine(f"sqlite:///{data_dir / 'ledger.sqlite3'}")
    try:
        with Session(engine) as session:
            records = list(session.scalars(select(SubscriptionRecord)))
            session.expunge_all()
            assert records
            return records
    finally:
        engine.dispose()


def test_rotating_the_master_secret_re_encrypts_everything_and_old_tokens_die_after_their_lifetime(
    make_anvil: Callable[..., Anvil], tmp_path: Path
) -> None:
    anvil = make_anvil()
    anvil.start()
    data = tmp_path / "data"
    old, new = MasterSecret.of(strong()), MasterSecret.of(strong())
    env = base_environment(
        data,
        SCF_RPC_URL=anvil.rpc_url,
        SCF_MASTER_SECRET=old.material.decode(),
        SCF_TOKEN_TTL_SECONDS=str(TOKEN_TTL),
        SCF_WEBHOOK_ALLOW="127.0.0.1",
    )
    wallet: LocalAccount = Account.create()
    content = b"warehouse certificate, lot 77, read across a rotation " + os.urandom(8).hex().encode()

    # 1. Under the old secret: two hosted keys, a document, a sign-in token.
    with serving(env, tmp_path) as first:
        operator = first.headers(first.operator_key())
        agent = onboard(first, operator, "Rotation Settlement Bank", "settlement-agent")
        supplier = onboard(first, operator, "Rotation Supplier", "supplier", login=wallet.address)
        deposit(first, agent, supplier, 10_000)
        uploaded = httpx.post(
            f"{first.base_url}/documents", content=content, headers={**supplier.headers, "Content-Type": "text/plain"}
        )
        assert uploaded.status_code == 201, uploaded.text
        sha256 = uploaded.json()["sha256"]
        signed_in = sign_in(first, wallet)
        hook = {"url": "http://127.0.0.1:9/scf-hook", "start": "now"}  # a closed port: the secret matters here
        subscribed = httpx.post(f"{first.base_url}/subscriptions", json=hook, headers=supplier.headers)
        assert subscribed.status_code == 201, subscribed.text
        webhook_secret = subscribed.json()["secret"]
    key_files = sorted((data / "keystore").glob("*.json"))
    assert len(key_files) == 2
    assert {json.loads(f.read_text())[SECRET_ID_FIELD] for f in key_files} == {old.id}
    forged = token(old, supplier.id, lifetime=86_400)  # whoever holds the old secret, with a long lifetime

    # 2. Restarted with the new secret and the old one as previous: everything still reads, old tokens work.
    rotating = {**env, "SCF_MASTER_SECRET": new.material.decode(), "SCF_PREVIOUS_MASTER_SECRETS": old.material.decode()}
    with serving(rotating, tmp_path) as second:
        up = time.time()
        assert balance(second, signed_in).status_code == 200
        assert balance(second, forged).status_code == 200  # within one token lifetime of the restart
        assert document(second, supplier, sha256) == content
        deposit(second, agent, supplier, 1)  # the agent's key file, under the old secret, signs

        # 3. The rotation, while the service serves.
        rotated = run_scf("secrets", "rotate", env=rotating, cwd=tmp_path)
        assert rotated.returncode == 0, rotated.stdout + rotated.stderr
        assert "hosted keys: 2 to go through" in rotated.stdout and "documents: 1 to go through" in rotated.stdout
        assert "re-encrypted 2 of 2 hosted keys, 1 documents and 1 webhook signing secrets" in rotated.stdout
        assert "nothing is left under a previous master secret" in rotated.stdout
        again = run_scf("secrets", "rotate", env=rotating, cwd=tmp_path)
        assert "re-encrypted 0 of 2 hosted keys, 0 documents and 0 webhook signing secrets" in again.stdout, (
            again.stdout + again.stderr
        )

        # Nothing is left under the old secret: no key file, no document opens with its keys.
        for path in key_files:
            keyfile = json.loads(path.read_text())
            assert keyfile[SECRET_ID_FIELD] == new.id
            address = keyfile["address"]
            with pytest.raises(ValueError, match="MAC mismatch"):
                Account.decrypt(keyfile, old.keystore_password(address))
            opened = Account.from_key(Account.decrypt(keyfile, new.keystore_password(address)))
            assert opened.address.lower().removeprefix("0x") == address.lower().removeprefix("0x")
        for record in stored_documents(data):
            assert record.secret_id == new.id
            assert decrypt(new.document_key(record.key_version), record.sha256, record.nonce, record.ciphertext)
            with pytest.raises(DocumentIntegrityError):
                decrypt(old.document_key(record.key_version), record.sha256, record.nonce, record.ciphertext)
        for subscription in stored_subscriptions(data):
            assert subscription.secret_key_id == new.id
            assert open_webhook_secret(MasterSecrets.of(new), new.id, subscription.id, subscription.secret_sealed) == (
                webhook_secret
            )
            with pytest.raises(SealedSecretError):
                open_webhook_secret(MasterSecrets.of(old), new.id, subscription.id, subscription.secret_sealed)
        assert document(second, supplier, sha256) == content

        # 4. Tokens of the old secret: refused once their lifetime is over, the forged one included.
        until(up + TOKEN_TTL + 1)
        expired = balance(second, signed_in)
        assert expired.status_code == 401, expired.text
        refused = balance(second, forged)
        assert refused.status_code == 401 and "one token lifetime after" in refused.json()["detail"], refused.text
        assert balance(second, sign_in(second, wallet)).status_code == 200

    # 5. The new secret alone: hosted keys sign, documents read, the old secret's tokens mean nothing.
    with serving({**env, "SCF_MASTER_SECRET": new.material.decode()}, tmp_path) as third:
        deposit(third, agent, supplier, 2)
        assert document(third, supplier, sha256) == content
        assert balance(third, token(old, supplier.id)).status_code == 401
        assert balance(third, sign_in(third, wallet)).status_code == 200


def test_a_lost_operator_api_key_is_reissued_from_the_services_machine(
    make_anvil: Callable[..., Anvil], tmp_path: Path
) -> None:
    anvil = make_anvil()
    anvil.start()
    data = tmp_path / "data"
    env = base_environment(data, SCF_RPC_URL=anvil.rpc_url)
    never_started = run_scf("api-key", "reissue", env=env, cwd=tmp_path)
    assert never_started.returncode == 1
    last = never_started.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the operator 0x") and "start the service once" in last
    with serving(env, tmp_path) as served:
        lost = served.operator_key()
        assert balance(served, lost).status_code == 200
        reissued = run_scf("api-key", "reissue", env=env, cwd=tmp_path)
        assert reissued.returncode == 0, reissued.stdout + reissued.stderr
        assert "revoked 1 earlier API key(s) of the operator" in reissued.stdout
        new_keys = [line.strip() for line in reissued.stdout.splitlines() if line.strip().startswith("scf_")]
        assert len(new_keys) == 1 and new_keys[0] != lost
        # Another process revoked it: the running service refuses it once it reads the key again, within
        # SCF_AUTH_CACHE_SECONDS of having last read it (api/auth_cache.py)
        time.sleep(Settings.model_fields["auth_cache_seconds"].default)
        assert balance(served, lost).status_code == 401
        listed = httpx.get(f"{served.base_url}/participants", headers=served.headers(new_keys[0]))
        assert listed.status_code == 200, listed.text
        log = httpx.get(f"{served.base_url}/audit/log?after=0&size=100", headers=served.headers(new_keys[0]))
        assert log.status_code == 200, log.text
        assert any(r["method"] == "CLI" and r["route"] == "scf api-key reissue" for r in log.json()["items"])
        verified = httpx.get(f"{served.base_url}/audit/log/verify", headers=served.headers(new_keys[0]))
        assert verified.json()["valid"] is True, verified.text
