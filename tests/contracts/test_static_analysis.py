"""The static analysis of `make lint` really analyses, fails on what it must, and keeps its triage honest.

`scripts/slither.py` runs slither over the ledger's own standard-JSON input and fails on medium or higher;
`.solhint.json` makes solhint's reentrancy rule an error. These tests point both at a deliberately vulnerable
contract (`slither_fixture/contracts/LeakyVault.sol`, outside the project's `contracts/`) and expect failure,
and check the triage rules of `contracts/SLITHER.md` on small trees of their own.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).resolve().parent / "slither_fixture"
SOLHINT = ROOT / "node_modules" / ".bin" / "solhint"


def _slither_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("slither_script", ROOT / "scripts" / "slither.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tree(tmp_path: Path, source: str, triage: str | None = None) -> Path:
    (tmp_path / "contracts").mkdir()
    (tmp_path / "contracts" / "Sample.sol").write_text(source)
    if triage is not None:
        (tmp_path / "contracts" / "SLITHER.md").write_text(triage)
    return tmp_path


SUPPRESSED = """pragma solidity 0.8.37;
contract Sample {
    function f(uint256 x) external pure returns (bool) {
        // slither-disable-next-line incorrect-equality -- x is a plain argument, nobody can donate to it
        return x == 0;
    }
}
"""
ROW = "| `contracts/Sample.sol` | `incorrect-equality` | f | x is a plain argument |\n"


def test_slither_fails_on_reentrancy_and_on_pulling_cash_from_anyone(tmp_path: Path) -> None:
    script = _slither_script()
    if not script.SLITHER.is_file():
        pytest.skip(f"{script.SLITHER} is not installed: `make setup` builds .venv-slither")
    status = script.main(["--root", str(FIXTURE), "--out", str(tmp_path)])
    report = json.loads((tmp_path / "report.json").read_text())
    failing = {r["check"] for r in report["results"]["detectors"] if r["impact"] in ("High", "Medium")}
    assert status == 1
    assert {"reentrancy-eth", "arbitrary-send-erc20", "unchecked-transfer"} <= failing
    # It analysed the contract it was given (and not an empty compilation).
    assert "LeakyVault" in script.compiled_symbols(report)["contracts/LeakyVault.sol"]


def test_slither_triage_of_the_ledger_lists_every_suppression_with_its_reason() -> None:
    assert _slither_script().check_triage(ROOT) == []


def test_slither_triage_accepts_a_listed_suppression_with_a_reason(tmp_path: Path) -> None:
    root = _tree(tmp_path, SUPPRESSED, "| file | detector | where | reason |\n|---|---|---|---|\n" + ROW)
    assert _slither_script().check_triage(root) == []


def test_slither_triage_refuses_a_suppression_missing_from_slither_md(tmp_path: Path) -> None:
    problems = _slither_script().check_triage(_tree(tmp_path, SUPPRESSED))
    assert len(problems) == 1 and "incorrect-equality" in problems[0] and "not listed" in problems[0]


def test_slither_triage_refuses_a_suppression_without_a_reason(tmp_path: Path) -> None:
    source = SUPPRESSED.replace(" -- x is a plain argument, nobody can donate to it", "")
    problems = _slither_script().check_triage(_tree(tmp_path, source, ROW))
    assert len(problems) == 1 and "needs ` -- <reason>`" in problems[0]


def test_slither_triage_refuses_an_entry_whose_suppression_is_gone(tmp_path: Path) -> None:
    source = "\n".join(line for line in SUPPRESSED.splitlines() if "slither-disable" not in line)
    problems = _slither_script().check_triage(_tree(tmp_path, source, ROW))
    assert len(problems) == 1 and "no slither-disable comment left" in problems[0]


def test_solhint_reports_state_written_after_a_transfer_as_a_reentrancy_error() -> None:
    target = FIXTURE / "contracts" / "LeakyVault.sol"
    finished = subprocess.run(
        [str(SOLHINT), "-c", str(ROOT / ".solhint.json"), "-f", "json", str(target)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    start = finished.stdout.index("[")
    reports, _ = json.JSONDecoder().raw_decode(finished.stdout[start:])
    reentrancy = [r for r in reports if r.get("ruleId") == "reentrancy"]
    assert finished.returncode != 0
    assert reentrancy and all(r["severity"] == "Error" for r in reentrancy)
    assert [r["line"] for r in reentrancy] == [_line_of(target, "balances[msg.sender] = 0;", after="withdrawAll")]


def _line_of(path: Path, text: str, *, after: str) -> int:
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if after in line)
    return next(i for i in range(start, len(lines)) if text in lines[i]) + 1
