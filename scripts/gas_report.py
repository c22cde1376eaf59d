"""Gas report: the gas used by each contract operation, measured on the in-process chain (eth-tester).

    .venv/bin/python scripts/gas_report.py [--out build/gas-report]

writes ``<out>.json`` (operation → gas used) and ``<out>.md`` (a table beside docs/design.md's targets), and
``<out>-signed-acts.json`` / ``.md``: each act sent directly beside the same act signed by the participant's own
key and relayed through ``SignedActs`` (:mod:`tests.contracts.signed_gas`), with the overhead against the
15,000-gas budget, and below it the three paths a signed act can take measured on the bench contracts
(:mod:`bench.signed_paths`: direct, forwarded as by ``SignedActs``, verified in the target). Every
figure is a real transaction's ``gasUsed`` from a fresh deployment, in the order of a realistic story: an
invoice is registered and confirmed, split down the chain, financed, repaid and redeemed (then, on a piece of
its own, ERC-3525 value allowances are given, used and ended by a transfer); a receipt is issued,
pledged, revalued, repaid, enforced, redeemed and transferred (the warehouse figures are measured by
:func:`tests.contracts.warehouse_fixtures.measure_warehouse_gas`, which the warehouse gas test shares).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.signed_paths import measure_signed_paths  # noqa: E402
from ledger.tooling.sandbox import Sandbox  # noqa: E402
from tests.contracts.signed_gas import SIGNED_OVERHEAD_BUDGET, measure_signed_acts  # noqa: E402
from tests.contracts.support import DAY, NO_REVIEW, YUAN, invoice_key  # noqa: E402
from tests.contracts.warehouse_fixtures import measure_warehouse_gas  # noqa: E402

#: docs/design.md's gas targets, where it sets one.
TARGETS = {
    "confirm invoice (new slot + first piece)": 200_000,
    "split-transfer of a piece": 140_000,
    "fund financing (whole piece + cash leg)": 150_000,
    "issue warehouse receipt": 130_500,
}

#: The report's name for each figure of :func:`measure_warehouse_gas`, in the report's order.
WAREHOUSE_OPERATIONS = {
    "issue": "issue warehouse receipt",
    "issue (owner already holds a receipt)": "issue warehouse receipt (owner already holds one)",
    "requestPledge": "request pledge",
    "fundPledge": "fund pledge (lien + cash leg)",
    "revalue": "revalue receipt",
    "revalue (margin call)": "revalue receipt (margin call)",
    "repay (partial)": "repay pledge (part)",
    "repay": "repay pledge (in full, lien released)",
    "enforce": "enforce pledge (receipt to the financier)",
    "requestRedemption": "request redemption",
    "confirmRedemption": "confirm redemption (receipt burnt)",
    "transferFrom": "transfer of a receipt",
}


def measure_receivables(sb: Sandbox, record: Callable[[str, dict], None]) -> None:  # type: ignore[type-arg]
    r, token = sb.contracts["receivables"], sb.contracts["token"]
    record("set credit line", sb.send(r.functions.setCreditLine(sb.address("automaker"), 10**12), "bank"))
    due = sb.now() + 90 * DAY
    receipt = sb.send(
        r.functions.registerInvoice(
            invoice_key(), sb.address("automaker"), 1_000_000 * YUAN, b"CNY", due, b"\x01" * 32
        ),
        "seatmaker",
    )
    record("register invoice", receipt)
    invoice_id = sb.events(receipt, "receivables", "InvoiceRegistered")[0]["invoiceId"]
    receipt = sb.send(r.functions.confirmInvoice(invoice_id), "automaker")
    record("confirm invoice (new slot + first piece)", receipt)
    first = sb.events(receipt, "receivables", "InvoiceConfirmed")[0]["pieceId"]
    split = r.get_function_by_signature("transferFrom(uint256,address,uint256)")
    receipt = sb.send(split(first, sb.address("chemicals"), 400_000 * YUAN), "seatmaker")
    record("split-transfer of a piece", receipt)
    child = sb.events(receipt, "receivables", "PieceSplit")[0]["pieceId"]
    receipt = sb.send(r.functions.transferFrom(sb.address("chemicals"), sb.address("trader"), child), "chemicals")
    record("transfer of a whole piece", receipt)
    receipt = sb.send(
        r.functions.requestFinancing(child, 400_000 * YUAN, sb.address("bank"), 450, 100 * YUAN), "trader"
    )
    record("request financing", receipt)
    request = sb.events(receipt, "receivables", "FinancingRequested")[0]["requestId"]
    record("approve financing", sb.send(r.functions.approveFinancing(request, 450, 100 * YUAN, 365, NO_REVIEW), "bank"))
    record("fund financing (whole piece + cash leg)", sb.send(r.functions.fundFinancing(request), "bank"))
    receipt = sb.send(r.functions.requestFinancing(first, 100_000 * YUAN, sb.address("factor"), 507, 0), "seatmaker")
    request = sb.events(receipt, "receivables", "FinancingRequested")[0]["requestId"]
    sb.send(r.functions.approveFinancing(request, 500, 0, 360, NO_REVIEW), "factor")
    record("fund financing (part of a piece: split + cash leg)", sb.send(r.functions.fundFinancing(request), "factor"))
    record("repay obligation (part)", sb.send(r.functions.repay(invoice_id, 500_000 * YUAN), "automaker"))
    record("redeem piece (pro rata, piece kept)", sb.send(r.functions.redeem(first), "seatmaker"))
    record("repay obligation (rest)", sb.send(r.functions.repay(invoice_id, 500_000 * YUAN), "automaker"))
    record("redeem piece (in full, piece burnt)", sb.send(r.functions.redeem(child), "bank"))
    record("deposit-token transfer", sb.send(token.functions.transfer(sb.address("trader"), 1_000 * YUAN), "bank"))
    measure_value_allowances(sb, record)
    measure_transfer_piece(sb, record)


def _new_piece(sb: Sandbox, document: bytes) -> int:
    """The first piece of a new confirmed invoice of 200,000 yuan (a measurement's own, after the story)."""
    r = sb.contracts["receivables"]
    receipt = sb.send(
        r.functions.registerInvoice(
            invoice_key(), sb.address("automaker"), 200_000 * YUAN, b"CNY", sb.now() + 60 * DAY, document
        ),
        "seatmaker",
    )
    invoice_id = sb.events(receipt, "receivables", "InvoiceRegistered")[0]["invoiceId"]
    receipt = sb.send(r.functions.confirmInvoice(invoice_id), "automaker")
    return int(sb.events(receipt, "receivables", "InvoiceConfirmed")[0]["pieceId"])


def measure_value_allowances(sb: Sandbox, record: Callable[[str, dict], None]) -> None:  # type: ignore[type-arg]
    """ERC-3525 value allowances on a piece of their own (after the story, so that its figures stay as they
    were): given, used by the operator, and ended with their events when the whole piece changes hands."""
    r = sb.contracts["receivables"]
    piece = _new_piece(sb, b"\x02" * 32)
    approve_value = r.get_function_by_signature("approve(uint256,address,uint256)")
    split = r.get_function_by_signature("transferFrom(uint256,address,uint256)")
    record("approve a value allowance", sb.send(approve_value(piece, sb.address("bank"), 50_000 * YUAN), "seatmaker"))
    sb.send(approve_value(piece, sb.address("factor"), 50_000 * YUAN), "seatmaker")
    receipt = sb.send(split(piece, sb.address("chemicals"), 10_000 * YUAN), "factor")
    record("split-transfer by a value-allowance operator (second entry)", receipt)
    receipt = sb.send(r.functions.transferFrom(sb.address("seatmaker"), sb.address("trader"), piece), "seatmaker")
    record("transfer of a whole piece ending two value allowances", receipt)


def measure_transfer_piece(sb: Sandbox, record: Callable[[str, dict], None]) -> None:  # type: ignore[type-arg]
    """`transferPiece`, the service's way to pay with a piece (whole piece or part decided on chain), beside the
    standards' transfers measured in the story above."""
    r = sb.contracts["receivables"]
    piece = _new_piece(sb, b"\x03" * 32)
    receipt = sb.send(r.functions.transferPiece(piece, sb.address("chemicals"), 50_000 * YUAN), "seatmaker")
    record("transferPiece: part of a piece (split)", receipt)
    receipt = sb.send(r.functions.transferPiece(piece, sb.address("trader"), 150_000 * YUAN), "seatmaker")
    record("transferPiece: all of a piece (the piece moves)", receipt)


def measure_warehouse(sb: Sandbox, record: Callable[[str, int], None]) -> None:
    """The warehouse-receipt operations, on a chain state thrown away afterwards."""
    gas = measure_warehouse_gas(sb)
    for key, operation in WAREHOUSE_OPERATIONS.items():
        record(operation, gas[key])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "gas-report", help="path without suffix")
    args = parser.parse_args(argv)
    print("compiling and deploying on eth-tester ...", file=sys.stderr)
    sb = Sandbox.create()
    figures: dict[str, int] = {}

    def record_gas(operation: str, gas: int) -> None:
        figures[operation] = gas
        print(f"  {operation:<55} {gas:>9,}", file=sys.stderr)

    def record(operation: str, receipt: dict) -> None:  # type: ignore[type-arg]
        record_gas(operation, int(receipt["gasUsed"]))

    measure_receivables(sb, record)
    measure_warehouse(sb, record_gas)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(figures, indent=2) + "\n")
    lines = ["| operation | gas used | docs/design.md target |", "|---|---:|---:|"]
    for operation, gas in figures.items():
        target = TARGETS.get(operation)
        verdict = "" if target is None else f"≤ {target:,} {'✓' if gas <= target else '✗ over'}"
        lines.append(f"| {operation} | {gas:,} | {verdict} |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.md')}", file=sys.stderr)
    write_signed_acts(sb, args.out.with_name(args.out.name + "-signed-acts"))
    over = [op for op, target in TARGETS.items() if op in figures and figures[op] > target]
    return 1 if over else 0


