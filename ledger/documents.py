"""Documents (invoices, warehouse certificates, contracts), encrypted at rest: the table, the cipher, storing,
loading and re-encrypting. The HTTP routes are :mod:`api.documents`.

A document is named by the SHA-256 of its content (what goes on chain as ``document_hash``) and stored in
``documents`` as AES-256-GCM ciphertext only: a fresh 96-bit random nonce per encryption, the SHA-256 hex
as associated data (a ciphertext moved under another document's name does not decrypt), and a key derived
from the master secret (:meth:`ledger.secrets.MasterSecret.document_key`) for the document's key version.
Each row records the key version and the id of the master secret (``secret_id``) it was encrypted with; a row
from before that column (``secret_id`` empty) is tried with each configured master secret in turn.

New documents are encrypted with the current master secret and the highest key version in use (1 when there
is none). :func:`rotate_document_keys` re-encrypts every document that is not under the current master secret
and a given key version, batch by batch: after a new key version, or after the master secret changed
(``scf secrets rotate``), no document is left under the old key.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import JSON, DateTime, Integer, LargeBinary, String, Text, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from ledger.db import Base, utc_now
from ledger.secrets import MasterSecret, MasterSecrets, SecretValue

NONCE_BYTES = 12
TAG_BYTES = 16
_SHA256 = re.compile(r"^(?:0x)?([0-9a-fA-F]{64})$")
DEFAULT_CONTENT_TYPE = "application/octet-stream"


class DocumentRecord(Base):
    """One encrypted document (``0003_service`` creates the table, ``0008_document_secret_id`` adds
    ``secret_id``)."""

    __tablename__ = "documents"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    uploaded_by: Mapped[str] = mapped_column(String(42))
    content_type: Mapped[str] = mapped_column(String(200))
    key_version: Mapped[int] = mapped_column(Integer)
    secret_id: Mapped[str | None] = mapped_column(String(16))
    """The id of the master secret it is encrypted with (None: written before the column existed)."""
    nonce: Mapped[bytes] = mapped_column(LargeBinary)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    parties: Mapped[list[str]] = mapped_column(JSON)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class DocumentIntegrityError(Exception):
    """A stored document does not authenticate: its ciphertext, tag, nonce or name was altered, or the
    master secret (or key version) is not the one that encrypted it."""

    def __init__(self, sha256: str, reason: str) -> None:
        super().__init__(f"document {sha256} does not authenticate: {reason}")
        self.sha256 = sha256


# -- the cipher ------------------------------------------------------------------------------------------------


def sha256_hex(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def encrypt(key: bytes, sha256: str, plaintext: bytes) -> tuple[bytes, bytes]:
    """``(nonce, ciphertext || tag)`` of ``plaintext`` under ``key``, bound to its name ``sha256``."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce, AESGCM(key).encrypt(nonce, plaintext, sha256.encode("ascii"))


def decrypt(key: bytes, sha256: str, nonce: bytes, ciphertext: bytes) -> bytes:
    """The plaintext, or :class:`DocumentIntegrityError` if anything was altered (or the key is wrong)."""
    if len(nonce) != NONCE_BYTES:
        raise DocumentIntegrityError(sha256, "the nonce is not 96 bits")
    try:
        plaintext = AESGCM(key).decrypt(nonce, ciphertext, sha256.encode("ascii"))
    except InvalidTag:
        raise DocumentIntegrityError(sha256, "the authentication tag does not verify") from None
    if sha256_hex(plaintext) != sha256:  # cannot happen unless the key itself was used to forge
        raise DocumentIntegrityError(sha256, "the content does not match its SHA-256")
    return plaintext


def decrypt_record(secrets: MasterSecrets, record: DocumentRecord) -> bytes:
    """The plaintext of ``record``, with the master secret it names (or, naming none, the first that opens it)."""
    if record.secret_id is not None:
        secret = secrets.get(record.secret_id)
        if secret is None:
            raise DocumentIntegrityError(
                record.sha256,
                f"it is encrypted with master secret {record.secret_id}, which is neither SCF_MASTER_SECRET nor "
                "one of SCF_PREVIOUS_MASTER_SECRETS",
            )
        candidates: tuple[MasterSecret, ...] = (secret,)
    else:
        candidates = secrets.all
    failure = DocumentIntegrityError(record.sha256, "no master secret configured")
    for candidate in candidates:
        try:
            return decrypt(candidate.document_key(record.key_version), record.sha256, record.nonce, record.ciphertext)
        except DocumentIntegrityError as exc:
            failure = exc
    raise failure


# -- storage ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredDocument:
    sha256: str
    size: int
    created: bool


def normalize_sha256(value: str) -> str | None:
    """Lower-case hex without ``0x``, or None if ``value`` is not a SHA-256."""
    match = _SHA256.match(value.strip())
    return match.group(1).lower() if match else None


