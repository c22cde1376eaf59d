"""The OpenAPI document only grows: compared with ``data/openapi-before.json`` (the document of the service before
the read routes declared their answers), no path, operation, parameter, request-body field, response, response
field, problem answer, link or component schema is gone or renamed, and no declared type changed. New
descriptions, schemas, fields and answers are additions, and welcome.

And every route says what it answers (a ``response_model``, a declared response class, or a declared answer
model) and has a description: the read routes theirs from :mod:`api.models`, the actions theirs from the
operation catalogue (:mod:`api.actions`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel

from api.app import create_app
from api.problems import PROBLEM_JSON
from ledger.acts import ACTS

BEFORE = Path(__file__).parent / "data" / "openapi-before.json"


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app()


@pytest.fixture(scope="module")
def documents(app: FastAPI) -> tuple[dict[str, Any], dict[str, Any]]:
    return json.loads(BEFORE.read_text()), app.openapi()


def resolve(document: dict[str, Any], schema: Any) -> Any:
    """``schema`` with a top-level ``$ref`` followed (repeatedly)."""
    seen = 0
    while isinstance(schema, dict) and "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = {**document["components"]["schemas"][name], **{k: v for k, v in schema.items() if k != "$ref"}}
        seen += 1
        assert seen < 20, "a cycle of references"
    return schema


def _types(document: dict[str, Any], schema: Any) -> set[str]:
    """The JSON types a schema admits ({} when it does not say)."""
    schema = resolve(document, schema)
    if not isinstance(schema, dict):
        return set()
    if "type" in schema:
        return {schema["type"]} if isinstance(schema["type"], str) else set(schema["type"])
    types: set[str] = set()
    for key in ("anyOf", "oneOf"):
        for option in schema.get(key, []):
            option_types = _types(document, option)
            if not option_types:
                return set()  # an option of any type: the union says nothing
            types |= option_types
    return types


def schema_losses(
    before_doc: dict[str, Any], before: Any, after_doc: dict[str, Any], after: Any, where: str, depth: int = 0
) -> Iterator[str]:
    """What ``before`` declared that ``after`` no longer does: a property, a required field, a type."""
    if depth > 12:
        return
    before, after = resolve(before_doc, before), resolve(after_doc, after)
    if not isinstance(before, dict) or not before:
        return  # before said nothing: anything is an addition
    before_types, after_types = _types(before_doc, before), _types(after_doc, after)
    if before_types and after_types and not after_types <= before_types | {"null"} and before_types != after_types:
        yield f"{where}: type {sorted(before_types)} became {sorted(after_types)}"
    if before_types and not after_types and after:
        yield f"{where}: type {sorted(before_types)} no longer declared"
    for name, sub in before.get("properties", {}).items():
        after_properties = after.get("properties", {})
        if name not in after_properties:
            yield f"{where}: property {name!r} gone"
            continue
        yield from schema_losses(before_doc, sub, after_doc, after_properties[name], f"{where}.{name}", depth + 1)
    for name in before.get("required", []):
        if name not in after.get("required", []):
            yield f"{where}: {name!r} no longer required"
    if "items" in before:
        yield from schema_losses(before_doc, before["items"], after_doc, after.get("items"), f"{where}[]", depth + 1)
    if before.get("additionalProperties") is True and after.get("additionalProperties") is False:
        yield f"{where}: additional properties no longer allowed"


def document_losses(before: dict[str, Any], after: dict[str, Any]) -> Iterator[str]:
    for path, item in before["paths"].items():
        if path not in after["paths"]:
            yield f"path {path} gone"
            continue
        for method, operation in item.items():
            now = after["paths"][path].get(method)
            where = f"{method.upper()} {path}"
            if now is None:
                yield f"{where} gone"
                continue
            if operation.get("operationId") != now.get("operationId"):
                yield f"{where}: operationId {operation.get('operationId')} became {now.get('operationId')}"
            if set(operation.get("tags", [])) - set(now.get("tags", [])):
                yield f"{where}: tags {operation.get('tags')} became {now.get('tags')}"
            if operation.get("security") != now.get("security"):
                yield f"{where}: security changed"
            parameters = {(p["name"], p["in"]): p for p in now.get("parameters", [])}
            for parameter in operation.get("parameters", []):
                key = (parameter["name"], parameter["in"])
                if key not in parameters:
                    yield f"{where}: parameter {key} gone"
                    continue
                if parameter.get("required", False) != parameters[key].get("required", False):
                    yield f"{where}: parameter {key} required changed"
                yield from schema_losses(
                    before, parameter.get("schema"), after, parameters[key].get("schema"), f"{where} {key}"
                )
            if "requestBody" in operation:
                body = now.get("requestBody")
                if body is None:
                    yield f"{where}: request body gone"
                else:
                    for media, content in operation["requestBody"].get("content", {}).items():
                        if media not in body.get("content", {}):
                            yield f"{where}: request body {media} gone"
                            continue
                        yield from schema_losses(
                            before,
                            content.get("schema"),
                            after,
                            body["content"][media].get("schema"),
                            f"{where} body",
                        )
            for status, response in operation.get("responses", {}).items():
                answer = now.get("responses", {}).get(status)
                if answer is None:
                    yield f"{where}: response {status} gone"
                    continue
                for media, content in response.get("content", {}).items():
                    if media not in answer.get("content", {}):
                        yield f"{where}: response {status} {media} gone"
                        continue
                    yield from schema_losses(
                        before,
                        content.get("schema"),
                        after,
                        answer["content"][media].get("schema"),
                        f"{where} {status}",
                    )
                for link, target in response.get("links", {}).items():
                    if answer.get("links", {}).get(link) != target:
                        yield f"{where}: response {status} link {link} gone or changed"
                for header in response.get("headers", {}):
                    if header not in answer.get("headers", {}):
                        yield f"{where}: response {status} header {header} gone"
    for name, schema in before["components"]["schemas"].items():
        if name not in after["components"]["schemas"]:
            yield f"component schema {name} gone"
            continue
        yield from schema_losses(before, schema, after, after["components"]["schemas"][name], f"#/{name}")
    for key in ("securitySchemes",):
        for name in before["components"].get(key, {}):
            if name not in after["components"].get(key, {}):
                yield f"component {key} {name} gone"


def test_the_document_only_grows(documents: tuple[dict[str, Any], dict[str, Any]]) -> None:
    before, after = documents
    assert list(document_losses(before, after)) == []


def test_the_comparison_sees_a_loss(documents: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """The walk above finds what it is there to find: a response field, a parameter, a problem answer, a field of
    the problem schema gone, and a type changed."""
    before, after = documents
    broken = json.loads(json.dumps(after))
    schemas = broken["components"]["schemas"]
    del schemas["InvoiceView"]["properties"]["outstanding"]
    schemas["InvoiceView"]["properties"]["amount"] = {"type": "string"}
    get_invoices = broken["paths"]["/invoices"]["get"]
    get_invoices["parameters"] = [p for p in get_invoices["parameters"] if p["name"] != "state"]
    del broken["paths"]["/pledges/{pledge_id}"]["get"]["responses"]["404"]
    schemas["Problem"]["properties"]["kind"] = schemas["Problem"]["properties"].pop("type")
    losses = list(document_losses(before, broken))
    assert any("('state', 'query') gone" in loss for loss in losses), losses
    assert any("response 404 gone" in loss for loss in losses), losses
    assert any("property 'type' gone" in loss for loss in losses), losses
    against_now = list(document_losses(after, broken))
    assert any("property 'outstanding' gone" in loss for loss in against_now), against_now
    assert any(".amount: type ['integer'] became ['string']" in loss for loss in against_now), against_now


def _declares_answer(route: APIRoute) -> bool:
    """A model of its own (not a ``dict`` FastAPI read off the return annotation), a response class other than
    JSON, or an answer model declared for its success status."""
    if isinstance(route.response_model, type) and issubclass(route.response_model, BaseModel):
        return True
    if route.response_class is not JSONResponse and not _is_default(route):
        return True
    status = route.status_code or 200
    declared: dict[str, Any] = {**route.responses.get(status, {}), **route.responses.get(str(status), {})}
    return "model" in declared


def _is_default(route: APIRoute) -> bool:
    from fastapi.datastructures import DefaultPlaceholder

    return isinstance(route.response_class, DefaultPlaceholder)


def _routes(app: FastAPI) -> list[APIRoute]:
    """The application's routes in the document, through the routers it includes (FastAPI keeps an included
    router as one entry of ``app.routes``, the router's own routes inside it)."""
    found: list[APIRoute] = []

    def walk(routes: list[Any]) -> None:
        for route in routes:
            included = getattr(route, "original_router", None)
            if included is not None:
                walk(included.routes)
            elif isinstance(route, APIRoute) and route.include_in_schema:
                found.append(route)

    walk(list(app.routes))
    assert len(found) >= 60, f"only {len(found)} routes found: the walk misses some"
    return found


