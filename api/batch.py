"""``POST /batch``: many state-changing requests in one, for integrators (an ERP sending the day's invoices, a
bank funding a batch of requests).

Each item names a state-changing route by its route name (``deposit``, ``confirm_invoice``, ``relay_act``: the
name the OpenAPI document's summary and ``operationId`` derive from), its path parameters and its body, and may
carry its own ``idempotency_key``. The item is performed exactly as the single route performs it, through the
same code: the route's :class:`api.actions.Action` (its body model, its ``prepare``: the caller's checks, as the
single route makes them) and :func:`api.operations.run` (idempotency, ``Prefer: wait``, the operation
resource); a signed act (``relay_act``, the body of ``POST /acts``) through the same relay. So an item's key is
the single route's ``Idempotency-Key``: a replayed batch answers each item's first answer and sends nothing
again, and a key reused with another request is that item's 422.

Items are independent: each has its own answer in its slot (the operation, or the problem the single route
would answer, with the same ``type``), none waits for another, and a refused item stops none of the others.
All items are started at once, so their pre-flights go to the node together (the pipeline sends the
``eth_call``/``eth_estimateGas`` pairs that are pending at one moment in one JSON-RPC batch) and their
transactions are journaled and sent in the same batches, landing in as few blocks as the pipeline allows.
Items of one batch may not depend on each other's results (ids created by an earlier item): they run
concurrently, as separate requests sent at once would.

The answer is ``200`` with one entry per item, in order: ``status`` is the status the single route would have
answered (202 accepted, 200 final with ``Prefer: wait``, or the problem's), with the operation or the problem.
The batch itself fails as a whole only when it is not a batch (422 ``validation``: not the schema below), holds
more than ``SCF_BATCH_MAX_ITEMS`` items (422 ``batch-too-large``), carries an ``Idempotency-Key`` header (422
``idempotency-key``: the keys are the items', and a retry of a batch keyed as a whole would send its unkeyed
items again), or its caller is not authenticated (401).
Each item is written to the audit log as its own action (its route, path, operation and outcome, the batch's
request id with ``#<index>``), besides the batch's own record.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, create_model
from starlette.concurrency import run_in_threadpool

from api.actions import Action, action_of, submission
from api.audit_log import DEFERRED_WRITES, AuditEntry, RequestWrites
from api.auth import Caller, CurrentCaller, Service
from api.json_response import FastJSONResponse
from api.operations import OperationView, Submit, prefer_wait, run
from api.problems import Problem, problem_of
from api.routes.acts import SignedAct, relay_act, relay_submission
from api.routes.common import json_integer
from api.service import LedgerService

logger = logging.getLogger("api.audit")

router = APIRouter(tags=["batch"])

BatchId = Annotated[int, BeforeValidator(json_integer), Field(ge=0, lt=10**80)]
"""An id among an item's path parameters: a JSON integer (never a string, boolean or decimal), within what the
single route's path takes (:data:`api.routes.common.PathId`: up to 80 digits, no sign)."""


class BatchItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    operation: str = Field(
        min_length=1,
        max_length=100,
        examples=["deposit"],
        description="the state-changing route, by its route name (the OpenAPI summary's words joined by `_`: "
        "`deposit`, `register_invoice`, `confirm_invoice`, `fund_financing`; `relay_act` for a signed act)",
    )
    path: dict[str, Any] = Field(
        default_factory=dict,
        description='the route\'s path parameters by name (`{"invoice_id": 7}`): ids as JSON integers',
    )
    body: dict[str, Any] | None = Field(None, description="the route's body, as the single route takes it")
    idempotency_key: str | None = Field(
        None, description="the item's `Idempotency-Key`: the same key as on the single route, with the same effect"
    )


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[BatchItem] = Field(min_length=1, description="at most `SCF_BATCH_MAX_ITEMS` (100)")


class BatchItemAnswer(BaseModel):
    status: int = Field(
        description="what the single route would have answered: 202 (accepted, in flight), 200 (final, with "
        "`Prefer: wait`), or the problem's status"
    )
    replayed: bool = Field(False, description="answered from the item's idempotency key: nothing was sent again")
    location: str | None = Field(None, description="`/operations/{operation_id}` of the item's operation")
    operation: OperationView | None = Field(None, description="the operation, when the item was accepted")
    problem: dict[str, Any] | None = Field(
        None, description="the RFC 9457 problem the single route would have answered (a `Problem`)"
    )


