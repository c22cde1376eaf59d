"""The portal's first page of a list, as a person waits for it: Debian's chromium (Playwright for Python) signs
in through the portal's sign-in form once per participant, then loads each list page fresh (``page.reload``)
a number of times, and times from the navigation's start to the first page of the list drawn (rows of
``main table tbody tr``, or the page's empty text ``main p.empty``).

Two clocks measure each load:

- ``wall``: the bench's own, from just before ``page.reload`` to Playwright seeing the list drawn (includes
  Playwright's round trips to the browser, a few milliseconds);
- ``drawn``: the page's own, ``performance.now()`` (milliseconds since the navigation started) at the moment a
  ``MutationObserver`` installed before any of the page's scripts sees the list in the document, set as the
  performance mark ``scf-list-drawn``.

Beside them, the browser's Navigation Timing (document received, ``DOMContentLoaded``, ``load``) and the
Resource Timing of the API calls the page made (``fetch``): ``api`` is the time during which at least one of
them was in flight (the service's time, loopback included), ``page`` the rest of ``drawn`` (loading the HTML
and the ES modules, running them, drawing); ``assets_loaded`` is when the last of the page's own files (ES
modules, stylesheet) had arrived. No figure is asserted anywhere: the benchmark reports them.

Where Playwright or chromium is missing, :func:`measure_portal` answers ``{"skipped": reason}``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.load import BenchmarkFailed
from bench.rest import percentile

TARGET_SECONDS = 1.0
"""Issue 15: the first page of a list under one second with 10,000 pieces in the ledger."""

TARGET_SIZE = 10_000
"""Pieces held at which :data:`TARGET_SECONDS` is judged."""

LIST_DRAWN = "main table tbody tr, main p.empty"
"""What counts as the first page of a list drawn: its rows, or its empty text."""

MARK = "scf-list-drawn"

_OBSERVER = """
(() => {
  const SELECTOR = __SELECTOR__;
  const seen = () => {
    if (performance.getEntriesByName(__MARK__).length) return true;
    if (!document.querySelector(SELECTOR)) return false;
    performance.mark(__MARK__);
    return true;
  };
  const observer = new MutationObserver(() => { if (seen()) observer.disconnect(); });
  observer.observe(document, { childList: true, subtree: true });
})();
""".replace("__SELECTOR__", json.dumps(LIST_DRAWN)).replace("__MARK__", json.dumps(MARK))
"""Installed before the page's own scripts (Playwright's init script, not subject to the page's CSP)."""

_TIMINGS = """
() => {
  const [nav] = performance.getEntriesByType("navigation");
  const [drawn] = performance.getEntriesByName(__MARK__);
  const api = performance.getEntriesByType("resource")
    .filter((entry) => entry.initiatorType === "fetch")
    .map((entry) => ({ name: entry.name, start: entry.startTime, end: entry.responseEnd }));
  const assets = performance.getEntriesByType("resource")
    .filter((entry) => entry.initiatorType !== "fetch")
    .map((entry) => ({ name: entry.name, start: entry.startTime, end: entry.responseEnd }));
  return {
    drawn: drawn ? drawn.startTime : null,
    rows: document.querySelectorAll("main table tbody tr").length,
    navigation: nav ? {
      response_end: nav.responseEnd,
      dom_content_loaded: nav.domContentLoadedEventEnd,
      load: nav.loadEventEnd,
    } : null,
    api,
    assets,
  };
}
""".replace("__MARK__", json.dumps(MARK))


def chromium_path() -> Path | None:
    """The chromium to drive: ``SCF_CHROMIUM`` or Debian's ``/usr/bin/chromium``, else one on the ``PATH``."""
    configured = Path(os.environ.get("SCF_CHROMIUM", "/usr/bin/chromium"))
    if configured.is_file():
        return configured
    found = shutil.which("chromium")
    return Path(found) if found else None


def skip_reason(chromium: Path | None = None, *, playwright_module: str = "playwright.sync_api") -> str | None:
    """Why the portal cannot be measured here (no Playwright, no chromium), or None."""
    try:
        __import__(playwright_module)
    except ImportError as exc:
        return f"Playwright for Python is not installed ({exc}): `make setup` installs it"
    if chromium is None and chromium_path() is None:
        return "no chromium (set SCF_CHROMIUM, or `make browser` installs Debian's package)"
    if chromium is not None and not chromium.is_file():
        return f"no chromium at {chromium}"
    return None


def api_busy(calls: Sequence[Mapping[str, float]]) -> float:
    """Milliseconds during which at least one of ``calls`` (``start``, ``end``) was in flight: the union of
    their intervals, so that concurrent calls count once."""
    spans = sorted((float(c["start"]), float(c["end"])) for c in calls if c["end"] >= c["start"])
    busy, reach = 0.0, float("-inf")
    for start, end in spans:
        if end <= reach:
            continue
        busy += end - max(start, reach)
        reach = end
    return busy


def api_path(url: str) -> str:
    """The path of an API call without its origin and query: ``http://h/receivables?size=50`` → ``/receivables``."""
    rest = url.split("://", 1)[-1]
    path = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    return path.split("?", 1)[0].split("#", 1)[0]


