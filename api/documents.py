"""Documents (invoices, warehouse certificates, contracts), encrypted at rest, and their routes.

A document is named by the SHA-256 of its content (what goes on chain as ``document_hash``) and stored in
``documents`` as AES-256-GCM ciphertext only: a fresh 96-bit random nonce per encryption, the SHA-256 hex
as associated data (a ciphertext moved under another document's name does not decrypt), and a key derived
from the service's master secret with HKDF-SHA256 (``info = b"scf-ledger documents v<version>"``). The key
version is stored with each document; :func:`rotate_document_keys` re-encrypts every document under a new
version, after which the old version's key decrypts none of them. New uploads use the highest version in
use (1 when there is no document yet).

The plaintext never touches the disk: a raw upload is read into memory, and multipart uploads are parsed
with a spool large enough that Starlette's temporary file never rolls over to disk (uploads are capped at
:data:`MAX_DOCUMENT_BYTES`).

Routes (included by :mod:`api.routes.regulator`'s router):

- ``POST /documents``: any participant but a regulator, which reads documents and stores none (403). Either
  ``multipart/form-data`` (a ``file`` part; optional ``parties`` fields, repeated or comma-separated, and
  ``note``), or the raw bytes with their own ``Content-Type`` (``parties`` and ``note`` then as query
  parameters). ``parties`` are the addresses that may read the document besides the uploader, the regulator
  and the operator. Answers ``{sha256, size}``: 201 when stored, 200 when the same content was already stored
  (no duplicate; the new uploader and its parties are added to the readers).
- ``GET /documents/{sha256}``: the plaintext, to the uploader, the listed parties, the operator and the
  regulator; 404 to everyone else (as for a document that does not exist). Every read is logged. A
  ciphertext or tag that does not authenticate is answered ``409`` ``urn:scf:problem:document-integrity``
  (the stored document conflicts with its name; nothing is returned).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_utils import is_address, to_checksum_address
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from api.auth import Caller, CurrentCaller, Service
from api.problems import Problem
from api.store import DocumentRecord
from ledger.models import Role

logger = logging.getLogger("api.documents")

MAX_DOCUMENT_BYTES = 20 * 1024 * 1024
"""The largest document accepted (20 MiB)."""
_BODY_LIMIT = MAX_DOCUMENT_BYTES + 64 * 1024
"""The largest request body: a document and its multipart framing and fields."""
MAX_PARTIES = 50
NONCE_BYTES = 12
KEY_INFO_PREFIX = b"scf-ledger documents v"
_SHA256 = re.compile(r"^(?:0x)?([0-9a-fA-F]{64})$")
_DEFAULT_CONTENT_TYPE = "application/octet-stream"


class DocumentIntegrityError(Exception):
    """A stored document does not authenticate: its ciphertext, tag, nonce or name was altered, or the
    master secret (or key version) is not the one that encrypted it."""

    def __init__(self, sha256: str, reason: str) -> None:
        super().__init__(f"document {sha256} does not authenticate: {reason}")
        self.sha256 = sha256


# -- keys and the cipher ------------------------------------------------------------------------------------


def _secret_bytes(master_secret: SecretStr | str | bytes) -> bytes:
    if isinstance(master_secret, SecretStr):
        master_secret = master_secret.get_secret_value()
    if isinstance(master_secret, str):
        master_secret = master_secret.encode("utf-8")
    if not master_secret:
        raise ValueError("the master secret must not be empty")
    return master_secret


def document_key(master_secret: SecretStr | str | bytes, version: int) -> bytes:
    """The 256-bit AES key of key version ``version``: HKDF-SHA256 of the master secret."""
    if version < 1:
        raise ValueError(f"key versions start at 1, not {version}")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=KEY_INFO_PREFIX + str(version).encode())
    return hkdf.derive(_secret_bytes(master_secret))


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


# -- storage ------------------------------------------------------------------------------------------------


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
    return len(record.ciphertext) - 16  # AES-GCM appends a 128-bit tag


def store_document(
    sessions: sessionmaker[Session],
    master_secret: SecretStr | str | bytes,
    uploader: str,
    content: bytes,
    content_type: str = _DEFAULT_CONTENT_TYPE,
    parties: Iterable[str] = (),
    note: str | None = None,
) -> StoredDocument:
    """Encrypt and store ``content`` (once: the same content again adds readers and stores nothing)."""
    digest = sha256_hex(content)
    readers = set(parties) - {uploader}
    try:
        with sessions() as session, session.begin():
            existing = session.get(DocumentRecord, digest, with_for_update=True)
            if existing is not None:
                _add_readers(existing, uploader, readers)
                return StoredDocument(digest, _plaintext_size(existing), False)
            version = current_key_version(session)
            nonce, ciphertext = encrypt(document_key(master_secret, version), digest, content)
            session.add(
                DocumentRecord(
                    sha256=digest,
                    uploaded_by=uploader,
                    content_type=content_type,
                    key_version=version,
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
    sessions: sessionmaker[Session], master_secret: SecretStr | str | bytes, sha256: str
) -> tuple[DocumentRecord, bytes] | None:
    """The record and its decrypted content, None if there is no such document."""
    with sessions() as session:
        record = session.get(DocumentRecord, sha256)
        if record is None:
            return None
        session.expunge(record)
    plaintext = decrypt(document_key(master_secret, record.key_version), record.sha256, record.nonce, record.ciphertext)
    return record, plaintext


def may_read(record: DocumentRecord, caller: Caller) -> bool:
    return (
        caller.is_operator
        or caller.is_regulator
        or caller.address == record.uploaded_by
        or caller.address in record.parties
    )


def rotate_document_keys(
    sessions: sessionmaker[Session], master_secret: SecretStr | str | bytes, new_version: int, *, batch: int = 100
) -> int:
    """Re-encrypt every document not yet under key version ``new_version`` (fresh nonce each); return how
    many were re-encrypted. Each batch commits on its own, so an interrupted rotation resumes where it
    stopped; a document that does not authenticate stops it (:class:`DocumentIntegrityError`)."""
    new_key = document_key(master_secret, new_version)
    old_keys: dict[int, bytes] = {}
    rotated = 0
    while True:
        with sessions() as session, session.begin():
            records = session.scalars(
                select(DocumentRecord)
                .where(DocumentRecord.key_version != new_version)
                .order_by(DocumentRecord.sha256)
                .limit(batch)
                .with_for_update()
            ).all()
            if not records:
                return rotated
            for record in records:
                if record.key_version not in old_keys:
                    old_keys[record.key_version] = document_key(master_secret, record.key_version)
                plaintext = decrypt(old_keys[record.key_version], record.sha256, record.nonce, record.ciphertext)
                record.nonce, record.ciphertext = encrypt(new_key, record.sha256, plaintext)
                record.key_version = new_version
                rotated += 1


# -- reading an upload --------------------------------------------------------------------------------------


class _InMemoryMultiPartParser(MultiPartParser):
    """Starlette's parser with a spool larger than any accepted upload: file parts stay in memory."""

    spool_max_size = _BODY_LIMIT + 1


