"""The audit log over HTTP against a real anvil: one hash-chained record per API action (who, route,
operation, body hash, result), its head anchored on chain, and every alteration of a record caught, whether
the forger leaves the hashes alone or rewrites the chain after the change."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, event, insert, select

from api.audit_log import GENESIS_HASH, AuditEntry, AuditLog, AuditRecord, record_hash
from ledger.db import Base, make_engine, make_sessionmaker
from ledger.migrations import upgrade
from tests.api.conftest import Api, Participant, postgres_schema

SOAK_RECORDS = int(os.environ.get("SCF_SOAK_RECORDS", "500"))
#: This module's service anchors the log by itself every 100 records (the other API modules turn it off).
SETTINGS = {"audit_anchor_every": 100, "audit_anchor_seconds": 600.0}


def head(api: Api) -> int:
    return api.service.audit_log.head().sequence


def records_after(api: Api, sequence: int) -> list[dict[str, Any]]:
    response = api.http.get("/audit/log", params={"after": sequence, "size": 500}, headers=api.operator_headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def verify(api: Api) -> dict[str, Any]:
    response = api.http.get("/audit/log/verify", headers=api.operator_headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def anchor_now(api: Api) -> dict[str, Any]:
    response = api.http.post("/audit/log/anchors", headers=api.operator_headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def people(api: Api) -> dict[str, Participant]:
    return {
        "agent": api.onboard("Audit Settlement Bank", "settlement-agent"),
        "supplier": api.onboard("Audit Supplier", "supplier"),
        "regulator": api.onboard("Audit Regulator", "regulator"),
    }


def test_every_action_is_recorded_with_who_route_operation_body_hash_and_result(
    api: Api, people: dict[str, Participant]
) -> None:
    agent, supplier = people["agent"], people["supplier"]
    start = head(api)
    body = json.dumps({"participant": supplier.id, "amount": 4_321, "bank_reference": "audit wire 1"}).encode()
    deposit = api.http.post("/deposits", content=body, headers={**agent.waiting(), "Content-Type": "application/json"})
    assert deposit.status_code == 200, deposit.text
    forbidden = api.http.post(
        "/deposits", json={"participant": supplier.id, "amount": 1, "bank_reference": "r"}, headers=supplier.waiting()
    )
    assert forbidden.status_code == 403
    assert api.http.post("/deposits", json={"amount": 1}).status_code == 401
    assert api.http.get("/balances/me", headers=supplier.headers).status_code == 200  # a read: not an action
    refused_upload = api.http.post("/documents", content=b"never read", headers={"Content-Type": "text/plain"})
    assert refused_upload.status_code == 401

    records = records_after(api, start)
    assert [(r["method"], r["route"], r["status_code"]) for r in records] == [
        ("POST", "/deposits", 200),
        ("POST", "/deposits", 403),
        ("POST", "/deposits", 401),
        ("POST", "/documents", 401),
    ]
    done, denied, anonymous, upload = records
    assert done["actor"] == agent.id and done["outcome"] == "ok" and not done["replayed"]
    assert done["operation_id"] == deposit.json()["operation_id"]
    assert done["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert done["request_id"] == deposit.headers["X-Request-ID"]
    assert denied["actor"] == supplier.id and denied["outcome"] == "urn:scf:problem:forbidden-role"
    assert denied["operation_id"] is None
    assert anonymous["actor"] is None and anonymous["outcome"] == "urn:scf:problem:unauthenticated"
    assert upload["body_sha256"] is None  # refused before the service read the body: no hash of it
    for previous, record in zip([None, *records], records, strict=False):
        if previous is not None:
            assert record["sequence"] == previous["sequence"] + 1 and record["prev_hash"] == previous["hash"]


def test_a_requests_records_are_committed_with_its_audit_record(api: Api, people: dict[str, Participant]) -> None:
    """The operation record and the idempotency answer of a request go in the transaction of its audit record:
    one commit for the three (the idempotency claim, before the request runs, has its own); and a replay is
    answered from that record."""
    agent, supplier = people["agent"], people["supplier"]
    engine = api.service.sessions.kw["bind"]
    tables: list[set[str]] = []  # the tables each commit wrote to (of these three)
    current: dict[int, set[str]] = {}  # by connection: the background threads commit meanwhile

    def statement(conn: Any, cursor: Any, sql: str, *_: Any) -> None:
        for table in ("audit_log", "service_operations", "idempotency_records"):
            if sql.lstrip().upper().startswith(("INSERT", "UPDATE")) and table in sql:
                current.setdefault(id(conn), set()).add(table)

    def commit(conn: Any) -> None:
        written = current.pop(id(conn), None)
        if written:
            tables.append(written)

    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)
    try:
        body = {"participant": supplier.id, "amount": 5, "bank_reference": "audit one transaction"}
        headers = {**agent.headers, "Idempotency-Key": "audit-one-transaction"}
        first = api.http.post("/deposits", json=body, headers=headers)
        assert first.status_code == 202, first.text
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "commit", commit)
    assert {"audit_log", "service_operations", "idempotency_records"} in tables, tables
    operation_id = first.json()["operation_id"]
    replay = api.http.post("/deposits", json=body, headers=headers)
    assert replay.status_code == 202 and replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["operation_id"] == operation_id
    seen = api.http.get(f"/operations/{operation_id}", headers=agent.headers)
    assert seen.status_code in (200, 202) and seen.json()["kind"] == first.json()["kind"]
    assert api.http.get(f"/operations/{operation_id}", headers=supplier.headers).status_code == 404


def test_document_reads_are_recorded_and_their_content_is_not(api: Api, people: dict[str, Participant]) -> None:
    supplier = people["supplier"]
    content = b"audit-log document: warehouse certificate 7781"
    uploaded = api.http.post("/documents", content=content, headers={**supplier.headers, "Content-Type": "text/plain"})
    assert uploaded.status_code in (200, 201), uploaded.text
    start = head(api)
    assert api.http.get(f"/documents/{uploaded.json()['sha256']}", headers=supplier.headers).content == content
    (read,) = records_after(api, start)
    assert (read["method"], read["route"], read["actor"]) == ("GET", "/documents/{sha256}", supplier.id)
    with api.service.sessions() as session:
        for record in session.scalars(select(AuditRecord)):
            assert content.decode() not in json.dumps([str(v) for v in record.__dict__.values()])


def test_only_the_regulator_and_the_operator_read_and_verify_the_log(api: Api, people: dict[str, Participant]) -> None:
    regulator, supplier = people["regulator"], people["supplier"]
    assert api.http.get("/audit/log/verify", headers=regulator.headers).json()["valid"] is True
    assert api.http.get("/audit/log", headers=regulator.headers).status_code == 200
    for path in ("/audit/log", "/audit/log/verify"):
        assert api.http.get(path, headers=supplier.headers).status_code == 403
        assert api.http.get(path).status_code == 401
    assert api.http.post("/audit/log/anchors", headers=regulator.headers).status_code == 403


def test_the_head_is_anchored_on_chain_and_the_log_verifies_against_every_anchor(
    api: Api, people: dict[str, Participant]
) -> None:
    service = api.service
    api.http.post("/deposits", json={"amount": 1}, headers=people["supplier"].waiting())  # one more record
    before = service.audit_log.head()
    anchored = anchor_now(api)
    assert anchored["anchored"] is True and anchored["block_number"] is not None
    assert (anchored["sequence"], anchored["hash"]) == (before.sequence, before.hash)
    assert service.client.latest_audit_anchor() == (before.sequence, bytes.fromhex(before.hash))
    assert service.client.audit_anchor_head(before.sequence) == bytes.fromhex(before.hash)
    assert head(api) == before.sequence + 1  # the anchoring request is itself recorded, after the anchor

    report = verify(api)
    assert report["valid"] is True and report["first_invalid"] is None and report["reason"] is None
    assert report["records"] == report["head"]["sequence"] == before.sequence + 1
    assert report["latest_anchor"]["sequence"] == before.sequence
    assert report["anchors_checked"] == len(service.client.audit_anchors()) >= 1
    assert report["unanchored_records"] == 1


@contextmanager
def tampering(api: Api) -> Iterator[AuditLog]:
    """Anchor the head, let a test alter the log, then put every record back as it was. Nothing is appended
    meanwhile (the test sends only reads), so the anchorer has nothing to anchor."""
    anchor_now(api)
    log = api.service.audit_log
    with log.sessions() as session:
        original = list(session.scalars(select(AuditRecord).order_by(AuditRecord.sequence)))
        for record in original:
            session.expunge(record)
    try:
        yield log
    finally:
        with log.sessions() as session, session.begin():
            session.execute(delete(AuditRecord))
            session.flush()
            session.add_all([_copy(r) for r in original])
        assert verify(api)["valid"] is True


def _copy(record: AuditRecord) -> AuditRecord:
    return AuditRecord(**{c.key: getattr(record, c.key) for c in AuditRecord.__table__.columns})


ALTERATIONS: dict[str, Any] = {
    "actor": lambda r: "0x" + "ab" * 20 if r.actor is None else None,
    "method": lambda r: "DELETE" if r.method != "DELETE" else "POST",
    "route": lambda r: r.route + "/x",
    "path": lambda r: r.path + "/x",
    "operation_id": lambda r: "forged" if r.operation_id != "forged" else None,
    "body_sha256": lambda r: "0" * 64 if r.body_sha256 != "0" * 64 else "1" * 64,
    "status_code": lambda r: 200 if r.status_code != 200 else 409,
    "outcome": lambda r: "ok" if r.outcome != "ok" else "urn:scf:problem:forbidden-role",
    "replayed": lambda r: not r.replayed,
    "request_id": lambda r: "forged-request",
    "recorded_at": lambda r: r.recorded_at + timedelta(microseconds=1),
    "prev_hash": lambda r: "f" * 64,
    "hash": lambda r: "e" * 64,
}


def test_changing_any_single_field_of_any_single_record_is_detected(api: Api) -> None:
    """Every record altered in turn (every field of the first and the last, two random fields of the others)."""
    alter_each_record_in_turn(api, every_field=False)


@pytest.mark.soak
def test_changing_every_field_of_every_record_is_detected(api: Api, people: dict[str, Participant]) -> None:
    """`make soak`: hundreds more records, then every field of every record altered in turn."""
    for i in range(SOAK_RECORDS):
        api.http.post("/deposits", json={"amount": i + 1}, headers=people["supplier"].headers)
    alter_each_record_in_turn(api, every_field=True)


def alter_each_record_in_turn(api: Api, *, every_field: bool) -> None:
    rng = random.Random(7)
    with tampering(api) as log:
        sequences = [r.sequence for r in log.page(1, 100_000)]
        assert len(sequences) >= 10
        tried = 0
        for sequence in sequences:
            thorough = every_field or sequence in (sequences[0], sequences[-1])
            fields = list(ALTERATIONS) if thorough else rng.sample(list(ALTERATIONS), 2)
            for name in fields:
                with log.sessions() as session, session.begin():
                    record = session.get(AuditRecord, sequence)
                    assert record is not None
                    kept = getattr(record, name)
                    setattr(record, name, ALTERATIONS[name](record))
                report = verify(api)
                assert report["valid"] is False, (sequence, name)
                assert report["first_invalid"] == sequence, (sequence, name, report)
                with log.sessions() as session, session.begin():
                    record = session.get(AuditRecord, sequence)
                    assert record is not None
                    setattr(record, name, kept)
                tried += 1
        assert verify(api)["valid"] is True
        assert tried >= 2 * len(sequences)
        print(f"{tried} alterations of {len(sequences)} records: {tried} detected")


def test_a_rewritten_chain_of_hashes_is_caught_by_the_anchor_on_chain(api: Api) -> None:
    """A forger who changes a record and recomputes every later hash leaves a consistent chain; the anchor
    on chain still names the true head."""
    with tampering(api) as log:
        records = log.page(1, 10_000)
        target = records[len(records) // 2]
        with log.sessions() as session, session.begin():
            previous = GENESIS_HASH if target.sequence == 1 else records[target.sequence - 2].hash
            for record in records[target.sequence - 1 :]:
                row = session.get(AuditRecord, record.sequence)
                assert row is not None
                if row.sequence == target.sequence:
                    row.outcome, row.status_code = "ok", 200  # a refusal made to look like a success
                row.prev_hash = previous
                row.hash = record_hash(row)
                previous = row.hash
        report = verify(api)
        anchored = sorted(a.sequence for a in api.service.client.audit_anchors())
        assert report["valid"] is False
        assert report["first_invalid"] == min(s for s in anchored if s >= target.sequence)
        assert "anchored on chain" in report["reason"]


def test_deleting_records_is_detected_in_the_middle_and_at_the_anchored_end(api: Api) -> None:
    with tampering(api) as log:
        records = log.page(1, 10_000)
        middle = records[len(records) // 2].sequence
        with log.sessions() as session, session.begin():
            session.execute(delete(AuditRecord).where(AuditRecord.sequence == middle))
        report = verify(api)
        assert (report["valid"], report["first_invalid"]) == (False, middle)
        assert "missing" in report["reason"]
    with tampering(api) as log:
        last = log.head().sequence
        with log.sessions() as session, session.begin():
            session.execute(delete(AuditRecord).where(AuditRecord.sequence >= last - 2))
        report = verify(api)
        assert (report["valid"], report["first_invalid"]) == (False, last - 2)
        assert "records were deleted" in report["reason"]


def test_the_anchorer_anchors_by_itself_after_enough_records(api: Api, people: dict[str, Participant]) -> None:
    service = api.service
    anchorer = service.audit_anchorer
    every = api.settings.audit_anchor_every
    assert anchorer.every == every > 0
    anchor_now(api)
    first, _ = service.client.latest_audit_anchor()
    for _ in range(every):
        api.http.post("/deposits", json={"amount": 1}, headers=people["supplier"].headers)  # 403 each: recorded
    deadline = time.monotonic() + 20
    while service.client.latest_audit_anchor()[0] < first + every:
        assert time.monotonic() < deadline, "the anchorer did not anchor the log after enough records"
        time.sleep(0.2)
    assert verify(api)["valid"] is True


def test_without_anchors_the_log_still_verifies_on_its_hashes(api: Api) -> None:
    log = api.service.audit_log
    head_before = log.head()
    report = log.verify([])
    assert report.valid and report.head == head_before and report.anchors_checked == 0
    assert report.unanchored == head_before.sequence


# -- without a chain: the log itself ----------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of its own, migrated and empty: an SQLite file, or a fresh schema on the local PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'audit.sqlite3'}"
        upgrade(url)
        yield url
        return
    with postgres_schema("scf_audit_test") as url:
        upgrade(url)
        yield url


def test_two_processes_appending_at_once_keep_one_unbroken_chain(empty_database: str) -> None:
    """Two logs on one database (as two service processes would have), four threads each: every append takes
    the database's lock for the log before it reads the head, so none is refused and the chain never forks."""
    url = empty_database
    logs = [AuditLog(make_sessionmaker(make_engine(url))) for _ in range(2)]
    entry = AuditEntry("0x" + "11" * 20, "POST", "/deposits", "/deposits", None, "ab" * 32, 403, "denied")

    def append_many(log: AuditLog) -> None:
        for _ in range(25):
            log.append(entry)

    threads = [threading.Thread(target=append_many, args=(logs[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report = logs[0].verify([])
    assert report.valid and report.records == 200 and report.head == logs[1].head()


def test_appends_asked_for_in_one_turn_of_the_loop_commit_together_and_a_failing_one_fails_alone(
    empty_database: str,
) -> None:
    """The answers of a block's operations are recorded together (AuditLog.append_together): one commit for
    all; when one request's own writes fail, the shared transaction is given up and each is written alone, so
    only that request fails, and the chain stays whole."""
    engine = make_engine(empty_database)
    log = AuditLog(make_sessionmaker(engine))
    commits: list[int] = []
    event.listen(engine, "commit", lambda connection: commits.append(1))
    entry = AuditEntry("0x" + "11" * 20, "POST", "/deposits", "/deposits", None, "ab" * 32, 202, "accepted")

    async def together(also: dict[int, list[Any]]) -> list[BaseException | None]:
        results = await asyncio.gather(
            *(log.append_together(entry, also.get(i, [])) for i in range(20)), return_exceptions=True
        )
        return [r if isinstance(r, BaseException) else None for r in results]

    assert asyncio.run(together({})) == [None] * 20
    assert len(commits) == 1

    commits.clear()
    duplicate = (insert(AuditRecord.__table__), {"sequence": 1, "hash": "x"})  # the first record's key again
    failed = asyncio.run(together({7: [duplicate]}))
    assert [i for i, outcome in enumerate(failed) if outcome is not None] == [7]
    assert len(commits) == 19  # the shared transaction rolled back, then each of the others alone
    report = log.verify([])
    assert report.valid and report.records == 39


def test_the_migration_creates_exactly_the_audit_log_model(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    url = f"sqlite:///{tmp_path / 'schema.sqlite3'}"
    upgrade(url)
    engine = make_engine(url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert [d for d in differences if "audit_log" in repr(d)] == []
    assert "audit_log" in Base.metadata.tables
