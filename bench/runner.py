"""One benchmark run, start to finish: see :mod:`bench`. :func:`run_benchmarks` returns the results
(a JSON-able dict) and :func:`bench.report.write_results` writes them out."""

from __future__ import annotations

import asyncio
import os
import platform
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from api import gc_policy
from bench.cast import BenchCast, onboard_cast, signed_split_calls, split_calls
from bench.gas import measure_gas
from bench.load import BenchmarkFailed, Call, gas_used, naive_rate, node_ceiling, pipeline_rate
from bench.openloop import Lane, Step, prepare_lanes, run_open_loop
from bench.openloop import cpu_seconds as openloop_cpu_seconds
from bench.portal import TARGET_SECONDS, TARGET_SIZE, bearer_key, measure_portal_async
from bench.rest import STORY_STEPS, Member, RestLoad, ServiceProcess, percentile
from ledger.client import LedgerClient
from ledger.compiler import compile_contracts
from ledger.db import make_engine, make_sessionmaker
from ledger.deployment import bind_contracts, ensure_deployment, operator_account
from ledger.errors import ErrorDecoder
from ledger.index import Indexer
from ledger.index.models import PieceRow
from ledger.migrations import upgrade
from ledger.node import connect
from ledger.pipeline import Pipeline
from ledger.pipeline.rpc import BlockingJsonRpc
from ledger.tooling.chain import Anvil

Say = Callable[[str], None]

P99_ALLOWANCE = 0.25
"""Seconds over one block interval that the p99 request-to-confirmation latency may take at half load."""

FLAT_TOLERANCE = 0.25
"""Growth of a latency from the smallest to the largest size still counted as flat (noise), as a fraction."""

SCALING_LISTS = {
    "receivables": "/receivables?size=50&total=false",
    "invoices": "/invoices?size=50&total=false",
}
"""The list requests the scaling phase times: the first page of cursor paging (no ``after``, no count)."""


@dataclass(frozen=True)
class BenchConfig:
    """How much each benchmark does."""

    mode: str
    holders: int
    ceiling_ops: int
    pipeline_ops: int
    naive_seconds: float
    rest_workers: int
    rest_lanes: int
    rest_seconds: float
    half_load_seconds: float
    list_requests: int
    scale_sizes: tuple[int, ...]
    scale_ops: int
    open_loop_rates: tuple[float, ...] = (20.0, 60.0)
    """Requests a second offered by the open-loop generator (:mod:`bench.openloop`), one step each."""
    open_loop_seconds: float = 4.0
    open_loop_burst: tuple[float, float] = (500.0, 1.0)
    """A last step of (rate, seconds): that many requests at once, to hold them in flight together."""
    open_loop_batch: int = 20
    """Operations a ``POST /batch`` in the open loop's batch steps."""
    open_loop_batch_rates: tuple[float, ...] = (60.0, 200.0)
    """Operations a second offered in ``POST /batch`` requests of ``open_loop_batch``, one step each."""
    get_requests: int = 200
    """``GET /operations/{id}`` requests (8 in flight) over which the service's CPU per GET by id is measured."""
    open_loop_half_seconds: float = 4.0
    """The last two steps offer half the best single and half the best batch rate for this long: the latency at
    half load of each way."""
    portal_loads: int = 5
    """Fresh loads of each portal list page at each scaling size (see :mod:`bench.portal`)."""
    rounds: int = 1
    """Rounds of node ceiling then pipeline, alternated; the figures are their medians (the node's rate drifts as
    its state grows, and one round of each, minutes apart, would measure the drift as much as the pipeline)."""
    block_time: float = 1.0
    block_gas_limit: int = 1_000_000_000


QUICK = BenchConfig(
    mode="quick",
    holders=4,
    ceiling_ops=600,
    pipeline_ops=600,
    naive_seconds=4,
    rest_workers=12,
    rest_lanes=4,
    rest_seconds=10,
    half_load_seconds=6,
    list_requests=10,
    scale_sizes=(100, 1_000),
    scale_ops=4,
)

FULL = BenchConfig(
    mode="full",
    holders=8,
    ceiling_ops=8_000,
    pipeline_ops=8_000,
    naive_seconds=20,
    rest_workers=64,
    rest_lanes=16,
    rest_seconds=60,
    half_load_seconds=40,
    list_requests=50,
    scale_sizes=(1_000, 10_000, 100_000),
    scale_ops=20,
    portal_loads=20,
    rounds=3,
    open_loop_rates=(50.0, 100.0, 200.0, 400.0),
    open_loop_seconds=20.0,
    open_loop_burst=(2_500.0, 1.0),
    open_loop_batch=100,
    open_loop_batch_rates=(100.0, 200.0, 400.0),
    open_loop_half_seconds=20.0,
    get_requests=2_000,
)

