"""Crashes in the middle of financing flows: ``kill -9`` of anvil, and of the service (``scf serve``, a real
process), at random moments, then a restart.

Clients keep running flows (invoice → confirm → financing request → approve → fund) through it all, every
POST with an ``Idempotency-Key``: a request whose answer was lost to a crash is sent again with the same key,
which answers with the operation it started, if it started one. Afterwards:

- every operation the service accepted ended exactly once: confirmed, or failed with a reason;
- nothing seen confirmed was lost or changed: its transaction is in the chain, and the chain holds one event per
  confirmed operation of each kind and no other (so nothing ran twice; the journal re-sent what anvil lost). The
  service reports an operation confirmed only once its block is 3 s deep (``SCF_CONFIRMATIONS``), deeper than a
  crash of anvil reaches back, so a client never builds on a result that a crash changes;
- the service's live index equals an index rebuilt from block 0 into a fresh database.

Fast: 2 kills of each. ``make soak``: 20 of each.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from web3 import Web3

from ledger.compiler import compile_contracts
from ledger.db import make_engine, make_sessionmaker
from ledger.deployment import bind_contracts, load_deployment
from ledger.index import Indexer, snapshot_tables
from ledger.migrations import upgrade
from ledger.node import connect
from ledger.settings import PROJECT_ROOT
from ledger.tooling.chain import Anvil, find_anvil
from tests.e2e.conftest import free_port

try:
    find_anvil()
except Exception as exc:  # pragma: no cover - depends on `npm ci`
    pytest.skip(f"anvil is not installed: {exc}", allow_module_level=True)

SCF = str(Path(sys.executable).parent / "scf")
KEY = re.compile(r"(scf_[A-Za-z0-9_-]{43})")
FINAL = {"confirmed", "failed", "replaced", "dropped"}
BLOCK_TIME = 0.25
CONFIRMATIONS = 12  # 3 s of blocks
AMOUNT = 5_000_000
WORKERS = 4
EVENTS = {
    "invoice.register": "InvoiceRegistered",
    "invoice.confirm": "InvoiceConfirmed",
    "financing.request": "FinancingRequested",
    "financing.approve": "FinancingApproved",
    "financing.fund": "FinancingFunded",
}


class ServiceProcess:
    """``scf serve --no-chain`` against the test's own anvil, restartable, killable with SIGKILL."""

    def __init__(self, data_dir: Path, anvil: Anvil, **settings: str) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir / "serve.log"
        self.env = {
            **os.environ,
            "SCF_DATA_DIR": str(data_dir),
            "SCF_DEPLOYMENTS_DIR": str(data_dir / "deployments"),
            "SCF_DATABASE_URL": f"sqlite:///{data_dir / 'ledger.sqlite3'}",
            "SCF_API_PORT": str(self.port),
            "SCF_RPC_URL": anvil.rpc_url,
            "SCF_CHAIN_ID": str(anvil.chain_id),
            "SCF_RPC_TIMEOUT": "3",
            # Report (and index) an operation confirmed only once its block is 3 s deep: a kill -9 of anvil loses
            # up to about a second of blocks (its dump interval, once more when the last dump was inconsistent),
            # and a client must never build on a result a crash can still change (README, SCF_CONFIRMATIONS).
            "SCF_CONFIRMATIONS": str(CONFIRMATIONS),
            **settings,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [SCF, "serve", "--no-chain"], env=self.env, stdout=out, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise AssertionError(f"the service did not come up:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)

    def operator_key(self) -> str:
        found = KEY.search(self.log.read_text())
        assert found, self.log.read_text()
        return found.group(1)


@dataclass
class Record:
    """What the clients saw."""

    accepted: dict[str, str] = field(default_factory=dict)  # operation id → kind
    seen_confirmed: dict[str, str] = field(default_factory=dict)  # operation id → tx hash, when first seen
    final: dict[str, dict[str, Any]] = field(default_factory=dict)
    retries: int = 0
    rebuilt: int = 0  # steps built again after the chain went back under them
    refused: list[str] = field(default_factory=list)  # steps the contracts refused before sending (kind: error)


@dataclass
class Step:
    """A confirmed step of a flow: its operation, who made it, and its result as last read."""

    operation_id: str
    who: str
    result: dict[str, Any]


class Clients:
    """Financing flows over HTTP that ride out crashes: a lost answer is asked again with the same key."""

    def __init__(self, base_url: str, keys: dict[str, str], addresses: dict[str, str], due: str, tag: str) -> None:
        self.base_url, self.keys, self.addresses, self.due, self.tag = base_url, keys, addresses, due, tag
        self.record = Record()
        self.stop = asyncio.Event()

    async def _ask(self, http: httpx.AsyncClient, method: str, path: str, who: str, **kwargs: Any) -> httpx.Response:
        deadline = time.monotonic() + 300
        while True:
            try:
                answer = await http.request(method, path, **kwargs)
                retry = answer.status_code == 503 or (
                    answer.status_code == 409 and "idempotency-in-progress" in answer.text
                )
                if not retry:
                    return answer
            except httpx.TransportError:
                pass
            self.record.retries += 1
            assert time.monotonic() < deadline, f"{method} {path} as {who}: no answer for 300 s"
            await asyncio.sleep(0.3)

    async def operate(
        self,
        http: httpx.AsyncClient,
        kind: str,
        who: str,
        key: str,
        build: Callable[[dict[str, Any]], tuple[str, Any]],
        previous: Step | None = None,
    ) -> Step | None:
        """One step of a flow: ``build(previous result)`` gives the path and body. A 404 for what the previous
        step created means the chain went back (anvil lost its last second of blocks) and the pipeline is
        sending that step again; once it is confirmed again, its result (the ids, which may differ when the
        re-sent transactions are mined in another order) builds this step anew. The step's own key is unused
        so far: a refusal before the operation starts is not remembered under it."""
        headers = {"Authorization": f"Bearer {self.keys[who]}", "Idempotency-Key": key}
        deadline = time.monotonic() + 300
        while True:
            path, body = build(previous.result if previous is not None else {})
            answer = await self._ask(http, "POST", path, who, json=body, headers=headers)
            if answer.status_code != 404 or previous is None:
                break
            assert time.monotonic() < deadline, f"{kind}: still 404 after 300 s: {answer.text}"
            self.record.rebuilt += 1
            result = await self.follow(http, previous.operation_id, previous.who)
            if result is None:
                return None
            if result == previous.result:
                # The previous step itself was built from an id that changed under it (it acted, legitimately
                # for its caller, on another flow's object): this flow cannot go on; it ends with the reason.
                self.record.refused.append(f"{kind}: {answer.json()['type']} (an id changed by a rollback)")
                return None
            previous.result = result
        if answer.status_code in (409, 422) and answer.json().get("error"):
            # Refused by the contracts before anything was sent: failed with a reason. After the chain went
            # back, operations sent again may be mined in another order and get other ids, so a step built from
            # an id read before the rollback can name another flow's object (e.g. a request already approved).
            self.record.refused.append(f"{kind}: {answer.json()['error']}")
            return None
        assert answer.status_code in (200, 202), f"{kind}: {answer.status_code} {answer.text}"
        operation_id = answer.json()["operation_id"]
        assert self.record.accepted.setdefault(operation_id, kind) == kind
        result = await self.follow(http, operation_id, who)
        return None if result is None else Step(operation_id, who, result)

    async def follow(self, http: httpx.AsyncClient, operation_id: str, who: str) -> Any:
        headers = {"Authorization": f"Bearer {self.keys[who]}", "Prefer": "wait=10"}
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            answer = await self._ask(http, "GET", f"/operations/{operation_id}", who, headers=headers)
            assert answer.status_code in (200, 202), answer.text
            view = answer.json()
            if view["status"] == "confirmed":
                self.record.seen_confirmed.setdefault(operation_id, view["tx_hash"])
            if view["status"] in FINAL:
                self.record.final[operation_id] = view
                return view["result"] if view["status"] == "confirmed" else None
        raise AssertionError(f"operation {operation_id} did not end in 300 s")

    async def worker(self, number: int) -> None:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=30) as http:
            flow = 0
            while not self.stop.is_set():
                await self.flow(http, f"{self.tag}-{number}-{flow}", number, flow)
                flow += 1

    async def flow(self, http: httpx.AsyncClient, key: str, number: int, flow: int) -> None:
        supplier = f"supplier-{number}"
        invoice = {
            "buyer": self.addresses["core"],
            "amount": AMOUNT + number * 10_000 + flow,
            "currency": "CNY",
            "invoice_number": f"{abs(hash(self.tag)) % 10**12:012d}{number:03d}{flow:05d}",
            "due_date": self.due,
        }
        registered = await self.operate(
            http, "invoice.register", supplier, f"{key}-register", lambda _: ("/invoices", invoice)
        )
        if registered is None:
            return
        confirmed = await self.operate(
            http,
            "invoice.confirm",
            "core",
            f"{key}-confirm",
            lambda made: (f"/invoices/{made['invoice_id']}/confirm", None),
            registered,
        )
        if confirmed is None:
            return
        requested = await self.operate(
            http,
            "financing.request",
            supplier,
            f"{key}-request",
            lambda made: (
                "/financing-requests",
                {
                    "piece_id": made["piece_id"],
                    "amount": invoice["amount"],
                    "financier": self.addresses["financier"],
                    "max_discount_rate_bps": 450,
                    "max_fee": 0,
                },
            ),
            confirmed,
        )
        if requested is None:
            return
        terms = {"discount_rate_bps": 450, "fee": 0, "day_count_basis": 365}
        approved = await self.operate(
            http,
            "financing.approve",
            "financier",
            f"{key}-approve",
            lambda made: (f"/financing-requests/{made['request_id']}/approve", terms),
            requested,
        )
        if approved is not None:
            await self.operate(
                http,
                "financing.fund",
                "financier",
                f"{key}-fund",
                lambda made: (f"/financing-requests/{requested.result['request_id']}/fund", None),
                approved,
            )


@dataclass
class Stage:
    data_dir: Path
    anvil: Anvil
    service: ServiceProcess
    keys: dict[str, str]
    addresses: dict[str, str]
    due: str


@pytest.fixture
def stage(tmp_path: Path) -> Iterator[Stage]:
    with staged(tmp_path) as ready:
        yield ready


def kill_and_restart(stage: Stage, target: str, chance: random.Random) -> None:
    """``kill -9`` the stage's anvil or service, wait a random moment, and start it again on its state."""
    if target == "anvil":
        stage.anvil.kill()
        time.sleep(chance.uniform(0.0, 1.5))
        stage.anvil.start()
    else:
        stage.service.kill()
        time.sleep(chance.uniform(0.0, 1.0))
        stage.service.start()


@contextlib.contextmanager
def staged(tmp_path: Path, **settings: str) -> Iterator[Stage]:
    """anvil (state on disk every second), the service (with ``settings``, ``SCF_*`` variables), and the cast:
    a core firm with a credit line, a financier with cash, and one supplier per client."""
    anvil = Anvil(tmp_path / "chain-node", port=free_port(), block_time=BLOCK_TIME)
    anvil.start()
    service = ServiceProcess(tmp_path, anvil, **settings)
    try:
        service.start()
        keys = {"operator": service.operator_key()}
        addresses: dict[str, str] = {}
        with httpx.Client(base_url=service.base_url, timeout=60) as http:
            wait = {"Prefer": "wait=30"}
            cast = [("agent", "settlement-agent"), ("core", "core-firm"), ("financier", "financier")]
            cast += [(f"supplier-{n}", "supplier") for n in range(WORKERS)]
            for number, (name, role) in enumerate(cast):
                answer = http.post(
                    "/participants",
                    json={"name": name, "credit_code": _credit_code(number), "roles": [role]},
                    headers={"Authorization": f"Bearer {keys['operator']}", **wait},
                )
                assert answer.status_code == 201 and answer.json()["status"] == "confirmed", answer.text
                keys[name], addresses[name] = answer.json()["api_key"], answer.json()["participant"]["id"]
            money = {"participant": addresses["financier"], "amount": 10**14, "bank_reference": "faults"}
            answer = http.post("/deposits", json=money, headers={"Authorization": f"Bearer {keys['agent']}", **wait})
            assert answer.status_code == 200, answer.text
            line = {"core_firm": addresses["core"], "limit": 10**14}
            answer = http.post(
                "/credit-lines", json=line, headers={"Authorization": f"Bearer {keys['operator']}", **wait}
            )
            assert answer.status_code == 200, answer.text
        now = int(connect(anvil.rpc_url, anvil.chain_id).eth.get_block("latest")["timestamp"])
        due = (datetime.fromtimestamp(now, UTC).date() + timedelta(days=120)).isoformat()
        yield Stage(tmp_path, anvil, service, keys, addresses, due)
    finally:
        service.stop()
        with contextlib.suppress(Exception):
            anvil.kill()


def _credit_code(number: int) -> str:
    from ledger.identifiers import synthetic_credit_code

    return synthetic_credit_code(7_000 + number)


def run_with_faults(stage: Stage, target: str, kills: int, seed: int) -> Record:
    """Flows run while ``target`` ("anvil" or "service") is killed ``kills`` times at random moments."""
    chance = random.Random(seed)
    clients = Clients(stage.service.base_url, stage.keys, stage.addresses, stage.due, f"{target}{seed}")

    def crash_and_restart() -> None:
        kill_and_restart(stage, target, chance)

    async def chaos() -> None:
        workers = [asyncio.create_task(clients.worker(n)) for n in range(WORKERS)]
        try:
            await asyncio.sleep(2.0)
            for _ in range(kills):
                # Often enough to hit operations at every stage (sent, mined, a block or two deep), seldom enough
                # that flows get through the 3 s confirmation window between crashes.
                await asyncio.sleep(chance.uniform(0.5, 6.0))
                await asyncio.to_thread(crash_and_restart)
            await asyncio.sleep(2.0)
        finally:
            clients.stop.set()
            await asyncio.gather(*workers)
        # Every accepted operation once more, after the last restart: its outcome now.
        async with httpx.AsyncClient(base_url=stage.service.base_url, timeout=30) as http:
            for operation_id in list(clients.record.accepted):
                await clients.follow(http, operation_id, "operator")  # the operator sees every operation

    asyncio.run(chaos())
    return clients.record


def assert_exactly_once_and_index_rebuilds_equal(stage: Stage, record: Record) -> None:
    statuses = Counter(view["status"] for view in record.final.values())
    print(
        f"\n[faults] {len(record.accepted)} operations accepted: {dict(statuses)}; {record.retries} retries; "
        f"{record.rebuilt} steps rebuilt after a rollback; {len(record.refused)} refused before sending "
        f"{Counter(record.refused).most_common(3)}"
    )
    assert set(record.final) == set(record.accepted)
    for view in record.final.values():
        if view["status"] != "confirmed":
            assert view["error"] and view["error"]["type"].startswith("urn:scf:problem:"), view
    for operation_id, tx_hash in record.seen_confirmed.items():  # nothing confirmed is lost
        final = record.final[operation_id]
        ended = f"{final['kind']} {operation_id} ended {final['status']}: {final['error']}"
        assert final["status"] == "confirmed", ended
        assert record.final[operation_id]["tx_hash"] == tx_hash

    w3 = connect(stage.anvil.rpc_url, stage.anvil.chain_id)
    artifacts = compile_contracts()
    deployment = load_deployment(stage.data_dir / "deployments", stage.anvil.chain_id, w3)
    assert deployment is not None
    contracts = bind_contracts(w3, deployment, artifacts)
    confirmed = {o: v["tx_hash"].lower() for o, v in record.final.items() if v["status"] == "confirmed"}
    for tx_hash in confirmed.values():
        assert w3.eth.get_transaction_receipt(tx_hash)["status"] == 1  # type: ignore[arg-type]
    for kind, event in EVENTS.items():
        logs = getattr(contracts["receivables"].events, event)().get_logs(from_block=0)
        mined = Counter(Web3.to_hex(log["transactionHash"]) for log in logs)
        ours = [confirmed[o] for o, k in record.accepted.items() if k == kind and o in confirmed]
        assert sorted(mined) == sorted(ours), f"{kind}: the chain's events and the confirmed operations differ"
        assert all(count == 1 for count in mined.values())

    # The live index (the service stopped cleanly, then caught up with the head) equals one rebuilt from block 0.
    stage.service.stop()
    live_url = stage.service.env["SCF_DATABASE_URL"]
    addresses = {key: str(c.address) for key, c in contracts.items()}
    abis = {key: c.abi for key, c in contracts.items()}
    live = Indexer(w3, addresses, abis, make_sessionmaker(make_engine(live_url)))
    live.sync_once()
    with live.session_factory() as session:
        live_tables = snapshot_tables(session)
    fresh_url = f"sqlite:///{stage.data_dir / 'rebuilt.sqlite3'}"
    upgrade(fresh_url)
    rebuilt = Indexer(w3, addresses, abis, make_sessionmaker(make_engine(fresh_url)))
    rebuilt.sync_once(to_block=live_tables["blocks"][-1]["number"])
    with rebuilt.session_factory() as session:
        assert snapshot_tables(session) == live_tables


@pytest.mark.parametrize("target", ["anvil", "service"])
def test_operations_end_exactly_once_when_a_process_is_killed_mid_flow(stage: Stage, target: str) -> None:
    record = run_with_faults(stage, target, kills=2, seed=int.from_bytes(os.urandom(4), "big"))
    assert record.accepted
    assert_exactly_once_and_index_rebuilds_equal(stage, record)


@pytest.mark.soak
@pytest.mark.parametrize("target", ["anvil", "service"])
def test_operations_end_exactly_once_when_a_process_is_killed_mid_flow_soak(stage: Stage, target: str) -> None:
    record = run_with_faults(stage, target, kills=20, seed=int.from_bytes(os.urandom(4), "big"))
    assert record.accepted
    assert_exactly_once_and_index_rebuilds_equal(stage, record)
