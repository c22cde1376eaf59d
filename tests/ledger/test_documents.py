"""Documents at rest (no chain needed): AES-GCM under a key derived from the master secret, bound to the
document's SHA-256; altered ciphertext or tag refused; key rotation re-encrypts and retires the old key; a
change of master secret: documents read with the previous secret they name, re-encrypted under the new one
until none is left under the old; no plaintext in the database file."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from ledger.db import make_engine, make_sessionmaker
from ledger.documents import (
    DocumentIntegrityError,
    DocumentRecord,
    current_key_version,
    decrypt,
    documents_not_under,
    load_document,
    rotate_document_keys,
    store_document,
)
from ledger.migrations import upgrade
from ledger.secrets import MasterSecret, MasterSecrets

SECRET = "documents test master secret"
UPLOADER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
PARTY = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
CONTENT = b"%PDF-1.7 VAT invoice 25117000000000123456 seat frames ZZ-PLAINTEXT-MARKER-7f3a " * 40


@pytest.fixture
def database(tmp_path: Path) -> Iterator[tuple[sessionmaker[Session], Path]]:
    path = tmp_path / "documents.sqlite3"
    url = f"sqlite:///{path}"
    upgrade(url)
    engine = make_engine(url)
    try:
        yield make_sessionmaker(engine), path
    finally:
        engine.dispose()


def _record(sessions: sessionmaker[Session], sha256: str) -> DocumentRecord:
    with sessions() as session:
        record = session.get(DocumentRecord, sha256)
        assert record is not None
        session.expunge(record)
        return record


def _alter(sessions: sessionmaker[Session], sha256: str, position: int) -> None:
    with sessions() as session, session.begin():
        record = session.get(DocumentRecord, sha256)
        assert record is not None
        damaged = bytearray(record.ciphertext)
        damaged[position] ^= 0x01
        record.ciphertext = bytes(damaged)


def test_round_trip_and_the_same_content_is_stored_once(database: tuple[sessionmaker[Session], Path]) -> None:
    sessions, _ = database
    first = store_document(sessions, SECRET, UPLOADER, CONTENT, "application/pdf", [PARTY])
    assert first.created and first.size == len(CONTENT)
    assert first.sha256 == hashlib.sha256(CONTENT).hexdigest()
    again = store_document(sessions, SECRET, PARTY, CONTENT, "application/pdf")
    assert (again.sha256, again.size, again.created) == (first.sha256, first.size, False)
    with sessions() as session:
        assert session.query(DocumentRecord).count() == 1
    record = _record(sessions, first.sha256)
    assert record.key_version == 1 and len(record.nonce) == 12
    assert record.uploaded_by == UPLOADER and record.parties == [PARTY]
    loaded = load_document(sessions, SECRET, first.sha256)
    assert loaded is not None and loaded[1] == CONTENT
    assert load_document(sessions, SECRET, "00" * 32) is None
    with pytest.raises(DocumentIntegrityError):  # another master secret
        load_document(sessions, "another master secret", first.sha256)


def test_tampered_ciphertext_is_refused(database: tuple[sessionmaker[Session], Path]) -> None:
    sessions, _ = database
    stored = store_document(sessions, SECRET, UPLOADER, CONTENT)
    _alter(sessions, stored.sha256, 10)
    with pytest.raises(DocumentIntegrityError, match="does not authenticate"):
        load_document(sessions, SECRET, stored.sha256)


def test_tampered_tag_is_refused(database: tuple[sessionmaker[Session], Path]) -> None:
    sessions, _ = database
    stored = store_document(sessions, SECRET, UPLOADER, CONTENT)
    _alter(sessions, stored.sha256, -1)  # the last byte of the 16-byte tag
    with pytest.raises(DocumentIntegrityError):
        load_document(sessions, SECRET, stored.sha256)


def test_ciphertext_is_bound_to_its_name(database: tuple[sessionmaker[Session], Path]) -> None:
    sessions, _ = database
    stored = store_document(sessions, SECRET, UPLOADER, CONTENT)
    record = _record(sessions, stored.sha256)
    key = MasterSecret.of(SECRET).document_key(1)
    assert decrypt(key, stored.sha256, record.nonce, record.ciphertext) == CONTENT
    with pytest.raises(DocumentIntegrityError):  # the same bytes presented as another document
        decrypt(key, "ab" * 32, record.nonce, record.ciphertext)


def test_rotation_re_encrypts_and_the_old_key_no_longer_decrypts(
    database: tuple[sessionmaker[Session], Path],
) -> None:
    sessions, _ = database
    contents = [CONTENT, b"warehouse certificate lot 7", b"supply contract"]
    names = [store_document(sessions, SECRET, UPLOADER, c).sha256 for c in contents]
    before = {name: _record(sessions, name) for name in names}
    old_key = MasterSecret.of(SECRET).document_key(1)

    assert rotate_document_keys(sessions, SECRET, 2, batch=2) == 3
    assert rotate_document_keys(sessions, SECRET, 2) == 0  # nothing left under another version

    new_key = MasterSecret.of(SECRET).document_key(2)
    assert new_key != old_key
    for name, content in zip(names, contents, strict=True):
        after = _record(sessions, name)
        assert after.key_version == 2
        assert after.ciphertext != before[name].ciphertext and after.nonce != before[name].nonce
        assert decrypt(new_key, name, after.nonce, after.ciphertext) == content
        with pytest.raises(DocumentIntegrityError):
            decrypt(old_key, name, after.nonce, after.ciphertext)
        loaded = load_document(sessions, SECRET, name)
        assert loaded is not None and loaded[1] == content
    with sessions() as session:
        assert current_key_version(session) == 2
    newer = store_document(sessions, SECRET, UPLOADER, b"uploaded after the rotation")
    assert _record(sessions, newer.sha256).key_version == 2


def test_no_plaintext_reaches_the_database_file(database: tuple[sessionmaker[Session], Path]) -> None:
    sessions, path = database
    store_document(sessions, SECRET, UPLOADER, CONTENT, "application/pdf", note="invoice scan")
    rotate_document_keys(sessions, SECRET, 2)
    sessions.kw["bind"].dispose()  # checkpoint the WAL into the file
    files = [p for p in path.parent.iterdir() if p.is_file()]
    assert path in files
    marker = b"ZZ-PLAINTEXT-MARKER-7f3a"
    for file in files:
        data = file.read_bytes()
        assert marker not in data, file
        assert CONTENT[:64] not in data, file


NEW_SECRET = "documents test master secret, the next one"


def test_after_a_change_of_master_secret_documents_are_read_with_the_previous_one_they_name(
    database: tuple[sessionmaker[Session], Path],
) -> None:
    sessions, _ = database
    old = MasterSecret.of(SECRET)
    stored = store_document(sessions, SECRET, UPLOADER, CONTENT)
    assert _record(sessions, stored.sha256).secret_id == old.id
    rotated = MasterSecrets.of(NEW_SECRET, [SECRET])
    loaded = load_document(sessions, rotated, stored.sha256)
    assert loaded is not None and loaded[1] == CONTENT
    newer = store_document(sessions, rotated, UPLOADER, b"uploaded after the change")
    assert _record(sessions, newer.sha256).secret_id == rotated.current.id != old.id
    with pytest.raises(DocumentIntegrityError, match=f"master secret {old.id}, which is neither"):
        load_document(sessions, NEW_SECRET, stored.sha256)  # the old secret no longer configured


def test_reencryption_under_the_new_master_secret_leaves_nothing_under_the_old_one(
    database: tuple[sessionmaker[Session], Path],
) -> None:
    sessions, _ = database
    contents = [CONTENT, b"warehouse certificate lot 8", b"supply contract 2", b"pledge agreement"]
    names = [store_document(sessions, SECRET, UPLOADER, c).sha256 for c in contents]
    rotated = MasterSecrets.of(NEW_SECRET, [SECRET])
    assert documents_not_under(sessions, rotated) == len(names)
    batches: list[int] = []

    assert rotate_document_keys(sessions, rotated, batch=3, progress=batches.append) == len(names)
    assert batches == [3, 1]
    assert documents_not_under(sessions, rotated) == 0
    assert rotate_document_keys(sessions, rotated) == 0
    old_key = MasterSecret.of(SECRET).document_key(1)
    for name, content in zip(names, contents, strict=True):
        record = _record(sessions, name)
        assert (record.secret_id, record.key_version) == (rotated.current.id, 1)
        with pytest.raises(DocumentIntegrityError):
            decrypt(old_key, name, record.nonce, record.ciphertext)
        loaded = load_document(sessions, NEW_SECRET, name)  # the new secret alone reads everything
        assert loaded is not None and loaded[1] == content


def test_a_document_from_before_secret_ids_is_read_by_trying_each_secret_and_stamped_by_the_rotation(
    database: tuple[sessionmaker[Session], Path],
) -> None:
    sessions, _ = database
    stored = store_document(sessions, SECRET, UPLOADER, CONTENT)
    with sessions() as session, session.begin():
        record = session.get(DocumentRecord, stored.sha256)
        assert record is not None
        record.secret_id = None  # as written before the column existed
    rotated = MasterSecrets.of(NEW_SECRET, [SECRET])
    loaded = load_document(sessions, rotated, stored.sha256)
    assert loaded is not None and loaded[1] == CONTENT
    assert documents_not_under(sessions, MasterSecrets.of(SECRET)) == 1  # unstamped: not known to be current
    assert rotate_document_keys(sessions, rotated) == 1
    assert _record(sessions, stored.sha256).secret_id == rotated.current.id