MODES = {"quick": QUICK, "full": FULL}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def machine_info(anvil: Anvil) -> dict[str, Any]:
    try:
        version = (
            subprocess.run([str(anvil.binary), "--version"], capture_output=True, text=True, timeout=10, check=False)
            .stdout.strip()
            .splitlines()[0]
        )
    except (OSError, IndexError, subprocess.TimeoutExpired):
        version = "anvil (version unknown)"
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "anvil": version,
    }


class _Stage:
    """Progress lines: one when a stage starts, one when it ends with its elapsed time."""

    def __init__(self, say: Say) -> None:
        self.say = say
        self.started = time.perf_counter()

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        began = time.perf_counter()
        self.say(f"[{began - self.started:7.1f}s] {name} ...")
        yield
        self.say(f"[{time.perf_counter() - self.started:7.1f}s] {name}: done in {time.perf_counter() - began:.1f} s")


def _latency_summary(values: list[float]) -> dict[str, float]:
    return {
        "count": len(values),
        "p50": percentile(values, 0.50),
        "p95": percentile(values, 0.95),
        "p99": percentile(values, 0.99),
        "max": max(values) if values else 0.0,
    }


def run_benchmarks(config: BenchConfig, say: Say, workdir: Path | None = None) -> dict[str, Any]:
    """Run every benchmark of ``config`` in ``workdir`` (a temporary folder by default, removed afterwards)."""
    own = workdir is None
    root = Path(tempfile.mkdtemp(prefix="scf-bench-")) if workdir is None else workdir
    try:
        return _run(config, say, root)
    finally:
        if own:
            shutil.rmtree(root, ignore_errors=True)


def _anvil(config: BenchConfig, root: Path) -> Anvil:
    return Anvil(
        root / "node",
        port=free_port(),
        block_time=config.block_time,
        gas_limit=config.block_gas_limit,
        state_interval=None,
        # anvil otherwise keeps a copy of the whole state for each recent block: with the scaling stage's
        # hundreds of thousands of pieces that passed the machine's 24 GiB. The bench reads the latest state only.
        prune_history=True,
    )


def _deploy(
    config: BenchConfig, say: Say, stage: _Stage, anvil: Anvil, root: Path, results: dict[str, Any]
) -> tuple[Any, dict[str, Any], ErrorDecoder, Any, Path, Any]:
    """Start ``anvil``, deploy every contract fresh, make the bench's journal: (w3, contracts, decoder, journal
    sessions, deployments folder, operator account)."""
    with stage(f"anvil ({config.block_time:g} s blocks) and a fresh deployment"):
        anvil.start()
        results["machine"] = machine_info(anvil)
        w3 = connect(anvil.rpc_url, anvil.chain_id)
        artifacts = compile_contracts()
        operator = operator_account(None, anvil.chain_id)
        deployments = root / "deployments"
        deployment = ensure_deployment(
            w3, deployments_dir=deployments, artifacts=artifacts, deployer=operator, fresh=True
        ).deployment
        contracts = bind_contracts(w3, deployment, artifacts)
        decoder = ErrorDecoder.from_artifacts(artifacts)
        journal_url = f"sqlite:///{root / 'bench-journal.sqlite3'}"
        upgrade(journal_url)
        sessions = make_sessionmaker(make_engine(journal_url))
        say(f"    {len(deployment.addresses)} contracts at block {deployment.block_number}")
    return w3, contracts, decoder, sessions, deployments, operator


