"""Who is calling: API keys (``Authorization: Bearer scf_...``, stored hashed) or a short-lived JWT obtained
by signing a single-use challenge with the participant's own Ethereum key (EIP-191, ``personal_sign``).

The JWT is HS256 only (the algorithm is pinned when decoding, so ``alg: none`` or a switched algorithm is
refused), signed with a key derived from the current master secret (:attr:`ledger.secrets.MasterSecret.token_key`),
names that secret by its id in the header's ``kid``, and carries the participant's account as ``sub``.

After the master secret changed (``SCF_PREVIOUS_MASTER_SECRETS`` holds the old one), a token signed with the
old one is accepted until the earlier of its own expiry and one token lifetime (``SCF_TOKEN_TTL_SECONDS``) after
this service started: whoever holds the old secret cannot mint tokens that outlive the rotation, whatever
``exp`` they write. Off the local chain a previous secret that is weak or the development default is never
trusted for tokens, and a token under a secret the service does not hold is refused. A token without ``kid``
(issued before tokens had one) is checked against the current secret.

The sign-in routes (``POST /auth/challenge``, ``POST /auth/token``) are rate-limited per client
(``SCF_SIGN_IN_REQUESTS_PER_MINUTE``, :class:`api.edge.RateLimiter`: 429 with ``Retry-After``), and expired
challenges are deleted as new ones are made, so that no client can fill the database with challenges.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import jwt
from eth_account import Account
from eth_account.messages import encode_defunct
from fastapi import APIRouter, Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from sqlalchemy import delete, select, update
from starlette.concurrency import run_in_threadpool

from api.auth_cache import KnownParticipant, NotRemembered
from api.edge import RateLimiter, client_key
from api.problems import Problem, checksummed_address
from api.service import API_KEY_PREFIX, LedgerService
from api.store import AuthChallengeRecord, ParticipantRecord
from ledger.models import Role
from ledger.node import LOCAL_CHAIN_ID
from ledger.secrets import MasterSecret

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


async def _service(request: Request) -> LedgerService:
    # A coroutine, so that FastAPI does not hand it to a worker thread (as it does a plain function).
    return service_of(request)


Service = Annotated[LedgerService, Depends(_service)]


def _token_secret(service: LedgerService, token: str) -> MasterSecret:
    """The master secret whose key must have signed ``token`` (see the module's docstring), or a 401."""
    try:
        secret_id = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError as exc:
        raise _unauthenticated(f"invalid token: {exc}") from None
    ring = service.secrets
    if secret_id is None:
        return ring.current
    secret = ring.get(str(secret_id))
    if secret is None:
        raise _unauthenticated("the token is signed with a key this service does not hold")
    if secret is ring.current:
        return secret
    if not secret.strong and service.settings.chain_id != LOCAL_CHAIN_ID:
        raise _unauthenticated("the token is signed with a previous master secret that is not trusted for tokens")
    if time.time() > service.started_at + service.settings.token_ttl_seconds:
        raise _unauthenticated(
            "the token is signed with a previous master secret; such tokens expired one token lifetime after "
            "the master secret changed: sign in again"
        )
    return secret


def _unauthenticated(detail: str) -> Problem:
    return Problem(401, "unauthenticated", "Authentication required", detail)


def _caller_of(record: KnownParticipant) -> Caller:
    return Caller(record.address, record.name, record.roles)


BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="an API key (`scf_...`) or a sign-in token from POST /auth/token",
)
"""Declares the scheme in the OpenAPI document (so clients and schemathesis know every route that needs it);
:func:`current_caller` reads the header itself, so a missing or malformed one is a 401 problem."""


async def current_caller(
    request: Request,
    service: Service,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)] = None,
) -> Caller:
    try:  # on the event loop when the caller is remembered (api.auth_cache) ...
        caller = _authenticate(request, service, remembered_only=True)
    except NotRemembered:  # ... else the database is read in a worker thread
        caller = await run_in_threadpool(_authenticate, request, service)
    request.state.caller = caller.address  # for the request's log line
    return caller


def _authenticate(request: Request, service: LedgerService, *, remembered_only: bool = False) -> Caller:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthenticated("send `Authorization: Bearer <API key or token>`")
    token = token.strip()
    if token.startswith(API_KEY_PREFIX):
        record = service.participant_of_key(token, remembered_only=remembered_only)
        if record is None:
            raise _unauthenticated("unknown or revoked API key")
        return _caller_of(record)
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            _token_secret(service, token).token_key,
            algorithms=[JWT_ALGORITHM],
            audience=JWT_AUDIENCE,
            options={"require": ["exp", "iat", "sub", "aud"]},
        )
    except jwt.PyJWTError as exc:
        raise _unauthenticated(f"invalid token: {exc}") from None
    record = service.known_participant(str(claims["sub"]), remembered_only=remembered_only)
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


def sign_in_limiter(request: Request) -> RateLimiter:
    """The application's limiter of sign-in requests (made at start-up; here for an application whose
    lifespan did not run)."""
    state = request.app.state
    limiter: RateLimiter | None = getattr(state, "sign_in_limiter", None)
    if limiter is None:
        limiter = state.sign_in_limiter = RateLimiter(service_of(request).settings.sign_in_requests_per_minute)
    return limiter


def limit_sign_in(request: Request) -> None:
    """429 when this client sent too many sign-in requests (challenges and tokens together)."""
    client = client_key(request.client.host if request.client else None)
    refused = sign_in_limiter(request).refused(client, "sign-in requests")
    if refused is not None:
        raise refused


SignInLimit = Depends(limit_sign_in)

_TOO_MANY: dict[int | str, dict[str, Any]] = {
    429: {
        "description": "too many sign-in requests from this client (see `Retry-After`)",
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}},
    }
}


@router.post("/challenge", response_model=Challenge, status_code=201, dependencies=[SignInLimit], responses=_TOO_MANY)
def create_challenge(body: ChallengeRequest, service: Service) -> Challenge:
    """Sign-in, step 1, without a key: a one-time challenge for a participant's login address, to be signed with
    that wallet (EIP-191) and sent to `POST /auth/token` before it expires."""
    address = checksummed_address(body.address)
    nonce = secrets.token_hex(16)
    now = datetime.now(UTC)
    expires_at = now + timedelta(seconds=service.settings.challenge_ttl_seconds)
    with service.sessions() as session, session.begin():
        session.execute(delete(AuthChallengeRecord).where(AuthChallengeRecord.expires_at < now))
        session.add(AuthChallengeRecord(nonce=nonce, address=address, expires_at=expires_at))
    return Challenge(nonce=nonce, message=challenge_message(address, nonce, expires_at), expires_at=expires_at)


@router.post("/token", response_model=Token, dependencies=[SignInLimit], responses=_TOO_MANY)
def create_token(body: TokenRequest, service: Service) -> Token:
    """Sign-in, step 2: the signed challenge for a bearer token of the participant whose login address signed it
    (401 for an unknown, used or expired challenge, or a signature of another key)."""
    address = checksummed_address(body.address)
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
    secret = service.secrets.current
    token = jwt.encode(claims, secret.token_key, algorithm=JWT_ALGORITHM, headers={"kid": secret.id})
    return Token(access_token=token, expires_in=ttl)
