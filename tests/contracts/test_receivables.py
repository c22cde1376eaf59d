"""Receivables: registration, confirmation, splitting, financing, repayment, redemption and default."""

from __future__ import annotations

import pytest

from ledger.tooling.sandbox import Sandbox
from tests.contracts.support import (
    ACCEPT_ANY,
    DAY,
    NO_REVIEW,
    REVIEW,
    YUAN,
    assert_reverts,
    confirm,
    confirmed_piece,
    grant_credit,
    invoice_key,
    register_invoice,
    split,
)

# Mirrors of the Solidity enums.
REGISTERED, REJECTED, CONFIRMED, PAID, DEFAULTED, OVERDUE = 1, 2, 3, 4, 5, 6
REQUESTED, APPROVED, FUNDED, DECLINED, CANCELLED = 1, 2, 3, 4, 5
ZERO_ADDRESS = "0x" + "00" * 20


def transfer_value(sb: Sandbox, from_id: int, to_id: int, value: int):  # type: ignore[no-untyped-def]
    r = sb.contracts["receivables"]
    return r.get_function_by_signature("transferFrom(uint256,uint256,uint256)")(from_id, to_id, value)


def split_fn(sb: Sandbox, piece_id: int, to: str, value: int):  # type: ignore[no-untyped-def]
    r = sb.contracts["receivables"]
    return r.get_function_by_signature("transferFrom(uint256,address,uint256)")(piece_id, sb.address(to), value)


def value_of(sb: Sandbox, piece_id: int) -> int:
    return int(sb.contracts["receivables"].functions.piece(piece_id).call()[3])


def owner_of(sb: Sandbox, piece_id: int) -> str:
    return str(sb.contracts["receivables"].functions.piece(piece_id).call()[0])


# --- interfaces -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("interface", "expected"),
    [("d5358140", True), ("80ac58cd", True), ("5b5e139f", True), ("01ffc9a7", True), ("ffffffff", False)],
)
def test_supports_erc3525_and_erc721_interfaces(ledger: Sandbox, interface: str, expected: bool) -> None:
    assert ledger.contracts["receivables"].functions.supportsInterface(bytes.fromhex(interface)).call() is expected


# --- registration ---------------------------------------------------------------------------------


def test_register_invoice_records_invoice_and_emits_event(ledger: Sandbox) -> None:
    r = ledger.contracts["receivables"]
    key = invoice_key()
    due = ledger.now() + 60 * DAY
    receipt = ledger.send(
        r.functions.registerInvoice(key, ledger.address("automaker"), 5_000 * YUAN, b"CNY", due, b"\x22" * 32),
        "seatmaker",
    )
    (event,) = ledger.events(receipt, "receivables", "InvoiceRegistered")
    assert event["keyHash"] == key and event["seller"] == ledger.address("seatmaker")
    assert (event["amount"], event["currency"], event["dueDate"]) == (5_000 * YUAN, b"CNY", due)
    invoice = r.functions.invoice(event["invoiceId"]).call()
    assert invoice[0] == ledger.address("seatmaker") and invoice[2] == REGISTERED
    assert r.functions.invoiceIdOfKey(key).call() == event["invoiceId"]


def test_register_reverts_when_key_already_registered_by_any_seller(ledger: Sandbox) -> None:
    key = invoice_key()
    first = register_invoice(ledger, key=key)
    r = ledger.contracts["receivables"]
    due = ledger.now() + 30 * DAY
    fn = r.functions.registerInvoice(key, ledger.address("truckmaker"), 1, b"CNY", due, b"\x00" * 32)
    assert_reverts(ledger, fn, "chemicals", "ReceivablesInvoiceAlreadyRegistered", keyHash=key, invoiceId=first)


def test_register_reverts_even_after_rejection(ledger: Sandbox) -> None:
    key = invoice_key()
    invoice_id = register_invoice(ledger, key=key)
    ledger.send(ledger.contracts["receivables"].functions.rejectInvoice(invoice_id, b"\x01" * 32), "automaker")
    fn = ledger.contracts["receivables"].functions.registerInvoice(
        key, ledger.address("automaker"), 1, b"CNY", ledger.now() + DAY, b"\x00" * 32
    )
    assert_reverts(ledger, fn, "seatmaker", "ReceivablesInvoiceAlreadyRegistered")


@pytest.mark.parametrize(
    ("amount", "currency", "due_offset", "buyer", "error"),
    [
        (0, b"CNY", 30 * DAY, "automaker", "ReceivablesZeroAmount"),
        (2**96, b"CNY", 30 * DAY, "automaker", "ReceivablesAmountTooLarge"),
        (100, b"USD", 30 * DAY, "automaker", "ReceivablesCurrencyMismatch"),
        (100, b"CNY", -1, "automaker", "ReceivablesDueDateNotInFuture"),
        (100, b"CNY", 30 * DAY, "chemicals", "RegistryMissingRole"),
        (100, b"CNY", 30 * DAY, "outsider", "RegistryMissingRole"),
    ],
)
def test_register_rejects_invalid_invoice(
    ledger: Sandbox, amount: int, currency: bytes, due_offset: int, buyer: str, error: str
) -> None:
    fn = ledger.contracts["receivables"].functions.registerInvoice(
        invoice_key(), ledger.address(buyer), amount, currency, ledger.now() + due_offset, b"\x00" * 32
    )
    assert_reverts(ledger, fn, "seatmaker", error)


def test_register_reverts_for_zero_key(ledger: Sandbox) -> None:
    fn = ledger.contracts["receivables"].functions.registerInvoice(
        b"\x00" * 32, ledger.address("automaker"), 1, b"CNY", ledger.now() + DAY, b"\x00" * 32
    )
    assert_reverts(ledger, fn, "seatmaker", "ReceivablesInvalidKey")


@pytest.mark.parametrize("caller", ["automaker", "bank", "warehouse", "regulator", "agent", "operator", "outsider"])
def test_register_reverts_when_caller_is_not_a_supplier(ledger: Sandbox, caller: str) -> None:
    fn = ledger.contracts["receivables"].functions.registerInvoice(
        invoice_key(), ledger.address("truckmaker"), 1, b"CNY", ledger.now() + DAY, b"\x00" * 32
    )
    assert_reverts(ledger, fn, caller, "RegistryMissingRole")


