"""Participants (operator), their API keys, credit lines (financier or operator → core firm), and each
participant's daily statement (deposit tokens and receivables held, from :mod:`ledger.index.statements`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time as pytime
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from eth_utils import keccak, to_checksum_address
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.actions import LINKS, Action, Call, Link, Prepare, install
from api.auth import Caller, CurrentCaller, Service, require_role
from api.exports import ExportFormat, FormatQuery, Table, columns_of, export_response
from api.models import (
    CreditLineView,
    Page,
    ParticipantView,
    Statement,
    StatementAccount,
    StatementLine,
    StatementMovement,
)
from api.operations import OperationView, perform
from api.problems import PROBLEM_JSON, Problem
from api.routes.common import (
    ASSIGNABLE_ROLES,
    Address,
    Amount,
    IsoDate,
    ListWindow,
    SortKey,
    current_signer,
    not_found,
    paged,
    paging,
    participant_view,
)
from api.service import LedgerService, issue_api_key
from api.signing import ACT_TTL_SECONDS, act_problem
from api.store import ApiKeyRecord, ParticipantRecord
from ledger import acts
from ledger.identifiers import InvalidIdentifier, validate_credit_code
from ledger.index.models import ParticipantRow
from ledger.index.statements import Account, deposit_account, indexed_block, receivables_account
from ledger.models import Role
from ledger.pipeline import Operation

logger = logging.getLogger("api")
router = APIRouter(tags=["participants"])


class ParticipantCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200, examples=["Changchun Seat Systems Co., Ltd."])
    credit_code: str = Field(min_length=18, max_length=18, description="unified social credit code (GB 32100)")
    roles: list[str] = Field(min_length=1, max_length=6, examples=[["supplier"]])
    login_address: Address | None = Field(None, description="a wallet of the participant's own, for sign-in")
    address: Address | None = Field(
        None,
        description="self-custody: the participant's own account (its key's address, or a contract account such "
        "as a Safe), whose key the service never sees; omit for a hosted account (a key in the service's keystore)",
    )
    proof: str | None = Field(
        None,
        pattern=r"^0x([0-9a-fA-F]{2})+$",
        max_length=2 + 2 * 65 * 16,
        description="with `address`: the account's signature (EIP-191 personal_sign, or ERC-1271 for a contract "
        "account) of the text `GET /participants/possession-message` gives for it",
    )

    @field_validator("credit_code")
    @classmethod
    def _credit_code(cls, value: str) -> str:
        try:
            return validate_credit_code(value)
        except InvalidIdentifier as exc:
            raise ValueError(str(exc)) from None

    @field_validator("roles")
    @classmethod
    def _roles(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(ASSIGNABLE_ROLES))
        if unknown:
            raise ValueError(f"unknown roles {unknown}; choose from {sorted(ASSIGNABLE_ROLES)}")
        return sorted(set(value))


class CreatedParticipant(BaseModel):
    participant: ParticipantView
    api_key: str = Field(description="shown once; only its hash is stored")
    operation_id: str
    status: str


@router.post("/participants", status_code=201, response_model=CreatedParticipant)
async def create_participant(
    body: ParticipantCreate, request: Request, service: Service, caller: CurrentCaller
) -> JSONResponse:
    """Onboard a participant and give it a first API key (for the service; its acts are another matter).

    Hosted (no `address`): an account whose key the service creates in its encrypted keystore and signs with;
    its roles registered on chain by the operator, gas money sent where the chain charges for gas, and the
    ledger contracts allowed to draw its cash legs. Self-custody (`address` and `proof`): the participant's own
    account, which proves it holds the key by signing the text of `GET /participants/possession-message`; it
    is registered as signing its own acts, and the service never holds a key of it (it then signs its
    settlement approvals itself: `POST /settlement-approvals`).

    The `regulator` role is not the operator's to give: the operator registers the account and a regulator admits
    it. Only a service that hosts a regulator's key (the local chain's first regulator, named at deployment) does
    both here; elsewhere the registry's refusal is the answer, before anything is stored: 403
    `urn:scf:problem:contract:RegistryRoleNotOperatorManaged`."""
    require_role(caller, Role.OPERATOR)
    self_custody = body.address is not None
    admitting = await _admitting_regulator(service, body) if "regulator" in body.roles else None
    if self_custody:
        await _check_possession(service, body)
    with service.sessions() as session:
        taken = session.execute(
            select(ParticipantRecord).where(ParticipantRecord.credit_code == body.credit_code)
        ).scalar_one_or_none()
        if taken is not None:
            raise Problem(409, "participant-exists", "Participant exists", f"credit code {body.credit_code} is taken")
        if (
            body.login_address is not None
            and session.execute(
                select(ParticipantRecord).where(ParticipantRecord.login_address == body.login_address)
            ).scalar_one_or_none()
        ):
            raise Problem(409, "login-address-taken", "Login address taken", "another participant signs in with it")
        if body.address is not None and session.get(ParticipantRecord, body.address) is not None:
            raise Problem(409, "participant-exists", "Participant exists", f"{body.address} is onboarded already")
    address = body.address if body.address is not None else await asyncio.to_thread(service.keystore.create)
    identity = keccak(text=f"{body.credit_code}|{body.name}")
    # The regulator role is granted by the admitting regulator once the account is registered, never by the operator.
    roles = [ASSIGNABLE_ROLES[r] for r in body.roles if ASSIGNABLE_ROLES[r] is not Role.REGULATOR]
    with service.sessions() as session, session.begin():
        session.add(
            ParticipantRecord(
                address=address,
                name=body.name,
                credit_code=body.credit_code,
                roles=body.roles,
                login_address=body.login_address,
                custody="self" if self_custody else "hosted",
            )
        )
        session.flush()
        api_key = issue_api_key(session, address)
    operator = service.operator.address
    if self_custody:
        return await _register_self_custody(request, service, caller, address, identity, roles, api_key, admitting)
    if service.settings.gas_allowance_wei:
        gas = await service.client.send_ether(operator, address, service.settings.gas_allowance_wei)
        await service.client.outcome(gas, timeout=service.settings.max_wait_seconds)
    # Let the ledger contracts draw the participant's cash legs (repayments, funding, loan repayments).
    approvals = [await service.client.approve_settlement(address, c) for c in ("receivables", "receipts")]
    registration: list[Operation] = []

    async def register(op_id: str | None) -> Operation:
        registration.append(await service.client.register_participant(operator, address, identity, roles, op_id))
        return registration[-1]

    response = await perform(request, service, caller, "participant.register", None, register)
    if response.status_code == 200:
        for approval in approvals:
            await service.client.outcome(approval, timeout=service.settings.max_wait_seconds)
    await _admit(service, admitting, address, registration, response)
    content: dict[str, Any] = {
        "participant": participant_view(service.participant_record(address), service).model_dump(),  # type: ignore[arg-type]
        "api_key": api_key,
        "operation_id": response.headers.get("location", "").removeprefix("/operations/"),
        "status": "confirmed" if response.status_code == 200 else "pending",
    }
    return JSONResponse(content, status_code=201, headers={"Location": f"/participants/{address}"})


async def _admitting_regulator(service: LedgerService, body: ParticipantCreate) -> str:
    """The hosted regulator that admits the regulator ``body`` onboards. Without one, the registry's own refusal
    of the operator granting the regulator role (pre-flighted, nothing sent or stored), which the problem
    handler answers by its name."""
    if service.regulator is not None:
        return str(service.regulator.address)
    stand_in = body.address or str(to_checksum_address(keccak(text=f"onboarding {body.credit_code}")[-20:]))
    identity = keccak(text=f"{body.credit_code}|{body.name}")
    roles = [ASSIGNABLE_ROLES[r] for r in body.roles]
    check = service.client.check
    await asyncio.to_thread(check, "participant.register", service.operator.address, [stand_in, identity, roles])
    # Not reached while the registry refuses the role to the operator; should it ever not, refuse here all the same.
    raise Problem(403, "forbidden-role", "Forbidden", "only a regulator admits a regulator")


_ADMISSIONS: set[asyncio.Task[None]] = set()
"""Admissions of regulators still waiting for their registration (a request that did not wait for it)."""


async def _admit(
    service: LedgerService, regulator: str | None, account: str, registration: list[Operation], response: Response
) -> None:
    """Once ``account``'s registration is on chain, have ``regulator`` (hosted) admit it as a regulator: the
    registry lets only a regulator grant the role. A confirmed registration (the request waited) is admitted
    within the request, and a refusal is its answer; a pending one is admitted when it is confirmed."""
    if regulator is None or not registration or response.status_code not in (200, 202):
        return
    admission = asyncio.create_task(_admit_once_registered(service, regulator, account, registration[-1]))
    _ADMISSIONS.add(admission)
    admission.add_done_callback(_admitted)
    if response.status_code == 200:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(admission), service.settings.max_wait_seconds)


async def _admit_once_registered(service: LedgerService, regulator: str, account: str, registration: Operation) -> None:
    await service.client.outcome(registration, timeout=None)
    await service.client.outcome(await service.client.admit_regulator(regulator, account), timeout=None)


def _admitted(admission: asyncio.Task[None]) -> None:
    _ADMISSIONS.discard(admission)
    if not admission.cancelled() and admission.exception() is not None:
        logger.error("a regulator's admission failed: %s", admission.exception())


async def _check_possession(service: LedgerService, body: ParticipantCreate) -> None:
    """422 unless ``body.proof`` is the account's signature of its possession message."""
    assert body.address is not None
    if body.proof is None:
        raise Problem(422, "proof-required", "Proof of possession required", _POSSESSION_HINT)
    message = acts.possession_message(
        body.address, service.client.chain_id, service.client.address_of("registry"), body.credit_code
    )
    proof = bytes.fromhex(body.proof[2:])
    if not await asyncio.to_thread(service.client.holds_key, body.address, acts.possession_hash(message), proof):
        raise Problem(
            422,
            "invalid-proof",
            "Invalid proof of possession",
            f"the proof is not {body.address}'s signature of the possession message; " + _POSSESSION_HINT,
        )


