"""The portal in a real browser: Debian's chromium (``/usr/bin/chromium``, installed by the set-up of
``make test``) driven by Playwright, against the service served over HTTP (anvil, uvicorn; tests.api.served).

Each role signs in in a browser context of its own (its own session storage), as separate people would.
Screenshots go to a temporary folder, or to ``SCF_PORTAL_SCREENSHOTS`` (``docs/portal`` to refresh the README's
pictures: ``SCF_PORTAL_SCREENSHOTS=docs/portal make test``, or the portal tests alone).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from tests.api.served import Served

CHROMIUM = Path(os.environ.get("SCF_CHROMIUM", "/usr/bin/chromium"))

try:
    from playwright.sync_api import Browser, Page, sync_playwright
except ImportError:  # pragma: no cover - `make setup` installs it
    pytest.skip("playwright is not installed (`make setup` installs it)", allow_module_level=True)

if not CHROMIUM.is_file() and shutil.which("chromium") is None:
    pytest.skip(
        f"no chromium at {CHROMIUM}: `make test` installs Debian's package (apt-get install chromium); "
        "elsewhere set SCF_CHROMIUM to a Chromium binary",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One chromium per test module, stopped with it: Playwright's sync API runs an event loop in this thread
    while it is open, and a later test of the same process that calls ``asyncio.run`` would find it running."""
    with sync_playwright() as playwright:
        executable = CHROMIUM if CHROMIUM.is_file() else Path(str(shutil.which("chromium")))
        browser = playwright.chromium.launch(executable_path=str(executable))
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = os.environ.get("SCF_PORTAL_SCREENSHOTS")
    folder = Path(target) if target else tmp_path_factory.mktemp("portal-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def watch(page: Page, origin: str) -> list[str]:
    """The page's uncaught exceptions and every request to another origin than the service's, as they happen (a
    test ends with none: the portal loads nothing from a CDN; refusals of the API are answers, not exceptions)."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    def request(request: Any) -> None:
        url: str = request.url
        if not url.startswith((origin + "/", "data:", "blob:")):
            errors.append(f"request to another origin: {url}")

    def dialog(dialog: Any) -> None:  # an alert is how the page reports what it could not do
        errors.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    page.on("request", request)
    page.on("dialog", dialog)
    return errors


def chain_now(served: Served) -> int:
    """The time of the chain's latest block (unix seconds)."""
    block = httpx.post(
        served.anvil.rpc_url,
        json={"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": ["latest", False]},
    ).json()["result"]
    return int(block["timestamp"], 16)


def travel(served: Served, seconds: int) -> None:
    """Move the chain's clock forward (anvil's evm_increaseTime) and mine a block."""
    for method, params in (("evm_increaseTime", [seconds]), ("evm_mine", [])):
        httpx.post(served.anvil.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params})


def chain_day(served: Served, days: int) -> str:
    """The chain's date ``days`` days from its now (ISO)."""
    return (datetime.fromtimestamp(chain_now(served), UTC) + timedelta(days=days)).date().isoformat()
