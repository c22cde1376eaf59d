"""Signed acts: relaying a participant's own signed act, and the evidence of any act relayed.

``POST /acts`` takes an EIP-712 document of one of the ledger's acts and its signature (a self-custody
participant's answer to a ``428 signature-required``, see :mod:`api.signing`, or an act it built and signed
itself) and relays it through the ``SignedActs`` contract, paying the gas from the operator's account: the
operation then runs as any other (202, ``Prefer: wait``, ``Idempotency-Key``, the contracts' named errors as
problems, found at pre-flight before anything is sent). Whoever relays changes nothing: the contract acts for
the account that signed, and only if its current key signed.

``POST /acts/approvals`` and ``GET /acts/approvals`` are the maker/checker of a contract account (a Safe): each
owner posts its own signature of the act (the Safe message hash of the act's digest) as it approves, the
service keeps them with the act until the owners who signed reach the Safe's threshold (both read from the
chain), and then relays the act once with their signatures together, as ``POST /acts`` would. A signature that
is not an owner's is refused as it comes, not when the Safe refuses it on chain.

``GET /acts/{tx_hash}`` and ``GET /operations/{operation_id}/evidence`` give back the act a transaction
relayed, rebuilt from the chain alone (the transaction's input and its ``ActPerformed`` event): the typed data
and signature anyone can check with any EIP-712 library, the digest the contract verified, the account and
the key that signed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable
from typing import Annotated, Any, Literal

from eth_utils import to_checksum_address
from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from api.auth import CurrentCaller, Service
from api.operations import OperationView, Submit, perform
from api.problems import Problem
from api.service import LedgerService
from api.store import ActApprovalRecord, ActApprovalSignatureRecord, ServiceOperationRecord
from ledger import acts
from ledger.pipeline import Operation
from ledger.safe import SafeError, SafeOwners, safe_message_hash, safe_owners

router = APIRouter(tags=["signed acts"])

KIND_OF_ACT = {act.name: operation for operation, act in acts.ACTS.items()} | {acts.ROTATE_KEY.name: "key.rotate"}
"""The operation kind an act's operation shows (``GET /operations/{id}``)."""

MAX_SIGNATURE_BYTES = 65 * 16
"""A contract account's signature carries one signature per owner (a Safe: 65 bytes each)."""

TxHash = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{64}$", description="a transaction hash")]


class SignedAct(BaseModel):
    typed_data: dict[str, Any] = Field(
        description="the EIP-712 document (types, primaryType, domain, message), as the 428 answer gave it"
    )
    signature: str = Field(
        pattern=r"^0x([0-9a-fA-F]{2})+$",
        max_length=2 + 2 * MAX_SIGNATURE_BYTES,
        description="0x-hex signature: 65 bytes (r, s, v) for a key; a contract account's own format (ERC-1271)",
    )

    @field_validator("typed_data")
    @classmethod
    def _known_act(cls, value: dict[str, Any]) -> dict[str, Any]:
        acts.act_of(value)  # a ValueError: an unknown act type, or not its declared fields
        return value


class ActEvidenceView(BaseModel):
    act: str = Field(description="the act's EIP-712 type")
    typed_data: dict[str, Any]
    signature: str
    digest: str = Field(description="the EIP-712 hash the contract verified (from its ActPerformed event)")
    account: str = Field(description="the participant the act is of")
    signer: str = Field(description="the key (or contract account) whose signature the contract accepted")
    tx_hash: str
    block_number: int
    sentence: str = Field(description="the act in words")
    digest_matches: bool = Field(description="the typed data hashes to the digest the contract verified")


@router.post(
    "/acts",
    status_code=202,
    response_model=OperationView,
    responses={200: {"model": OperationView, "description": "the operation, final"}},
)
async def relay_act(body: SignedAct, request: Request, service: Service, caller: CurrentCaller) -> JSONResponse:
    """Relay a signed act (see the module's docstring). Any participant may relay any act: the signature, not
    the caller, authorises it."""
    kind, submit = relay_submission(service, body)
    return await perform(request, service, caller, kind, body, submit)


def relay_submission(service: LedgerService, body: SignedAct) -> tuple[str, Submit]:
    """What a relay of ``body`` becomes: its operation's kind and the ``submit`` that relays it (a 422
    ``invalid-act`` problem for a document that is not an act of this ledger)."""
    try:
        act = service.client.check_document(body.typed_data)
    except ValueError as exc:
        raise Problem(422, "invalid-act", "Invalid act", str(exc)) from None
    signature = bytes.fromhex(body.signature[2:])
    relayer = service.operator.address

    def submit(operation_id: str | None) -> Awaitable[Operation]:
        return service.client.submit_act(body.typed_data, signature, relayer, operation_id)

    return KIND_OF_ACT[act.name], submit


