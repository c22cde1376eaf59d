"""The local chain and the deployment, against real anvil nodes: start, deploy, reuse, restart, crash.

Each test starts its own anvil (``make_anvil``) on a free port with its own data folder, mining a block
every 0.2 s and dumping its state every second, as ``scf chain start`` does.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from eth_utils import keccak
from pydantic import SecretStr
from typer.testing import CliRunner
from web3 import HTTPProvider, Web3
from web3.exceptions import ExtraDataLengthError
from web3.middleware import ExtraDataToPOAMiddleware

from ledger.compiler import Artifact
from ledger.deployment import (
    DEV_REGULATOR_INDEX,
    MODULE,
    SYSTEM_ROLE,
    Deployment,
    DeploymentMissing,
    DeploymentProgress,
    OperatorKeyMissing,
    OutdatedDeployment,
    StaleDeployment,
    attach_deployment,
    deploy,
    deployment_dir,
    ensure_deployment,
    first_block,
    load_deployment,
    operator_account,
)
from ledger.node import DEV_MNEMONIC, LOCAL_CHAIN_ID, ChainIdMismatch, ChainUnreachable, connect, dev_key
from ledger.settings import Settings
from ledger.tooling.chain import Anvil, AnvilError, _rpc
from ledger.tooling.state_keeper import KEEP_DEFAULT, inspect_state, kept_dumps
from scf.cli import app
from tests.e2e.conftest import dev_account, free_port, role, transact

ROOT = Path(__file__).resolve().parents[2]
LEDGER_CONTRACTS = [
    "ParticipantRegistry",
    "SignedActs",
    "DepositToken",
    "AuditAnchor",
    "Receivables",
    "WarehouseReceipts",
]
#: The contracts registered as `system` participants (those that hold deposit tokens).
SYSTEM_CONTRACTS = ["DepositToken", "Receivables", "WarehouseReceipts"]


def _deploy(w3: Web3, artifacts: dict[str, Artifact], deployments: Path, **options: Any) -> Any:
    return ensure_deployment(w3, deployments_dir=deployments, artifacts=artifacts, deployer=dev_account(0), **options)


def _onboard_and_mint(w3: Web3, artifacts: dict[str, Artifact], deployment: Deployment, amount: int) -> int:
    """Register a settlement agent and a supplier, mint ``amount`` to the supplier; return the mint's block."""
    operator, agent, supplier = dev_account(0), dev_account(1), dev_account(2)
    registry = w3.eth.contract(
        address=deployment.address("ParticipantRegistry"), abi=artifacts["ParticipantRegistry"].abi
    )
    token = w3.eth.contract(address=deployment.address("DepositToken"), abi=artifacts["DepositToken"].abi)
    transact(w3, operator, registry.functions.register(agent.address, b"\x01" * 32, [role("settlement-agent")]))
    transact(w3, operator, registry.functions.register(supplier.address, b"\x02" * 32, [role("supplier")]))
    receipt = transact(w3, agent, token.functions.mint(supplier.address, amount, b"\x03" * 32))
    return int(receipt["blockNumber"])


def _ledger_state(w3: Web3, artifacts: dict[str, Artifact], deployment: Deployment) -> tuple[bool, int]:
    """(is the supplier an active participant, its deposit-token balance)."""
    supplier = dev_account(2).address
    registry = w3.eth.contract(
        address=deployment.address("ParticipantRegistry"), abi=artifacts["ParticipantRegistry"].abi
    )
    token = w3.eth.contract(address=deployment.address("DepositToken"), abi=artifacts["DepositToken"].abi)
    return registry.functions.isActive(supplier).call(), token.functions.balanceOf(supplier).call()


def _dumped_block(anvil: Anvil) -> int:
    """The head block of anvil's last state dump."""
    number = json.loads(anvil.state_file.read_text())["best_block_number"]
    return int(number, 0) if isinstance(number, str) else int(number)