def _run(config: BenchConfig, say: Say, root: Path) -> dict[str, Any]:
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    clock = time.perf_counter()
    stage = _Stage(say)
    results: dict[str, Any] = {"mode": config.mode, "started_at": started_at, "config": asdict(config)}
    results["block_time"] = config.block_time
    results["block_gas_limit"] = config.block_gas_limit
    results["operation"] = "a receivable piece split-transfer, transferFrom(uint256,address,uint256) of 1 fen"

    with stage("gas per operation (eth-tester, with the reference contracts)"):
        results["gas"] = measure_gas(lambda line: say(f"    {line}"))

    anvil = _anvil(config, root)
    service: ServiceProcess | None = None
    try:
        w3, contracts, decoder, sessions, deployments, operator = _deploy(config, say, stage, anvil, root, results)

        async def with_pipeline(work: Callable[[Pipeline], Any]) -> Any:
            async with Pipeline(anvil.rpc_url, anvil.chain_id, sessions, decoder) as pipeline:
                return await work(pipeline)

        with stage(f"bench cast: {config.holders} holders with a large piece each"):
            cast: BenchCast = asyncio.run(
                with_pipeline(lambda p: onboard_cast(w3, contracts, decoder, p, operator, config.holders))
            )
        receivables = contracts["receivables"]
        # The pipeline runs here under the garbage collector's policy of the service it runs in (api.gc_policy):
        # with CPython's defaults, collections took about a third of this process's CPU in the pipeline stage.
        gc_policy.tune()
        # Every split-transfer of one holder is the same call (signed with the next nonce), so one list serves
        # every round of both.
        calls = split_calls(receivables, cast, max(config.ceiling_ops, config.pipeline_ops + 1))
        estimate = int(w3.eth.estimate_gas({"from": calls[0].sender.address, "to": calls[0].to, "data": calls[0].data}))
        throughput: dict[str, Any] = {"rounds": []}
        for number in range(1, config.rounds + 1):
            of = f" (round {number} of {config.rounds})" if config.rounds > 1 else ""
            with stage(f"node ceiling: {config.ceiling_ops:,} pre-signed split-transfers in JSON-RPC batches{of}"):
                ceiling = node_ceiling(
                    anvil.rpc_url, anvil.chain_id, calls[: config.ceiling_ops], gas=estimate * 13 // 10
                )
                say(
                    f"    {ceiling.count:,} tx in {ceiling.seconds:.2f} s "
                    f"(all sent after {ceiling.sent_seconds:.2f} s): {ceiling.per_second:,.0f} tx/s"
                )
            with stage(f"pipeline: {config.pipeline_ops:,} split-transfers submitted at once{of}"):
                rate, operations = asyncio.run(
                    pipeline_rate(anvil.rpc_url, anvil.chain_id, sessions, decoder, calls[: config.pipeline_ops + 1])
                )
                split_gas = int(statistics.median(gas_used(anvil.rpc_url, [o.tx_hash for o in operations[-50:]])))
                say(
                    f"    {rate.count:,} ops in {rate.seconds:.2f} s (all sent after {rate.sent_seconds:.2f} s): "
                    f"{rate.per_second:,.0f} ops/s "
                    f"({rate.per_second / ceiling.per_second:.2f} × this round's ceiling); {split_gas:,} gas each"
                )
            with stage(
                f"pipeline, signed acts: {config.pipeline_ops:,} split-transfers signed by self-custody holders "
                f"and relayed{of}"
            ):
                signed_calls = signed_split_calls(contracts["acts"], cast, config.pipeline_ops + 1, anvil.chain_id)
                signed, signed_operations = asyncio.run(
                    pipeline_rate(anvil.rpc_url, anvil.chain_id, sessions, decoder, signed_calls)
                )
                signed_gas = int(
                    statistics.median(gas_used(anvil.rpc_url, [o.tx_hash for o in signed_operations[-50:]]))
                )
                say(
                    f"    {signed.count:,} ops in {signed.seconds:.2f} s: {signed.per_second:,.0f} ops/s "
                    f"({signed.per_second / rate.per_second:.2f} × the hosted pipeline's); {signed_gas:,} gas each "
                    f"({signed_gas - split_gas:+,} against the hosted split)"
                )
            throughput["rounds"].append(
                {
                    "node_ceiling": ceiling.per_second,
                    "pipeline": rate.per_second,
                    "pipeline_signed": signed.per_second,
                    "split_gas": split_gas,
                    "signed_split_gas": signed_gas,
                    "node_ceiling_sent_seconds": ceiling.sent_seconds,
                    "node_ceiling_seconds": ceiling.seconds,
                    "pipeline_sent_seconds": rate.sent_seconds,
                    "pipeline_seconds": rate.seconds,
                }
            )
        throughput["node_ceiling"] = statistics.median(r["node_ceiling"] for r in throughput["rounds"])
        throughput["pipeline"] = statistics.median(r["pipeline"] for r in throughput["rounds"])
        throughput["pipeline_to_ceiling_by_round"] = [r["pipeline"] / r["node_ceiling"] for r in throughput["rounds"]]
        throughput["pipeline_signed"] = statistics.median(r["pipeline_signed"] for r in throughput["rounds"])
        throughput["signed_to_hosted_by_round"] = [r["pipeline_signed"] / r["pipeline"] for r in throughput["rounds"]]

        def naive_call(index: int, i: int) -> Call:
            return split_calls(receivables, cast, 1, offset=index)[0]

        with stage(f"naive baseline: transact + wait per call, {config.holders} senders, {config.naive_seconds:g} s"):
            naive = naive_rate(anvil.rpc_url, anvil.chain_id, cast.holders, naive_call, config.naive_seconds)
            throughput["naive"] = naive.per_second
            throughput["naive_senders"] = config.holders
            say(f"    {naive.count:,} ops in {naive.seconds:.1f} s: {naive.per_second:,.1f} ops/s")
        results["throughput"] = throughput

        service = ServiceProcess(
            rpc_url=anvil.rpc_url,
            chain_id=anvil.chain_id,
            data_dir=root / "service",
            deployments_dir=deployments,
            port=free_port(),
        )
        with stage("REST service (uvicorn, own process) reusing the deployment"):
            operator_key = service.start()
        results["rest"], results["scaling"] = asyncio.run(
            _rest_and_scaling(config, say, stage, service, operator_key, anvil, w3, contracts, decoder, sessions, cast)
        )
        service.stop()
        service = None

        with stage("indexer: rebuild from block 0 into a new database"):
            results["indexer"] = _indexer_rebuild(root, w3, contracts)
            say(
                f"    {results['indexer']['events']:,} events in {results['indexer']['seconds']:.1f} s: "
                f"{results['indexer']['events_per_second']:,.0f} events/s"
            )
    finally:
        if service is not None:
            service.stop()
        anvil.kill()

    ceiling_rate = results["throughput"]["node_ceiling"]
    naive_rate_ = results["throughput"]["naive"]
    sustained = results["rest"]["sustained"]
    results["ratios"] = {
        "pipeline_to_ceiling": results["throughput"]["pipeline"] / ceiling_rate,
        "rest_to_ceiling": sustained / ceiling_rate,
        "naive_to_ceiling": naive_rate_ / ceiling_rate,
        "pipeline_to_naive": results["throughput"]["pipeline"] / naive_rate_ if naive_rate_ else 0.0,
        "signed_to_hosted_pipeline": statistics.median(results["throughput"]["signed_to_hosted_by_round"]),
        "rest_to_naive": sustained / naive_rate_ if naive_rate_ else 0.0,
    }
    open_loop = results["rest"]["open_loop"]
    single = max((s for s in open_loop["steps"] if s["batch"] == 1), key=lambda s: s["achieved"])
    batch = max((s for s in open_loop["steps"] if s["batch"] > 1), key=lambda s: s["achieved"])
    results["ratios"].update(
        {
            "rest_open_loop_to_ceiling": single["achieved"] / ceiling_rate,
            "rest_single_to_naive": single["achieved"] / naive_rate_ if naive_rate_ else 0.0,
            "rest_batch_to_ceiling": batch["achieved"] / ceiling_rate,
            "rest_batch_to_single": batch["achieved"] / single["achieved"] if single["achieved"] else 0.0,
        }
    )
    results["rest"]["per_core_second"] = {
        "single": 1000 / single["service_cpu_ms_per_request"] if single["service_cpu_ms_per_request"] else 0.0,
        "batch": 1000 / batch["service_cpu_ms_per_request"] if batch["service_cpu_ms_per_request"] else 0.0,
    }
    allowance = config.block_time + P99_ALLOWANCE
    results["targets"] = {
        "pipeline_to_ceiling": results["ratios"]["pipeline_to_ceiling"] >= 0.8,
        "rest_batch_to_ceiling": results["ratios"]["rest_batch_to_ceiling"] >= 0.5,
        "rest_single_to_naive": results["ratios"]["rest_single_to_naive"] >= 10,
        "p99_half_load": results["rest"]["half_load"]["p99"] <= allowance,
        "p99_half_load_single": open_loop["half_load"]["single"]["p99"] <= allowance,
        "p99_half_load_batch": open_loop["half_load"]["batch"]["p99"] <= allowance,
        "service_cpu_per_write": single["service_cpu_ms_per_request"] <= 2.0,
        "service_cpu_per_get": results["rest"]["get_by_id"]["cpu_ms_per_request"] <= 1.0,
        "indexer": results["indexer"]["events_per_second"] >= 5_000,
        "flat_scaling": results["scaling"]["flat"],
    }
    results["duration_seconds"] = time.perf_counter() - clock
    return results


