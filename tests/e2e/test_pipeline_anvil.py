"""The transaction pipeline against a real anvil: throughput with many operations in flight, decoded failures,
idempotency, and recovery after anvil is killed (SIGKILL loses the blocks since its last state dump) and after
the pipeline itself restarts. Every operation mints a distinct deposit-token amount under a distinct bank
reference, so the chain itself shows whether an operation ran once, twice or never.

anvil runs from ``node_modules`` on a free port with 1 s blocks; each test that kills it has its own node.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import rlp
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from sqlalchemy import Engine, select
from web3 import HTTPProvider, Web3

from bench.load import Call, naive_rate, node_ceiling
from ledger.client import LedgerClient, Outcome
from ledger.compiler import Artifact, compile_contracts
from ledger.db import make_engine, make_sessionmaker
from ledger.deployment import dev_regulator
from ledger.errors import ErrorDecoder
from ledger.journal import JournalTransaction, TransactionStatus
from ledger.node import connect, dev_key
from ledger.pipeline import JsonRpcClient, Operation, Pipeline
from ledger.pipeline.submission import FRESH_SLOT_GAS
from ledger.tooling.chain import Anvil, find_anvil
from ledger.tooling.sandbox import identity_hash, role_id

try:
    find_anvil()
except Exception as exc:  # pragma: no cover - depends on `npm ci`
    pytest.skip(f"anvil is not installed: {exc}", allow_module_level=True)

CHAIN_ID = 31337
MINT_GAS = 150_000
DEPOSIT_MINTED = "0x" + keccak(text="DepositMinted(address,uint256,bytes32,address)").hex()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def artifacts() -> dict[str, Artifact]:
    return dict(compile_contracts())


@pytest.fixture(scope="module")
def decoder(artifacts: dict[str, Artifact]) -> ErrorDecoder:
    return ErrorDecoder(a.abi for a in artifacts.values())


# -- the deployed ledger ------------------------------------------------------------------------------------


@dataclass
class Deployed:
    w3: Web3
    registry: str
    token: str
    token_abi: list[dict[str, Any]]
    operator: LocalAccount
    agents: list[LocalAccount]
    recipient: str
    outsider: str

    def mint_data(self, amount: int, reference: bytes, to: str | None = None) -> bytes:
        contract = self.w3.eth.contract(address=to_checksum_address(self.token), abi=self.token_abi)
        return bytes.fromhex(contract.encode_abi("mint", [to or self.recipient, amount, reference])[2:])

    def minted(self) -> list[tuple[int, bytes]]:
        """(amount, bank reference) of every DepositMinted event on the chain."""
        logs = self.w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest", "address": self.token})
        minted = []
        for log in logs:
            if "0x" + bytes(log["topics"][0]).hex() == DEPOSIT_MINTED:
                minted.append((int.from_bytes(bytes(log["data"])[:32], "big"), bytes(log["topics"][2])))
        return minted

    def nonce(self, address: str) -> int:
        return int(self.w3.eth.get_transaction_count(to_checksum_address(address), "latest"))


def _create_address(sender: str, nonce: int) -> str:
    return to_checksum_address(keccak(rlp.encode([bytes.fromhex(sender[2:]), nonce]))[12:])


def _creation(artifact: Artifact, types: list[str], arguments: list[Any]) -> str:
    return "0x" + artifact.bytecode.removeprefix("0x") + abi_encode(types, arguments).hex()


def deploy(rpc_url: str, artifacts: dict[str, Artifact]) -> Deployed:
    """Deploy ParticipantRegistry and DepositToken with raw signed transactions and onboard three settlement
    agents (anvil dev accounts 1-3) and a recipient (dev account 4), all in one block."""
    w3 = connect(rpc_url, CHAIN_ID)
    operator: LocalAccount = Account.from_key(dev_key(0))
    agents: list[LocalAccount] = [Account.from_key(dev_key(i)) for i in (1, 2, 3)]
    recipient = Account.from_key(dev_key(4)).address
    nonce = w3.eth.get_transaction_count(operator.address, "pending")
    registry_address = _create_address(operator.address, nonce)
    token_address = _create_address(operator.address, nonce + 1)
    registry_artifact, token_artifact = artifacts["ParticipantRegistry"], artifacts["DepositToken"]
    registry = w3.eth.contract(address=registry_address, abi=registry_artifact.abi)
    payloads: list[tuple[str | None, str, int]] = [
        (
            None,
            _creation(
                registry_artifact,
                ["address", "bytes32", "address", "bytes32"],
                [operator.address, identity_hash("operator"), dev_regulator().address, identity_hash("regulator")],
            ),
            8_000_000,
        ),
        (
            None,
            _creation(
                token_artifact,
                ["address", "string", "string", "bytes3"],
                [registry_address, "SCF Deposit CNY", "dCNY", b"CNY"],
            ),
            8_000_000,
        ),
    ]
    members = [(a.address, "settlement-agent") for a in agents] + [(recipient, "supplier")]
    for address, role in members:
        data = registry.encode_abi("register", [address, identity_hash(address), [role_id(role)]])
        payloads.append((registry_address, data, 500_000))
    base_fee = int(w3.eth.get_block("latest")["baseFeePerGas"])  # type: ignore[typeddict-item]
    hashes = []
    for offset, (to, data, gas) in enumerate(payloads):
        tx: dict[str, Any] = {
            "type": 2,
            "chainId": CHAIN_ID,
            "nonce": nonce + offset,
            "value": 0,
            "data": data,
            "gas": gas,
            "maxFeePerGas": 4 * base_fee + 10**9,
            "maxPriorityFeePerGas": 10**9,
        }
        if to is not None:
            tx["to"] = to
        hashes.append(w3.eth.send_raw_transaction(operator.sign_transaction(tx).raw_transaction))
    for tx_hash in hashes:
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.1)
        assert receipt["status"] == 1, receipt
    return Deployed(
        w3=w3,
        registry=registry_address,
        token=token_address,
        token_abi=token_artifact.abi,
        operator=operator,
        agents=agents,
        recipient=recipient,
        outsider=Account.from_key(keccak(text="outsider")).address,
    )


def start_anvil(data_dir: Path, *, state_interval: int = 1, port: int | None = None) -> Anvil:
    node = Anvil(data_dir, port=port or free_port(), block_time=1.0, state_interval=state_interval)
    node.start()
    return node


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Anvil]:
    anvil = start_anvil(tmp_path_factory.mktemp("anvil"))
    try:
        yield anvil
    finally:
        anvil.stop()


@pytest.fixture(scope="module")
def ledger(node: Anvil, artifacts: dict[str, Artifact]) -> Deployed:
    return deploy(node.rpc_url, artifacts)


def count_rpc_methods(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How often each JSON-RPC method is asked through :class:`JsonRpcClient` from now on (the calls still go
    to the node)."""
    asked: Counter[str] = Counter()
    post = JsonRpcClient._post

    async def counting_post(self: JsonRpcClient, payload: Any) -> Any:
        for message in payload if isinstance(payload, list) else [payload]:
            asked[message["method"]] += 1
        return await post(self, payload)

    monkeypatch.setattr(JsonRpcClient, "_post", counting_post)
    return asked


