"""Gas per operation: the gas report's figures beside the same action in reference implementations.

The ledger's figures come from ``scripts/gas_report.py`` (a real transaction's ``gasUsed`` for every contract
operation, in the order of the stories), run here on a fresh eth-tester chain. On the same chain, in the same
run, the bench-only contracts of ``contracts/bench/`` measure the reference actions: a plain OpenZeppelin
ERC-20 transfer, ERC-721 mint and transfer, an ERC-3525 mint and split-transfer (the reference
implementation's storage layout), and an ERC-721 receipt with a 4-slot lot record, unpacked and packed.
Every transfer goes to an address that held nothing before, as the ledger's measured operations do.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from eth_utils import keccak, to_checksum_address

from ledger.settings import PROJECT_ROOT
from ledger.tooling.sandbox import Sandbox

GAS_REPORT = PROJECT_ROOT / "scripts" / "gas_report.py"


@dataclass(frozen=True)
class Comparison:
    """A ledger operation and the reference action it is set beside."""

    operation: str
    reference: tuple[str, ...]
    """Reference figures whose sum is the reference (a funding is an asset move plus a cash move)."""


#: ledger operation (as the gas report names it) → the reference figures it is compared with.
COMPARISONS: tuple[Comparison, ...] = (
    Comparison("confirm invoice (new slot + first piece)", ("ERC-3525 mint (new slot + token)",)),
    Comparison("split-transfer of a piece", ("ERC-3525 split-transfer (value to a new token)",)),
    Comparison("transfer of a whole piece", ("ERC-721 transferFrom",)),
    Comparison("fund financing (whole piece + cash leg)", ("ERC-721 transferFrom", "ERC-20 transfer")),
    Comparison("deposit-token transfer", ("ERC-20 transfer",)),
    Comparison("issue warehouse receipt", ("ERC-721 mint with a 4-slot lot record",)),
    Comparison("transfer of a receipt", ("ERC-721 transferFrom",)),
)


def _gas_report() -> ModuleType:
    spec = importlib.util.spec_from_file_location("scf_gas_report", GAS_REPORT)
    if spec is None or spec.loader is None:  # pragma: no cover - the script is part of the tree
        raise FileNotFoundError(GAS_REPORT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fresh(label: str) -> str:
    return to_checksum_address(keccak(text=f"scf bench fresh address {label}")[12:])


def measure_references(sb: Sandbox) -> dict[str, int]:
    """Gas of the reference actions on ``sb`` (see the module)."""
    figures: dict[str, int] = {}
    holder = "seatmaker"
    me = sb.address(holder)

    def record(name: str, receipt: Any) -> None:
        figures[name] = int(receipt["gasUsed"])

    erc20 = sb.deploy("BenchERC20", sender="operator")
    sb.send(erc20.functions.mint(me, 10**12), holder)
    record("ERC-20 transfer", sb.send(erc20.functions.transfer(_fresh("erc20"), 1_000), holder))

    erc721 = sb.deploy("BenchERC721", sender="operator")
    sb.send(erc721.functions.mint(me, 1), holder)
    record("ERC-721 mint", sb.send(erc721.functions.mint(_fresh("erc721 mint"), 2), holder))
    record("ERC-721 transferFrom", sb.send(erc721.functions.transferFrom(me, _fresh("erc721"), 1), holder))

    erc3525 = sb.deploy("BenchERC3525", sender="operator")
    sb.send(erc3525.functions.mint(me, 1, 10**12), holder)  # the first token ever: pays for the array's slot
    record("ERC-3525 mint (new slot + token)", sb.send(erc3525.functions.mint(me, 2, 10**12), holder))
    split = erc3525.get_function_by_signature("transferFrom(uint256,address,uint256)")
    record("ERC-3525 split-transfer (value to a new token)", sb.send(split(1, _fresh("erc3525"), 4 * 10**11), holder))

    due = sb.now() + 365 * 86_400
    lots = sb.deploy("BenchLotReceipts", sender="operator")
    sb.send(lots.functions.issue(me, 1, 1_000, 4 * 10**8, due, b"\x01" * 32), holder)
    record(
        "ERC-721 mint with a 4-slot lot record",
        sb.send(lots.functions.issue(_fresh("lot"), 2, 1_000, 4 * 10**8, due, b"\x02" * 32), holder),
    )
    packed = sb.deploy("BenchPackedLotReceipts", sender="operator")
    sb.send(packed.functions.issue(me, 1, 1_000, 4 * 10**8, due, b"\x01" * 32), holder)
    record(
        "ERC-721 mint with a packed lot record",
        sb.send(packed.functions.issue(_fresh("packed lot"), 2, 1_000, 4 * 10**8, due, b"\x02" * 32), holder),
    )
    return figures


def measure_gas(progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The ledger's operations (the gas report) and the references, each from a fresh eth-tester chain.

    Returns ``{"operations": {name: gas}, "references": {name: gas}, "targets": {name: gas},
    "comparisons": [{"operation", "gas", "reference", "reference_gas", "ratio"}]}``.
    """
    report = _gas_report()
    ledger: dict[str, int] = {}
    sb = Sandbox.create()
    report.measure_receivables(sb, lambda name, receipt: ledger.__setitem__(name, int(receipt["gasUsed"])))
    report.measure_warehouse(sb, ledger.__setitem__)
    if progress:
        progress(f"{len(ledger)} ledger operations measured")
    references = measure_references(Sandbox.create(with_warehouse=False))
    comparisons = []
    for comparison in COMPARISONS:
        if comparison.operation not in ledger:
            continue
        reference_gas = sum(references[name] for name in comparison.reference)
        gas = ledger[comparison.operation]
        comparisons.append(
            {
                "operation": comparison.operation,
                "gas": gas,
                "reference": " + ".join(comparison.reference),
                "reference_gas": reference_gas,
                "ratio": round(gas / reference_gas, 3),
            }
        )
    return {
        "operations": ledger,
        "references": references,
        "targets": dict(report.TARGETS),
        "comparisons": comparisons,
    }
