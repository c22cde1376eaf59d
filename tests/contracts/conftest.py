"""Shared fixtures of the contract tests: one compiled, deployed sandbox per session, reset per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ledger.tooling.sandbox import Sandbox
from tests.contracts.anvil_sandbox import anvil_sandbox  # noqa: F401 (the soak runs' sandbox on anvil)


@pytest.fixture(scope="session")
def sandbox() -> Sandbox:
    """Compiled once, deployed once; tests reset it with snapshot/revert (the `ledger` fixture)."""
    return Sandbox.create()


@pytest.fixture
def ledger(sandbox: Sandbox) -> Iterator[Sandbox]:
    """The sandbox, with every change a test makes reverted afterwards."""
    with sandbox.isolated():
        yield sandbox
