"""The signed path of a state-changing request: what a self-custody caller is asked to sign.

A self-custody participant's key is not in the service's keystore, so the service cannot send its acts. When
such a caller asks for an operation, the route answers ``428 Precondition Required`` (problem
``urn:scf:problem:signature-required``) with the act to sign: the EIP-712 document (``typed_data``, what
``eth_signTypedData_v4`` takes), its ``digest``, and the act in words (``sentence``). The caller signs it
with its own key (a wallet, ``scf client``, a Safe's owners) and posts it to ``POST /acts``, which pre-flights
and relays it like any operation (202 / ``Prefer: wait``, ``Idempotency-Key``, problems).

Nonces: each act takes one from its account's unordered nonce space (a bitmap per word of 256 on chain). The
service hands out the lowest nonce of the account's current word that is neither used on chain nor handed
out in the last :data:`ACT_TTL_SECONDS` (an act signed and not yet relayed), so acts prepared together can be
signed and relayed in any order, and most nonces land in a storage word already written (about 17,000 gas
cheaper than a fresh one). The reservations are rows of the service's database, so the processes of one
service (``SCF_WORKERS``) never hand out a nonce twice; two gateways with databases of their own may (the
second act relayed is refused ``SignedActsNonceUsed``, and its caller asks for the act again).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from eth_account.signers.local import LocalAccount
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from api.problems import Problem
from api.store import ActNonceReservation
from ledger import acts
from ledger.client import LedgerClient
from ledger.pipeline import Operation

if TYPE_CHECKING:
    from api.actions import Call
    from api.service import LedgerService

ACT_TTL_SECONDS: Final = 3600
"""How long an act handed out to sign stays valid (its deadline), and its nonce reserved."""


class NonceAllocator:
    """Hands out unordered nonces per account (see the module's docstring).

    With ``sessions`` (the service's database), a nonce is reserved by a row of ``act_nonce_reservations``
    (:class:`api.store.ActNonceReservation`) whose primary key is (account, nonce): every service process on that
    database sees the others' reservations, and two that pick the same nonce at the same moment cannot both
    insert it (the second looks again). Without, reservations are this process's own."""

    def __init__(self, sessions: sessionmaker[Session] | None = None) -> None:
        self._sessions = sessions
        self._lock = threading.Lock()
        self._reserved: dict[str, dict[int, float]] = {}
        self._word: dict[str, int] = {}

    def next(self, client: LedgerClient, account: str) -> int:
        now = time.time()
        word = self._word.get(account, 0)
        while True:
            bitmap = client.nonce_bitmap(account, word)
            free = acts.next_nonce(bitmap, word, self._taken(account, word, now))
            if free is None:
                word += 1
            elif self._reserve(account, free, now):
                self._word[account] = word
                return free

    def _taken(self, account: str, word: int, now: float) -> set[int]:
        """The nonces of ``word`` reserved for ``account`` and not lapsed."""
        if self._sessions is None:
            with self._lock:
                reserved = self._reserved.setdefault(account, {})
                for lapsed in [n for n, until in reserved.items() if until < now]:
                    del reserved[lapsed]
                return set(reserved)
        with self._sessions() as session:
            rows = session.scalars(
                select(ActNonceReservation.nonce).where(
                    ActNonceReservation.account == account,
                    ActNonceReservation.nonce.between(word << 8, (word << 8) | 0xFF),
                    ActNonceReservation.expires_at >= datetime.fromtimestamp(now, UTC),
                )
            )
            return set(rows)

    def _reserve(self, account: str, nonce: int, now: float) -> bool:
        """Reserve ``nonce`` for ``account`` until the act's deadline; False when another process has just taken
        it. Lapsed reservations of the account are dropped in the same transaction."""
        until = now + ACT_TTL_SECONDS
        if self._sessions is None:
            with self._lock:
                reserved = self._reserved.setdefault(account, {})
                if nonce in reserved:
                    return False
                reserved[nonce] = until
                return True
        try:
            with self._sessions() as session, session.begin():
                session.execute(
                    delete(ActNonceReservation).where(
                        ActNonceReservation.account == account,
                        ActNonceReservation.expires_at < datetime.fromtimestamp(now, UTC),
                    )
                )
                session.add(
                    ActNonceReservation(account=account, nonce=nonce, expires_at=datetime.fromtimestamp(until, UTC))
                )
        except IntegrityError:
            return False
        return True


def signature_required(
    client: LedgerClient, nonces: NonceAllocator, operation: str, account: str, args: Any
) -> Problem:
    """The 428 problem that carries ``account``'s act for ``operation`` (or a 403 when it has no signed act)."""
    if operation not in acts.ACTS:
        return Problem(
            403,
            "no-signed-act",
            "No signed act for this operation",
            f"{operation} has no signed act: a self-custody participant cannot ask the service to perform it",
        )
    nonce = nonces.next(client, account)
    deadline = client.chain_time() + ACT_TTL_SECONDS  # the chain's clock, which need not be the wall clock's
    document = client.act_document(operation, account, args, nonce=nonce, deadline=deadline)
    return act_problem(document)


def act_problem(document: Mapping[str, Any]) -> Problem:
    act = acts.act_of(document)
    return Problem(
        428,
        "signature-required",
        "Signature required",
        "this participant signs its own acts: sign `typed_data` (EIP-712) with its key and POST it with the "
        "signature to /acts",
        typed_data=dict(document),
        digest="0x" + acts.digest(document).hex(),
        sentence=acts.sentence(act, document["message"]),
        sign_at="/acts",
    )


# -- a gateway in a consortium (docs/consortium.md) ------------------------------------------------------------


def not_hosted_here(account: str) -> Problem:
    """403: this gateway holds no key of ``account`` and cannot act for it (another gateway hosts it)."""
    return Problem(
        403,
        "not-hosted-here",
        "Not hosted by this gateway",
        f"this gateway holds no key of {account} and cannot act for it: ask the gateway that hosts it, or sign "
        "the act yourself and POST it to /acts",
        account=account,
    )


REGULATOR_GATEWAY_OPERATIONS: Final = frozenset(
    {
        "freeze.participant",
        "freeze.piece",
        "freeze.receipt",
        "unfreeze.participant",
        "unfreeze.piece",
        "unfreeze.receipt",
    }
)
"""What the regulator's gateway signs: freezes and their lifting, nothing else."""


def read_only_gateway(what: str) -> Problem:
    """403: the regulator's gateway reads and freezes, and refuses ``what``."""
    return Problem(
        403,
        "read-only-gateway",
        "Read-only gateway",
        f"this is the regulator's gateway (SCF_GATEWAY_ROLE=regulator): it indexes the ledger, answers reports and "
        f"freezes, and refuses {what}",
    )


def refuse_on_regulator_gateway(service: LedgerService, operation: str) -> None:
    """On the regulator's gateway, refuse every operation but a freeze or its lifting."""
    if service.role == "regulator" and operation not in REGULATOR_GATEWAY_OPERATIONS:
        raise read_only_gateway(f"the operation {operation}")


def hosted_act_signer(service: LedgerService, account: str) -> LocalAccount | None:
    """The key of self-custody ``account``'s current signer when this gateway's keystore holds it (a gateway
    that hosts a participant registered to sign its own acts: a bank's gateway for its bank); None otherwise."""
    signer = service.client.signer_of(account)
    if signer not in service.keystore:
        return None
    return service.keystore.account(signer)


async def relay_hosted_act(
    service: LedgerService, call: Call, signer: LocalAccount, operation_id: str | None
) -> Operation:
    """Sign ``call`` as its sender's act with the hosted ``signer`` and relay it from the gateway's own account."""
    client = service.client
    if call.operation not in acts.ACTS:
        raise signature_required(client, service.act_nonces, call.operation, call.sender, call.args)  # the 403
    nonce = await asyncio.to_thread(service.act_nonces.next, client, call.sender)
    deadline = await asyncio.to_thread(client.chain_time) + ACT_TTL_SECONDS
    document = await asyncio.to_thread(
        client.act_document, call.operation, call.sender, call.args, nonce=nonce, deadline=deadline
    )
    return await client.submit_act(document, acts.sign(document, signer), str(service.operator.address), operation_id)