def _wait_until_dumped(anvil: Anvil, block: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if _dumped_block(anvil) >= block:
                return
        except (OSError, ValueError, KeyError):
            pass  # being rewritten
        assert time.monotonic() < deadline, f"anvil did not dump block {block} within {timeout} s"
        time.sleep(0.1)


# -- anvil ---------------------------------------------------------------------------------------------


def test_start_answers_with_the_configured_chain_and_dev_accounts(anvil: Anvil, w3: Web3) -> None:
    status = anvil.status()
    assert status.running and status.pid is not None
    assert status.chain_id == LOCAL_CHAIN_ID
    assert status.rpc_url == anvil.rpc_url
    assert anvil.pid_file.is_file() and anvil.log_file.is_file()
    assert w3.eth.accounts[0] == dev_account(0).address  # the standard mnemonic's first account
    assert DEV_MNEMONIC in " ".join(anvil.command())
    assert w3.eth.get_block("latest")["gasLimit"] == anvil.gas_limit


def test_a_throwaway_chain_keeps_no_state_file_and_no_past_states(make_anvil: Callable[..., Anvil]) -> None:
    node = make_anvil(state_interval=None, prune_history=True)
    assert "--state" not in node.command() and "--state-interval" not in node.command()
    node.start()
    w3 = Web3(HTTPProvider(node.rpc_url))
    for _ in range(3):
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    account = dev_account(1).address
    assert w3.eth.get_balance(account) > 0  # the latest state answers
    with pytest.raises(Exception, match="BlockOutOfRange"):  # a past one is gone
        w3.eth.get_balance(account, block_identifier=1)
    assert len(w3.eth.get_block(1)["hash"]) == 32  # its block is kept
    node.stop()
    assert not node.state_file.exists() and not node.keep_dir.exists()


def test_the_local_chain_prunes_past_states_only_when_told(tmp_path: Path) -> None:
    def command(**options: Any) -> list[str]:
        return Anvil.from_settings(Settings(data_dir=tmp_path, _env_file=None, **options)).command()  # type: ignore[call-arg]

    assert "--prune-history" not in command()  # reads at past blocks answer, by default
    assert "--prune-history" in command(anvil_prune_history=True)


def test_start_twice_leaves_the_running_node_alone(anvil: Anvil) -> None:
    first = anvil.status()
    again = anvil.start()
    assert again.already_running
    assert again.pid == first.pid


def test_concurrent_starts_of_one_data_folder_start_one_node(make_anvil: Callable[..., Anvil]) -> None:
    node = make_anvil()
    twin = Anvil(node.data_dir, port=node.port, block_time=node.block_time)
    results: list[Any] = []
    threads = [threading.Thread(target=lambda a=a: results.append(a.start())) for a in (node, twin)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.already_running for r in results) == [False, True]
    assert len({r.pid for r in results}) == 1
    assert node.status().running


def test_start_refuses_a_port_taken_by_another_program(make_anvil: Callable[..., Anvil]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        node = make_anvil(port=squatter.getsockname()[1])
        with pytest.raises(AnvilError, match="taken by another program"):
            node.start()
    assert not node.status().running
    assert not node.pid_file.exists()


def test_a_stale_pid_file_reads_as_not_running(make_anvil: Callable[..., Anvil]) -> None:
    node = make_anvil()
    node.chain_dir.mkdir(parents=True)
    exited = subprocess.Popen(["true"])
    exited.wait()
    record = {"pid": exited.pid, "host": "127.0.0.1", "port": node.port, "chain_id": 31337, "started_at": ""}
    node.pid_file.write_text(json.dumps(record))
    assert not node.status().running
    assert not node.pid_file.exists()
    assert node.stop() is None


def test_stop_saves_the_state_on_exit(make_anvil: Callable[..., Anvil]) -> None:
    node = make_anvil(state_interval=3600)  # no interval dump: only the one on exit can hold the last block
    node.start()
    w3 = connect(node.rpc_url, node.chain_id)
    tx_hash = w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": w3.eth.accounts[1], "value": 1})
    w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10, poll_latency=0.05)
    last_block = w3.eth.block_number
    stopped = node.stop()
    assert stopped is not None and stopped.state_saved and not stopped.killed
    assert not node.status().running and not node.pid_file.exists()
    assert _dumped_block(node) >= last_block


# -- connecting ----------------------------------------------------------------------------------------


def test_connect_refuses_a_chain_id_mismatch(anvil: Anvil) -> None:
    with pytest.raises(ChainIdMismatch) as caught:
        connect(anvil.rpc_url, 1)
    assert (caught.value.expected, caught.value.actual) == (1, LOCAL_CHAIN_ID)
    assert "refusing" in str(caught.value)


def test_connect_raises_chain_unreachable_when_no_node_answers() -> None:
    with pytest.raises(ChainUnreachable, match="Connection refused"):
        connect(f"http://127.0.0.1:{free_port()}", LOCAL_CHAIN_ID, timeout=2)


class _QbftNode(BaseHTTPRequestHandler):
    """Answers like a Besu QBFT validator: chain 1337, blocks whose extraData is 97 bytes."""

    EXTRA_DATA = "0x" + "ab" * 97

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        results = {"eth_chainId": "0x539", "eth_getBlockByNumber": self._block()}
        body = json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": results[request["method"]]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass

    def _block(self) -> dict[str, Any]:
        zero32 = "0x" + "00" * 32
        return {
            "number": "0x10",
            "hash": "0x" + "11" * 32,
            "parentHash": "0x" + "22" * 32,
            "mixHash": "0x63746963616c2062797a616e74696e65206661756c7420746f6c6572616e6365",
            "nonce": "0x0000000000000000",
            "sha3Uncles": "0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347",
            "logsBloom": "0x" + "00" * 256,
            "transactionsRoot": zero32,
            "stateRoot": zero32,
            "receiptsRoot": zero32,
            "miner": "0x" + "33" * 20,
            "difficulty": "0x1",
            "totalDifficulty": "0x11",
            "extraData": self.EXTRA_DATA,
            "size": "0x2a0",
            "gasLimit": "0x1c9c380",
            "gasUsed": "0x0",
            "timestamp": "0x6553f100",
            "baseFeePerGas": "0x0",
            "transactions": [],
            "uncles": [],
        }


@pytest.fixture
def qbft_node() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _QbftNode)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_connect_decodes_proof_of_authority_blocks_with_long_extra_data(qbft_node: str) -> None:
    plain = Web3(HTTPProvider(qbft_node))
    with pytest.raises(ExtraDataLengthError):  # what the middleware is for
        plain.eth.get_block("latest")

    w3 = connect(qbft_node, 1337)
    assert ExtraDataToPOAMiddleware in w3.middleware_onion
    block = w3.eth.get_block("latest")
    assert block["number"] == 16
    assert block["proofOfAuthorityData"].to_0x_hex() == _QbftNode.EXTRA_DATA


