"""Signed acts: relaying a participant's own signed act, and the evidence of any act relayed.

``POST /acts`` takes an EIP-712 document of one of the ledger's acts and its signature (a self-custody
participant's answer to a ``428 signature-required``, see :mod:`api.signing`, or an act it built and signed
itself) and relays it through the ``SignedActs`` contract, paying the gas from the operator's account: the
operation then runs as any other (202, ``Prefer: wait``, ``Idempotency-Key``, the contracts' named errors as
problems, found at pre-flight before anything is sent). Whoever relays changes nothing: the contract acts for
the account that signed, and only if its current key signed.

``GET /acts/{tx_hash}`` and ``GET /operations/{operation_id}/evidence`` give back the act a transaction
relayed, rebuilt from the chain alone (the transaction's input and its ``ActPerformed`` event): the typed data
and signature anyone can check with any EIP-712 library, the digest the contract verified, the account and
the key that signed.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator
from starlette.concurrency import run_in_threadpool

from api.auth import CurrentCaller, Service
from api.operations import OperationView, perform
from api.problems import Problem
from api.store import ServiceOperationRecord
from ledger import acts

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
    try:
        act = service.client.check_document(body.typed_data)
    except ValueError as exc:
        raise Problem(422, "invalid-act", "Invalid act", str(exc)) from None
    signature = bytes.fromhex(body.signature[2:])
    relayer = service.operator.address
    return await perform(
        request,
        service,
        caller,
        KIND_OF_ACT[act.name],
        body,
        lambda op_id: service.client.submit_act(body.typed_data, signature, relayer, op_id),
    )


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
