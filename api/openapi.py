"""The OpenAPI document as clients (and schemathesis) need it: every answer the service can give is declared.

The routes declare what FastAPI can express: every read route its answer's model (:mod:`api.models`) and a
description (its docstring); ``/metrics`` its text answer (``response_class``); ``/health`` its 503 report
(``responses``); ``POST /documents`` its 200 and 201. What remains here is what FastAPI cannot express, and this
module adds it once, when the document is first asked for:

- the errors. Every error is ``application/problem+json`` with the :data:`PROBLEM_SCHEMA` (RFC 9457), raised by
  :mod:`api.problems`' handlers rather than returned, so FastAPI knows nothing of them: 400 and 413 where a
  body is read, 401/403/404 on the routes that need a caller, 409 on state-changing ones, 422 wherever input is
  validated (in place of FastAPI's own 422 shape, which the service never answers), 503 everywhere (the ledger
  starting, stopping, or its chain unreachable). A route that declares an answer of its own for one of these
  statuses (``/health``'s 503) keeps it beside the problem;
- the files: every route that takes ``format`` answers ``text/csv`` and the XLSX media type beside its JSON
  (:func:`api.exports.declare`);
- links (OpenAPI 3 ``links``, declared with each action: :data:`api.actions.LINKS`) from what a request creates
  to the routes that use it: an operation to ``GET /operations/{operation_id}``, an invoice to its confirmation,
  a piece to its transfer, a financing request to its approval and funding, a receipt and a pledge to theirs.
  FastAPI has no parameter for links: they are resolved here, to the operationIds FastAPI generated.

The operations' own answers (``202`` accepted, ``200`` final, both :class:`api.operations.OperationView`) are
declared by the actions (:mod:`api.actions`); this module no longer completes them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from api.actions import LINKS
from api.exports import declare as declare_files
from api.problems import PROBLEM_JSON

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; `type` is stable per kind of error (`urn:scf:problem:...`).",
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "error": {"type": "string", "description": "a contract error's name"},
        "arguments": {"type": "object", "description": "a contract error's arguments"},
        "operation_id": {"type": "string", "description": "the operation that failed on chain"},
        "errors": {
            "type": "array",
            "description": "what did not match the schema (422 validation)",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": "string"}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
    "required": ["type", "title", "status"],
    "additionalProperties": True,
}

_ERROR_DESCRIPTIONS = {
    "400": "the body cannot be parsed as the declared media type",
    "401": "no caller: the `Authorization: Bearer` key or token is missing, unknown, revoked or expired",
    "403": "the caller's role or relation to the object does not allow this",
    "404": "no such object, or the caller may not see it",
    "409": "already done, or the object is in a state that does not allow this",
    "413": "the request body is larger than the service accepts (`SCF_MAX_REQUEST_BYTES`, documents "
    "`SCF_MAX_DOCUMENT_BYTES`)",
    "422": "the request does not match the schema, or breaks a rule of the ledger",
    "503": "the ledger is starting or stopping, or its chain does not answer",
}


def _problem(status: str) -> dict[str, Any]:
    return {
        "description": _ERROR_DESCRIPTIONS[status],
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def complete(document: dict[str, Any]) -> dict[str, Any]:
    """Complete FastAPI's ``document`` in place (see the module's docstring) and return it."""
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    operation_view = {"$ref": "#/components/schemas/OperationView"}
    operation_ids: dict[tuple[str, str], str] = {}
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            operation_ids[(method, path)] = operation["operationId"]
            responses: dict[str, Any] = operation.setdefault("responses", {})
            secured = bool(operation.get("security"))
            validated = bool(operation.get("parameters") or operation.get("requestBody"))
            statuses = ["503"]
            if secured:
                statuses += ["401", "403", "404", "422"]
                if method != "get":
                    statuses.append("409")
            elif validated:
                statuses += ["401", "422"]  # sign-in (/auth): an unknown challenge or a bad signature is a 401
            if operation.get("requestBody"):
                statuses += ["400", "413"]
            for status in statuses:
                declared = responses.get(status)
                if declared is None or status == "422":  # FastAPI's own 422 shape is never answered
                    responses[status] = _problem(status)
                else:  # the route's own answer for this status, and the problem beside it
                    declared.setdefault("content", {}).update(_problem(status)["content"])
            operation["responses"] = dict(sorted(responses.items()))
    for (method, path), links in LINKS.items():
        operation = document["paths"][path][method]
        success = "201" if "201" in operation["responses"] else "200"
        operation["responses"][success]["links"] = {
            link.name: {"operationId": operation_ids[(link.method, link.path)], "parameters": dict(link.parameters)}
            for link in links
        }
    declare_files(document)
    get_operation = operation_ids[("get", "/operations/{operation_id}")]
    for method, path in operation_ids:
        responses = document["paths"][path][method]["responses"]
        for status in ("200", "202"):
            if responses.get(status, {}).get("content", {}).get("application/json", {}).get("schema") == operation_view:
                responses[status].setdefault("links", {})["GetOperation"] = {
                    "operationId": get_operation,
                    "parameters": {"operation_id": "$response.body#/operation_id"},
                }
    return document


def install(app: FastAPI) -> None:
    """Serve the completed document at ``/openapi.json`` (and in ``/docs``)."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
