"""State-changing requests: idempotency, ``Prefer: wait=N``, and the operation resource.

Every state-changing route hands :func:`perform` a coroutine that submits one ledger operation. The request
is answered ``202 Accepted`` with the operation (``Location: /operations/{id}``) at once, or, when the client
sends ``Prefer: wait=N``, after the operation is final (up to N seconds): ``200`` with its result (the ids
it created, from its events), or the contract's error as a problem.

``Idempotency-Key``: the first request with a key is remembered with the hash of its body and the answer it
got; a replay gets that answer and sends nothing; the same key with another body is a 422. The key also
names the pipeline operation (``operation_id``), so even a replay racing the first one cannot send twice.
A request that died without an answer (the chain did not answer: a 503; or the service crashed) can be sent
again with the same key: when the pipeline had journaled its operation, the retry answers with that operation
instead of running the request again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import Engine, Insert, Table, bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from api.audit_log import DEFERRED_WRITES, RequestWrites
from api.auth import Caller, CurrentCaller, Service
from api.json_response import FastJSONResponse
from api.problems import PROBLEM_JSON, Problem, from_contract, jsonable, out_of_gas
from api.service import LedgerService
from api.store import IdempotencyRecord, ServiceOperationRecord
from ledger.catalogue import CATALOGUE, Catalogue
from ledger.client import OperationRolledBack, Outcome
from ledger.errors import ContractRevert, ErrorDecoder, OutOfGas
from ledger.journal import TransactionStatus
from ledger.pipeline import OUT_OF_GAS, Operation, UnknownOperation

logger = logging.getLogger("api.operations")

_STARTED_AT = datetime.now(UTC)
"""When this process started: an idempotency claim older than this and never answered was abandoned."""

_OPERATIONS = cast(Table, ServiceOperationRecord.__table__)
_INSERT_OPERATION = insert(_OPERATIONS)
_OPERATION_RECORD = select(_OPERATIONS.c.participant, _OPERATIONS.c.kind).where(
    _OPERATIONS.c.operation_id == bindparam("id")
)


def _insert_if_new(table: Table) -> dict[str, Insert]:
    """``table``'s INSERT that adds nothing where the row exists (``ON CONFLICT DO NOTHING``), by dialect."""
    return {
        "sqlite": sqlite.insert(table).on_conflict_do_nothing(),
        "postgresql": postgresql.insert(table).on_conflict_do_nothing(),
    }


_INSERT_OPERATION_IF_NEW = _insert_if_new(_OPERATIONS)
_IDEMPOTENCY = cast(Table, IdempotencyRecord.__table__)
_CLAIM = insert(_IDEMPOTENCY).returning(_IDEMPOTENCY.c.id)
_CLAIM_IF_NEW = {
    dialect: statement.returning(_IDEMPOTENCY.c.id, _IDEMPOTENCY.c.participant, _IDEMPOTENCY.c.key)
    for dialect, statement in _insert_if_new(_IDEMPOTENCY).items()
}
_ANSWER = (
    update(_IDEMPOTENCY)
    .where(_IDEMPOTENCY.c.id == bindparam("record"))
    .values(
        status_code=bindparam("answer_status"),
        response=bindparam("answer", type_=_IDEMPOTENCY.c.response.type),
    )
)
_FORGET = delete(_IDEMPOTENCY).where(_IDEMPOTENCY.c.id == bindparam("record"))
_PREFER_WAIT = re.compile(r"(?:^|[;,\s])wait\s*=\s*(\d+(?:\.\d+)?)", re.IGNORECASE)


class OperationView(BaseModel):
    operation_id: str
    kind: str
    status: str = Field(
        description="pending or sent (in flight), indexing (confirmed on chain, not yet in the lists), confirmed, "
        "failed, or replaced"
    )
    tx_hash: str
    block_number: int | None = None
    error: dict[str, Any] | None = None
    result: dict[str, Any] | None = None


