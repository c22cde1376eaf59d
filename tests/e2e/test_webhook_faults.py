"""Webhook delivery through crashes: ``kill -9`` of anvil and of the service (``scf serve``, which runs the indexer
and the deliverer) while financing flows run and events are being delivered, each killed while a receiver is in
the middle of answering a delivery. The receiver (an HTTP server in this process) checks each request the way
the README tells integrators to (its ``verify_signature``) and records it. Afterwards, once the chain is quiet
and every subscription has caught up:

- the operator's subscription was delivered exactly the chain's events: the ids it holds as added (and not
  retracted) are the ids of every log of the ledger contracts (``eth_getLogs`` from block 0);
- each subscription got every event of its feed (``GET /events`` as its owner), in feed order, and nothing
  else; an event that came twice came as a redelivery of the same position with the same id (at least once);
- no delivered event is missing from the chain at the end, and none was retracted;
- no request failed the signature check.

Delivery holds across an anvil crash because the service indexes (and so delivers) an event only once its
block is ``SCF_CONFIRMATIONS`` deep, deeper than a crash of anvil reaches back (README); across a service crash
because a subscription's cursor moves past an event only after the receiver accepted it.

Fast: one kill of each. ``make soak``: five of each.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from web3 import Web3

from ledger.compiler import compile_contracts
from ledger.deployment import bind_contracts, load_deployment
from ledger.index.feed import event_id
from ledger.node import connect
from tests.api.test_webhooks import readme_verifier
from tests.e2e.test_faults import CONFIRMATIONS, WORKERS, Clients, Stage, kill_and_restart, staged

verify_signature = readme_verifier()
ANSWER_SECONDS = 0.03
"""How long the receiver takes over each delivery: a window in which a kill finds a delivery in flight."""


@dataclass
class Delivery:
    subscription: int
    seq: int
    id: str
    action: str


@dataclass
class Receiver:
    """Every verified delivery, in the order they arrived; ``busy`` is set while one is being answered."""

    secrets: dict[int, str] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    refused: int = 0
    busy: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/scf-hook"

    def of(self, subscription: int) -> list[Delivery]:
        with self.lock:
            return [d for d in self.deliveries if d.subscription == subscription]


def serve(receiver: Receiver) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            receiver.busy.set()
            try:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    event = json.loads(body)
                except ValueError:  # the service was killed while sending it: never accepted, so sent again
                    self.send_response(400)
                    self.end_headers()
                    return
                secret = receiver.secrets.get(event.get("subscription"), "")
                if not verify_signature(secret, body, self.headers.get("SCF-Signature", "")):
                    with receiver.lock:
                        receiver.refused += 1
                    self.send_response(400)
                    self.end_headers()
                    return
                time.sleep(ANSWER_SECONDS)
                with receiver.lock:
                    receiver.deliveries.append(
                        Delivery(event["subscription"], event["seq"], event["id"], event["action"])
                    )
                self.send_response(204)
                self.end_headers()
            finally:
                receiver.busy.clear()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def stage(tmp_path: Path) -> Iterator[Stage]:
    with staged(
        tmp_path,
        SCF_WEBHOOK_ALLOW="127.0.0.1",
        SCF_WEBHOOK_BACKOFF_SECONDS="0.2",
        SCF_WEBHOOK_BACKOFF_MAX_SECONDS="1",
        SCF_WEBHOOK_MAX_FAILURES="1000",
    ) as ready:
        yield ready


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()
    state.server = serve(state)
    yield state
    state.server.shutdown()
    state.server.server_close()


def subscribe(stage: Stage, receiver: Receiver, who: str) -> int:
    answer = httpx.post(
        f"{stage.service.base_url}/subscriptions",
        json={"url": receiver.url, "start": 0},
        headers={"Authorization": f"Bearer {stage.keys[who]}"},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    created = answer.json()
    receiver.secrets[created["id"]] = created["secret"]
    return int(created["id"])


def run_with_kills(stage: Stage, receiver: Receiver, kills: int, seed: int) -> None:
    """Flows run while anvil and the service are killed in turn, ``kills`` times each, each time while the
    receiver is answering a delivery."""
    chance = random.Random(seed)
    clients = Clients(stage.service.base_url, stage.keys, stage.addresses, stage.due, f"webhooks{seed}")

    def kill_during_a_delivery(target: str) -> None:
        assert receiver.busy.wait(60), "no delivery in flight for 60 s"
        kill_and_restart(stage, target, chance)

    async def chaos() -> None:
        workers = [asyncio.create_task(clients.worker(n)) for n in range(WORKERS)]
        try:
            for _ in range(kills):
                for target in ("anvil", "service"):
                    await asyncio.sleep(chance.uniform(2.0, 5.0))
                    await asyncio.to_thread(kill_during_a_delivery, target)
            await asyncio.sleep(2.0)
        finally:
            clients.stop.set()
            await asyncio.gather(*workers)

    asyncio.run(chaos())
    assert clients.record.accepted


def chain_event_ids(stage: Stage) -> set[str]:
    """The id of every log the ledger's contracts emitted, from block 0 to the head."""
    w3 = connect(stage.anvil.rpc_url, stage.anvil.chain_id)
    deployment = load_deployment(stage.data_dir / "deployments", stage.anvil.chain_id, w3)
    assert deployment is not None
    contracts = bind_contracts(w3, deployment, compile_contracts())
    logs = w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest", "address": [c.address for c in contracts.values()]})
    return {event_id(Web3.to_hex(log["blockHash"]), int(log["logIndex"])) for log in logs}