def test_register_reverts_when_supplier_is_suspended(ledger: Sandbox) -> None:
    ledger.send(ledger.contracts["registry"].functions.suspend(ledger.address("seatmaker")), "operator")
    fn = ledger.contracts["receivables"].functions.registerInvoice(
        invoice_key(), ledger.address("automaker"), 1, b"CNY", ledger.now() + DAY, b"\x00" * 32
    )
    assert_reverts(ledger, fn, "seatmaker", "RegistryParticipantNotActive")


# --- confirmation and credit lines ------------------------------------------------------------------


def test_confirm_creates_slot_and_first_piece_held_by_seller(ledger: Sandbox) -> None:
    r = ledger.contracts["receivables"]
    grant_credit(ledger, grant=2_000_000 * YUAN)
    invoice_id = register_invoice(ledger, amount=1_000_000 * YUAN)
    receipt = ledger.send(r.functions.confirmInvoice(invoice_id), "automaker")
    (event,) = ledger.events(receipt, "receivables", "InvoiceConfirmed")
    piece_id = event["pieceId"]
    assert ledger.events(receipt, "receivables", "SlotChanged") == [
        {"_tokenId": piece_id, "_oldSlot": 0, "_newSlot": invoice_id}
    ]
    assert ledger.events(receipt, "receivables", "TransferValue") == [
        {"_fromTokenId": 0, "_toTokenId": piece_id, "_value": 1_000_000 * YUAN}
    ]
    assert r.functions.ownerOf(piece_id).call() == ledger.address("seatmaker")
    assert r.functions.slotOf(piece_id).call() == invoice_id
    assert r.get_function_by_signature("balanceOf(uint256)")(piece_id).call() == 1_000_000 * YUAN
    assert r.get_function_by_signature("balanceOf(address)")(ledger.address("seatmaker")).call() == 1
    assert r.functions.invoice(invoice_id).call()[2] == CONFIRMED
    assert r.functions.creditLine(ledger.address("automaker")).call() == (2_000_000 * YUAN, 1_000_000 * YUAN)
    assert r.functions.pathOf(piece_id).call() == [piece_id]


def test_confirm_reverts_when_caller_is_not_the_buyer(ledger: Sandbox) -> None:
    grant_credit(ledger, core="truckmaker")
    invoice_id = register_invoice(ledger, buyer="automaker")
    fn = ledger.contracts["receivables"].functions.confirmInvoice(invoice_id)
    for caller in ("truckmaker", "seatmaker", "bank", "operator", "regulator", "outsider"):
        assert_reverts(ledger, fn, caller, "ReceivablesNotBuyer")


def test_confirm_reverts_when_credit_line_would_be_exceeded(ledger: Sandbox) -> None:
    grant_credit(ledger, grant=1_500_000 * YUAN)
    confirmed_piece(ledger, amount=1_000_000 * YUAN)
    invoice_id = register_invoice(ledger, amount=500_000 * YUAN + 1)
    fn = ledger.contracts["receivables"].functions.confirmInvoice(invoice_id)
    assert_reverts(
        ledger,
        fn,
        "automaker",
        "ReceivablesCreditLineExceeded",
        used=1_000_000 * YUAN,
        amount=500_000 * YUAN + 1,
        limit=1_500_000 * YUAN,
    )


def test_confirm_reverts_without_credit_line(ledger: Sandbox) -> None:
    invoice_id = register_invoice(ledger, buyer="truckmaker")
    fn = ledger.contracts["receivables"].functions.confirmInvoice(invoice_id)
    assert_reverts(ledger, fn, "truckmaker", "ReceivablesCreditLineExceeded", limit=0)


def test_repayment_frees_credit_line(ledger: Sandbox) -> None:
    grant_credit(ledger, grant=1_000_000 * YUAN)
    slot, _ = confirmed_piece(ledger, amount=1_000_000 * YUAN)
    ledger.send(ledger.contracts["receivables"].functions.repay(slot, 400_000 * YUAN), "automaker")
    invoice_id = register_invoice(ledger, amount=400_000 * YUAN)
    confirm(ledger, invoice_id)
    line = ledger.contracts["receivables"].functions.creditLine(ledger.address("automaker")).call()
    assert line == (1_000_000 * YUAN, 1_000_000 * YUAN)


def test_confirm_reverts_when_tenor_exceeds_maximum(ledger: Sandbox) -> None:
    grant_credit(ledger)
    invoice_id = register_invoice(ledger, due_in=366 * DAY)
    fn = ledger.contracts["receivables"].functions.confirmInvoice(invoice_id)
    assert_reverts(ledger, fn, "automaker", "ReceivablesTenorTooLong", maxTenor=365 * DAY)


def test_confirm_reverts_after_due_date(ledger: Sandbox) -> None:
    grant_credit(ledger)
    invoice_id = register_invoice(ledger, due_in=DAY)
    ledger.travel_to(ledger.now() + 2 * DAY)
    fn = ledger.contracts["receivables"].functions.confirmInvoice(invoice_id)
    assert_reverts(ledger, fn, "automaker", "ReceivablesDueDateNotInFuture")


def test_confirm_twice_or_after_rejection_is_an_invalid_transition(ledger: Sandbox) -> None:
    grant_credit(ledger)
    slot, _ = confirmed_piece(ledger)
    r = ledger.contracts["receivables"]
    assert_reverts(ledger, r.functions.confirmInvoice(slot), "automaker", "ReceivablesInvalidTransition")
    rejected = register_invoice(ledger)
    receipt = ledger.send(r.functions.rejectInvoice(rejected, b"\x05" * 32), "automaker")
    assert ledger.events(receipt, "receivables", "InvoiceRejected")[0]["invoiceId"] == rejected
    assert_reverts(ledger, r.functions.confirmInvoice(rejected), "automaker", "ReceivablesInvalidTransition")


def test_reject_reverts_when_caller_is_not_the_buyer(ledger: Sandbox) -> None:
    invoice_id = register_invoice(ledger)
    fn = ledger.contracts["receivables"].functions.rejectInvoice(invoice_id, b"\x00" * 32)
    assert_reverts(ledger, fn, "seatmaker", "ReceivablesNotBuyer")


def test_confirm_reverts_for_unknown_invoice(ledger: Sandbox) -> None:
    fn = ledger.contracts["receivables"].functions.confirmInvoice(999)
    assert_reverts(ledger, fn, "automaker", "ReceivablesUnknownInvoice", invoiceId=999)