_POSSESSION_HINT = (
    "sign the text of GET /participants/possession-message?address=…&credit_code=… with the account's key "
    "(personal_sign) and send it as `proof`"
)


async def _register_self_custody(
    request: Request,
    service: LedgerService,
    caller: Caller,
    address: str,
    identity: bytes,
    roles: Sequence[Role],
    api_key: str,
    admitting: str | None,
) -> JSONResponse:
    operator = service.operator.address
    registration: list[Operation] = []

    async def register(op_id: str | None) -> Operation:
        registration.append(
            await service.client.register_self_custody(operator, address, identity, roles, operation_id=op_id)
        )
        return registration[-1]

    response = await perform(request, service, caller, "participant.register-self-custody", None, register)
    await _admit(service, admitting, address, registration, response)
    content: dict[str, Any] = {
        "participant": participant_view(service.participant_record(address), service).model_dump(),  # type: ignore[arg-type]
        "api_key": api_key,
        "operation_id": response.headers.get("location", "").removeprefix("/operations/"),
        "status": "confirmed" if response.status_code == 200 else "pending",
    }
    return JSONResponse(content, status_code=201, headers={"Location": f"/participants/{address}"})


class PossessionMessage(BaseModel):
    message: str = Field(
        description="sign exactly this text with personal_sign (EIP-191), or, for a contract "
        "account, have it accept the text's EIP-191 hash (ERC-1271)"
    )
    hash: str = Field(description="the text's EIP-191 hash")