def write_signed_acts(sb: Sandbox, out: Path) -> None:
    """The signed-acts table: each act direct and signed, measured from the same chain state."""
    print("measuring each act signed and relayed beside the same act sent directly ...", file=sys.stderr)
    pairs = measure_signed_acts(sb).pairs
    data = {
        act: {"direct": direct, "signed": signed, "overhead": signed - direct}
        for act, (direct, signed) in pairs.items()
    }
    lines = [
        "| act | direct | signed and relayed | overhead | budget |",
        "|---|---:|---:|---:|---:|",
    ]
    for act, figure in data.items():
        within = figure["overhead"] <= SIGNED_OVERHEAD_BUDGET
        verdict = f"≤ {SIGNED_OVERHEAD_BUDGET:,} {'✓' if within else '✗ over'}"
        lines.append(f"| {act} | {figure['direct']:,} | {figure['signed']:,} | +{figure['overhead']:,} | {verdict} |")
        print(f"  {act:<55} {figure['direct']:>9,} {figure['signed']:>9,} {figure['overhead']:>+8,}", file=sys.stderr)
    print("measuring the three paths of a signed act on the bench contracts ...", file=sys.stderr)
    paths = measure_signed_paths()
    lines += [
        "",
        "The same budget against the three paths a signed act can take, on the bench contracts of",
        '`contracts/bench/BenchSignedActs.sol` (`bench/signed_paths.py`; docs/self-custody.md, "Gas"): a forwarder',
        "like `SignedActs`, and verifying in the target with the registry as the verifier.",
        "",
        "| act (bench contracts) | direct | forwarded | overhead | in the target | overhead |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for act, gas in paths.items():
        lines.append(
            f"| {act} | {gas.direct:,} | {gas.forwarded:,} | +{gas.forwarded_overhead:,} | {gas.in_target:,} "
            f"| +{gas.in_target_overhead:,} |"
        )
        print(
            f"  {act:<55} {gas.direct:>9,} forwarded {gas.forwarded_overhead:>+8,} in target "
            f"{gas.in_target_overhead:>+8,}",
            file=sys.stderr,
        )
    data_paths = {act: asdict(gas) for act, gas in paths.items()}
    out.with_suffix(".json").write_text(
        json.dumps({"budget": SIGNED_OVERHEAD_BUDGET, "acts": data, "bench_paths": data_paths}, indent=2) + "\n"
    )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
