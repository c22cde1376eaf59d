"""The routes of documents (invoices, warehouse certificates, contracts), which are stored encrypted at rest.

How a document is named, encrypted and re-encrypted is :mod:`ledger.documents`' concern; the keys come from the
master secret (:mod:`ledger.secrets`). Here: reading an upload and the two routes.

The plaintext never touches the disk: a raw upload is read into memory, and multipart uploads are parsed
with a spool large enough that Starlette's temporary file never rolls over to disk (uploads are capped at
``SCF_MAX_DOCUMENT_BYTES``, 20 MiB by default: 413 beyond).

Routes (included by :mod:`api.routes.regulator`'s router):

- ``POST /documents``: any participant but a regulator, which reads documents and stores none (403). Either
  ``multipart/form-data`` (a ``file`` part; optional ``parties`` fields, repeated or comma-separated, and
  ``note``), or the raw bytes with their own ``Content-Type`` (``parties`` and ``note`` then as query
  parameters). ``parties`` are the addresses that may read the document besides the uploader, the regulator
  and the operator. Answers ``{sha256, size}``: 201 when stored, 200 when the same content was already stored
  (no duplicate; the new uploader and its parties are added to the readers).
- ``GET /documents/{sha256}``: the plaintext, to the uploader, the listed parties, the operator and the
  regulator, and for a warehouse receipt's document (its ``document_hash``) to the receipt's warehouse, its
  owner now and the borrowers and financiers of its pledges (as the index holds them); 404 to everyone else
  (as for a document that does not exist). Every read is logged. A
  ciphertext or tag that does not authenticate is answered ``409`` ``urn:scf:problem:document-integrity``
  (the stored document conflicts with its name; nothing is returned).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from eth_utils import is_address, to_checksum_address
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from api.auth import Caller, CurrentCaller, Service
from api.edge import MULTIPART_FRAMING_BYTES
from api.models import StoredDocument
from api.problems import Problem
from ledger.documents import (
    DEFAULT_CONTENT_TYPE,
    DocumentIntegrityError,
    DocumentRecord,
    load_document,
    normalize_sha256,
    store_document,
)
from ledger.index.models import PledgeRow, WarehouseReceiptRow
from ledger.models import Role

logger = logging.getLogger("api.documents")

MAX_PARTIES = 50


def body_limit(max_document_bytes: int) -> int:
    """The largest request body of an upload: a document and its multipart framing and fields."""
    return max_document_bytes + MULTIPART_FRAMING_BYTES


def may_read(record: DocumentRecord, caller: Caller) -> bool:
    return (
        caller.is_operator
        or caller.is_regulator
        or caller.address == record.uploaded_by
        or caller.address in record.parties
    )


def _receipt_party(session: Session, digest: str, caller: Caller) -> bool:
    """Whether ``caller`` is a party of a warehouse receipt whose document this is, as the index holds it: its
    warehouse, its owner now, or the borrower or financier of any of its pledges. (The warehouse stores the
    document at issue with the first owner as its party; later owners and the financiers of its pledges read it
    through the receipt.)"""
    receipts = select(WarehouseReceiptRow.id).where(WarehouseReceiptRow.document_hash == "0x" + digest)
    direct = select(WarehouseReceiptRow.id).where(
        WarehouseReceiptRow.document_hash == "0x" + digest,
        or_(WarehouseReceiptRow.warehouse == caller.address, WarehouseReceiptRow.owner == caller.address),
    )
    pledged = select(PledgeRow.id).where(
        PledgeRow.receipt_id.in_(receipts),
        or_(PledgeRow.borrower == caller.address, PledgeRow.financier == caller.address),
    )
    return session.scalar(direct.limit(1)) is not None or session.scalar(pledged.limit(1)) is not None


# -- reading an upload --------------------------------------------------------------------------------------


class _InMemoryMultiPartParser(MultiPartParser):
    """Starlette's parser with a spool larger than any accepted upload: file parts stay in memory."""

    def __init__(self, *args: Any, spool_max_size: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spool_max_size = spool_max_size


def _too_large(limit: int) -> Problem:
    return Problem(413, "too-large", "Request too large", f"documents are limited to {limit} bytes")


async def _capped(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > body_limit(limit):
            raise _too_large(limit)
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


async def _read_upload(request: Request, parties: list[str], note: str | None, limit: int) -> _Upload:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > body_limit(limit):
        raise _too_large(limit)
    content_type = request.headers.get("content-type") or DEFAULT_CONTENT_TYPE
    if content_type.lower().startswith("multipart/form-data"):
        parser = _InMemoryMultiPartParser(
            request.headers,
            _capped(request, limit),
            max_files=1,
            max_fields=MAX_PARTIES + 2,
            spool_max_size=body_limit(limit) + 1,
        )
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
                upload.content_type or DEFAULT_CONTENT_TYPE,
                _parties([*parties, *form_parties]),
                form_note if isinstance(form_note, str) and form_note else note,
            )
        finally:
            await form.close()
    chunks = [chunk async for chunk in _capped(request, limit)]
    content = b"".join(chunks)
    if len(content) > limit:
        raise _too_large(limit)
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
        "413": {
            "description": "larger than the service stores",
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    },
}
"""What FastAPI cannot derive from the route: the body is read by hand (:func:`_read_upload`), not declared."""


@router.post(
    "/documents",
    status_code=201,
    openapi_extra=_UPLOAD_BODY,
    response_model=StoredDocument,
    response_description="stored",
    responses={200: {"model": StoredDocument, "description": "already stored"}},
)
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
    limit = service.settings.max_document_bytes
    upload = await _read_upload(request, parties or [], note, limit)
    if not upload.content:
        raise Problem(422, "validation", "Invalid request", "the document is empty")
    if len(upload.content) > limit:
        raise _too_large(limit)
    if len(upload.content_type) > 200:
        raise Problem(422, "validation", "Invalid request", "the content type is longer than 200 characters")
    if upload.note is not None and len(upload.note) > 1000:
        raise Problem(422, "validation", "Invalid request", "the note is longer than 1000 characters")
    stored = await asyncio.to_thread(
        store_document,
        service.sessions,
        service.secrets,
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
        if record is None or not (may_read(record, caller) or _receipt_party(session, digest, caller)):
            logger.info("document %s refused to %s", digest, caller.address)
            raise missing
    try:
        loaded = await asyncio.to_thread(load_document, service.sessions, service.secrets, digest)
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
