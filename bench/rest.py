"""The REST service end to end: the real service in its own process, driven over loopback with httpx.

:class:`ServiceProcess` runs ``uvicorn api.app:app`` as a child process configured by ``SCF_*`` variables
(the bench's anvil, a scratch data folder and database); it reuses the deployment the bench made and prints
the operator's API key at its first start, which is read from its output.

:class:`RestLoad` onboards a small cast through the API (core firms, suppliers of two tiers, financiers, the
settlement agent; deposits, a credit line) and runs the whole receivable story with bounded concurrency:
register an invoice, confirm it, pay a tier-2 supplier with part of it, request financing, approve, fund,
repay in full, and both holders redeem: nine state-changing requests, each sent with ``Prefer: wait=30`` so
that its answer comes after the block that confirmed it. The time from sending a request to that answer is
the request-to-confirmation latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.load import BenchmarkFailed
from ledger.identifiers import synthetic_credit_code
from ledger.settings import PROJECT_ROOT

WAIT = {"Prefer": "wait=30"}
STORY_STEPS = 9
"""State-changing requests in one run of the story."""

_KEY = re.compile(r"\b(scf_[A-Za-z0-9_-]{20,})")


class ServiceProcess:
    """``uvicorn api.app:app`` in a child process (see the module)."""

    def __init__(
        self,
        *,
        rpc_url: str,
        chain_id: int,
        data_dir: Path,
        deployments_dir: Path,
        port: int,
        settings: Mapping[str, str] | None = None,
        root: Path = PROJECT_ROOT,
        command: Sequence[str] | None = None,
    ) -> None:
        self.port = port
        self.root = root
        """The checkout whose code the service runs (another one's: a baseline measured beside this one)."""
        self.base_url = f"http://127.0.0.1:{port}"
        self.log_file = data_dir / "service.log"
        self.env = {
            **os.environ,
            "SCF_RPC_URL": rpc_url,
            "SCF_CHAIN_ID": str(chain_id),
            "SCF_DATA_DIR": str(data_dir),
            "SCF_DEPLOYMENTS_DIR": str(deployments_dir),
            "SCF_DATABASE_URL": f"sqlite:///{data_dir / 'service.sqlite3'}",
            "SCF_MASTER_SECRET": "scf bench master secret",
            "SCF_API_HOST": "127.0.0.1",
            "SCF_API_PORT": str(port),
            **({} if root == PROJECT_ROOT else {"PYTHONPATH": str(root)}),
            **(settings or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.operator_key: str | None = None
        self.command = list(command) if command is not None else None
        """What runs the service (default: uvicorn on ``api.app:app``, one process)."""

    def start(self, timeout: float = 120) -> str:
        """Start the service and return the operator's API key once ``/health`` answers."""
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        command = self.command or [
            *self.python_and_server(),
            "api.app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        with self.log_file.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=self.root, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchmarkFailed(f"the service exited with {self.process.returncode}:\n{self._tail()}")
            match = _KEY.search(self.log_file.read_text(errors="replace"))
            if match:
                try:
                    if httpx.get(f"{self.base_url}/health", timeout=2).status_code == 200:
                        self.operator_key = match.group(1)
                        return self.operator_key
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
        self.stop()
        raise BenchmarkFailed(f"the service did not come up within {timeout:g} s:\n{self._tail()}")

    def python_and_server(self) -> list[str]:
        """uvicorn as ``scf serve`` runs it (:data:`api.server.HTTP_PROTOCOL`, :data:`api.server.EVENT_LOOP`) in
        this checkout; another checkout's (a baseline) runs in that checkout's own ``.venv`` when it has one,
        with uvicorn's defaults there (its own packages decide, e.g. h11 and asyncio's loop without httptools
        and uvloop)."""
        if self.root == PROJECT_ROOT:
            from api.server import EVENT_LOOP, HTTP_PROTOCOL

            return [sys.executable, "-m", "uvicorn", "--http", HTTP_PROTOCOL, "--loop", EVENT_LOOP]
        python = self.root / ".venv" / "bin" / "python"
        return [str(python) if python.exists() else sys.executable, "-m", "uvicorn"]

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def _tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@dataclass
class Member:
    address: str
    headers: dict[str, str]


@dataclass
class RestCast:
    operator: dict[str, str]
    core_firms: list[Member]
    suppliers: list[Member]
    tier2: list[Member]
    financiers: list[Member]


@dataclass
class LoadResult:
    """What one load phase measured."""

    completed: list[tuple[float, float, str]] = field(default_factory=list)
    """(finished at, latency seconds, step) of every confirmed request, times relative to the phase's start."""
    stories: int = 0
    errors: list[str] = field(default_factory=list)

    def rate(self, start: float, end: float) -> float:
        """Confirmed requests per second finished within [start, end] of the phase."""
        inside = sum(1 for finished, _, _ in self.completed if start <= finished <= end)
        return inside / (end - start) if end > start else 0.0

    def latencies(self) -> list[float]:
        return [latency for _, latency, _ in self.completed]


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile (nearest rank) of ``values``; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))
    return ordered[rank]


class RestLoad:
    """The load generator (see the module)."""

    def __init__(self, base_url: str, operator_key: str, *, timeout: float = 60) -> None:
        limits = httpx.Limits(max_connections=1_000, max_keepalive_connections=1_000)
        self.http = httpx.AsyncClient(base_url=base_url, timeout=timeout, limits=limits)
        self.operator = {"Authorization": f"Bearer {operator_key}"}
        self._codes = itertools.count(int(time.time()) % 1_000_000 * 100)
        self._invoices = itertools.count(int(time.time() * 1000) % 10**12 * 1000)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def call(
        self, method: str, path: str, headers: Mapping[str, str], expect: int = 200, *, patience: float = 300, **kw: Any
    ) -> Any:
        """Send a request with ``Prefer: wait=30``; an operation still pending after that wait (``202``) is
        followed at ``GET /operations/{id}`` until it is final, for up to ``patience`` seconds in all."""
        deadline = time.monotonic() + patience
        response = await self.http.request(method, path, headers={**headers, **WAIT}, **kw)
        while response.status_code == 202 and expect != 202 and time.monotonic() < deadline:
            location = response.headers.get("location") or f"/operations/{response.json()['operation_id']}"
            response = await self.http.get(location, headers={**headers, **WAIT})
        if response.status_code != expect:
            raise BenchmarkFailed(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response.json()

    async def onboard(self, name: str, role: str) -> Member:
        body = {"name": name, "credit_code": synthetic_credit_code(next(self._codes)), "roles": [role]}
        created = await self.call("POST", "/participants", self.operator, 201, json=body)
        return Member(created["participant"]["id"], {"Authorization": f"Bearer {created['api_key']}"})

    async def onboard_cast(self, lanes: int) -> RestCast:
        """Onboard the cast: ``lanes`` suppliers of each tier, and a core firm and financier per two lanes."""
        pairs = max(1, lanes // 2)
        agent = await self.onboard("Bench settlement desk", "settlement-agent")
        groups = await asyncio.gather(
            asyncio.gather(*(self.onboard(f"Bench core firm {i}", "core-firm") for i in range(pairs))),
            asyncio.gather(*(self.onboard(f"Bench supplier {i}", "supplier") for i in range(lanes))),
            asyncio.gather(*(self.onboard(f"Bench tier-2 supplier {i}", "supplier") for i in range(lanes))),
            asyncio.gather(*(self.onboard(f"Bench financier {i}", "financier") for i in range(pairs))),
        )
        cast = RestCast(self.operator, *(list(group) for group in groups))
        money = 10**16
        await asyncio.gather(
            *(
                self.call(
                    "POST",
                    "/deposits",
                    agent.headers,
                    json={"participant": m.address, "amount": money, "bank_reference": f"bench {m.address}"},
                )
                for m in (*cast.core_firms, *cast.financiers)
            )
        )
        await asyncio.gather(
            *(
                self.call("POST", "/credit-lines", f.headers, json={"core_firm": c.address, "limit": money})
                for f, c in zip(cast.financiers, cast.core_firms, strict=True)
            )
        )
        return cast

    async def story(self, cast: RestCast, lane: int, record: Callable[[float, str], None]) -> None:
        """One run of the story (see the module) on ``lane``; ``record(latency, step)`` per confirmed request."""
        supplier, tier2 = cast.suppliers[lane % len(cast.suppliers)], cast.tier2[lane % len(cast.tier2)]
        core = cast.core_firms[lane % len(cast.core_firms)]
        financier = cast.financiers[lane % len(cast.financiers)]

        async def step(name: str, method: str, path: str, who: Member, **kw: Any) -> Any:
            started = time.perf_counter()
            answer = await self.call(method, path, who.headers, **kw)
            record(time.perf_counter() - started, name)
            return answer["result"]

        amount, part = 1_000_000, 300_000
        due = (datetime.now(UTC).date() + timedelta(days=120)).isoformat()
        invoice = {
            "buyer": core.address,
            "amount": amount,
            "currency": "CNY",
            "invoice_number": f"{next(self._invoices):020d}",
            "due_date": due,
        }
        invoice_id = (await step("register invoice", "POST", "/invoices", supplier, json=invoice))["invoice_id"]
        piece = (await step("confirm invoice", "POST", f"/invoices/{invoice_id}/confirm", core))["piece_id"]
        split = (
            await step(
                "transfer piece",
                "POST",
                f"/receivables/{piece}/transfers",
                supplier,
                json={"to": tier2.address, "amount": part},
            )
        )["piece_id"]
        request_id = (
            await step(
                "request financing",
                "POST",
                "/financing-requests",
                tier2,
                json={
                    "piece_id": split,
                    "amount": part,
                    "financier": financier.address,
                    "max_discount_rate_bps": 600,
                    "max_fee": 100,
                },
            )
        )["request_id"]
        await step(
            "approve financing",
            "POST",
            f"/financing-requests/{request_id}/approve",
            financier,
            json={"discount_rate_bps": 600, "fee": 100},
        )
        funded = (await step("fund financing", "POST", f"/financing-requests/{request_id}/fund", financier))["piece_id"]
        await step("repay", "POST", f"/obligations/{invoice_id}/repayments", core, json={"amount": amount})
        await asyncio.gather(
            step("redeem", "POST", f"/receivables/{piece}/redeem", supplier),
            step("redeem", "POST", f"/receivables/{funded}/redeem", financier),
        )

    async def closed_loop(self, cast: RestCast, workers: int, seconds: float) -> LoadResult:
        """``workers`` concurrent stories, each starting the next when done, for ``seconds``."""
        result = LoadResult()
        started = time.perf_counter()
        deadline = started + seconds

        def record(latency: float, step: str) -> None:
            result.completed.append((time.perf_counter() - started, latency, step))

        async def worker(lane: int) -> None:
            while time.perf_counter() < deadline:
                try:
                    await self.story(cast, lane, record)
                    result.stories += 1
                except (BenchmarkFailed, httpx.HTTPError) as exc:
                    result.errors.append(f"{type(exc).__name__}: {exc}")
                    if len(result.errors) > 20:
                        raise

        workers_done = asyncio.gather(*(worker(lane) for lane in range(workers)))
        # the stories still running at the deadline are cut: only what finished inside the window counts
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(workers_done, seconds)
        return result

    async def open_loop(self, cast: RestCast, requests_per_second: float, seconds: float, lanes: int) -> LoadResult:
        """Start stories at a fixed pace so that requests arrive at ``requests_per_second``, for ``seconds``;
        waits for the stories started to finish."""
        result = LoadResult()
        interval = STORY_STEPS / requests_per_second
        started = time.perf_counter()
        running: list[asyncio.Task[None]] = []

        def record(latency: float, step: str) -> None:
            result.completed.append((time.perf_counter() - started, latency, step))

        async def one(lane: int) -> None:
            try:
                await self.story(cast, lane, record)
                result.stories += 1
            except (BenchmarkFailed, httpx.HTTPError) as exc:
                result.errors.append(f"{type(exc).__name__}: {exc}")

        for n in itertools.count():
            at = started + n * interval
            if at - started >= seconds:
                break
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            running.append(asyncio.create_task(one(n % lanes)))
        await asyncio.gather(*running)
        return result

    async def list_latency(self, path: str, headers: Mapping[str, str], count: int) -> list[float]:
        """``count`` sequential GETs of ``path``: each answer's latency in seconds."""
        latencies = []
        for _ in range(count):
            started = time.perf_counter()
            response = await self.http.get(path, headers=dict(headers))
            if response.status_code != 200:
                raise BenchmarkFailed(f"GET {path}: {response.status_code} {response.text[:200]}")
            latencies.append(time.perf_counter() - started)
        return latencies

    async def indexed(self, block: int, timeout: float = 600) -> None:
        """Wait until the service's indexer has reached ``block``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            health = (await self.http.get("/health")).json()
            if (health.get("indexed") or -1) >= block:
                return
            await asyncio.sleep(0.25)
        raise BenchmarkFailed(f"the service's indexer did not reach block {block} within {timeout:g} s")
