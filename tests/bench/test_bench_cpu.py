"""``scf bench-cpu --quick`` runs end to end (its own anvil, the service in its own process) and writes its results
JSON and its table. No figure is asserted against a time or a CPU budget: only that each was measured, and is
what the files say."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.cpu import BEGIN, END, KINDS, cpu_seconds
from ledger.tooling.chain import find_anvil
from scf.cli import app

try:
    find_anvil()
except Exception as exc:  # pragma: no cover - depends on `npm ci`
    pytest.skip(f"anvil is not installed: {exc}", allow_module_level=True)


def test_cpu_seconds_are_read_from_proc_for_a_running_process() -> None:
    spent = cpu_seconds(os.getpid())
    sum(i * i for i in range(200_000))
    assert cpu_seconds(os.getpid()) >= spent > 0


def test_quick_cpu_bench_measures_every_kind_of_request_and_writes_its_table(tmp_path: Path) -> None:
    results_dir, markdown = tmp_path / "results", tmp_path / "benchmarks.md"
    markdown.write_text("# Benchmarks\n\nKept.\n\n" + BEGIN + "\nold table\n" + END + "\n\nTail kept.\n")
    outcome = CliRunner().invoke(
        app, ["bench-cpu", "--quick", "--results-dir", str(results_dir), "--markdown", str(markdown)]
    )
    assert outcome.exit_code == 0, outcome.output

    [written] = list(results_dir.glob("*.json"))
    assert written.name.endswith("-cpu-quick.json")
    results = json.loads(written.read_text())
    assert list(results["variants"]) == ["this"]
    median = results["variants"]["this"]["median"]
    for kind in KINDS:
        assert median[kind]["during_ms"] >= 0 and median[kind]["requests_per_second"] > 0, kind
    text = markdown.read_text()
    assert text.startswith("# Benchmarks\n\nKept.\n\n") and text.endswith("\n\nTail kept.\n")
    assert "old table" not in text and written.name in text
    assert f"{median['deposit']['during_ms']:.2f} ms" in text