def result_of(outcome: Outcome, catalogue: Catalogue = CATALOGUE, kind: str | None = None) -> dict[str, Any]:
    """A confirmed operation's result: the fields the catalogue's operations show of its events (the ids it
    created, the amounts it settled), then those only operation ``kind`` shows, and every event of its
    transaction."""
    fields = catalogue.result_fields
    result: dict[str, Any] = {}
    for event in outcome.events:
        for argument, name in fields.get(event.name, {}).items():
            if argument in event.args:  # events of one name from two contracts (ERC-20 and ERC-721 Transfer)
                result.setdefault(name, jsonable(event.args[argument]))
    own = catalogue[kind].own_results if kind is not None and kind in catalogue else {}
    for event in outcome.events if own else ():
        for argument, name in own.get((event.contract, event.name), {}).items():
            result.setdefault(name, jsonable(event.args[argument]))
    result["events"] = [{"name": e.name, "args": jsonable(dict(e.args))} for e in outcome.events]
    return result


def prefer_wait(request: Request, service: LedgerService) -> float | None:
    header = request.headers.get("prefer")
    if not header:
        return None
    match = _PREFER_WAIT.search(header)
    if match is None:
        return None
    return min(float(match.group(1)), service.settings.max_wait_seconds)


INDEX_WAIT_SECONDS = 2.0
"""How long an answer that found its operation confirmed waits, at least, for the index to hold the block."""


async def view_of(
    service: LedgerService, operation: Operation, kind: str, *, index_wait: float = INDEX_WAIT_SECONDS
) -> tuple[int, dict[str, Any]]:
    """(status code, body) for an operation as it is now.

    A confirmed operation is answered ``confirmed`` only once the index holds its block (read-your-writes: the
    lists of the client's next request show it); until then, up to ``index_wait`` seconds, it is ``indexing``
    (202), as it is when the indexer falls that far behind."""
    view = OperationView(
        operation_id=operation.operation_id,
        kind=kind,
        status=operation.status.value,
        tx_hash=operation.tx_hash,
        block_number=operation.block_number,
    )
    if operation.status is TransactionStatus.CONFIRMED:
        assert operation.block_number is not None
        if not await service.indexed(operation.block_number, index_wait):
            view.status = "indexing"
            return 202, view.model_dump()
        try:
            view.result = result_of(await service.client.outcome(operation), service.client.catalogue, kind)
        except OperationRolledBack:  # its block was lost; the pipeline sends it again: in flight meanwhile
            view.status, view.block_number = TransactionStatus.SENT.value, None
            return 202, view.model_dump()
        return 200, view.model_dump()
    if operation.status is TransactionStatus.FAILED:
        if operation.error_name == OUT_OF_GAS:  # the gas could not grow enough: not the contracts' answer
            problem = out_of_gas(OutOfGas(operation.error_args))
        else:
            error = ErrorDecoder.exception_class(operation.error_name or "UnknownRevert")(operation.error_args or {})
            problem = from_contract(error)
        view.error = problem.body()
        return 200, view.model_dump()
    if operation.is_final:  # replaced or dropped: never ran
        view.error = {"type": "urn:scf:problem:operation-dropped", "title": f"operation {operation.status.value}"}
        return 200, view.model_dump()
    return 202, view.model_dump()


def _index_wait(deadline: float | None) -> float:
    """What is left of a request's ``Prefer: wait`` for the index, and at least :data:`INDEX_WAIT_SECONDS`."""
    left = 0.0 if deadline is None else deadline - time.monotonic()
    return max(left, INDEX_WAIT_SECONDS)


def _request_hash(method: str, path: str, body: Any) -> str:
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _operation_id(caller: Caller, key: str) -> str:
    return "idem-" + hashlib.sha256(f"{caller.address}\x00{key}".encode()).hexdigest()[:40]


@dataclass(frozen=True)
class Answer:
    """What one state-changing request is answered: its status and body, and whether it was a replay."""

    status: int
    content: dict[str, Any]
    replayed: bool = False


Submit = Callable[[str | None], Awaitable[Operation]]
"""``submit(operation_id)``: send the request's one ledger operation (named ``operation_id`` when keyed)."""


async def perform(
    request: Request,
    service: LedgerService,
    caller: Caller,
    kind: str,
    body: BaseModel | None,
    submit: Submit,
) -> JSONResponse:
    """Run one state-changing request (see the module's docstring); ``submit(operation_id)`` sends it."""
    wait = prefer_wait(request, service)
    answer = await run(
        service,
        caller,
        kind,
        body,
        submit,
        key=request.headers.get("idempotency-key"),
        method=request.method,
        path=str(request.url.path),
        wait=wait,
        state=request.state,
    )
    return _response(answer.status, answer.content, replayed=answer.replayed, applied=None if answer.replayed else wait)


