"""Several service processes on one PostgreSQL database (``SCF_WORKERS``): one of them owns the pipeline and
signs, the others hand it their submissions; killed mid-load, the owner is replaced and nothing is lost or sent
twice.

A real ``scf serve`` with three workers on one port, a real anvil (0.2 s blocks) and the local PostgreSQL (a
schema of its own; the test skips, saying why, where no server answers). Every deposit has a distinct amount,
so the chain's own ``DepositMinted`` events show whether each ran once, twice or never.
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_utils import keccak

from ledger.deployment import dev_regulator
from ledger.node import dev_key
from ledger.tooling.chain import Anvil
from tests.api.conftest import NO_POSTGRES, postgres_answers, postgres_schema
from tests.e2e.conftest import free_port
from tests.e2e.processes import base_environment, one_error_line, run_scf, serving

WORKERS = 3
DEPOSITS = 240
DEPOSIT_MINTED = "0x" + keccak(text="DepositMinted(address,uint256,bytes32,address)").hex()


def _health(base_url: str) -> dict[str, Any] | None:
    """``/health`` over a new connection (so the kernel may hand it to any worker), or None when refused."""
    try:
        response = httpx.get(f"{base_url}/health", timeout=5)
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None


def _workers_seen(base_url: str, wanted: int, timeout: float = 90) -> dict[int, bool]:
    """The workers' process ids → whether each owns the pipeline, once ``wanted`` of them have answered."""
    seen: dict[int, bool] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        health = _health(base_url)
        if health is not None:
            seen[health["process"]] = health["pipeline_owner"]
            if len(seen) >= wanted:
                return seen
        time.sleep(0.02)
    raise AssertionError(f"only {seen} of {wanted} workers answered within {timeout} s")


def _owner(base_url: str, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        health = _health(base_url)
        if health is not None and health["pipeline_owner"]:
            return int(health["process"])
        time.sleep(0.02)
    raise AssertionError(f"no worker owned the pipeline within {timeout} s")


def _rpc(url: str, method: str, params: list[Any]) -> Any:
    answer = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, timeout=10).json()
    return answer["result"]