class OwnerSignature(BaseModel):
    typed_data: dict[str, Any] = Field(description="the EIP-712 document of the act, as the 428 answer gave it")
    signature: str = Field(
        pattern=r"^0x[0-9a-fA-F]{130}$",
        description="one owner's 65-byte signature (r, s, v) of the Safe message hash of the act's digest",
    )

    @field_validator("typed_data")
    @classmethod
    def _known_act(cls, value: dict[str, Any]) -> dict[str, Any]:
        acts.act_of(value)
        return value


class ApprovalView(BaseModel):
    """An act of a contract account and the owners who approved it so far."""

    digest: str
    account: str
    act: str
    typed_data: dict[str, Any]
    sentence: str
    deadline: int = Field(description="unix seconds: the act's signatures are void after it")
    threshold: int = Field(description="how many owners must sign (the Safe's threshold, from the chain)")
    signed_by: list[str] = Field(description="the owners whose signatures are kept, in the order they came")
    status: Literal["awaiting-signatures", "relayed", "expired"]
    operation_id: str | None = Field(description="the operation that relayed the act, once it was relayed")


def _owners(service: LedgerService, account: str) -> SafeOwners:
    try:
        return safe_owners(service.w3, account)
    except SafeError as exc:
        raise Problem(422, "not-a-contract-account", "Not a contract account", str(exc)) from None


def _approval_view(record: ActApprovalRecord, owners: SafeOwners, signed_by: list[str]) -> ApprovalView:
    act = acts.act_of(record.typed_data)
    expired = record.deadline <= int(time.time())
    relaying = (record.operation_id or "").startswith("relaying:")  # being sent now
    status: Literal["awaiting-signatures", "relayed", "expired"] = (
        "relayed" if record.operation_id else "expired" if expired else "awaiting-signatures"
    )
    return ApprovalView(
        digest=record.digest,
        account=record.account,
        act=act.name,
        typed_data=record.typed_data,
        sentence=acts.sentence(act, record.typed_data["message"]),
        deadline=record.deadline,
        threshold=owners.threshold,
        signed_by=signed_by,
        status=status if not relaying else "awaiting-signatures",
        operation_id=None if relaying else record.operation_id,
    )


def _signatures(service: LedgerService, digest: str, owners: SafeOwners) -> list[tuple[str, str]]:
    """(owner, signature) kept for ``digest`` from addresses that own the Safe now, in the order they came."""
    with service.sessions() as session:
        rows = session.scalars(
            select(ActApprovalSignatureRecord)
            .where(ActApprovalSignatureRecord.digest == digest)
            .order_by(ActApprovalSignatureRecord.id)
        ).all()
    return [(row.owner, row.signature) for row in rows if row.owner in owners.owners]


def _keep(service: LedgerService, body: OwnerSignature, digest: str, owner: str) -> ActApprovalRecord:
    """Keep ``owner``'s signature with the act (created at the first); a second signature of one owner is ignored."""
    message = body.typed_data["message"]
    with service.sessions() as session, session.begin():
        record = session.get(ActApprovalRecord, digest)
        if record is None:
            record = ActApprovalRecord(
                digest=digest,
                account=to_checksum_address(message["account"]),
                typed_data=body.typed_data,
                deadline=int(message["deadline"]),
            )
            session.add(record)
            session.flush()
        session.expunge(record)
    try:
        with service.sessions() as session, session.begin():
            session.add(ActApprovalSignatureRecord(digest=digest, owner=owner, signature=body.signature))
    except IntegrityError:  # this owner signed it already (or concurrently): kept once
        pass
    return record


def _mark(service: LedgerService, digest: str, current: str | None, new: str | None) -> bool:
    """Set the approval's operation from ``current`` to ``new``; False when it was not ``current``."""
    now = ActApprovalRecord.operation_id.is_(None) if current is None else ActApprovalRecord.operation_id == current
    with service.sessions() as session, session.begin():
        result = session.execute(
            update(ActApprovalRecord).where(ActApprovalRecord.digest == digest, now).values(operation_id=new)
        )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


