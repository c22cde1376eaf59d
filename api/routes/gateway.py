"""This gateway in a consortium of gateways on one chain (docs/consortium.md).

A gateway is ``scf serve`` run by one institution (the operator, a bank, a core firm, the regulator) with its own
database, keystore, API keys and own account (``SCF_OPERATOR_KEY``). Every gateway indexes the whole ledger; each
serves the participants it was given, and acts only for those whose key it holds.

- ``GET /gateway``: what this gateway is (its role, its own account, the chain, the deployment, its index).
- ``POST /gateway/keys`` (the gateway's own account): a new key in this gateway's keystore and its proof of
  possession, for the operator to onboard the account as signing its own acts (``POST /participants`` with
  ``address`` and ``proof`` at the operator's gateway). The key never leaves this gateway.
- ``POST /gateway/participants`` (the gateway's own account): serve here a participant the operator onboarded
  as signing its own acts. When this gateway's keystore holds its signer's key, the gateway signs its acts
  itself (the bank's gateway for the bank); otherwise the participant keeps its key and proves it with a
  signature of the possession message, and its requests answer 428 with the act to sign.

:class:`ReadOnlyGatewayMiddleware` makes the regulator's gateway (``SCF_GATEWAY_ROLE=regulator``) refuse every
state-changing request but a freeze, its lifting and signing in (403 ``urn:scf:problem:read-only-gateway``).
"""

from __future__ import annotations

import asyncio
import re
from typing import Final

from eth_account.messages import encode_defunct
from eth_utils import keccak
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth import Caller, CurrentCaller, Service
from api.models import ParticipantView
from api.problems import Problem, problem_response
from api.routes.common import ASSIGNABLE_ROLES, Address, participant_view
from api.service import LedgerService, issue_api_key
from api.signing import read_only_gateway
from api.store import ParticipantRecord
from ledger import acts, docex
from ledger.identifiers import InvalidIdentifier, validate_credit_code

router = APIRouter(tags=["gateway"])


class GatewayView(BaseModel):
    role: str = Field(description="`operator`, `member` (a bank's or a core firm's gateway) or `regulator`")
    account: str = Field(description="the gateway's own account: it relays the acts it is given and pays their gas")
    chain_id: int
    registry: str = Field(description="the ledger's participant registry: the same on every gateway of a consortium")
    deployment_block: int = Field(description="the block of the deployment this gateway attached to")
    indexed_block: int | None = Field(description="the last block this gateway's index holds")
    exchange_key: str = Field(description="its X25519 public key (hex): peers encrypt the documents they send it to it")
    exchange_key_signature: str = Field(
        description="the gateway account's EIP-191 signature of the key statement binding `exchange_key` to `account` "
        "and the chain (ledger.docex.key_statement)"
    )


@router.get("/gateway", response_model=GatewayView)
def gateway(service: Service, caller: CurrentCaller) -> GatewayView:
    """What this gateway is: its role, its own account, the chain and deployment it serves, how far it indexed."""
    account = str(service.operator.address)
    key = docex.public_hex(docex.exchange_key(service.secrets.current))
    statement = docex.key_statement(account, service.client.chain_id, key)
    return GatewayView(
        role=service.role,
        account=str(service.operator.address),
        chain_id=service.client.chain_id,
        registry=str(service.client.address_of("registry")),
        deployment_block=service.deployment.block_number,
        indexed_block=service.indexer.indexed_block(),
        exchange_key=key,
        exchange_key_signature=service.operator.sign_message(encode_defunct(text=statement)).signature.to_0x_hex(),
    )


def _require_gateway_account(service: LedgerService, caller: Caller) -> None:
    if caller.address != service.operator.address:
        raise Problem(
            403, "gateway-account-only", "Forbidden", "only this gateway's own account (its first API key) may do this"
        )


def _credit_code(value: str) -> str:
    try:
        return validate_credit_code(value)
    except InvalidIdentifier as exc:
        raise ValueError(str(exc)) from None


class KeyRequest(BaseModel):
    credit_code: str = Field(min_length=18, max_length=18, description="the participant's unified social credit code")

    @field_validator("credit_code")
    @classmethod
    def _valid(cls, value: str) -> str:
        return _credit_code(value)


class HostedKey(BaseModel):
    address: str = Field(description="the new account, whose key stays in this gateway's keystore")
    message: str = Field(description="the possession message signed (GET /participants/possession-message)")
    proof: str = Field(description="the key's signature of it: `proof` of `POST /participants` at the operator's")


@router.post("/gateway/keys", status_code=201, response_model=HostedKey)
async def create_hosted_key(body: KeyRequest, service: Service, caller: CurrentCaller) -> HostedKey:
    """A new key in this gateway's keystore for a participant it will host, with its proof of possession: the
    operator onboards the account with them (`POST /participants` with `address` and `proof`, at the operator's
    gateway), then this gateway serves it (`POST /gateway/participants`) and signs its acts. No key is handed
    to anyone."""
    _require_gateway_account(service, caller)
    address = await asyncio.to_thread(service.keystore.create)
    message = acts.possession_message(
        address, service.client.chain_id, service.client.address_of("registry"), body.credit_code
    )
    key = await asyncio.to_thread(service.keystore.account, address)
    proof = key.sign_message(encode_defunct(text=message)).signature.to_0x_hex()
    return HostedKey(address=address, message=message, proof=proof)