def feed_of(stage: Stage, who: str) -> list[dict[str, Any]]:
    """Every row of ``who``'s feed (``GET /events``), oldest first."""
    rows: list[dict[str, Any]] = []
    after = 0
    with httpx.Client(base_url=stage.service.base_url, timeout=30) as http:
        while True:
            page = http.get(
                "/events", params={"after": after, "limit": 500}, headers={"Authorization": f"Bearer {stage.keys[who]}"}
            )
            assert page.status_code == 200, page.text
            rows += page.json()["items"]
            if page.json()["next"] == after:
                return rows
            after = page.json()["next"]


def live(rows: list[Any]) -> set[str]:
    """The ids whose last row is ``added``."""
    last: dict[str, str] = {}
    for row in rows:
        identifier, action = (row["id"], row["action"]) if isinstance(row, dict) else (row.id, row.action)
        last[identifier] = action
    return {identifier for identifier, action in last.items() if action == "added"}


def wait_until_caught_up(stage: Stage, receiver: Receiver, subscriptions: dict[int, str]) -> set[str]:
    """Wait until the chain is quiet, the index holds all of it and every subscription was delivered its whole
    feed; return the chain's event ids."""
    deadline = time.monotonic() + 180
    while True:
        chain = chain_event_ids(stage)
        operator_feed = feed_of(stage, "operator")
        delivered = {s: receiver.of(s) for s in subscriptions}
        done = live(operator_feed) == chain and all(
            {d.seq for d in delivered[s]} >= {row["seq"] for row in feed_of(stage, who)}
            for s, who in subscriptions.items()
        )
        if done:
            return chain
        assert time.monotonic() < deadline, (
            f"not caught up after 180 s: chain {len(chain)} events, feed {len(live(operator_feed))}, "
            f"delivered {[len(d) for d in delivered.values()]}"
        )
        time.sleep(1.0)


def assert_exactly_the_chain_once_each_in_order(
    stage: Stage, receiver: Receiver, subscriptions: dict[int, str], chain: set[str]
) -> None:
    assert receiver.refused == 0, "a delivery failed the README's signature check"
    redelivered = 0
    for subscription, who in subscriptions.items():
        feed = feed_of(stage, who)
        deliveries = receiver.of(subscription)
        first: dict[int, Delivery] = {}
        order = []
        for delivery in deliveries:
            if delivery.seq in first:  # at least once: a redelivery is the same position with the same id
                assert (delivery.id, delivery.action) == (first[delivery.seq].id, first[delivery.seq].action)
                redelivered += 1
                continue
            first[delivery.seq] = delivery
            order.append(delivery.seq)
        assert order == [row["seq"] for row in feed], f"{who}: not the feed, in its order"
        assert [(first[s].id, first[s].action) for s in order] == [(row["id"], row["action"]) for row in feed]
        # Nothing delivered that a crash took back: the index holds only blocks deeper than a crash reaches.
        gone = {d.id for d in first.values()} - chain
        assert not gone, f"{who}: delivered {len(gone)} events the chain does not hold at the end"
        assert all(d.action == "added" for d in first.values())
        if who == "operator":
            assert live(list(first.values())) == chain, "the operator was not delivered exactly the chain's events"
    print(
        f"\n[webhook faults] {len(chain)} chain events; delivered "
        f"{ {who: len(receiver.of(s)) for s, who in subscriptions.items()} } requests, {redelivered} redeliveries; "
        f"confirmations {CONFIRMATIONS}"
    )


def test_webhooks_deliver_exactly_the_chains_events_when_anvil_and_the_service_are_killed(
    stage: Stage, receiver: Receiver
) -> None:
    subscriptions = {subscribe(stage, receiver, who): who for who in ("operator", "financier", "supplier-0")}
    run_with_kills(stage, receiver, kills=1, seed=int.from_bytes(os.urandom(4), "big"))
    chain = wait_until_caught_up(stage, receiver, subscriptions)
    assert_exactly_the_chain_once_each_in_order(stage, receiver, subscriptions, chain)


@pytest.mark.soak
def test_webhooks_deliver_exactly_the_chains_events_when_anvil_and_the_service_are_killed_soak(
    stage: Stage, receiver: Receiver
) -> None:
    subscriptions = {subscribe(stage, receiver, who): who for who in ("operator", "financier", "supplier-0")}
    run_with_kills(stage, receiver, kills=5, seed=int.from_bytes(os.urandom(4), "big"))
    chain = wait_until_caught_up(stage, receiver, subscriptions)
    assert_exactly_the_chain_once_each_in_order(stage, receiver, subscriptions, chain)
