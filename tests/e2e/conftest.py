"""Fixtures of the end-to-end tests: real anvil nodes on free ports, each with its own data folder.

Every node a test starts is killed afterwards, whether the test passed or not: the ``make_anvil`` factory
kills the nodes it made, and a session finalizer kills any process still running that this test process
started (for instance through the CLI run in process).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from ledger.compiler import Artifact, compile_contracts
from ledger.models import Role
from ledger.node import connect, dev_key
from ledger.tooling import chain
from ledger.tooling.chain import Anvil

BLOCK_TIME = 0.2
"""Seconds per block in these tests: fast, yet interval mining as in production."""

FORBIDDEN_PORT = 8545
"""A developer's own anvil may be there; the tests never touch it."""


def free_port() -> int:
    """A TCP port nothing listens on now (not 8545)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port != FORBIDDEN_PORT:
            return port


def role(name: str) -> bytes:
    """The AccessControl id of the role called ``name`` (:attr:`ledger.models.Role.role_id`)."""
    return Role.named(name).role_id


def dev_account(index: int) -> LocalAccount:
    account: LocalAccount = Account.from_key(dev_key(index))
    return account


def transact(w3: Web3, account: LocalAccount, fn: ContractFunction) -> TxReceipt:
    """Sign ``fn`` as ``account``, send it raw and wait for a successful receipt."""
    transaction = fn.build_transaction(
        {"from": account.address, "nonce": w3.eth.get_transaction_count(account.address, "pending")}
    )
    tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(transaction).raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.05)
    assert receipt["status"] == 1, f"{fn.fn_name} reverted"
    return receipt


@pytest.fixture(scope="session")
def artifacts() -> dict[str, Artifact]:
    return compile_contracts()


@pytest.fixture
def make_anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Anvil]]:
    """Make :class:`Anvil` nodes (not started) on free ports in fresh data folders; all are killed at the end."""
    made: list[Anvil] = []

    def make(data_dir: Path | None = None, **options: Any) -> Anvil:
        options.setdefault("port", free_port())
        options.setdefault("block_time", BLOCK_TIME)
        anvil = Anvil(data_dir or tmp_path_factory.mktemp("anvil"), **options)
        made.append(anvil)
        return anvil

    yield make
    for anvil in made:
        with contextlib.suppress(Exception):
            anvil.kill()


@pytest.fixture
def anvil(make_anvil: Callable[..., Anvil]) -> Anvil:
    """A started node."""
    node = make_anvil()
    node.start()
    return node


@pytest.fixture
def w3(anvil: Anvil) -> Web3:
    return connect(anvil.rpc_url, anvil.chain_id)


@pytest.fixture(scope="session", autouse=True)
def _kill_leftover_nodes() -> Iterator[None]:
    yield
    for pid, process in list(chain._CHILDREN.items()):
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            process.wait(timeout=10)