IDLE_CORES = 0.15
"""The service counts as idle when its CPU over :data:`IDLE_WINDOW` seconds stays under this (its idle polls
take about 0.03 to 0.05 of a core)."""
IDLE_WINDOW = 3.0


def _wait_until_idle(service: ServiceProcess, say: Say, timeout: float = 600) -> None:
    """Wait until the service's CPU has fallen to idle (see :data:`IDLE_CORES`), at most ``timeout`` seconds."""
    assert service.process is not None
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        before = openloop_cpu_seconds(service.process.pid)
        time.sleep(IDLE_WINDOW)
        busy = (openloop_cpu_seconds(service.process.pid) - before) / IDLE_WINDOW
        if busy < IDLE_CORES:
            say(f"    service idle ({busy:.2f} core) after {time.monotonic() - started:.0f} s")
            return
    raise BenchmarkFailed(f"the service was still busy {timeout:g} s after the open loop's last step")


def node_block_build_seconds(rpc_url: str, blocks: int = 5) -> float:
    """How long the node takes to build a block now: the median wall time of ``blocks`` calls of ``evm_mine``
    (an empty block each, beside those the interval mines).

    Anvil 1.7.1 recomputes its state root over every account and storage slot it holds for each block, so this
    grows with the ledger (about 0.7 µs a storage slot on this machine: 180 ms at 250,000 slots), and every
    request waits for it after its block's turn: it is part of any latency to confirmation measured on anvil,
    which a node that updates its state trie incrementally (geth, Besu) does not pay in proportion to its
    state."""
    node, times = BlockingJsonRpc(rpc_url, timeout=60), []
    for _ in range(blocks):
        started = time.perf_counter()
        node.call("evm_mine")
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