def current_key_version(session: Session) -> int:
    """The key version new documents are encrypted with: the highest in use, 1 when there is none."""
    return int(session.scalar(select(func.max(DocumentRecord.key_version))) or 1)


def _plaintext_size(record: DocumentRecord) -> int:
    return len(record.ciphertext) - TAG_BYTES


def store_document(
    sessions: sessionmaker[Session],
    secrets: MasterSecrets | SecretValue,
    uploader: str,
    content: bytes,
    content_type: str = DEFAULT_CONTENT_TYPE,
    parties: Iterable[str] = (),
    note: str | None = None,
) -> StoredDocument:
    """Encrypt and store ``content`` (once: the same content again adds readers and stores nothing)."""
    current = MasterSecrets.of(secrets).current
    digest = sha256_hex(content)
    readers = set(parties) - {uploader}
    try:
        with sessions() as session, session.begin():
            existing = session.get(DocumentRecord, digest, with_for_update=True)
            if existing is not None:
                _add_readers(existing, uploader, readers)
                return StoredDocument(digest, _plaintext_size(existing), False)
            version = current_key_version(session)
            nonce, ciphertext = encrypt(current.document_key(version), digest, content)
            session.add(
                DocumentRecord(
                    sha256=digest,
                    uploaded_by=uploader,
                    content_type=content_type,
                    key_version=version,
                    secret_id=current.id,
                    nonce=nonce,
                    ciphertext=ciphertext,
                    parties=sorted(readers),
                    note=note,
                )
            )
        return StoredDocument(digest, len(content), True)
    except IntegrityError:  # the same content stored concurrently: it is there now
        with sessions() as session, session.begin():
            existing = session.get(DocumentRecord, digest, with_for_update=True)
            assert existing is not None
            _add_readers(existing, uploader, readers)
            return StoredDocument(digest, _plaintext_size(existing), False)


def _add_readers(record: DocumentRecord, uploader: str, readers: set[str]) -> None:
    """Whoever uploads content already stored holds it, and may read it (and let its parties read it)."""
    more = (readers | {uploader}) - {record.uploaded_by}
    if not more <= set(record.parties):
        record.parties = sorted(set(record.parties) | more)


def load_document(
    sessions: sessionmaker[Session], secrets: MasterSecrets | SecretValue, sha256: str
) -> tuple[DocumentRecord, bytes] | None:
    """The record and its decrypted content, None if there is no such document."""
    with sessions() as session:
        record = session.get(DocumentRecord, sha256)
        if record is None:
            return None
        session.expunge(record)
    return record, decrypt_record(MasterSecrets.of(secrets), record)


# -- re-encryption ---------------------------------------------------------------------------------------------


def _not_under(secret: MasterSecret, version: int) -> ColumnElement[bool]:
    return or_(
        DocumentRecord.secret_id.is_(None),
        DocumentRecord.secret_id != secret.id,
        DocumentRecord.key_version != version,
    )


def documents_not_under(
    sessions: sessionmaker[Session], secrets: MasterSecrets | SecretValue, version: int | None = None
) -> int:
    """How many documents are not encrypted with the current master secret and key ``version`` (the current
    key version when None)."""
    current = MasterSecrets.of(secrets).current
    with sessions() as session:
        version = current_key_version(session) if version is None else version
        return int(
            session.scalar(select(func.count()).select_from(DocumentRecord).where(_not_under(current, version))) or 0
        )


def rotate_document_keys(
    sessions: sessionmaker[Session],
    secrets: MasterSecrets | SecretValue,
    new_version: int | None = None,
    *,
    batch: int = 20,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Re-encrypt (fresh nonce each) every document not yet under the current master secret and key version
    ``new_version`` (None: the current key version, which is what a change of master secret needs); return how
    many were re-encrypted. Documents are read with the secret they name, current or previous. Each batch
    commits on its own, so an interrupted rotation resumes where it stopped, and ``progress`` is told how many
    a batch re-encrypted; a document that does not authenticate stops it (:class:`DocumentIntegrityError`)."""
    ring = MasterSecrets.of(secrets)
    if new_version is None:
        with sessions() as session:
            new_version = current_key_version(session)
    new_key = ring.current.document_key(new_version)
    rotated = 0
    while True:
        with sessions() as session, session.begin():
            records = session.scalars(
                select(DocumentRecord)
                .where(_not_under(ring.current, new_version))
                .order_by(DocumentRecord.sha256)
                .limit(batch)
                .with_for_update()
            ).all()
            if not records:
                return rotated
            for record in records:
                plaintext = decrypt_record(ring, record)
                record.nonce, record.ciphertext = encrypt(new_key, record.sha256, plaintext)
                record.key_version = new_version
                record.secret_id = ring.current.id
        rotated += len(records)
        if progress is not None:
            progress(len(records))
