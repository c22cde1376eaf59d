"""The README's two commands end to end: ``scf serve`` (a real process: anvil started, contracts deployed,
indexer, API on a free port) and ``scf demo`` against it over HTTP; then a restart of the service keeps
every participant and balance. The demo's financier is a 2-of-3 Safe: its acts are checked on chain, against
the Safe itself, not taken from the demo's word."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak

from ledger import acts
from ledger.node import connect
from ledger.safe import is_valid_safe_signature, safe_message_hash, safe_owners
from ledger.settings import PROJECT_ROOT
from ledger.tooling.chain import find_anvil
from tests.e2e.conftest import free_port

try:
    find_anvil()
except Exception as exc:  # pragma: no cover - depends on `npm ci`
    pytest.skip(f"anvil is not installed: {exc}", allow_module_level=True)

SCF = str(Path(sys.executable).parent / "scf")
KEY = re.compile(r"(scf_[A-Za-z0-9_-]{43})")
SAFE_CREATED = re.compile(r"created Northeast Factoring Co\.'s Safe (0x[0-9a-fA-F]{40})")
SAFE_ACT_EVIDENCE = re.compile(r"evidence from the chain \(GET /acts/(0x[0-9a-f]{64})\)")


def environment(data_dir: Path, api_port: int, anvil_port: int) -> dict[str, str]:
    return {
        **os.environ,
        "SCF_DATA_DIR": str(data_dir),
        "SCF_DEPLOYMENTS_DIR": str(data_dir / "deployments"),
        "SCF_API_PORT": str(api_port),
        "SCF_ANVIL_PORT": str(anvil_port),
        "SCF_RPC_URL": f"http://127.0.0.1:{anvil_port}",
        "SCF_BLOCK_TIME": "0.5",
    }


@contextlib.contextmanager
def serving(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        process = subprocess.Popen([SCF, "serve"], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT)
    try:
        base = f"http://127.0.0.1:{env['SCF_API_PORT']}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            time.sleep(0.5)
        else:
            pytest.fail(f"the service did not come up:\n{log.read_text()}")
        yield process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def assert_the_financier_acted_through_its_safe(stdout: str, base: str, headers: dict[str, str], rpc_url: str) -> None:
    """The demo's financier is a registered participant whose account and signer are a 2-of-3 Safe; each act the
    demo shows it making (approving the terms, its settlement approval, funding) is on chain with the Safe as
    account and signer, its digest the EIP-712 hash eth-account computes, its signature two owners' that the Safe
    itself accepts and whose first owner's part alone it refuses; and the request it funded is funded."""
    (safe,) = SAFE_CREATED.findall(stdout)
    listed = httpx.get(f"{base}/participants?size=200", headers=headers).json()["items"]
    (bank,) = [p for p in listed if p["id"] == safe]
    assert (bank["name"], bank["roles"], bank["custody"], bank["signer"]) == (
        "Northeast Factoring Co.",
        ["financier"],
        "self",
        safe,
    )
    w3 = connect(rpc_url, 31337)
    owners = safe_owners(w3, safe)
    assert owners.threshold == 2 and len(owners.owners) == 3

    shown: dict[str, dict[str, Any]] = {}
    for tx_hash in SAFE_ACT_EVIDENCE.findall(stdout):
        assert w3.eth.get_transaction_receipt(tx_hash)["status"] == 1
        evidence = httpx.get(f"{base}/acts/{tx_hash}", headers=headers).json()
        assert (evidence["account"], evidence["signer"], evidence["tx_hash"]) == (safe, safe, tx_hash)
        digest = bytes.fromhex(evidence["digest"][2:])
        independent = encode_typed_data(full_message=evidence["typed_data"])
        assert keccak(b"\x19" + independent.version + independent.header + independent.body) == digest
        signature = bytes.fromhex(evidence["signature"][2:])
        assert len(signature) == 2 * 65
        assert is_valid_safe_signature(w3, safe, digest, signature)
        assert not is_valid_safe_signature(w3, safe, digest, signature[:65])
        message_hash = safe_message_hash(31337, safe, digest)
        signers = {acts.recover_hash(message_hash, signature[:65]), acts.recover_hash(message_hash, signature[65:])}
        assert len(signers) == 2 and signers <= set(owners.owners)
        shown[evidence["act"]] = evidence["typed_data"]["message"]
    assert sorted(shown) == ["ApproveFinancing", "ApproveSettlement", "FundFinancing"]
    assert shown["ApproveFinancing"]["requestId"] == shown["FundFinancing"]["requestId"]
    request_id = shown["FundFinancing"]["requestId"]
    request = httpx.get(f"{base}/financing-requests/{request_id}", headers=headers).json()
    assert (request["state"], request["financier"]) == ("funded", safe)
    assert 0 < request["price"] < request["amount"] - request["fee"]  # less the discount
    # The fee-and-rate disclosure: what tier 2 accepted when it asked, and the terms the Safe signed within it.
    assert (request["max_discount_rate_bps"], request["max_fee"]) == (600, 500_00)
    signed = shown["ApproveFinancing"]
    assert (int(signed["discountRateBps"]), int(signed["fee"])) == (request["discount_rate_bps"], request["fee"])
    assert int(signed["discountRateBps"]) <= request["max_discount_rate_bps"] and request["fee"] <= request["max_fee"]


