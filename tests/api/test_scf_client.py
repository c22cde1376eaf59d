"""``scf client``, a self-custody participant's own machine, against the service served over HTTP (anvil, uvicorn):
its key made and kept in a local keystore, its proof of possession the operator onboards it with, an invoice
confirmed on chain by its signature alone; a wrong password stops it before anything is sent; and an act whose
digest is not the one the service announced is refused before it is signed."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from typer.testing import CliRunner

from ledger import acts
from ledger.identifiers import synthetic_credit_code
from scf.cli import app
from scf.client import ActRefused, check_act
from tests.api.served import Served, serve

YUAN = 100
WAIT = {"Prefer": "wait=30"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("client")) as running:
        yield running


def scf(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), env={"SCF_KEY_PASSWORD": None, "SCF_URL": None, "SCF_API_KEY": None})


def test_a_core_firm_onboarded_by_its_proof_confirms_an_invoice_from_its_terminal(
    served: Served, tmp_path: Path
) -> None:
    keystore, password = tmp_path / "core.json", tmp_path / "password"
    password.write_text("correct horse battery staple\n")
    made = scf("client", "key", "new", "--keystore", str(keystore), "--password-file", str(password))
    assert made.exit_code == 0, made.output
    address = made.stdout.strip()
    assert keystore.stat().st_mode & 0o777 == 0o600
    assert scf("client", "key", "address", "--keystore", str(keystore)).stdout.strip() == address
    again = scf("client", "key", "new", "--keystore", str(keystore), "--password-file", str(password))
    assert again.exit_code == 1 and "never overwritten" in again.stderr

    code = synthetic_credit_code(int(time.time() * 1000) % 10**8)
    proved = scf(
        "client", "prove", "--keystore", str(keystore), "--password-file", str(password),
        "--credit-code", code, "--url", served.base_url,
    )  # fmt: skip
    assert proved.exit_code == 0, proved.output
    proof = json.loads(proved.stdout)
    assert proof["address"] == address and proof["credit_code"] == code

    with httpx.Client(base_url=served.base_url, timeout=60) as http:
        body = {"name": "FAW Terminal", "roles": ["core-firm"], **proof}
        created = http.post("/participants", json=body, headers=served.headers("operator", **WAIT))
        assert created.status_code == 201, created.text
        assert created.json()["participant"]["custody"] == "self"
        api_key = created.json()["api_key"]
        # Once onboarded, with its API key, the text comes from GET /participants/possession-message: the same one.
        reproved = scf(
            "client", "prove", "--keystore", str(keystore), "--password-file", str(password),
            "--credit-code", code, "--url", served.base_url, "--api-key", api_key,
        )  # fmt: skip
        assert reproved.exit_code == 0 and json.loads(reproved.stdout) == proof, reproved.output
        line = {"core_firm": address, "limit": 10_000_000 * YUAN}
        assert http.post("/credit-lines", json=line, headers=served.headers("operator", **WAIT)).status_code == 200
        served.onboard(http, "Seats Terminal", "supplier")
        invoice = {
            "buyer": address,
            "amount": 250_000 * YUAN,
            "currency": "CNY",
            "invoice_number": f"{int(time.time() * 1000):020d}",
            "due_date": (datetime.now(UTC).date() + timedelta(days=90)).isoformat(),
        }
        registered = http.post("/invoices", json=invoice, headers=served.headers("Seats Terminal", **WAIT))
        assert registered.status_code == 200, registered.text
        invoice_id = registered.json()["result"]["invoice_id"]

        confirm = ("client", "confirm-invoice", str(invoice_id), "--keystore", str(keystore), "--url", served.base_url)
        wrong = tmp_path / "wrong"
        wrong.write_text("incorrect horse\n")
        refused = scf(*confirm, "--api-key", api_key, "--password-file", str(wrong), "--yes")
        assert refused.exit_code == 1 and "error: wrong password" in refused.stderr, refused.output
        assert refused.stdout == ""

        declined = CliRunner().invoke(
            app, [*confirm, "--api-key", api_key, "--password-file", str(password)], input="n\n"
        )
        assert declined.exit_code == 1 and "error: not signed" in declined.stderr, declined.output
        assert "Confirm invoice" in declined.stderr and f"{250_000 * YUAN} fen" in declined.stderr
        state = http.get(f"/invoices/{invoice_id}", headers=served.headers("operator")).json()["state"]
        assert state != "confirmed"

        done = scf(*confirm, "--api-key", api_key, "--password-file", str(password), "--yes", "--idempotency-key", "c1")
        assert done.exit_code == 0, done.output
        operation = json.loads(done.stdout)
        assert operation["status"] == "confirmed" and operation["kind"] == "invoice.confirm"
        assert f"Confirm invoice {invoice_id}" in done.stderr
        assert http.get(f"/invoices/{invoice_id}", headers=served.headers("operator")).json()["state"] == "confirmed"
        evidence = http.get(
            f"/operations/{operation['operation_id']}/evidence", headers={"Authorization": f"Bearer {api_key}"}
        )
        assert evidence.json()["signer"] == address

        # A retry with the same Idempotency-Key gets the same act back (the 428 is kept under the key), signs it
        # to the same signature, and the relay answers with the first outcome: performed once.
        retried = scf(
            *confirm, "--api-key", api_key, "--password-file", str(password), "--yes", "--idempotency-key", "c1"
        )
        assert retried.exit_code == 0, retried.output
        assert json.loads(retried.stdout)["operation_id"] == operation["operation_id"]

        # Another operation of the same service, not a signed act: printed as it is, and a problem exits 1.
        again_confirmed = scf(*confirm, "--api-key", api_key, "--password-file", str(password), "--yes")
        assert again_confirmed.exit_code == 1 and "error: 409" in again_confirmed.stderr, again_confirmed.output


def _confirm_act(account: str) -> dict[str, Any]:
    act = acts.ACTS["invoice.confirm"]
    seller = Account.create().address
    message = act.message(
        account,
        [7],
        lambda contract, function, args: (
            (seller, 0, 0, account, 0, 1_000 * YUAN, 0, 0, b"\0" * 32) if function == "invoice" else b"CNY"
        ),
        nonce=3,
        deadline=int(time.time()) + 600,
    )
    document = acts.typed_data(act, message, 31337, Account.create().address)
    return {"typed_data": document, "digest": "0x" + acts.digest(document).hex()}


def test_the_client_signs_only_the_act_whose_digest_it_computes_itself() -> None:
    account = Account.create().address
    answer = _confirm_act(account)
    act, _ = check_act(answer, account)
    assert act.name == "ConfirmInvoice"

    # The service announces a digest of another act than the one it shows: refused before signing.
    shown = json.loads(json.dumps(answer))
    shown["typed_data"]["message"]["amount"] = 10 * YUAN
    with pytest.raises(ActRefused, match="digest"):
        check_act(shown, account)
    with pytest.raises(ActRefused, match="digest"):
        check_act({**answer, "digest": "0x" + "00" * 32}, account)
    with pytest.raises(ActRefused, match="the act is of account"):
        check_act(answer, Account.create().address)
    renamed = json.loads(json.dumps(answer))
    renamed["typed_data"]["types"]["ConfirmInvoice"][2]["name"] = "payee"
    with pytest.raises(ActRefused, match="not one of the ledger's acts"):
        check_act(renamed, account)
    with pytest.raises(ActRefused, match="deadline"):
        check_act(answer, account, now=time.time() + 3600)


def _self_custody(served: Served, http: httpx.Client, tmp_path: Path, name: str, role: str) -> tuple[Path, str, str]:
    """A key made with ``scf client key new``, onboarded by the operator with ``scf client prove``'s output."""
    keystore = tmp_path / f"{role}.json"
    made = scf("client", "key", "new", "--keystore", str(keystore), "--password-file", str(tmp_path / "password"))
    assert made.exit_code == 0, made.output
    code = synthetic_credit_code(int(time.time() * 1000) % 10**8)
    proved = scf(
        "client", "prove", "--keystore", str(keystore), "--password-file", str(tmp_path / "password"),
        "--credit-code", code, "--url", served.base_url,
    )  # fmt: skip
    assert proved.exit_code == 0, proved.output
    body = {"name": name, "roles": [role], **json.loads(proved.stdout)}
    created = http.post("/participants", json=body, headers=served.headers("operator", **WAIT))
    assert created.status_code == 201, created.text
    served.keys[name], served.addresses[name] = created.json()["api_key"], made.stdout.strip()
    return keystore, made.stdout.strip(), created.json()["api_key"]