def test_credit_line_is_the_sum_of_grants_by_financiers_and_operator(ledger: Sandbox) -> None:
    r = ledger.contracts["receivables"]
    grant_credit(ledger, grant=300 * YUAN, grantor="bank")
    grant_credit(ledger, grant=200 * YUAN, grantor="factor")
    receipt = ledger.send(r.functions.setCreditLine(ledger.address("automaker"), 100 * YUAN), "operator")
    assert ledger.events(receipt, "receivables", "CreditLineSet")[0]["limit"] == 600 * YUAN
    grant_credit(ledger, grant=50 * YUAN, grantor="bank")
    assert r.functions.creditLine(ledger.address("automaker")).call()[0] == 350 * YUAN
    assert r.functions.creditGrant(ledger.address("bank"), ledger.address("automaker")).call() == 50 * YUAN


@pytest.mark.parametrize("caller", ["seatmaker", "automaker", "warehouse", "regulator", "agent", "outsider"])
def test_set_credit_line_reverts_for_non_financier(ledger: Sandbox, caller: str) -> None:
    fn = ledger.contracts["receivables"].functions.setCreditLine(ledger.address("automaker"), 1)
    assert_reverts(ledger, fn, caller, "RegistryMissingRole")


def test_set_credit_line_reverts_when_core_firm_is_not_a_core_firm(ledger: Sandbox) -> None:
    fn = ledger.contracts["receivables"].functions.setCreditLine(ledger.address("seatmaker"), 1)
    assert_reverts(ledger, fn, "bank", "RegistryMissingRole")


def test_credit_line_cannot_drop_below_confirmed_unpaid_total(ledger: Sandbox) -> None:
    grant_credit(ledger, grant=1_000 * YUAN)
    confirmed_piece(ledger, amount=800 * YUAN)
    fn = ledger.contracts["receivables"].functions.setCreditLine(ledger.address("automaker"), 799 * YUAN)
    assert_reverts(ledger, fn, "bank", "ReceivablesCreditLineBelowUsage", limit=799 * YUAN, used=800 * YUAN)


# --- splitting and transfers ------------------------------------------------------------------------


def test_split_transfer_creates_child_piece_recording_its_parent(ledger: Sandbox) -> None:
    slot, first = confirmed_piece(ledger, amount=1_000 * YUAN)
    child = split(ledger, first, "chemicals", 300 * YUAN, "seatmaker")
    grandchild = split(ledger, child, "trader", 100 * YUAN, "chemicals")
    r = ledger.contracts["receivables"]
    assert (value_of(ledger, first), value_of(ledger, child), value_of(ledger, grandchild)) == (
        700 * YUAN,
        200 * YUAN,
        100 * YUAN,
    )
    assert r.functions.pathOf(grandchild).call() == [first, child, grandchild]
    assert r.functions.slotOf(grandchild).call() == slot
    assert owner_of(ledger, grandchild) == ledger.address("trader")


def test_value_transfer_between_pieces_of_one_slot(ledger: Sandbox) -> None:
    _, first = confirmed_piece(ledger, amount=1_000 * YUAN)
    child = split(ledger, first, "chemicals", 300 * YUAN, "seatmaker")
    receipt = ledger.send(transfer_value(ledger, first, child, 200 * YUAN), "seatmaker")
    assert ledger.events(receipt, "receivables", "TransferValue") == [
        {"_fromTokenId": first, "_toTokenId": child, "_value": 200 * YUAN}
    ]
    assert (value_of(ledger, first), value_of(ledger, child)) == (500 * YUAN, 500 * YUAN)


def pay_with(sb: Sandbox, piece_id: int, to: str, value: int):  # type: ignore[no-untyped-def]
    return sb.contracts["receivables"].functions.transferPiece(piece_id, sb.address(to), value)


def test_paying_with_all_of_a_piece_moves_the_piece_itself(ledger: Sandbox) -> None:
    _, first = confirmed_piece(ledger, amount=1_000 * YUAN)
    receipt = ledger.send(pay_with(ledger, first, "chemicals", 1_000 * YUAN), "seatmaker")
    assert owner_of(ledger, first) == ledger.address("chemicals") and value_of(ledger, first) == 1_000 * YUAN
    assert ledger.events(receipt, "receivables", "PieceSplit") == []
    assert pay_with(ledger, first, "trader", 1_000 * YUAN).call({"from": ledger.address("chemicals")}) == first


def test_paying_with_a_piece_moves_exactly_its_amount_when_value_came_into_the_piece_after_it_was_read(
    ledger: Sandbox,
) -> None:
    """The payer read 700 yuan, all of the piece, and asks to pay 700; 200 more comes into the piece before its
    transaction runs. Moving the piece (what a choice made from the read would do) would pay 900."""
    _, first = confirmed_piece(ledger, amount=1_000 * YUAN)
    other = split(ledger, first, "chemicals", 300 * YUAN, "seatmaker")
    read = value_of(ledger, first)
    ledger.send(transfer_value(ledger, other, first, 200 * YUAN), "chemicals")
    receipt = ledger.send(pay_with(ledger, first, "trader", read), "seatmaker")
    (paid,) = ledger.events(receipt, "receivables", "PieceSplit")
    assert (paid["to"], paid["value"]) == (ledger.address("trader"), read)
    assert owner_of(ledger, first) == ledger.address("seatmaker") and value_of(ledger, first) == 200 * YUAN


def test_paying_with_a_piece_refuses_an_amount_its_value_no_longer_covers(ledger: Sandbox) -> None:
    _, first = confirmed_piece(ledger, amount=1_000 * YUAN)
    read = value_of(ledger, first)
    split(ledger, first, "chemicals", 1, "seatmaker")
    assert_reverts(ledger, pay_with(ledger, first, "trader", read), "seatmaker", "ReceivablesInsufficientValue")
    assert_reverts(ledger, pay_with(ledger, first, "trader", 0), "seatmaker", "ReceivablesZeroAmount")
    assert owner_of(ledger, first) == ledger.address("seatmaker")


def test_value_transfer_reverts_between_slots(ledger: Sandbox) -> None:
    _, a = confirmed_piece(ledger)
    _, b = confirmed_piece(ledger)
    assert_reverts(ledger, transfer_value(ledger, a, b, 1), "seatmaker", "ReceivablesSlotMismatch")


