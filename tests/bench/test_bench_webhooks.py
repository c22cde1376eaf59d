"""``scf bench-webhooks --quick`` runs end to end (its own anvil, the service in its own process, healthy, slow
and failing receivers) and writes its results JSON and its table. No figure is asserted against a time: only
that each was measured, is consistent with the others, and is what the files say."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.webhooks import BEGIN, END, QUICK
from ledger.tooling.chain import find_anvil
from scf.cli import app

try:
    find_anvil()
except Exception as exc:  # pragma: no cover - depends on `npm ci`
    pytest.skip(f"anvil is not installed: {exc}", allow_module_level=True)


def test_quick_webhook_bench_measures_every_healthy_delivery_alone_and_beside_bad_receivers(tmp_path: Path) -> None:
    results_dir, markdown = tmp_path / "results", tmp_path / "benchmarks.md"
    markdown.write_text("# Benchmarks\n\nKept.\n\n" + BEGIN + "\nold table\n" + END + "\n\nTail kept.\n")
    outcome = CliRunner().invoke(
        app, ["bench-webhooks", "--quick", "--results-dir", str(results_dir), "--markdown", str(markdown)]
    )
    assert outcome.exit_code == 0, outcome.output

    [written] = list(results_dir.glob("*.json"))
    assert written.name.endswith("-webhooks-quick.json")
    results = json.loads(written.read_text())
    for key in ("delivery", "ledger"):
        figure = results[key]
        for phase in ("alone", "beside"):
            f = figure[phase]
            assert 0 < f["p50"] <= f["p95"] <= f["max"], (key, phase, f)
        assert figure["ratio_p50"] == pytest.approx(figure["beside"]["p50"] / figure["alone"]["p50"])
        assert figure["ratio_p95"] == pytest.approx(figure["beside"]["p95"] / figure["alone"]["p95"])
    # Every deposit of a phase was timed, and every one of its feed rows reached every healthy receiver.
    assert results["ledger"]["alone"]["count"] == results["ledger"]["beside"]["count"] == QUICK.events
    for phase in ("alone", "beside"):
        deliveries = results["delivery"][phase]["count"]
        assert deliveries % QUICK.healthy == 0 and deliveries >= QUICK.events * QUICK.healthy
    assert results["slow_receiver"]["requests"] >= 1 and results["failing_receiver"]["requests"] >= 3

    text = markdown.read_text()
    assert text.startswith("# Benchmarks\n\nKept.\n\n") and text.endswith("\n\nTail kept.\n")
    assert "old table" not in text and written.name in text
    assert f"{results['delivery']['ratio_p50']:.2f}" in text
