"""The event feed over HTTP (``GET /events``, ``GET /events/stream``) against a real anvil: after the receivable
story the feed holds exactly the chain's events, once each, in (block, log index) order; each participant sees
its own, the regulator and the operator everything; the stream resumes from ``Last-Event-ID``."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from web3 import Web3

from ledger.index.models import EventRow
from tests.api.conftest import WAIT, Api, Participant

YUAN = 100


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.json()  # type: ignore[no-any-return]


def all_events(api: Api, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    """Every event ``headers``' caller sees, paging by cursor."""
    found: list[dict[str, Any]] = []
    after = 0
    while True:
        page = ok(api.http.get("/events", params={**params, "after": after, "limit": 50}, headers=headers))
        found.extend(page["items"])
        if not page["items"]:
            assert page["next"] == after
            return found
        assert page["next"] == page["items"][-1]["seq"]
        after = page["next"]


def receivable_story(api: Api) -> dict[str, Any]:
    """Onboarding, cash in, an invoice confirmed, split, financed, repaid and redeemed."""
    people = {
        "agent": api.onboard("Settlement bank", "settlement-agent"),
        "automaker": api.onboard("FAW Automotive", "core-firm"),
        "seatmaker": api.onboard("Changchun Seats", "supplier"),
        "foammaker": api.onboard("Jilin Foam", "supplier"),
        "factor": api.onboard("Northeast Factoring", "financier"),
        "stranger": api.onboard("Unrelated Supplier", "supplier"),
        "regulator": api.onboard("Municipal financial regulator", "regulator"),
    }
    http = api.http
    for name in ("automaker", "factor"):
        body = {"participant": people[name].id, "amount": 5_000_000 * YUAN, "bank_reference": f"opening {name}"}
        ok(http.post("/deposits", json=body, headers=people["agent"].waiting()))
    body = {"core_firm": people["automaker"].id, "limit": 10_000_000 * YUAN}
    ok(http.post("/credit-lines", json=body, headers={**api.operator_headers, **WAIT}))
    due = (datetime.fromtimestamp(api.now(), UTC).date() + timedelta(days=90)).isoformat()
    body = {
        "buyer": people["automaker"].id,
        "amount": 1_000_000 * YUAN,
        "currency": "CNY",
        "invoice_number": f"{int(time.time() * 1000):020d}",
        "due_date": due,
    }
    invoice_id = ok(http.post("/invoices", json=body, headers=people["seatmaker"].waiting()))["result"]["invoice_id"]
    confirmed = ok(http.post(f"/invoices/{invoice_id}/confirm", headers=people["automaker"].waiting()))
    piece_id = confirmed["result"]["piece_id"]
    body = {"to": people["foammaker"].id, "amount": 300_000 * YUAN}
    split = ok(http.post(f"/receivables/{piece_id}/transfers", json=body, headers=people["seatmaker"].waiting()))
    foam_piece = split["result"]["piece_id"]
    body = {
        "piece_id": foam_piece,
        "amount": 300_000 * YUAN,
        "financier": people["factor"].id,
        "max_discount_rate_bps": 600,
        "max_fee": 500 * YUAN,
    }
    request_id = ok(http.post("/financing-requests", json=body, headers=people["foammaker"].waiting()))["result"][
        "request_id"
    ]
    terms = {"discount_rate_bps": 600, "fee": 500 * YUAN}
    ok(http.post(f"/financing-requests/{request_id}/approve", json=terms, headers=people["factor"].waiting()))
    funded = ok(http.post(f"/financing-requests/{request_id}/fund", headers=people["factor"].waiting()))
    api.travel(91 * 86_400)
    body = {"amount": 1_000_000 * YUAN}
    ok(http.post(f"/obligations/{invoice_id}/repayments", json=body, headers=people["automaker"].waiting()))
    ok(http.post(f"/receivables/{piece_id}/redeem", headers=people["seatmaker"].waiting()))
    ok(http.post(f"/receivables/{funded['result']['piece_id']}/redeem", headers=people["factor"].waiting()))
    return {"people": people, "invoice_id": invoice_id, "piece_id": piece_id, "request_id": request_id}


@pytest.fixture(scope="module")
def story(api: Api) -> dict[str, Any]:
    return receivable_story(api)


def chain_event_ids(api: Api) -> list[str]:
    """``<block hash>:<log index>`` of every log of the ledger's contracts up to the indexed block, from the
    chain itself, in (block, log index) order."""
    service = api.service
    through = service.indexer.indexed_block()
    assert through is not None
    logs = service.w3.eth.get_logs(
        {
            "fromBlock": 0,
            "toBlock": through,
            "address": [Web3.to_checksum_address(a) for a in service.indexer.decoder.addresses],
        }
    )
    ordered = sorted(logs, key=lambda log: (log["blockNumber"], log["logIndex"]))
    return [f"0x{bytes(log['blockHash']).hex()}:{log['logIndex']}" for log in ordered]


