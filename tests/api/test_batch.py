"""``POST /batch``: many state-changing requests in one, each performed as its single route performs it (the
same checks of the caller, idempotency, pre-flight and problems), each with its own answer in its slot, none
stopping the others."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from typing import Any

import pytest
from eth_account import Account
from sqlalchemy import event, func, select

from api.audit_log import AuditRecord
from ledger import acts
from ledger.identifiers import synthetic_credit_code
from ledger.journal import JournalTransaction
from tests.api.conftest import WAIT, Api, Participant
from tests.api.test_audit_log import verify
from tests.api.test_receivables_api import YUAN, due_in, ok, problem
from tests.api.test_self_custody_api import onboard_self_custody

_numbers = itertools.count(int.from_bytes(os.urandom(3), "big") * 1000)


def _invoice_number() -> str:
    return f"{25_118_000_000_000_000_000 + next(_numbers):020d}"[-20:]


def _invoice(api: Api, buyer: Participant, amount: int) -> dict[str, Any]:
    return {
        "buyer": buyer.id,
        "amount": amount,
        "currency": "CNY",
        "invoice_number": _invoice_number(),
        "due_date": due_in(90, api),
    }


def batch(api: Api, who: Participant, items: list[dict[str, Any]], *, wait: bool = True) -> list[dict[str, Any]]:
    """The answers of a batch, checked to be one per item and to count what they hold."""
    answer = ok(api.http.post("/batch", json={"items": items}, headers=who.waiting() if wait else who.headers))
    assert len(answer["items"]) == len(items)
    refused = sum(1 for item in answer["items"] if item["problem"] is not None)
    assert (answer["accepted"], answer["refused"]) == (len(items) - refused, refused)
    return answer["items"]  # type: ignore[no-any-return]


def _journal_size(api: Api) -> int:
    with api.service.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(JournalTransaction)))


def _cast(api: Api, tag: str, line: int = 10_000_000 * YUAN) -> dict[str, Participant]:
    people = {
        "agent": api.onboard(f"Batch bank {tag}", "settlement-agent"),
        "core": api.onboard(f"Batch automaker {tag}", "core-firm"),
        "seller": api.onboard(f"Batch seats {tag}", "supplier"),
    }
    ok(
        api.http.post(
            "/credit-lines",
            json={"core_firm": people["core"].id, "limit": line},
            headers={**api.operator_headers, **WAIT},
        )
    )
    return people


def _deposits(
    to: Participant,
    label: str,
    count: int,
    *,
    keyed: Callable[[int], bool] = lambda i: False,
    amount: Callable[[int], int] = lambda i: 1,
) -> list[dict[str, Any]]:
    """``count`` deposit items to ``to``, each with a bank reference of its own (and, where ``keyed``, that
    reference as its idempotency key)."""
    tag = os.urandom(4).hex()
    items: list[dict[str, Any]] = []
    for i in range(count):
        reference = f"{label} {tag} {i}"
        body = {"participant": to.id, "amount": amount(i), "bank_reference": reference}
        items.append({"operation": "deposit", "body": body, **({"idempotency_key": reference} if keyed(i) else {})})
    return items


def test_each_item_gets_its_own_answer_bad_ones_the_single_routes_problem_good_ones_confirmed(api: Api) -> None:
    who = _cast(api, "mixed")
    seller, core = who["seller"], who["core"]
    good = [_invoice(api, core, (1_000 + i) * YUAN) for i in range(3)]
    bad: list[tuple[dict[str, Any], str]] = [
        ({"operation": "register_invoice", "body": {**_invoice(api, core, 1), "amount": "100"}}, "validation"),
        ({"operation": "register_invoice", "body": {**_invoice(api, core, 1), "amount": True}}, "validation"),
        ({"operation": "register_invoice", "body": {**_invoice(api, core, 1), "buyer": "0x12"}}, "validation"),
        ({"operation": "confirm_invoice", "path": {"invoice_id": "1"}}, "validation"),
        ({"operation": "confirm_invoice", "path": {"invoice_id": 1.0}}, "validation"),
        ({"operation": "confirm_invoice", "path": {"invoice_id": True}}, "validation"),
        ({"operation": "confirm_invoice", "path": {"invoice_id": 10**80}}, "validation"),  # 81 digits
        ({"operation": "confirm_invoice"}, "validation"),
        (
            {"operation": "deposit", "body": {"participant": seller.id, "amount": 1, "bank_reference": "r"}},
            "forbidden-role",
        ),
        ({"operation": "no_such_route", "body": {}}, "unknown-operation"),
        ({"operation": "register_invoice", "body": good[0], "idempotency_key": ""}, "idempotency-key"),
    ]
    items = [
        {"operation": "register_invoice", "body": good[0]},
        *(item for item, _ in bad[:5]),
        {"operation": "register_invoice", "body": good[1]},
        *(item for item, _ in bad[5:]),
        {"operation": "register_invoice", "body": good[2]},
    ]
    answers = batch(api, seller, items)

    accepted = [answers[0], answers[6], answers[-1]]
    for answer, body in zip(accepted, good, strict=True):
        assert answer["status"] == 200 and answer["problem"] is None, answer["problem"]
        operation = answer["operation"]
        assert operation["status"] == "confirmed" and operation["kind"] == "invoice.register"
        assert answer["location"] == f"/operations/{operation['operation_id']}"
        invoice = ok(api.http.get(f"/invoices/{operation['result']['invoice_id']}", headers=seller.headers))
        assert invoice["amount"] == body["amount"]

    refused = answers[1:6] + answers[7:-1]
    for answer, (item, kind) in zip(refused, bad, strict=True):
        assert answer["operation"] is None and answer["problem"]["type"] == f"urn:scf:problem:{kind}", (item, answer)
        assert answer["status"] == answer["problem"]["status"]
    # The same problem as the single route answers for the same request.
    single = api.http.post("/invoices", json=bad[0][0]["body"], headers=seller.headers)
    assert (refused[0]["status"], refused[0]["problem"]["type"]) == (single.status_code, single.json()["type"])
    deposit = next(i for i, (item, _) in enumerate(bad) if item["operation"] == "deposit")
    single = api.http.post("/deposits", json=bad[deposit][0]["body"], headers=seller.headers)
    assert (refused[deposit]["status"], refused[deposit]["problem"]["type"]) == (
        single.status_code,
        single.json()["type"],
    )

    # Each item is an action of its own in the audit log, with the route it named and the operation it started.
    with api.service.sessions() as session:
        records = session.scalars(
            select(AuditRecord).where(AuditRecord.actor == seller.id).order_by(AuditRecord.sequence)
        ).all()
    operations = {r.operation_id for r in records if r.route == "/invoices" and r.outcome == "ok"}
    assert {a["operation"]["operation_id"] for a in accepted} <= operations
    assert any(r.route == "/deposits" and r.outcome == "urn:scf:problem:forbidden-role" for r in records)
    batch_records = [r for r in records if r.request_id and "#" in r.request_id]
    assert len(batch_records) == len(items) and len({r.request_id.split("#")[0] for r in batch_records}) == 1
    assert verify(api)["valid"] is True  # the items' records continue the hash chain


def test_a_replayed_batch_answers_the_same_operations_and_sends_nothing_again(api: Api) -> None:
    who = _cast(api, "replay")
    agent, seller = who["agent"], who["seller"]
    items = _deposits(seller, "batch", 5, keyed=lambda i: True, amount=lambda i: (i + 1) * YUAN)
    first = batch(api, agent, items)
    assert all(a["status"] == 200 and a["operation"]["status"] == "confirmed" for a in first), first
    before = _journal_size(api)

    again = batch(api, agent, items)
    assert [a["operation"] for a in again] == [a["operation"] for a in first]
    assert all(a["replayed"] for a in again)
    assert _journal_size(api) == before
    assert ok(api.http.get("/balances/me", headers=seller.headers))["balance"] == 15 * YUAN

    # An item's key is the single route's Idempotency-Key: the same request there is the same operation.
    single = api.http.post(
        "/deposits", json=items[0]["body"], headers=agent.waiting(**{"Idempotency-Key": items[0]["idempotency_key"]})
    )
    assert single.json() == first[0]["operation"] and single.headers["Idempotent-Replayed"] == "true"

    # A key reused with another body is that item's 422; the others still replay.
    changed = [{**items[0], "body": {**items[0]["body"], "amount": 1}}, *items[1:]]
    mixed = batch(api, agent, changed)
    assert mixed[0]["status"] == 422 and mixed[0]["problem"]["type"] == "urn:scf:problem:idempotency-key-reused"
    assert [a["operation"] for a in mixed[1:]] == [a["operation"] for a in first[1:]]
    assert _journal_size(api) == before


def test_an_item_the_contracts_refuse_does_not_stop_the_others(api: Api) -> None:
    who = _cast(api, "refused", line=1_000_000 * YUAN)
    seller, core = who["seller"], who["core"]
    amounts = [100_000 * YUAN, 2_000_000 * YUAN, 200_000 * YUAN]  # the second is beyond the core firm's line
    registered = batch(
        api, seller, [{"operation": "register_invoice", "body": _invoice(api, core, a)} for a in amounts]
    )
    ids = [answer["operation"]["result"]["invoice_id"] for answer in registered]

    before = _journal_size(api)
    answers = batch(api, core, [{"operation": "confirm_invoice", "path": {"invoice_id": i}} for i in ids])
    over = answers[1]
    assert over["problem"]["type"] == "urn:scf:problem:contract:ReceivablesCreditLineExceeded", over
    assert over["problem"]["instance"] == f"/invoices/{ids[1]}/confirm"
    for answer in (answers[0], answers[2]):
        assert answer["status"] == 200 and answer["operation"]["status"] == "confirmed", answer
        assert answer["operation"]["result"]["piece_id"] >= 1
    assert _journal_size(api) == before + 2  # refused at pre-flight: never signed


def test_each_item_is_authorised_as_its_single_route_would_be(api: Api) -> None:
    who = _cast(api, "authz")
    seller, core = who["seller"], who["core"]
    stranger = api.onboard("Batch stranger", "core-firm")
    invoice_id = ok(api.http.post("/invoices", json=_invoice(api, core, 5_000 * YUAN), headers=seller.waiting()))[
        "result"
    ]["invoice_id"]
    items = [
        {"operation": "confirm_invoice", "path": {"invoice_id": invoice_id}},
        {"operation": "deposit", "body": {"participant": stranger.id, "amount": 1, "bank_reference": "authz batch"}},
        {"operation": "set_credit_line", "body": {"core_firm": stranger.id, "limit": 1}},
        {"operation": "approve_settlement", "body": {"spender_contract": "receivables"}},
    ]
    before = _journal_size(api)
    answers = batch(api, stranger, items)
    for item, answer in zip(items[:3], answers[:3], strict=True):
        single = api.http.post(
            "/invoices/{invoice_id}/confirm".format(**item.get("path", {}))
            if item["operation"] == "confirm_invoice"
            else {"deposit": "/deposits", "set_credit_line": "/credit-lines"}[item["operation"]],
            json=item.get("body"),
            headers=stranger.headers,
        )
        assert single.status_code in (403, 404), single.text
        assert (answer["status"], answer["problem"]["type"]) == (single.status_code, single.json()["type"]), answer
    assert answers[3]["status"] == 200 and answers[3]["operation"]["status"] == "confirmed", answers[3]
    assert _journal_size(api) == before + 1  # only the stranger's own approval

    # The invoice's buyer may confirm it, in a batch as alone.
    confirmed = batch(api, core, items[:1])[0]
    assert confirmed["operation"]["status"] == "confirmed", confirmed


def test_a_batch_too_large_empty_or_keyed_as_a_whole_is_refused_whole_and_sends_nothing(api: Api) -> None:
    agent = _cast(api, "limit")["agent"]
    limit = api.settings.batch_max_items
    item = {"operation": "approve_settlement", "body": {"spender_contract": "receivables"}}
    before = _journal_size(api)
    too_many = problem(api.http.post("/batch", json={"items": [item] * (limit + 1)}, headers=agent.waiting()), 422)
    assert too_many["type"] == "urn:scf:problem:batch-too-large" and too_many["limit"] == limit
    assert problem(api.http.post("/batch", json={"items": []}, headers=agent.headers), 422)["type"].endswith(
        "validation"
    )
    assert problem(api.http.post("/batch", json={"items": [item]}), 401)["type"].endswith("unauthenticated")
    keyed = api.http.post("/batch", json={"items": [item]}, headers=agent.waiting(**{"Idempotency-Key": "whole"}))
    assert problem(keyed, 422)["type"] == "urn:scf:problem:idempotency-key"  # the keys are the items'
    assert _journal_size(api) == before


def test_a_batchs_operations_are_preflighted_and_go_to_the_chain_together(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    who = _cast(api, "together")
    agent, seller = who["agent"], who["seller"]
    items = _deposits(seller, "together", 40)
    rpc = api.service.pipeline._rpc
    assert rpc is not None
    send = rpc.batch
    preflights: list[int] = []

    async def counting(calls: Any) -> Any:  # the real batch, its eth_calls counted
        preflights.append(sum(1 for method, _ in calls if method == "eth_call"))
        return await send(calls)

    monkeypatch.setattr(rpc, "batch", counting)
    answers = batch(api, agent, items)
    monkeypatch.undo()
    assert max(preflights) == len(items), preflights  # every item's pre-flight in one JSON-RPC batch
    blocks = {a["operation"]["block_number"] for a in answers}
    assert all(a["operation"]["status"] == "confirmed" for a in answers)
    assert len(blocks) <= 2, blocks  # sent together: one block, two if a block was sealed while they arrived


def test_a_batchs_items_records_are_written_in_one_transaction_with_their_audit_records(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operation records and idempotency answers of a batch's items go in the transaction of the items'
    audit records, as a single request's go in its audit record's, and their keys are claimed together: not one
    commit per item."""
    who = _cast(api, "records")
    agent, seller = who["agent"], who["seller"]
    items = _deposits(seller, "records", 6, keyed=lambda i: i % 2 == 1)
    engine = api.service.sessions.kw["bind"]
    transactions = itertools.count()
    written: dict[str, list[int]] = {"claim": [], "service_operations": [], "idempotency_answer": [], "audit_log": []}

    def began(connection: Any) -> None:
        connection.info["transaction"] = next(transactions)

    def executed(connection: Any, cursor: Any, statement: str, *args: Any) -> None:
        text = " ".join(statement.split()).lower()
        if text.startswith("insert into idempotency_records"):
            written["claim"].append(connection.info.get("transaction", -1))
        elif text.startswith("insert into service_operations"):
            written["service_operations"].append(connection.info.get("transaction", -1))
        elif text.startswith("update idempotency_records set status_code"):
            written["idempotency_answer"].append(connection.info.get("transaction", -1))
        elif text.startswith("insert into audit_log"):
            written["audit_log"].append(connection.info.get("transaction", -1))

    event.listen(engine, "begin", began)
    event.listen(engine, "before_cursor_execute", executed)
    try:
        answers = batch(api, agent, items)
    finally:
        event.remove(engine, "begin", began)
        event.remove(engine, "before_cursor_execute", executed)
    assert all(a["status"] == 200 and a["operation"]["status"] == "confirmed" for a in answers), answers
    # the items' audit records (one statement for all of them), then the batch's own record
    items_audit = written["audit_log"][0]
    assert written["service_operations"] and set(written["service_operations"]) == {items_audit}, written
    assert written["idempotency_answer"] and set(written["idempotency_answer"]) == {items_audit}, written
    assert len(set(written["claim"])) == 1, written  # the three keys claimed in one transaction, before the rest

    # and they are there: each operation readable by its caller, each keyed item replayed
    for answer in answers:
        assert ok(api.http.get(answer["location"], headers=agent.headers))["status"] == "confirmed"
    again = batch(api, agent, [item for item in items if "idempotency_key" in item])
    assert all(a["replayed"] for a in again)