async def _get_by_id_cpu(load: RestLoad, lane: Lane, service: ServiceProcess, count: int) -> dict[str, float]:
    """The service's CPU per ``GET /operations/{id}`` of a confirmed split-transfer: ``utime + stime`` of its
    process over ``count`` requests, 8 in flight, from the first sent to the last answered (background work
    running meanwhile included, as ``make bench-cpu``'s *during*)."""
    assert service.process is not None
    answer = await load.call(
        "POST", f"/receivables/{lane.piece}/transfers", lane.headers, json={"to": lane.to, "amount": 1}
    )
    path, headers = f"/operations/{answer['operation_id']}", dict(lane.headers)
    latencies: list[float] = []
    slots = asyncio.Semaphore(8)

    async def one() -> None:
        async with slots:
            started = time.perf_counter()
            response = await load.http.get(path, headers=headers)
            if response.status_code != 200:
                raise BenchmarkFailed(f"GET {path}: {response.status_code} {response.text[:200]}")
            latencies.append(time.perf_counter() - started)

    for _ in range(20):  # warm: caches, the connection pool
        await one()
    latencies.clear()
    before = openloop_cpu_seconds(service.process.pid)
    await asyncio.gather(*(one() for _ in range(count)))
    cpu = openloop_cpu_seconds(service.process.pid) - before
    return {"requests": count, "cpu_ms_per_request": cpu / count * 1000, **_latency_summary(latencies)}


async def _rest_and_scaling(
    config: BenchConfig,
    say: Say,
    stage: _Stage,
    service: ServiceProcess,
    operator_key: str,
    anvil: Anvil,
    w3: Any,
    contracts: dict[str, Any],
    decoder: ErrorDecoder,
    sessions: Any,
    cast: BenchCast,
) -> tuple[dict[str, Any], dict[str, Any]]:
    load = RestLoad(service.base_url, operator_key)
    try:
        with stage(f"REST cast: {config.rest_lanes} lanes onboarded through the API"):
            rest_cast = await load.onboard_cast(config.rest_lanes)
        with stage(f"REST full load: {config.rest_workers} concurrent stories for {config.rest_seconds:g} s"):
            full = await load.closed_loop(rest_cast, config.rest_workers, config.rest_seconds)
            warmup = min(10.0, config.rest_seconds / 4)
            sustained = full.rate(warmup, config.rest_seconds)
            if not full.completed:
                raise BenchmarkFailed(f"no REST request completed: {full.errors[:3]}")
            say(f"    {full.stories} stories, {len(full.completed):,} requests: {sustained:,.0f} ops/s sustained")
        offered = sustained / 2
        with stage(f"REST half load: {offered:,.0f} ops/s offered for {config.half_load_seconds:g} s"):
            half = await load.open_loop(rest_cast, offered, config.half_load_seconds, config.rest_lanes)
            half_summary = _latency_summary(half.latencies())
            say(
                f"    {len(half.completed):,} requests: p50 {half_summary['p50'] * 1000:.0f} ms, "
                f"p95 {half_summary['p95'] * 1000:.0f} ms, p99 {half_summary['p99'] * 1000:.0f} ms"
            )
        rates = [*config.open_loop_rates, config.open_loop_burst[0]]
        batch_rates = ", ".join(f"{r:,.0f}" for r in config.open_loop_batch_rates)
        with stage(
            f"REST open loop, split-transfers: {', '.join(f'{r:,.0f}' for r in rates)} requests/s offered, then "
            f"{batch_rates} operations/s in POST /batch of {config.open_loop_batch}"
        ):
            lanes = await prepare_lanes(load, rest_cast)
            steps = [Step(rate, config.open_loop_seconds) for rate in config.open_loop_rates]
            steps.append(Step(*config.open_loop_burst))
            steps.extend(
                Step(rate, config.open_loop_seconds, batch=config.open_loop_batch)
                for rate in config.open_loop_batch_rates
            )
            assert service.process is not None
            open_loop = await asyncio.to_thread(
                run_open_loop, service.base_url, service.process.pid, lanes, steps, service.log_file.parent, say
            )
        # Steps beyond the service's rate leave it working through what they queued after the generator stopped
        # waiting: the half-load steps and the GETs below must find it idle, or they measure that backlog.
        await asyncio.to_thread(_wait_until_idle, service, say)
        open_loop["node_block_build"] = await asyncio.to_thread(node_block_build_seconds, anvil.rpc_url)
        say(f"    the node builds a block in {_ms(open_loop['node_block_build'])} now (evm_mine, median of 5)")
        best_single = max(s["achieved"] for s in open_loop["steps"] if s["batch"] == 1)
        best_batch = max(s["achieved"] for s in open_loop["steps"] if s["batch"] > 1)
        with stage(
            f"REST open loop at half load: {best_single / 2:,.0f} single requests/s, then {best_batch / 2:,.0f} "
            f"operations/s in POST /batch of {config.open_loop_batch}"
        ):
            half_steps = [
                Step(best_single / 2, config.open_loop_half_seconds, time_blocks=True),
                Step(best_batch / 2, config.open_loop_half_seconds, batch=config.open_loop_batch, time_blocks=True),
            ]
            half_open = await asyncio.to_thread(
                run_open_loop,
                service.base_url,
                service.process.pid,
                lanes,
                half_steps,
                service.log_file.parent,
                say,
                anvil.rpc_url,
            )
            open_loop["half_load"] = {"single": half_open["steps"][0], "batch": half_open["steps"][1]}
        await asyncio.to_thread(_wait_until_idle, service, say)
        with stage(f"service CPU per GET by id: {config.get_requests:,} GET /operations/{{id}}, 8 in flight"):
            get_by_id = await _get_by_id_cpu(load, lanes[0], service, config.get_requests)
            say(f"    {get_by_id['cpu_ms_per_request']:.2f} ms of service CPU a request, p50 {_ms(get_by_id['p50'])}")
        head = int(w3.eth.block_number)
        await load.indexed(head)
        supplier, financier = rest_cast.suppliers[0], rest_cast.financiers[0]
        with stage("list routes"):
            routes = {
                "/invoices?size=50 (operator: all)": ("/invoices?size=50", rest_cast.operator),
                "/receivables?size=50 (a supplier)": ("/receivables?size=50", supplier.headers),
                "/financing-requests?size=50 (a financier)": ("/financing-requests?size=50", financier.headers),
            }
            list_routes = {}
            for name, (path, headers) in routes.items():
                list_routes[name] = _latency_summary(await load.list_latency(path, headers, config.list_requests))
        rest = {
            "workers": config.rest_workers,
            "lanes": config.rest_lanes,
            "story_steps": STORY_STEPS,
            "sustained": sustained,
            "window_seconds": config.rest_seconds - warmup,
            "full_load": {**_latency_summary(full.latencies()), "stories": full.stories, "errors": full.errors[:5]},
            "half_load": {
                **half_summary,
                "offered": offered,
                "achieved": half.rate(0, config.half_load_seconds),
                "stories": half.stories,
                "errors": half.errors[:5],
            },
            "list_routes": list_routes,
            "open_loop": open_loop,
            "get_by_id": get_by_id,
        }
        scaling = await _scaling(
            config, say, stage, load, rest_cast.operator, anvil, w3, contracts, decoder, sessions, cast, service
        )
        return rest, scaling
    finally:
        await load.aclose()