def _too_large() -> Problem:
    return Problem(413, "too-large", "Request too large", f"documents are limited to {MAX_DOCUMENT_BYTES} bytes")


async def _capped(request: Request) -> AsyncGenerator[bytes, None]:
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > _BODY_LIMIT:
            raise _too_large()
        yield chunk


def _parties(values: Iterable[str]) -> list[str]:
    found: set[str] = set()
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            if not is_address(part):
                raise Problem(422, "validation", "Invalid request", f"party {part!r} is not an Ethereum address")
            found.add(str(to_checksum_address(part)))
    if len(found) > MAX_PARTIES:
        raise Problem(422, "validation", "Invalid request", f"at most {MAX_PARTIES} parties")
    return sorted(found)


@dataclass
class _Upload:
    content: bytes
    content_type: str
    parties: list[str]
    note: str | None


async def _read_upload(request: Request, parties: list[str], note: str | None) -> _Upload:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > _BODY_LIMIT:
        raise _too_large()
    content_type = request.headers.get("content-type") or _DEFAULT_CONTENT_TYPE
    if content_type.lower().startswith("multipart/form-data"):
        parser = _InMemoryMultiPartParser(request.headers, _capped(request), max_files=1, max_fields=MAX_PARTIES + 2)
        try:
            form = await parser.parse()
        except MultiPartException as exc:
            raise Problem(400, "bad-request", "Bad request", exc.message) from None
        try:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise Problem(422, "validation", "Invalid request", "send the document as the multipart part `file`")
            content = await upload.read()
            form_parties = [v for v in form.getlist("parties") if isinstance(v, str)]
            form_note = form.get("note")
            return _Upload(
                content,
                upload.content_type or _DEFAULT_CONTENT_TYPE,
                _parties([*parties, *form_parties]),
                form_note if isinstance(form_note, str) and form_note else note,
            )
        finally:
            await form.close()
    chunks = [chunk async for chunk in _capped(request)]
    content = b"".join(chunks)
    if len(content) > MAX_DOCUMENT_BYTES:
        raise _too_large()
    return _Upload(content, content_type, _parties(parties), note)


