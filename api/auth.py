"""Who is calling: API keys (``Authorization: Bearer scf_...``, stored hashed) or a short-lived JWT obtained
by signing a single-use challenge with the participant's own Ethereum key (EIP-191, ``personal_sign``).

The JWT is HS256 only (the algorithm is pinned when decoding, so ``alg: none`` or a switched algorithm is
refused), signed with a key derived from the master secret, and carries the participant's account as ``sub``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import is_address, to_checksum_address
from fastapi import APIRouter, Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from sqlalchemy import select, update

from api.problems import Problem
from api.service import API_KEY_PREFIX, LedgerService
from api.store import AuthChallengeRecord, ParticipantRecord
from ledger.models import Role

JWT_ALGORITHM = "HS256"
JWT_AUDIENCE = "scf-ledger"


@dataclass(frozen=True)
class Caller:
    """The authenticated participant."""

    address: str
    name: str
    roles: frozenset[str]

    def has(self, *roles: Role) -> bool:
        return any(role.role_name in self.roles for role in roles)

    @property
    def is_operator(self) -> bool:
        return self.has(Role.OPERATOR)

    @property
    def is_regulator(self) -> bool:
        return self.has(Role.REGULATOR)


def service_of(request: Request) -> LedgerService:
    service: LedgerService | None = getattr(request.app.state, "ledger", None)
    if service is None:
        raise Problem(503, "unavailable", "Service unavailable", "the ledger is starting or stopping")
    return service


Service = Annotated[LedgerService, Depends(service_of)]


def _jwt_key(service: LedgerService) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"scf-ledger sign-in tokens").derive(
        service.settings.master_secret.get_secret_value().encode()
    )


def _unauthenticated(detail: str) -> Problem:
    return Problem(401, "unauthenticated", "Authentication required", detail)


def _caller_of(record: ParticipantRecord) -> Caller:
    return Caller(record.address, record.name, frozenset(record.roles))


BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="an API key (`scf_...`) or a sign-in token from POST /auth/token",
)
"""Declares the scheme in the OpenAPI document (so clients and schemathesis know every route that needs it);
:func:`current_caller` reads the header itself, so a missing or malformed one is a 401 problem."""


def current_caller(
    request: Request,
    service: Service,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)] = None,
) -> Caller:
    caller = _authenticate(request, service)
    request.state.caller = caller.address  # for the request's log line
    return caller


def _authenticate(request: Request, service: Service) -> Caller:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthenticated("send `Authorization: Bearer <API key or token>`")
    token = token.strip()
    if token.startswith(API_KEY_PREFIX):
        record = service.participant_by_key(token)
        if record is None:
            raise _unauthenticated("unknown or revoked API key")
        return _caller_of(record)
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            _jwt_key(service),
            algorithms=[JWT_ALGORITHM],
            audience=JWT_AUDIENCE,
            options={"require": ["exp", "iat", "sub", "aud"]},
        )
    except jwt.PyJWTError as exc:
        raise _unauthenticated(f"invalid token: {exc}") from None
    record = service.participant_record(str(claims["sub"]))
    if record is None:
        raise _unauthenticated("the token's participant no longer exists")
    return _caller_of(record)


CurrentCaller = Annotated[Caller, Depends(current_caller)]


def require_role(caller: Caller, *roles: Role) -> None:
    """403 unless ``caller`` holds one of ``roles``."""
    if not caller.has(*roles):
        names = " or ".join(r.role_name for r in roles)
        raise Problem(403, "forbidden-role", "Forbidden", f"this needs the {names} role")


# -- sign-in with an Ethereum key -------------------------------------------------------------------------

router = APIRouter(prefix="/auth", tags=["auth"])


class ChallengeRequest(BaseModel):
    address: str = Field(description="the wallet address registered as the participant's login address")


class Challenge(BaseModel):
    nonce: str
    message: str = Field(description="sign exactly this text with personal_sign (EIP-191)")
    expires_at: datetime


class TokenRequest(BaseModel):
    address: str
    nonce: str = Field(max_length=64)
    signature: str = Field(max_length=200, description="0x-hex 65-byte signature of the challenge message")


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


def challenge_message(address: str, nonce: str, expires_at: datetime) -> str:
    return f"Sign in to scf-ledger\naddress: {address}\nnonce: {nonce}\nexpires: {expires_at.isoformat()}"


def _checksummed(address: str) -> str:
    if not is_address(address):
        raise Problem(422, "validation", "Invalid request", f"{address!r} is not an Ethereum address")
    return str(to_checksum_address(address))


@router.post("/challenge", response_model=Challenge, status_code=201)
def create_challenge(body: ChallengeRequest, service: Service) -> Challenge:
    address = _checksummed(body.address)
    nonce = secrets.token_hex(16)
    expires_at = datetime.now(UTC) + timedelta(seconds=service.settings.challenge_ttl_seconds)
    with service.sessions() as session, session.begin():
        session.add(AuthChallengeRecord(nonce=nonce, address=address, expires_at=expires_at))
    return Challenge(nonce=nonce, message=challenge_message(address, nonce, expires_at), expires_at=expires_at)


@router.post("/token", response_model=Token)
def create_token(body: TokenRequest, service: Service) -> Token:
    address = _checksummed(body.address)
    now = datetime.now(UTC)
    with service.sessions() as session, session.begin():
        challenge = session.get(AuthChallengeRecord, body.nonce, with_for_update=True)
        if challenge is None or challenge.address != address:
            raise _unauthenticated("unknown challenge")
        if challenge.used_at is not None:
            raise _unauthenticated("this challenge was already used")
        expires_at = challenge.expires_at if challenge.expires_at.tzinfo else challenge.expires_at.replace(tzinfo=UTC)
        if expires_at <= now:
            raise _unauthenticated("this challenge has expired")
        # Spent by this attempt, whether or not the signature verifies. A conditional update, so that of
        # concurrent attempts exactly one spends it (SQLite has no SELECT ... FOR UPDATE).
        spent = session.execute(
            update(AuthChallengeRecord)
            .where(AuthChallengeRecord.nonce == body.nonce, AuthChallengeRecord.used_at.is_(None))
            .values(used_at=now)
            .returning(AuthChallengeRecord.nonce)
            .execution_options(synchronize_session=False)
        ).scalar_one_or_none()
        if spent is None:
            raise _unauthenticated("this challenge was already used")
    message = encode_defunct(text=challenge_message(address, body.nonce, expires_at))
    try:
        signer = Account.recover_message(message, signature=body.signature)
    except Exception:
        raise _unauthenticated("the signature does not verify") from None
    if signer != address:
        raise _unauthenticated("the signature is not by this address")
    with service.sessions() as session:
        record = session.execute(
            select(ParticipantRecord).where(ParticipantRecord.login_address == address)
        ).scalar_one_or_none()
    if record is None:
        raise _unauthenticated("no participant signs in with this address")
    ttl = service.settings.token_ttl_seconds
    claims = {"sub": record.address, "aud": JWT_AUDIENCE, "iat": now, "exp": now + timedelta(seconds=ttl)}
    token = jwt.encode(claims, _jwt_key(service), algorithm=JWT_ALGORITHM)
    return Token(access_token=token, expires_in=ttl)
