"""State-changing routes declared as data: one :class:`Action` per route, generated into FastAPI routes.

Every route that performs a ledger operation has the same shape: check who the caller is and what it may do
(reading the chain where the rule depends on an object: the invoice's buyer, the piece's holder), turn the
request into the operation's arguments, and hand it to :func:`api.operations.perform` (idempotency,
``Prefer: wait``, the operation resource). An :class:`Action` declares only what differs: the method and
path, the body model, and ``prepare`` — a plain function ``(service, caller, body, **path parameters) →
Call`` that makes the checks (raising :class:`api.problems.Problem`) and names the catalogue operation, its
sender and its arguments. :func:`install` builds each route from its action: its signature (path parameters,
body), ``response_model`` (:class:`api.operations.OperationView`, 202 and 200), its description (the action's
own, or the operation's summary from :mod:`ledger.catalogue`, with the fields its result shows), and its
OpenAPI links (:data:`LINKS`, written into the document by :mod:`api.openapi`).

``prepare`` runs in a worker thread (it may read the chain), unless the action says it does not
(``reads_chain=False``) or it is a coroutine function (its reads made from the event loop, e.g.
:meth:`ledger.client.LedgerClient.read_async`, joining the pipeline's JSON-RPC batches without a thread hand-off);
the submission itself runs on the event loop.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.auth import Caller, CurrentCaller, Service
from api.operations import OperationView, Submit, perform
from api.problems import PROBLEM_JSON
from api.routes.common import PathId
from api.service import LedgerService
from api.signing import (
    hosted_act_signer,
    not_hosted_here,
    refuse_on_regulator_gateway,
    relay_hosted_act,
    signature_required,
)
from ledger.acts import ACTS
from ledger.catalogue import CATALOGUE, OperationSpec
from ledger.pipeline import Operation


@dataclass(frozen=True)
class Call:
    """What a request becomes: a catalogue operation, who sends it, and its arguments by name."""

    operation: str
    sender: str
    args: Mapping[str, Any]


@dataclass(frozen=True)
class Link:
    """An OpenAPI link from a route's answer to a route that uses what it created."""

    name: str
    method: str
    path: str
    parameters: Mapping[str, str]


def result_link(name: str, method: str, path: str, field: str) -> Link:
    """A link whose one path parameter is the field ``field`` of the operation's result."""
    (parameter,) = [part[1:-1] for part in path.split("/") if part.startswith("{")][:1]
    return Link(name, method, path, {parameter: f"$response.body#/result/{field}"})


Prepare = Callable[..., Call] | Callable[..., Awaitable[Call]]
"""``prepare(service, caller, body, **path parameters) → Call``: the checks, then the operation to run (or a
coroutine function answering it)."""


@dataclass(frozen=True)
class Action:
    """One state-changing route."""

    method: str
    path: str
    name: str
    """The route's name (its OpenAPI ``operationId`` and summary derive from it)."""
    prepare: Prepare
    operation: str | None = None
    """The catalogue operation it performs; None when ``prepare`` picks one of several (freezes)."""
    body: type[BaseModel] | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    """Annotations of path parameters other than ids (an id parameter is a :data:`api.routes.common.PathId`)."""
    description: str | None = None
    links: Sequence[Link] = ()
    include_in_schema: bool = True
    reads_chain: bool = True
    """Whether ``prepare`` may block (reads the chain or the database): it then runs in a worker thread; False
    for a ``prepare`` that only computes, which runs on the event loop (a thread hand-off costs more)."""

    def path_parameters(self) -> list[str]:
        return [part[1:-1] for part in self.path.split("/") if part.startswith("{") and part.endswith("}")]


def act_on(operation: str, parameter: str, check: Callable[[LedgerService, Caller, int], object]) -> Prepare:
    """The ``prepare`` of an action with no body: the caller, once ``check(service, caller, id)`` passes, sends
    ``operation`` on the object its path names (``/pledges/{pledge_id}/fund``)."""

    def prepare(service: LedgerService, caller: Caller, body: None, **path: int) -> Call:
        check(service, caller, path[parameter])
        return Call(operation, caller.address, {parameter: path[parameter]})

    return prepare


LINKS: dict[tuple[str, str], list[Link]] = {}
"""(method, path) → the links of its success answer, for :mod:`api.openapi`."""


def describe(action: Action, catalogue: Mapping[str, OperationSpec] = CATALOGUE) -> str:
    """The route's description: the action's own (else the operation's summary), and what its result shows."""
    spec = catalogue.get(action.operation) if action.operation else None
    text = action.description or (spec.summary if spec else "")
    if spec is not None:
        fields = [f"`{name}` (from `{event}`)" for event, names in spec.results.items() for name in names.values()]
        text += f"\n\nOperation `{spec.name}`: `{spec.contract}.{spec.function.split('(')[0]}`."
        if fields:
            text += " Its result shows " + ", ".join(fields) + ", and every event of its transaction."
    return text