def _spread(values: Sequence[float]) -> dict[str, float]:
    return {
        "p50": percentile(list(values), 0.50),
        "p95": percentile(list(values), 0.95),
        "max": max(values) if values else 0.0,
    }


def summarize(loads: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """p50/p95/max (seconds) of each clock over ``loads`` (each: ``wall`` s, and the page's ``timings`` in ms as
    :data:`_TIMINGS` answers them), with ``api`` and ``page`` the split of ``drawn`` and each API path's
    p50."""
    wall = [float(load["wall"]) for load in loads]
    drawn, api, page, response, ready, assets = [], [], [], [], [], []
    by_path: dict[str, list[float]] = {}
    for load in loads:
        timings = load["timings"]
        if timings.get("drawn") is None:
            continue
        calls = [c for c in timings["api"] if c["start"] <= timings["drawn"]]
        busy = api_busy(calls) / 1000
        drawn.append(timings["drawn"] / 1000)
        api.append(busy)
        page.append(timings["drawn"] / 1000 - busy)
        loaded = [float(a["end"]) for a in timings.get("assets", []) if a["start"] <= timings["drawn"]]
        if loaded:
            assets.append(max(loaded) / 1000)
        if timings.get("navigation"):
            response.append(timings["navigation"]["response_end"] / 1000)
            ready.append(timings["navigation"]["dom_content_loaded"] / 1000)
        for call in calls:
            by_path.setdefault(api_path(call["name"]), []).append((call["end"] - call["start"]) / 1000)
    return {
        "loads": len(loads),
        "rows": int(loads[-1]["timings"].get("rows", 0)) if loads else 0,
        "wall": _spread(wall),
        "drawn": _spread(drawn),
        "api": _spread(api),
        "page": _spread(page),
        "document": _spread(response),
        "dom_content_loaded": _spread(ready),
        "assets_loaded": _spread(assets),
        "api_calls_p50": {path: statistics.median(times) for path, times in sorted(by_path.items())},
    }


def _timings(page: Any) -> dict[str, Any]:
    """The page's timings once the observer has set its mark (it does as the list is inserted, before Playwright
    can see it; a few polls allow for the observer's microtask). ``page.evaluate`` of a function runs under the
    page's CSP without ``eval``, unlike ``wait_for_function``."""
    timings: dict[str, Any] = page.evaluate(_TIMINGS)
    for _ in range(50):
        if timings["drawn"] is not None:
            break
        time.sleep(0.01)
        timings = page.evaluate(_TIMINGS)
    return timings


def measure_portal(
    base_url: str, api_key: str, pages: Sequence[str], loads: int, *, chromium: Path | None = None
) -> dict[str, Any]:
    """Sign in with ``api_key`` through the portal's form once, then load each of ``pages`` (``receivables``,
    ``invoices``: the part after ``#/``) fresh ``loads`` times; answer each page's :func:`summarize`, or
    ``{"skipped": reason}``."""
    reason = skip_reason(chromium)
    if reason:
        return {"skipped": reason}
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    executable = chromium or chromium_path()
    results: dict[str, Any] = {}
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=str(executable))
        except PlaywrightError as exc:
            return {"skipped": f"chromium did not start: {str(exc).splitlines()[0]}"}
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.add_init_script(_OBSERVER)
            page = context.new_page()
            page.goto(base_url.rstrip("/") + "/")
            page.wait_for_selector("body[data-ready=true]")
            page.fill("#api-key", api_key)
            page.click("form:has(#api-key) button[type=submit]")
            page.wait_for_selector("#who .who-name")
            for name in pages:
                page.goto(f"{base_url.rstrip('/')}/#/{name}")
                page.reload()  # the hash alone draws without a navigation: start from a fresh document
                page.wait_for_selector(LIST_DRAWN, state="visible")
                measured = []
                for _ in range(loads):
                    started = time.perf_counter()
                    page.reload(wait_until="commit")
                    page.wait_for_selector(LIST_DRAWN, state="visible")
                    wall = time.perf_counter() - started
                    measured.append({"wall": wall, "timings": _timings(page)})
                results[name] = summarize(measured)
        except PlaywrightError as exc:
            raise BenchmarkFailed(f"the portal's first page could not be measured: {exc}") from exc
        finally:
            browser.close()
    return results


async def measure_portal_async(
    base_url: str, api_key: str, pages: Sequence[str], loads: int, *, chromium: Path | None = None
) -> dict[str, Any]:
    """:func:`measure_portal` from async code: Playwright's sync API in a thread of its own."""
    return await asyncio.to_thread(measure_portal, base_url, api_key, pages, loads, chromium=chromium)


def bearer_key(headers: Mapping[str, str]) -> str:
    """The API key of ``Authorization: Bearer <key>`` headers."""
    scheme, _, key = headers.get("Authorization", "").partition(" ")
    if scheme != "Bearer" or not key:
        raise ValueError("no bearer API key in the headers")
    return key