def test_split_reverts_when_value_exceeds_piece(ledger: Sandbox) -> None:
    _, first = confirmed_piece(ledger, amount=1_000 * YUAN)
    fn = split_fn(ledger, first, "chemicals", 1_000 * YUAN + 1)
    assert_reverts(ledger, fn, "seatmaker", "ReceivablesInsufficientValue")


@pytest.mark.parametrize("recipient", ["outsider"])
def test_split_reverts_to_unregistered_participant(ledger: Sandbox, recipient: str) -> None:
    _, first = confirmed_piece(ledger)
    assert_reverts(ledger, split_fn(ledger, first, recipient, 1), "seatmaker", "RegistryNotRegistered")


def test_transfers_revert_to_suspended_or_frozen_participants(ledger: Sandbox) -> None:
    _, first = confirmed_piece(ledger)
    registry = ledger.contracts["registry"]
    ledger.send(registry.functions.suspend(ledger.address("chemicals")), "operator")
    assert_reverts(ledger, split_fn(ledger, first, "chemicals", 1), "seatmaker", "RegistryParticipantNotActive")
    ledger.send(registry.functions.freeze(ledger.address("trader"), b"\x01" * 32), "regulator")
    assert_reverts(ledger, split_fn(ledger, first, "trader", 1), "seatmaker", "RegistryParticipantFrozen")
    ledger.send(registry.functions.freeze(ledger.address("seatmaker"), b"\x01" * 32), "regulator")
    assert_reverts(ledger, split_fn(ledger, first, "bank", 1), "seatmaker", "RegistryParticipantFrozen")


def test_transfers_revert_at_and_after_maturity(ledger: Sandbox) -> None:
    _, first = confirmed_piece(ledger, due_in=10 * DAY)
    maturity = ledger.contracts["receivables"].functions.invoice(1).call()[1]
    ledger.travel_to(maturity)
    assert_reverts(ledger, split_fn(ledger, first, "chemicals", 1), "seatmaker", "ReceivablesMatured")
    fn = ledger.contracts["receivables"].functions.transferFrom(
        ledger.address("seatmaker"), ledger.address("chemicals"), first
    )
    assert_reverts(ledger, fn, "seatmaker", "ReceivablesMatured")


def test_split_reverts_for_a_stranger_without_allowance(ledger: Sandbox) -> None:
    _, first = confirmed_piece(ledger)
    assert_reverts(ledger, split_fn(ledger, first, "chemicals", 1), "chemicals", "ReceivablesInsufficientAllowance")


def test_value_allowance_lets_operator_split_up_to_allowance(ledger: Sandbox) -> None:
    _, first = confirmed_piece(ledger, amount=1_000 * YUAN)
    r = ledger.contracts["receivables"]
    approve = r.get_function_by_signature("approve(uint256,address,uint256)")
    ledger.send(approve(first, ledger.address("bank"), 100 * YUAN), "seatmaker")
    split(ledger, first, "chemicals", 60 * YUAN, "bank")
    assert r.functions.allowance(first, ledger.address("bank")).call() == 40 * YUAN
    assert_reverts(ledger, split_fn(ledger, first, "chemicals", 41 * YUAN), "bank", "ReceivablesInsufficientAllowance")


def test_approvals_lapse_when_the_piece_changes_hands(ledger: Sandbox) -> None:
    _, first = confirmed_piece(ledger, amount=1_000 * YUAN)
    r = ledger.contracts["receivables"]
    approve_value = r.get_function_by_signature("approve(uint256,address,uint256)")
    ledger.send(approve_value(first, ledger.address("bank"), 100 * YUAN), "seatmaker")
    ledger.send(r.functions.approve(ledger.address("factor"), first), "seatmaker")
    ledger.send(r.functions.transferFrom(ledger.address("seatmaker"), ledger.address("chemicals"), first), "seatmaker")
    assert r.functions.allowance(first, ledger.address("bank")).call() == 0
    assert r.functions.getApproved(first).call() == ZERO_ADDRESS
    assert_reverts(ledger, split_fn(ledger, first, "bank", 1), "bank", "ReceivablesInsufficientAllowance")


def test_operator_acting_for_holder_must_be_active(ledger: Sandbox) -> None:
    _, first = confirmed_piece(ledger)
    r = ledger.contracts["receivables"]
    ledger.send(r.functions.setApprovalForAll(ledger.address("bank"), True), "seatmaker")
    ledger.send(ledger.contracts["registry"].functions.suspend(ledger.address("bank")), "operator")
    assert_reverts(ledger, split_fn(ledger, first, "chemicals", 1), "bank", "RegistryParticipantNotActive")


def test_frozen_piece_cannot_move_or_be_redeemed(ledger: Sandbox) -> None:
    slot, first = confirmed_piece(ledger, amount=1_000 * YUAN)
    r = ledger.contracts["receivables"]
    receipt = ledger.send(r.functions.freezePiece(first, b"\x09" * 32), "regulator")
    assert ledger.events(receipt, "receivables", "PieceFrozen")[0]["pieceId"] == first
    assert_reverts(ledger, split_fn(ledger, first, "chemicals", 1), "seatmaker", "ReceivablesPieceFrozen")
    fn = r.functions.requestFinancing(first, 1, ledger.address("bank"), *ACCEPT_ANY)
    assert_reverts(ledger, fn, "seatmaker", "ReceivablesPieceFrozen")
    ledger.send(r.functions.repay(slot, 1_000 * YUAN), "automaker")
    assert_reverts(ledger, r.functions.redeem(first), "seatmaker", "ReceivablesPieceFrozen")
    ledger.send(r.functions.unfreezePiece(first), "regulator")
    ledger.send(r.functions.redeem(first), "seatmaker")


@pytest.mark.parametrize("caller", ["operator", "seatmaker", "bank", "automaker", "outsider"])
def test_only_regulator_freezes_pieces(ledger: Sandbox, caller: str) -> None:
    _, first = confirmed_piece(ledger)
    fn = ledger.contracts["receivables"].functions.freezePiece(first, b"\x00" * 32)
    assert_reverts(ledger, fn, caller, "RegistryMissingRole")


# --- financing --------------------------------------------------------------------------------------


