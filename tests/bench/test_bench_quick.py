"""``scf bench --quick`` runs every benchmark end to end (its own anvil, the REST service in its own process)
and writes the results JSON, the Markdown table and the PNG chart. No figure is asserted against a time: only
that each was measured, is consistent with the others, and is what the files say."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.report import BEGIN, END
from ledger.tooling.chain import find_anvil
from scf.cli import app

try:
    find_anvil()
except Exception as exc:  # pragma: no cover - depends on `npm ci`
    pytest.skip(f"anvil is not installed: {exc}", allow_module_level=True)


def test_quick_bench_writes_results_json_table_and_chart(tmp_path: Path) -> None:
    results_dir, markdown, chart = tmp_path / "results", tmp_path / "docs" / "benchmarks.md", tmp_path / "bench.png"
    markdown.parent.mkdir()
    markdown.write_text("# Benchmarks\n\nMethod text kept.\n\n" + BEGIN + "\nold table\n" + END + "\n\nTail kept.\n")
    outcome = CliRunner().invoke(
        app,
        ["bench", "--quick", "--results-dir", str(results_dir), "--markdown", str(markdown), "--chart", str(chart)],
    )
    assert outcome.exit_code == 0, outcome.output

    [written] = list(results_dir.glob("*.json"))
    assert written.name.endswith("-quick.json")
    results = json.loads(written.read_text())
    assert results["mode"] == "quick"
    assert results["machine"]["cores"] >= 1 and results["machine"]["python"] and "anvil" in results["machine"]["anvil"]
    assert results["block_time"] == 1.0

    throughput, rest = results["throughput"], results["rest"]
    for figure in (throughput["node_ceiling"], throughput["pipeline"], throughput["naive"], rest["sustained"]):
        assert figure > 0
    ceiling = throughput["node_ceiling"]
    assert results["ratios"]["pipeline_to_ceiling"] == pytest.approx(throughput["pipeline"] / ceiling)
    assert results["ratios"]["rest_to_ceiling"] == pytest.approx(rest["sustained"] / ceiling)
    assert results["ratios"]["rest_to_naive"] == pytest.approx(rest["sustained"] / throughput["naive"])
    # Signed acts relayed through the same pipeline, measured beside the hosted path in each round.
    assert throughput["pipeline_signed"] > 0
    assert results["ratios"]["signed_to_hosted_pipeline"] == pytest.approx(
        throughput["pipeline_signed"] / throughput["pipeline"]
    )
    assert all(r["signed_split_gas"] > r["split_gas"] for r in throughput["rounds"])
    half = rest["half_load"]
    assert half["count"] > 0 and 0 < half["p50"] <= half["p95"] <= half["p99"] <= half["max"]
    assert half["offered"] == pytest.approx(rest["sustained"] / 2)
    # The open-loop generator (its own process): each step offered what it was asked, and its answer adds up.
    steps = rest["open_loop"]["steps"]
    assert [(step["rate"], step["batch"]) for step in steps] == [
        (20.0, 1),
        (60.0, 1),
        (500.0, 1),
        (60.0, 20),
        (200.0, 20),
    ]
    half_load = rest["open_loop"]["half_load"]
    for step in [*steps, half_load["single"], half_load["batch"]]:
        assert step["requests"] == int(step["rate"] * step["seconds"])
        assert step["confirmed"] + sum(step["not_confirmed"].values()) + step["unfinished"] == step["requests"]
        assert step["confirmed"] > 0 and 0 < step["p50"] <= step["p95"] <= step["p99"]
        assert step["service_cpu_ms_per_request"] > 0 and 0 <= step["generator_cpu_cores"] < 1
    assert steps[2]["max_in_flight"] > 100  # the burst is held in flight at once, not queued in the generator
    best = max(step["achieved"] for step in steps if step["batch"] == 1)
    best_batch = max(step["achieved"] for step in steps if step["batch"] > 1)
    assert results["ratios"]["rest_open_loop_to_ceiling"] == pytest.approx(best / ceiling)
    assert results["ratios"]["rest_single_to_naive"] == pytest.approx(best / throughput["naive"])
    assert results["ratios"]["rest_batch_to_ceiling"] == pytest.approx(best_batch / ceiling)
    # Half load is half of each way's best step, in the same run.
    assert half_load["single"]["rate"] == pytest.approx(best / 2) and half_load["single"]["batch"] == 1
    assert half_load["batch"]["rate"] == pytest.approx(best_batch / 2) and half_load["batch"]["batch"] == 20
    # The half-load steps split each latency where its block appeared (the head watched by the generator), and
    # the node's own time to build a block at that state is measured beside them.
    assert rest["open_loop"]["node_block_build"] > 0
    for step in (half_load["single"], half_load["batch"]):
        assert 0 < step["timed_at_blocks"] <= step["confirmed"]
        assert 0 < step["block_to_answer_p50"] <= step["block_to_answer_p99"] < step["p99"]
        assert step["schedule_to_block_p50"] <= step["schedule_to_block_p99"] < step["p99"]
    assert all("timed_at_blocks" not in step for step in steps)  # only the half-load steps watch the head
    get_by_id = rest["get_by_id"]
    assert get_by_id["requests"] == 200 and get_by_id["cpu_ms_per_request"] > 0 and get_by_id["p50"] > 0
    assert set(rest["list_routes"]) and all(r["count"] > 0 and r["p50"] > 0 for r in rest["list_routes"].values())
    assert results["indexer"]["events"] > 1_000 and results["indexer"]["events_per_second"] > 0
    assert set(results["targets"]) == {
        "pipeline_to_ceiling",
        "rest_batch_to_ceiling",
        "rest_single_to_naive",
        "p99_half_load",
        "p99_half_load_single",
        "p99_half_load_batch",
        "service_cpu_per_write",
        "service_cpu_per_get",
        "indexer",
        "flat_scaling",
    }

    sizes = results["scaling"]["sizes"]
    assert [row["size"] for row in sizes] == [100, 1_000]
    assert all(row["ledger_pieces"] > row["size"] and row["split_gas"] > 21_000 for row in sizes)
    assert all(row["node_block_build"] > 0 for row in sizes)
    assert sizes[1]["ledger_pieces"] - sizes[0]["ledger_pieces"] >= 900  # the populating really happened
    # The portal's first page at each size, in chromium, or the reason it was skipped (no browser here).
    for row in sizes:
        for page in ("receivables", "invoices"):
            figures = row["portal"][page]
            assert "skipped" in figures or (
                figures["loads"] > 0 and 0 < row[f"portal_{page}_p50"] <= row[f"portal_{page}_p95"]
            )
    receivables = sizes[-1]["portal"]["receivables"]
    assert "skipped" in receivables or receivables["rows"] == 50  # the holder's first page of 50 pieces
    assert results["scaling"]["portal_target"] is None  # judged at 10,000 pieces held, not a quick size

    gas = results["gas"]
    for operation in gas["targets"]:
        assert gas["operations"][operation] > 21_000
    compared = {row["operation"]: row for row in gas["comparisons"]}
    assert "split-transfer of a piece" in compared and "confirm invoice (new slot + first piece)" in compared
    assert all(row["reference_gas"] > 21_000 for row in compared.values())

    text = markdown.read_text()
    assert text.startswith("# Benchmarks\n\nMethod text kept.") and text.endswith("Tail kept.\n")
    assert "old table" not in text and text.count(BEGIN) == 1
    assert written.name in text
    assert f"{round(ceiling):,} tx/s" in text
    assert "REST open loop, split-transfers 500 requests/s offered" in text
    assert "REST open loop, split-transfers in `POST /batch` of 20, 200 operations/s offered" in text
    assert "REST `POST /batch` of 20, best open-loop step" in text
    assert "… of which, single requests: schedule → block appeared" in text
    assert f"| split-transfer of a piece | {gas['operations']['split-transfer of a piece']:,} |" in text

    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 10_000
