"""The service served over real HTTP for the fuzzing and load tests: anvil on a free port, then the app under
uvicorn in a thread (its own event loop, as in production), on a fresh SQLite database."""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from api.app import create_app
from api.service import LedgerService
from ledger.identifiers import synthetic_credit_code
from ledger.settings import Settings
from ledger.tooling.chain import Anvil
from tests.api.conftest import free_port

_codes = itertools.count(int.from_bytes(os.urandom(2), "big") * 1000 + 10)


@dataclass
class Served:
    base_url: str
    app: FastAPI
    settings: Settings
    anvil: Anvil
    keys: dict[str, str] = field(default_factory=dict)
    """API keys by name; "operator" is the operator's."""
    addresses: dict[str, str] = field(default_factory=dict)

    @property
    def service(self) -> LedgerService:
        service: LedgerService = self.app.state.ledger
        return service

    def headers(self, who: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}", **extra}

    def onboard(self, http: httpx.Client, name: str, *roles: str) -> str:
        """A participant with ``roles``, registered on chain; its key is kept under ``name``."""
        answer = http.post(
            "/participants",
            json={"name": name, "credit_code": synthetic_credit_code(next(_codes)), "roles": list(roles)},
            headers=self.headers("operator", Prefer="wait=30"),
        )
        assert answer.status_code == 201 and answer.json()["status"] == "confirmed", answer.text
        self.keys[name] = answer.json()["api_key"]
        self.addresses[name] = answer.json()["participant"]["id"]
        return self.addresses[name]

    def deposit(self, http: httpx.Client, agent: str, name: str, amount: int) -> None:
        cash = {"participant": self.addresses[name], "amount": amount, "bank_reference": f"opening {name}"}
        answer = http.post("/deposits", json=cash, headers=self.headers(agent, Prefer="wait=30"))
        assert answer.status_code == 200, answer.text


@contextlib.contextmanager
def serve(tmp: Path, *, block_time: float = 0.25) -> Iterator[Served]:
    anvil = Anvil(tmp / "chain-node", port=free_port(), block_time=block_time)
    anvil.start()
    settings = Settings(
        rpc_url=anvil.rpc_url,
        chain_id=anvil.chain_id,
        data_dir=tmp,
        database_url=f"sqlite:///{tmp / 'ledger.sqlite3'}",
        deployments_dir=tmp / "deployments",
        master_secret=SecretStr("served tests master secret"),
    )
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the service did not start"
            time.sleep(0.1)
        served = Served(f"http://127.0.0.1:{port}", app, settings, anvil)
        key = app.state.ledger.operator_api_key
        assert key is not None
        served.keys["operator"] = key
        served.addresses["operator"] = str(app.state.ledger.operator.address)
        yield served
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        with contextlib.suppress(Exception):
            anvil.kill()
