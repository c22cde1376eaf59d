"""RFC 9457 problem details: every error the service returns, with a stable ``type`` per kind of error.

Contract errors keep their Solidity name: ``urn:scf:problem:contract:ReceivablesPieceLocked``, with the
status chosen by what the error means, its kind (:data:`KIND_STATUS`), declared beside the error in the
contracts as ``/// @custom:kind``: someone else's object 403, unknown 404, already done or in the way 409, a
rule of the ledger broken 422 (an asset sent to an address that may not receive it, such as one of the
ledger's own contracts, is the last); and the error's arguments under ``arguments``. The service's own
errors use ``urn:scf:problem:<slug>``. No input produces a 500: unexpected exceptions are logged with the
request id and answered with a 500 that says only that (the tests fail on any of them); a chain that does
not answer is a 503 ``chain-unavailable`` with ``Retry-After``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

from eth_utils import is_address, to_checksum_address
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.client import OperationRolledBack
from ledger.errors import ContractRevert, ErrorKind, OutOfGas
from ledger.pipeline import NodeUnavailable, RpcError

logger = logging.getLogger("api")

PROBLEM_JSON = "application/problem+json"

KIND_STATUS: Final[Mapping[ErrorKind, int]] = {
    ErrorKind.FORBIDDEN: 403,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.CONFLICT: 409,
    ErrorKind.INVALID: 422,
}
"""The HTTP status of each kind of contract error (the ``@custom:kind`` beside the error in the contracts)."""

_UNKINDED_STATUS: Final = KIND_STATUS[ErrorKind.INVALID]


def contract_status(error: ContractRevert | type[ContractRevert]) -> int:
    """The HTTP status of a contract error, from its kind. An error without one (its class was made by no
    decoder with kinds, or the error lacks its ``@custom:kind``, which ``tests/contracts/test_error_docs.py``
    rejects) is a 422, logged."""
    kind = error.kind
    if kind is None:
        logger.warning("contract error %s has no kind (@custom:kind); answered %d", error.error_name, _UNKINDED_STATUS)
        return _UNKINDED_STATUS
    return KIND_STATUS[kind]


class Problem(Exception):
    """An error answered as ``application/problem+json``."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title)
        self.headers = dict(headers or {})
        """Headers of the answer, such as ``Retry-After``."""
        self.status = status
        self.type = slug if slug.startswith("urn:") else f"urn:scf:problem:{slug}"
        self.title = title
        self.detail = detail
        self.extra = extra

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


def from_contract(error: ContractRevert) -> Problem:
    """The problem for a contract error (raised at pre-flight or by a failed operation)."""
    return Problem(
        contract_status(error),
        f"urn:scf:problem:contract:{error.name}",
        error.name,
        f"the ledger's contracts refused: {error}",
        error=error.name,
        arguments=jsonable(error.arguments),
    )


def out_of_gas(error: OutOfGas) -> Problem:
    """The problem of an operation that ran out of gas however much the pipeline gave it: the chain's limit, not a
    rule of the ledger (a 503: try again later, or ask the operator to look at the node's gas limit)."""
    return Problem(
        503,
        "out-of-gas",
        "Out of gas",
        f"the transaction ran out of gas even when sent again with more; it is not the contracts' refusal: {error}",
        arguments=jsonable(error.arguments),
    )