def install(router: APIRouter, actions: Sequence[Action], catalogue: Mapping[str, OperationSpec] = CATALOGUE) -> None:
    """Add a route to ``router`` for each action."""
    for action in actions:
        if action.operation is not None and action.operation not in catalogue:
            raise LookupError(f"{action.method} {action.path}: no operation {action.operation} in the catalogue")
        router.add_api_route(
            action.path,
            _endpoint(action),
            methods=[action.method],
            name=action.name,
            status_code=202,
            response_model=OperationView,
            response_description="the operation, accepted",
            responses=_responses(action),
            description=describe(action, catalogue),
            include_in_schema=action.include_in_schema,
        )
        if action.links:
            LINKS[(action.method.lower(), action.path)] = list(action.links)


SIGNATURE_REQUIRED: dict[str, Any] = {
    "description": "the caller is a self-custody participant: the problem `urn:scf:problem:signature-required` "
    "carries the act to sign (`typed_data`, `digest`, `sentence`); the signed act goes to `sign_at` (POST /acts)",
    "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
}


def _responses(action: Action) -> dict[int | str, dict[str, Any]]:
    responses: dict[int | str, dict[str, Any]] = {200: {"model": OperationView, "description": "the operation, final"}}
    if action.operation in ACTS:
        responses[428] = SIGNATURE_REQUIRED
    return responses


async def submission(
    action: Action, service: LedgerService, caller: Caller, body: BaseModel | None, path: Mapping[str, Any]
) -> tuple[str, Submit]:
    """What ``caller``'s request to ``action`` becomes, once its ``prepare`` passed (the caller's checks): the
    operation's kind and the ``submit`` to hand :func:`api.operations.perform` (or :func:`api.operations.run`)."""
    if inspect.iscoroutinefunction(action.prepare):
        call = await action.prepare(service, caller, body, **path)
    elif action.reads_chain:
        call = await run_in_threadpool(action.prepare, service, caller, body, **path)
    else:
        call = action.prepare(service, caller, body, **path)
    assert isinstance(call, Call)

    refuse_on_regulator_gateway(service, call.operation)

    async def submit(operation_id: str | None) -> Operation:
        if service.is_self_custody(call.sender):
            signer = await run_in_threadpool(hosted_act_signer, service, call.sender)
            if signer is not None:
                # Its key is in this gateway's keystore (a member's gateway hosting it): sign its act here and
                # relay it from this gateway's own account, which pays the gas.
                return await relay_hosted_act(service, call, signer, operation_id)
            # Its key is not here: answer with the act to sign (api.signing); the signed act comes to /acts.
            # Raised inside `perform`, the 428 is kept under the request's Idempotency-Key: a retry gets the
            # same act (the same nonce) back, and signing it again gives the same signature.
            raise await run_in_threadpool(
                signature_required, service.client, service.act_nonces, call.operation, call.sender, call.args
            )
        if not service.holds_key_of(call.sender):
            raise not_hosted_here(call.sender)
        return await service.client.submit(call.operation, call.sender, call.args, operation_id)

    return call.operation, submit


def action_of(endpoint: Callable[..., Any]) -> Action | None:
    """The action a route's endpoint performs (None for a route not made by :func:`install`)."""
    action = getattr(endpoint, "action", None)
    return action if isinstance(action, Action) else None


def _endpoint(action: Action) -> Callable[..., Any]:
    path_names = action.path_parameters()

    async def endpoint(request: Request, service: LedgerService, caller: Caller, **values: Any) -> JSONResponse:
        body = values.pop("body", None)
        kind, submit = await submission(action, service, caller, body, values)
        return await perform(request, service, caller, kind, body, submit)

    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters = [inspect.Parameter(name, keyword, annotation=action.params.get(name, PathId)) for name in path_names]
    if action.body is not None:
        parameters.append(inspect.Parameter("body", keyword, annotation=action.body))
    parameters += [
        inspect.Parameter("request", keyword, annotation=Request),
        inspect.Parameter("service", keyword, annotation=Service),
        inspect.Parameter("caller", keyword, annotation=CurrentCaller),
    ]
    endpoint.__signature__ = inspect.Signature(parameters, return_annotation=JSONResponse)  # type: ignore[attr-defined]
    endpoint.__name__ = action.name
    endpoint.action = action  # type: ignore[attr-defined]  # what the batch route dispatches to (action_of)
    endpoint.__doc__ = action.description
    return endpoint
