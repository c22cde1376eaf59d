"""bench/portal.py's arithmetic and its skip path, and the portal's section of docs/benchmarks.md. No figure is
asserted against a time: the benchmark measures, `scf bench-portal` reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.portal import (
    TARGET_SIZE,
    api_busy,
    api_path,
    bearer_key,
    measure_portal,
    skip_reason,
    summarize,
)
from bench.report import BEGIN, END, PORTAL_BEGIN, PORTAL_END, write_portal_results
from bench.runner import portal_target


def test_missing_chromium_is_recorded_as_skipped_not_a_failure(tmp_path: Path) -> None:
    absent = tmp_path / "no-chromium"
    answer = measure_portal("http://127.0.0.1:9", "scf_unused", ["receivables"], 1, chromium=absent)
    assert answer == {"skipped": f"no chromium at {absent}"}


def test_missing_playwright_is_a_reason_to_skip() -> None:
    reason = skip_reason(playwright_module="playwright_that_is_not_installed")
    assert reason is not None and "Playwright" in reason


def test_api_time_counts_overlapping_calls_once() -> None:
    calls = [{"start": 10.0, "end": 30.0}, {"start": 20.0, "end": 40.0}, {"start": 50.0, "end": 55.0}]
    assert api_busy(calls) == pytest.approx(35.0)
    assert api_busy([{"start": 0.0, "end": 100.0}, {"start": 10.0, "end": 20.0}]) == pytest.approx(100.0)
    assert api_busy([]) == 0.0


def test_api_call_is_named_by_its_path() -> None:
    assert api_path("http://127.0.0.1:8000/receivables?size=50&total=false") == "/receivables"
    assert api_path("http://127.0.0.1:8000/participants/me") == "/participants/me"
    assert api_path("http://127.0.0.1:8000") == "/"


def test_bearer_key_is_read_from_the_authorization_header() -> None:
    assert bearer_key({"Authorization": "Bearer scf_abc"}) == "scf_abc"
    with pytest.raises(ValueError):
        bearer_key({"X-Other": "1"})


def _load(wall: float, drawn: float, calls: list[tuple[str, float, float]]) -> dict[str, Any]:
    return {
        "wall": wall,
        "timings": {
            "drawn": drawn,
            "rows": 50,
            "navigation": {"response_end": 20.0, "dom_content_loaded": 150.0, "load": 160.0},
            "api": [{"name": f"http://h{path}?size=50", "start": start, "end": end} for path, start, end in calls],
        },
    }


def test_page_time_is_drawn_less_the_api_calls_made_before_the_list_was_drawn() -> None:
    loads = [
        _load(0.5, 400.0, [("/participants/me", 160.0, 180.0), ("/receivables", 180.0, 230.0)]),
        _load(0.7, 600.0, [("/participants/me", 160.0, 200.0), ("/receivables", 200.0, 300.0), ("/late", 700, 710)]),
    ]
    summary = summarize(loads)
    assert summary["loads"] == 2 and summary["rows"] == 50
    assert summary["wall"]["max"] == 0.7
    assert sorted([summary["api"]["p50"], summary["api"]["p95"]]) == pytest.approx([0.07, 0.14])
    assert summary["page"]["max"] == pytest.approx(0.46)  # 600 ms drawn, 140 ms of API calls
    assert set(summary["api_calls_p50"]) == {"/participants/me", "/receivables"}  # the late call is not counted
    assert summary["api_calls_p50"]["/receivables"] == pytest.approx(0.075)


def _row(size: int, receivables_p95: float, invoices_p95: float) -> dict[str, Any]:
    figures = summarize([_load(receivables_p95, 300.0, [("/receivables", 100.0, 150.0)])])
    return {
        "size": size,
        "ledger_pieces": size + 12,
        "portal": {"receivables": figures, "invoices": {"skipped": "no chromium"}},
        "portal_receivables_p50": receivables_p95 / 2,
        "portal_receivables_p95": receivables_p95,
        "portal_invoices_p50": invoices_p95 / 2,
        "portal_invoices_p95": invoices_p95,
    }


def test_portal_target_is_judged_at_ten_thousand_pieces_on_the_slower_page() -> None:
    assert portal_target([_row(1_000, 0.3, 0.3)]) is None
    met = portal_target([_row(1_000, 2.0, 2.0), _row(TARGET_SIZE, 0.4, 0.9)])
    assert met is not None and met["met"] and met["p95"] == 0.9
    missed = portal_target([_row(TARGET_SIZE, 1.2, 0.2)])
    assert missed is not None and not missed["met"]


def test_portal_results_rewrite_only_their_own_section(tmp_path: Path) -> None:
    markdown = tmp_path / "benchmarks.md"
    full_table = f"{BEGIN}\nthe last full run's table\n{END}"
    markdown.write_text(f"# Benchmarks\n\n{full_table}\n\n{PORTAL_BEGIN}\nold\n{PORTAL_END}\n\nTail kept.\n")
    results = {
        "kind": "portal",
        "mode": "full",
        "started_at": "2026-12-06T02:30:00+00:00",
        "duration_seconds": 300.0,
        "block_time": 1.0,
        "config": {"portal_loads": 20},
        "machine": {"cores": 2, "python": "3.11", "anvil": "anvil 1"},
        "scaling": {"sizes": [_row(TARGET_SIZE, 0.4, 0.5)], "portal_target": None},
    }
    results["scaling"]["portal_target"] = portal_target(results["scaling"]["sizes"])
    written = write_portal_results(results, tmp_path / "results", markdown)
    assert written.name == "20261206T023000-portal-full.json"
    assert json.loads(written.read_text())["scaling"]["portal_target"]["met"] is True
    text = markdown.read_text()
    assert full_table in text and text.endswith("Tail kept.\n") and "\nold\n" not in text
    section = text.split(PORTAL_BEGIN, 1)[1].split(PORTAL_END, 1)[0]
    assert "`#/receivables` (the holder)" in section and "skipped: no chromium" in section
    assert "met" in section and written.name in section
