"""The chain-side benchmarks: the node's ceiling, the pipeline and the naive baseline, all for one call shape.

Each takes the same kind of work, a list of :class:`Call` (sender, contract, calldata), so the three figures
measure the same operation and their ratios mean something:

- :func:`node_ceiling`: every call signed beforehand, sent in JSON-RPC batches of ``eth_sendRawTransaction``,
  timed from the first batch until every sender's mined nonce has reached its last transaction. Nothing of
  ours is on the path: this is what the node itself can mine.
- :func:`pipeline_rate`: the calls submitted to :class:`ledger.pipeline.Pipeline` all at once (signed,
  journaled, batched, followed block by block), timed from the first submission until the last is confirmed.
- :func:`naive_rate`: one thread per sender doing :func:`bench.naive.naive_send` (estimate, sign, send,
  wait for the receipt) in a loop for a fixed time.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import coincurve
import httpx
from eth_account.signers.local import LocalAccount
from sqlalchemy.orm import Session, sessionmaker

from bench.naive import naive_send
from ledger.errors import ErrorDecoder
from ledger.node import connect
from ledger.pipeline import Operation, Pipeline, sign_dynamic_fee_transaction

SEND_BATCH = 250
"""Transactions per JSON-RPC batch when measuring the node's ceiling (the pipeline's default batch too)."""


class BenchmarkFailed(RuntimeError):
    """A benchmark's operations did not all succeed: its figure would be meaningless."""


@dataclass(frozen=True)
class Call:
    """One state-changing call: ``sender`` calls ``to`` with ``data``."""

    sender: LocalAccount
    to: str
    data: bytes


@dataclass(frozen=True)
class Throughput:
    """``count`` operations confirmed in ``seconds``, the last of them handed to the node after ``sent_seconds``."""

    count: int
    seconds: float
    sent_seconds: float = 0.0

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0


def node_ceiling(rpc_url: str, chain_id: int, calls: Sequence[Call], *, gas: int, timeout: float = 600) -> Throughput:
    """Pre-sign ``calls`` (each with ``gas``), send them in batches, time until all are mined (see the module)."""
    w3 = connect(rpc_url, chain_id)
    base_fee = int(w3.eth.get_block("latest")["baseFeePerGas"])
    keys: dict[str, coincurve.PrivateKey] = {}
    next_nonce: dict[str, int] = {}
    raw: list[str] = []
    for call in calls:
        address = str(call.sender.address)
        if address not in keys:
            keys[address] = coincurve.PrivateKey(bytes(call.sender.key))
            next_nonce[address] = int(w3.eth.get_transaction_count(call.sender.address, "pending"))
        signed, _ = sign_dynamic_fee_transaction(
            keys[address],
            chain_id=chain_id,
            nonce=next_nonce[address],
            max_priority_fee_per_gas=0,
            max_fee_per_gas=4 * base_fee,
            gas=gas,
            to=bytes.fromhex(call.to.removeprefix("0x")),
            value=0,
            data=call.data,
        )
        next_nonce[address] += 1
        raw.append("0x" + signed.hex())
    with httpx.Client(timeout=60) as client:
        started = time.perf_counter()
        for start in range(0, len(raw), SEND_BATCH):
            batch = [
                {"jsonrpc": "2.0", "id": j, "method": "eth_sendRawTransaction", "params": [tx]}
                for j, tx in enumerate(raw[start : start + SEND_BATCH])
            ]
            answers = client.post(rpc_url, json=batch).json()
            refused = [a for a in answers if "result" not in a]
            if refused:
                raise BenchmarkFailed(f"the node refused {len(refused)} pre-signed transactions: {refused[:2]}")
        sent = time.perf_counter() - started
        deadline = started + timeout
        pending = dict(next_nonce)
        while pending:
            if time.perf_counter() > deadline:
                raise BenchmarkFailed(f"{len(pending)} senders' transactions were not mined within {timeout:g} s")
            batch = [
                {"jsonrpc": "2.0", "id": j, "method": "eth_getTransactionCount", "params": [address, "latest"]}
                for j, address in enumerate(pending)
            ]
            answers = client.post(rpc_url, json=batch).json()
            mined = {
                address for address, a in zip(pending, answers, strict=True) if int(a["result"], 16) >= pending[address]
            }
            for address in mined:
                del pending[address]
            if pending:
                time.sleep(0.02)
        return Throughput(len(raw), time.perf_counter() - started, sent)