def test_when_the_items_audit_transaction_fails_their_records_are_still_written_with_the_batchs(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing is lost when the items' audit records cannot be written: their operation records and idempotency
    answers go with the batch request's own audit record instead (the answer still goes out, as a single
    request's does when its audit record fails)."""
    who = _cast(api, "audit fails")
    agent, seller = who["agent"], who["seller"]
    items = _deposits(seller, "audit fails", 3, keyed=lambda i: True)
    log = api.service.audit_log
    append_all = log.append_all
    failed: list[int] = []

    def failing_for_the_items(entries: Any, also: Any = ()) -> Any:
        if len(entries) == len(items) and not failed:  # the items' records, not the batch's own
            failed.append(len(also))
            raise RuntimeError("the audit log's database refused (test)")
        return append_all(entries, also)

    monkeypatch.setattr(log, "append_all", failing_for_the_items)
    answers = batch(api, agent, items)
    monkeypatch.undo()
    assert failed == [2 * len(items)], failed  # it did fail, holding each item's operation record and answer
    assert all(a["status"] == 200 and a["operation"]["status"] == "confirmed" for a in answers), answers
    for answer in answers:
        assert ok(api.http.get(answer["location"], headers=agent.headers))["status"] == "confirmed"
    again = batch(api, agent, items)
    assert all(a["replayed"] for a in again)
    assert [a["operation"] for a in again] == [a["operation"] for a in answers]


def test_a_self_custody_core_firm_confirms_a_batch_of_invoices_by_its_own_signatures(api: Api) -> None:
    key = Account.create()
    core = onboard_self_custody(
        api, "Batch self-custody automaker", "core-firm", key, synthetic_credit_code(int(time.time() * 1000) % 10**8)
    )
    seller = api.onboard("Batch self-custody seats", "supplier")
    ok(
        api.http.post(
            "/credit-lines",
            json={"core_firm": core.id, "limit": 10_000_000 * YUAN},
            headers={**api.operator_headers, **WAIT},
        )
    )
    registered = batch(
        api, seller, [{"operation": "register_invoice", "body": _invoice(api, core, (i + 1) * YUAN)} for i in range(4)]
    )
    ids = [a["operation"]["result"]["invoice_id"] for a in registered]

    asked = batch(api, core, [{"operation": "confirm_invoice", "path": {"invoice_id": i}} for i in ids])
    assert all(a["status"] == 428 for a in asked), asked
    documents = [a["problem"]["typed_data"] for a in asked]
    assert [d["message"]["invoiceId"] for d in documents] == ids
    assert len({d["message"]["nonce"] for d in documents}) == len(ids)  # acts prepared together: one nonce each

    signed = [
        {
            "operation": "relay_act",
            "body": {"typed_data": d, "signature": key.unsafe_sign_hash(acts.digest(d)).signature.to_0x_hex()},
            "idempotency_key": f"confirm {d['message']['invoiceId']}",
        }
        for d in documents
    ]
    forged = Account.create().unsafe_sign_hash(acts.digest(documents[0])).signature.to_0x_hex()
    relayed = batch(api, core, [*signed[1:], {**signed[0], "body": {**signed[0]["body"], "signature": forged}}])
    assert relayed[-1]["problem"]["error"] == "SignedActsInvalidSignature", relayed[-1]
    for answer in relayed[:-1]:
        assert answer["operation"]["status"] == "confirmed" and answer["operation"]["kind"] == "invoice.confirm"
        assert answer["operation"]["result"]["piece_id"] >= 1
    done = batch(api, core, [{**signed[0], "idempotency_key": "confirm first again"}])[0]
    assert done["operation"]["status"] == "confirmed", done
