"""Documents between gateways (docs/consortium.md, "Documents between gateways"); the envelope, keys, signatures,
outbox and inbox are :mod:`ledger.docex`'s.

- ``POST /documents/{sha256}/deliveries`` (the invoice's seller, at the gateway that holds the document): send an
  invoice's document to the gateways that serve the given participants (``SCF_GATEWAY_PEERS``' ``serves``), in
  one envelope addressed to those gateways' exchange keys and to every regulator's gateway's. The document's
  SHA-256 must be the invoice's ``document_hash`` on chain (422 ``document-hash-mismatch``). Each delivery goes
  into this gateway's outbox and is sent by :class:`api.docex_delivery.DocexDeliverer`, retried with a doubling
  backoff until the peer takes it. A stored document that does not authenticate is not sent (409).
- ``POST /gateway/inbox`` (a peer gateway, by its signature; no API key): receive an envelope. Refused unless
  signed by a configured peer (401 ``gateway-signature``), sent by that peer (403 ``sender-mismatch``), addressed
  to this gateway's key (403 ``not-addressed``, answered whatever the index holds: it is final), of a document
  whose SHA-256 is the invoice's ``document_hash`` in
  this gateway's index (422 ``document-hash-mismatch``; 503 ``invoice-not-indexed`` while the index has not
  reached the invoice, which the sender retries). Stored encrypted at rest like an upload, readable by the
  invoice's seller and buyer and the envelope's parties; the same envelope again is answered 200 and stores
  nothing. Every answer after the signature check is signed by this gateway's account.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Annotated, Any

from eth_utils import to_checksum_address
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from api.auth import CurrentCaller, Service
from api.documents import may_read
from api.problems import Problem, problem_response
from api.routes.common import Address, Id
from api.service import LedgerService
from ledger import docex
from ledger.documents import DocumentIntegrityError, DocumentRecord, load_document, normalize_sha256, store_document
from ledger.index.models import InvoiceRow

logger = logging.getLogger("api.docex")

router = APIRouter(tags=["gateway"])


def peers_of(service: LedgerService) -> tuple[docex.Peer, ...]:
    return docex.parse_peers(service.settings.gateway_peers)


class DeliveryRequest(BaseModel):
    invoice_id: Id = Field(description="the invoice whose `document_hash` on chain is this document's SHA-256")
    recipients: Annotated[list[Address], Field(min_length=1, max_length=10)] = Field(
        description="the participants (the core firm, the financier) whose gateways receive it"
    )


class Delivery(BaseModel):
    gateway: str = Field(description="the peer gateway's account")
    url: str
    role: str


class DeliveryView(BaseModel):
    envelope_id: str
    sha256: str
    deliveries: list[Delivery] = Field(description="one per gateway, each delivered from this gateway's outbox")


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


@router.post(
    "/documents/{sha256}/deliveries",
    status_code=202,
    response_model=DeliveryView,
    responses={409: _problem("the stored document does not authenticate (`document-integrity`): it is not sent")},
)
async def deliver_document(sha256: str, body: DeliveryRequest, service: Service, caller: CurrentCaller) -> DeliveryView:
    """Send an invoice's document, encrypted to the recipients' gateways and the regulator's, to those gateways
    (see the module's docstring). Only the invoice's seller sends it."""
    digest = normalize_sha256(sha256)
    missing = Problem(404, "not-found", "Not found", f"no document {sha256}")
    if digest is None:
        raise missing
    with service.sessions() as session:
        record = session.get(DocumentRecord, digest)
        if record is None or not may_read(record, caller):
            raise missing
        invoice = session.get(InvoiceRow, body.invoice_id)
        if invoice is None:
            raise Problem(404, "not-found", "Not found", f"no invoice {body.invoice_id}")
        if invoice.seller != caller.address:
            raise Problem(403, "forbidden", "Forbidden", "only the invoice's seller sends its document")
        if invoice.document_hash.lower() != "0x" + digest:
            raise _hash_mismatch(digest, invoice.document_hash)
    peers = peers_of(service)
    targets: dict[str, docex.Peer] = {}
    for recipient in body.recipients:
        peer = docex.peer_serving(peers, recipient)
        if peer is None:
            raise Problem(
                422, "no-gateway", "No gateway", f"no peer gateway serves {recipient} (SCF_GATEWAY_PEERS `serves`)"
            )
        targets[peer.account] = peer
    regulators = [peer for peer in peers if peer.role == "regulator"]
    if not regulators:
        raise Problem(
            422, "no-regulator-gateway", "No regulator's gateway", "SCF_GATEWAY_PEERS names no regulator's gateway"
        )
    for peer in regulators:
        targets[peer.account] = peer
    try:
        loaded = await asyncio.to_thread(load_document, service.sessions, service.secrets, digest)
    except DocumentIntegrityError as exc:
        logger.error("document %s not sent: %s", digest, exc)
        raise Problem(
            409,
            "document-integrity",
            "Document integrity",
            "the stored document does not authenticate (altered ciphertext or tag, or a wrong key); it is not sent",
            sha256=digest,
        ) from None
    if loaded is None:
        raise missing
    stored, content = loaded
    envelope = docex.seal(
        content,
        invoice_id=body.invoice_id,
        sender=str(service.operator.address),
        recipients=[peer.exchange_key for peer in targets.values()],
        content_type=stored.content_type,
        parties=sorted(set(body.recipients)),
    )
    await asyncio.to_thread(docex.enqueue, service.sessions, envelope, targets.values())
    if service.docex is not None:
        service.docex.poke()
    logger.info("document %s queued for %s (envelope %s)", digest, ", ".join(targets), envelope["id"])
    return DeliveryView(
        envelope_id=envelope["id"],
        sha256=digest,
        deliveries=[Delivery(gateway=p.account, url=p.url, role=p.role) for p in targets.values()],
    )


def _hash_mismatch(digest: str, on_chain: str) -> Problem:
    return Problem(
        422,
        "document-hash-mismatch",
        "Document hash mismatch",
        f"the document's SHA-256 {digest} is not the invoice's document_hash on chain {on_chain}",
    )


class Received(BaseModel):
    status: str = Field(description="`received`, or `already-received` for an envelope received before")
    sha256: str


_INBOX: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "an envelope (ledger.docex.seal), signed in the X-SCF-Gateway, X-SCF-Timestamp and "
        "X-SCF-Signature headers by a peer gateway's account",
        "content": {"application/json": {"schema": {"type": "object"}}},
    },
}


@router.post(
    docex.INBOX_PATH,
    status_code=201,
    response_model=Received,
    openapi_extra=_INBOX,
    responses={
        200: {"model": Received, "description": "received before"},
        401: _problem("not signed by a peer gateway this gateway trusts (`gateway-signature`)"),
        403: _problem("sent by another gateway than the envelope names, or not addressed to this gateway"),
        413: _problem("larger than the largest document in an envelope"),
        422: _problem("not an envelope, or its document's hash is not the invoice's on chain"),
        503: _problem("the invoice is not in this gateway's index yet: send it again later"),
    },
)
async def receive_envelope(request: Request, service: Service) -> Response:
    """Receive a document from a peer gateway (see the module's docstring): authenticated by the peer's
    signature, not by an API key."""
    body = await request.body()
    try:
        peer = docex.verify_request(
            request.headers,
            "POST",
            docex.INBOX_PATH,
            body,
            receiver=str(service.operator.address),
            peers=peers_of(service),
            max_skew=service.settings.docex_max_skew_seconds,
        )
    except docex.SignatureError as exc:
        logger.warning("inbox: refused an unauthenticated request: %s", exc)
        raise Problem(401, "gateway-signature", "Gateway signature required", str(exc)) from None
    signature = request.headers[docex.HEADER_SIGNATURE]
    try:
        status, content = await _receive(service, peer, body)
    except Problem as problem:
        response = problem_response(problem, request)
    else:
        response = JSONResponse(content, status_code=status)
    response.headers.update(docex.sign_answer(service.operator, response.status_code, bytes(response.body), signature))
    return response


async def _receive(service: LedgerService, peer: docex.Peer, body: bytes) -> tuple[int, dict[str, Any]]:
    try:
        envelope = docex.check_shape(json.loads(body))
    except (ValueError, docex.EnvelopeError) as exc:
        raise Problem(422, "invalid-envelope", "Invalid envelope", str(exc)) from None
    if envelope["sender"] != peer.account:
        raise Problem(403, "sender-mismatch", "Sender mismatch", "the envelope names another gateway as its sender")
    digest = envelope["sha256"]
    if await asyncio.to_thread(docex.already_received, service.sessions, envelope["id"]):
        return 200, {"status": "already-received", "sha256": digest}
    # An envelope this gateway cannot open is refused for good before anything that may change (the index): a 503
    # would have its sender retry what will never be addressed here.
    try:
        content = docex.open_envelope(envelope, docex.exchange_key(service.secrets.current))
    except docex.NotAddressed as exc:
        raise Problem(403, "not-addressed", "Not addressed to this gateway", str(exc)) from None
    except docex.EnvelopeError as exc:
        raise Problem(422, "invalid-envelope", "Invalid envelope", str(exc)) from None
    with service.sessions() as session:
        invoice = session.get(InvoiceRow, envelope["invoice_id"])
        if invoice is not None:
            session.expunge(invoice)
    if invoice is None:
        raise Problem(
            503,
            "invoice-not-indexed",
            "Invoice not indexed",
            f"this gateway's index has no invoice {envelope['invoice_id']} yet",
        )
    if invoice.document_hash.lower() != "0x" + digest:
        logger.warning("inbox: %s sent %s for invoice %s, whose hash differs", peer.account, digest, invoice.id)
        raise _hash_mismatch(digest, invoice.document_hash)
    await asyncio.to_thread(
        store_document,
        service.sessions,
        service.secrets,
        invoice.seller,
        content,
        envelope["content_type"],
        [invoice.buyer, *(str(to_checksum_address(party)) for party in envelope["parties"])],
        f"received from gateway {peer.account} (envelope {envelope['id']})",
    )
    if not await asyncio.to_thread(docex.record_received, service.sessions, envelope):
        return 200, {"status": "already-received", "sha256": digest}
    logger.info("inbox: document %s of invoice %s received from %s", digest, invoice.id, peer.account)
    return 201, {"status": "received", "sha256": digest}
