"""Registration in 中登网 (动产和权利担保统一登记): the financier records the registration number and date of a
funded financing or pledge on chain, once; a registered financing of an obligation binds it to its financier
until it is paid (a second financier is refused)."""

from __future__ import annotations

import pytest

from ledger.tooling.sandbox import Sandbox
from tests.contracts.support import (
    ACCEPT_ANY,
    DAY,
    NO_REVIEW,
    YUAN,
    assert_reverts,
    confirmed_piece,
)
from tests.contracts.warehouse_fixtures import issue_receipt, pledged_receipt, receipts, request_pledge

NUMBER = b"04539487000452458806".ljust(32, b"\0")
"""A 中登网 initial registration number (20 ASCII digits), left-aligned in bytes32 as the ledger stores it."""
OTHER_NUMBER = b"04539487000452458807".ljust(32, b"\0")


def _now(sb: Sandbox) -> int:
    return int(sb.w3.eth.get_block("latest")["timestamp"])


def _funded(sb: Sandbox, piece: int, amount: int, financier: str = "bank", holder: str = "seatmaker") -> int:
    r = sb.contracts["receivables"]
    receipt = sb.send(r.functions.requestFinancing(piece, amount, sb.address(financier), *ACCEPT_ANY), holder)
    request = int(sb.events(receipt, "receivables", "FinancingRequested")[0]["requestId"])
    sb.send(r.functions.approveFinancing(request, 300, 0, 365, NO_REVIEW), financier)
    sb.send(r.functions.fundFinancing(request), financier)
    return request


def test_the_financier_records_the_registration_of_its_funded_financing(ledger: Sandbox) -> None:
    r = ledger.contracts["receivables"]
    slot, first = confirmed_piece(ledger, amount=1_000 * YUAN)
    request = _funded(ledger, first, 400 * YUAN)
    day = _now(ledger) - DAY
    receipt = ledger.send(r.functions.recordFinancingRegistration(request, NUMBER, day), "bank")
    (event,) = ledger.events(receipt, "receivables", "FinancingRegistered")
    assert (event["requestId"], event["slotId"], event["financier"]) == (request, slot, ledger.address("bank"))
    assert (event["number"], event["registeredAt"]) == (NUMBER, day)
    assert r.functions.financingRegistration(request).call() == (NUMBER, day)
    assert r.functions.registeredFinancingOf(slot).call() == request


def test_only_the_financier_records_a_registration(ledger: Sandbox) -> None:
    r = ledger.contracts["receivables"]
    _, first = confirmed_piece(ledger)
    request = _funded(ledger, first, 100 * YUAN)
    fn = r.functions.recordFinancingRegistration(request, NUMBER, _now(ledger))
    for caller in ("seatmaker", "automaker", "factor", "regulator", "operator"):
        assert_reverts(ledger, fn, caller, "ReceivablesNotFinancier", requestId=request)


def test_a_registration_is_recorded_only_for_a_funded_request_and_once(ledger: Sandbox) -> None:
    r = ledger.contracts["receivables"]
    _, first = confirmed_piece(ledger)
    receipt = ledger.send(r.functions.requestFinancing(first, 100, ledger.address("bank"), *ACCEPT_ANY), "seatmaker")
    request = int(ledger.events(receipt, "receivables", "FinancingRequested")[0]["requestId"])
    fn = r.functions.recordFinancingRegistration(request, NUMBER, _now(ledger))
    assert_reverts(ledger, fn, "bank", "ReceivablesRequestNotFunded", requestId=request, state=1)
    ledger.send(r.functions.approveFinancing(request, 300, 0, 365, NO_REVIEW), "bank")
    ledger.send(r.functions.fundFinancing(request), "bank")
    ledger.send(r.functions.recordFinancingRegistration(request, NUMBER, _now(ledger)), "bank")
    again = r.functions.recordFinancingRegistration(request, OTHER_NUMBER, _now(ledger))
    assert_reverts(ledger, again, "bank", "ReceivablesFinancingAlreadyRegistered", requestId=request, number=NUMBER)


@pytest.mark.parametrize("case", ["no number", "right-aligned", "no date", "future date"])
def test_a_registration_needs_a_left_aligned_number_and_a_date_not_in_the_future(ledger: Sandbox, case: str) -> None:
    r = ledger.contracts["receivables"]
    _, first = confirmed_piece(ledger)
    request = _funded(ledger, first, 100 * YUAN)
    now = _now(ledger)
    number, day = {
        "no number": (bytes(32), now),
        "right-aligned": (b"04539487000452458806".rjust(32, b"\0"), now),
        "no date": (NUMBER, 0),
        "future date": (NUMBER, now + DAY),
    }[case]
    fn = r.functions.recordFinancingRegistration(request, number, day)
    assert_reverts(ledger, fn, "bank", "ReceivablesInvalidRegistration", number=number, registeredAt=day)


