"""The indexer in a process of its own (``SCF_INDEXER=process``), as real processes: ``scf serve`` on a real anvil,
its indexer a child process that it starts, starts again when it dies, and that ends with it.

Read-your-writes holds across the two processes: an operation answered confirmed is in the lists of the next
request, because the service answers only once the child reports the operation's block indexed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger.identifiers import synthetic_credit_code
from ledger.index.process import IndexerConfig, IndexerProcess
from ledger.migrations import upgrade
from ledger.tooling.chain import Anvil
from tests.api.conftest import postgres_schema
from tests.e2e.conftest import free_port
from tests.e2e.processes import Served, alive, base_environment, serving

WAIT = {"Prefer": "wait=30"}


@pytest.fixture(params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    """``scf serve`` with the indexer in a process of its own, on the SQLite default or a fresh PostgreSQL schema
    (skipped, saying why, where no server answers)."""
    with contextlib.ExitStack() as stack:
        database = {}
        if request.param == "postgresql":
            database["SCF_DATABASE_URL"] = stack.enter_context(postgres_schema("scf_indexer_process"))
        anvil = Anvil(tmp_path / "chain", port=free_port(), block_time=0.5)
        anvil.start()
        stack.callback(anvil.kill)
        env = base_environment(tmp_path / "data", SCF_RPC_URL=anvil.rpc_url, SCF_INDEXER="process", **database)
        yield stack.enter_context(serving(env, tmp_path))


def _parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _health(served: Served) -> dict[str, Any]:
    answer = httpx.get(f"{served.base_url}/health", timeout=10)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _deposit_then_list(served: Served, operator: dict[str, str], supplier: str, amount: int) -> None:
    """A deposit answered confirmed, then the deposit is in the very next read of the index."""
    created = httpx.post(
        f"{served.base_url}/deposits",
        headers={**operator, **WAIT},
        json={"participant": supplier, "amount": amount, "bank_reference": f"indexer process {amount}"},
        timeout=60,
    )
    assert created.status_code == 200 and created.json()["status"] == "confirmed", created.text
    events = httpx.get(f"{served.base_url}/events", headers=operator, params={"limit": 500}, timeout=10)
    assert events.status_code == 200, events.text
    assert amount in [e["fields"].get("amount") for e in events.json()["items"]], events.text


def _onboard(served: Served, operator: dict[str, str]) -> tuple[dict[str, str], str]:
    """A settlement agent (who deposits) and a supplier (who is credited)."""
    created = []
    cast = (("Indexer process desk", "settlement-agent"), ("Indexer process supplier", "supplier"))
    for seed, (name, role) in enumerate(cast):
        body = {"name": name, "credit_code": synthetic_credit_code(9_001 + seed), "roles": [role]}
        answer = httpx.post(f"{served.base_url}/participants", headers={**operator, **WAIT}, json=body, timeout=60)
        assert answer.status_code == 201, answer.text
        created.append(answer.json())
    return served.headers(created[0]["api_key"]), created[1]["participant"]["id"]


def test_with_the_indexer_in_its_own_process_a_confirmed_operation_is_in_the_next_read_and_a_dead_indexer_is_replaced(
    served: Served,
) -> None:
    operator = served.headers(served.operator_key())
    health = _health(served)
    child = health["indexer_process"]
    assert isinstance(child, int) and child != health["process"] and alive(child), health
    assert _parent_of(child) == health["process"], "the indexer is the service's own child"
    agent, supplier = _onboard(served, operator)
    _deposit_then_list(served, agent, supplier, 101)

    os.kill(child, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while (health := _health(served))["indexer_restarts"] < 1:
        assert time.monotonic() < deadline, f"the dead indexer process was not replaced: {health}"
        time.sleep(0.2)
    replacement = health["indexer_process"]
    assert replacement != child and alive(replacement), health
    _deposit_then_list(served, agent, supplier, 102)  # the new process resumed from the index's checkpoint
    assert "ended (exit code -9): starting another" in served.stderr.read_text() + served.stdout.read_text()


def test_the_indexer_process_ends_with_the_service_however_the_service_ends(served: Served) -> None:
    health = _health(served)
    child = health["indexer_process"]
    assert served.process is not None and alive(child)
    served.process.kill()  # no clean stop: the child sees its pipe close
    served.process.wait(30)
    deadline = time.monotonic() + 30
    while alive(child):
        assert time.monotonic() < deadline, "the indexer process outlived the service it indexed for"
        time.sleep(0.1)


def test_a_frozen_indexer_process_never_blocks_the_service_that_pokes_it(tmp_path: Path) -> None:
    """A child that stops reading (stopped, swapped out, stuck) fills its pipe; the service's pokes, made on its
    event loop, are then dropped instead of blocking it, and the child catches up when it runs again."""
    anvil = Anvil(tmp_path / "chain", port=free_port(), block_time=0.2)
    anvil.start()
    url = f"sqlite:///{tmp_path / 'index.sqlite3'}"
    upgrade(url)
    reported: list[int] = []
    config = IndexerConfig(
        database_url=url,
        rpc_url=anvil.rpc_url,
        chain_id=anvil.chain_id,
        rpc_timeout=10,
        contracts={},
        abis={},
        start_block=0,
        page_size=2_000,
        confirmations=0,
    )
    process = IndexerProcess(config, reported.append)
    try:
        process.start()
        deadline = time.monotonic() + 60
        while not reported:
            assert time.monotonic() < deadline, "the indexer process reported nothing"
            time.sleep(0.1)
        assert process.pid is not None
        os.kill(process.pid, signal.SIGSTOP)
        pokes = threading.Thread(target=lambda: [process.poke() for _ in range(100_000)])  # a pipe holds ~13,000
        pokes.start()
        pokes.join(10)
        blocked = pokes.is_alive()
        os.kill(process.pid, signal.SIGCONT)  # (which also frees pokes that blocked)
        pokes.join(30)
        assert not blocked, "the pokes blocked on a child that does not read"
        before, deadline = reported[-1], time.monotonic() + 30
        while reported[-1] <= before:
            assert time.monotonic() < deadline, "the indexer did not go on once it ran again"
            time.sleep(0.1)
        assert process.restarts == 0
    finally:
        process.stop(timeout=30)
        anvil.kill()
