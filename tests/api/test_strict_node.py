"""The service on the strict node profile (tests/strict_node.py): what a production Besu QBFT network allows, no more.

The service runs against anvil through a proxy that refuses the development nodes' methods (``anvil_*``,
``evm_*``, ``hardhat_*``), refuses an ``eth_getLogs`` wider than a small range limit as Besu does beyond its
``--rpc-max-logs-range``, and presents gas price 0; anvil mines with base fee 0, and the operator and every
participant hold no ether at all. Only the test moves the chain's clock, straight at anvil. The receivable story
goes through the REST API from deployment to redemption; then nothing forbidden was sent, every range read was
within the limit (the indexer paged), and the paged index holds exactly what one read in one go holds.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from ledger.db import make_engine, make_sessionmaker
from ledger.index import Indexer, snapshot_tables
from ledger.migrations import upgrade
from ledger.models import InvoiceState
from ledger.node import connect
from ledger.settings import Settings
from ledger.tooling.chain import Anvil
from tests.api.conftest import Api, free_port
from tests.api.test_receivables_api import YUAN, cast, due_in, ok
from tests.strict_node import StrictNode, strict_node

LOGS_MAX_RANGE = 5
"""The strict node's eth_getLogs limit (Besu's --rpc-max-logs-range, 5000 by default), small so the index pages."""


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, StrictNode]]:
    data_dir = tmp_path_factory.mktemp("strict-node")
    anvil = Anvil(data_dir / "chain-node", port=free_port(), block_time=0.25, base_fee=0, gas_price=0)
    anvil.start()
    try:
        with strict_node(anvil.rpc_url, logs_max_range=LOGS_MAX_RANGE) as node:
            settings = Settings(
                rpc_url=node.url,
                chain_id=anvil.chain_id,
                data_dir=data_dir,
                database_url=f"sqlite:///{data_dir / 'ledger.sqlite3'}",
                deployments_dir=data_dir / "deployments",
                master_secret=SecretStr("strict node tests master secret"),
                operator_key=SecretStr(Account.create().key.hex()),  # a fresh account: no ether at all
                gas_allowance_wei=0,  # participants get none either: a gas-free chain
                logs_max_range=LOGS_MAX_RANGE,
                audit_anchor_every=0,
                audit_anchor_seconds=0,
            )
            app = create_app(settings)
            with TestClient(app, raise_server_exceptions=False) as http:
                key = app.state.ledger.operator_api_key
                assert key is not None
                yield Api(http, settings, {"Authorization": f"Bearer {key}"}, anvil), node
    finally:
        with contextlib.suppress(Exception):
            anvil.kill()


def _balance(api: Api, address: str) -> int:
    return int(api.service.w3.eth.get_balance(address))  # type: ignore[arg-type]


def test_the_receivable_story_runs_on_a_gas_free_node_that_refuses_dev_methods_and_wide_log_ranges(
    strict: tuple[Api, StrictNode], tmp_path: Path
) -> None:
    api, node = strict
    http = api.http
    operator = str(api.service.operator.address)
    assert _balance(api, operator) == 0  # it deployed the contracts without a wei

    p = cast(api)
    body = {
        "buyer": p["automaker"].id,
        "amount": 1_000_000 * YUAN,
        "currency": "CNY",
        "invoice_number": f"{int(time.time() * 1000):020d}",
        "due_date": due_in(90, api),
    }
    invoice_id = ok(http.post("/invoices", json=body, headers=p["seatmaker"].waiting()))["result"]["invoice_id"]
    piece_id = ok(http.post(f"/invoices/{invoice_id}/confirm", headers=p["automaker"].waiting()))["result"]["piece_id"]
    transfer = {"to": p["foammaker"].id, "amount": 300_000 * YUAN}
    split = ok(http.post(f"/receivables/{piece_id}/transfers", json=transfer, headers=p["seatmaker"].waiting()))
    foam_piece = split["result"]["piece_id"]
    request = {
        "piece_id": foam_piece,
        "amount": 300_000 * YUAN,
        "financier": p["factor"].id,
        "max_discount_rate_bps": 600,
        "max_fee": 500 * YUAN,
    }
    request_id = ok(http.post("/financing-requests", json=request, headers=p["foammaker"].waiting()))["result"][
        "request_id"
    ]
    terms = {"discount_rate_bps": 600, "fee": 500 * YUAN}
    ok(http.post(f"/financing-requests/{request_id}/approve", json=terms, headers=p["factor"].waiting()))
    funded = ok(http.post(f"/financing-requests/{request_id}/fund", headers=p["factor"].waiting()))
    factor_piece = funded["result"]["piece_id"]

    # The holders' lists, read from the index, are what the chain says each holds.
    client = api.service.client
    held = {
        name: {item["id"]: item["value"] for item in ok(http.get("/receivables", headers=p[name].headers))["items"]}
        for name in ("seatmaker", "foammaker", "factor")
    }
    assert held == {
        "seatmaker": {piece_id: 700_000 * YUAN},
        "foammaker": {},
        "factor": {factor_piece: 300_000 * YUAN},
    }
    for name, pieces in held.items():
        for piece, value in pieces.items():
            assert (client.piece(piece).owner, client.piece(piece).value) == (p[name].id, value), (name, piece)

    api.travel(91 * 86_400)  # the test's own time travel: straight at anvil, not through the strict node
    repayment = {"amount": 1_000_000 * YUAN}
    ok(http.post(f"/obligations/{invoice_id}/repayments", json=repayment, headers=p["automaker"].waiting()))
    assert ok(http.post(f"/receivables/{piece_id}/redeem", headers=p["seatmaker"].waiting()))["result"]["payout"] == (
        700_000 * YUAN
    )
    ok(http.post(f"/receivables/{factor_piece}/redeem", headers=p["factor"].waiting()))

    # The audit log anchored and verified: its anchors are read from the deployment on, in ranges within the limit.
    ok(http.post("/audit/log/anchors", headers={**api.operator_headers, "Prefer": "wait=20"}))
    verification = ok(http.get("/audit/log/verify", headers=api.operator_headers))
    assert verification["valid"] and verification["anchors_checked"] >= 1, verification

    # On chain and in the index: the invoice paid; nobody ever held or spent ether.
    assert client.invoice(invoice_id).state is InvoiceState.PAID
    for name in ("operator", *p):
        address = operator if name == "operator" else p[name].id
        assert _balance(api, address) == 0, name

    assert ok(http.get(f"/invoices/{invoice_id}", headers=p["automaker"].headers))["state"] == "paid"

    # Nothing the production code sent was a development node's method; gas price 0 was all it was offered.
    assert node.forbidden == []
    assert node.methods["eth_sendRawTransaction"] >= 10

    # The index paged: many eth_getLogs by block range, none over the limit, none refused.
    ranges = [(first, last) for first, last, _ in node.log_ranges]
    assert len(ranges) >= 10
    assert all(last - first < LOGS_MAX_RANGE for first, last in ranges), ranges
    assert not [r for r in node.log_ranges if r[2]]

    # The paged index holds exactly what an index read from the deployment in one go holds.
    live = _snapshot(api.service.sessions)
    rebuilt_sessions = _index_database(tmp_path / "rebuilt.sqlite3")
    indexer = api.service.indexer
    direct = connect(api.anvil.rpc_url, api.anvil.chain_id)  # straight at anvil: no range limit
    rebuilt = Indexer(direct, indexer.contracts, _abis(api), rebuilt_sessions, start_block=indexer.start_block)
    rebuilt.sync_once(to_block=live["blocks"][-1]["number"])
    assert _snapshot(rebuilt_sessions) == live


def _snapshot(sessions: sessionmaker[Session]) -> dict[str, list[dict[str, Any]]]:
    with sessions() as session:
        return snapshot_tables(session)


def _index_database(path: Path) -> sessionmaker[Session]:
    url = f"sqlite:///{path}"
    upgrade(url)
    return make_sessionmaker(make_engine(url))


def _abis(api: Api) -> dict[str, Any]:
    return {key: contract.abi for key, contract in api.service.client.contracts.items()}


def test_a_transaction_reverted_in_its_block_is_decoded_without_the_debug_api(strict: tuple[Api, StrictNode]) -> None:
    """Besu without DEBUG answers debug_traceTransaction with -32604 Method not enabled: the pipeline stops
    asking and decodes the revert by replaying the transaction with eth_call at the parent block."""
    api, node = strict
    agent = api.onboard("Strict settlement bank", "settlement-agent")
    client, pipeline = api.service.client, api.service.pipeline
    account = api.service.keystore.account(agent.id)
    zero_mint = client.codec.encode_call("token", "mint", [agent.id, 0, b"strict zero".ljust(32, b"\0")])
    portal = api.http.portal
    assert portal is not None
    # an explicit gas limit: no estimate, so the transaction is sent, mined and reverts in its block
    portal.call(pipeline.submit, account, client.address_of("token"), zero_mint, 200_000, "strict-zero-mint")
    operation = portal.call(pipeline.wait, "strict-zero-mint", 30.0)
    assert operation.status.value == "failed" and operation.block_number is not None, operation
    assert operation.error_name == "DepositZeroAmount"
    assert node.methods["debug_traceTransaction"] == 1  # asked, and refused: the error came from the replay
    assert node.forbidden == []
