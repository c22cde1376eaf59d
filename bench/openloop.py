"""An open-loop load generator for the REST service, in a process of its own (``python -m bench.openloop PLAN
OUT``), so that what it measures is the service and not the generator.

**Open loop.** Requests are sent on a fixed schedule, ``rate`` a second for ``seconds``, whether or not the
earlier ones were answered: a slow service makes requests pile up in flight (the generator holds thousands:
aiohttp with no connection cap, each request on its own task), it does not slow the offered rate down as a
closed loop of ``N`` workers would (which can never offer more than ``N`` ÷ latency). Each request's latency
runs from the time it was *scheduled*, not sent, so a generator running late does not hide the wait (no
coordinated omission); how late it ran is reported too (``send_lag``).

**The operation** is the node ceiling's: a 1-fen split-transfer of a large receivable piece
(``POST /receivables/{piece}/transfers``) with ``Prefer: wait=30``, round robin over ``lanes`` holders, each
its own sender; an answer still pending after the wait is followed at ``GET /operations/{id}`` until final. A
request counts as achieved when its operation is confirmed.

**Per step** (one offered rate) the generator reports: offered (requests scheduled ÷ seconds) and achieved
(operations confirmed ÷ the time from the first scheduled request to the last confirmation); latency
percentiles; the most requests in flight at once; refusals and errors by kind; the service's CPU (``utime +
stime`` of its process, from ``/proc``, over the same span) per confirmed request; and the generator's own CPU
share, which must stay well under one core for the figures to be the service's.

**Where a request's time goes** (steps with ``time_blocks``, the half-load ones): the generator also asks the
node for its head every 5 ms and notes when it first saw each block; each confirmed operation's answer names
its block. A request's latency then splits into the wait from its schedule until its block appeared and the
time from the block to the answer (the service's following, indexing and answering).

The plan (JSON) names the service's URL and process id, the node's URL, the lanes (``headers``, ``piece``,
``to``) and the steps (``rate``, ``seconds``, ``batch``, ``time_blocks``); :func:`run_open_loop` writes it, runs
this module in a child process and reads its answer.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.load import BenchmarkFailed
from bench.rest import Member, RestCast, RestLoad
from ledger.pipeline.exceptions import NodeUnavailable, RpcError
from ledger.pipeline.rpc import JsonRpcClient
from ledger.settings import PROJECT_ROOT

WAIT = "wait=30"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """``utime + stime`` of process ``pid`` (all its threads) and of its children, living (``scf serve``'s workers)
    or ended and reaped (``cutime + cstime``), in seconds."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    # after the command's closing parenthesis: state is field 3, utime 14, stime 15, cutime 16, cstime 17 (proc(5))
    total = sum(int(value) for value in fields[11:15]) / CLOCK_TICKS
    for child in _children(pid):
        try:
            total += cpu_seconds(child)
        except (FileNotFoundError, ProcessLookupError):  # it ended meanwhile (and its time went to cutime)
            continue
    return total


def _children(pid: int) -> list[int]:
    children: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return children
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as listed:
                children.extend(int(child) for child in listed.read().split())
        except FileNotFoundError:
            continue
    return children


@dataclass(frozen=True)
class Lane:
    """One holder: its credentials, the piece it splits from and the account that receives each split."""

    headers: Mapping[str, str]
    piece: int
    to: str


@dataclass(frozen=True)
class Step:
    rate: float
    """Requests a second, offered."""
    seconds: float
    drain_seconds: float = 120.0
    """How long after the last request is sent to wait for the outstanding ones."""
    batch: int = 1
    """Operations a request: 1 sends each on its own route; more sends them ``batch`` at a time as the items of
    one ``POST /batch`` (one lane's, each item with its own idempotency key). ``rate`` counts operations either
    way, and so do the figures."""
    time_blocks: bool = False
    """Watch the node's head during the step and split each latency at its block (see the module)."""


@dataclass
class Outcome:
    """One request: when it was scheduled, sent and finished (seconds from the step's start), how it ended."""

    scheduled: float
    sent: float
    finished: float
    status: str
    """``confirmed``, ``failed`` (refused by the contracts), ``http-<code>`` or the exception's name."""
    block: int | None = None
    """The block its operation was confirmed in, as the answer named it."""


@dataclass
class StepResult:
    rate: float
    seconds: float
    outcomes: list[Outcome] = field(default_factory=list)
    max_in_flight: int = 0
    service_cpu: float = 0.0
    generator_cpu: float = 0.0
    unfinished: int = 0
    batch: int = 1
    block_seen: dict[int, float] = field(default_factory=dict)
    """When the generator first saw each block (seconds from the step's start; steps with ``time_blocks``)."""


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (nearest rank) of ``values``; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))]


