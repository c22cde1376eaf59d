"""Schemathesis against the service's own OpenAPI document: every operation, positive and negative data, each
request sent as one of the cast (operator, regulator, settlement agent, core firm, supplier, financier,
warehouse) over real HTTP to a real service on a real anvil. No answer may be a 5xx, and every answer must
match the document: its status, its media type, and its body's schema (problems included, see
:mod:`api.openapi`). A stateful run follows the document's links (invoice → confirmation → piece → financing
request → approval → funding; receipt → pledge → funding; any operation → ``GET /operations/{id}``).

Fast: a few examples per operation and a short stateful run. ``make soak`` (``SCF_SOAK=1``): 200 examples per
operation and a long stateful run.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis import GenerationMode, checks
from schemathesis.core.failures import FailureGroup

from api.app import create_app
from tests.api.served import Served, serve

FAST_EXAMPLES = 6
SOAK_EXAMPLES = 200
FAST_STEPS, SOAK_STEPS = 8, 40
FAST_SCENARIOS, SOAK_SCENARIOS = 4, 60

ROLES = ("operator", "regulator", "settlement-agent", "core-firm", "supplier", "financier", "warehouse")
CALLERS = itertools.cycle(ROLES)
"""Who sends the next request: each role in turn, so every route is reached past authentication by each."""


def negative_data_rejection(ctx: Any, response: Any, case: Any) -> bool | None:
    """schemathesis's check that invalid input is refused, except for multipart forms. A form's fields travel
    as text: a field whose schema says string, mutated into a boolean or a number, arrives as the text
    ``true`` or ``12``, a valid string, and the service rightly accepts it (the soak's stateful run met one,
    a document upload whose ``note`` was sent as a typed part). Every other negative case is checked."""
    if (case.media_type or "").startswith("multipart/form-data"):
        return None
    result: bool | None = checks.negative_data_rejection(ctx, response, case)
    return result


#: The checks that must hold for every answer (the brief: no 5xx, and every answer as the document says).
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
    negative_data_rejection,
]

# The document as the service serves it; built without starting anything (no lifespan runs for it).
# The event stream is left out: it answers for as long as the client listens (tests/api/test_events.py reads
# bounded streams of it).
schema = schemathesis.openapi.from_dict(create_app().openapi()).exclude(path="/events/stream")
# Unknown query parameters are ignored, as HTTP APIs do; the Authorization header is the test's own (each role
# in turn, see CALLERS), so negative cases do not strip it: unauthenticated requests are the auth tests' part.
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    allow_extra_parameters=False,
    with_security_parameters=False,
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The service, and one participant of each role (core firm, financier and supplier with cash)."""
    with serve(tmp_path_factory.mktemp("fuzz")) as running, httpx.Client(base_url=running.base_url, timeout=60) as http:
        for role in ROLES[1:]:
            running.onboard(http, role, role)
        for role in ("core-firm", "financier", "supplier"):
            running.deposit(http, "settlement-agent", role, 10**12)
        yield running


def call(case: Any, served: Served, who: str) -> None:
    case.call_and_validate(base_url=served.base_url, headers=served.headers(who), checks=CHECKS, timeout=60)


_FUZZ_SETTINGS = {
    "deadline": None,
    "suppress_health_check": list(HealthCheck),
    "derandomize": False,
    "database": None,
}


@schema.parametrize()
@settings(max_examples=FAST_EXAMPLES, **_FUZZ_SETTINGS)  # type: ignore[arg-type]
def test_no_input_gets_a_5xx_or_an_answer_outside_the_document(case: Any, served: Served) -> None:
    call(case, served, next(CALLERS))


@pytest.mark.soak
@schema.parametrize()
@settings(max_examples=SOAK_EXAMPLES, **_FUZZ_SETTINGS)  # type: ignore[arg-type]
def test_no_input_gets_a_5xx_or_an_answer_outside_the_document_soak(case: Any, served: Served) -> None:
    call(case, served, next(CALLERS))


def run_state_machine(served: Served, scenarios: int, steps: int) -> None:
    base = schema.as_state_machine()

    class Machine(base):  # type: ignore[misc,valid-type]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            # State-changing calls wait for their block, so the links find the ids they created.
            headers = served.headers(next(CALLERS))
            if case.method.upper() != "GET":
                headers["Prefer"] = "wait=10"
            return {"base_url": served.base_url, "headers": headers, "timeout": 60}

        def validate_response(self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any) -> None:
            answers.append(response.status_code)
            try:
                case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs or None)
            except (AssertionError, FailureGroup) as failure:
                failures.append(f"{case.method.upper()} {case.path}: {failure}")

    # Each scenario is a run of its own, and failures are collected, not raised. The server's state outlives a
    # scenario, so when hypothesis replays part of an earlier one (to explore around it, or to report a failure)
    # other rules are enabled and other ids drawn, and it stops with "inconsistent data generation" instead.
    failures: list[str] = []
    answers: list[int] = []
    for _ in range(scenarios):
        Machine.run(
            settings=settings(
                max_examples=1,
                stateful_step_count=steps,
                phases=[Phase.generate],
                **_FUZZ_SETTINGS,  # type: ignore[arg-type]
            )
        )
    print(f"\n[schemathesis] {scenarios} scenarios: {len(answers)} answers checked, {Counter(answers)}")
    assert not failures, f"{len(failures)} failing answers; the first:\n{failures[0]}"


def test_linked_sequences_of_requests_get_no_5xx_and_answers_inside_the_document(served: Served) -> None:
    run_state_machine(served, FAST_SCENARIOS, FAST_STEPS)


@pytest.mark.soak
def test_linked_sequences_of_requests_get_no_5xx_and_answers_inside_the_document_soak(served: Served) -> None:
    run_state_machine(served, SOAK_SCENARIOS, SOAK_STEPS)