# -- the operator's key --------------------------------------------------------------------------------


def test_operator_defaults_to_the_first_dev_account_only_on_the_local_chain() -> None:
    assert operator_account(None, LOCAL_CHAIN_ID).address == dev_account(0).address
    assert operator_account(SecretStr(""), LOCAL_CHAIN_ID).address == dev_account(0).address
    with pytest.raises(OperatorKeyMissing, match="required on chain 1337"):
        operator_account(None, 1337)


def test_operator_key_is_used_and_dev_keys_are_refused_off_the_local_chain() -> None:
    own_key = "0x" + keccak(text="an operator's own key").hex()
    assert operator_account(SecretStr(own_key), 1337).key.hex().endswith(own_key[2:])
    with pytest.raises(OperatorKeyMissing, match="public dev keys"):
        operator_account(SecretStr("0x" + dev_key(3).hex()), 1337)
    with pytest.raises(OperatorKeyMissing, match="not a valid private key"):
        operator_account(SecretStr("not a key"), 1337)


# -- deploying -----------------------------------------------------------------------------------------


def test_deploy_writes_ignition_addresses_abis_and_wires_roles(
    w3: Web3, artifacts: dict[str, Artifact], tmp_path: Path
) -> None:
    events: list[DeploymentProgress] = []
    outcome = _deploy(w3, artifacts, tmp_path, progress=events.append)
    deployment = outcome.deployment

    assert not outcome.reused
    assert outcome.directory == deployment_dir(tmp_path, LOCAL_CHAIN_ID) == tmp_path / "chain-31337"
    addresses = json.loads((outcome.directory / "deployed_addresses.json").read_text())
    assert list(addresses) == [f"{MODULE}#{name}" for name in LEDGER_CONTRACTS]
    assert addresses["ScfLedger#Receivables"] == deployment.address("Receivables")
    for name in LEDGER_CONTRACTS:
        assert json.loads((outcome.directory / "abi" / f"{name}.json").read_text()) == artifacts[name].abi
        assert w3.eth.get_code(deployment.address(name))
    assert sorted(p.name for p in (outcome.directory / "abi").iterdir()) == sorted(
        f"{n}.json" for n in LEDGER_CONTRACTS
    )
    record = json.loads((outcome.directory / "deployment.json").read_text())
    assert record["chainId"] == LOCAL_CHAIN_ID
    assert record["deployer"] == record["operator"] == dev_account(0).address
    assert record["sourceHash"] == artifacts["Receivables"].source_hash
    assert record["blockHash"] == w3.eth.get_block(record["blockNumber"])["hash"].to_0x_hex()

    registry = w3.eth.contract(
        address=deployment.address("ParticipantRegistry"), abi=artifacts["ParticipantRegistry"].abi
    )
    assert registry.functions.hasRole(role("operator"), dev_account(0).address).call()
    # The first regulator is named by the deployment (the local chain's dev regulator), and only it admits others.
    assert record["regulator"] == deployment.regulator == dev_account(DEV_REGULATOR_INDEX).address
    assert registry.functions.hasRole(role("regulator"), record["regulator"]).call()
    assert registry.functions.getRoleAdmin(role("regulator")).call() == role("regulator")
    assert not registry.functions.hasRole(role("regulator"), dev_account(0).address).call()
    for name in SYSTEM_CONTRACTS:
        assert registry.functions.hasRole(SYSTEM_ROLE, deployment.address(name)).call()
        assert registry.functions.isActive(deployment.address(name)).call()
    assert not registry.functions.hasRole(SYSTEM_ROLE, deployment.address("AuditAnchor")).call()
    anchor = w3.eth.contract(address=deployment.address("AuditAnchor"), abi=artifacts["AuditAnchor"].abi)
    assert anchor.functions.registry().call() == deployment.address("ParticipantRegistry")
    receivables = w3.eth.contract(address=deployment.address("Receivables"), abi=artifacts["Receivables"].abi)
    assert receivables.functions.depositToken().call() == deployment.address("DepositToken")

    # Every step reported sent, then confirmed; 6 contracts (SignedActs last, at the address the others were
    # given), 3 registrations and the registry's SignedActs, in 5 batches, each mined after the one before (a
    # batch is sent at once, but on a busy machine it may straddle two blocks).
    assert [e.step for e in events if e.confirmed] == list(range(1, 11))
    assert len([e for e in events if not e.confirmed]) == 10
    block_of = {e.step: e.block_number for e in events if e.confirmed}
    batches = [[1], [2, 3], [4, 5], [6], [7, 8, 9, 10]]
    for earlier, later in itertools.pairwise(batches):
        assert max(block_of[s] for s in earlier) < min(block_of[s] for s in later), block_of