async def pipeline_rate(
    rpc_url: str,
    chain_id: int,
    sessions: sessionmaker[Session],
    decoder: ErrorDecoder,
    calls: Sequence[Call],
    *,
    timeout: float = 600,
) -> tuple[Throughput, list[Operation]]:
    """Submit every call to a fresh :class:`Pipeline` at once and wait until all are final (see the module).

    The first call, outside the timing, warms the pipeline up and gives the gas limit (its own estimate with the
    pipeline's margin) every other call is signed with, as a client that knows the cost of its call shape would
    (the same calls, so the same cost; the REST service pre-flights and estimates each call). Raises
    :class:`BenchmarkFailed` when an operation does not end confirmed.
    """
    async with Pipeline(rpc_url, chain_id, sessions, decoder) as pipeline:
        first = calls[0]
        warm = await pipeline.submit(first.sender, first.to, first.data)
        warm = await pipeline.wait(warm.operation_id, 60)
        if not warm.confirmed:
            raise BenchmarkFailed(f"the warm-up operation ended {warm.status.value}: {warm.error_name}")
        rest = calls[1:]
        started = time.perf_counter()
        gas = warm.gas_limit
        submitted = await asyncio.gather(*(pipeline.submit(c.sender, c.to, c.data, gas) for c in rest))
        sent = time.perf_counter() - started  # submit returns once its transaction was handed to the node
        finished = await asyncio.gather(*(pipeline.wait(o.operation_id, timeout) for o in submitted))
        elapsed = time.perf_counter() - started
    failed = [o for o in finished if not o.confirmed]
    if failed:
        raise BenchmarkFailed(f"{len(failed)} pipeline operations did not confirm, e.g. {failed[0]}")
    return Throughput(len(finished), elapsed, sent), [warm, *finished]


def gas_used(rpc_url: str, tx_hashes: Sequence[str]) -> list[int]:
    """``gasUsed`` of each transaction's receipt (one JSON-RPC batch)."""
    batch = [
        {"jsonrpc": "2.0", "id": j, "method": "eth_getTransactionReceipt", "params": [tx_hash]}
        for j, tx_hash in enumerate(tx_hashes)
    ]
    with httpx.Client(timeout=60) as client:
        answers = sorted(client.post(rpc_url, json=batch).json(), key=lambda answer: int(answer["id"]))
    return [int(answer["result"]["gasUsed"], 16) for answer in answers]


def naive_rate(
    rpc_url: str, chain_id: int, senders: Sequence[LocalAccount], make_call: Callable[[int, int], Call], seconds: float
) -> Throughput:
    """One thread per sender: ``naive_send(make_call(sender_index, i))`` in a loop for ``seconds``."""
    done = [0] * len(senders)
    errors: list[BaseException] = []
    deadline = time.perf_counter() + seconds

    def run(index: int) -> None:
        w3 = connect(rpc_url, chain_id)
        i = 0
        try:
            while time.perf_counter() < deadline:
                call = make_call(index, i)
                receipt = naive_send(w3, call.sender, call.to, call.data)
                if receipt["status"] != 1:
                    raise BenchmarkFailed(f"a naive call reverted: {receipt['transactionHash'].to_0x_hex()}")
                done[index] += 1
                i += 1
        except BaseException as exc:  # reported by the caller's thread
            errors.append(exc)

    started = time.perf_counter()
    threads = [threading.Thread(target=run, args=(i,), name=f"naive-{i}") for i in range(len(senders))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise BenchmarkFailed(f"the naive baseline failed: {errors[0]}") from errors[0]
    return Throughput(sum(done), time.perf_counter() - started)