def test_a_receivable_financed_under_a_registration_is_not_financed_by_another_financier(ledger: Sandbox) -> None:
    """The same receivable: the same obligation (slot). Once one financier's financing of part of it is
    registered, another financier's funding of any other piece of it is refused while it is outstanding."""
    r = ledger.contracts["receivables"]
    slot, first = confirmed_piece(ledger, amount=1_000 * YUAN)
    registered = _funded(ledger, first, 400 * YUAN)
    ledger.send(r.functions.recordFinancingRegistration(registered, NUMBER, _now(ledger)), "bank")
    receipt = ledger.send(
        r.functions.requestFinancing(first, 300 * YUAN, ledger.address("factor"), *ACCEPT_ANY), "seatmaker"
    )
    second = int(ledger.events(receipt, "receivables", "FinancingRequested")[0]["requestId"])
    ledger.send(r.functions.approveFinancing(second, 300, 0, 365, NO_REVIEW), "factor")
    assert_reverts(
        ledger,
        r.functions.fundFinancing(second),
        "factor",
        "ReceivablesRegisteredElsewhere",
        requestId=second,
        slotId=slot,
        registeredRequestId=registered,
        registeredFinancier=ledger.address("bank").lower(),
    )
    # The registered financier itself finances more of the obligation (its registration covers it).
    ledger.send(r.functions.cancelFinancing(second), "seatmaker")
    _funded(ledger, first, 300 * YUAN, financier="bank")


def test_an_unregistered_financing_does_not_bind_the_receivable_and_the_first_recorded_registration_does(
    ledger: Sandbox,
) -> None:
    """Two financiers funded parts of one obligation before either recorded a registration: the first to record
    binds the obligation; the other's registration is refused (the ledger keeps one registered financier per
    receivable, and the other financing stays in the unregistered report for the regulator to see)."""
    r = ledger.contracts["receivables"]
    slot, first = confirmed_piece(ledger, amount=1_000 * YUAN)
    earlier = _funded(ledger, first, 400 * YUAN)
    second = _funded(ledger, first, 300 * YUAN, financier="factor")
    assert r.functions.registeredFinancingOf(slot).call() == 0
    ledger.send(r.functions.recordFinancingRegistration(second, NUMBER, _now(ledger)), "factor")
    assert r.functions.registeredFinancingOf(slot).call() == second
    fn = r.functions.recordFinancingRegistration(earlier, OTHER_NUMBER, _now(ledger))
    assert_reverts(ledger, fn, "bank", "ReceivablesRegisteredElsewhere", requestId=earlier, registeredRequestId=second)
    assert r.functions.financingRegistration(earlier).call() == (bytes(32), 0)


def test_the_financier_records_the_registration_of_its_active_pledge(ledger: Sandbox) -> None:
    w = receipts(ledger)
    receipt_id, pledge_id = pledged_receipt(ledger)
    day = _now(ledger)
    tx = ledger.send(w.functions.recordPledgeRegistration(pledge_id, NUMBER, day), "bank")
    (event,) = ledger.events(tx, "receipts", "PledgeRegistered")
    assert (event["pledgeId"], event["receiptId"], event["financier"]) == (
        pledge_id,
        receipt_id,
        ledger.address("bank"),
    )
    assert (event["number"], event["registeredAt"]) == (NUMBER, day)
    assert w.functions.pledgeRegistration(pledge_id).call() == (NUMBER, day)
    again = w.functions.recordPledgeRegistration(pledge_id, OTHER_NUMBER, day)
    assert_reverts(ledger, again, "bank", "PledgeAlreadyRegistered", pledgeId=pledge_id, number=NUMBER)


def test_a_pledge_registration_is_the_financiers_of_an_active_pledge_with_a_valid_number_and_date(
    ledger: Sandbox,
) -> None:
    w = receipts(ledger)
    requested = request_pledge(ledger, issue_receipt(ledger))
    now = _now(ledger)
    fn = w.functions.recordPledgeRegistration(requested, NUMBER, now)
    assert_reverts(ledger, fn, "bank", "PledgeNotActive", pledgeId=requested)
    _, pledge_id = pledged_receipt(ledger)
    fn = w.functions.recordPledgeRegistration(pledge_id, NUMBER, now)
    for caller in ("steel", "factor", "regulator", "warehouse"):
        assert_reverts(ledger, fn, caller, "PledgeNotFinancier", pledgeId=pledge_id)
    for number, day in ((bytes(32), now), (NUMBER, 0), (NUMBER, now + DAY)):
        fn = w.functions.recordPledgeRegistration(pledge_id, number, day)
        assert_reverts(ledger, fn, "bank", "PledgeInvalidRegistration", number=number, registeredAt=day)