async def _scaling(
    config: BenchConfig,
    say: Say,
    stage: _Stage,
    load: RestLoad,
    operator_headers: dict[str, str],
    anvil: Anvil,
    w3: Any,
    contracts: dict[str, Any],
    decoder: ErrorDecoder,
    sessions: Any,
    cast: BenchCast,
    service: ServiceProcess,
) -> dict[str, Any]:
    holder: Member = await load.onboard("Bench scale holder", "supplier")
    payee: Member = await load.onboard("Bench scale payee", "supplier")
    receivables = contracts["receivables"]
    service_sessions = make_sessionmaker(make_engine(f"sqlite:///{service.env['SCF_DATABASE_URL'].split('///', 1)[1]}"))
    sizes = []
    held = 0
    big_piece: int | None = None
    async with Pipeline(anvil.rpc_url, anvil.chain_id, sessions, decoder) as pipeline:
        client = LedgerClient(w3, contracts, decoder, pipeline, cast.accounts().__getitem__)
        first = cast.holders[0]
        outcome = await client.outcome(
            await client.transfer_piece(str(first.address), cast.pieces[str(first.address)], holder.address, 10**12)
        )
        big_piece = int(outcome.event("PieceSplit")["pieceId"])
        held = 1
        for size in config.scale_sizes:
            with stage(f"scaling: {size:,} pieces held by the caller"):
                chunk = 5_000
                split_gas: list[int] = []
                began = time.perf_counter()
                while held < size:
                    count = min(chunk, size - held)
                    calls = split_calls(receivables, cast, count, to=holder.address, offset=held)
                    gas = await pipeline.preflight(
                        str(calls[0].sender.address), calls[0].to, calls[0].data
                    )  # per chunk
                    submitted = await asyncio.gather(*(pipeline.submit(c.sender, c.to, c.data, gas) for c in calls))
                    done = await asyncio.gather(*(pipeline.wait(o.operation_id, 600) for o in submitted))
                    failed = [o for o in done if not o.confirmed]
                    if failed:
                        raise BenchmarkFailed(f"{len(failed)} populating operations failed, e.g. {failed[0]}")
                    split_gas = gas_used(anvil.rpc_url, [o.tx_hash for o in done[-50:]])
                    held += count
                    elapsed = time.perf_counter() - began
                    say(f"    {held:,} / {size:,} pieces ({held / max(elapsed, 1e-9):,.0f} per s overall)")
                await load.indexed(int(w3.eth.block_number))
                transfer_latency, transfer_gas = [], []
                for _ in range(config.scale_ops):
                    started = time.perf_counter()
                    answer = await load.call(
                        "POST",
                        f"/receivables/{big_piece}/transfers",
                        holder.headers,
                        json={"to": payee.address, "amount": 1},
                    )
                    transfer_latency.append(time.perf_counter() - started)
                    receipt = w3.eth.get_transaction_receipt(answer["tx_hash"])
                    transfer_gas.append(int(receipt["gasUsed"]))
                # Lists as a client pages them by cursor: the first page without `after`, and without the count
                # (`total`), whose cost grows with the rows that match (see api.routes.common.PAGING).
                receivables_latency = await load.list_latency(
                    SCALING_LISTS["receivables"], holder.headers, config.list_requests
                )
                invoices_latency = await load.list_latency(
                    SCALING_LISTS["invoices"], operator_headers, config.list_requests
                )
                with service_sessions() as session:
                    ledger_pieces = int(session.scalar(select(func.count()).select_from(PieceRow)) or 0)
                row = {
                    "size": size,
                    "ledger_pieces": ledger_pieces,
                    "node_block_build": await asyncio.to_thread(node_block_build_seconds, anvil.rpc_url),
                    "split_gas": int(statistics.median(split_gas)) if split_gas else 0,
                    "rest_transfer_gas": int(statistics.median(transfer_gas)),
                    "rest_transfer_p50": percentile(transfer_latency, 0.5),
                    "list_receivables_p50": percentile(receivables_latency, 0.5),
                    "list_receivables_p95": percentile(receivables_latency, 0.95),
                    "list_invoices_p50": percentile(invoices_latency, 0.5),
                }
                say(
                    f"    split gas {row['split_gas']:,}, REST transfer p50 {row['rest_transfer_p50'] * 1000:.0f} ms, "
                    f"GET /receivables p50 {row['list_receivables_p50'] * 1000:.1f} ms, "
                    f"GET /invoices p50 {row['list_invoices_p50'] * 1000:.1f} ms ({ledger_pieces:,} pieces in all; the "
                    f"node builds a block in {row['node_block_build'] * 1000:.0f} ms)"
                )
                row.update(await _portal_first_page(config, say, service.base_url, holder, operator_headers))
                sizes.append(row)
    return {"sizes": sizes, **_flatness(sizes, config.block_time), "portal_target": portal_target(sizes)}