class ServeRequest(BaseModel):
    address: Address = Field(description="the participant's account, registered on chain as signing its own acts")
    name: str = Field(min_length=1, max_length=200, description="its name, as the operator onboarded it")
    credit_code: str = Field(min_length=18, max_length=18, description="its credit code, as the operator onboarded it")
    login_address: Address | None = Field(None, description="a wallet of the participant's own, for sign-in")
    proof: str | None = Field(
        None,
        pattern=r"^0x([0-9a-fA-F]{2})+$",
        max_length=2 + 2 * 65 * 16,
        description="when this gateway holds no key of it: its signer's signature (EIP-191, or ERC-1271) of the "
        "text `GET /participants/possession-message` gives for the account and credit code",
    )

    @field_validator("credit_code")
    @classmethod
    def _valid(cls, value: str) -> str:
        return _credit_code(value)


class ServedParticipant(BaseModel):
    participant: ParticipantView
    api_key: str = Field(description="shown once; only its hash is stored")
    hosted: bool = Field(description="whether this gateway holds its signer's key and signs its acts itself")


@router.post("/gateway/participants", status_code=201, response_model=ServedParticipant)
async def serve_participant(body: ServeRequest, service: Service, caller: CurrentCaller) -> JSONResponse:
    """Serve here a participant already on chain, registered as signing its own acts (onboarded by the operator
    by address and proof), and give it an API key for this gateway. Its name and credit code must be the ones the
    chain holds the hash of (422 `identity-mismatch`); its roles are read from the chain. If this gateway's keystore
    holds its signer's key (`POST /gateway/keys`), the gateway signs its acts; otherwise `proof` must show that
    whoever asks holds the signer's key (422 `invalid-proof`), and its requests answer 428 with the act to sign. A
    participant registered as hosted is served only by the gateway that holds its key (409 `hosted-elsewhere`)."""
    _require_gateway_account(service, caller)
    client = service.client
    on_chain = await asyncio.to_thread(client.participant, body.address)
    if on_chain.registered_at == 0:
        raise Problem(404, "not-found", "Not found", f"{body.address} is not a participant of this ledger")
    if on_chain.identity_hash != keccak(text=f"{body.credit_code}|{body.name}"):
        raise Problem(
            422,
            "identity-mismatch",
            "Identity mismatch",
            "the name and credit code are not the ones the participant was onboarded with (their hash differs)",
        )
    if not await asyncio.to_thread(client.is_self_custody, body.address):
        raise Problem(
            409,
            "hosted-elsewhere",
            "Hosted elsewhere",
            f"{body.address} is registered as hosted: only the gateway that holds its key serves it",
        )
    signer = await asyncio.to_thread(client.signer_of, body.address)
    hosted = signer in service.keystore
    if not hosted:
        if body.proof is None:
            raise Problem(
                422, "proof-required", "Proof of possession required", "this gateway holds no key of it: send `proof`"
            )
        message = acts.possession_message(
            body.address, client.chain_id, client.address_of("registry"), body.credit_code
        )
        proof = bytes.fromhex(body.proof[2:])
        if not await asyncio.to_thread(client.holds_key, signer, acts.possession_hash(message), proof):
            raise Problem(
                422,
                "invalid-proof",
                "Invalid proof of possession",
                f"the proof is not the signature of {signer}, the account's signer, of its possession message",
            )
    roles = [
        name for name, role in ASSIGNABLE_ROLES.items() if await asyncio.to_thread(client.has_role, body.address, role)
    ]
    with service.sessions() as session, session.begin():
        if session.get(ParticipantRecord, body.address) is not None:
            raise Problem(409, "participant-exists", "Participant exists", f"{body.address} is served here already")
        if session.scalar(select(ParticipantRecord).where(ParticipantRecord.credit_code == body.credit_code)):
            raise Problem(409, "participant-exists", "Participant exists", f"credit code {body.credit_code} is taken")
        if body.login_address is not None and session.scalar(
            select(ParticipantRecord).where(ParticipantRecord.login_address == body.login_address)
        ):
            raise Problem(409, "login-address-taken", "Login address taken", "another participant signs in with it")
        record = ParticipantRecord(
            address=body.address,
            name=body.name,
            credit_code=body.credit_code,
            roles=sorted(roles),
            login_address=body.login_address,
            custody="self",
            signer=signer if signer != body.address else None,
        )
        session.add(record)
        session.flush()
        api_key = issue_api_key(session, body.address)
    stored = service.participant_record(body.address)
    assert stored is not None
    view = await asyncio.to_thread(participant_view, stored, service)
    content = ServedParticipant(participant=view, api_key=api_key, hosted=hosted).model_dump(mode="json")
    return JSONResponse(content, status_code=201, headers={"Location": f"/participants/{body.address}"})


# -- the regulator's gateway: read-only but for freezes ---------------------------------------------------------

REGULATOR_GATEWAY_WRITES: Final = (
    ("POST", re.compile(r"^/auth/(challenge|token)$")),
    ("POST", re.compile(r"^/freezes$")),
    ("DELETE", re.compile(r"^/freezes/[^/]+(/[^/]+)?$")),
    ("POST", re.compile(r"^/gateway/inbox$")),
)
"""The state-changing requests the regulator's gateway takes: signing in, freezing, lifting a freeze, and the
documents peer gateways send it (:mod:`api.routes.docex`: it stores them, it sends nothing)."""

_READS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


class ReadOnlyGatewayMiddleware:
    """On the regulator's gateway, answer 403 ``read-only-gateway`` to any state-changing request but those of
    :data:`REGULATOR_GATEWAY_WRITES`, before authentication or a body is read. Elsewhere it passes everything
    (the gateway's role is read from the running service: the middleware is installed on every application)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in _READS:
            service: LedgerService | None = getattr(scope["app"].state, "ledger", None)
            if service is not None and service.role == "regulator":
                method, path = scope["method"], scope["path"]
                if not any(method == m and pattern.match(path) for m, pattern in REGULATOR_GATEWAY_WRITES):
                    response = problem_response(read_only_gateway(f"{method} {path}"))
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)
