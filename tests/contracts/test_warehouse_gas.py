"""Gas used by the warehouse-receipt operations, written to ``build/gas/warehouse.json`` for the gas report.

:func:`~tests.contracts.warehouse_fixtures.measure_warehouse_gas` (shared with ``scripts/gas_report.py``) runs
each operation once on the sandbox and returns ``{operation: gasUsed}``; the chain is restored afterwards. The
keys the gas report asks for are ``issue``, ``requestPledge+fund``, ``revalue``, ``repay``, ``enforce`` and
``redeem``; the others break them down or show a variant.

``issue`` is the owner's first receipt, which pays for a fresh ERC-721 balance word, as the design's reference
mint does (the reference measured here: OpenZeppelin ERC-721 mint of a two-word struct, 123,307 for an owner's
first token, 106,207 for its next). docs/design.md's target for it is 130,500 (130,000 until
the registry learned self-custody participants: the direct path now also proves the warehouse is not one, in the
same query, and the registry's dispatcher has more functions to search). A receipt writes three fresh words (its
id is its lot key, and its owner is packed into it) and the owner's balance, asks the registry once about the
warehouse and the owner, and emits the mint's ``Transfer`` and ``ReceiptIssued``: about 126,800 gas of that is
fixed (transaction and calldata, four fresh words, five cold reads, the cold registry, two logs).
"""

from __future__ import annotations

import json
from pathlib import Path

from ledger.tooling.sandbox import Sandbox
from tests.contracts.warehouse_fixtures import measure_warehouse_gas

OUTPUT = Path(__file__).resolve().parents[2] / "build" / "gas" / "warehouse.json"

#: docs/design.md: issuing a warehouse receipt costs at most this much gas.
ISSUE_TARGET = 130_500

#: Regression guards: the figures measured when the contracts were last changed, plus about 1-2% (the issue is
#: held to the design target instead). Self-custody added the registry's check that a direct sender is not a
#: self-custody participant (one more query, or one more function in the registry's dispatcher): 400-900 gas
#: on each direct operation.
REGRESSION_CEILINGS = {
    "issue": ISSUE_TARGET,  # 130,082
    "issue (owner already holds a receipt)": 115_000,  # 112,750
    "requestPledge": 126_600,  # 124,110
    "fundPledge": 106_800,  # 104,688
    "requestPledge+fund": 233_400,  # 228,798
    "revalue": 51_400,  # 50,687
    "revalue (margin call)": 57_100,  # 56,007 (the margin test is a function of its own, shared with anchorReadings)
    "repay (partial)": 77_100,  # 76,016
    "repay": 89_100,  # 87,881
    "enforce": 96_200,  # 94,245 (stores the interest due at enforcement for the index)
    "requestRedemption": 42_200,  # 41,562
    "confirmRedemption": 58_000,  # 57,137
    "redeem": 100_200,  # 98,699
    "transferFrom": 71_000,  # 69,976
}


def test_warehouse_gas_is_measured_and_written_for_the_gas_report(sandbox: Sandbox) -> None:
    gas = measure_warehouse_gas(sandbox)
    for key in ("issue", "requestPledge+fund", "revalue", "repay", "enforce", "redeem"):
        assert key in gas, f"the gas report needs {key}"
    assert all(21_000 < used < 1_000_000 for used in gas.values())
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(json.dumps(gas, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    assert gas["issue"] <= ISSUE_TARGET, f"issue: {gas['issue']:,} gas > docs/design.md target {ISSUE_TARGET:,}"
    over = {k: (gas[k], ceiling) for k, ceiling in REGRESSION_CEILINGS.items() if gas[k] > ceiling}
    assert not over, f"gas regressed above the recorded ceilings: {over}"