PORTAL_PAGES = {"receivables": "the holder", "invoices": "the operator"}
"""The portal's list pages timed at each scaling size, and whose: the holder of the pieces, the operator's view
of every invoice."""


async def _portal_first_page(
    config: BenchConfig, say: Say, base_url: str, holder: Member, operator_headers: dict[str, str]
) -> dict[str, Any]:
    """The portal's first page of the holder's receivables and of the operator's invoices, in chromium: the row
    fields ``portal_<page>_p50/p95/max`` (wall time, s) and the whole measurement under ``portal``."""
    measured = {
        "receivables": await measure_portal_async(
            base_url, bearer_key(holder.headers), ["receivables"], config.portal_loads
        ),
        "invoices": await measure_portal_async(
            base_url, bearer_key(operator_headers), ["invoices"], config.portal_loads
        ),
    }
    fields: dict[str, Any] = {"portal": {}}
    for page, answer in measured.items():
        if "skipped" in answer:
            fields["portal"][page] = answer
            say(f"    portal #/{page}: skipped ({answer['skipped']})")
            continue
        figures = answer[page]
        fields["portal"][page] = figures
        for quantile in ("p50", "p95", "max"):
            fields[f"portal_{page}_{quantile}"] = figures["wall"][quantile]
        say(
            f"    portal #/{page} ({PORTAL_PAGES[page]}, {figures['rows']} rows): first page p50 "
            f"{figures['wall']['p50'] * 1000:.0f} ms, p95 {figures['wall']['p95'] * 1000:.0f} ms "
            f"(in the page: API {figures['api']['p50'] * 1000:.0f} ms + page {figures['page']['p50'] * 1000:.0f} ms)"
        )
    return fields