def summarize(step: StepResult) -> dict[str, Any]:
    """A step's figures (see the module) from its outcomes."""
    confirmed = [o for o in step.outcomes if o.status == "confirmed"]
    scheduled = len(step.outcomes) + step.unfinished
    span = max((o.finished for o in confirmed), default=0.0)
    latencies = [o.finished - o.scheduled for o in confirmed]
    return {
        "offered": scheduled / step.seconds if step.seconds else 0.0,
        "batch": step.batch,
        "requests": scheduled,
        "confirmed": len(confirmed),
        "achieved": len(confirmed) / span if span else 0.0,
        "span_seconds": span,
        "p50": percentile(latencies, 0.50),
        "p95": percentile(latencies, 0.95),
        "p99": percentile(latencies, 0.99),
        "max_in_flight": step.max_in_flight,
        "send_lag_max": max((o.sent - o.scheduled for o in step.outcomes), default=0.0),
        "not_confirmed": dict(Counter(o.status for o in step.outcomes if o.status != "confirmed")),
        "unfinished": step.unfinished,
        "service_cpu_ms_per_request": step.service_cpu / len(confirmed) * 1000 if confirmed else 0.0,
        "service_cpu_cores": step.service_cpu / span if span else 0.0,
        "generator_cpu_cores": step.generator_cpu / span if span else 0.0,
        **_split_at_blocks(confirmed, step.block_seen),
    }


def _split_at_blocks(confirmed: Sequence[Outcome], seen: Mapping[int, float]) -> dict[str, Any]:
    """The latencies of ``confirmed`` split where their blocks appeared (empty without block times)."""
    timed = [(o, seen[o.block]) for o in confirmed if o.block is not None and o.block in seen]
    if not timed:
        return {}
    to_block = [appeared - o.scheduled for o, appeared in timed]
    to_answer = [o.finished - appeared for o, appeared in timed]
    return {
        "timed_at_blocks": len(timed),
        "schedule_to_block_p50": percentile(to_block, 0.50),
        "schedule_to_block_p99": percentile(to_block, 0.99),
        "block_to_answer_p50": percentile(to_answer, 0.50),
        "block_to_answer_p99": percentile(to_answer, 0.99),
    }


# -- the generator (the child process) ---------------------------------------------------------------------


async def _transfer(session: Any, lane: Lane) -> tuple[str, int | None]:
    """One split-transfer with ``Prefer: wait``, followed until final; answers how it ended and in which block."""
    headers = {**lane.headers, "Prefer": WAIT, "Idempotency-Key": f"open-loop-{uuid.uuid4().hex}"}
    body = {"to": lane.to, "amount": 1}
    async with session.post(f"/receivables/{lane.piece}/transfers", json=body, headers=headers) as response:
        status, answer = response.status, await response.json(content_type=None)
    return await _follow(session, lane, status, answer)


async def _follow(session: Any, lane: Lane, status: int, answer: Any) -> tuple[str, int | None]:
    """How an operation answered ``status`` / ``answer`` ended, and its block: a 202 is followed at its
    operation until final."""
    while status == 202:
        follow = {**lane.headers, "Prefer": WAIT}
        async with session.get(f"/operations/{answer['operation_id']}", headers=follow) as response:
            status, answer = response.status, await response.json(content_type=None)
    if status != 200:
        return f"http-{status}", None
    block = answer.get("block_number")
    return str(answer.get("status")), block if isinstance(block, int) else None


async def _transfer_batch(session: Any, lane: Lane, size: int) -> list[tuple[str, int | None]]:
    """``size`` split-transfers of ``lane``'s piece as the items of one ``POST /batch`` with ``Prefer: wait``;
    answers how each ended (an item answered 202 is followed at its operation)."""
    items = [
        {
            "operation": "transfer_piece",
            "path": {"piece_id": lane.piece},
            "body": {"to": lane.to, "amount": 1},
            "idempotency_key": f"open-loop-{uuid.uuid4().hex}",
        }
        for _ in range(size)
    ]
    headers = {**lane.headers, "Prefer": WAIT}
    async with session.post("/batch", json={"items": items}, headers=headers) as response:
        status, answer = response.status, await response.json(content_type=None)
    if status != 200:
        return [(f"http-{status}", None)] * size
    return list(
        await asyncio.gather(
            *(
                _follow(session, lane, int(item["status"]), item.get("operation") or item.get("problem") or {})
                for item in answer["items"]
            )
        )
    )