# -- routes -------------------------------------------------------------------------------------------------

router = APIRouter(tags=["documents"])

UPLOADER_ROLES = (
    Role.OPERATOR,
    Role.CORE_FIRM,
    Role.SUPPLIER,
    Role.FINANCIER,
    Role.WAREHOUSE,
    Role.SETTLEMENT_AGENT,
)
"""The roles that store documents: every participant's but the regulator's, which moves and stores nothing."""

_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "parties": {"type": "array", "items": {"type": "string"}},
                        "note": {"type": "string"},
                    },
                }
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    },
    "responses": {
        status: {
            "description": description,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["sha256", "size"],
                        "properties": {"sha256": {"type": "string"}, "size": {"type": "integer"}},
                    }
                }
            },
        }
        for status, description in (("201", "stored"), ("200", "already stored"))
    }
    | {
        "413": {
            "description": "larger than the service stores",
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    },
}


@router.post("/documents", status_code=201, openapi_extra=_UPLOAD_BODY)
async def upload_document(
    request: Request,
    service: Service,
    caller: CurrentCaller,
    parties: Annotated[list[str] | None, Query(description="who may read it besides you and the regulator")] = None,
    note: str | None = Query(None, max_length=1000),
) -> JSONResponse:
    """Store a document encrypted (see the module's docstring): 201 stored, 200 already stored. A regulator
    reads every document and stores none (403)."""
    if not caller.has(*UPLOADER_ROLES):
        raise Problem(403, "forbidden-role", "Forbidden", "a regulator reads documents but stores none")
    upload = await _read_upload(request, parties or [], note)
    if not upload.content:
        raise Problem(422, "validation", "Invalid request", "the document is empty")
    if len(upload.content) > MAX_DOCUMENT_BYTES:
        raise _too_large()
    if len(upload.content_type) > 200:
        raise Problem(422, "validation", "Invalid request", "the content type is longer than 200 characters")
    if upload.note is not None and len(upload.note) > 1000:
        raise Problem(422, "validation", "Invalid request", "the note is longer than 1000 characters")
    stored = await asyncio.to_thread(
        store_document,
        service.sessions,
        service.settings.master_secret,
        caller.address,
        upload.content,
        upload.content_type,
        upload.parties,
        upload.note,
    )
    logger.info("document %s uploaded by %s (new: %s)", stored.sha256, caller.address, stored.created)
    return JSONResponse(
        {"sha256": stored.sha256, "size": stored.size},
        status_code=201 if stored.created else 200,
        headers={"Location": f"/documents/{stored.sha256}"},
    )


@router.get("/documents/{sha256}", response_class=Response)
async def download_document(sha256: str, service: Service, caller: CurrentCaller) -> Response:
    """The document's content, to its uploader, its parties, the operator and the regulator (404 otherwise;
    409 ``document-integrity`` when the stored ciphertext does not authenticate)."""
    digest = normalize_sha256(sha256)
    missing = Problem(404, "not-found", "Not found", f"no document {sha256}")
    if digest is None:
        raise missing
    with service.sessions() as session:
        record = session.get(DocumentRecord, digest)
        if record is None or not may_read(record, caller):
            logger.info("document %s refused to %s", digest, caller.address)
            raise missing
    try:
        loaded = await asyncio.to_thread(load_document, service.sessions, service.settings.master_secret, digest)
    except DocumentIntegrityError as exc:
        logger.error("document %s read by %s: %s", digest, caller.address, exc)
        raise Problem(
            409,
            "document-integrity",
            "Document integrity",
            "the stored document does not authenticate (altered ciphertext or tag, or a wrong key); it is withheld",
            sha256=digest,
        ) from None
    if loaded is None:
        raise missing
    stored, content = loaded
    logger.info("document %s read by %s", digest, caller.address)
    return Response(
        content,
        media_type=stored.content_type,
        headers={
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": f'attachment; filename="{digest}"',
            "ETag": f'"{digest}"',
        },
    )
