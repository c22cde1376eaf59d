"""The whole ledger on a real anvil: ``ensure_deployment`` deploys it, the typed client drives both stories
through the transaction pipeline (journal in SQLite), the indexer follows, and anvil is restarted cleanly to
show that everything is still there. SIGKILL and re-sends are covered in ``test_pipeline_anvil.py``.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3

from ledger.client import LedgerClient
from ledger.compiler import Artifact
from ledger.db import make_engine, make_sessionmaker
from ledger.deployment import bind_contracts, dev_regulator, ensure_deployment
from ledger.errors import ErrorDecoder
from ledger.index import Indexer, snapshot_tables
from ledger.journal import IN_FLIGHT_STATUSES, JournalTransaction
from ledger.migrations import upgrade
from ledger.models import InvoiceState, PledgeState, ReceiptState
from ledger.node import connect, dev_key
from ledger.pipeline import Pipeline
from ledger.tooling.chain import Anvil, find_anvil
from tests.stories import Chain, Signers, onboard, receivable_story, warehouse_story

try:
    find_anvil()
except Exception as exc:  # pragma: no cover - depends on `npm ci`
    pytest.skip(f"anvil is not installed: {exc}", allow_module_level=True)


def anvil_chain(w3: Web3) -> Chain:
    def now() -> int:
        return int(w3.eth.get_block("latest")["timestamp"])

    async def travel_to(timestamp: int) -> None:
        w3.provider.make_request("evm_setNextBlockTimestamp", [max(timestamp, now() + 1)])  # type: ignore[arg-type]
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    async def fund_gas(address: str) -> None:
        w3.provider.make_request("anvil_setBalance", [address, hex(10**21)])  # type: ignore[arg-type]

    return Chain(now=now, travel_to=travel_to, fund_gas=fund_gas)


def database(path: Path) -> sessionmaker[Session]:
    url = f"sqlite:///{path}"
    upgrade(url)
    return make_sessionmaker(make_engine(url))


def test_both_stories_run_through_the_pipeline_and_survive_a_clean_anvil_restart(
    anvil: Anvil, artifacts: dict[str, Artifact], tmp_path: Path
) -> None:
    w3 = connect(anvil.rpc_url, anvil.chain_id)
    operator = Account.from_key(dev_key(0))
    ensured = ensure_deployment(w3, deployments_dir=tmp_path / "deployments", artifacts=artifacts, deployer=operator)
    assert not ensured.reused
    deployment = ensured.deployment
    contracts = bind_contracts(w3, deployment, artifacts)
    decoder = ErrorDecoder(a.abi for a in artifacts.values())
    sessions = database(tmp_path / "ledger.sqlite")
    signers = Signers()

    # The live index follows the chain while the stories run (its own thread and its own web3, as in the
    # service); a second index is built from block 0 afterwards.
    addresses = {key: str(c.address) for key, c in contracts.items()}
    abis = {key: c.abi for key, c in contracts.items()}
    live = Indexer(connect(anvil.rpc_url, anvil.chain_id), addresses, abis, sessions)
    follower = threading.Thread(target=live.run_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    follower.start()

    async def run() -> tuple[Any, Any, Any]:
        pipeline = Pipeline(anvil.rpc_url, anvil.chain_id, sessions, decoder)
        await pipeline.start()
        try:
            client = LedgerClient(w3, contracts, decoder, pipeline, signers)
            chain = anvil_chain(w3)
            cast = await onboard(client, chain, operator, signers, "anvil", dev_regulator())
            receivables = await receivable_story(client, chain, cast)
            warehouse = await warehouse_story(client, chain, cast)
            return cast, receivables, warehouse
        finally:
            await pipeline.stop()

    cast, receivables, warehouse = asyncio.run(run())

    # Every journaled operation confirmed or failed with its decoded error: none left in flight.
    with sessions() as session:
        rows = list(session.query(JournalTransaction))
    assert rows and not [r for r in rows if r.status in IN_FLIGHT_STATUSES]

    # The live index, caught up with the head, equals one rebuilt from block 0.
    live.stop()
    follower.join(timeout=30)
    live.sync_once()
    with sessions() as session:
        live_tables = snapshot_tables(session)
    rebuilt_sessions = database(tmp_path / "rebuilt.sqlite")
    rebuilt = Indexer(w3, addresses, abis, rebuilt_sessions)
    assert rebuilt.sync_once(to_block=live_tables["blocks"][-1]["number"]) == len(live_tables["events"])
    with rebuilt_sessions() as session:
        assert snapshot_tables(session) == live_tables

    def observed(w3: Web3) -> dict[str, Any]:
        client = LedgerClient(w3, bind_contracts(w3, deployment, artifacts), decoder)
        return {
            "invoice": client.invoice(receivables.invoice_id),
            "pieces": {n: client.piece(p) for n, p in receivables.pieces.items()},
            "cash": {
                n: client.balance_of(cast[n])
                for n in ("automaker", "seatmaker", "foammaker", "factor", "bank", "steel")
            },
            "receipts": [client.receipt(warehouse.redeemed_receipt), client.receipt(warehouse.enforced_receipt)],
            "pledges": [client.pledge_loan(p) for p in warehouse.pledges],
            "block": w3.eth.block_number,
        }

    before = observed(w3)
    assert before["invoice"].state is InvoiceState.PAID
    assert [r.state for r in before["receipts"]] == [ReceiptState.REDEEMED, ReceiptState.ACTIVE]
    assert before["receipts"][1].owner == cast["bank"]
    assert [p.state for p in before["pledges"]] == [PledgeState.RELEASED, PledgeState.ENFORCED]

    anvil.stop()
    anvil.start()
    w3_again = connect(anvil.rpc_url, anvil.chain_id)
    after = observed(w3_again)
    assert after.pop("block") >= before.pop("block")
    assert after == before
    again = ensure_deployment(
        w3_again, deployments_dir=tmp_path / "deployments", artifacts=artifacts, deployer=operator
    )
    assert again.reused