async def _watch_blocks(rpc_url: str, seen: dict[int, float], started: float) -> None:
    """Note when each new head is first seen (seconds from ``started``), asking every 5 ms until cancelled. The
    head found by the first look appeared before it: it is not timed."""
    node, last = JsonRpcClient(rpc_url, connections=1), None
    try:
        while True:
            try:
                head = int(await node.call("eth_blockNumber"), 16)
            except (NodeUnavailable, RpcError):  # the node busy or restarting: a missed look, not the step's failure
                head = None
            if head is not None:
                at = time.perf_counter() - started
                for number in range(head + 1 if last is None else last + 1, head + 1):
                    seen.setdefault(number, at)
                last = head if last is None else max(last, head)
            await asyncio.sleep(0.005)
    finally:
        await node.aclose()


async def _step(session: Any, lanes: Sequence[Lane], step: Step, pid: int, rpc_url: str | None = None) -> StepResult:
    """One step: ``step.rate × step.seconds`` operations, ``step.batch`` a request (a single route's request when
    1, a ``POST /batch`` otherwise). Request ``n`` is scheduled when its first operation is (``n × batch ÷
    rate``), and each of its operations is an outcome of its own, timed from that moment."""
    result = StepResult(step.rate, step.seconds, batch=step.batch)
    count = int(step.rate * step.seconds)
    in_flight = 0
    started = time.perf_counter()
    service_before, generator_before = cpu_seconds(pid), time.process_time()

    async def one(n: int, scheduled: float) -> None:
        nonlocal in_flight
        size = min(step.batch, count - n * step.batch)
        lane = lanes[n % len(lanes)]
        in_flight += size
        result.max_in_flight = max(result.max_in_flight, in_flight)
        sent = time.perf_counter() - started
        try:
            endings = (
                [await _transfer(session, lane)] if step.batch == 1 else await _transfer_batch(session, lane, size)
            )
        except Exception as exc:  # a request that breaks is an outcome to count, not the end of the step
            endings = [(type(exc).__name__, None)] * size
        finally:
            in_flight -= size
        finished = time.perf_counter() - started
        result.outcomes.extend(Outcome(scheduled, sent, finished, status, block) for status, block in endings)

    watcher = (
        asyncio.create_task(_watch_blocks(rpc_url, result.block_seen, started))
        if step.time_blocks and rpc_url
        else None
    )

    tasks = []
    for n in range(math.ceil(count / step.batch)):
        at = n * step.batch / step.rate
        delay = started + at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(n, at)))
    _, pending = await asyncio.wait(tasks, timeout=step.drain_seconds) if tasks else (set(), set())
    for task in pending:
        task.cancel()
    if watcher is not None:
        watcher.cancel()
    result.unfinished = len(pending) * step.batch
    result.service_cpu = cpu_seconds(pid) - service_before
    result.generator_cpu = time.process_time() - generator_before
    return result


