"""Authentication remembers who is calling (api/auth_cache.py), and a change still counts on the next request.

The rule: a key revoked (or any write to ``api_keys`` / ``api_participants``) through the service's own database
engine takes effect on the very next request; a write by another process (here: another engine on the same
database, as ``scf api-key reissue`` or a second service process would make) within ``SCF_AUTH_CACHE_SECONDS``;
on PostgreSQL as soon as the change's notification is heard (migration ``0024_auth_notify``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text, update

from api.auth_cache import LISTENING_SECONDS, KnownParticipant, NotRemembered, ParticipantCache
from api.service import hash_api_key
from api.store import ApiKeyRecord, ParticipantRecord
from ledger.db import Base, make_engine, make_sessionmaker
from ledger.migrations import upgrade
from tests.api.conftest import Api, postgres_schema

CACHE_SECONDS = 1.0
SETTINGS = {"auth_cache_seconds": CACHE_SECONDS}


def _status(api: Api, headers: dict[str, str]) -> int:
    return int(api.http.get("/balances/me", headers=headers).status_code)


def test_revoking_an_api_key_takes_effect_on_the_next_request(api: Api) -> None:
    supplier = api.onboard("Remembered supplier", "supplier")
    assert _status(api, supplier.headers) == 200
    assert _status(api, supplier.headers) == 200  # now remembered
    rotated = api.http.post(f"/participants/{supplier.id}/keys", headers=api.operator_headers)
    assert rotated.status_code == 201 and rotated.json()["revoked"] == 1
    assert _status(api, supplier.headers) == 401
    assert _status(api, {"Authorization": f"Bearer {rotated.json()['api_key']}"}) == 200


def test_a_key_revoked_by_another_process_stops_working_within_the_cache_time(api: Api) -> None:
    supplier = api.onboard("Supplier revoked elsewhere", "supplier")
    assert _status(api, supplier.headers) == 200
    _revoke_elsewhere(api, supplier.headers)
    time.sleep(CACHE_SECONDS + 0.2)
    assert _status(api, supplier.headers) == 401


def test_a_lookup_that_overlaps_an_uncommitted_write_is_not_remembered(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'cache.sqlite3'}")
    Base.metadata.create_all(engine, tables=[ParticipantRecord.__table__])  # type: ignore[list-item]
    sessions = make_sessionmaker(engine)
    address = "0x" + "11" * 20
    with sessions.begin() as session:
        session.add(ParticipantRecord(address=address, name="Before", credit_code="X" * 18, roles=["supplier"]))
    cache = ParticipantCache(engine, seconds=60)
    reads: list[str] = []

    def read() -> ParticipantRecord | None:
        with sessions() as session:
            record = session.get(ParticipantRecord, address)
        reads.append(record.name if record else "-")
        return record

    with sessions() as writer, writer.begin():
        writer.execute(update(ParticipantRecord).values(name="After"))
        # the write is not committed: what a lookup reads now is the old row, and must not be remembered
        assert cache.get("address", address, read) is not None
    known = cache.get("address", address, read)
    assert known is not None and known.name == "After"
    assert cache.get("address", address, read) == known
    assert reads == ["Before", "After"]  # the last one was remembered
    engine.dispose()


def _wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_on_postgresql_a_key_revoked_by_another_process_is_refused_as_soon_as_the_change_is_heard(api: Api) -> None:
    if api.settings.resolved_database_url.startswith("sqlite"):
        pytest.skip("change notifications are PostgreSQL's (SQLite serves one process: SCF_AUTH_CACHE_SECONDS)")
    cache = api.service.participants
    assert cache is not None and cache.listener is not None
    assert _wait_for(lambda: cache.listener is not None and cache.listener.listening, 10)
    assert cache.trusted_seconds == LISTENING_SECONDS  # heard changes: entries are trusted longer
    supplier = api.onboard("Supplier revoked and heard", "supplier")
    assert _status(api, supplier.headers) == 200  # read now (the onboarding's writes emptied the cache) ...
    assert _status(api, supplier.headers) == 200  # ... and remembered
    _revoke_elsewhere(api, supplier.headers)
    # Without the notification the entry would be trusted for 10 s (1 s without the listener): refused well
    # within half a second of the other process's commit.
    assert _wait_for(lambda: _status(api, supplier.headers) == 401, 0.5)


def _revoke_elsewhere(api: Api, headers: dict[str, str]) -> None:
    key = headers["Authorization"].removeprefix("Bearer ")
    other_process = make_engine(api.settings.resolved_database_url)
    try:
        with other_process.begin() as connection:
            connection.execute(
                update(ApiKeyRecord)
                .where(ApiKeyRecord.key_hash == hash_api_key(key))
                .values(revoked_at=datetime.now(UTC))
            )
    finally:
        other_process.dispose()


@pytest.fixture(scope="module")
def two_schemas() -> Iterator[tuple[str, str]]:
    with postgres_schema("scf_auth_a") as a, postgres_schema("scf_auth_b") as b:
        for url in (a, b):
            upgrade(url)
        yield a, b


def _touch_keys(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(update(ApiKeyRecord).values(revoked_at=None).where(ApiKeyRecord.key_hash == "none"))
    finally:
        engine.dispose()


def test_a_listener_hears_changes_to_its_own_schema_only(two_schemas: tuple[str, str]) -> None:
    ours, theirs = two_schemas
    engine = make_engine(ours)
    cache = ParticipantCache(engine, seconds=CACHE_SECONDS)
    cache.listen(engine)
    try:
        listener = cache.listener
        assert listener is not None and _wait_for(lambda: listener.listening, 10)
        _touch_keys(theirs)
        time.sleep(0.3)
        assert listener.heard == 0
        _touch_keys(ours)  # an UPDATE of no row still notifies: the trigger is per statement
        assert _wait_for(lambda: listener.heard == 1, 2)
    finally:
        cache.close()
        engine.dispose()


def test_a_listener_whose_connection_fails_falls_back_to_the_cache_time_and_forgets_then_listens_again(
    two_schemas: tuple[str, str],
) -> None:
    ours, _ = two_schemas
    engine = make_engine(ours)
    cache = ParticipantCache(engine, seconds=CACHE_SECONDS)
    cache.listen(engine)
    address = "0x" + "22" * 20
    known = KnownParticipant(address, "Remembered", frozenset({"supplier"}), "hosted")
    try:
        listener = cache.listener
        assert listener is not None and _wait_for(lambda: listener.listening, 10)
        first = listener.backend_pid
        cache._entries[("address", address)] = (time.monotonic() + LISTENING_SECONDS, known)
        with engine.connect() as connection:  # the server ends the listening session
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        assert _wait_for(lambda: not listener.listening, 5)
        assert cache.trusted_seconds == CACHE_SECONDS
        with pytest.raises(NotRemembered):  # what it remembered may have missed a change while deaf
            cache.get("address", address, None)
        assert _wait_for(lambda: listener.listening, 10)
        assert listener.backend_pid not in (None, first)
        assert cache.trusted_seconds == LISTENING_SECONDS
    finally:
        cache.close()
        engine.dispose()