async def run(
    service: LedgerService,
    caller: Caller,
    kind: str,
    body: BaseModel | None,
    submit: Submit,
    *,
    key: str | None,
    method: str,
    path: str,
    wait: float | None,
    state: Any = None,
    writes: RequestWrites | None = None,
) -> Answer:
    """:func:`perform` without the HTTP request: the request is ``method path`` with ``body``, keyed by ``key``
    (its ``Idempotency-Key``), waiting up to ``wait`` seconds (its ``Prefer: wait``). The batch route
    (:mod:`api.batch`) runs each of its items through it. Raises :class:`Problem` for a key that is
    malformed, reused with another request or still running; ``state`` (the request's) is told the operation
    and transaction for the request's log line. ``writes``: where to defer the request's records when ``state``
    has no place for them (a batch's items go in the batch request's)."""
    record_id: int | None = None
    # The audit log's middleware writes the request's records with its audit record, in one transaction, just
    # before the answer leaves (api.audit_log); without it each is written here.
    deferred: RequestWrites | None = getattr(state, DEFERRED_WRITES, None) if state is not None else writes
    if key is not None:
        if not 1 <= len(key) <= 200:
            raise Problem(422, "idempotency-key", "Invalid Idempotency-Key", "1 to 200 characters")
        payload = body.model_dump(mode="json") if body is not None else None
        request_hash = _request_hash(method, path, payload)
        claimed: int | Answer | None = await _claim_new(
            service, {"participant": caller.address, "key": key, "request_hash": request_hash}
        )
        if claimed is None:  # the key has a record (a replay, a request running, an abandoned claim)
            claimed = _claim(service, caller, key, request_hash)
        if isinstance(claimed, Answer):
            return claimed
        record_id = claimed
    try:
        status, content = await _perform(service, caller, kind, submit, key, wait, state, deferred)
    except ContractRevert as exc:
        problem = from_contract(exc)
        status, content = problem.status, problem.body(path)
    except Problem as problem:
        status, content = problem.status, problem.body(path)
    except BaseException:
        if record_id is not None:  # e.g. the chain did not answer (a 503): the client retries with the same key
            _forget(service, record_id)
        raise
    if record_id is not None:
        if status >= 500 or (status in (401, 403) and "operation_id" not in content):
            _forget(service, record_id)  # nothing happened: let the client retry with the same key
        else:
            answer = {"record": record_id, "answer_status": status, "answer": content}
            if deferred is not None:
                deferred.add(_ANSWER, answer)
            else:
                with _engine(service).begin() as connection:
                    connection.execute(_ANSWER, answer)
    return Answer(status, content)


def _insert_operation_if_new(service: LedgerService) -> Insert:
    """The operation record's INSERT that adds nothing when the record exists (``ON CONFLICT DO NOTHING``)."""
    return _INSERT_OPERATION_IF_NEW[_engine(service).dialect.name]


def _engine(service: LedgerService) -> Engine:
    engine: Engine = service.sessions.kw["bind"]
    return engine


_Waiting = list[tuple[dict[str, str], "asyncio.Future[int | None]"]]
_waiting_claims: dict[int, _Waiting] = {}
"""The claims of new keys asked for in the current turn of the event loop, by service (``id``; see
:func:`_claim_new`): emptied at the end of each turn."""


async def _claim_new(service: LedgerService, claim: dict[str, str]) -> int | None:
    """Claim a key no request has used yet: the record's id, or None when the key has a record already (or the
    insert failed: :func:`_claim` then tells which). The claims asked for in one turn of the event loop (the
    items of a batch, requests arriving together) are inserted together: one statement and one commit for all
    of them instead of one each."""
    loop = asyncio.get_running_loop()
    waiting = _waiting_claims.setdefault(id(service), [])
    future: asyncio.Future[int | None] = loop.create_future()
    waiting.append((claim, future))
    if len(waiting) == 1:
        loop.call_soon(_insert_claims, service)
    return await future