def test_a_second_deploy_reuses_the_deployment_and_sends_nothing(
    w3: Web3, artifacts: dict[str, Artifact], tmp_path: Path
) -> None:
    first = _deploy(w3, artifacts, tmp_path).deployment
    nonce = w3.eth.get_transaction_count(dev_account(0).address)
    written = (tmp_path / "chain-31337" / "deployment.json").stat().st_mtime_ns

    again = _deploy(w3, artifacts, tmp_path)
    assert again.reused
    assert again.deployment == first
    assert w3.eth.get_transaction_count(dev_account(0).address, "pending") == nonce
    assert (tmp_path / "chain-31337" / "deployment.json").stat().st_mtime_ns == written

    fresh = _deploy(w3, artifacts, tmp_path, fresh=True)
    assert not fresh.reused
    assert set(fresh.deployment.addresses.values()).isdisjoint(first.addresses.values())
    # 6 contracts, 3 registrations and the registry naming SignedActs
    assert w3.eth.get_transaction_count(dev_account(0).address) == nonce + 10
    assert load_deployment(tmp_path, LOCAL_CHAIN_ID, w3) == fresh.deployment


def test_a_gateway_attaches_to_the_recorded_deployment_from_its_first_block_and_never_deploys(
    w3: Web3, artifacts: dict[str, Artifact], tmp_path: Path
) -> None:
    with pytest.raises(DeploymentMissing, match="SCF_DEPLOYMENTS_DIR"):
        attach_deployment(w3, deployments_dir=tmp_path, artifacts=artifacts, role="member")
    assert not (tmp_path / "chain-31337").exists()

    w3.eth.send_transaction({"from": w3.eth.accounts[5], "to": w3.eth.accounts[6], "value": 1})  # a block before
    deployment = _deploy(w3, artifacts, tmp_path).deployment
    assert attach_deployment(w3, deployments_dir=tmp_path, artifacts=artifacts, role="member") == deployment
    start = first_block(w3, deployment)
    registry = deployment.address("ParticipantRegistry")
    logs = w3.eth.get_logs({"fromBlock": 0, "toBlock": deployment.block_number, "address": registry})
    assert 0 < start < deployment.block_number
    assert min(log["blockNumber"] for log in logs) == start  # the registry's constructor: nothing of it is older

    record_file = tmp_path / "chain-31337" / "deployment.json"
    record = json.loads(record_file.read_text())
    record_file.write_text(json.dumps({**record, "sourceHash": "0" * 64}))
    with pytest.raises(OutdatedDeployment, match="release"):
        attach_deployment(w3, deployments_dir=tmp_path, artifacts=artifacts, role="regulator")


def test_a_deployment_of_other_sources_is_refused_unless_fresh(
    w3: Web3, artifacts: dict[str, Artifact], tmp_path: Path
) -> None:
    _deploy(w3, artifacts, tmp_path)
    record_file = tmp_path / "chain-31337" / "deployment.json"
    record = json.loads(record_file.read_text())
    record["sourceHash"] = "0" * 64
    record_file.write_text(json.dumps(record))
    with pytest.raises(OutdatedDeployment, match="--fresh"):
        _deploy(w3, artifacts, tmp_path)
    assert not _deploy(w3, artifacts, tmp_path, fresh=True).reused


