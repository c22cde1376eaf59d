"""Authentication remembers who is calling (api/auth_cache.py), and a change still counts on the next request.

The rule: a key revoked (or any write to ``api_keys`` / ``api_participants``) through the service's own database
engine takes effect on the very next request; a write by another process (here: another engine on the same
database, as ``scf api-key reissue`` or a second service process would make) within ``SCF_AUTH_CACHE_SECONDS``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import update

from api.auth_cache import ParticipantCache
from api.service import hash_api_key
from api.store import ApiKeyRecord, ParticipantRecord
from ledger.db import Base, make_engine, make_sessionmaker
from tests.api.conftest import Api

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
    key = supplier.headers["Authorization"].removeprefix("Bearer ")
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
