"""The Python enums mirror the Solidity enums member for member, in order."""

from __future__ import annotations

import re
from enum import IntEnum
from pathlib import Path

import pytest

from ledger.models import (
    GoodsStatus,
    InvoiceState,
    ParticipantStatus,
    PledgeState,
    ReceiptState,
    RequestState,
    Role,
)

INTERFACES = Path(__file__).resolve().parents[2] / "contracts" / "interfaces"
ROLES = Path(__file__).resolve().parents[2] / "contracts" / "Roles.sol"


def solidity_enum(source: str, name: str) -> list[str]:
    match = re.search(rf"enum\s+{name}\s*\{{([^}}]*)\}}", source)
    assert match, f"enum {name} not found"
    return [m.strip() for m in match.group(1).split(",") if m.strip()]


def python_names(enum: type[IntEnum]) -> list[str]:
    return [member.name for member in sorted(enum, key=int)]


def solidity_to_python(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()


@pytest.mark.parametrize(
    ("interface", "name", "enum"),
    [
        ("IParticipantRegistry.sol", "ParticipantStatus", ParticipantStatus),
        ("IReceivables.sol", "InvoiceState", InvoiceState),
        ("IReceivables.sol", "RequestState", RequestState),
        ("IWarehouseReceipts.sol", "ReceiptState", ReceiptState),
        ("IWarehouseReceipts.sol", "GoodsStatus", GoodsStatus),
        ("IWarehouseReceipts.sol", "PledgeState", PledgeState),
    ],
)
def test_python_enum_mirrors_solidity_enum(interface: str, name: str, enum: type[IntEnum]) -> None:
    members = solidity_enum((INTERFACES / interface).read_text(), name)
    assert python_names(enum) == [solidity_to_python(m) for m in members]


def test_roles_mirror_roles_library() -> None:
    source = ROLES.read_text()
    ids = re.findall(r'bytes32 internal constant (\w+) = keccak256\("scf\.role\.([\w-]+)"\)', source)
    assert [(constant, preimage) for constant, preimage in ids] == [(r.name, r.role_name) for r in Role]