def test_a_deployment_from_a_chain_that_was_reset_is_stale_and_replaced(
    make_anvil: Callable[..., Anvil], artifacts: dict[str, Artifact], tmp_path: Path
) -> None:
    first_chain = make_anvil()
    first_chain.start()
    w3 = connect(first_chain.rpc_url, LOCAL_CHAIN_ID)
    recorded = _deploy(w3, artifacts, tmp_path).deployment
    first_chain.kill()

    # A new chain on the same port: nothing there.
    reset = make_anvil(port=first_chain.port)
    reset.start()
    w3 = connect(reset.rpc_url, LOCAL_CHAIN_ID)
    with pytest.raises(StaleDeployment, match="no code"):
        load_deployment(tmp_path, LOCAL_CHAIN_ID, w3)

    # The same deployer deploys again: same addresses (same nonces), but another chain history.
    w3.eth.send_transaction({"from": w3.eth.accounts[5], "to": w3.eth.accounts[6], "value": 1})  # shift blocks
    redeployed = deploy(w3, deployer=dev_account(0), artifacts=artifacts)
    assert redeployed.addresses == recorded.addresses
    with pytest.raises(StaleDeployment, match="reset"):
        load_deployment(tmp_path, LOCAL_CHAIN_ID, w3)

    replaced = _deploy(w3, artifacts, tmp_path)
    assert not replaced.reused and replaced.replaced is not None
    assert load_deployment(tmp_path, LOCAL_CHAIN_ID, w3) == replaced.deployment


# -- restarts and crashes ------------------------------------------------------------------------------


def test_a_clean_restart_keeps_contracts_participants_and_balances(
    anvil: Anvil, w3: Web3, artifacts: dict[str, Artifact], tmp_path: Path
) -> None:
    deployment = _deploy(w3, artifacts, tmp_path).deployment
    _onboard_and_mint(w3, artifacts, deployment, 12_345)
    head = w3.eth.get_block("latest")

    stopped = anvil.stop()
    assert stopped is not None and stopped.state_saved
    restarted = anvil.start()
    assert not restarted.already_running and restarted.restored_from is None

    w3 = connect(anvil.rpc_url, LOCAL_CHAIN_ID)
    assert w3.eth.get_block(head["number"])["hash"] == head["hash"]  # the blocks too, not only the state
    assert _ledger_state(w3, artifacts, deployment) == (True, 12_345)
    assert load_deployment(tmp_path, LOCAL_CHAIN_ID, w3) == deployment
    assert _deploy(w3, artifacts, tmp_path).reused
    assert anvil.backup_file.is_file()  # the state as loaded at this start


@pytest.mark.parametrize("stop", ["clean", "sigkill"])
def test_block_time_never_goes_back_across_a_restart_after_the_clock_was_moved_forward(
    anvil: Anvil, w3: Web3, stop: str
) -> None:
    """Invariant 11. The demo and maturity tests move anvil's clock months ahead (evm_increaseTime); anvil does not
    keep that offset in its state dump, so a restarted node used to stamp new blocks months before the last one."""
    ninety_one_days = 91 * 24 * 3600
    w3.provider.make_request("evm_increaseTime", [ninety_one_days])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    moved = w3.eth.get_block("latest")
    assert moved["timestamp"] > time.time() + ninety_one_days - 60
    if stop == "clean":
        anvil.stop()
    else:
        _wait_until_dumped(anvil, moved["number"])
        anvil.kill()
    anvil.start()
    w3 = connect(anvil.rpc_url, LOCAL_CHAIN_ID)
    last = w3.eth.get_block("latest")
    deadline = time.monotonic() + 10
    while w3.eth.block_number < last["number"] + 3:  # a few new blocks, mined by the restarted node
        assert time.monotonic() < deadline, "the restarted node mines no blocks"
        time.sleep(0.05)
    stamps = [w3.eth.get_block(n)["timestamp"] for n in range(moved["number"], w3.eth.block_number + 1)]
    assert stamps == sorted(stamps), stamps  # never older than the block before
    assert stamps[-1] >= moved["timestamp"]