def _request(sb: Sandbox, piece: int, amount: int, holder: str = "seatmaker", financier: str = "bank") -> int:
    receipt = sb.send(
        sb.contracts["receivables"].functions.requestFinancing(piece, amount, sb.address(financier), *ACCEPT_ANY),
        holder,
    )
    return int(sb.events(receipt, "receivables", "FinancingRequested")[0]["requestId"])


def expected_price(amount: int, rate_bps: int, seconds_left: int, fee: int, basis: int = 365) -> tuple[int, int]:
    days = -(-seconds_left // DAY)
    discount = -(-(amount * rate_bps * days) // (basis * 10_000))
    return discount, amount - discount - fee


def test_fund_moves_piece_and_discounted_price_together(ledger: Sandbox) -> None:
    r = ledger.contracts["receivables"]
    _, first = confirmed_piece(ledger, amount=1_000_000 * YUAN, due_in=90 * DAY)
    request = _request(ledger, first, 1_000_000 * YUAN)
    ledger.send(r.functions.approveFinancing(request, 450, 500 * YUAN, 365, NO_REVIEW), "bank")
    before = (ledger.balance("seatmaker"), ledger.balance("bank"))
    receipt = ledger.send(r.functions.fundFinancing(request), "bank")
    block_time = ledger.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    maturity = r.functions.invoice(1).call()[1]
    discount, price = expected_price(1_000_000 * YUAN, 450, maturity - block_time, 500 * YUAN)
    (event,) = ledger.events(receipt, "receivables", "FinancingFunded")
    assert (event["discount"], event["price"], event["pieceId"]) == (discount, price, first)
    assert owner_of(ledger, first) == ledger.address("bank")
    assert ledger.balance("seatmaker") == before[0] + price
    assert ledger.balance("bank") == before[1] - price
    assert r.functions.financingRequest(request).call()[2] == FUNDED


def test_partial_financing_splits_the_requested_amount_to_the_financier(ledger: Sandbox) -> None:
    r = ledger.contracts["receivables"]
    _, first = confirmed_piece(ledger, amount=1_000 * YUAN)
    request = _request(ledger, first, 400 * YUAN)
    ledger.send(r.functions.approveFinancing(request, 600, 0, 360, NO_REVIEW), "bank")
    receipt = ledger.send(r.functions.fundFinancing(request), "bank")
    funded = ledger.events(receipt, "receivables", "FinancingFunded")[0]["pieceId"]
    assert funded != first
    assert (value_of(ledger, first), value_of(ledger, funded)) == (600 * YUAN, 400 * YUAN)
    assert owner_of(ledger, funded) == ledger.address("bank")
    assert r.functions.pathOf(funded).call() == [first, funded]
    # the rest of the piece is unlocked again
    split(ledger, first, "chemicals", 1, "seatmaker")


def test_discount_rounds_up_and_days_count_up(ledger: Sandbox) -> None:
    r = ledger.contracts["receivables"]
    _, first = confirmed_piece(ledger, amount=333, due_in=DAY + 1)
    request = _request(ledger, first, 333)
    ledger.send(r.functions.approveFinancing(request, 1, 0, 365, NO_REVIEW), "bank")
    discount, _, price = r.functions.quoteFinancing(request).call()
    # 333 × 1 bp × 2 days / 3,650,000 is a fraction of a fen: the holder is charged one whole fen.
    assert (discount, price) == (1, 332)


def test_piece_is_in_at_most_one_open_request(ledger: Sandbox) -> None:
    _, first = confirmed_piece(ledger)
    request = _request(ledger, first, 100)
    fn = ledger.contracts["receivables"].functions.requestFinancing(first, 100, ledger.address("factor"), *ACCEPT_ANY)
    assert_reverts(ledger, fn, "seatmaker", "ReceivablesPieceLocked", requestId=request)


def test_locked_piece_cannot_move_by_holder_or_approved_operator(ledger: Sandbox) -> None:
    r = ledger.contracts["receivables"]
    _, first = confirmed_piece(ledger)
    ledger.send(r.functions.setApprovalForAll(ledger.address("factor"), True), "seatmaker")
    approve_value = r.get_function_by_signature("approve(uint256,address,uint256)")
    ledger.send(approve_value(first, ledger.address("trader"), 10), "seatmaker")
    _request(ledger, first, 100)
    whole = r.functions.transferFrom(ledger.address("seatmaker"), ledger.address("chemicals"), first)
    for sender in ("seatmaker", "factor"):
        assert_reverts(ledger, whole, sender, "ReceivablesPieceLocked")
        assert_reverts(ledger, split_fn(ledger, first, "chemicals", 1), sender, "ReceivablesPieceLocked")
    assert_reverts(ledger, split_fn(ledger, first, "chemicals", 1), "trader", "ReceivablesPieceLocked")
    safe = r.get_function_by_signature("safeTransferFrom(address,address,uint256)")
    assert_reverts(
        ledger,
        safe(ledger.address("seatmaker"), ledger.address("chemicals"), first),
        "factor",
        "ReceivablesPieceLocked",
    )


def test_cancel_and_decline_unlock_the_piece(ledger: Sandbox) -> None:
    r = ledger.contracts["receivables"]
    _, first = confirmed_piece(ledger)
    request = _request(ledger, first, 100)
    assert_reverts(ledger, r.functions.cancelFinancing(request), "bank", "ReceivablesNotRequestHolder")
    ledger.send(r.functions.cancelFinancing(request), "seatmaker")
    assert r.functions.financingRequest(request).call()[2] == CANCELLED
    second = _request(ledger, first, 100, financier="factor")
    assert_reverts(ledger, r.functions.declineFinancing(second), "bank", "ReceivablesNotFinancier")
    ledger.send(r.functions.approveFinancing(second, 300, 0, 365, NO_REVIEW), "factor")
    ledger.send(r.functions.declineFinancing(second), "factor")
    assert r.functions.financingRequest(second).call()[2] == DECLINED
    assert_reverts(ledger, r.functions.fundFinancing(second), "factor", "ReceivablesRequestInvalidTransition")
    split(ledger, first, "chemicals", 1, "seatmaker")


def test_fund_reverts_before_approval(ledger: Sandbox) -> None:
    _, first = confirmed_piece(ledger)
    request = _request(ledger, first, 100)
    fn = ledger.contracts["receivables"].functions.fundFinancing(request)
    assert_reverts(ledger, fn, "bank", "ReceivablesRequestInvalidTransition", **{"from": REQUESTED, "to": FUNDED})


def test_only_the_named_financier_approves_and_funds(ledger: Sandbox) -> None:
    r = ledger.contracts["receivables"]
    _, first = confirmed_piece(ledger)
    request = _request(ledger, first, 100)
    for caller in ("factor", "seatmaker", "operator", "regulator"):
        assert_reverts(
            ledger, r.functions.approveFinancing(request, 300, 0, 365, NO_REVIEW), caller, "ReceivablesNotFinancier"
        )
    ledger.send(r.functions.approveFinancing(request, 300, 0, 365, NO_REVIEW), "bank")
    for caller in ("factor", "seatmaker", "operator", "regulator"):
        assert_reverts(ledger, r.functions.fundFinancing(request), caller, "ReceivablesNotFinancier")


def test_request_reverts_when_financier_lacks_the_role(ledger: Sandbox) -> None:
    _, first = confirmed_piece(ledger)
    fn = ledger.contracts["receivables"].functions.requestFinancing(
        first, 100, ledger.address("chemicals"), *ACCEPT_ANY
    )
    assert_reverts(ledger, fn, "seatmaker", "RegistryMissingRole")


def test_request_reverts_when_holder_names_itself_as_financier(ledger: Sandbox) -> None:
    r = ledger.contracts["receivables"]
    _, first = confirmed_piece(ledger, amount=1_000)
    request = _request(ledger, first, 1_000)
    ledger.send(r.functions.approveFinancing(request, 100, 0, 365, NO_REVIEW), "bank")
    ledger.send(r.functions.fundFinancing(request), "bank")
    fn = r.functions.requestFinancing(first, 1_000, ledger.address("bank"), *ACCEPT_ANY)
    assert_reverts(ledger, fn, "bank", "ReceivablesSelfFinancing")


def test_request_reverts_when_caller_is_not_holder(ledger: Sandbox) -> None:
    _, first = confirmed_piece(ledger)
    fn = ledger.contracts["receivables"].functions.requestFinancing(first, 100, ledger.address("bank"), *ACCEPT_ANY)
    assert_reverts(ledger, fn, "chemicals", "ReceivablesNotHolder")


# --- the rules of 银发〔2025〕77号 and the fee disclosure (docs/rules.md) -------------------------------------


def _asked(sb: Sandbox, piece: int, amount: int, max_rate: int, max_fee: int) -> int:
    fn = sb.contracts["receivables"].functions.requestFinancing(piece, amount, sb.address("bank"), max_rate, max_fee)
    return int(sb.events(sb.send(fn, "seatmaker"), "receivables", "FinancingRequested")[0]["requestId"])


def test_a_request_records_and_announces_the_rate_and_fee_its_holder_accepted(ledger: Sandbox) -> None:
    r = ledger.contracts["receivables"]
    _, first = confirmed_piece(ledger)
    fn = r.functions.requestFinancing(first, 100 * YUAN, ledger.address("bank"), 450, 30 * YUAN)
    (event,) = ledger.events(ledger.send(fn, "seatmaker"), "receivables", "FinancingRequested")
    assert (event["maxDiscountRateBps"], event["maxFee"]) == (450, 30 * YUAN)
    stored = r.functions.financingRequest(event["requestId"]).call()
    assert (stored[10], stored[11], stored[12]) == (450, 30 * YUAN, NO_REVIEW)


def test_a_request_refuses_a_rate_cap_above_100_percent_and_a_fee_cap_beyond_96_bits(ledger: Sandbox) -> None:
    r = ledger.contracts["receivables"]
    _, first = confirmed_piece(ledger)
    bank = ledger.address("bank")
    assert_reverts(
        ledger, r.functions.requestFinancing(first, 100, bank, 10_001, 0), "seatmaker", "ReceivablesInvalidTerms"
    )
    fn = r.functions.requestFinancing(first, 100, bank, 0, 2**96)
    assert_reverts(ledger, fn, "seatmaker", "ReceivablesAmountTooLarge")


@pytest.mark.parametrize(
    ("rate", "fee", "basis"),
    [(451, 30 * YUAN, 365), (450, 30 * YUAN + 1, 365), (450, 30 * YUAN, 360), (444, 30 * YUAN + 1, 360)],
)
def test_approving_above_what_the_request_accepted_is_refused(ledger: Sandbox, rate: int, fee: int, basis: int) -> None:
    _, first = confirmed_piece(ledger)
    request = _asked(ledger, first, 1_000 * YUAN, 450, 30 * YUAN)
    fn = ledger.contracts["receivables"].functions.approveFinancing(request, rate, fee, basis, NO_REVIEW)
    assert_reverts(
        ledger, fn, "bank", "ReceivablesTermsAboveAccepted", requestId=request, maxDiscountRateBps=450, maxFee=30 * YUAN
    )


@pytest.mark.parametrize(("rate", "fee", "basis"), [(450, 30 * YUAN, 365), (443, 30 * YUAN, 360), (0, 0, 365)])
def test_approving_within_what_the_request_accepted_is_allowed(
    ledger: Sandbox, rate: int, fee: int, basis: int
) -> None:
    """At the caps, or a 360-day rate at most the caps' 365-day equivalent (443 × 365 ≤ 450 × 360)."""
    r = ledger.contracts["receivables"]
    _, first = confirmed_piece(ledger, due_in=90 * DAY)
    request = _asked(ledger, first, 1_000 * YUAN, 450, 30 * YUAN)
    ledger.send(r.functions.approveFinancing(request, rate, fee, basis, NO_REVIEW), "bank")
    # The price paid is never below the price at the caps: what the holder was shown before it asked.
    _, capped = expected_price(1_000 * YUAN, 450, 90 * DAY, 30 * YUAN)
    receipt = ledger.send(r.functions.fundFinancing(request), "bank")
    assert ledger.events(receipt, "receivables", "FinancingFunded")[0]["price"] >= capped


def test_financing_a_receivable_of_more_than_the_review_tenor_needs_the_financiers_review(ledger: Sandbox) -> None:
    """银发〔2025〕77号: a voucher of more than six months is financed only with the financier's credit review."""
    r = ledger.contracts["receivables"]
    _, first = confirmed_piece(ledger, due_in=200 * DAY)
    request = _request(ledger, first, 100 * YUAN)
    fn = r.functions.approveFinancing(request, 300, 0, 365, NO_REVIEW)
    decoded = assert_reverts(ledger, fn, "bank", "ReceivablesFinancingReviewRequired", requestId=request)
    assert decoded.arguments["reviewTenor"] == 183 * DAY and decoded.arguments["tenor"] > 183 * DAY
    receipt = ledger.send(r.functions.approveFinancing(request, 300, 0, 365, REVIEW), "bank")
    assert ledger.events(receipt, "receivables", "FinancingApproved")[0]["review"] == REVIEW
    assert r.functions.financingRequest(request).call()[12] == REVIEW
    ledger.send(r.functions.fundFinancing(request), "bank")


def test_a_receivable_within_the_review_tenor_is_financed_without_a_review(ledger: Sandbox) -> None:
    r = ledger.contracts["receivables"]
    _, first = confirmed_piece(ledger, due_in=183 * DAY)
    request = _request(ledger, first, 100 * YUAN)
    ledger.send(r.functions.approveFinancing(request, 300, 0, 365, NO_REVIEW), "bank")
    ledger.send(r.functions.fundFinancing(request), "bank")


def test_the_review_rule_is_checked_again_at_funding_with_the_parameter_then(ledger: Sandbox) -> None:
    """The tenor counts from confirmation to maturity (not from now): lowering the review tenor after an
    approval without review stops its funding."""
    r = ledger.contracts["receivables"]
    _, first = confirmed_piece(ledger, due_in=120 * DAY)
    request = _request(ledger, first, 100 * YUAN)
    ledger.send(r.functions.approveFinancing(request, 300, 0, 365, NO_REVIEW), "bank")
    ledger.send(r.functions.setParameters(365 * DAY, 30 * DAY, 90 * DAY), "operator")
    fn = r.functions.fundFinancing(request)
    assert_reverts(ledger, fn, "bank", "ReceivablesFinancingReviewRequired", requestId=request, reviewTenor=90 * DAY)


@pytest.mark.parametrize(("rate", "basis"), [(10_001, 365), (300, 364), (300, 0)])
def test_approve_rejects_invalid_terms(ledger: Sandbox, rate: int, basis: int) -> None:
    _, first = confirmed_piece(ledger)
    request = _request(ledger, first, 100)
    fn = ledger.contracts["receivables"].functions.approveFinancing(request, rate, 0, basis, NO_REVIEW)
    assert_reverts(ledger, fn, "bank", "ReceivablesInvalidTerms")


def test_fund_reverts_when_price_is_not_positive(ledger: Sandbox) -> None:
    r = ledger.contracts["receivables"]
    _, first = confirmed_piece(ledger, amount=1_000, due_in=300 * DAY)
    request = _request(ledger, first, 1_000)
    ledger.send(r.functions.approveFinancing(request, 10_000, 200, 365, REVIEW), "bank")
    assert_reverts(ledger, r.functions.fundFinancing(request), "bank", "ReceivablesPriceNotPositive")


def test_fund_is_all_or_nothing_when_the_cash_leg_fails(ledger: Sandbox) -> None:
    r = ledger.contracts["receivables"]
    _, first = confirmed_piece(ledger, amount=1_000 * YUAN)
    request = _request(ledger, first, 1_000 * YUAN)
    ledger.send(r.functions.approveFinancing(request, 300, 0, 365, NO_REVIEW), "bank")
    ledger.send(ledger.contracts["token"].functions.approve(r.address, 0), "bank")
    before = (ledger.balance("seatmaker"), ledger.balance("bank"))
    assert_reverts(ledger, r.functions.fundFinancing(request), "bank", "ERC20InsufficientAllowance")
    assert owner_of(ledger, first) == ledger.address("seatmaker")
    assert (ledger.balance("seatmaker"), ledger.balance("bank")) == before
    assert r.functions.financingRequest(request).call()[2] == APPROVED


def test_fund_reverts_after_maturity(ledger: Sandbox) -> None:
    r = ledger.contracts["receivables"]
    _, first = confirmed_piece(ledger, due_in=5 * DAY)
    request = _request(ledger, first, 100)
    ledger.send(r.functions.approveFinancing(request, 300, 0, 365, NO_REVIEW), "bank")
    ledger.travel_to(ledger.now() + 6 * DAY)
    assert_reverts(ledger, r.functions.fundFinancing(request), "bank", "ReceivablesMatured")


def test_fund_reverts_when_holder_was_frozen_after_request(ledger: Sandbox) -> None:
    r = ledger.contracts["receivables"]
    _, first = confirmed_piece(ledger)
    request = _request(ledger, first, 100)
    ledger.send(r.functions.approveFinancing(request, 300, 0, 365, NO_REVIEW), "bank")
    ledger.send(ledger.contracts["registry"].functions.freeze(ledger.address("seatmaker"), b"\x00" * 32), "regulator")
    assert_reverts(ledger, r.functions.fundFinancing(request), "bank", "RegistryParticipantFrozen")


# --- repayment, redemption and default --------------------------------------------------------------


def test_full_repayment_marks_obligation_paid_and_holders_redeem_face_value(ledger: Sandbox) -> None:
    r = ledger.contracts["receivables"]
    slot, first = confirmed_piece(ledger, amount=1_000 * YUAN)
    child = split(ledger, first, "chemicals", 300 * YUAN, "seatmaker")
    receipt = ledger.send(r.functions.repay(slot, 1_000 * YUAN), "automaker")
    assert ledger.events(receipt, "receivables", "ObligationPaid") == [{"slotId": slot}]
    assert r.functions.invoice(slot).call()[2] == PAID
    before = ledger.balance("chemicals")
    receipt = ledger.send(r.functions.redeem(child), "chemicals")
    assert ledger.balance("chemicals") == before + 300 * YUAN
    assert ledger.events(receipt, "receivables", "Transfer") == [
        {"from": ledger.address("chemicals"), "to": ZERO_ADDRESS, "tokenId": child}
    ]
    assert_reverts(ledger, r.functions.ownerOf(child), "chemicals", "ReceivablesNonexistentPiece")
    ledger.send(r.functions.redeem(first), "seatmaker")
    assert ledger.balance("receivables") == 0
    assert r.functions.invoice(slot).call()[7] == 1_000 * YUAN  # redeemed


def test_partial_repayment_is_redeemed_pro_rata_and_rounded_down(ledger: Sandbox) -> None:
    r = ledger.contracts["receivables"]
    slot, a = confirmed_piece(ledger, amount=1_000)
    b = split(ledger, a, "chemicals", 333, "seatmaker")
    c = split(ledger, a, "trader", 333, "seatmaker")  # a keeps 334
    ledger.send(r.functions.repay(slot, 500), "automaker")
    # each unit is half covered: 333 × 500 / 1000 = 166.5 → 166
    assert r.functions.redeemable(b).call() == 166
    assert r.functions.redeemable(a).call() == 167
    ledger.send(r.functions.redeem(b), "chemicals")
    assert value_of(ledger, b) == 167
    # an early redeemer does not dilute the others
    assert r.functions.redeemable(c).call() == 166
    assert_reverts(ledger, r.functions.redeem(b), "chemicals", "ReceivablesNothingToRedeem")
    ledger.send(r.functions.repay(slot, 500), "automaker")
    for piece, holder in ((a, "seatmaker"), (b, "chemicals"), (c, "trader")):
        ledger.send(r.functions.redeem(piece), holder)
    assert ledger.balance("receivables") == 0  # everything paid in was paid out, nothing more


def test_value_transfer_reverts_between_pieces_at_different_redemption_checkpoints(ledger: Sandbox) -> None:
    r = ledger.contracts["receivables"]
    slot, a = confirmed_piece(ledger, amount=1_000, due_in=30 * DAY)
    b = split(ledger, a, "seatmaker", 500, "seatmaker")
    ledger.send(r.functions.repay(slot, 100), "automaker")
    ledger.send(r.functions.redeem(b), "seatmaker")
    assert_reverts(ledger, transfer_value(ledger, a, b, 1), "seatmaker", "ReceivablesCheckpointMismatch")


def test_repay_reverts_when_overpaying_or_not_the_buyer(ledger: Sandbox) -> None:
    r = ledger.contracts["receivables"]
    slot, _ = confirmed_piece(ledger, amount=1_000)
    assert_reverts(ledger, r.functions.repay(slot, 1_001), "automaker", "ReceivablesOverpayment", outstanding=1_000)
    assert_reverts(ledger, r.functions.repay(slot, 0), "automaker", "ReceivablesZeroAmount")
    for caller in ("seatmaker", "truckmaker", "bank", "operator"):
        assert_reverts(ledger, r.functions.repay(slot, 1), caller, "ReceivablesNotBuyer")
    ledger.send(r.functions.repay(slot, 1_000), "automaker")
    assert_reverts(ledger, r.functions.repay(slot, 1), "automaker", "ReceivablesInvalidTransition")


def test_redeem_reverts_for_non_holder_and_before_repayment(ledger: Sandbox) -> None:
    r = ledger.contracts["receivables"]
    _, first = confirmed_piece(ledger)
    assert_reverts(ledger, r.functions.redeem(first), "seatmaker", "ReceivablesNothingToRedeem")
    assert_reverts(ledger, r.functions.redeem(first), "chemicals", "ReceivablesNotHolder")


def test_default_only_after_maturity_plus_grace_by_holder_or_operator(ledger: Sandbox) -> None:
    r = ledger.contracts["receivables"]
    slot, first = confirmed_piece(ledger, due_in=10 * DAY)
    maturity = r.functions.invoice(slot).call()[1]
    grace = r.functions.gracePeriod().call()
    ledger.travel_to(maturity + 1)
    assert r.functions.obligationState(slot).call() == CONFIRMED
    assert_reverts(ledger, r.functions.markDefaulted(slot, first), "seatmaker", "ReceivablesNotOverdue")
    ledger.travel_to(maturity + grace + 1)
    assert r.functions.obligationState(slot).call() == OVERDUE
    assert_reverts(ledger, r.functions.markDefaulted(slot, first), "chemicals", "ReceivablesNotHolder")
    with ledger.isolated():
        receipt = ledger.send(r.functions.markDefaulted(slot, 0), "operator")
        assert ledger.events(receipt, "receivables", "ObligationDefaulted")[0]["declaredBy"] == ledger.address(
            "operator"
        )
    ledger.send(r.functions.markDefaulted(slot, first), "seatmaker")
    assert r.functions.obligationState(slot).call() == DEFAULTED
    # a defaulted obligation can still be repaid (recovery) and then redeemed
    ledger.send(r.functions.repay(slot, 1_000_000 * YUAN), "automaker")
    assert r.functions.obligationState(slot).call() == PAID


def test_set_parameters_only_by_operator(ledger: Sandbox) -> None:
    r = ledger.contracts["receivables"]
    for caller in ("regulator", "bank", "automaker"):
        fn = r.functions.setParameters(180 * DAY, 10 * DAY, 90 * DAY)
        assert_reverts(ledger, fn, caller, "RegistryMissingRole")
    assert_reverts(ledger, r.functions.setParameters(0, 0, 0), "operator", "ReceivablesInvalidParameters")
    receipt = ledger.send(r.functions.setParameters(180 * DAY, 10 * DAY, 90 * DAY), "operator")
    assert (r.functions.maxTenor().call(), r.functions.gracePeriod().call()) == (180 * DAY, 10 * DAY)
    assert r.functions.reviewTenor().call() == 90 * DAY
    (event,) = ledger.events(receipt, "receivables", "ParametersUpdated")
    assert (event["maxTenor"], event["gracePeriod"], event["reviewTenor"]) == (180 * DAY, 10 * DAY, 90 * DAY)


def test_the_review_tenor_is_at_most_the_maximum_tenor(ledger: Sandbox) -> None:
    r = ledger.contracts["receivables"]
    fn = r.functions.setParameters(180 * DAY, 10 * DAY, 180 * DAY + 1)
    assert_reverts(ledger, fn, "operator", "ReceivablesInvalidParameters", reviewTenor=180 * DAY + 1)
    ledger.send(r.functions.setParameters(180 * DAY, 10 * DAY, 180 * DAY), "operator")


def test_deployment_announces_the_starting_parameters(sandbox: Sandbox) -> None:
    r = sandbox.contracts["receivables"]
    logs = r.events.ParametersUpdated().get_logs(from_block=0)
    starting = [(e["args"]["maxTenor"], e["args"]["gracePeriod"], e["args"]["reviewTenor"]) for e in logs][:1]
    assert starting == [(365 * DAY, 30 * DAY, 183 * DAY)]
