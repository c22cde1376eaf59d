"""Rollbacks while the indexer runs: on a real anvil mining every 0.2 s, ``evm_snapshot``, then 1-10 blocks
holding ledger events (participants registered), indexed live, then ``evm_revert``: the chain abandons those
blocks and grows another branch with other events. Afterwards the live index equals a full re-index into a
fresh database, and holds nothing of the abandoned branches.

Fast: 3 rollbacks. ``make soak``: 50.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from eth_account import Account
from eth_utils import keccak
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ledger.client import role_id
from ledger.compiler import Artifact
from ledger.db import make_engine, make_sessionmaker
from ledger.deployment import bind_contracts, ensure_deployment
from ledger.index import Indexer, snapshot_tables
from ledger.index.feed import FeedRow
from ledger.migrations import upgrade
from ledger.models import Role
from ledger.node import connect
from ledger.tooling.chain import Anvil, find_anvil
from tests.e2e.conftest import dev_account, transact

try:
    find_anvil()
except Exception as exc:  # pragma: no cover - depends on `npm ci`
    pytest.skip(f"anvil is not installed: {exc}", allow_module_level=True)


def database(path: Path) -> sessionmaker[Session]:
    url = f"sqlite:///{path}"
    upgrade(url)
    return make_sessionmaker(make_engine(url))


def run_rollbacks(make_anvil: Callable[..., Anvil], artifacts: dict[str, Artifact], tmp: Path, rollbacks: int) -> None:
    chance = random.Random(int.from_bytes(os.urandom(4), "big"))
    anvil = make_anvil()
    anvil.start()
    w3 = connect(anvil.rpc_url, anvil.chain_id)
    operator = dev_account(0)
    deployment = ensure_deployment(
        w3, deployments_dir=tmp / "deployments", artifacts=artifacts, deployer=operator
    ).deployment
    contracts = bind_contracts(w3, deployment, artifacts)
    registry = contracts["registry"]
    addresses = {key: str(c.address) for key, c in contracts.items()}
    abis = {key: c.abi for key, c in contracts.items()}

    live = Indexer(connect(anvil.rpc_url, anvil.chain_id), addresses, abis, database(tmp / "live.sqlite3"))
    follower = threading.Thread(target=live.run_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    follower.start()

    def register(tag: str) -> str:
        account = Account.create().address
        transact(w3, operator, registry.functions.register(account, keccak(text=tag), [role_id(Role.SUPPLIER)]))
        return str(account)

    def indexed_to_head() -> None:
        head = w3.eth.block_number
        deadline = time.monotonic() + 30
        while (live.indexed_block() or 0) < head:
            assert follower.is_alive(), "the indexer stopped"
            assert time.monotonic() < deadline, "the index did not catch up"
            time.sleep(0.02)

    kept: list[str] = []
    abandoned: list[str] = []
    for round_ in range(rollbacks):
        kept.append(register(f"kept {round_}"))
        fork = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
        fork_height = w3.eth.block_number
        depth = chance.randint(1, 10)
        while w3.eth.block_number < fork_height + depth:
            abandoned.append(register(f"abandoned {round_} {len(abandoned)}"))
        while w3.eth.block_number < fork_height + depth:
            time.sleep(0.05)
        indexed_to_head()  # the index holds the branch about to be abandoned
        assert w3.provider.make_request("evm_revert", [fork])["result"] is True  # type: ignore[arg-type]
        kept.append(register(f"after rollback {round_}"))  # another branch from the fork
    indexed_to_head()
    live.stop()
    follower.join(timeout=30)
    assert not follower.is_alive()
    live.sync_once()

    with live.session_factory() as session:
        live_tables = snapshot_tables(session)
    rebuilt = Indexer(w3, addresses, abis, database(tmp / "rebuilt.sqlite3"))
    rebuilt.sync_once(to_block=live.indexed_block())
    with rebuilt.session_factory() as session:
        assert snapshot_tables(session) == live_tables
    registered = {row["account"] for row in live_tables["participants"]}
    assert set(kept) <= registered
    assert not set(abandoned) & registered, "the index kept events of an abandoned branch"
    # The event feed followed: its live events (last row `added`) are exactly the index's events, and every
    # registration of an abandoned branch was announced, then retracted.
    with live.session_factory() as session:
        feed = list(session.scalars(select(FeedRow).order_by(FeedRow.seq)))
    last = {row.event_id: row.action for row in feed}
    stored = {f"{event['block_hash']}:{event['log_index']}" for event in live_tables["events"]}
    assert {event_id for event_id, action in last.items() if action == "added"} == stored
    retracted = [row for row in feed if row.action == "retracted"]
    assert {row.fields["account"] for row in retracted if row.kind == "participant.registered"} == set(abandoned)
    print(f"\n[reorgs] {rollbacks} rollbacks, {len(abandoned)} registrations abandoned, {len(kept)} kept")


def test_live_index_equals_a_full_reindex_after_random_rollbacks(
    make_anvil: Callable[..., Anvil], artifacts: dict[str, Artifact], tmp_path: Path
) -> None:
    run_rollbacks(make_anvil, artifacts, tmp_path, rollbacks=3)


@pytest.mark.soak
def test_live_index_equals_a_full_reindex_after_random_rollbacks_soak(
    make_anvil: Callable[..., Anvil], artifacts: dict[str, Artifact], tmp_path: Path
) -> None:
    run_rollbacks(make_anvil, artifacts, tmp_path, rollbacks=50)