class BatchAnswer(BaseModel):
    items: list[BatchItemAnswer] = Field(description="one answer per item, in the items' order")
    accepted: int = Field(description="items answered with an operation (status below 400)")
    refused: int = Field(description="items answered with a problem")


@dataclass(frozen=True)
class Target:
    """A route an item may name: what the batch needs to perform a request to it."""

    name: str
    method: str
    path: str
    body: type[BaseModel] | None
    path_model: type[BaseModel] | None
    start: Callable[[LedgerService, Caller, BaseModel | None, dict[str, Any]], Awaitable[tuple[str, Submit]]]

    def concrete_path(self, values: Mapping[str, Any]) -> str:
        return self.path.format(**values)


def _path_model(action: Action) -> type[BaseModel] | None:
    names = action.path_parameters()
    if not names:
        return None
    fields: dict[str, Any] = {name: (action.params.get(name, BatchId), ...) for name in names}
    return create_model(f"{action.name}_path", __config__=ConfigDict(extra="forbid"), **fields)


def _action_target(action: Action) -> Target:
    async def start(
        service: LedgerService, caller: Caller, body: BaseModel | None, path: dict[str, Any]
    ) -> tuple[str, Submit]:
        return await submission(action, service, caller, body, path)

    return Target(action.name, action.method, action.path, action.body, _path_model(action), start)


async def _start_relay(
    service: LedgerService, caller: Caller, body: BaseModel | None, path: dict[str, Any]
) -> tuple[str, Submit]:
    assert isinstance(body, SignedAct)
    return relay_submission(service, body)


def targets(routers: Sequence[APIRouter]) -> dict[str, Target]:
    """The routes of ``routers`` an item may name, by route name (:func:`api.app.create_app` keeps them in
    ``app.state.batch_targets``)."""
    found: dict[str, Target] = {}
    for router in routers:
        for route in router.routes:
            if not isinstance(route, APIRoute):
                continue
            action = action_of(route.endpoint)
            if action is not None:
                found[action.name] = _action_target(action)
            elif route.endpoint is relay_act:
                found[route.name] = Target(route.name, "POST", route.path, SignedAct, None, _start_relay)
    return found


def _invalid(where: str, errors: Sequence[Mapping[str, Any]]) -> Problem:
    """The 422 the single route's schema check answers (:func:`api.problems.install`), for an item's part."""
    listed = [
        {"loc": [where, *(str(p) for p in e.get("loc", ()))], "msg": str(e.get("msg", "")), "type": str(e.get("type"))}
        for e in errors
    ]
    return Problem(422, "validation", "Invalid request", "the request does not match the schema", errors=listed)


def _validated(model: type[BaseModel] | None, value: dict[str, Any] | None, where: str) -> BaseModel | None:
    if model is None:
        if value:
            raise _invalid(where, [{"loc": (), "msg": f"this operation takes no {where}", "type": "extra_forbidden"}])
        return None
    try:
        return model.model_validate({} if value is None and where == "path" else value)
    except ValidationError as exc:
        raise _invalid(where, exc.errors()) from None


@dataclass
class _Done:
    answer: BatchItemAnswer
    target: Target | None
    path: str


async def _perform(
    service: LedgerService,
    caller: Caller,
    known: Mapping[str, Target],
    item: BatchItem,
    wait: float | None,
    writes: RequestWrites | None,
) -> _Done:
    target = known.get(item.operation)
    path = "/batch"
    try:
        if target is None:
            raise Problem(
                422,
                "unknown-operation",
                "Unknown operation",
                f"{item.operation!r} is not the route name of a state-changing route of this service",
            )
        values = _validated(target.path_model, item.path, "path")
        path_values = values.model_dump() if values is not None else {}
        path = target.concrete_path(path_values)
        body = _validated(target.body, item.body, "body")
        kind, submit = await target.start(service, caller, body, path_values)
        done = await run(
            service,
            caller,
            kind,
            body,
            submit,
            key=item.idempotency_key,
            method=target.method,
            path=path,
            wait=wait,
            writes=writes,
        )
    except Exception as exc:  # the item's own problem; the others go on
        problem = problem_of(exc)
        return _Done(BatchItemAnswer(status=problem.status, problem=problem.body(path)), target, path)
    content = done.content
    location = f"/operations/{content['operation_id']}" if "operation_id" in content else None
    if done.status >= 400:
        answer = BatchItemAnswer(status=done.status, replayed=done.replayed, location=location, problem=content)
    else:
        answer = BatchItemAnswer(
            status=done.status,
            replayed=done.replayed,
            location=location,
            operation=OperationView.model_validate(content),
        )
    return _Done(answer, target, path)