def test_the_feed_holds_exactly_the_chains_events_once_each_in_order(api: Api, story: dict[str, Any]) -> None:
    events = all_events(api, api.operator_headers)
    ids = [event["id"] for event in events]
    assert all(event["action"] == "added" for event in events)
    assert len(ids) == len(set(ids))
    assert [(e["block_number"], e["log_index"]) for e in events] == sorted(
        (e["block_number"], e["log_index"]) for e in events
    )
    with api.service.sessions() as session:
        stored = [
            f"{block_hash}:{log_index}"
            for block_hash, log_index in session.execute(
                select(EventRow.block_hash, EventRow.log_index).order_by(EventRow.block_number, EventRow.log_index)
            )
        ]
    assert ids == stored
    chain = chain_event_ids(api)
    assert ids == chain[: len(ids)] and len(ids) >= len(chain) - 5  # the index may trail the head by a block
    kinds = {event["kind"] for event in events}
    for kind in (
        "participant.registered",
        "deposit.minted",
        "invoice.confirmed",
        "piece.split",
        "financing.funded",
        "obligation.repaid",
        "piece.redeemed",
    ):
        assert kind in kinds, kind
    funded = next(
        e for e in events if e["kind"] == "financing.funded" and e["fields"]["request_id"] == story["request_id"]
    )
    assert isinstance(funded["fields"]["price"], int) and funded["fields"]["amount"] == 300_000 * YUAN
    assert funded["event"] == "FinancingFunded" and funded["contract"] == "receivables"


def test_each_participant_sees_its_own_events_the_regulator_all(api: Api, story: dict[str, Any]) -> None:
    people: dict[str, Participant] = story["people"]
    everything = all_events(api, api.operator_headers)
    assert [e["id"] for e in all_events(api, people["regulator"].headers)] == [e["id"] for e in everything]
    seatmaker = people["seatmaker"].id
    own = all_events(api, people["seatmaker"].headers)
    assert own and all(seatmaker in event["parties"] for event in own)
    assert [e["seq"] for e in own] == [e["seq"] for e in everything if seatmaker in e["parties"]]
    assert {"invoice.confirmed", "piece.split", "obligation.repaid", "piece.redeemed"} <= {e["kind"] for e in own}
    stranger = all_events(api, people["stranger"].headers)
    assert stranger and all(people["stranger"].id in event["parties"] for event in stranger)
    assert not {e["id"] for e in stranger} & {e["id"] for e in own}
    # the factor sees the obligation it financed repaid, though the repayment names only the invoice
    factor_kinds = {e["kind"] for e in all_events(api, people["factor"].headers)}
    assert {"financing.funded", "obligation.repaid"} <= factor_kinds


def test_filters_by_kind_and_counterparty(api: Api, story: dict[str, Any]) -> None:
    people: dict[str, Participant] = story["people"]
    confirmed = all_events(api, api.operator_headers, kinds="invoice.confirmed,piece.split")
    assert confirmed and {e["kind"] for e in confirmed} == {"invoice.confirmed", "piece.split"}
    with_factor = all_events(api, people["foammaker"].headers, counterparty=people["factor"].id)
    assert with_factor and all({people["foammaker"].id, people["factor"].id} <= set(e["parties"]) for e in with_factor)
    bad = problem(api.http.get("/events", params={"kinds": "Invoice Confirmed"}, headers=api.operator_headers), 422)
    assert bad["type"] == "urn:scf:problem:validation"
    problem(api.http.get("/events", params={"after": "-1"}, headers=api.operator_headers), 422)
    problem(api.http.get("/events", params={"after": "1.0"}, headers=api.operator_headers), 422)
    problem(api.http.get("/events"), 401)


def sse(api: Api, headers: dict[str, str], **params: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """``(id, event, data)`` of each message of a bounded stream (``limit``)."""
    response = api.http.get("/events/stream", params=params, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    messages = []
    for block in response.text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            fields[name] = value
        if fields:
            messages.append((fields["id"], fields["event"], json.loads(fields["data"])))
    return messages


def test_the_stream_resumes_from_last_event_id(api: Api, story: dict[str, Any]) -> None:
    people: dict[str, Participant] = story["people"]
    everything = all_events(api, people["seatmaker"].headers)
    first = sse(api, people["seatmaker"].headers, limit=3)
    assert [int(i) for i, _, _ in first] == [e["seq"] for e in everything[:3]]
    assert all(event == "added" for _, event, _ in first)
    assert [data for _, _, data in first] == everything[:3]
    resumed = sse(api, {**people["seatmaker"].headers, "Last-Event-ID": first[-1][0]}, limit=4)
    assert [data for _, _, data in resumed] == everything[3:7]
    by_query = sse(api, people["seatmaker"].headers, after=everything[1]["seq"], limit=2)
    assert [data for _, _, data in by_query] == everything[2:4]
    problem(api.http.get("/events/stream", headers={**api.operator_headers, "Last-Event-ID": "x"}), 422)
