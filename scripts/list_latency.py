"""List-route latency against a filled index, without a chain: how ``GET /receivables`` and the other paged
lists cost as the index grows.

    .venv/bin/python scripts/list_latency.py [--sizes 1000,10000,100000] [--database-url URL]
        [--requests 50] [--holders 200] [--new-way] [--profile] [--explain]

For each size a fresh database is migrated (alembic, as the service does) and its index tables are filled
directly with bulk inserts: ``size`` pieces of ``size / 5`` invoices over ``--holders`` holders, of whom the
measured one (a financier) holds half, as one participant holds them all in the bench's scaling phase; a tenth
of the pieces burnt, and a financing request for every tenth piece. The app (:func:`api.app.create_app`) is
then driven in process through ``httpx.ASGITransport``, without its lifespan: the list routes read only the
index and the service's participant records, so a stand-in service holding the database sessions is enough.
Each route is timed with the bench's own GETs (:meth:`bench.rest.RestLoad.list_latency`), the sizes
taking turns, and reported as p50 and p95 (:func:`bench.rest.percentile`).

``--new-way`` also times the lists without the count (``total=false``) and by cursor (``after``) from the
middle of the list, beside a page number as deep. ``--profile`` prints a pyinstrument profile of the slowest
route at the largest size; ``--explain`` prints the query plan (``EXPLAIN QUERY PLAN`` on SQLite, ``EXPLAIN``
on PostgreSQL) and the time alone of every statement a route runs. A PostgreSQL URL
(``postgresql+psycopg://postgres@127.0.0.1:5432/test``) is used in a throw-away schema, vacuumed and analysed
after the fill as autovacuum would.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from eth_utils import to_checksum_address  # noqa: E402
from sqlalchemy import Engine, create_engine, event, insert, text  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from api.app import create_app  # noqa: E402
from api.service import LedgerService, hash_api_key  # noqa: E402
from api.store import ApiKeyRecord, ParticipantRecord  # noqa: E402
from bench.rest import RestLoad, percentile  # noqa: E402
from ledger.db import make_engine, make_sessionmaker  # noqa: E402
from ledger.identifiers import synthetic_credit_code  # noqa: E402
from ledger.index.models import FinancingRequestRow, InvoiceRow, PieceRow  # noqa: E402
from ledger.migrations import upgrade  # noqa: E402
from ledger.models import InvoiceState, RequestState, Role  # noqa: E402

CORE_FIRMS = 10
FINANCIERS = 10
CHUNK = 5_000
NOW = 1_790_000_000


def address(n: int) -> str:
    return str(to_checksum_address(f"0x{n:040x}"))


REGULATOR = address(0xA11CE)
HOLDER = address(0xB0B)
"""The measured holder: a financier holding half of the pieces."""
SUPPLIER = address(0x5E11E5)
"""The seller of the measured supplier's invoices (a fifth of them)."""


class IndexOnlyService:
    """The part of :class:`api.service.LedgerService` that the list routes use: database sessions and the
    API-key lookup. No chain, no pipeline, no indexer thread, no audit log (GETs are not audited)."""

    participant_by_key = LedgerService.participant_by_key
    participant_record = LedgerService.participant_record
    participant_of_key = LedgerService.participant_of_key
    known_participant = LedgerService.known_participant
    participants = None  # nothing remembered: every request reads the key (api/auth_cache.py)

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self.audit_log = None