def test_every_route_declares_its_answer_and_describes_itself(app: FastAPI) -> None:
    missing_model, missing_description = [], []
    for route in _routes(app):
        name = f"{','.join(sorted(route.methods))} {route.path}"
        if not _declares_answer(route):
            missing_model.append(name)
        if not (route.description or "").strip():
            missing_description.append(name)
    assert missing_model == []
    assert missing_description == []


def test_every_read_route_has_a_model_in_the_document(documents: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """Every GET's success answer has a schema that says something (not ``{}``), and a description."""
    _, after = documents
    vague = []
    for path, item in after["paths"].items():
        operation = item.get("get")
        if operation is None:
            continue
        assert operation.get("description"), path
        content = operation["responses"]["200"].get("content", {})
        declared = [content[t] for t in ("application/json", "text/plain", "text/event-stream") if t in content]
        schema = declared[0].get("schema") if declared else None
        if path.startswith("/documents/"):
            continue  # the document's own bytes, whatever their type
        if not schema:
            vague.append(path)
    assert vague == []


def test_every_get_route_is_checked(app: FastAPI) -> None:
    """No GET answers 202 by declaration (the operation answers are the write routes')."""
    for route in _routes(app):
        if "GET" in route.methods:
            assert route.status_code in (None, 200), route.path


def test_every_route_of_an_operation_with_a_signed_act_declares_the_428(
    documents: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    """A self-custody caller's state-changing request is answered 428 with the act to sign: every route whose
    operation has an act says so, as a problem."""
    _, after = documents
    with_act, undeclared = set(), []
    for path, item in after["paths"].items():
        for method, operation in item.items():
            description = operation.get("description", "")
            if "Operation `" not in description:
                continue
            name = description.split("Operation `", 1)[1].split("`", 1)[0]
            if name not in ACTS:
                continue
            with_act.add(name)
            declared = operation["responses"].get("428")
            if declared is None or PROBLEM_JSON not in declared.get("content", {}):
                undeclared.append(f"{method.upper()} {path}")
    assert undeclared == []
    # One operation has no route of its own (the ledger client calls it): its act goes to POST /acts.
    assert with_act == set(ACTS) - {"obligation.default"}