def jsonable(value: Any) -> Any:
    """Contract values as JSON: bytes as 0x-hex, big integers as decimal strings beyond 2**53."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**53 else str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def checksummed_address(value: str, what: str | None = None) -> str:
    """``value`` in its EIP-55 form, or a 422 ``validation`` problem naming ``what`` it was to be."""
    if not is_address(value):
        named = f"{what} {value!r}" if what else repr(value)
        detail = f"{named} is not an Ethereum address (0x and 40 hex digits)"
        raise Problem(422, "validation", "Invalid request", detail)
    return str(to_checksum_address(value))


def problem_response(problem: Problem, request: Request | None = None) -> JSONResponse:
    instance = str(request.url.path) if request is not None else None
    headers = {"WWW-Authenticate": "Bearer"} if problem.status == 401 else {}
    headers.update(problem.headers)
    return JSONResponse(problem.body(instance), status_code=problem.status, media_type=PROBLEM_JSON, headers=headers)


_HTTP_SLUGS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthenticated", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    409: ("conflict", "Conflict"),
    413: ("too-large", "Request too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("validation", "Invalid request"),
    429: ("too-many-requests", "Too many requests"),
    503: ("unavailable", "Service unavailable"),
}


def chain_error(exc: RpcError) -> Problem:
    """The node answered a read or a pre-flight with an error that is not a revert (a contract's answer is decoded
    before it gets here): the chain's trouble, not the request's, so a 503 to retry."""
    logger.warning("the chain answered with an error: %s", exc)
    detail = f"the ledger's chain answered with an error ({exc.message}); retry"
    return Problem(503, "chain-error", "Chain error", detail, headers={"Retry-After": "1"})


def problem_of(exc: Exception) -> Problem:
    """The problem the service answers for ``exc`` (what the handlers of :func:`install` answer), for an answer
    that carries several outcomes, each its own problem (the batch route)."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, ContractRevert):
        return from_contract(exc)
    if isinstance(exc, NodeUnavailable | OSError):
        logger.warning("the chain did not answer: %s", exc)
        detail = "the ledger's chain did not answer; retry"
        return Problem(503, "chain-unavailable", "Chain unavailable", detail, headers={"Retry-After": "1"})
    if isinstance(exc, RpcError):
        return chain_error(exc)
    if isinstance(exc, OutOfGas):
        problem = out_of_gas(exc)
        problem.headers["Retry-After"] = "1"
        return problem
    if isinstance(exc, OperationRolledBack):
        logger.warning("%s", exc)
        detail = f"{exc}; it is being sent again, retry"
        return Problem(503, "chain-rolled-back", "Chain went back", detail, headers={"Retry-After": "1"})
    logger.error("unexpected error", exc_info=exc)
    return Problem(500, "internal", "Internal error", "an unexpected error; it was logged")


def install(app: FastAPI) -> None:
    """Register the problem handlers on ``app``."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc, request)

    @app.exception_handler(ContractRevert)
    async def _contract(request: Request, exc: ContractRevert) -> JSONResponse:
        return problem_response(from_contract(exc), request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()
        ]
        problem = Problem(422, "validation", "Invalid request", "the request does not match the schema", errors=errors)
        return problem_response(problem, request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug, title = _HTTP_SLUGS.get(exc.status_code, ("http", "HTTP error"))
        detail = exc.detail if isinstance(exc.detail, str) else None
        return problem_response(Problem(exc.status_code, slug, title, detail), request)

    @app.exception_handler(NodeUnavailable)
    @app.exception_handler(OSError)  # web3's reads: requests' connection errors and timeouts are OSErrors
    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        logger.warning("%s %s: the chain did not answer: %s", request.method, request.url.path, exc)
        problem = Problem(503, "chain-unavailable", "Chain unavailable", "the ledger's chain did not answer; retry")
        response = problem_response(problem, request)
        response.headers["Retry-After"] = "1"
        return response

    @app.exception_handler(RpcError)
    async def _chain_error(request: Request, exc: RpcError) -> JSONResponse:
        return problem_response(chain_error(exc), request)  # its Retry-After comes with the problem

    @app.exception_handler(OutOfGas)
    async def _out_of_gas(request: Request, exc: OutOfGas) -> JSONResponse:
        response = problem_response(out_of_gas(exc), request)
        response.headers["Retry-After"] = "1"
        return response

    @app.exception_handler(OperationRolledBack)
    async def _rolled_back(request: Request, exc: Exception) -> JSONResponse:
        logger.warning("%s %s: %s", request.method, request.url.path, exc)
        problem = Problem(503, "chain-rolled-back", "Chain went back", f"{exc}; it is being sent again, retry")
        response = problem_response(problem, request)
        response.headers["Retry-After"] = "1"
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        problem = Problem(500, "internal", "Internal error", "an unexpected error; it was logged")
        return problem_response(problem, request)