def test_scf_serve_and_scf_demo_complete_and_a_restart_keeps_everything(tmp_path: Path) -> None:
    env = environment(tmp_path / "data", free_port(), free_port())
    log = tmp_path / "serve.log"
    try:
        with serving(env, log):
            found = KEY.search(log.read_text())
            assert found, log.read_text()
            key = found.group(1)
            demo = subprocess.run(
                [SCF, "demo", "--api-key", key], env=env, capture_output=True, text=True, timeout=600, cwd=PROJECT_ROOT
            )
            assert demo.returncode == 0, demo.stdout + demo.stderr
            assert "a second pledge of the same receipt was refused: 409" in demo.stdout
            # It says before it moves the local chain's clock, and shows the terms and the arithmetic.
            assert "the demo will move the chain's clock forward 91 days" in demo.stdout
            assert "moved the chain's clock forward 91 days" in demo.stdout
            assert "day count actual/365" in demo.stdout and "tenor: funded" in demo.stdout
            assert re.search(r"discount = ¥300,000\.00 × 600 bps × \d+ days / \(365 × 10,000\)", demo.stdout)
            assert re.search(r"interest = ¥2,000,000\.00 × 600 bps × [\d,]+ s / \(31,536,000 s × 10,000\)", demo.stdout)
            assert "demo complete" in demo.stdout
            # The core firm signs with its own key; the financier is a 2-of-3 Safe whose clerk alone is refused.
            assert "FAW confirmed it, by its own signature" in demo.stdout
            assert "Northeast Factoring Co. as financier, self-custody by its Safe" in demo.stdout
            assert demo.stdout.count("refused, 403 SignedActsInvalidSignature") == 3
            # The regulator is admitted by the first regulator, named at deployment and hosted here (local chain).
            assert "admitted by the regulator named at deployment" in demo.stdout
            assert "the regulator sees" in demo.stdout
            assert demo.stdout.count("added the second signature: 2 of 3, the Safe accepts; confirmed") == 3
            headers = {"Authorization": f"Bearer {key}"}
            base = f"http://127.0.0.1:{env['SCF_API_PORT']}"
            assert_the_financier_acted_through_its_safe(demo.stdout, base, headers, env["SCF_RPC_URL"])
            before = httpx.get(f"{base}/participants?size=200", headers=headers).json()
            assert before["total"] >= 9
        # The chain stops too (a clean stop saves its state); `scf serve` starts it again.
        stopped = subprocess.run([SCF, "chain", "stop"], env=env, capture_output=True, timeout=60, cwd=PROJECT_ROOT)
        assert stopped.returncode == 0, stopped.stderr
        with serving(env, log):
            assert len(KEY.findall(log.read_text())) == 1, "the operator's key is printed on the first start only"
            after = httpx.get(f"{base}/participants?size=200", headers=headers).json()
            assert [p["id"] for p in after["items"]] == [p["id"] for p in before["items"]]
            assert [p["status"] for p in after["items"]] == [p["status"] for p in before["items"]]
    finally:
        subprocess.run([SCF, "chain", "stop"], env=env, capture_output=True, timeout=60, cwd=PROJECT_ROOT)