def portal_target(sizes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Issue 15's target, judged at :data:`bench.portal.TARGET_SIZE` pieces held when that size was run and
    measured: each page's p95 first page under :data:`bench.portal.TARGET_SECONDS`."""
    row = next((r for r in sizes if r["size"] == TARGET_SIZE and "portal_receivables_p95" in r), None)
    if row is None or "portal_invoices_p95" not in row:
        return None
    worst = max(row["portal_receivables_p95"], row["portal_invoices_p95"])
    return {"size": TARGET_SIZE, "limit": TARGET_SECONDS, "p95": worst, "met": worst < TARGET_SECONDS}


def run_portal_bench(config: BenchConfig, say: Say, workdir: Path | None = None) -> dict[str, Any]:
    """Only the scaling stage (with the portal's first page) on a chain of its own: anvil, a fresh deployment,
    the bench cast, the service in its own process, and the pieces populated through the pipeline as in
    :func:`run_benchmarks`; for the figure of one size without the whole run."""
    own = workdir is None
    root = Path(tempfile.mkdtemp(prefix="scf-bench-portal-")) if workdir is None else workdir
    try:
        return _run_portal(config, say, root)
    finally:
        if own:
            shutil.rmtree(root, ignore_errors=True)


def _run_portal(config: BenchConfig, say: Say, root: Path) -> dict[str, Any]:
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    clock = time.perf_counter()
    stage = _Stage(say)
    results: dict[str, Any] = {
        "kind": "portal",
        "mode": config.mode,
        "started_at": started_at,
        "config": asdict(config),
        "block_time": config.block_time,
    }
    anvil = _anvil(config, root)
    service: ServiceProcess | None = None
    try:
        w3, contracts, decoder, sessions, deployments, operator = _deploy(config, say, stage, anvil, root, results)
        with stage(f"bench cast: {config.holders} holders with a large piece each"):

            async def onboard(pipeline: Pipeline) -> BenchCast:
                return await onboard_cast(w3, contracts, decoder, pipeline, operator, config.holders)

            async def with_pipeline() -> BenchCast:
                async with Pipeline(anvil.rpc_url, anvil.chain_id, sessions, decoder) as pipeline:
                    return await onboard(pipeline)

            cast = asyncio.run(with_pipeline())
        service = ServiceProcess(
            rpc_url=anvil.rpc_url,
            chain_id=anvil.chain_id,
            data_dir=root / "service",
            deployments_dir=deployments,
            port=free_port(),
        )
        with stage("REST service (uvicorn, own process) reusing the deployment"):
            operator_key = service.start()

        async def scaling() -> dict[str, Any]:
            load = RestLoad(service.base_url, operator_key)
            try:
                return await _scaling(
                    config, say, stage, load, load.operator, anvil, w3, contracts, decoder, sessions, cast, service
                )
            finally:
                await load.aclose()

        results["scaling"] = asyncio.run(scaling())
    finally:
        if service is not None:
            service.stop()
        anvil.kill()
    results["duration_seconds"] = time.perf_counter() - clock
    return results


def _flatness(sizes: list[dict[str, Any]], block_time: float) -> dict[str, Any]:
    """Whether cost stayed flat from the smallest to the largest size (see :data:`FLAT_TOLERANCE`)."""
    if len(sizes) < 2:
        return {"flat": True, "verdict": "one size only"}
    first, last = sizes[0], sizes[-1]
    problems = []
    if last["split_gas"] > first["split_gas"] * 1.01:
        problems.append(f"split gas {first['split_gas']:,} → {last['split_gas']:,}")
    # a transfer waits for the next block: a block interval of jitter is noise, not cost
    if last["rest_transfer_p50"] > first["rest_transfer_p50"] * (1 + FLAT_TOLERANCE) + block_time / 2:
        problems.append(f"REST transfer p50 {first['rest_transfer_p50']:.3f} s → {last['rest_transfer_p50']:.3f} s")
    for key in ("list_receivables_p50", "list_invoices_p50"):
        if last[key] > first[key] * (1 + FLAT_TOLERANCE) + 0.005:  # 5 ms: loopback and scheduling noise
            problems.append(f"{key} {first[key] * 1000:.1f} ms → {last[key] * 1000:.1f} ms")
    verdict = (
        "; ".join(problems) if problems else (f"within noise from {first['size']:,} to {last['size']:,} pieces held")
    )
    return {"flat": not problems, "verdict": verdict}


def _indexer_rebuild(root: Path, w3: Any, contracts: dict[str, Any]) -> dict[str, Any]:
    url = f"sqlite:///{root / 'rebuild.sqlite3'}"
    upgrade(url)
    indexer = Indexer(
        w3,
        {key: str(c.address) for key, c in contracts.items()},
        {key: c.abi for key, c in contracts.items()},
        make_sessionmaker(make_engine(url)),
    )
    head = int(w3.eth.block_number)
    started = time.perf_counter()
    events = indexer.rebuild()
    seconds = time.perf_counter() - started
    return {"events": events, "blocks": head + 1, "seconds": seconds, "events_per_second": events / seconds}