def _insert_claims(service: LedgerService) -> None:
    waiting = _waiting_claims.pop(id(service), [])
    claimed: dict[tuple[str, str], int] = {}
    try:
        engine = _engine(service)
        rows = [claim for claim, _ in waiting]
        with engine.begin() as connection:
            result = connection.execute(_CLAIM_IF_NEW[engine.dialect.name], rows[0] if len(rows) == 1 else rows)
            for row in result:
                claimed.setdefault((row.participant, row.key), int(row.id))
    except Exception:  # each claim is made again alone, where its own failure is its own
        claimed.clear()
    orphaned: list[int] = []
    for claim, future in waiting:
        # A key twice in one turn: the first has the claim, the second finds it taken.
        record_id = claimed.pop((claim["participant"], claim["key"]), None)
        if not future.done():
            future.set_result(record_id)
        elif record_id is not None:  # its request was cancelled meanwhile: the key is free again
            orphaned.append(record_id)
    for record_id in orphaned:
        try:
            _forget(service, record_id)
        except Exception:  # left claimed: a retry is told it is in progress until this process restarts
            logger.exception("could not free the idempotency key of a cancelled request (record %d)", record_id)


def _claim(service: LedgerService, caller: Caller, key: str, request_hash: str) -> int | Answer:
    """Claim ``key`` for this request: its record's id (one INSERT, in the common case of a new key), or the
    answer the first request with the key got (a replay). Raises :class:`Problem` for a key used with another
    request, or whose first request is still running."""
    for _ in range(3):
        try:
            with _engine(service).begin() as connection:
                claim = {"participant": caller.address, "key": key, "request_hash": request_hash}
                return int(connection.execute(_CLAIM, claim).scalar_one())
        except IntegrityError:  # claimed before, or just now by a concurrent request with the same key
            pass
        existing = _idempotency_record(service, caller, key)
        if existing is None:
            continue  # forgotten meanwhile (its request came to nothing): claim it again
        if _abandoned(existing):
            _forget(service, existing.id)  # claimed by a process that died before answering: start again
            continue
        return _replay(existing, request_hash)
    raise Problem(409, "idempotency-in-progress", "Request in progress", "the first request with this key is running")


async def _perform(
    service: LedgerService,
    caller: Caller,
    kind: str,
    submit: Submit,
    key: str | None,
    wait: float | None,
    state: Any,
    deferred: RequestWrites | None = None,
) -> tuple[int, dict[str, Any]]:
    operation = await submit(None if key is None else _operation_id(caller, key))
    if state is not None:
        # For the request's log line (see api.request_log): which operation and transaction this request became.
        state.operation_id, state.tx_hash = operation.operation_id, operation.tx_hash
    row = {"operation_id": operation.operation_id, "participant": caller.address, "kind": kind}

    # Without a key the pipeline named the operation afresh: no record of it could exist. With one, the
    # operation may be a retry's, whose record the first request wrote: then there is nothing to add.
    # A record named afresh is remembered once committed, for the client's GET /operations/{id} to come.
    def remember() -> None:
        _remember_operation_record(service, operation.operation_id, (caller.address, kind))

    if deferred is not None:
        if key is None:
            deferred.add(_INSERT_OPERATION, row, then=remember)
        else:
            deferred.add(_insert_operation_if_new(service), row)
    else:
        try:
            with _engine(service).begin() as connection:
                connection.execute(_INSERT_OPERATION, row)
        except IntegrityError:
            if key is None:
                raise
        else:
            if key is None:
                remember()
    deadline = None if wait is None else time.monotonic() + wait
    if wait is not None and not operation.is_final:
        operation = await service.pipeline.wait(operation.operation_id, wait)  # pending still after a timeout
    status, content = await view_of(service, operation, kind, index_wait=_index_wait(deadline))
    if status == 200 and operation.status is TransactionStatus.FAILED:
        assert content["error"] is not None
        return int(content["error"]["status"]), {**content["error"], "operation_id": operation.operation_id}
    return status, content


def _abandoned(record: IdempotencyRecord) -> bool:
    """A claim never answered, made before this process started: its request died with an earlier process."""
    if record.status_code is not None:
        return False
    created = record.created_at if record.created_at.tzinfo else record.created_at.replace(tzinfo=UTC)
    return created < _STARTED_AT