def rpc(url: str, method: str, params: list[Any]) -> Any:
    answer = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).json()
    assert "error" not in answer, answer
    return answer["result"]


def test_the_demo_leaves_the_clock_of_a_chain_that_is_not_a_local_dev_chain_alone(tmp_path: Path) -> None:
    """On another chain id (as any shared or production chain has) the demo never moves the clock: it says so,
    and the core firm repays before maturity. Nor does it hand out test ether there: the financier's Safe is paid
    for by the key given as SCF_DEMO_SAFE_PAYER_KEY, without which the demo stops before it onboards anyone."""
    operator, payer, regulator = Account.create(), Account.create(), Account.create()
    env = {
        **environment(tmp_path / "data", free_port(), free_port()),
        "SCF_CHAIN_ID": "31338",
        "SCF_OPERATOR_KEY": operator.key.hex(),
        # off the local chain the first regulator is named, and its key is not the service's
        "SCF_REGULATOR_ADDRESS": regulator.address,
        # off the local chain the service takes only real secrets (random bytes, as `scf secrets new` prints)
        "SCF_MASTER_SECRET": secrets.token_hex(32),
        "SCF_KEY_SALT": secrets.token_hex(32),
    }
    log = tmp_path / "serve.log"
    try:
        chain = subprocess.run([SCF, "chain", "start"], env=env, capture_output=True, timeout=60, cwd=PROJECT_ROOT)
        assert chain.returncode == 0, chain.stderr
        for account in (operator, payer):
            rpc(env["SCF_RPC_URL"], "anvil_setBalance", [account.address, hex(10**22)])
        with serving(env, log):
            found = KEY.search(log.read_text())
            assert found, log.read_text()
            headers = {"Authorization": f"Bearer {found.group(1)}"}
            base = f"http://127.0.0.1:{env['SCF_API_PORT']}"
            command = [SCF, "demo", "--api-key", found.group(1)]
            onboarded = httpx.get(f"{base}/participants", headers=headers).json()["total"]
            unpaid = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=PROJECT_ROOT)
            assert unpaid.returncode == 1, unpaid.stdout + unpaid.stderr
            assert "give one as --safe-payer-key (or SCF_DEMO_SAFE_PAYER_KEY)" in unpaid.stdout + unpaid.stderr
            assert httpx.get(f"{base}/participants", headers=headers).json()["total"] == onboarded

            started = rpc(env["SCF_RPC_URL"], "eth_getBlockByNumber", ["latest", False])
            demo = subprocess.run(
                command,
                env={**env, "SCF_DEMO_SAFE_PAYER_KEY": payer.key.hex()},
                capture_output=True,
                text=True,
                timeout=600,
                cwd=PROJECT_ROOT,
            )
            assert demo.returncode == 0, demo.stdout + demo.stderr
            ended = rpc(env["SCF_RPC_URL"], "eth_getBlockByNumber", ["latest", False])
    finally:
        subprocess.run([SCF, "chain", "stop"], env=env, capture_output=True, timeout=60, cwd=PROJECT_ROOT)
    assert "not a local development chain: the demo leaves its clock alone" in demo.stdout
    assert "moved the chain's clock" not in demo.stdout and "will move" not in demo.stdout
    assert "before maturity" in demo.stdout and "interest = " in demo.stdout and "demo complete" in demo.stdout
    # The chain's clock ran as the wall clock did: minutes at most, not 91 days.
    assert int(ended["timestamp"], 16) - int(started["timestamp"], 16) < 600
    # The payer's key paid for the Safe; no key was given test ether.
    assert f"gas paid by the key of --safe-payer-key, {payer.address}" in demo.stdout
    assert "anvil_setBalance" not in demo.stdout
    assert demo.stdout.count("refused, 403 SignedActsInvalidSignature") == 3
    # No regulator's key here: onboarding one is the registry's refusal, by name; the operator reads the events.
    assert "403 RegistryRoleNotOperatorManaged" in demo.stdout and "the operator sees" in demo.stdout