def _outcome(answer: BatchItemAnswer) -> str:
    if answer.problem is not None:
        return str(answer.problem.get("type") or f"http-{answer.status}")
    return "accepted" if answer.status == 202 else "ok"


def _audit(
    service: LedgerService,
    caller: Caller,
    request_id: str | None,
    items: list[BatchItem],
    done: list[_Done],
    writes: RequestWrites | None,
) -> None:
    """One audit record per item, as if it had come alone (see the module's docstring), in one transaction with
    the items' own records (operation records, idempotency answers: ``writes``, deferred by :func:`run` as a
    single request's are). If that transaction fails, ``writes`` stay with the batch request, whose audit
    record's transaction writes them (or they are written alone, as a single request's are)."""
    entries = []
    for index, (item, result) in enumerate(zip(items, done, strict=True)):
        answer = result.answer
        operation_id = (answer.operation.operation_id if answer.operation else None) or (
            (answer.problem or {}).get("operation_id")
        )
        body = json.dumps(item.body, sort_keys=True, separators=(",", ":")).encode() if item.body is not None else b""
        entries.append(
            AuditEntry(
                actor=caller.address,
                method=result.target.method if result.target else "POST",
                route=result.target.path if result.target else "/batch",
                path=result.path,
                operation_id=operation_id,
                body_sha256=hashlib.sha256(body).hexdigest(),
                status_code=answer.status,
                outcome=_outcome(answer),
                replayed=answer.replayed,
                request_id=None if request_id is None else f"{request_id}#{index}",
            )
        )
    also = list(writes.writes) if writes is not None else []
    try:
        service.audit_log.append_all(entries, also)
    except Exception:  # the answer still goes out, as for a single request (api.audit_log); loud in the log
        logger.exception("could not record the %d items of a batch in the audit log", len(entries))
        return
    if writes is not None:
        del writes.writes[: len(also)]  # written: not again with the batch's own record


@router.post("/batch", response_model=BatchAnswer)
async def batch(body: BatchRequest, request: Request, service: Service, caller: CurrentCaller) -> JSONResponse:
    """Many state-changing requests in one (see the module's docstring): each item names a route by its route
    name, with its path parameters, body and idempotency key, and is performed as the single route performs it
    (the same checks of the caller, the same idempotency, pre-flight and problems). Answered `200` with one
    entry per item in order, each with the status the single route would have answered and the operation or the
    problem; `Prefer: wait=N` waits up to N seconds for every item together. The batch takes no
    `Idempotency-Key` header: each item carries its own `idempotency_key`, the single route's key."""
    if "idempotency-key" in request.headers:  # a retry would not replay what the client thinks it would
        detail = "a batch takes no Idempotency-Key header: give each item its own `idempotency_key`"
        raise Problem(422, "idempotency-key", "Invalid Idempotency-Key", detail)
    limit = service.settings.batch_max_items
    if len(body.items) > limit:
        detail = f"{len(body.items)} items: a batch carries at most {limit} (SCF_BATCH_MAX_ITEMS)"
        raise Problem(422, "batch-too-large", "Batch too large", detail, limit=limit)
    wait = prefer_wait(request, service)
    known: dict[str, Target] = request.app.state.batch_targets
    # The items' records are written with their audit records, not each in a transaction of its own (a batch of
    # 100 made 100 commits more); without the audit log's middleware (a service starting or stopping) each item
    # writes its own, as it did.
    writes: RequestWrites | None = getattr(request.state, DEFERRED_WRITES, None)
    done = await asyncio.gather(*(_perform(service, caller, known, item, wait, writes) for item in body.items))
    request_id = getattr(request.state, "request_id", None) or request.headers.get("x-request-id")
    await run_in_threadpool(_audit, service, caller, request_id, body.items, list(done), writes)
    answers = [result.answer for result in done]
    refused = sum(1 for answer in answers if answer.problem is not None)
    content = BatchAnswer(items=answers, accepted=len(answers) - refused, refused=refused)
    headers = {} if wait is None else {"Preference-Applied": f"wait={wait:g}"}
    return FastJSONResponse(content.model_dump(mode="json"), headers=headers)