def fill(engine: Engine, size: int, holders: int) -> dict[str, str]:
    """Fill the index with ``size`` pieces (see the module) and the callers; return caller → API key."""
    others = [address(0x10_0000 + i) for i in range(holders - 1)]
    core_firms = [address(0x20_0000 + i) for i in range(CORE_FIRMS)]
    financiers = [HOLDER, *(address(0x30_0000 + i) for i in range(FINANCIERS - 1))]
    suppliers = [SUPPLIER, *others[:50]]
    invoices = max(1, size // 5)
    with engine.begin() as connection:
        for start in range(0, invoices, CHUNK):
            connection.execute(
                insert(InvoiceRow),
                [
                    {
                        "id": i,
                        "key_hash": f"0x{i:064x}",
                        "seller": suppliers[i % len(suppliers)] if i % 5 else SUPPLIER,
                        "buyer": core_firms[i % CORE_FIRMS],
                        "amount": 1_000_000_00,
                        "currency": "CNY",
                        "due_date": NOW + 90 * 86_400,
                        "document_hash": f"0x{i:064x}",
                        "state": InvoiceState.CONFIRMED,
                        "registered_at": NOW,
                        "confirmed_at": NOW,
                        "first_piece_id": i,
                        "rejection_reason": None,
                        "repaid": 0,
                        "redeemed": 0,
                        "defaulted_by": None,
                        "updated_block": i,
                    }
                    for i in range(start + 1, min(invoices, start + CHUNK) + 1)
                ],
            )
        for start in range(0, size, CHUNK):
            rows = []
            for i in range(start + 1, min(size, start + CHUNK) + 1):
                burnt = i % 10 == 3
                owner = None if burnt else (HOLDER if i % 2 == 0 else others[(i * 7919) % len(others)])
                slot = (i - 1) % invoices + 1
                rows.append(
                    {
                        "id": i,
                        "slot_id": slot,
                        "owner": owner,
                        "value": 1_000_00,
                        "checkpoint": 0,
                        "parent_id": None if i <= invoices else slot,
                        "root_id": slot,
                        "depth": 0 if i <= invoices else 1,
                        "path": str(i) if i <= invoices else f"{slot}/{i}",
                        "frozen": False,
                        "open_request_id": None,
                        "burnt": burnt,
                        "created_at": NOW + i,
                        "updated_block": i,
                    }
                )
            connection.execute(insert(PieceRow), rows)
        requests = [
            {
                "id": n,
                "piece_id": piece,
                "holder": others[(piece * 31) % len(others)],
                "financier": financiers[n % FINANCIERS],
                "amount": 1_000_00,
                "state": RequestState.FUNDED,
                "discount_rate_bps": 600,
                "day_count_basis": 365,
                "fee": 100,
                "discount": 1_000,
                "price": 98_900,
                "funded_piece_id": piece,
                "requested_at": NOW,
                "approved_at": NOW,
                "closed_at": NOW,
                "updated_block": piece,
            }
            for n, piece in enumerate(range(10, size + 1, 10), start=1)
        ]
        for start in range(0, len(requests), CHUNK):
            connection.execute(insert(FinancingRequestRow), requests[start : start + CHUNK])
    keys = {}
    with Session(engine) as session, session.begin():
        for n, (who, role) in enumerate(
            ((REGULATOR, Role.REGULATOR), (HOLDER, Role.FINANCIER), (SUPPLIER, Role.SUPPLIER)), start=2
        ):
            session.add(
                ParticipantRecord(address=who, name=who, credit_code=synthetic_credit_code(n), roles=[role.role_name])
            )
            session.flush()
            keys[who] = f"scf_list-latency-{n:040d}"
            session.add(ApiKeyRecord(participant=who, key_hash=hash_api_key(keys[who]), prefix=keys[who][:12]))
    if engine.dialect.name == "postgresql":
        # what autovacuum does to a table of this size soon after: planner statistics and the visibility map
        # (without which no scan is index-only)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
    return keys


#: name → (path, caller). ``{piece}``, ``{invoice}``, ``{request}`` become a cursor at the middle of that
#: list and ``{deep}`` the page number of the middle of the holder's pieces.
ROUTES: dict[str, tuple[str, str]] = {
    "GET /receivables (holder: own)": ("/receivables?size=50", HOLDER),
    "GET /receivables (regulator: own)": ("/receivables?size=50", REGULATOR),
    "GET /invoices (regulator: all)": ("/invoices?size=50", REGULATOR),
    "GET /invoices (supplier: own)": ("/invoices?size=50", SUPPLIER),
    "GET /financing-requests (regulator: all)": ("/financing-requests?size=50", REGULATOR),
    "GET /financing-requests (financier: own)": ("/financing-requests?size=50", HOLDER),
}

#: The same lists without the count (the first page of cursor paging) and deep in the list.
NEW_WAY: dict[str, tuple[str, str]] = {
    "GET /receivables?total=false (holder)": ("/receivables?size=50&total=false", HOLDER),
    "GET /receivables?after=<middle> (holder)": ("/receivables?size=50&after={piece}", HOLDER),
    "GET /receivables?page=<middle> (holder)": ("/receivables?size=50&page={deep}&total=false", HOLDER),
    "GET /invoices?total=false (regulator)": ("/invoices?size=50&total=false", REGULATOR),
    "GET /invoices?total=false (supplier)": ("/invoices?size=50&total=false", SUPPLIER),
    "GET /invoices?after=<middle> (supplier)": ("/invoices?size=50&after={invoice}", SUPPLIER),
    "GET /financing-requests?total=false (regulator)": ("/financing-requests?size=50&total=false", REGULATOR),
    "GET /financing-requests?total=false (financier)": ("/financing-requests?size=50&total=false", HOLDER),
    "GET /financing-requests?after=<middle> (financier)": ("/financing-requests?size=50&after={request}", HOLDER),
}


def placed(path: str, size: int) -> str:
    """``path`` with its placeholders (see :data:`ROUTES`) filled for an index of ``size`` pieces."""
    from api.routes.common import encode_cursor

    return path.format(
        piece=encode_cursor([size // 2]),
        invoice=encode_cursor([size // 10]),
        request=encode_cursor([size // 20]),
        deep=max(1, size * 9 // 20 // 2 // 50),
    )


@contextmanager
def database(url: str | None, size: int) -> Iterator[str]:
    """A fresh, migrated database: a SQLite file in a temporary folder, or a throw-away PostgreSQL schema."""
    if url is None or url.startswith("sqlite"):
        with tempfile.TemporaryDirectory() as folder:
            path = f"sqlite:///{Path(folder) / f'index-{size}.sqlite3'}"
            upgrade(path)
            yield path
        return
    schema = f"scf_list_latency_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        scoped = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
        upgrade(scoped)
        yield scoped
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def statements(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """The SQL statements (with their parameters) the engine runs inside the block."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def explain(engine: Engine, statement: str, parameters: Any) -> list[str]:
    """The statement's query plan, and the median time it takes alone (11 runs)."""
    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    with engine.connect() as connection:
        plan = [" | ".join(str(v) for v in row) for row in connection.exec_driver_sql(prefix + statement, parameters)]
        times = []
        for _ in range(11):
            started = time.perf_counter()
            connection.exec_driver_sql(statement, parameters).fetchall()
            times.append(time.perf_counter() - started)
    return [*plan, f"-> {statistics.median(times) * 1000:.2f} ms alone"]


@dataclass
class Filled:
    """One filled database and the app in front of it."""

    size: int
    engine: Engine
    keys: dict[str, str]
    load: RestLoad


async def measure(
    sizes: list[int], url: str | None, holders: int, count: int, routes: dict[str, tuple[str, str]], *, explained: bool
) -> dict[str, dict[int, tuple[float, float]]]:
    """Fill a fresh database for each size, then time each route at every size: route → size → (p50, p95) in
    seconds. The sizes take turns, one GET each, so that a change in the machine's load while it runs (it is
    shared) falls on every size alike instead of passing for growth."""
    with ExitStack() as stack:
        filled = []
        for size in sizes:
            engine = make_engine(stack.enter_context(database(url, size)))
            stack.callback(engine.dispose)
            app = create_app()
            app.state.ledger = IndexOnlyService(make_sessionmaker(engine))
            load = RestLoad("http://list-latency", "unused")
            await load.http.aclose()
            load.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://list-latency")
            filled.append(Filled(size, engine, fill(engine, size, holders), load))
        results: dict[str, dict[int, tuple[float, float]]] = {}
        try:
            for name, (template, who) in routes.items():
                latencies: dict[int, list[float]] = {f.size: [] for f in filled}
                for turn in range(count + 3):  # the first 3: warm-up (caches, prepared statements)
                    for f in filled:
                        took = await f.load.list_latency(placed(template, f.size), _auth(f, who), 1)
                        if turn >= 3:
                            latencies[f.size] += took
                results[name] = {size: (percentile(v, 0.5), percentile(v, 0.95)) for size, v in latencies.items()}
                if explained:
                    for f in filled:
                        with statements(f.engine) as seen:
                            await f.load.list_latency(placed(template, f.size), _auth(f, who), 1)
                        print(f"\n  {name} at {f.size:,} pieces:")
                        for statement, parameters in seen:
                            if "api_keys" in statement:
                                continue  # the caller's authentication, the same at every size
                            print("    " + " ".join(statement.split()))
                            for line in explain(f.engine, statement, parameters):
                                print("      " + line)
            return results
        finally:
            for f in filled:
                await f.load.aclose()


def _auth(filled: Filled, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {filled.keys[who]}"}


async def _inline(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``run_in_threadpool`` run in the calling thread: pyinstrument profiles only the thread it started in."""
    return func(*args, **kwargs)


async def profile(size: int, url: str | None, holders: int, name: str, route: tuple[str, str]) -> None:
    """Profile 20 requests of ``route`` with pyinstrument, the sync route and its dependencies run inline."""
    import fastapi.dependencies.utils
    import fastapi.routing
    from pyinstrument import Profiler

    fastapi.routing.run_in_threadpool = _inline
    fastapi.dependencies.utils.run_in_threadpool = _inline
    with database(url, size) as scoped:
        engine = make_engine(scoped)
        keys = fill(engine, size, holders)
        app = create_app()
        app.state.ledger = IndexOnlyService(make_sessionmaker(engine))
        path, who = placed(route[0], size), route[1]
        headers = {"Authorization": f"Bearer {keys[who]}"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as http:
            await http.get(path, headers=headers)
            profiler = Profiler(interval=0.0005, async_mode="enabled")
            with profiler:
                for _ in range(20):
                    response = await http.get(path, headers=headers)
                    response.raise_for_status()
        engine.dispose()
    print(f"\nprofile of 20 × {name} at {size:,} pieces:")
    print(profiler.output_text(unicode=True, color=False, show_all=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000", help="pieces in the index, comma-separated")
    parser.add_argument("--database-url", default=None, help="SQLAlchemy URL (default: a temporary SQLite file)")
    parser.add_argument("--requests", type=int, default=50, help="GETs per route and size (sizes take turns)")
    parser.add_argument("--holders", type=int, default=200, help="participants holding pieces")
    parser.add_argument("--route", action="append", help="extra route as 'PATH' (timed as the holder)")
    parser.add_argument("--new-way", action="store_true", help="also time the lists without count and by cursor")
    parser.add_argument("--profile", action="store_true", help="profile the slowest route at the largest size")
    parser.add_argument("--explain", action="store_true", help="print each statement's query plan")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    routes = {**ROUTES, **(NEW_WAY if args.new_way else {})}
    for extra in args.route or []:
        routes[f"GET {extra} (holder)"] = (extra, HOLDER)
    table = asyncio.run(measure(sizes, args.database_url, args.holders, args.requests, routes, explained=args.explain))
    width = max(len(name) for name in routes)
    print(f"\n{'p50 / p95 (ms)':<{width}}" + "".join(f"{size:>20,}" for size in sizes))
    for name, by_size in table.items():
        cells = "".join(f"{by_size[s][0] * 1000:>11.1f} / {by_size[s][1] * 1000:>6.1f}" for s in sizes)
        print(f"{name:<{width}}{cells}")
    if args.profile:
        largest = sizes[-1]
        slowest = max(table, key=lambda name: table[name][largest][0])
        asyncio.run(profile(largest, args.database_url, args.holders, slowest, routes[slowest]))


if __name__ == "__main__":
    main()
