"""The REST service against a real anvil: one node and one app per module and database kind (SQLite file, or a
PostgreSQL schema when a server answers at 127.0.0.1:5432), driven with FastAPI's TestClient (which runs the
lifespan: deploy, migrate, pipeline, indexer). Requests that need the result send ``Prefer: wait=20``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import create_engine, text

from api.app import create_app
from api.service import LedgerService
from ledger.identifiers import synthetic_credit_code
from ledger.settings import Settings
from ledger.tooling.chain import Anvil, find_anvil

try:
    find_anvil()
except Exception as exc:  # pragma: no cover - depends on `npm ci`
    pytest.skip(f"anvil is not installed: {exc}", allow_module_level=True)

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
WAIT = {"Prefer": "wait=20"}
_codes = itertools.count(int.from_bytes(os.urandom(2), "big") * 1000 + 10)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def postgres_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            pass
        engine = create_engine(POSTGRES_URL)
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        engine.dispose()
    except Exception:
        return False
    return True


NO_POSTGRES = "no PostgreSQL answers at 127.0.0.1:5432 (database `test`, user postgres): SQLite only"


@contextlib.contextmanager
def postgres_schema(prefix: str) -> Iterator[str]:
    """The URL of a fresh, empty schema on the local PostgreSQL, dropped afterwards (the test skips when no
    server answers)."""
    if not postgres_answers():
        pytest.skip(NO_POSTGRES)
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('api-db') / 'ledger.sqlite3'}"
        return
    with postgres_schema("scf_api_test") as url:
        yield url


@dataclass
class Api:
    """The running service and its operator's credentials."""

    http: TestClient
    settings: Settings
    operator_headers: dict[str, str]
    anvil: Anvil

    @property
    def service(self) -> LedgerService:
        """The running service behind ``http`` (its pipeline, client, database sessions)."""
        service: LedgerService = self.http.app.state.ledger  # type: ignore[attr-defined]
        return service

    def onboard(self, name: str, *roles: str, login_address: str | None = None) -> Participant:
        body: dict[str, Any] = {"name": name, "credit_code": synthetic_credit_code(next(_codes)), "roles": list(roles)}
        if login_address:
            body["login_address"] = login_address
        response = self.http.post("/participants", json=body, headers={**self.operator_headers, **WAIT})
        assert response.status_code == 201, response.text
        data = response.json()
        assert data["status"] == "confirmed", data
        return Participant(data["participant"]["id"], {"Authorization": f"Bearer {data['api_key']}"})

    def travel(self, seconds: int) -> None:
        """Move the chain's clock forward (anvil's evm_increaseTime) and mine a block."""
        import httpx

        for method, params in (("evm_increaseTime", [seconds]), ("evm_mine", [])):
            httpx.post(self.anvil.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params})

    def now(self) -> int:
        import httpx

        answer = httpx.post(
            self.anvil.rpc_url,
            json={"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": ["latest", False]},
        ).json()
        return int(answer["result"]["timestamp"], 16)


@dataclass
class Participant:
    id: str
    headers: dict[str, str]

    def waiting(self, **extra: str) -> dict[str, str]:
        return {**self.headers, **WAIT, **extra}


@pytest.fixture(scope="module")
def api(database_url: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Api]:
    data_dir = tmp_path_factory.mktemp("api-data")
    anvil = Anvil(data_dir / "chain-node", port=free_port(), block_time=0.25)
    anvil.start()
    settings = Settings(
        rpc_url=anvil.rpc_url,
        chain_id=anvil.chain_id,
        data_dir=data_dir,
        database_url=database_url,
        deployments_dir=data_dir / "deployments",
        master_secret=SecretStr("api tests master secret"),
        # No audit-log anchors in the background (they are operator transactions that would move the
        # transaction counts other modules assert); a module sets SETTINGS = {...} to change any setting.
        # No MQTT either (tests/api/test_sensors.py sets a broker and a topic of its own).
        **{
            "audit_anchor_every": 0,
            "audit_anchor_seconds": 0,
            "sensor_mqtt_url": "",
            **getattr(request.module, "SETTINGS", {}),
        },
    )
    # a module sets APP = {...} for create_app's options (an extended operation catalogue, extra routers)
    app = create_app(settings, **getattr(request.module, "APP", {}))
    try:
        with TestClient(app, raise_server_exceptions=False) as http:
            key = app.state.ledger.operator_api_key
            assert key is not None
            yield Api(http, settings, {"Authorization": f"Bearer {key}"}, anvil)
    finally:
        with contextlib.suppress(Exception):
            anvil.kill()


def at_once(attempts: int, send: Callable[[int], httpx.Response]) -> list[httpx.Response]:
    """``send(i)`` from ``attempts`` threads, all released at the same moment."""
    barrier = threading.Barrier(attempts)

    def attempt(i: int) -> httpx.Response:
        barrier.wait()
        return send(i)

    with ThreadPoolExecutor(attempts) as pool:
        return list(pool.map(attempt, range(attempts)))
