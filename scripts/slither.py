"""Static analysis of the contracts with slither, failing on any finding of medium impact or higher.

Run ``.venv/bin/python scripts/slither.py`` (``make lint`` does). It

1. checks the triage: every ``// slither-disable-next-line <detector> -- <reason>`` under ``contracts/`` gives
   its reason on the same line, and ``contracts/SLITHER.md`` lists each such (file, detector) in its table of
   accepted findings as many times as the comments do (no silent suppression, no stale entry);
2. writes the very standard-JSON input the ledger compiles (:func:`ledger.compiler.standard_json_input`, with
   the ASTs and source maps an analyser needs) to ``build/slither/input.json``;
3. runs slither from its own virtual environment (``.venv-slither``: slither needs web3 < 8, the ledger web3 8)
   on that input through crytic-compile's ``solc-json`` platform and our solc-js wrapper ``scripts/solc``, so
   nothing is downloaded (no solc-select) and the OpenZeppelin imports resolve from ``node_modules``; the
   report goes to ``build/slither/report.json``;
4. fails (exit 1) on a finding of medium or high impact, on a ``slither-disable`` comment that suppressed
   nothing, or when slither analysed nothing: every contract defined under ``contracts/`` must be in the
   compilation slither read, and the number of contracts it analysed at least their number. (crytic-compile's
   default ``solc`` platform, pointed at this project, compiles no file and reports a clean run; this guards
   against any such silent emptiness.)

Low and informational findings are printed by count and kept in the report; they do not fail the run.
``--root`` points the script at another project layout (``contracts/``, optionally ``node_modules/``), which
is how the tests prove that a vulnerable contract fails it. Exit 2: slither is not installed (``make setup``).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from ledger.compiler import standard_json_input  # noqa: E402

SLITHER = PROJECT_ROOT / ".venv-slither" / "bin" / "slither"
SOLC = PROJECT_ROOT / "scripts" / "solc"
TRIAGE = Path("contracts") / "SLITHER.md"
FAILING_IMPACTS = ("High", "Medium")

DISABLE = re.compile(r"//\s*slither-disable-(next-line|start|end)\s*([A-Za-z0-9_,-]*)(.*)$")
REASON = re.compile(r"^\s*--\s*\S")
TRIAGE_ROW = re.compile(r"^\|\s*`([^`]+\.sol)`\s*\|\s*`([a-z0-9-]+)`\s*\|")
DEFINITION = re.compile(r"^\s*(?:abstract\s+)?(?:contract|library|interface)\s+([A-Za-z_][A-Za-z0-9_]*)", re.M)
SUMMARY = re.compile(r"analyzed \((\d+) contracts with (\d+) detectors\)")


def check_triage(root: Path) -> list[str]:
    """Problems of the triage: a disable comment without a reason, or comments and SLITHER.md disagreeing."""
    problems: list[str] = []
    comments: Counter[tuple[str, str]] = Counter()
    for path in sorted((root / "contracts").glob("**/*.sol")):
        relative = path.relative_to(root).as_posix()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            match = DISABLE.search(line)
            if match is None:
                continue
            kind, detectors, rest = match.groups()
            if kind != "next-line":
                problems.append(f"{relative}:{number}: use slither-disable-next-line, one statement at a time")
                continue
            if not REASON.match(rest):
                problems.append(f"{relative}:{number}: a slither-disable comment needs ` -- <reason>` on its line")
            for detector in filter(None, detectors.split(",")):
                comments[(relative, detector)] += 1
    triage = root / TRIAGE
    listed: Counter[tuple[str, str]] = Counter()
    if triage.is_file():
        for line in triage.read_text(encoding="utf-8").splitlines():
            row = TRIAGE_ROW.match(line)
            if row is not None:
                listed[(row.group(1), row.group(2))] += 1
    for (file, detector), count in sorted((comments - listed).items()):
        problems.append(f"{file}: {count} `{detector}` suppression(s) not listed with a reason in {TRIAGE}")
    for (file, detector), count in sorted((listed - comments).items()):
        problems.append(f"{TRIAGE}: {count} `{detector}` entr(ies) for {file} with no slither-disable comment left")
    return problems


def defined_contracts(root: Path) -> dict[str, str]:
    """Contract, library and interface name → source unit name, for every definition under ``contracts/``."""
    found: dict[str, str] = {}
    for path in sorted((root / "contracts").glob("**/*.sol")):
        text = re.sub(r"//[^\n]*|/\*.*?\*/", "", path.read_text(encoding="utf-8"), flags=re.S)
        for name in DEFINITION.findall(text):
            found[name] = path.relative_to(root).as_posix()
    return found


def run_slither(root: Path, out: Path, slither: Path) -> tuple[dict[str, Any], str, int]:
    out.mkdir(parents=True, exist_ok=True)
    standard_input = out / "input.json"
    standard_input.write_text(json.dumps(standard_json_input(root, for_analysis=True)), encoding="utf-8")
    report = out / "report.json"
    report.unlink(missing_ok=True)
    command = [
        str(slither),
        str(standard_input),
        "--compile-force-framework",
        "solc-json",
        "--solc",
        str(SOLC),
        "--solc-working-dir",
        str(root),
        "--filter-paths",
        "node_modules",
        "--fail-medium",
        "--warn-unused-ignores",
        "--json-types",
        "detectors,compilations",
        "--json",
        str(report),
    ]
    finished = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)
    (out / "slither.log").write_text(finished.stderr, encoding="utf-8")
    if not report.is_file():
        raise RuntimeError(f"slither wrote no report (exit {finished.returncode}):\n{finished.stderr[-3000:]}")
    return json.loads(report.read_text(encoding="utf-8")), finished.stderr, finished.returncode


def compiled_symbols(report: dict[str, Any]) -> dict[str, set[str]]:
    """Source unit name → the names it defines or imports, from the compilation slither read."""
    symbols: dict[str, set[str]] = {}
    for compilation in report["results"].get("compilations", []):
        for unit in compilation.get("compilation_units", {}).values():
            for source, data in unit.get("source_units", {}).items():
                ast = data.get("ast") or {}
                symbols.setdefault(source, set()).update(ast.get("exportedSymbols", {}))
    return symbols


def evaluate(root: Path, report: dict[str, Any], log: str, returncode: int) -> list[str]:
    """The reasons the run fails (none: it passes), printing what was found on the way."""
    if not report.get("success"):
        return [f"slither failed: {report.get('error')}"]
    problems: list[str] = []
    summary = SUMMARY.search(log)
    analysed = int(summary.group(1)) if summary else 0
    detectors = int(summary.group(2)) if summary else 0
    expected = defined_contracts(root)
    symbols = compiled_symbols(report)
    missing = sorted(name for name, source in expected.items() if name not in symbols.get(source, set()))
    if not expected:
        problems.append("no contract is defined under contracts/")
    if missing:
        problems.append(f"slither's compilation lacks {', '.join(missing)}")
    if analysed < len(expected) or detectors == 0:
        problems.append(f"slither analysed {analysed} contracts with {detectors} detectors; expected ≥ {len(expected)}")

    results = report["results"].get("detectors", [])
    by_impact = Counter(str(r.get("impact")) for r in results if r.get("check") != "unused-ignore-directive")
    failing = [r for r in results if r.get("impact") in FAILING_IMPACTS]
    for result in failing:
        print(f"[{result['impact']}] {result['check']}: {result['description'].strip()}", file=sys.stderr)
    if failing:
        problems.append(f"{len(failing)} finding(s) of medium impact or higher (triage them in {TRIAGE})")
    for result in results:
        for unused in result.get("unused_ignores", []):
            file = Path(unused["file"])
            if file.is_relative_to(root / "contracts"):
                where = f"{file.relative_to(root).as_posix()}:{unused['line']}"
                detectors_left = ",".join(unused["unused_detectors"])
                problems.append(f"{where}: slither-disable for {detectors_left} suppresses nothing")
    if returncode != 0 and not failing:
        problems.append(f"slither exited {returncode} without a finding of medium impact or higher:\n{log[-2000:]}")
    impacts = ("High", "Medium", "Low", "Informational", "Optimization")
    counts = ", ".join(f"{by_impact[k]} {k.lower()}" for k in impacts)
    print(f"slither: {analysed} contracts analysed with {detectors} detectors; findings: {counts}")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/slither.py", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=PROJECT_ROOT, help="project root (default: this repository)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: ROOT/build/slither)")
    parser.add_argument("--slither", type=Path, default=SLITHER, help=f"slither executable (default: {SLITHER})")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    out = (args.out or root / "build" / "slither").resolve()
    if not args.slither.is_file():
        print(f"{args.slither} is missing: run `make setup` (it builds .venv-slither)", file=sys.stderr)
        return 2

    problems = check_triage(root)
    started = time.perf_counter()
    report, log, returncode = run_slither(root, out, args.slither)
    problems += evaluate(root, report, log, returncode)
    print(f"slither: {time.perf_counter() - started:.1f} s; report in {out / 'report.json'}")
    for problem in problems:
        print(f"slither: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
