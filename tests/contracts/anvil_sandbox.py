"""The contract sandbox on a real anvil node, for the long property runs where eth-tester is too slow.

:func:`anvil_sandbox` starts anvil from ``node_modules`` (``--hardfork prague``, mining each transaction as it
arrives) on a free port, and builds the same :class:`ledger.tooling.sandbox.Sandbox` on it: the same cast, deployment
and opening balances, with anvil's impersonation standing in for eth-tester's keys. What the sandbox asks of
eth-tester directly (raw calls, snapshots, time travel) :class:`AnvilTester` answers with anvil's JSON-RPC
methods, so the stateful machines run unchanged. The node is this fixture's own and is killed afterwards.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from eth_account import Account
from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from ledger.compiler import compile_contracts
from ledger.tooling.chain import find_anvil
from ledger.tooling.sandbox import CAST, DEPLOY_GAS, Sandbox, _key_of
from ledger.tooling.sandbox import GAS_LIMIT as SANDBOX_GAS

GAS_LIMIT = 60_000_000


class AnvilTester:
    """The part of :class:`eth_tester.EthereumTester` the sandbox and the machines use, on anvil."""

    def __init__(self, w3: Web3) -> None:
        self.w3 = w3

    def _rpc(self, method: str, params: list[Any]) -> Any:
        response = self.w3.provider.make_request(method, params)  # type: ignore[arg-type]
        if "error" in response:
            raise RuntimeError(f"{method}: {response['error']}")
        return response["result"]

    def call(self, transaction: dict[str, Any], block: str = "latest") -> str:
        return str(self._rpc("eth_call", [transaction, block]))

    def take_snapshot(self) -> str:
        return str(self._rpc("evm_snapshot", []))

    def revert_to_snapshot(self, snapshot: str) -> None:
        if not self._rpc("evm_revert", [snapshot]):
            raise RuntimeError(f"anvil has no snapshot {snapshot}")

    def time_travel(self, timestamp: int) -> None:
        # eth-tester mines its block one second before the time it is given; so does this.
        self._rpc("evm_setNextBlockTimestamp", [timestamp - 1])
        self._rpc("evm_mine", [])


class AnvilSandbox(Sandbox):
    """The sandbox on anvil: a transaction's receipt is waited for (anvil mines it as it arrives, but answers
    the send before the receipt is stored)."""

    def send_raw(self, fn: ContractFunction, sender: str, *, gas: int = SANDBOX_GAS) -> TxReceipt:
        tx_hash = fn.transact({"from": self.accounts[sender], "gas": gas})
        return self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60, poll_latency=0.01)

    def deploy(self, contract_name: str, *args: Any, sender: str) -> Contract:
        artifact = self.artifacts[contract_name]
        factory = self.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        tx_hash = factory.constructor(*args).transact({"from": self.accounts[sender], "gas": DEPLOY_GAS})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60, poll_latency=0.01)
        if receipt["status"] != 1 or receipt["contractAddress"] is None:
            raise RuntimeError(f"deploying {contract_name} failed")
        return self.w3.eth.contract(address=receipt["contractAddress"], abi=artifact.abi)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def anvil_sandbox() -> Iterator[Sandbox]:
    """A sandbox deployed on an anvil node of its own (tests reset it with snapshot/revert, as on eth-tester);
    the node is killed at the end of the session."""
    port = _free_port()
    command = [str(find_anvil()), "--host", "127.0.0.1", "--port", str(port), "--hardfork", "prague"]
    # A zero base fee stays zero: after snapshots and time travel no transaction waits in the pool for its fee.
    command += ["--gas-limit", str(GAS_LIMIT), "--chain-id", "31337", "--base-fee", "0"]
    node = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        w3 = Web3(HTTPProvider(f"http://127.0.0.1:{port}", request_kwargs={"timeout": 60}))
        deadline = time.monotonic() + 30
        while not w3.is_connected():
            if node.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"anvil did not start on port {port}")
            time.sleep(0.1)
        tester = AnvilTester(w3)
        tester._rpc("anvil_autoImpersonateAccount", [True])
        accounts: dict[str, str] = {}
        for name in CAST:
            address = Account.from_key(_key_of(name)).address
            tester._rpc("anvil_setBalance", [address, hex(10**21)])
            accounts[name] = address
        sandbox = AnvilSandbox(w3=w3, tester=tester, artifacts=compile_contracts(), accounts=accounts)  # type: ignore[arg-type]
        sandbox._deploy(with_warehouse=True)
        yield sandbox
    finally:
        node.kill()
        node.wait(timeout=10)