def journal_engine(path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{path}")
    JournalTransaction.metadata.create_all(engine, tables=[JournalTransaction.__table__])  # type: ignore[list-item]
    return engine


def make_pipeline(rpc_url: str, engine: Engine, decoder: ErrorDecoder, **options: Any) -> Pipeline:
    return Pipeline(rpc_url, CHAIN_ID, make_sessionmaker(engine), decoder, **options)


def journal_rows(engine: Engine) -> list[JournalTransaction]:
    with make_sessionmaker(engine)() as session:
        return list(session.scalars(select(JournalTransaction).order_by(JournalTransaction.id)))


def assert_contiguous_nonces(operations: Sequence[Operation], ledger: Deployed) -> None:
    """Each sender's confirmed nonces run without gap or repeat up to the node's nonce."""
    by_sender: dict[str, list[int]] = {}
    for operation in operations:
        by_sender.setdefault(operation.sender, []).append(operation.nonce)
    for sender, nonces in by_sender.items():
        nonces.sort()
        assert len(set(nonces)) == len(nonces), f"repeated nonce for {sender}"
        assert nonces == list(range(nonces[0], nonces[0] + len(nonces))), f"gap in the nonces of {sender}"
        assert nonces[-1] < ledger.nonce(sender)


def reference(tag: str, index: int) -> bytes:
    return keccak(text=f"{tag} {index}")


async def submit_mints(
    pipeline: Pipeline, ledger: Deployed, tag: str, count: int, *, first_amount: int = 1, gas: int | None = MINT_GAS
) -> list[Operation]:
    """``count`` concurrent mints spread over the three agents; op ``i`` mints ``first_amount + i``."""
    payloads = [ledger.mint_data(first_amount + i, reference(tag, i)) for i in range(count)]
    return list(
        await asyncio.gather(
            *(pipeline.submit(ledger.agents[i % 3], ledger.token, payloads[i], gas, f"{tag}-{i}") for i in range(count))
        )
    )


async def wait_all(pipeline: Pipeline, operations: Sequence[Operation], timeout: float = 60) -> list[Operation]:
    return list(await asyncio.gather(*(pipeline.wait(o.operation_id, timeout) for o in operations)))


def assert_minted_once(ledger: Deployed, tag: str, count: int, first_amount: int = 1) -> None:
    minted = Counter(ledger.minted())
    for i in range(count):
        assert minted[(first_amount + i, reference(tag, i))] == 1, f"operation {tag}-{i} ran {minted[(i, tag)]} times"


# -- the tests ----------------------------------------------------------------------------------------------


def test_concurrent_operations_from_three_senders_all_confirm_once_with_contiguous_nonces(
    node: Anvil, ledger: Deployed, decoder: ErrorDecoder, tmp_path: Path
) -> None:
    engine = journal_engine(tmp_path / "journal.sqlite3")

    async def scenario() -> list[Operation]:
        async with make_pipeline(node.rpc_url, engine, decoder) as pipeline:
            submitted = await submit_mints(pipeline, ledger, "concurrent", 300)
            assert all(not o.is_final for o in submitted)
            return await wait_all(pipeline, submitted)

    finished = asyncio.run(scenario())
    assert [o.status for o in finished] == [TransactionStatus.CONFIRMED] * 300
    assert len({o.tx_hash for o in finished}) == 300
    assert Counter(o.sender for o in finished) == Counter({a.address: 100 for a in ledger.agents})
    assert_contiguous_nonces(finished, ledger)
    assert_minted_once(ledger, "concurrent", 300)
    rows = journal_rows(engine)
    assert len(rows) == 300
    assert {r.status for r in rows} == {TransactionStatus.CONFIRMED}
    assert all(r.block_number and r.block_hash and r.gas_used for r in rows)


def test_a_gas_fill_cancelled_half_way_puts_its_batch_back_so_that_stop_still_writes_every_gas_used(
    node: Anvil, ledger: Deployed, decoder: ErrorDecoder, tmp_path: Path
) -> None:
    """The reconciler fills gas used in batches; stop() cancels it. A batch taken from the queue and cancelled on
    its way (here: its receipts never answer) goes back to the queue, and stop()'s own fill writes it."""
    engine = journal_engine(tmp_path / "journal.sqlite3")

    async def scenario() -> None:
        pipeline = make_pipeline(node.rpc_url, engine, decoder, reconcile_interval=3600)
        await pipeline.start()
        finished = await wait_all(pipeline, await submit_mints(pipeline, ledger, "gas-fill", 5))
        assert {o.status for o in finished} == {TransactionStatus.CONFIRMED}
        waiting = len(pipeline._gas_unknown)
        assert waiting > 0
        rpc = pipeline._require_rpc()
        answer_later = asyncio.Event()
        real_batch = rpc.batch

        async def stalled(calls: Any) -> Any:
            await answer_later.wait()
            return await real_batch(calls)

        rpc.batch = stalled  # type: ignore[method-assign]
        filling = asyncio.create_task(pipeline._fill_gas_used())
        await asyncio.sleep(0.05)
        assert len(pipeline._gas_unknown) < waiting  # the batch is out of the queue, on its way
        filling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await filling
        assert len(pipeline._gas_unknown) == waiting  # ... and back
        rpc.batch = real_batch  # type: ignore[method-assign]
        await pipeline.stop()

    asyncio.run(scenario())
    rows = journal_rows(engine)
    assert len(rows) == 5 and all(r.gas_used for r in rows)


def test_reverting_call_is_recorded_failed_with_the_decoded_custom_error(
    node: Anvil, ledger: Deployed, decoder: ErrorDecoder, tmp_path: Path
) -> None:
    engine = journal_engine(tmp_path / "journal.sqlite3")
    agent = ledger.agents[0]

    async def scenario() -> list[Operation]:
        async with make_pipeline(node.rpc_url, engine, decoder) as pipeline:
            zero = await pipeline.submit(agent, ledger.token, ledger.mint_data(0, reference("zero", 0)), MINT_GAS)
            # gas left to estimation: the estimate reverts, the fallback gas is used and the failure recorded
            estimated = await pipeline.submit(agent, ledger.token, ledger.mint_data(0, reference("zero", 1)))
            outsider = await pipeline.submit(
                agent, ledger.token, ledger.mint_data(5, reference("outsider", 0), to=ledger.outsider), MINT_GAS
            )
            fine = await pipeline.submit(agent, ledger.token, ledger.mint_data(7, reference("fine", 0)), MINT_GAS)
            return await wait_all(pipeline, [zero, estimated, outsider, fine])

    zero, estimated, outsider, fine = asyncio.run(scenario())
    assert zero.status is TransactionStatus.FAILED
    assert zero.error_name == "DepositZeroAmount"
    assert zero.block_number is not None and zero.gas_used is not None
    assert estimated.status is TransactionStatus.FAILED
    assert estimated.error_name == "DepositZeroAmount"
    assert outsider.status is TransactionStatus.FAILED
    assert outsider.error_name is not None and outsider.error_name.startswith("Registry")
    assert outsider.error_args is not None and outsider.error_args["account"] == ledger.outsider
    assert fine.status is TransactionStatus.CONFIRMED and fine.error_name is None
    stored = {r.operation_id: r for r in journal_rows(engine)}
    assert stored[zero.operation_id].error_name == "DepositZeroAmount"
    assert stored[outsider.operation_id].error_args == dict(outsider.error_args)
    minted = Counter(ledger.minted())
    assert minted[(0, reference("zero", 0))] == 0 and minted[(5, reference("outsider", 0))] == 0
    assert minted[(7, reference("fine", 0))] == 1


@pytest.mark.parametrize("traced", [True, False], ids=["traced", "untraced"])
def test_an_operation_that_runs_out_of_gas_is_signed_again_with_more_and_confirms_once(
    node: Anvil, ledger: Deployed, decoder: ErrorDecoder, tmp_path: Path, traced: bool
) -> None:
    """Out of gas is never the contract's answer. Whatever gas an operation is first given (too little to reach
    the inner call, or running out inside it, where the outer frame reverts without data and keeps 1/64 of
    the gas), it ends confirmed exactly once; each spent attempt stays in the journal as ``<id>~oog<n>``. Without
    a trace (Besu without the debug API), the pipeline tells an out-of-gas by a revert without data that used
    all but 1/64 of the gas."""
    engine = journal_engine(tmp_path / "journal.sqlite3")
    agent = ledger.agents[2]
    tag = f"oog-{traced}"
    limits = [30_000, 45_000, 60_000, 70_000, 80_000, 90_000]

    async def scenario() -> list[Operation]:
        async with make_pipeline(node.rpc_url, engine, decoder) as pipeline:
            pipeline._trace_supported = traced
            submitted = [
                await pipeline.submit(
                    agent, ledger.token, ledger.mint_data(90_000 + i, reference(tag, i)), gas, f"{tag}-{i}"
                )
                for i, gas in enumerate(limits)
            ]
            return await wait_all(pipeline, submitted)

    finished = asyncio.run(scenario())
    assert [o.status for o in finished] == [TransactionStatus.CONFIRMED] * len(limits), finished
    assert_minted_once(ledger, tag, len(limits), first_amount=90_000)
    rows = {r.operation_id: r for r in journal_rows(engine)}
    spent = [r for op, r in rows.items() if "~oog" in op]
    assert spent, "no limit ran out of gas: the test no longer tests anything"
    for row in spent:
        assert row.status is TransactionStatus.FAILED and row.error_name == "OutOfGas"
        assert row.operation_id.split("~oog")[0] in rows  # the operation id went to the new attempt
        assert rows[row.operation_id.split("~oog")[0]].gas_limit >= 2 * row.gas_limit
    for operation in finished:
        assert rows[operation.operation_id].status is TransactionStatus.CONFIRMED


def test_a_spent_attempt_in_a_lost_block_never_runs_again_beside_its_successor(
    node: Anvil, ledger: Deployed, decoder: ErrorDecoder, tmp_path: Path
) -> None:
    """The chain goes back under an operation that ran out of gas and was signed again: sent again as it was, the
    spent attempt might now succeed and run the operation twice. Its nonce goes to a nonce filler instead, the
    successor is sent again, and the operation runs once."""
    engine = journal_engine(tmp_path / "journal.sqlite3")
    agent = ledger.agents[0]
    w3 = ledger.w3

    async def scenario() -> Operation:
        async with make_pipeline(node.rpc_url, engine, decoder) as pipeline:
            fork = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
            data = ledger.mint_data(95_000, reference("lost-oog", 0))
            operation = await pipeline.submit(agent, ledger.token, data, 45_000, "lost-oog-0")
            done = await pipeline.wait(operation.operation_id, 30)
            assert done.confirmed and done.gas_limit > 45_000
            assert w3.provider.make_request("evm_revert", [fork])["result"] is True  # type: ignore[arg-type]
            await pipeline.sync()  # the follower notices the chain went back and reopens both attempts
            await asyncio.sleep(0.5)
            deadline = time.monotonic() + 30
            while True:
                again = pipeline.status("lost-oog-0")
                if again.confirmed or time.monotonic() > deadline:
                    return again
                await asyncio.sleep(0.2)

    final = asyncio.run(scenario())
    assert final.confirmed
    assert_minted_once(ledger, "lost-oog", 1, first_amount=95_000)
    rows = {r.operation_id: r for r in journal_rows(engine)}
    spent = rows["lost-oog-0~oog1"]
    assert spent.kind.value == "nonce-filler" and spent.status is TransactionStatus.CONFIRMED


def test_a_call_like_one_estimated_before_is_only_preflighted_and_keeps_a_fresh_slots_headroom(
    node: Anvil, ledger: Deployed, decoder: ErrorDecoder, tmp_path: Path
) -> None:
    """Two calls of one function can cost different gas (a balance written from zero costs about 17,000 more than
    one already held). A call like one estimated before (same contract, function and calldata length) is only
    pre-flighted, and its gas limit is the kind's highest estimate with the margin plus one fresh storage slot's
    gas: enough for the mint to an empty balance after an estimate of a mint to a held one. Every
    ``gas_estimate_every``-th call of a kind is estimated again; with 1, every call is."""
    engine = journal_engine(tmp_path / "journal.sqlite3")
    agent = ledger.agents[0]

    async def scenario(every: int, tag: str, empty: str) -> tuple[int, int, int, Operation]:
        async with make_pipeline(node.rpc_url, engine, decoder, gas_estimate_every=every) as pipeline:
            first = await pipeline.submit(agent, ledger.token, ledger.mint_data(5, reference(tag, 0)), MINT_GAS)
            assert (await pipeline.wait(first.operation_id, 30)).confirmed  # the recipient holds tokens now
            assert pipeline._rpc is not None
            estimates = 0
            batch = pipeline._rpc.batch

            async def counting(calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
                nonlocal estimates
                estimates += sum(method == "eth_estimateGas" for method, _ in calls)
                return await batch(calls)

            pipeline._rpc.batch = counting  # type: ignore[method-assign]
            address = str(agent.address)
            held = await pipeline.preflight(address, ledger.token, ledger.mint_data(5, reference(tag, 1)))
            cold_data = ledger.mint_data(5, reference(tag, 2), to=empty)
            cold = await pipeline.preflight(address, ledger.token, cold_data)
            # Six at once (one JSON-RPC batch): the fifth call of the kind is estimated, the others are not.
            await asyncio.gather(
                *(
                    pipeline.preflight(address, ledger.token, ledger.mint_data(5, reference(tag, i)))
                    for i in range(3, 9)
                )
            )
            sent = await pipeline.submit(agent, ledger.token, cold_data, cold, f"{tag}-cold")
            return held, cold, estimates, await pipeline.wait(sent.operation_id, 30)

    held, cold, estimates, minted = asyncio.run(scenario(4, "known-gas", ledger.agents[1].address))
    assert estimates == 2  # the first call of the kind and the fifth
    assert cold == held + FRESH_SLOT_GAS  # the kind's highest estimate with the margin, and a fresh slot's gas
    assert minted.confirmed and "~oog" not in minted.operation_id
    assert not [r for r in journal_rows(engine) if r.operation_id.startswith("known-gas-cold~oog")]

    held, cold, estimates, minted = asyncio.run(scenario(1, "every-call", ledger.agents[2].address))
    assert estimates == 8 and minted.confirmed
    assert cold > held + 10_000, (cold, held)  # each call its own estimate: the empty balance's is higher


def test_a_known_gas_limit_that_runs_out_is_signed_again_with_a_fresh_estimate_which_the_kind_keeps(
    node: Anvil, ledger: Deployed, decoder: ErrorDecoder, tmp_path: Path
) -> None:
    """A known gas limit too low for a call (its kind's estimates were of cheaper calls) is no refusal: the
    transaction runs out, is signed again with a fresh estimate and confirms once, and the next call of its kind
    is given that estimate."""
    engine = journal_engine(tmp_path / "journal.sqlite3")
    agent = ledger.agents[2]
    data = ledger.mint_data(97_000, reference("low-known", 0))
    kind = (ledger.token.lower(), data[:4], len(data))

    async def scenario() -> tuple[int, Operation, int]:
        async with make_pipeline(node.rpc_url, engine, decoder) as pipeline:
            assert pipeline._rpc is not None
            call = {"from": str(agent.address), "to": ledger.token, "data": "0x" + data.hex()}
            needed = int(await pipeline._rpc.call("eth_estimateGas", call), 16)
            # As if the kind had been estimated below what this call costs (its limit 2,000 gas short of it).
            pipeline._learn_gas(kind, (needed - FRESH_SLOT_GAS - 2_000) * 100 // 130)
            gas = await pipeline.preflight(str(agent.address), ledger.token, data)
            assert gas < needed
            operation = await pipeline.submit(agent, ledger.token, data, gas, "low-known-0")
            done = await pipeline.wait(operation.operation_id, 30)
            again = await pipeline.preflight(
                str(agent.address), ledger.token, ledger.mint_data(97_001, reference("low-known", 1))
            )
            return gas, done, again

    gas, done, again = asyncio.run(scenario())
    assert done.confirmed and done.gas_limit >= 2 * gas
    rows = {r.operation_id: r for r in journal_rows(engine)}
    assert rows["low-known-0~oog1"].error_name == "OutOfGas"
    assert_minted_once(ledger, "low-known", 1, first_amount=97_000)
    assert again > gas + 10_000  # the fresh estimate raised the kind's


def test_with_confirmations_an_operation_is_reported_only_once_buried_that_deep(
    node: Anvil, ledger: Deployed, decoder: ErrorDecoder, tmp_path: Path
) -> None:
    engine = journal_engine(tmp_path / "journal.sqlite3")

    async def scenario() -> list[tuple[Operation, int]]:
        async with make_pipeline(node.rpc_url, engine, decoder, confirmations=2) as pipeline:
            operations = await submit_mints(pipeline, ledger, "buried", 6, first_amount=70_000)
            seen = []
            for operation in operations:
                done = await pipeline.wait(operation.operation_id, 30)
                seen.append((done, ledger.w3.eth.block_number))
            synced = await pipeline.sync()
            assert synced <= ledger.w3.eth.block_number - 2
            return seen

    for operation, head in asyncio.run(scenario()):
        assert operation.confirmed and operation.block_number is not None
        assert head >= operation.block_number + 2


def test_submitting_an_operation_id_again_sends_nothing_new(
    node: Anvil, ledger: Deployed, decoder: ErrorDecoder, tmp_path: Path
) -> None:
    engine = journal_engine(tmp_path / "journal.sqlite3")
    agent = ledger.agents[1]
    data = ledger.mint_data(11, reference("idempotent", 0))

    async def scenario() -> tuple[Operation, ...]:
        async with make_pipeline(node.rpc_url, engine, decoder) as pipeline:
            first, twin = await asyncio.gather(
                pipeline.submit(agent, ledger.token, data, MINT_GAS, "idempotent-0"),
                pipeline.submit(agent, ledger.token, data, MINT_GAS, "idempotent-0"),
            )
            nonce_after_first = pipeline._next_nonce[agent.address]
            again = await pipeline.submit(
                agent, ledger.token, ledger.mint_data(987_654_321, b"\x01" * 32), None, "idempotent-0"
            )
            assert pipeline._next_nonce[agent.address] == nonce_after_first
            done = await pipeline.wait("idempotent-0", 30)
        # a new pipeline over the same journal: found in the database, not sent again
        async with make_pipeline(node.rpc_url, engine, decoder) as restarted:
            later = await restarted.submit(agent, ledger.token, data, MINT_GAS, "idempotent-0")
        return first, twin, again, done, later

    first, twin, again, done, later = asyncio.run(scenario())
    assert first.tx_hash == twin.tx_hash == again.tx_hash == done.tx_hash == later.tx_hash
    assert done.status is TransactionStatus.CONFIRMED
    assert later.status is TransactionStatus.CONFIRMED
    assert len(journal_rows(engine)) == 1
    assert Counter(ledger.minted())[(11, reference("idempotent", 0))] == 1
    assert Counter(amount for amount, _ in ledger.minted())[987_654_321] == 0


class CountingProvider(HTTPProvider):
    """A web3 provider that counts the JSON-RPC methods it is asked."""

    def __init__(self, url: str, asked: Counter[str]) -> None:
        super().__init__(url)
        self.asked = asked

    def make_request(self, method: Any, params: Any) -> Any:
        self.asked[str(method)] += 1
        return super().make_request(method, params)


def test_a_new_block_is_announced_while_its_operations_are_in_flight_before_they_are_confirmed(
    node: Anvil, ledger: Deployed, decoder: ErrorDecoder, tmp_path: Path
) -> None:
    """``on_block`` (the service wakes its indexer with it) is called with the block that holds an operation
    before the operation is reported confirmed, so that indexing the block overlaps with confirming it."""
    engine = journal_engine(tmp_path / "journal.sqlite3")
    announced: list[tuple[int, bool]] = []  # (block, whether the operation was final by then)

    async def scenario() -> Operation:
        async with make_pipeline(node.rpc_url, engine, decoder) as pipeline:
            data = ledger.mint_data(41, reference("announced", 0))
            operation = await pipeline.submit(ledger.agents[0], ledger.token, data, MINT_GAS, "announced-0")
            pipeline.on_block = lambda block: announced.append((block, pipeline.status("announced-0").is_final))
            final = await pipeline.wait(operation.operation_id, 30)
            await asyncio.sleep(2.5)  # blocks with nothing of ours in flight: not announced
            return final

    final = asyncio.run(scenario())
    assert final.confirmed and final.block_number is not None
    assert (final.block_number, False) in announced
    assert all(block <= final.block_number for block, _ in announced)


def test_an_outcome_decodes_the_logs_the_pipeline_read_and_fetches_no_receipt_again(
    node: Anvil, ledger: Deployed, decoder: ErrorDecoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The block follower confirms a mint from its block's logs; ``LedgerClient.outcome`` decodes those: neither
    the pipeline nor the client's web3 asks the node for the receipt. A pipeline started again over the journal
    has not read that block: it fetches the receipt once."""
    engine = journal_engine(tmp_path / "journal.sqlite3")
    asked = count_rpc_methods(monkeypatch)  # JSON-RPC methods asked by the pipelines (and the client's web3 below)
    w3 = Web3(CountingProvider(node.rpc_url, asked))
    contracts = {"token": w3.eth.contract(address=to_checksum_address(ledger.token), abi=ledger.token_abi)}
    data = ledger.mint_data(31, reference("outcome", 0))
    # No reconciliation round meanwhile: it would fill in the gas used from the receipt, while idle.
    options = {"reconcile_interval": 600.0}

    async def scenario() -> tuple[Outcome, int, Outcome, int]:
        async with make_pipeline(node.rpc_url, engine, decoder, **options) as pipeline:
            client = LedgerClient(w3, contracts, decoder, pipeline)
            operation = await pipeline.submit(ledger.agents[2], ledger.token, data, MINT_GAS, "outcome-0")
            first = await client.outcome(operation, timeout=30)
            receipts_first = asked["eth_getTransactionReceipt"]
        async with make_pipeline(node.rpc_url, engine, decoder, **options) as restarted:
            before = asked["eth_getTransactionReceipt"]
            client = LedgerClient(w3, contracts, decoder, restarted)
            again = await client.outcome(restarted.status("outcome-0"), timeout=30)
            receipts_again = asked["eth_getTransactionReceipt"] - before
        return first, receipts_first, again, receipts_again

    first, receipts_first, again, receipts_again = asyncio.run(scenario())
    assert first.operation.confirmed and first.operation.gas_used is None  # confirmed from the block's logs
    assert receipts_first == 0
    assert receipts_again == 1
    minted = first.event("DepositMinted")
    assert (minted["amount"], minted["bankReference"]) == (31, reference("outcome", 0))
    assert minted["agent"] == ledger.agents[2].address
    # the same events as decoded from web3's receipt, and the same again after the restart
    from_receipt = asyncio.run(LedgerClient(w3, contracts, decoder).outcome(first.operation))
    assert first.events == again.events == from_receipt.events


def test_operations_survive_anvil_being_killed_and_restarted_behind(
    artifacts: dict[str, Artifact], decoder: ErrorDecoder, tmp_path: Path
) -> None:
    """Two crashes. First a node that never dumped its state since its last clean start (state interval one
    hour): the restart loses every block the pipeline had already confirmed. Then the realistic one (state
    interval 1 s) killed right after a burst was sent. Every operation ends confirmed exactly once."""
    data_dir = tmp_path / "node"
    port = free_port()
    anvil = start_anvil(data_dir, port=port)
    engine = journal_engine(tmp_path / "journal.sqlite3")
    try:
        ledger = deploy(anvil.rpc_url, artifacts)
        anvil.stop()  # a clean stop dumps the deployment
        anvil = start_anvil(data_dir, port=port, state_interval=3600)

        async def scenario() -> tuple[list[Operation], list[Operation], list[Operation]]:
            nonlocal anvil
            async with make_pipeline(anvil.rpc_url, engine, decoder, resend_after=2.0) as pipeline:
                lost = await wait_all(pipeline, await submit_mints(pipeline, ledger, "lost", 150))
                assert all(o.confirmed for o in lost)
                anvil.kill()
                anvil = start_anvil(data_dir, port=port)  # back at the deployment: all 150 mints are gone
                assert ledger.w3.eth.block_number < min(o.block_number or 0 for o in lost)
                await pipeline.sync()
                assert pipeline.in_flight == 150
                burst = await submit_mints(pipeline, ledger, "burst", 300, first_amount=1_000)
                await asyncio.sleep(0.3)
                anvil.kill()  # with the 1 s state interval: the last second of blocks is lost
                await asyncio.sleep(1.0)
                anvil = start_anvil(data_dir, port=port)
                await pipeline.sync()  # the follower has seen the restarted chain: lost blocks are in flight again
                return lost, await wait_all(pipeline, lost, 90), await wait_all(pipeline, burst, 90)

        before, lost, burst = asyncio.run(scenario())
    finally:
        anvil.stop()
        anvil = start_anvil(data_dir, port=port)  # to read the chain as it was saved
    try:
        ledger.w3 = connect(anvil.rpc_url, CHAIN_ID)
        everything = lost + burst
        assert [o.tx_hash for o in lost] == [o.tx_hash for o in before]  # re-sent, never re-signed
        assert len(journal_rows(engine)) == 450
        assert_contiguous_nonces(everything, ledger)
        # Exactly once, by state: the supply is the sum of the 450 distinct amounts, so no mint ran twice or never.
        token = ledger.w3.eth.contract(address=to_checksum_address(ledger.token), abi=ledger.token_abi)
        assert token.functions.totalSupply().call() == sum(range(1, 151)) + sum(range(1_000, 1_300))
        # And by events, for every operation confirmed with a block.
        confirmed = {o.operation_id for o in everything if o.confirmed}
        minted = Counter(ledger.minted())
        for tag, count, first in (("lost", 150, 1), ("burst", 300, 1_000)):
            for i in range(count):
                expected = 1 if f"{tag}-{i}" in confirmed else 0
                assert minted[(first + i, reference(tag, i))] == expected, f"{tag}-{i}"
        # None ran without a block on record: anvil restarts from a consistent dump (ledger.tooling.state_keeper).
        assert all(o.confirmed for o in everything), Counter((o.status, o.error_name) for o in everything)
    finally:
        anvil.stop()


def test_lost_blocks_go_back_one_block_at_a_time_so_what_built_on_them_still_succeeds(
    artifacts: dict[str, Artifact], decoder: ErrorDecoder, tmp_path: Path
) -> None:
    """Ten deposits minted in one block, then ten burns of them from another agent in a later block, all lost in
    a crash. Sent again together, the node could order a burn before its mint (a block's order is the node's
    choice) and fail it; the pipeline sends the mints' lost block first and the burns' once it is mined."""
    data_dir = tmp_path / "node"
    port = free_port()
    anvil = start_anvil(data_dir, port=port)
    engine = journal_engine(tmp_path / "journal.sqlite3")
    try:
        ledger = deploy(anvil.rpc_url, artifacts)
        anvil.stop()
        anvil = start_anvil(data_dir, port=port, state_interval=3600)  # no dumps: a kill loses every new block
        minter, burner = ledger.agents[0], ledger.agents[1]
        token = ledger.w3.eth.contract(address=to_checksum_address(ledger.token), abi=ledger.token_abi)

        def burn_data(amount: int, ref: bytes) -> bytes:
            return bytes.fromhex(token.encode_abi("burn", [ledger.recipient, amount, ref])[2:])

        async def scenario() -> tuple[list[Operation], list[Operation]]:
            nonlocal anvil
            async with make_pipeline(anvil.rpc_url, engine, decoder, resend_after=2.0) as pipeline:
                mints = await asyncio.gather(
                    *(
                        pipeline.submit(
                            minter, ledger.token, ledger.mint_data(a, reference("in", a)), MINT_GAS, f"in-{a}"
                        )
                        for a in range(1, 11)
                    )
                )
                mints = await wait_all(pipeline, mints)
                burns = await asyncio.gather(
                    *(
                        pipeline.submit(burner, ledger.token, burn_data(a, reference("out", a)), MINT_GAS, f"out-{a}")
                        for a in range(1, 11)
                    )
                )
                burns = await wait_all(pipeline, burns)
                assert all(o.confirmed for o in mints + burns)
                assert max(o.block_number or 0 for o in mints) < min(o.block_number or 0 for o in burns)
                anvil.kill()
                anvil = start_anvil(data_dir, port=port)  # back at the deployment: all twenty are gone
                await pipeline.sync()
                return await wait_all(pipeline, mints, 60), await wait_all(pipeline, burns, 60)

        mints, burns = asyncio.run(scenario())
        assert all(o.confirmed for o in mints + burns), Counter((o.status, o.error_name) for o in mints + burns)
        assert max(o.block_number or 0 for o in mints) < min(o.block_number or 0 for o in burns)
        assert token.functions.balanceOf(ledger.recipient).call() == 0
    finally:
        anvil.stop()


def test_a_restarted_pipeline_finishes_what_the_previous_one_left(
    artifacts: dict[str, Artifact], decoder: ErrorDecoder, tmp_path: Path
) -> None:
    """The first pipeline journals operations it cannot send (anvil is down) and others it sent but did not see
    mined, then stops; a new pipeline over the same journal sends and confirms all of them."""
    data_dir = tmp_path / "node"
    port = free_port()
    anvil = start_anvil(data_dir, port=port)
    engine = journal_engine(tmp_path / "journal.sqlite3")
    try:
        ledger = deploy(anvil.rpc_url, artifacts)

        async def first_life() -> tuple[list[Operation], list[Operation]]:
            nonlocal anvil
            pipeline = make_pipeline(anvil.rpc_url, engine, decoder)
            await pipeline.start()
            warm = await wait_all(pipeline, await submit_mints(pipeline, ledger, "warm", 3))
            assert all(o.confirmed for o in warm)
            sent = await submit_mints(pipeline, ledger, "sent", 60, first_amount=100)
            anvil.stop()
            unsent = await submit_mints(pipeline, ledger, "unsent", 60, first_amount=1_000)
            assert {o.status for o in unsent} == {TransactionStatus.PENDING}
            await pipeline.stop()
            return sent, unsent

        sent, unsent = asyncio.run(first_life())
        anvil = start_anvil(data_dir, port=port)

        async def second_life() -> list[Operation]:
            async with make_pipeline(anvil.rpc_url, engine, decoder) as pipeline:
                assert pipeline.in_flight > 0
                return await wait_all(pipeline, sent + unsent, 60)

        finished = asyncio.run(second_life())
        assert all(o.confirmed for o in finished)
        assert_minted_once(ledger, "sent", 60, first_amount=100)
        assert_minted_once(ledger, "unsent", 60, first_amount=1_000)
        assert_contiguous_nonces(finished, ledger)
    finally:
        anvil.stop()


# -- throughput ---------------------------------------------------------------------------------------------


def test_pipeline_throughput_against_the_node_ceiling_and_the_naive_baseline(
    artifacts: dict[str, Artifact], decoder: ErrorDecoder, tmp_path: Path
) -> None:
    """Prints confirmed operations per second for 1,000 mints through the pipeline, the node's ceiling for the
    same call (pre-signed, sent in JSON-RPC batches) and the naive baseline (sign, send, wait for the receipt,
    one at a time per sender). No timed assertion."""
    count = int(os.environ.get("SCF_PIPELINE_BENCH_OPS", "1000"))
    anvil = start_anvil(tmp_path / "node")
    engine = journal_engine(tmp_path / "journal.sqlite3")
    try:
        ledger = deploy(anvil.rpc_url, artifacts)
        ceiling = _node_ceiling(anvil.rpc_url, ledger, count)
        payloads = [ledger.mint_data(10_000 + i, reference("bench", i)) for i in range(count)]

        async def through_pipeline() -> float:
            async with make_pipeline(anvil.rpc_url, engine, decoder) as pipeline:
                warm = await submit_mints(pipeline, ledger, "bench-warm", 3, first_amount=500, gas=None)
                await wait_all(pipeline, warm)
                started = time.perf_counter()
                submitted = await asyncio.gather(
                    *(pipeline.submit(ledger.agents[i % 3], ledger.token, payloads[i], None) for i in range(count))
                )
                finished = await wait_all(pipeline, submitted, 120)
                elapsed = time.perf_counter() - started
                assert all(o.confirmed for o in finished)
                return count / elapsed

        pipeline_rate = asyncio.run(through_pipeline())
        naive_rate = _naive_rate(ledger, seconds=8.0)
    finally:
        anvil.stop()
    print(
        f"\n[pipeline throughput] {count} mints, 1 s blocks: pipeline {pipeline_rate:.0f} ops/s; "
        f"node ceiling {ceiling:.0f} tx/s (ratio {pipeline_rate / ceiling:.2f}); "
        f"naive baseline {naive_rate:.1f} ops/s with 3 senders (ratio {pipeline_rate / naive_rate:.0f}x)"
    )


def _mint_calls(ledger: Deployed, tag: str, count: int, first_amount: int) -> list[Call]:
    """``count`` mints spread over the three agents; call ``i`` mints ``first_amount + i``."""
    return [
        Call(ledger.agents[i % 3], ledger.token, ledger.mint_data(first_amount + i, reference(tag, i)))
        for i in range(count)
    ]


def _node_ceiling(rpc_url: str, ledger: Deployed, count: int) -> float:
    """Pre-sign ``count`` mints from the three agents, send them in batches, time until all are mined."""
    return node_ceiling(rpc_url, CHAIN_ID, _mint_calls(ledger, "ceiling", count, 1_000_000), gas=MINT_GAS).per_second


def _naive_rate(ledger: Deployed, *, seconds: float) -> float:
    """Each agent in its own thread: naive_send in a loop for ``seconds``; confirmed operations per second."""

    def mint(index: int, i: int) -> Call:
        return Call(ledger.agents[index], ledger.token, ledger.mint_data(1, reference(f"naive{index}", i)))

    rpc_url = ledger.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    return naive_rate(rpc_url, CHAIN_ID, ledger.agents, mint, seconds).per_second


def test_the_same_read_asked_while_it_is_on_its_way_is_sent_once_and_a_cancelled_caller_leaves_the_others_theirs(
    node: Anvil, ledger: Deployed, decoder: ErrorDecoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch's items about one piece read it once: ``Pipeline.read`` shares a call already on its way with
    whoever asks the same, and a caller cancelled meanwhile does not cancel it for the others. A different read,
    or the same one asked once the first answered, goes to the node on its own."""
    engine = journal_engine(tmp_path / "journal.sqlite3")
    asked = count_rpc_methods(monkeypatch)
    token = ledger.w3.eth.contract(address=to_checksum_address(ledger.token), abi=ledger.token_abi)

    def balance_call(holder: str) -> dict[str, str]:
        return {"to": ledger.token, "data": token.encode_abi("balanceOf", [holder])}

    async def scenario() -> tuple[list[Any], int, int]:
        async with make_pipeline(node.rpc_url, engine, decoder) as pipeline:
            before = asked["eth_call"]
            same = [
                asyncio.ensure_future(pipeline.read("eth_call", balance_call(ledger.recipient), "latest"))
                for _ in range(20)
            ]
            other = asyncio.ensure_future(pipeline.read("eth_call", balance_call(ledger.agents[0].address), "latest"))
            await asyncio.sleep(0)
            same[0].cancel()
            answers = await asyncio.gather(*same[1:], other)
            together = asked["eth_call"] - before
            await pipeline.read("eth_call", balance_call(ledger.recipient), "latest")
            return answers, together, asked["eth_call"] - before - together

    answers, together, later = asyncio.run(scenario())
    assert together == 2, "twenty reads of one balance and one of another: two calls"
    assert later == 1, "asked again once answered: the node is asked again"
    assert len(set(answers[:-1])) == 1 and int(answers[0], 16) == token.functions.balanceOf(ledger.recipient).call()