def test_a_self_custody_financier_funds_a_request_from_its_terminal(served: Served, tmp_path: Path) -> None:
    (tmp_path / "password").write_text("financier's password\n")
    with httpx.Client(base_url=served.base_url, timeout=60) as http:
        keystore, financier, api_key = _self_custody(served, http, tmp_path, "Bank Terminal", "financier")
        core = served.onboard(http, "Core Hosted", "core-firm")
        supplier = served.onboard(http, "Supplier Hosted", "supplier")
        served.onboard(http, "Agent Terminal", "settlement-agent")
        line = {"core_firm": core, "limit": 10_000_000 * YUAN}
        assert http.post("/credit-lines", json=line, headers=served.headers("operator", **WAIT)).status_code == 200
        invoice = {
            "buyer": core,
            "amount": 100_000 * YUAN,
            "currency": "CNY",
            "invoice_number": f"{int(time.time() * 1000):020d}",
            "due_date": (datetime.now(UTC).date() + timedelta(days=90)).isoformat(),
        }
        invoice_id = http.post("/invoices", json=invoice, headers=served.headers("Supplier Hosted", **WAIT)).json()[
            "result"
        ]["invoice_id"]
        confirmed = http.post(f"/invoices/{invoice_id}/confirm", headers=served.headers("Core Hosted", **WAIT))
        piece_id = confirmed.json()["result"]["piece_id"]
        asked = {
            "piece_id": piece_id,
            "amount": 100_000 * YUAN,
            "financier": financier,
            "max_discount_rate_bps": 800,
            "max_fee": 0,
        }
        requested = http.post("/financing-requests", json=asked, headers=served.headers("Supplier Hosted", **WAIT))
        assert requested.status_code == 200, requested.text
        request_id = requested.json()["result"]["request_id"]
        served.deposit(http, "Agent Terminal", "Bank Terminal", 200_000 * YUAN)

        common = ("--keystore", str(keystore), "--password-file", str(tmp_path / "password"), "--yes")
        common += ("--url", served.base_url, "--api-key", api_key)
        approved = scf("client", "approve-settlement", "receivables", *common)
        assert approved.exit_code == 0 and json.loads(approved.stdout)["status"] == "confirmed", approved.output
        terms = json.dumps({"discount_rate_bps": 800, "fee": 0})
        offered = scf(
            "client",
            "act",
            "POST",
            f"/financing-requests/{request_id}/approve",
            "--json",
            terms,
            "--wait",
            "30",
            *common,
        )
        assert offered.exit_code == 0 and json.loads(offered.stdout)["kind"] == "financing.approve", offered.output
        funded = scf("client", "fund-financing", str(request_id), *common)
        assert funded.exit_code == 0, funded.output
        assert json.loads(funded.stdout)["status"] == "confirmed"
        assert f"Fund request {request_id}: buy ¥100,000.00 ({100_000 * YUAN} fen) from {supplier}" in funded.stderr
        piece = http.get(f"/receivables/{piece_id}", headers=served.headers("operator")).json()
        assert piece["owner"] == financier
