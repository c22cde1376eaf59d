"""The token standards read as written (issue 21): no asset delivered to one of the ledger's own contracts,
where it would be stuck.

- The deposit token, receivables and warehouse-receipt contracts are active participants (the receivables
  contract holds repayments in escrow), yet no piece or receipt may be sent or issued to one: the registry
  refuses with ``RegistryRecipientIsLedgerContract`` (the deposit token's own tests cover cash).
"""

from __future__ import annotations

from typing import Any

import pytest

from ledger.sandbox import Sandbox
from tests.contracts.support import assert_reverts, confirmed_piece
from tests.contracts.warehouse_fixtures import (
    issue_fn,
    issue_receipt,
    lot_key,
    owner_of,
)

LEDGER_CONTRACTS = ("token", "receivables", "receipts")


def receivables(sb: Sandbox) -> Any:
    return sb.contracts["receivables"]


# ---------------------------------------------------------------------------------------------------------
# No piece or receipt sent to the ledger's own contracts
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("contract", [*LEDGER_CONTRACTS, "registry", "anchor"])
def test_no_piece_moves_to_an_address_of_the_ledgers_deployment(ledger: Sandbox, contract: str) -> None:
    """Every way a piece moves to an address (ERC-721 transfers by the holder or an operator, an ERC-3525 value
    transfer into a new piece) is refused for each address of the deployment: the ledger contracts by name,
    the registry and the audit anchor as the unregistered addresses they are. Nothing moves."""
    sb = ledger
    r = receivables(sb)
    _, piece_id = confirmed_piece(sb, amount=10_000)
    sb.send(r.functions.setApprovalForAll(sb.address("bank"), True), "seatmaker")
    target, holder = sb.address(contract), sb.address("seatmaker")
    error = "RegistryRecipientIsLedgerContract" if contract in LEDGER_CONTRACTS else "RegistryNotRegistered"
    safe = r.get_function_by_signature("safeTransferFrom(address,address,uint256)")
    safe_data = r.get_function_by_signature("safeTransferFrom(address,address,uint256,bytes)")
    to_address = r.get_function_by_signature("transferFrom(uint256,address,uint256)")
    before = tuple(r.functions.piece(piece_id).call())
    for fn in (
        r.get_function_by_signature("transferFrom(address,address,uint256)")(holder, target, piece_id),
        safe(holder, target, piece_id),
        safe_data(holder, target, piece_id, b"x"),
        to_address(piece_id, target, 1),
        to_address(piece_id, target, 10_000),
    ):
        for sender in ("seatmaker", "bank"):
            assert_reverts(sb, fn, sender, error, account=target.lower())
    assert tuple(r.functions.piece(piece_id).call()) == before
    assert r.functions.balanceOf(target).call() == 0


@pytest.mark.parametrize("contract", LEDGER_CONTRACTS)
def test_no_receipt_moves_or_is_issued_to_a_ledger_contract(ledger: Sandbox, contract: str) -> None:
    sb = ledger
    w = sb.contracts["receipts"]
    receipt_id = issue_receipt(sb)
    sb.send(w.functions.approve(sb.address("trader"), receipt_id), "steel")
    target, steel = sb.address(contract), sb.address("steel")
    moves = (
        w.functions.transferFrom(steel, target, receipt_id),
        w.get_function_by_signature("safeTransferFrom(address,address,uint256)")(steel, target, receipt_id),
        w.get_function_by_signature("safeTransferFrom(address,address,uint256,bytes)")(steel, target, receipt_id, b""),
    )
    for fn in moves:
        for sender in ("steel", "trader"):
            assert_reverts(sb, fn, sender, "RegistryRecipientIsLedgerContract", account=target.lower())
    assert owner_of(sb, receipt_id) == steel
    key = lot_key()
    issue = issue_fn(sb, owner=contract, key=key)
    assert_reverts(sb, issue, "warehouse", "RegistryRecipientIsLedgerContract", account=target.lower())
    assert w.functions.receiptIdOfLot(key).call() == 0
    assert w.functions.balanceOf(target).call() == 0
