"""Encryption at rest, over HTTP against a real anvil: a stored document whose ciphertext, tag or nonce was
altered in the database is refused with a clean problem every time (never a 500, never the content); key
rotation re-encrypts every document and retires the old key; and no plaintext document, master secret,
private key or API key is anywhere on disk (the data folder, the SQLite files) or in any database row."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from api.store import ParticipantRecord
from ledger.db import Base
from ledger.documents import DocumentIntegrityError, DocumentRecord, decrypt, rotate_document_keys
from tests.api.conftest import Api, Participant

MARKER = b"QX-PLAINTEXT-MARKER-91c4"


@pytest.fixture(scope="module")
def owner(api: Api) -> Participant:
    return api.onboard("Crypto Seat Maker", "supplier")


def upload(api: Api, who: Participant, content: bytes) -> str:
    response = api.http.post("/documents", content=content, headers={**who.headers, "Content-Type": "text/plain"})
    assert response.status_code in (200, 201), response.text
    return str(response.json()["sha256"])


def download(api: Api, who: Participant, sha256: str) -> Any:
    return api.http.get(f"/documents/{sha256}", headers=who.headers)


def stored(api: Api, sha256: str) -> DocumentRecord:
    with api.service.sessions() as session:
        record = session.get(DocumentRecord, sha256)
        assert record is not None
        session.expunge(record)
        return record


def overwrite(api: Api, sha256: str, **fields: bytes) -> None:
    with api.service.sessions() as session, session.begin():
        record = session.get(DocumentRecord, sha256)
        assert record is not None
        for name, value in fields.items():
            setattr(record, name, value)


def flipped(data: bytes, position: int) -> bytes:
    damaged = bytearray(data)
    damaged[position] ^= 0x01
    return bytes(damaged)


def refused_as_altered(api: Api, who: Participant, sha256: str, content: bytes) -> None:
    response = download(api, who, sha256)
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == "urn:scf:problem:document-integrity"
    assert content not in response.content


def test_every_altered_byte_of_nonce_ciphertext_or_tag_is_refused(api: Api, owner: Participant) -> None:
    content = b"invoice scan: seat frames, 2,000 pieces " + MARKER
    sha256 = upload(api, owner, content)
    original = stored(api, sha256)
    assert len(original.ciphertext) == len(content) + 16  # ciphertext, then the 128-bit tag
    refusals = 0
    for position in range(len(original.nonce)):
        overwrite(api, sha256, nonce=flipped(original.nonce, position))
        refused_as_altered(api, owner, sha256, content)
        refusals += 1
    overwrite(api, sha256, nonce=original.nonce)
    for position in range(len(original.ciphertext)):  # every ciphertext byte, then every tag byte
        overwrite(api, sha256, ciphertext=flipped(original.ciphertext, position))
        refused_as_altered(api, owner, sha256, content)
        refusals += 1
    for damaged in (original.ciphertext[:-1], original.ciphertext[:-16], original.ciphertext + b"\x00", b""):
        overwrite(api, sha256, ciphertext=damaged)
        refused_as_altered(api, owner, sha256, content)
        refusals += 1
    overwrite(api, sha256, ciphertext=original.ciphertext, nonce=original.nonce[:-1])
    refused_as_altered(api, owner, sha256, content)
    overwrite(api, sha256, nonce=original.nonce)
    assert refusals == 12 + len(content) + 16 + 4
    assert download(api, owner, sha256).content == content  # restored: it reads again


def test_a_ciphertext_moved_under_another_documents_name_is_refused(api: Api, owner: Participant) -> None:
    first, second = b"warehouse certificate lot 1 " + MARKER, b"warehouse certificate lot 2 " + MARKER
    one, two = upload(api, owner, first), upload(api, owner, second)
    moved = stored(api, one)
    kept = stored(api, two)
    overwrite(api, two, nonce=moved.nonce, ciphertext=moved.ciphertext)
    refused_as_altered(api, owner, two, first)
    overwrite(api, two, nonce=kept.nonce, ciphertext=kept.ciphertext)
    assert download(api, owner, two).content == second


def test_rotation_re_encrypts_every_document_and_the_old_key_decrypts_none(api: Api, owner: Participant) -> None:
    service = api.service
    secret = api.settings.master_secret
    contents = {
        upload(api, owner, b"supply contract %d " % i + MARKER): b"supply contract %d " % i + MARKER for i in range(3)
    }
    with service.sessions() as session:
        everything = {r.sha256: r.key_version for r in session.scalars(select(DocumentRecord))}
    old = max(everything.values())
    new = old + 1

    assert rotate_document_keys(service.sessions, secret, new, batch=2) == len(everything)
    assert rotate_document_keys(service.sessions, secret, new) == 0
    old_keys = {v: service.secrets.current.document_key(v) for v in set(everything.values())}
    new_key = service.secrets.current.document_key(new)
    for sha256, version in everything.items():
        record = stored(api, sha256)
        assert record.key_version == new
        plaintext = decrypt(new_key, sha256, record.nonce, record.ciphertext)
        assert hashlib.sha256(plaintext).hexdigest() == sha256
        with pytest.raises(DocumentIntegrityError):
            decrypt(old_keys[version], sha256, record.nonce, record.ciphertext)
    for sha256, content in contents.items():
        assert download(api, owner, sha256).content == content
    later = upload(api, owner, b"uploaded after the rotation " + MARKER)
    assert stored(api, later).key_version == new


def _secrets(api: Api, participants: list[Participant]) -> dict[str, list[bytes]]:
    service = api.service
    with service.sessions() as session:
        custodial = [r.address for r in session.scalars(select(ParticipantRecord))]
    keys = [service.keystore.account(a).key for a in custodial if a != service.operator.address]
    assert len(keys) >= len(participants)
    api_keys = [p.headers["Authorization"].removeprefix("Bearer ") for p in participants]
    api_keys.append(api.operator_headers["Authorization"].removeprefix("Bearer "))
    return {
        "document plaintext": [MARKER],
        "master secret": [api.settings.master_secret.get_secret_value().encode()],
        "participant private key": [
            form for key in keys for form in (bytes(key), key.hex().encode(), key.hex().upper().encode())
        ],
        "API key": [k.encode() for k in api_keys],
        "invoice key salt": [api.settings.key_salt.get_secret_value().encode()],
    }


def _files(folder: Path) -> Iterator[Path]:
    yield from (p for p in folder.rglob("*") if p.is_file())


def test_no_plaintext_document_secret_or_key_is_on_disk_or_in_the_database(api: Api, owner: Participant) -> None:
    service = api.service
    others = [api.onboard(f"Crypto Participant {i}", "supplier") for i in range(2)]
    upload(api, owner, b"a fresh scan " + MARKER)
    secrets = _secrets(api, [owner, *others])
    operator_key = bytes(service.operator.key)

    files = list(_files(api.settings.data_dir))
    database = make_url(api.settings.resolved_database_url)
    if database.get_backend_name() == "sqlite":
        assert database.database is not None
        service.sessions.kw["bind"].dispose()  # checkpoint the WAL into the file
        files += list(_files(Path(database.database).parent))
    node = api.anvil.data_dir
    assert any(f.suffix == ".json" for f in files if "keystore" in f.parts)
    for file in files:
        try:
            data = file.read_bytes()
        except FileNotFoundError:  # anvil's state keeper writes a temporary file, then renames it over its state
            assert node in file.parents, file
            continue
        for what, forms in secrets.items():
            assert not any(form in data for form in forms), f"{what} in {file}"
        if node not in file.parents:  # anvil logs its public dev keys, the local operator's among them
            assert operator_key not in data and operator_key.hex().encode() not in data, f"operator key in {file}"

    with service.sessions() as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(table.select()):
                text = repr(tuple(row)).encode()
                for what, forms in secrets.items():
                    assert not any(form in text for form in forms), f"{what} in table {table.name}"