async def generate(plan: Mapping[str, Any], say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run ``plan``'s steps in order (see the module); answers each step's figures."""
    import aiohttp  # a dependency of web3; here for its cheap connections (thousands held open at once)

    lanes = [Lane(dict(lane["headers"]), int(lane["piece"]), str(lane["to"])) for lane in plan["lanes"]]
    steps = [
        Step(
            float(s["rate"]),
            float(s["seconds"]),
            float(s.get("drain_seconds", 120)),
            int(s.get("batch", 1)),
            bool(s.get("time_blocks", False)),
        )
        for s in plan["steps"]
    ]
    # Idle connections are dropped after 3 s, before uvicorn closes its side (5 s, its default): a request sent
    # on a connection the server has just closed breaks (ClientOSError) although the service did nothing wrong,
    # and the steps that follow a long one (the burst's tail) would start with such connections.
    connector = aiohttp.TCPConnector(limit=0, force_close=False, keepalive_timeout=3.0)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=120, sock_read=120)
    figures = []
    async with aiohttp.ClientSession(plan["base_url"], connector=connector, timeout=timeout) as session:
        for step in steps:
            way = f" in batches of {step.batch}" if step.batch > 1 else ""
            say(f"    open loop: {step.rate:,.0f} operations/s offered{way} for {step.seconds:g} s ...")
            summary = summarize(await _step(session, lanes, step, int(plan["service_pid"]), plan.get("rpc_url")))
            figures.append({"rate": step.rate, "seconds": step.seconds, **summary})
            say(
                f"    open loop: {summary['offered']:,.0f}/s offered, {summary['achieved']:,.1f}/s confirmed, "
                f"p50 {summary['p50'] * 1000:,.0f} ms, p99 {summary['p99'] * 1000:,.0f} ms, "
                f"{summary['max_in_flight']:,} in flight at most, service "
                f"{summary['service_cpu_ms_per_request']:.2f} ms CPU an operation, generator "
                f"{summary['generator_cpu_cores']:.2f} core"
            )
            if "block_to_answer_p50" in summary:
                say(
                    f"    open loop: schedule to block p50 {summary['schedule_to_block_p50'] * 1000:,.0f} ms, p99 "
                    f"{summary['schedule_to_block_p99'] * 1000:,.0f} ms; block to answer p50 "
                    f"{summary['block_to_answer_p50'] * 1000:,.0f} ms, "
                    f"p99 {summary['block_to_answer_p99'] * 1000:,.0f} ms"
                )
    return {"lanes": len(lanes), "steps": figures}


def main(argv: Sequence[str] | None = None) -> None:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if len(arguments) != 2:
        raise SystemExit("usage: python -m bench.openloop PLAN.json OUT.json")
    plan = json.loads(Path(arguments[0]).read_text(encoding="utf-8"))
    answer = asyncio.run(generate(plan, lambda line: print(line, flush=True)))
    Path(arguments[1]).write_text(json.dumps(answer, indent=2) + "\n", encoding="utf-8")


# -- the parent's side -------------------------------------------------------------------------------------


async def prepare_lanes(load: RestLoad, cast: RestCast, amount: int = 10**12) -> list[Lane]:
    """A lane per supplier of ``cast``: an invoice of ``amount`` fen to a core firm, confirmed, gives it the
    piece it splits from; each split goes to the tier-2 supplier of its lane."""
    due = (datetime.now(UTC).date() + timedelta(days=300)).isoformat()

    async def lane(i: int, supplier: Member) -> Lane:
        core = cast.core_firms[i % len(cast.core_firms)]
        invoice = {
            "buyer": core.address,
            "amount": amount,
            "currency": "CNY",
            "invoice_number": f"{next(load._invoices):020d}",
            "due_date": due,
        }
        registered = await load.call("POST", "/invoices", supplier.headers, json=invoice)
        invoice_id = registered["result"]["invoice_id"]
        confirmed = await load.call("POST", f"/invoices/{invoice_id}/confirm", core.headers)
        return Lane(supplier.headers, int(confirmed["result"]["piece_id"]), cast.tier2[i % len(cast.tier2)].address)

    return list(await asyncio.gather(*(lane(i, s) for i, s in enumerate(cast.suppliers))))


def run_open_loop(
    base_url: str,
    service_pid: int,
    lanes: Sequence[Lane],
    steps: Sequence[Step],
    folder: Path,
    say: Callable[[str], None],
    rpc_url: str | None = None,
) -> dict[str, Any]:
    """Run the generator in a child process over ``steps`` and answer its figures (``lanes``, ``steps``);
    ``rpc_url``: the node's, for the steps that time blocks."""
    folder.mkdir(parents=True, exist_ok=True)
    plan_path, out_path = folder / "open-loop-plan.json", folder / "open-loop.json"
    plan = {
        "base_url": base_url,
        "service_pid": service_pid,
        "rpc_url": rpc_url,
        "lanes": [{"headers": dict(lane.headers), "piece": lane.piece, "to": lane.to} for lane in lanes],
        "steps": [
            {
                "rate": s.rate,
                "seconds": s.seconds,
                "drain_seconds": s.drain_seconds,
                "batch": s.batch,
                "time_blocks": s.time_blocks,
            }
            for s in steps
        ],
    }
    plan_path.write_text(json.dumps(plan), encoding="utf-8")
    command = [sys.executable, "-m", "bench.openloop", str(plan_path), str(out_path)]
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    with subprocess.Popen(
        command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as child:
        assert child.stdout is not None
        tail: list[str] = []
        for line in child.stdout:
            tail = [*tail[-30:], line.rstrip()]
            if line.startswith("    open loop:"):
                say(line.rstrip())
        code = child.wait()
    if code != 0 or not out_path.exists():
        raise BenchmarkFailed("the open-loop generator failed:\n" + "\n".join(tail))
    answer: dict[str, Any] = json.loads(out_path.read_text(encoding="utf-8"))
    return answer


if __name__ == "__main__":
    main()
