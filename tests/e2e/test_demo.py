"""The README's two commands end to end: ``scf serve`` (a real process: anvil started, contracts deployed,
indexer, API on a free port) and ``scf demo`` against it over HTTP; then a restart of the service keeps
every participant and balance."""

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

import httpx
import pytest
from eth_account import Account

from ledger.settings import PROJECT_ROOT
from ledger.tooling.chain import find_anvil
from tests.e2e.conftest import free_port

try:
    find_anvil()
except Exception as exc:  # pragma: no cover - depends on `npm ci`
    pytest.skip(f"anvil is not installed: {exc}", allow_module_level=True)

SCF = str(Path(sys.executable).parent / "scf")
KEY = re.compile(r"(scf_[A-Za-z0-9_-]{43})")


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
            headers = {"Authorization": f"Bearer {key}"}
            base = f"http://127.0.0.1:{env['SCF_API_PORT']}"
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


def test_the_demo_leaves_the_clock_of_a_chain_that_is_not_a_local_dev_chain_alone(tmp_path: Path) -> None:
    """On another chain id (as any shared or production chain has) the demo never moves the clock: it says so,
    and the core firm repays before maturity."""
    operator = Account.create()
    env = {
        **environment(tmp_path / "data", free_port(), free_port()),
        "SCF_CHAIN_ID": "31338",
        "SCF_OPERATOR_KEY": operator.key.hex(),
        # off the local chain the service takes only real secrets (random bytes, as `scf secrets new` prints)
        "SCF_MASTER_SECRET": secrets.token_hex(32),
        "SCF_KEY_SALT": secrets.token_hex(32),
    }
    log = tmp_path / "serve.log"
    try:
        chain = subprocess.run([SCF, "chain", "start"], env=env, capture_output=True, timeout=60, cwd=PROJECT_ROOT)
        assert chain.returncode == 0, chain.stderr
        funded = httpx.post(
            env["SCF_RPC_URL"],
            json={"jsonrpc": "2.0", "id": 1, "method": "anvil_setBalance", "params": [operator.address, hex(10**22)]},
        ).json()
        assert "error" not in funded, funded
        with serving(env, log):
            found = KEY.search(log.read_text())
            assert found, log.read_text()
            started = httpx.post(
                env["SCF_RPC_URL"],
                json={"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": ["latest", False]},
            ).json()["result"]
            demo = subprocess.run(
                [SCF, "demo", "--api-key", found.group(1)],
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
                cwd=PROJECT_ROOT,
            )
            assert demo.returncode == 0, demo.stdout + demo.stderr
            ended = httpx.post(
                env["SCF_RPC_URL"],
                json={"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": ["latest", False]},
            ).json()["result"]
    finally:
        subprocess.run([SCF, "chain", "stop"], env=env, capture_output=True, timeout=60, cwd=PROJECT_ROOT)
    assert "not a local development chain: the demo leaves its clock alone" in demo.stdout
    assert "moved the chain's clock" not in demo.stdout and "will move" not in demo.stdout
    assert "before maturity" in demo.stdout and "interest = " in demo.stdout and "demo complete" in demo.stdout
    # The chain's clock ran as the wall clock did: minutes at most, not 91 days.
    assert int(ended["timestamp"], 16) - int(started["timestamp"], 16) < 600
