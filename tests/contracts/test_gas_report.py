"""The gas report writes its table, and the operations docs/design.md sets gas targets for stay within them."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _gas_report_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gas_report", ROOT / "scripts" / "gas_report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gas_report_writes_table_and_meets_design_targets(tmp_path: Path) -> None:
    gas_report = _gas_report_module()
    status = gas_report.main(["--out", str(tmp_path / "gas")])
    figures = json.loads((tmp_path / "gas.json").read_text())
    table = (tmp_path / "gas.md").read_text()
    for operation in (
        "register invoice",
        "confirm invoice (new slot + first piece)",
        "split-transfer of a piece",
        "request financing",
        "approve financing",
        "fund financing (whole piece + cash leg)",
        "repay obligation (part)",
        "redeem piece (pro rata, piece kept)",
        "deposit-token transfer",
        "approve a value allowance",
        "split-transfer by a value-allowance operator (second entry)",
        "transfer of a whole piece ending two value allowances",
        *gas_report.WAREHOUSE_OPERATIONS.values(),
    ):
        assert figures[operation] > 21_000, operation
        assert f"| {operation} |" in table
    for operation in (
        "issue warehouse receipt",
        "request pledge",
        "fund pledge (lien + cash leg)",
        "revalue receipt",
        "revalue receipt (margin call)",
        "repay pledge (part)",
        "repay pledge (in full, lien released)",
        "enforce pledge (receipt to the financier)",
        "request redemption",
        "confirm redemption (receipt burnt)",
        "transfer of a receipt",
    ):
        assert operation in figures, f"the report lacks the warehouse operation {operation!r}"
    assert all(operation in figures for operation in gas_report.TARGETS), "a docs/design.md target was not measured"
    for operation, target in gas_report.TARGETS.items():
        if operation in figures:
            assert figures[operation] <= target, f"{operation}: {figures[operation]:,} gas > target {target:,}"
    assert status == 0