def test_after_sigkill_a_restart_has_the_state_up_to_the_last_dump(
    anvil: Anvil, w3: Web3, artifacts: dict[str, Artifact], tmp_path: Path
) -> None:
    deployment = _deploy(w3, artifacts, tmp_path).deployment
    minted_in = _onboard_and_mint(w3, artifacts, deployment, 777)
    _wait_until_dumped(anvil, minted_in)
    head_at_kill = w3.eth.block_number

    assert anvil.kill() is not None
    assert not anvil.status().running and not anvil.pid_file.exists()
    dumped = _dumped_block(anvil)
    assert minted_in <= dumped <= head_at_kill  # at most the last interval's blocks are lost

    anvil.start()
    w3 = connect(anvil.rpc_url, LOCAL_CHAIN_ID)
    assert w3.eth.block_number >= dumped
    assert _ledger_state(w3, artifacts, deployment) == (True, 777)
    assert load_deployment(tmp_path, LOCAL_CHAIN_ID, w3) == deployment


def test_a_state_file_truncated_by_a_crash_is_set_aside_and_the_backup_restored(
    anvil: Anvil, w3: Web3, artifacts: dict[str, Artifact], tmp_path: Path
) -> None:
    deployment = _deploy(w3, artifacts, tmp_path).deployment
    anvil.stop()
    anvil.start()  # takes the backup: the state with the deployment
    anvil.kill()
    text = anvil.state_file.read_bytes()
    anvil.state_file.write_bytes(text[: len(text) // 2])  # what a SIGKILL during a dump leaves

    status = anvil.start()
    # the newest consistent dump the keeper copied since the last start, or else the backup of that start
    assert status.running and status.restored_from in [*kept_dumps(anvil.keep_dir), anvil.backup_file]
    assert len(list(anvil.chain_dir.glob("anvil-state.json.corrupt-*"))) == 1
    w3 = connect(anvil.rpc_url, LOCAL_CHAIN_ID)
    assert load_deployment(tmp_path, LOCAL_CHAIN_ID, w3) == deployment


def test_a_start_sets_aside_the_dumps_kept_by_an_earlier_run_so_a_crash_never_restores_an_older_state(
    anvil: Anvil, artifacts: dict[str, Artifact], tmp_path: Path
) -> None:
    """A dump the keeper copied during an earlier run is older than the state the next run starts from (a clean
    stop dumps what came after it). Were it still there when that run is killed before its own keeper copies
    anything, the restart would load it and lose the rest: a CI run lost the last contracts of a deployment so."""
    anvil.stop()
    early = tmp_path / "early-state.json"
    early.write_bytes(anvil.state_file.read_bytes())  # consistent, before the deployment
    anvil.start()
    deployment = _deploy(connect(anvil.rpc_url, LOCAL_CHAIN_ID), artifacts, tmp_path).deployment
    anvil.stop()  # the dump on exit holds the whole deployment
    for kept in kept_dumps(anvil.keep_dir):
        kept.unlink()
    planted = anvil.keep_dir / "state-00000000000000000001.json"  # as the earlier run's keeper would have left it
    anvil.keep_dir.mkdir(parents=True, exist_ok=True)
    planted.write_bytes(early.read_bytes())
    assert inspect_state(planted).consistent

    anvil.start()
    assert not planted.exists()
    anvil.kill()  # before this run's keeper copied a dump of its own
    text = anvil.state_file.read_bytes()
    anvil.state_file.write_bytes(text[: len(text) // 2])
    status = anvil.start()
    assert status.running and status.restored_from in [*kept_dumps(anvil.keep_dir), anvil.backup_file]
    assert load_deployment(tmp_path, LOCAL_CHAIN_ID, connect(anvil.rpc_url, LOCAL_CHAIN_ID)) == deployment


def _wait_for_kept_dump(anvil: Anvil, timeout: float = 10.0) -> Path:
    deadline = time.monotonic() + timeout
    while not (kept := [p for p in kept_dumps(anvil.keep_dir) if inspect_state(p).consistent]):
        assert time.monotonic() < deadline, "the state keeper copied no consistent dump"
        time.sleep(0.1)
    return kept[0]


def test_the_state_keeper_keeps_the_newest_dumps_and_exits_with_anvil(
    anvil: Anvil, w3: Web3, artifacts: dict[str, Artifact], tmp_path: Path
) -> None:
    _deploy(w3, artifacts, tmp_path)
    _wait_for_kept_dump(anvil)
    time.sleep(6 * anvil.state_interval)  # more dumps than it keeps
    kept = kept_dumps(anvil.keep_dir)
    assert 1 <= len(kept) <= KEEP_DEFAULT
    # The keeper goes on copying and pruning while we read: a dump pruned between the listing and its reading is
    # not a bad dump. Every dump still there after it was read must have been readable.
    checks = [(p, inspect_state(p)) for p in kept]
    assert all(check.readable for p, check in checks if p.exists()), [(p.name, c.problem) for p, c in checks]
    assert any(check.readable for _, check in checks)
    pid = anvil.status().pid
    anvil.kill()
    deadline = time.monotonic() + 5
    while any(f"--pid {pid}".encode() in c for c in _command_lines()):
        assert time.monotonic() < deadline, "the state keeper outlived anvil"
        time.sleep(0.1)


def _command_lines() -> list[bytes]:
    lines = []
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if proc.name.isdigit():
                lines.append((proc / "cmdline").read_bytes().replace(b"\0", b" "))
    return lines


def test_a_dump_whose_accounts_are_ahead_of_its_blocks_is_inconsistent(
    anvil: Anvil, w3: Web3, artifacts: dict[str, Artifact], tmp_path: Path
) -> None:
    _deploy(w3, artifacts, tmp_path)
    head = w3.eth.block_number
    deadline = time.monotonic() + 10
    # A dump kept before the deployment's blocks has no transaction to move (a loaded machine can keep one late).
    while (good := _wait_for_kept_dump(anvil)) and (inspect_state(good).best_block or 0) < head:
        assert time.monotonic() < deadline, "no kept dump reached the deployment's blocks"
        time.sleep(0.2)
    assert inspect_state(good).consistent
    state = json.loads(good.read_text())
    operator = dev_account(0).address.lower()
    state["accounts"][operator]["nonce"] += 1  # a transaction executed whose block is not in the dump
    ahead = tmp_path / "ahead.json"
    ahead.write_text(json.dumps(state))
    check = inspect_state(ahead)
    assert check.readable and not check.consistent and "nonce" in (check.problem or "")

    state = json.loads(good.read_text())
    state["transactions"][-1]["block_number"] = state["best_block_number"] + 1
    beyond = tmp_path / "beyond.json"
    beyond.write_text(json.dumps(state))
    assert "above the best block" in (inspect_state(beyond).problem or "")


def test_an_inconsistent_state_file_is_set_aside_and_the_newest_consistent_dump_restored(
    anvil: Anvil, w3: Web3, artifacts: dict[str, Artifact], tmp_path: Path
) -> None:
    deployment = _deploy(w3, artifacts, tmp_path).deployment
    _onboard_and_mint(w3, artifacts, deployment, 777)
    head = w3.eth.block_number
    deadline = time.monotonic() + 10
    while (good := _wait_for_kept_dump(anvil)) and (inspect_state(good).best_block or 0) < head:
        assert time.monotonic() < deadline, "no kept dump reached the mint's block"
        time.sleep(0.2)
    anvil.kill()
    state = json.loads(anvil.state_file.read_text())
    state["accounts"][dev_account(0).address.lower()]["nonce"] += 1  # what a dump raced by a block leaves
    anvil.state_file.write_text(json.dumps(state))

    status = anvil.start()
    assert status.running and status.restored_from is not None
    assert status.restored_from.parent == anvil.keep_dir
    assert inspect_state(anvil.state_file).consistent
    assert len(list(anvil.chain_dir.glob("anvil-state.json.corrupt-*"))) == 1
    w3 = connect(anvil.rpc_url, LOCAL_CHAIN_ID)
    assert _ledger_state(w3, artifacts, deployment) == (True, 777)


def test_a_truncated_state_file_without_backup_is_refused_with_the_reason(make_anvil: Callable[..., Anvil]) -> None:
    node = make_anvil()
    node.chain_dir.mkdir(parents=True)
    node.state_file.write_text('{"block": {"number": ')
    with pytest.raises(AnvilError, match="no backup"):
        node.start()
    assert not node.status().running
    node.start()  # the unreadable file was set aside: an empty chain starts
    assert node.status().block_number is not None


# -- the command line ----------------------------------------------------------------------------------


def test_cli_starts_deploys_reuses_reports_and_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_anvil: Callable[..., Anvil]
) -> None:
    monkeypatch.chdir(tmp_path)  # no developer's .env
    port = free_port()
    make_anvil(tmp_path / "data", port=port)  # so that the node is killed whatever happens
    env = {
        "SCF_DATA_DIR": str(tmp_path / "data"),
        "SCF_DEPLOYMENTS_DIR": str(tmp_path / "deployments"),
        "SCF_ANVIL_PORT": str(port),
        "SCF_RPC_URL": f"http://127.0.0.1:{port}",
        "SCF_BLOCK_TIME": "0.2",
    }
    runner = CliRunner()

    def scf(*args: str, code: int = 0, **extra: str) -> str:
        result = runner.invoke(app, list(args), env={**env, **extra})
        assert result.exit_code == code, result.output
        return result.output

    assert "anvil is not running" in scf("chain", "status")
    assert "anvil started" in scf("chain", "start")
    assert "already running" in scf("chain", "start")

    out = scf("deploy")
    assert "[10/10] set SignedActs in the registry" in out
    assert "deployed 6 contracts to chain 31337" in out
    assert "deployed_addresses.json" in out
    addresses = json.loads((tmp_path / "deployments" / "chain-31337" / "deployed_addresses.json").read_text())
    assert set(addresses) == {f"ScfLedger#{name}" for name in LEDGER_CONTRACTS}
    assert "reusing the deployment" in scf("deploy")
    assert "deployed 6 contracts" in scf("deploy", "--fresh")

    status = scf("chain", "status")
    assert "anvil is running: pid" in status and "chain id 31337" in status

    mismatch = scf("deploy", code=1, SCF_CHAIN_ID="1337")
    assert mismatch.strip().splitlines()[-1].startswith("error: the node at")
    assert "Traceback" not in mismatch

    assert "state saved" in scf("chain", "stop")
    assert "anvil is not running" in scf("chain", "stop")
    unreachable = scf("deploy", code=1)
    assert "error: no JSON-RPC node answers" in unreachable and "scf chain start" in unreachable
    assert "Traceback" not in unreachable


def test_deploy_script_does_what_scf_deploy_does(anvil: Anvil, tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "SCF_RPC_URL": anvil.rpc_url,
        "SCF_DEPLOYMENTS_DIR": str(tmp_path / "deployments"),
        "SCF_DATA_DIR": str(tmp_path / "data"),
    }
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "deploy.py")], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert "deployed 6 contracts" in run.stdout
    assert "anvil's first dev account" in run.stderr  # the log line naming the dev operator
    assert (tmp_path / "deployments" / "chain-31337" / "abi" / "Receivables.json").is_file()


def _nonces_without_a_block(url: str, senders: list[str]) -> dict[str, tuple[int, int]]:
    """Per sender whose used nonces outnumber its transactions in the chain's blocks: (nonce, transactions)."""
    head = int(_rpc(url, "eth_blockNumber", timeout=5.0), 16)
    in_blocks: dict[str, int] = dict.fromkeys(senders, 0)
    for number in range(head + 1):
        for transaction in _rpc(url, "eth_getBlockByNumber", [hex(number), True], timeout=5.0)["transactions"]:
            sender = str(transaction["from"]).lower()
            if sender in in_blocks:
                in_blocks[sender] += 1
    nonces = {s: int(_rpc(url, "eth_getTransactionCount", [s, "latest"], timeout=5.0), 16) for s in senders}
    return {s: (nonces[s], in_blocks[s]) for s in senders if nonces[s] != in_blocks[s]}


def test_a_restart_after_sigkill_under_load_never_holds_effects_without_their_block(
    make_anvil: Callable[..., Anvil],
) -> None:
    """anvil's dump, taken while a block is mined, can hold the block's effects but not the block; restarted
    from it, the chain has used nonces whose transactions are in no block, for good. Killed under load again and
    again with one-second blocks (the service's; one kill in five or so meets such a dump, or a truncated one),
    the node must restart from a consistent dump every time."""
    anvil = make_anvil(block_time=1.0)
    anvil.start()
    senders = [dev_account(i).address.lower() for i in range(1, 5)]
    rng = random.Random(7)
    stop = threading.Event()

    def send(sender: str) -> None:
        while not stop.is_set():
            try:
                _rpc(
                    anvil.rpc_url,
                    "eth_sendTransaction",
                    [{"from": sender, "to": "0x" + "00" * 19 + "01", "value": "0x1"}],
                    timeout=1.0,
                )
            except (OSError, ValueError):
                time.sleep(0.05)

    _wait_for_kept_dump(anvil)  # the chain's first dump: what even a kill in the first second falls back to
    restored = 0
    for _ in range(10):
        stop.clear()
        threads = [threading.Thread(target=send, args=(s,), daemon=True) for s in senders]
        for thread in threads:
            thread.start()
        time.sleep(rng.uniform(1.0, 2.5))
        anvil.kill()
        stop.set()
        for thread in threads:
            thread.join()
        status = anvil.start()
        restored += status.restored_from is not None
        assert _nonces_without_a_block(anvil.rpc_url, senders) == {}, f"after {restored} restores from kept dumps"


@pytest.mark.parametrize("module", ["scf", "scf.cli"])
def test_python_dash_m_scf_reaches_every_command(module: str) -> None:
    shown = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    for command in ("chain", "deploy", "serve", "demo", "bench"):
        assert f" {command} " in shown, shown