@router.post(
    "/acts/approvals",
    response_model=ApprovalView,
    responses={
        202: {"model": OperationView, "description": "the last signature the threshold needed: the act is relayed"},
    },
)
async def approve_act(body: OwnerSignature, request: Request, service: Service, caller: CurrentCaller) -> Any:
    """One owner's approval of an act of a contract account (maker, then checker): its signature is checked
    against the Safe's owners on chain and kept; the signature that reaches the Safe's threshold relays the act
    (answered as ``POST /acts`` answers: 202, or 200 with ``Prefer: wait``). Only the account itself (its API
    key or sign-in) collects signatures for its acts."""
    try:
        act = service.client.check_document(body.typed_data)
    except ValueError as exc:
        raise Problem(422, "invalid-act", "Invalid act", str(exc)) from None
    message = body.typed_data["message"]
    account = to_checksum_address(message["account"])
    if account != caller.address:
        raise Problem(403, "not-your-act", "Forbidden", "only the account an act is of collects its approvals")
    if int(message["deadline"]) <= int(time.time()):
        raise Problem(422, "act-expired", "Act expired", "the act's deadline has passed: ask for the act again")
    owners = await run_in_threadpool(_owners, service, account)
    digest = acts.digest(body.typed_data)
    hashed = safe_message_hash(service.client.chain_id, account, digest)
    owner = acts.recover_hash(hashed, bytes.fromhex(body.signature[2:]))
    if owner is None or owner not in owners.owners:
        raise Problem(
            403, "not-an-owner", "Forbidden", f"the signature is not one of the owners' of {account} over this act"
        )
    digest_hex = "0x" + digest.hex()
    record = await run_in_threadpool(_keep, service, body, digest_hex, owner)
    kept = await run_in_threadpool(_signatures, service, digest_hex, owners)
    if record.operation_id is not None or len(kept) < owners.threshold:
        return _approval_view(record, owners, [signer for signer, _ in kept])
    chosen = sorted(kept, key=lambda pair: int(pair[0], 16))[: owners.threshold]
    combined = bytes.fromhex("".join(signature[2:] for _, signature in chosen))

    async def relay(operation_id: str | None) -> Any:
        # Claimed first, so that two last signatures arriving together relay the act once.
        claim = operation_id or f"relaying:{uuid.uuid4().hex}"
        if not await run_in_threadpool(_mark, service, digest_hex, None, claim):
            raise Problem(409, "act-relayed", "Already relayed", "this act was relayed already")
        try:
            operation = await service.client.submit_act(
                body.typed_data, combined, service.operator.address, operation_id
            )
        except BaseException:
            await run_in_threadpool(_mark, service, digest_hex, claim, None)  # refused: the owners may try again
            raise
        await run_in_threadpool(_mark, service, digest_hex, claim, operation.operation_id)
        return operation

    signed = SignedAct(typed_data=body.typed_data, signature="0x" + combined.hex())
    response = await perform(request, service, caller, KIND_OF_ACT[act.name], signed, relay)
    return response


class ApprovalList(BaseModel):
    items: list[ApprovalView]


@router.get("/acts/approvals", response_model=ApprovalList)
async def list_approvals(service: Service, caller: CurrentCaller) -> ApprovalList:
    """The caller's acts awaiting its owners' signatures, and those relayed or expired in the last day (newest
    first)."""
    since = int(time.time()) - 86_400
    with service.sessions() as session:
        records = session.scalars(
            select(ActApprovalRecord)
            .where(ActApprovalRecord.account == caller.address, ActApprovalRecord.deadline > since)
            .order_by(ActApprovalRecord.created_at.desc())
            .limit(200)
        ).all()
    if not records:
        return ApprovalList(items=[])
    owners = await run_in_threadpool(_owners, service, caller.address)
    views = []
    for record in records:
        kept = await run_in_threadpool(_signatures, service, record.digest, owners)
        views.append(_approval_view(record, owners, [signer for signer, _ in kept]))
    return ApprovalList(items=views)


@router.get("/acts/{tx_hash}", response_model=ActEvidenceView)
async def act_evidence(tx_hash: TxHash, service: Service, caller: CurrentCaller) -> ActEvidenceView:
    """The signed act transaction ``tx_hash`` relayed, from the chain (any gateway's relay)."""
    return await _evidence(service, tx_hash)


@router.get("/operations/{operation_id}/evidence", response_model=ActEvidenceView)
async def operation_evidence(operation_id: str, service: Service, caller: CurrentCaller) -> ActEvidenceView:
    """The signed act an operation relayed, once it is on chain (404 before, and for an operation that relayed
    no act)."""
    with service.sessions() as session:
        record = session.get(ServiceOperationRecord, operation_id)
    if record is None or (record.participant != caller.address and not (caller.is_operator or caller.is_regulator)):
        raise Problem(404, "not-found", "Not found", f"no operation {operation_id}")
    operation = service.pipeline.status(operation_id)
    if operation.block_number is None:
        raise Problem(404, "not-found", "Not found", f"operation {operation_id} is not on chain yet")
    return await _evidence(service, operation.tx_hash)


async def _evidence(service: Any, tx_hash: str) -> ActEvidenceView:
    try:
        evidence = await run_in_threadpool(service.client.act_evidence, tx_hash)
    except LookupError as exc:
        raise Problem(404, "not-found", "Not found", str(exc)) from None
    act = acts.act_of(evidence.typed_data)
    return ActEvidenceView(
        act=evidence.act,
        typed_data=evidence.typed_data,
        signature="0x" + evidence.signature.hex(),
        digest="0x" + evidence.digest.hex(),
        account=evidence.account,
        signer=evidence.signer,
        tx_hash=evidence.tx_hash,
        block_number=evidence.block_number,
        sentence=acts.sentence(act, evidence.typed_data["message"]),
        digest_matches=acts.digest(evidence.typed_data) == evidence.digest,
    )