@router.get("/participants/possession-message", response_model=PossessionMessage)
def possession_message(
    service: Service,
    caller: CurrentCaller,
    address: Annotated[Address, Query(description="the participant's own account")],
    credit_code: Annotated[str, Query(min_length=18, max_length=18)],
) -> PossessionMessage:
    """The text a self-custody participant signs to prove it holds its account's key (it names the account, this
    chain, this ledger's registry and the participant's credit code)."""
    try:
        code = validate_credit_code(credit_code)
    except InvalidIdentifier as exc:
        raise Problem(422, "invalid-credit-code", "Invalid credit code", str(exc)) from None
    message = acts.possession_message(address, service.client.chain_id, service.client.address_of("registry"), code)
    return PossessionMessage(message=message, hash="0x" + acts.possession_hash(message).hex())


LINKS[("post", "/participants")] = [
    Link(name, method, path, {parameter: "$response.body#/participant/id"})
    for name, method, path, parameter in (
        ("GetParticipant", "get", "/participants/{participant_id}", "participant_id"),
        ("SuspendParticipant", "post", "/participants/{participant_id}/suspend", "participant_id"),
        ("ReinstateParticipant", "post", "/participants/{participant_id}/reinstate", "participant_id"),
        ("GetCreditLine", "get", "/credit-lines/{core_firm}", "core_firm"),
    )
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _microseconds(value: datetime) -> int:
    """An onboarding time as microseconds since 1970 (SQLite hands the stored UTC time back without its zone)."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return (aware - _EPOCH) // timedelta(microseconds=1)


def _instant(microseconds: int) -> datetime:
    return _EPOCH + timedelta(microseconds=microseconds)


def _account_number(address: str) -> int:
    return int(address, 16)


def _account(number: int) -> str:
    if number >= 2**160:
        raise ValueError("not an account")
    return str(to_checksum_address(number.to_bytes(20, "big")))


#: Onboarding order; two participants onboarded in the same microsecond by their accounts.
PARTICIPANT_ORDER = (
    SortKey(ParticipantRecord.created_at, to_cursor=_microseconds, from_cursor=_instant),
    SortKey(ParticipantRecord.address, to_cursor=_account_number, from_cursor=_account),
)


def _listed(record: ParticipantRecord, indexed: ParticipantRow | None) -> ParticipantView:
    return ParticipantView(
        id=record.address,
        name=record.name,
        credit_code=record.credit_code,
        roles=list(record.roles),
        login_address=record.login_address,
        custody=record.custody,
        signer=record.signer,
        status="pending" if indexed is None else indexed.status.name.lower(),
        frozen=None if indexed is None else indexed.frozen,
    )


def _listed_batch(
    session: Session, rows: Sequence[ParticipantRecord], service: LedgerService | None = None
) -> list[ParticipantView]:
    accounts = [row.address for row in rows]
    indexed = {
        row.account: row for row in session.scalars(select(ParticipantRow).where(ParticipantRow.account.in_(accounts)))
    }
    views = [_listed(row, indexed.get(row.address)) for row in rows]
    if service is not None:
        for row, view in zip(rows, views, strict=True):
            if row.custody == "self":  # its signer as on chain now (one read per self-custody participant)
                view.signer = current_signer(row, service)
    return views


@router.get("/participants", response_model=Page[ParticipantView])
@paging
def list_participants(service: Service, caller: CurrentCaller, window: ListWindow) -> Page[ParticipantView] | Response:
    """Participants in the order they were onboarded: all of them to the operator and the regulator, the caller
    alone to anyone else. `status` (active or suspended) and `frozen` are read from the index of the chain, like
    every list's: `pending` until the registration is indexed. A gateway lists the participants it serves (on a
    member's gateway, to its own account too: docs/consortium.md)."""
    query = select(ParticipantRecord)
    if not (caller.is_operator or caller.is_regulator or caller.address == service.operator.address):
        query = query.where(ParticipantRecord.address == caller.address)
    return paged(
        service,
        query,
        PARTICIPANT_ORDER,
        window,
        ParticipantView,
        convert=lambda session, rows: _listed_batch(session, rows, service),
    )


def _participant_or_404(service: LedgerService, participant_id: str) -> ParticipantRecord:
    record = service.participant_record(participant_id)
    if record is None:
        try:
            record = service.participant_record(str(to_checksum_address(participant_id)))
        except ValueError:
            record = None
    if record is None:
        raise not_found(f"participant {participant_id}")
    return record


def _ledger_account_or_404(service: LedgerService, participant_id: str) -> str:
    """The account of a participant of the ledger, whether this gateway serves it or not (another gateway of the
    consortium may: the index, which holds the whole chain, knows it)."""
    try:
        address = str(to_checksum_address(participant_id))
    except ValueError:
        raise not_found(f"participant {participant_id}") from None
    with service.sessions() as session:
        if session.get(ParticipantRow, address) is None and session.get(ParticipantRecord, address) is None:
            raise not_found(f"participant {participant_id}")
    return address


def _may_see(caller: Caller, participant: str) -> bool:
    return caller.address == participant or caller.is_operator or caller.is_regulator


@router.get("/participants/me", response_model=ParticipantView)
def get_myself(service: Service, caller: CurrentCaller) -> ParticipantView:
    """The caller itself: who an API key or sign-in token speaks for (the portal's first question)."""
    return participant_view(_participant_or_404(service, caller.address), service)


@router.get("/participants/{participant_id}", response_model=ParticipantView)
def get_participant(participant_id: str, service: Service, caller: CurrentCaller) -> ParticipantView:
    """A participant by its account (any spelling of the address), with its status on chain (`pending` while
    its registration is in flight): to the participant itself, the operator and the regulator (404 to anyone
    else, as for an account that is no participant)."""
    record = _participant_or_404(service, participant_id)
    if not _may_see(caller, record.address):
        raise not_found(f"participant {participant_id}")
    return participant_view(record, service)


def _operator_acts(operation: str) -> Prepare:
    """The operator suspends or reinstates a participant (signed with the operator's key)."""

    def prepare(service: LedgerService, caller: Caller, body: None, participant_id: str) -> Call:
        require_role(caller, Role.OPERATOR)
        record = _participant_or_404(service, participant_id)
        return Call(operation, service.operator.address, {"account": record.address})

    return prepare


class NewKey(BaseModel):
    api_key: str
    revoked: int = Field(description="how many earlier keys were revoked")


@router.post("/participants/{participant_id}/keys", status_code=201, response_model=NewKey)
def rotate_key(participant_id: str, service: Service, caller: CurrentCaller) -> NewKey:
    """Issue a new API key and revoke the participant's earlier ones (the operator's own included): the operator,
    or on a member's gateway its own account, for the participants it serves (docs/consortium.md)."""
    if caller.address != service.operator.address:
        require_role(caller, Role.OPERATOR)
    record = _participant_or_404(service, participant_id)
    with service.sessions() as session, session.begin():
        revoked = session.execute(  # type: ignore[attr-defined]
            update(ApiKeyRecord)
            .where(ApiKeyRecord.participant == record.address, ApiKeyRecord.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        ).rowcount
        key = issue_api_key(session, record.address)
    return NewKey(api_key=key, revoked=int(revoked or 0))


# -- self-custody: switching, key rotation, recovery of a lost key ------------------------------------------


class SelfCustodySwitch(BaseModel):
    signer: Address = Field(
        description="the key that will sign the participant's acts: the participant's own, never seen by the service "
        "(it may differ from the account, which keeps its address and everything it holds)"
    )
    proof: str = Field(
        pattern=r"^0x([0-9a-fA-F]{2})+$",
        max_length=2 + 2 * 65 * 16,
        description="`signer`'s signature (EIP-191 personal_sign, or ERC-1271 for a contract account) of the text "
        "`GET /participants/possession-message` gives for the participant's *account* and credit code",
    )


@router.post(
    "/participants/{participant_id}/self-custody",
    status_code=202,
    response_model=OperationView,
    responses={200: {"model": OperationView, "description": "the operation, final"}},
)
async def adopt_self_custody(
    participant_id: str, body: SelfCustodySwitch, request: Request, service: Service, caller: CurrentCaller
) -> JSONResponse:
    """Switch a hosted participant to self-custody (operator): from now on it signs its own acts with `signer`.

    `proof` is `signer`'s signature of the possession message of the participant's account (the message names the
    account, this chain, the registry and the credit code; the new key signs it, so that a proof for one account
    never serves another). The registry's `adoptSelfCustody` marks the account self-custody: its own transactions
    (signed with the hosted key) are refused from then on (`RegistrySignedActsOnly`). Once that is confirmed, the
    hosted key is erased from the service's keystore and the participant's requests answer 428 with the act to
    sign. There is no way back: a self-custody participant answers 409."""
    require_role(caller, Role.OPERATOR)
    record = await run_in_threadpool(_participant_or_404, service, participant_id)
    account = record.address
    if account == service.operator.address:
        raise Problem(409, "operator-is-hosted", "The operator stays hosted", "the operator's key relays every act")
    if record.custody == "self":
        raise Problem(409, "already-self-custody", "Already self-custody", f"{account} signs its own acts already")
    if await run_in_threadpool(service.client.is_self_custody, account):
        # Switched on chain by an earlier request that did not see its confirmation: finish it here.
        await run_in_threadpool(_take_custody, service, account, service.client.signer_of(account))
        raise Problem(409, "already-self-custody", "Already self-custody", f"{account} signs its own acts already")
    message = acts.possession_message(
        account, service.client.chain_id, service.client.address_of("registry"), record.credit_code
    )
    proof = bytes.fromhex(body.proof[2:])
    if not await run_in_threadpool(service.client.holds_key, body.signer, acts.possession_hash(message), proof):
        raise Problem(
            422,
            "invalid-proof",
            "Invalid proof of possession",
            f"the proof is not {body.signer}'s signature of the possession message of {account} (GET "
            f"/participants/possession-message?address={account}&credit_code={record.credit_code})",
        )
    response = await perform(
        request,
        service,
        caller,
        "participant.adopt-self-custody",
        body,
        lambda op_id: service.client.adopt_self_custody(
            service.operator.address, account, body.signer, operation_id=op_id
        ),
    )
    if response.status_code in (200, 202):
        operation_id = response.headers.get("location", "").removeprefix("/operations/")
        # The hosted key goes only once the chain no longer takes it: wait for the switch even when the client
        # did not ask to (a request that gives up first leaves it to the next, which finishes it above).
        with contextlib.suppress(Exception):
            await service.pipeline.wait(operation_id, service.settings.max_wait_seconds)
        if await run_in_threadpool(service.client.is_self_custody, account):
            await run_in_threadpool(_take_custody, service, account, body.signer)
    return response


def _take_custody(service: LedgerService, account: str, signer: str) -> None:
    """The service's side of a switch confirmed on chain: the record says self-custody, the hosted key is gone."""
    with service.sessions() as session, session.begin():
        record = session.get(ParticipantRecord, account)
        assert record is not None
        record.custody = "self"
        record.signer = None if signer == account else signer
    service.keystore.erase(account)


class KeyRotationRequest(BaseModel):
    new_signer: Address = Field(description="the key that will sign the caller's acts from now on")


class SignatureRequired(BaseModel):
    """The act to sign (an ``application/problem+json`` answer, status 428)."""

    type: str = Field(examples=["urn:scf:problem:signature-required"])
    title: str
    status: int
    detail: str | None = None
    typed_data: dict[str, Any] = Field(description="the EIP-712 document to sign (eth_signTypedData_v4)")
    digest: str = Field(description="its EIP-712 hash")
    sentence: str = Field(description="the act in words")
    sign_at: str = Field(description="where to POST the signed act")


class ProblemJSONResponse(JSONResponse):
    media_type = PROBLEM_JSON


@router.post(
    "/participants/me/key-rotation",
    status_code=428,
    response_model=SignatureRequired,
    response_class=ProblemJSONResponse,
    response_description="the RotateKey act to sign",
)
async def rotate_signer(body: KeyRotationRequest, service: Service, caller: CurrentCaller) -> SignatureRequired:
    """A self-custody participant replaces its key: the answer is always `428 signature-required` with the
    `RotateKey` act, which the participant signs with its *current* key and posts to `/acts` (operation kind
    `key.rotate`). From then on only `new_signer`'s signatures are accepted. A hosted participant has no key of
    its own to rotate (409)."""
    if not service.is_self_custody(caller.address):
        raise Problem(
            409,
            "hosted-participant",
            "Hosted participant",
            "the service signs this participant's acts; only a self-custody participant rotates its key",
        )
    account = caller.address
    current = await run_in_threadpool(service.client.signer_of, account)
    if body.new_signer == current:
        raise Problem(422, "same-signer", "Same signer", f"{current} signs this participant's acts already")
    nonce = await run_in_threadpool(service.act_nonces.next, service.client, account)
    document = await run_in_threadpool(
        lambda: service.client.rotation_document(
            account, body.new_signer, nonce=nonce, deadline=int(pytime.time()) + ACT_TTL_SECONDS
        )
    )
    raise act_problem(document)


class KeyRecovery(BaseModel):
    signer: Address = Field(description="the participant's new key, replacing the lost one")


def _recovery(operation: str, role: Role) -> Prepare:
    def prepare(service: LedgerService, caller: Caller, body: KeyRecovery, participant_id: str) -> Call:
        require_role(caller, role)
        record = _participant_or_404(service, participant_id)
        if record.custody != "self":
            raise Problem(
                409, "hosted-participant", "Hosted participant", f"{record.address}'s key is in the service's keystore"
            )
        return Call(operation, caller.address, {"account": record.address, "signer": body.signer})

    return prepare


class CreditLineCreate(BaseModel):
    core_firm: Address
    limit: Amount = Field(description="the grantor's grant to the core firm, fen; replaces the earlier grant")


def _set_credit_line(service: LedgerService, caller: Caller, body: CreditLineCreate) -> Call:
    require_role(caller, Role.FINANCIER, Role.OPERATOR)
    grantor = service.operator.address if caller.is_operator else caller.address
    return Call("credit-line.set", grantor, {"core_firm": body.core_firm, "grant": body.limit})


ACTIONS = (
    Action(
        "POST",
        "/participants/{participant_id}/suspend",
        "suspend_participant",
        _operator_acts("participant.suspend"),
        "participant.suspend",
        params={"participant_id": str},
    ),
    Action(
        "POST",
        "/participants/{participant_id}/reinstate",
        "reinstate_participant",
        _operator_acts("participant.reinstate"),
        "participant.reinstate",
        params={"participant_id": str},
    ),
    Action(
        "POST",
        "/participants/{participant_id}/key-recovery",
        "propose_key_recovery",
        _recovery("key.recovery.propose", Role.OPERATOR),
        "key.recovery.propose",
        KeyRecovery,
        params={"participant_id": str},
        description="Propose a new key for a self-custody participant whose key is lost (operator). It takes "
        "effect only when a regulator approves it (`POST /participants/{participant_id}/key-recovery/approve`).",
    ),
    Action(
        "POST",
        "/participants/{participant_id}/key-recovery/approve",
        "approve_key_recovery",
        _recovery("key.recovery.approve", Role.REGULATOR),
        "key.recovery.approve",
        KeyRecovery,
        params={"participant_id": str},
        description="Approve the operator's proposed key for a self-custody participant (regulator; never the "
        "proposer): the new key replaces the lost one, whose signatures are refused from then on. The "
        "`KeyRecovered` event names the operator who proposed and the regulator who approved.",
    ),
    Action(
        "POST",
        "/credit-lines",
        "set_credit_line",
        _set_credit_line,
        "credit-line.set",
        CreditLineCreate,
        description="Set the caller's credit grant to a core firm (a financier's own; the operator's, signed with the "
        "operator's key); it replaces the grantor's earlier grant.",
    ),
)
install(router, ACTIONS)


@router.get("/credit-lines/{core_firm}", response_model=CreditLineView)
def get_credit_line(core_firm: str, service: Service, caller: CurrentCaller) -> CreditLineView:
    """A core firm's credit line as on chain now (the financiers' grants, what its confirmed invoices use, what
    is left), to any participant: financiers weigh it before they finance the core firm's invoices."""
    line = service.client.credit_line(_ledger_account_or_404(service, core_firm))
    return CreditLineView(core_firm=line.core_firm, limit=line.limit, used=line.used, available=line.available)


# -- daily statements ---------------------------------------------------------------------------------------------

FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(9998, 12, 31)


def day_bounds(day: date, zone: ZoneInfo) -> tuple[int, int]:
    """The unix seconds of ``day``'s first second in ``zone`` and of the next day's (exclusive)."""
    start = datetime.combine(day, time(0, 0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=zone)
    return int(start.timestamp()), int(end.timestamp())


def _account_view(account: Account) -> StatementAccount:
    balance = account.opening
    movements = []
    for m in account.movements:
        balance += m.amount
        movements.append(
            StatementMovement(
                time=m.time,
                block_number=m.block_number,
                log_index=m.log_index,
                tx_hash=m.tx_hash,
                kind=m.kind,
                counterparty=m.counterparty,
                amount=m.amount,
                balance=balance,
                reference=m.reference,
                piece_id=m.piece_id,
                invoice_id=m.invoice_id,
            )
        )
    return StatementAccount(opening=account.opening, movements=movements, closing=balance)


def _lines(statement: Statement) -> Iterator[dict[str, Any]]:
    accounts: tuple[tuple[Literal["deposits", "receivables"], StatementAccount], ...] = (
        ("deposits", statement.deposits),
        ("receivables", statement.receivables),
    )
    for name, account in accounts:
        lines = [StatementLine(account=name, kind="opening", time=statement.from_time, balance=account.opening)]
        lines += [StatementLine(account=name, **m.model_dump()) for m in account.movements]
        moved = sum(m.amount for m in account.movements)
        lines.append(
            StatementLine(account=name, kind="closing", time=statement.to_time, amount=moved, balance=account.closing)
        )
        yield from (line.model_dump(mode="json") for line in lines)


@router.get("/participants/{participant_id}/statement", response_model=Statement)
def daily_statement(
    participant_id: str,
    service: Service,
    caller: CurrentCaller,
    day: Annotated[IsoDate, Query(alias="date", description="the calendar day (YYYY-MM-DD) in the report time zone")],
    export: FormatQuery = ExportFormat.JSON,
) -> Statement | Response:
    """A participant's statement for one calendar day of the report time zone (`SCF_REPORT_TIME_ZONE`, China
    Standard Time by default), amounts in fen: for the deposit token and for receivables held (the value of its
    pieces), the opening balance, each movement (time, block, transaction, kind, counterparty, signed amount,
    balance after it) and the closing balance, with `opening + sum(amounts) = closing` to the fen. Read from the
    index up to `indexed_block`: the closing balance of a day that is over is the balance on chain after the day's
    last block; of today, the balance at `indexed_block`. To the participant itself, the operator and the
    regulator (404 to anyone else, as for an account that is no participant).

    As a file (`format=csv` or `xlsx`): a row per account's opening, per movement (with the balance after it)
    and per account's closing (its `amount` the sum of the movements), no totals row (docs/reports.md)."""
    record = _participant_or_404(service, participant_id)
    if not _may_see(caller, record.address):
        raise not_found(f"participant {participant_id}")
    if not FIRST_DAY <= day <= LAST_DAY:
        raise Problem(422, "validation", "Invalid request", f"a statement's date is from {FIRST_DAY} to {LAST_DAY}")
    zone = ZoneInfo(service.settings.report_time_zone)
    start, end = day_bounds(day, zone)
    with service.sessions() as session:
        through = indexed_block(session)
        deposits = deposit_account(session, record.address, start, end, -1 if through is None else through)
        receivables = receivables_account(session, record.address, start, end, -1 if through is None else through)
    statement = Statement(
        participant=record.address,
        date=day,
        time_zone=service.settings.report_time_zone,
        currency="CNY",
        from_time=start,
        to_time=end,
        indexed_block=through,
        deposits=_account_view(deposits),
        receivables=_account_view(receivables),
    )
    if export is ExportFormat.JSON:
        return statement
    name = f"statement-{record.address}-{day.isoformat()}"
    table = Table("statement", columns_of(StatementLine), _lines(statement), totals=False)
    return export_response(export, name, [table])