def _idempotency_record(service: LedgerService, caller: Caller, key: str) -> IdempotencyRecord | None:
    with service.sessions() as session:
        return session.execute(
            select(IdempotencyRecord).where(
                IdempotencyRecord.participant == caller.address, IdempotencyRecord.key == key
            )
        ).scalar_one_or_none()


def _replay(record: IdempotencyRecord, request_hash: str) -> Answer:
    if record.request_hash != request_hash:
        raise Problem(
            422,
            "idempotency-key-reused",
            "Idempotency-Key reused",
            "this Idempotency-Key was used with a different request",
        )
    if record.status_code is None or record.response is None:
        raise Problem(
            409, "idempotency-in-progress", "Request in progress", "the first request with this key is running"
        )
    return Answer(record.status_code, record.response, replayed=True)


def _forget(service: LedgerService, record_id: int) -> None:
    with _engine(service).begin() as connection:
        connection.execute(_FORGET, {"record": record_id})


def _response(
    status: int, content: dict[str, Any], *, replayed: bool = False, applied: float | None = None
) -> JSONResponse:
    """The answer; ``applied``: the ``Prefer: wait`` honoured (capped at ``SCF_MAX_WAIT_SECONDS``), said back in
    ``Preference-Applied`` (RFC 7240), so a client that asked for more knows it got less."""
    headers = {}
    if applied is not None:
        headers["Preference-Applied"] = f"wait={applied:g}"
    if "operation_id" in content:
        headers["Location"] = f"/operations/{content['operation_id']}"
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    media_type = PROBLEM_JSON if status >= 400 else "application/json"
    return FastJSONResponse(content, status_code=status, headers=headers, media_type=media_type)


router = APIRouter(tags=["operations"])


@router.get("/operations/{operation_id}", response_model=OperationView, responses={202: {"model": OperationView}})
async def get_operation(operation_id: str, request: Request, service: Service, caller: CurrentCaller) -> JSONResponse:
    """An operation a state-changing request sent, as it is now (``Prefer: wait=N`` waits up to N seconds for it to
    be final): 200 when final, 202 while in flight; to the participant that sent it, the operator and the
    regulator (404 to anyone else)."""
    record = _operation_record(service, operation_id)
    if record is None or (record[0] != caller.address and not (caller.is_operator or caller.is_regulator)):
        raise Problem(404, "not-found", "Not found", f"no operation {operation_id}")
    kind = record[1]
    try:
        operation = service.pipeline.status(operation_id)
    except UnknownOperation:
        raise Problem(404, "not-found", "Not found", f"no operation {operation_id}") from None
    wait = prefer_wait(request, service)
    deadline = None if wait is None else time.monotonic() + wait
    if wait is not None and not operation.is_final:
        operation = await service.pipeline.wait(operation_id, wait)
    status, content = await view_of(service, operation, kind, index_wait=_index_wait(deadline))
    return _response(status, content, applied=wait)


OPERATION_RECORDS_REMEMBERED = 10_000
"""How many operation records :func:`_operation_record` keeps at most (then it starts afresh)."""


def _operation_record(service: LedgerService, operation_id: str) -> tuple[str, str] | None:
    """(participant, kind) of the operation record ``operation_id``, or None when there is none (yet). Records
    never change once written, so one read, or written afresh by this process, is remembered
    (:attr:`LedgerService.operation_records`); one not found is not (it may be written later, or by another
    process)."""
    remembered = service.operation_records
    record = remembered.get(operation_id)
    if record is not None:
        return record
    with _engine(service).connect() as connection:
        row = connection.execute(_OPERATION_RECORD, {"id": operation_id}).first()
    if row is None:
        return None
    record = (str(row.participant), str(row.kind))
    _remember_operation_record(service, operation_id, record)
    return record


def _remember_operation_record(service: LedgerService, operation_id: str, record: tuple[str, str]) -> None:
    """Remember ``record`` as operation ``operation_id``'s (only a record that is in the database)."""
    remembered = service.operation_records
    if len(remembered) >= OPERATION_RECORDS_REMEMBERED:
        remembered.clear()
    remembered[operation_id] = record