def test_workers_share_one_database_with_one_signer_and_the_owners_kill_loses_nothing_and_sends_nothing_twice(
    tmp_path: Path,
) -> None:
    if not postgres_answers():
        pytest.skip(NO_POSTGRES)
    anvil = Anvil(tmp_path / "chain", port=free_port(), block_time=0.2)
    anvil.start()
    try:
        with postgres_schema("scf_workers") as url:
            env = base_environment(
                tmp_path / "service",
                SCF_RPC_URL=anvil.rpc_url,
                SCF_DATABASE_URL=url,
                SCF_WORKERS=str(WORKERS),
                SCF_CONFIRMATIONS="0",
            )
            with serving(env, tmp_path) as served:
                base = served.base_url
                workers = _workers_seen(base, WORKERS)
                assert sum(workers.values()) == 1, f"exactly one owner among the workers: {workers}"
                operator = served.headers(served.operator_key())

                def onboard(name: str, role: str) -> dict[str, str]:
                    body = {"name": name, "credit_code": _credit_code(name), "roles": [role]}
                    response = httpx.post(
                        f"{base}/participants", json=body, headers={**operator, "Prefer": "wait=30"}, timeout=40
                    )
                    assert response.status_code == 201, response.text
                    return {
                        "Authorization": f"Bearer {response.json()['api_key']}",
                        "id": response.json()["participant"]["id"],
                    }

                agent = onboard("Workers settlement desk", "settlement-agent")
                depositor = onboard("Workers depositor", "supplier")
                agent_headers = {"Authorization": agent["Authorization"]}

                def deposit(i: int) -> str:
                    """POST one deposit, again under the same key after a refused connection (as a client does),
                    until it is answered; its operation id."""
                    body = {"participant": depositor["id"], "amount": i + 1, "bank_reference": f"workers {i}"}
                    headers = {**agent_headers, "Idempotency-Key": f"workers-deposit-{i}"}
                    deadline = time.monotonic() + 120
                    while True:
                        try:
                            response = httpx.post(f"{base}/deposits", json=body, headers=headers, timeout=60)
                        except httpx.HTTPError:
                            response = None
                        if response is not None and response.status_code in (200, 202):
                            return str(response.json()["operation_id"])
                        assert time.monotonic() < deadline, None if response is None else response.text
                        time.sleep(0.1)

                killed = _owner(base)
                with concurrent.futures.ThreadPoolExecutor(16) as pool:
                    futures = [pool.submit(deposit, i) for i in range(DEPOSITS)]
                    while sum(f.done() for f in futures) < DEPOSITS // 3:
                        time.sleep(0.02)
                    os.kill(killed, signal.SIGKILL)  # mid-load: signed, journaled, sent, queued, all at once
                    operations = [f.result() for f in futures]

                # another worker took over, and the supervisor started a worker in the killed one's place
                successor = _owner(base)
                assert successor != killed
                assert len(_workers_seen(base, WORKERS)) == WORKERS
                # the workers that did not sign handed their deposits to the one that did
                handed_off: dict[int, int] = {}
                deadline = time.monotonic() + 30
                while len(handed_off) < WORKERS and time.monotonic() < deadline:
                    health = _health(base)
                    if health is not None:
                        handed_off[health["process"]] = health["handed_off"]
                assert sum(handed_off.values()) > 0, handed_off

                for operation in operations:
                    response = httpx.get(
                        f"{base}/operations/{operation}", headers={**agent_headers, "Prefer": "wait=30"}, timeout=40
                    )
                    assert response.status_code == 200, response.text
                    assert response.json()["status"] == "confirmed", response.json()

                logs = _rpc(
                    anvil.rpc_url,
                    "eth_getLogs",
                    [{"fromBlock": "0x0", "toBlock": "latest", "topics": [DEPOSIT_MINTED]}],
                )
                minted = sorted(int(log["data"][2:66], 16) for log in logs)
                assert minted == list(range(1, DEPOSITS + 1)), "every deposit ran exactly once"
                balance = httpx.get(
                    f"{base}/balances/me", headers={"Authorization": depositor["Authorization"]}, timeout=10
                )
                assert balance.json()["balance"] == DEPOSITS * (DEPOSITS + 1) // 2
                # the queue is empty: nothing waits for an owner
                from sqlalchemy import create_engine, text

                engine = create_engine(url)
                with engine.connect() as connection:
                    assert connection.execute(text("SELECT count(*) FROM submission_queue")).scalar() == 0
                    gaps = connection.execute(
                        text(
                            "SELECT sender, count(*), min(nonce), max(nonce) FROM journal_transactions "
                            "WHERE NOT superseded GROUP BY sender"
                        )
                    ).all()
                engine.dispose()
                for sender, count, lowest, highest in gaps:
                    assert highest - lowest + 1 == count, f"{sender}: nonces {lowest}..{highest} for {count} rows"
    finally:
        anvil.stop()


def _credit_code(name: str) -> str:
    from ledger.identifiers import synthetic_credit_code

    return synthetic_credit_code(int.from_bytes(keccak(text=name)[:3], "big") + 10)


def test_a_worker_that_cannot_start_stops_them_all_with_one_line_naming_the_setting(tmp_path: Path) -> None:
    if not postgres_answers():
        pytest.skip(NO_POSTGRES)
    with postgres_schema("scf_workers") as url:
        env = base_environment(
            tmp_path / "service",
            SCF_RPC_URL=f"http://127.0.0.1:{free_port()}",  # no node answers there
            SCF_DATABASE_URL=url,
            SCF_WORKERS="2",
            # stated, so that no log line says it is the default
            SCF_OPERATOR_KEY="0x" + dev_key(0).hex(),
            SCF_REGULATOR_ADDRESS=dev_regulator().address,
        )
        one_error_line(run_scf("serve", "--no-chain", env=env, cwd=tmp_path), "no JSON-RPC node answers", "SCF_RPC_URL")
