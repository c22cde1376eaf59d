"""Warehouse receipts: issue, attestation, pledge loans, repayment, enforcement, redemption, freezes, locks.

Each test is named after the rule it proves; a failed transaction is checked by its custom error's name (and,
where it matters, its arguments) and for having emitted nothing. ``TestAuthorisation`` runs every state-
changing function against one caller of each role (and an unregistered one): only the named party succeeds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from eth_utils import function_signature_to_4byte_selector, keccak

from ledger.tooling.sandbox import Sandbox
from tests.contracts.support import assert_reverts
from tests.contracts.warehouse_fixtures import (
    DAY,
    DOCUMENTS,
    GOODS,
    MAX_UINT256,
    P_ACCRUED_FROM,
    P_BORROWER,
    P_DUE_DATE,
    P_FINANCIER,
    P_INTEREST_DUE,
    P_PRINCIPAL,
    P_RATE,
    P_RECEIPT,
    P_STATE,
    PRINCIPAL,
    QUANTITY,
    R_EXPIRY,
    R_FROZEN,
    R_GOODS,
    R_STATE,
    R_VALUATION,
    R_VALUED_AT,
    RATE_BPS,
    TONNE,
    VALUATION,
    YEAR,
    ZERO_ADDRESS,
    ZERO_HASH,
    GoodsStatus,
    PledgeState,
    ReceiptState,
    block_time,
    fund_pledge,
    interest,
    issue_fn,
    issue_receipt,
    lot_key,
    owner_of,
    pledge_of,
    pledged_receipt,
    receipt_id_of,
    receipt_of,
    receipts,
    request_fn,
    request_pledge,
    sensor_participant,
)

ATTESTATION = keccak(text="valuation report of the lot")
REASON = keccak(text="regulator decision 2025-17")


@pytest.fixture
def sensor(ledger: Sandbox) -> Iterator[str]:
    """An oracle participant without a role, registered for one test."""
    with sensor_participant(ledger) as name:
        yield name


def transfer_fn(sb: Sandbox, receipt_id: int, to: str, *, owner: str = "steel") -> Any:
    return receipts(sb).functions.transferFrom(sb.address(owner), sb.address(to), receipt_id)


def safe_transfer_fn(sb: Sandbox, receipt_id: int, to: str, *, owner: str = "steel", data: bytes | None = None) -> Any:
    w = receipts(sb)
    if data is None:
        fn = w.get_function_by_signature("safeTransferFrom(address,address,uint256)")
        return fn(sb.address(owner), sb.address(to), receipt_id)
    fn = w.get_function_by_signature("safeTransferFrom(address,address,uint256,bytes)")
    return fn(sb.address(owner), sb.address(to), receipt_id, data)


def owed(sb: Sandbox, pledge_id: int) -> tuple[int, int]:
    principal, accrued = receipts(sb).functions.amountOwed(pledge_id).call()
    return int(principal), int(accrued)


# --- interfaces -------------------------------------------------------------------------------------


ERC721_FUNCTIONS = frozenset(
    {
        "balanceOf",
        "ownerOf",
        "safeTransferFrom",
        "transferFrom",
        "approve",
        "setApprovalForAll",
        "getApproved",
        "isApprovedForAll",
        "supportsInterface",
    }
)


def _interface_id(abi: list[dict[str, Any]]) -> str:
    """ERC-165 id: XOR of the selectors of the functions an interface declares itself (not inherited)."""
    value = 0
    for entry in abi:
        if entry.get("type") == "function" and entry["name"] not in ERC721_FUNCTIONS:
            types = ",".join(_type(i) for i in entry["inputs"])
            value ^= int.from_bytes(function_signature_to_4byte_selector(f"{entry['name']}({types})"), "big")
    return f"{value:08x}"


def _type(entry: dict[str, Any]) -> str:
    if entry["type"].startswith("tuple"):
        return "(" + ",".join(_type(c) for c in entry["components"]) + ")" + entry["type"][5:]
    return str(entry["type"])


def test_supports_erc721_erc165_and_own_interface(ledger: Sandbox) -> None:
    w = receipts(ledger)
    own_interface = _interface_id(ledger.artifacts["IWarehouseReceipts"].abi)
    for interface, expected in [
        ("80ac58cd", True),  # ERC-721
        ("5b5e139f", True),  # ERC-721 metadata
        ("01ffc9a7", True),  # ERC-165
        (own_interface, True),
        ("ffffffff", False),
        ("d5358140", False),  # ERC-3525 is the receivables', not ours
    ]:
        assert w.functions.supportsInterface(bytes.fromhex(interface)).call() is expected, interface


# --- issue ----------------------------------------------------------------------------------------


def test_issue_mints_receipt_to_owner_and_emits_every_value(ledger: Sandbox) -> None:
    w = receipts(ledger)
    key = lot_key()
    expiry = ledger.now() + YEAR
    tx = ledger.send(
        w.functions.issueReceipt(ledger.address("steel"), key, GOODS, QUANTITY, TONNE, VALUATION, expiry, DOCUMENTS),
        "warehouse",
    )
    (event,) = ledger.events(tx, "receipts", "ReceiptIssued")
    issued_at = block_time(ledger, tx)
    receipt_id = event["receiptId"]
    assert event == {
        "receiptId": receipt_id,
        "warehouse": ledger.address("warehouse"),
        "owner": ledger.address("steel"),
        "lotKeyHash": key,
        "goodsHash": GOODS,
        "quantity": QUANTITY,
        "unit": TONNE,
        "valuation": VALUATION,
        "valuedAt": issued_at,
        "expiry": expiry,
        "documentHash": DOCUMENTS,
    }
    (transfer,) = ledger.events(tx, "receipts", "Transfer")
    assert transfer == {"from": ZERO_ADDRESS, "to": ledger.address("steel"), "tokenId": receipt_id}
    assert receipt_of(ledger, receipt_id) == (
        ledger.address("warehouse"),
        VALUATION,
        QUANTITY,
        TONNE,
        issued_at,
        expiry,
        GoodsStatus.SOUND,
        ReceiptState.ACTIVE,
        False,
    )
    assert owner_of(ledger, receipt_id) == ledger.address("steel")
    assert w.functions.balanceOf(ledger.address("steel")).call() == 1
    assert w.functions.receiptIdOfLot(key).call() == receipt_id


def test_receipt_id_is_the_lot_key_hash(ledger: Sandbox) -> None:
    w = receipts(ledger)
    keys = [lot_key(), lot_key("warehouse2"), lot_key()]
    ids = [
        issue_receipt(ledger, key=keys[0]),
        issue_receipt(ledger, warehouse="warehouse2", owner="trader", key=keys[1]),
        issue_receipt(ledger, key=keys[2]),
    ]
    assert ids == [receipt_id_of(key) for key in keys]
    assert all(receipt_id > 2**128 for receipt_id in ids)  # a hash, not a counter: the API renders it in hex
    assert [w.functions.receiptIdOfLot(key).call() for key in keys] == ids
    assert w.functions.receiptIdOfLot(lot_key()).call() == 0  # a key never receipted
    assert [owner_of(ledger, receipt_id) for receipt_id in ids] == [
        ledger.address("steel"),
        ledger.address("trader"),
        ledger.address("steel"),
    ]


def test_issue_reverts_when_lot_already_receipted_by_any_warehouse(ledger: Sandbox) -> None:
    key = lot_key()
    first = issue_receipt(ledger, key=key)
    for warehouse in ("warehouse", "warehouse2"):
        assert_reverts(
            ledger,
            issue_fn(ledger, key=key, owner="trader"),
            warehouse,
            "ReceiptLotAlreadyReceipted",
            lotKeyHash=key,
            existingReceiptId=first,
        )


def test_lot_key_stays_taken_after_the_receipt_is_redeemed(ledger: Sandbox) -> None:
    key = lot_key()
    receipt_id = issue_receipt(ledger, key=key)
    w = receipts(ledger)
    ledger.send(w.functions.requestRedemption(receipt_id), "steel")
    ledger.send(w.functions.confirmRedemption(receipt_id), "warehouse")
    assert_reverts(
        ledger,
        issue_fn(ledger, key=key),
        "warehouse",
        "ReceiptLotAlreadyReceipted",
        existingReceiptId=receipt_id,
    )
    assert w.functions.receiptIdOfLot(key).call() == receipt_id


@pytest.mark.parametrize(
    ("terms", "error"),
    [
        ({"key": ZERO_HASH}, "ReceiptInvalidLotKey"),
        ({"goods": ZERO_HASH}, "ReceiptInvalidDocuments"),
        ({"documents": ZERO_HASH}, "ReceiptInvalidDocuments"),
        ({"quantity": 0}, "ReceiptInvalidQuantity"),
        ({"quantity": 2**64}, "ReceiptInvalidQuantity"),
        ({"unit": b"\x00" * 8}, "ReceiptInvalidQuantity"),
        ({"valuation": 0}, "ReceiptInvalidValuation"),
        ({"valuation": 2**96}, "ReceiptInvalidValuation"),
        ({"expires_in": 0}, "ReceiptInvalidExpiry"),
        ({"expires_in": -DAY}, "ReceiptInvalidExpiry"),
        ({"expires_in": 2**48}, "ReceiptInvalidExpiry"),
        ({"owner": "outsider"}, "RegistryNotRegistered"),
    ],
)
def test_issue_rejects_invalid_terms(ledger: Sandbox, terms: dict[str, Any], error: str) -> None:
    assert_reverts(ledger, issue_fn(ledger, **terms), "warehouse", error)


@pytest.mark.parametrize(
    ("action", "error"),
    [("suspend", "RegistryParticipantNotActive"), ("freeze", "RegistryParticipantFrozen")],
)
def test_issue_reverts_when_owner_or_warehouse_is_not_active(ledger: Sandbox, action: str, error: str) -> None:
    registry = ledger.contracts["registry"]

    def disable(who: str) -> None:
        if action == "suspend":
            ledger.send(registry.functions.suspend(ledger.address(who)), "operator")
        else:
            ledger.send(registry.functions.freeze(ledger.address(who), REASON), "regulator")

    disable("steel")
    assert_reverts(ledger, issue_fn(ledger), "warehouse", error, account=ledger.address("steel").lower())
    disable("warehouse")
    assert_reverts(
        ledger,
        issue_fn(ledger, owner="trader"),
        "warehouse",
        error,
        account=ledger.address("warehouse").lower(),
    )


# --- attestation ----------------------------------------------------------------------------------


def test_revaluation_records_value_time_and_attestation(ledger: Sandbox) -> None:
    receipt_id = issue_receipt(ledger)
    ledger.travel_to(ledger.now() + 10 * DAY)
    tx = ledger.send(receipts(ledger).functions.revalueReceipt(receipt_id, 3_800_000_00, ATTESTATION), "warehouse")
    at = block_time(ledger, tx)
    (event,) = ledger.events(tx, "receipts", "ReceiptRevalued")
    assert event == {
        "receiptId": receipt_id,
        "warehouse": ledger.address("warehouse"),
        "attester": ledger.address("warehouse"),
        "previousValuation": VALUATION,
        "valuation": 3_800_000_00,
        "valuedAt": at,
        "attestationHash": ATTESTATION,
    }
    r = receipt_of(ledger, receipt_id)
    assert (r[R_VALUATION], r[R_VALUED_AT]) == (3_800_000_00, at)
    assert ledger.events(tx, "receipts", "PledgeMarginCalled") == []


def test_goods_status_update_is_attested_and_blocks_pledging(ledger: Sandbox) -> None:
    receipt_id = issue_receipt(ledger)
    w = receipts(ledger)
    tx = ledger.send(w.functions.updateGoodsStatus(receipt_id, GoodsStatus.DAMAGED, ATTESTATION), "warehouse")
    (event,) = ledger.events(tx, "receipts", "ReceiptGoodsStatusUpdated")
    assert (event["previousStatus"], event["status"], event["attestationHash"]) == (
        GoodsStatus.SOUND,
        GoodsStatus.DAMAGED,
        ATTESTATION,
    )
    assert event["attestedAt"] == block_time(ledger, tx)
    assert receipt_of(ledger, receipt_id)[R_GOODS] == GoodsStatus.DAMAGED
    assert_reverts(ledger, request_fn(ledger, receipt_id), "steel", "ReceiptGoodsNotSound", status=GoodsStatus.DAMAGED)


def test_fund_reverts_when_goods_stopped_being_sound_after_the_request(ledger: Sandbox) -> None:
    receipt_id = issue_receipt(ledger)
    pledge_id = request_pledge(ledger, receipt_id)
    ledger.send(
        receipts(ledger).functions.updateGoodsStatus(receipt_id, GoodsStatus.MISSING, ATTESTATION),
        "warehouse",
    )
    assert_reverts(ledger, receipts(ledger).functions.fundPledge(pledge_id), "bank", "ReceiptGoodsNotSound")


def test_warehouse_wide_oracle_attests_for_every_receipt_of_its_warehouse(ledger: Sandbox, sensor: str) -> None:
    w = receipts(ledger)
    first, second = issue_receipt(ledger), issue_receipt(ledger)
    other = issue_receipt(ledger, warehouse="warehouse2")
    tx = ledger.send(w.functions.appointOracle(ledger.address(sensor)), "warehouse")
    (event,) = ledger.events(tx, "receipts", "OracleAppointed")
    assert event == {
        "warehouse": ledger.address("warehouse"),
        "receiptId": 0,
        "oracle": ledger.address(sensor),
        "previousOracle": ZERO_ADDRESS,
    }
    assert w.functions.warehouseOracle(ledger.address("warehouse")).call() == ledger.address(sensor)
    for receipt_id in (first, second):
        tx = ledger.send(w.functions.revalueReceipt(receipt_id, 1_000, ATTESTATION), sensor)
        assert ledger.events(tx, "receipts", "ReceiptRevalued")[0]["attester"] == ledger.address(sensor)
    ledger.send(w.functions.updateGoodsStatus(first, GoodsStatus.DISPUTED, ATTESTATION), sensor)
    assert_reverts(ledger, w.functions.revalueReceipt(other, 1_000, ATTESTATION), sensor, "ReceiptNotAttester")


def test_receipt_oracle_attests_only_for_its_receipt(ledger: Sandbox, sensor: str) -> None:
    w = receipts(ledger)
    mine, not_mine = issue_receipt(ledger), issue_receipt(ledger)
    tx = ledger.send(w.functions.appointReceiptOracle(mine, ledger.address(sensor)), "warehouse")
    assert ledger.events(tx, "receipts", "OracleAppointed")[0]["receiptId"] == mine
    assert w.functions.receiptOracle(mine).call() == ledger.address(sensor)
    ledger.send(w.functions.revalueReceipt(mine, 5, ATTESTATION), sensor)
    assert_reverts(
        ledger,
        w.functions.revalueReceipt(not_mine, 5, ATTESTATION),
        sensor,
        "ReceiptNotAttester",
        receiptId=not_mine,
        account=ledger.address(sensor).lower(),
    )


def test_revoked_oracle_can_no_longer_attest(ledger: Sandbox, sensor: str) -> None:
    w = receipts(ledger)
    receipt_id = issue_receipt(ledger)
    ledger.send(w.functions.appointOracle(ledger.address(sensor)), "warehouse")
    tx = ledger.send(w.functions.appointOracle(ZERO_ADDRESS), "warehouse")
    assert ledger.events(tx, "receipts", "OracleAppointed")[0]["previousOracle"] == ledger.address(sensor)
    assert_reverts(ledger, w.functions.revalueReceipt(receipt_id, 5, ATTESTATION), sensor, "ReceiptNotAttester")


def test_oracle_cannot_attest_while_its_warehouse_or_itself_is_not_active(ledger: Sandbox, sensor: str) -> None:
    w = receipts(ledger)
    registry = ledger.contracts["registry"]
    receipt_id = issue_receipt(ledger)
    ledger.send(w.functions.appointOracle(ledger.address(sensor)), "warehouse")
    ledger.send(registry.functions.freeze(ledger.address(sensor), REASON), "regulator")
    assert_reverts(ledger, w.functions.revalueReceipt(receipt_id, 5, ATTESTATION), sensor, "RegistryParticipantFrozen")
    ledger.send(registry.functions.unfreeze(ledger.address(sensor)), "regulator")
    ledger.send(registry.functions.suspend(ledger.address("warehouse")), "operator")
    assert_reverts(
        ledger,
        w.functions.revalueReceipt(receipt_id, 5, ATTESTATION),
        sensor,
        "RegistryParticipantNotActive",
        account=ledger.address("warehouse").lower(),
    )


def test_oracle_must_be_an_active_participant(ledger: Sandbox) -> None:
    w = receipts(ledger)
    receipt_id = issue_receipt(ledger)
    outsider = ledger.address("outsider")
    assert_reverts(ledger, w.functions.appointOracle(outsider), "warehouse", "RegistryNotRegistered")
    assert_reverts(ledger, w.functions.appointReceiptOracle(receipt_id, outsider), "warehouse", "RegistryNotRegistered")


def test_revaluation_reverts_above_96_bits(ledger: Sandbox) -> None:
    receipt_id = issue_receipt(ledger)
    fn = receipts(ledger).functions.revalueReceipt(receipt_id, 2**96, ATTESTATION)
    assert_reverts(ledger, fn, "warehouse", "ReceiptInvalidValuation", valuation=2**96)


# --- margin calls ---------------------------------------------------------------------------------


def test_revaluation_that_breaches_maintenance_ratio_raises_margin_call(ledger: Sandbox) -> None:
    receipt_id, pledge_id = pledged_receipt(ledger)
    # principal 2,800,000 yuan; maintenance 80%: a call when the valuation falls below 3,500,000 yuan.
    w = receipts(ledger)
    tx = ledger.send(w.functions.revalueReceipt(receipt_id, 3_500_000_00, ATTESTATION), "warehouse")
    assert ledger.events(tx, "receipts", "PledgeMarginCalled") == []  # exactly at the ratio: not above
    tx = ledger.send(w.functions.revalueReceipt(receipt_id, 3_499_999_99, ATTESTATION), "warehouse")
    (call,) = ledger.events(tx, "receipts", "PledgeMarginCalled")
    assert call == {
        "pledgeId": pledge_id,
        "borrower": ledger.address("steel"),
        "financier": ledger.address("bank"),
        "receiptId": receipt_id,
        "principal": PRINCIPAL,
        "valuation": 3_499_999_99,
        "maintenanceRatioBps": 8_000,
    }
    assert pledge_of(ledger, pledge_id)[P_STATE] == PledgeState.ACTIVE  # informational: the lien stands


def test_margin_call_follows_outstanding_principal_and_operator_ratio(ledger: Sandbox) -> None:
    receipt_id, pledge_id = pledged_receipt(ledger)
    w = receipts(ledger)
    ledger.send(w.functions.repayPledge(pledge_id, 1_000_000_00), "steel")  # interest first, then principal
    principal = pledge_of(ledger, pledge_id)[P_PRINCIPAL]
    assert principal < PRINCIPAL
    low = principal * 10_000 // 8_000  # principal * 10,000 <= valuation * 8,000: no call
    tx = ledger.send(w.functions.revalueReceipt(receipt_id, low + 1, ATTESTATION), "warehouse")
    assert ledger.events(tx, "receipts", "PledgeMarginCalled") == []
    ledger.send(w.functions.setMaintenanceRatio(7_000), "operator")
    tx = ledger.send(w.functions.revalueReceipt(receipt_id, low + 1, ATTESTATION), "warehouse")
    (call,) = ledger.events(tx, "receipts", "PledgeMarginCalled")
    assert (call["principal"], call["maintenanceRatioBps"]) == (principal, 7_000)


def test_revaluation_of_a_receipt_with_only_a_request_raises_no_margin_call(ledger: Sandbox) -> None:
    receipt_id = issue_receipt(ledger)
    request_pledge(ledger, receipt_id)
    tx = ledger.send(receipts(ledger).functions.revalueReceipt(receipt_id, 1, ATTESTATION), "warehouse")
    assert ledger.events(tx, "receipts", "PledgeMarginCalled") == []


# --- sensor readings: anchored digests, collateral alerts ----------------------------------------------


def test_anchored_readings_within_tolerance_raise_no_alert(ledger: Sandbox, sensor: str) -> None:
    receipt_id, _ = pledged_receipt(ledger)
    w = receipts(ledger)
    ledger.send(w.functions.appointReceiptOracle(receipt_id, ledger.address(sensor)), "warehouse")
    observed = QUANTITY * 9_800 // 10_000  # 2 % short, tolerance 2 %: not more than the tolerance
    tx = ledger.send(w.functions.anchorReadings(receipt_id, ATTESTATION, 1_700_000_000, 12, observed, 200), sensor)
    (anchored,) = ledger.events(tx, "receipts", "ReceiptReadingsAnchored")
    assert anchored == {
        "receiptId": receipt_id,
        "attester": ledger.address(sensor),
        "digest": ATTESTATION,
        "periodEnd": 1_700_000_000,
        "readings": 12,
        "observedQuantity": observed,
    }
    assert ledger.events(tx, "receipts", "ReceiptCollateralShortfall") == []
    assert ledger.events(tx, "receipts", "PledgeMarginCalled") == []


def test_shortfall_beyond_tolerance_raises_collateral_alert_and_margin_call(ledger: Sandbox, sensor: str) -> None:
    receipt_id, pledge_id = pledged_receipt(ledger)
    w = receipts(ledger)
    ledger.send(w.functions.appointReceiptOracle(receipt_id, ledger.address(sensor)), "warehouse")
    observed = QUANTITY * 8_000 // 10_000  # 20 % of the weight gone
    tx = ledger.send(w.functions.anchorReadings(receipt_id, ATTESTATION, 1_700_000_000, 4, observed, 200), sensor)
    (alert,) = ledger.events(tx, "receipts", "ReceiptCollateralShortfall")
    assert alert == {
        "receiptId": receipt_id,
        "attester": ledger.address(sensor),
        "quantity": QUANTITY,
        "observedQuantity": observed,
        "toleranceBps": 200,
    }
    (call,) = ledger.events(tx, "receipts", "PledgeMarginCalled")
    # principal 2,800,000 yuan against 80 % of the valuation scaled by observed / quantity
    assert call["pledgeId"] == pledge_id
    assert call["valuation"] == VALUATION * observed // QUANTITY
    assert call["principal"] == PRINCIPAL
    # the recorded valuation is unchanged: the alert is an observation, not a revaluation
    assert receipt_of(ledger, receipt_id)[R_VALUATION] == VALUATION


def test_shortfall_of_an_unpledged_receipt_raises_an_alert_without_margin_call(ledger: Sandbox) -> None:
    receipt_id = issue_receipt(ledger)
    w = receipts(ledger)
    tx = ledger.send(w.functions.anchorReadings(receipt_id, ATTESTATION, 1, 1, 0, 0), "warehouse")
    assert len(ledger.events(tx, "receipts", "ReceiptCollateralShortfall")) == 1
    assert ledger.events(tx, "receipts", "PledgeMarginCalled") == []


def test_anchored_readings_need_a_digest_and_a_tolerance_within_10000_bps(ledger: Sandbox) -> None:
    receipt_id = issue_receipt(ledger)
    w = receipts(ledger)
    assert_reverts(
        ledger,
        w.functions.anchorReadings(receipt_id, ZERO_HASH, 1, 1, QUANTITY, 0),
        "warehouse",
        "ReceiptInvalidReadings",
    )
    assert_reverts(
        ledger,
        w.functions.anchorReadings(receipt_id, ATTESTATION, 1, 1, QUANTITY, 10_001),
        "warehouse",
        "ReceiptInvalidReadings",
        toleranceBps=10_001,
    )


def test_only_an_attester_anchors_readings(ledger: Sandbox, sensor: str) -> None:
    receipt_id = issue_receipt(ledger)
    fn = receipts(ledger).functions.anchorReadings(receipt_id, ATTESTATION, 1, 1, 0, 0)
    assert_reverts(ledger, fn, sensor, "ReceiptNotAttester")


# --- pledge: request, cancel, decline, fund --------------------------------------------------------


def test_request_pledge_records_terms_and_locks_the_receipt(ledger: Sandbox) -> None:
    receipt_id = issue_receipt(ledger)
    due = ledger.now() + 90 * DAY
    w = receipts(ledger)
    tx = ledger.send(w.functions.requestPledge(receipt_id, ledger.address("bank"), PRINCIPAL, RATE_BPS, due), "steel")
    (event,) = ledger.events(tx, "receipts", "PledgeRequested")
    pledge_id = event["pledgeId"]
    assert event == {
        "pledgeId": pledge_id,
        "borrower": ledger.address("steel"),
        "financier": ledger.address("bank"),
        "receiptId": receipt_id,
        "principal": PRINCIPAL,
        "rateBps": RATE_BPS,
        "dueDate": due,
    }
    p = pledge_of(ledger, pledge_id)
    assert (p[P_BORROWER], p[P_RECEIPT], p[P_RATE], p[P_STATE]) == (
        ledger.address("steel"),
        receipt_id,
        RATE_BPS,
        PledgeState.REQUESTED,
    )
    assert (p[P_FINANCIER], p[P_PRINCIPAL], p[P_DUE_DATE]) == (ledger.address("bank"), PRINCIPAL, due)
    assert receipt_of(ledger, receipt_id)[R_STATE] == ReceiptState.PLEDGE_REQUESTED
    assert w.functions.pledgeOf(receipt_id).call() == pledge_id


def test_fund_records_the_lien_and_pays_principal_from_financier_to_owner(ledger: Sandbox) -> None:
    receipt_id = issue_receipt(ledger)
    pledge_id = request_pledge(ledger, receipt_id)
    before = ledger.balance("steel"), ledger.balance("bank")
    tx = fund_pledge(ledger, pledge_id)
    funded_at = block_time(ledger, tx)
    (event,) = ledger.events(tx, "receipts", "PledgeFunded")
    assert event["pledgeId"] == pledge_id and event["receiptId"] == receipt_id
    assert (event["principal"], event["rateBps"], event["fundedAt"]) == (PRINCIPAL, RATE_BPS, funded_at)
    (cash,) = ledger.events(tx, "token", "Transfer")
    assert cash == {"from": ledger.address("bank"), "to": ledger.address("steel"), "value": PRINCIPAL}
    assert (ledger.balance("steel"), ledger.balance("bank")) == (before[0] + PRINCIPAL, before[1] - PRINCIPAL)
    assert receipt_of(ledger, receipt_id)[R_STATE] == ReceiptState.PLEDGED
    p = pledge_of(ledger, pledge_id)
    assert (p[P_STATE], p[P_ACCRUED_FROM], p[P_INTEREST_DUE]) == (PledgeState.ACTIVE, funded_at, 0)
    assert owner_of(ledger, receipt_id) == ledger.address("steel")
    assert ledger.balance("receipts") == 0  # the contract never holds cash


def test_principal_is_capped_at_valuation_times_advance_rate_rounded_down(ledger: Sandbox) -> None:
    receipt_id = issue_receipt(ledger, valuation=333)  # 333 * 70% = 233.1, rounded down to 233
    w = receipts(ledger)
    assert w.functions.advanceLimit(receipt_id, ledger.address("bank")).call() == 233
    assert_reverts(
        ledger,
        request_fn(ledger, receipt_id, principal=234),
        "steel",
        "PledgeExceedsAdvanceLimit",
        receiptId=receipt_id,
        principal=234,
        limit=233,
    )
    request_pledge(ledger, receipt_id, principal=233)


def test_operator_sets_default_and_per_financier_advance_rates(ledger: Sandbox) -> None:
    w = receipts(ledger)
    bank, factor = ledger.address("bank"), ledger.address("factor")
    assert (w.functions.defaultAdvanceRateBps().call(), w.functions.advanceRateOf(bank).call()) == (
        7_000,
        7_000,
    )
    tx = ledger.send(w.functions.setFinancierAdvanceRate(factor, 5_000), "operator")
    (event,) = ledger.events(tx, "receipts", "AdvanceRateSet")
    assert event == {"financier": factor, "advanceRateBps": 5_000, "operator": ledger.address("operator")}
    tx = ledger.send(w.functions.setDefaultAdvanceRate(6_000), "operator")
    assert ledger.events(tx, "receipts", "AdvanceRateSet")[0]["financier"] == ZERO_ADDRESS
    assert (w.functions.advanceRateOf(bank).call(), w.functions.advanceRateOf(factor).call()) == (
        6_000,
        5_000,
    )
    receipt_id = issue_receipt(ledger)
    limit = VALUATION * 5_000 // 10_000
    assert_reverts(
        ledger,
        request_fn(ledger, receipt_id, financier="factor", principal=limit + 1),
        "steel",
        "PledgeExceedsAdvanceLimit",
        limit=limit,
    )
    ledger.send(w.functions.setFinancierAdvanceRate(factor, 0), "operator")  # back to the default
    assert w.functions.advanceRateOf(factor).call() == 6_000
    request_pledge(ledger, receipt_id, financier="factor", principal=VALUATION * 6_000 // 10_000)


def test_fund_rechecks_the_advance_limit_against_the_current_valuation(ledger: Sandbox) -> None:
    receipt_id = issue_receipt(ledger)
    pledge_id = request_pledge(ledger, receipt_id)
    w = receipts(ledger)
    ledger.send(w.functions.revalueReceipt(receipt_id, VALUATION // 2, ATTESTATION), "warehouse")
    before = ledger.balance("steel")
    assert_reverts(
        ledger,
        w.functions.fundPledge(pledge_id),
        "bank",
        "PledgeExceedsAdvanceLimit",
        limit=VALUATION // 2 * 7 // 10,
    )
    assert ledger.balance("steel") == before
    assert receipt_of(ledger, receipt_id)[R_STATE] == ReceiptState.PLEDGE_REQUESTED


def test_second_request_reverts_while_a_request_or_pledge_is_open(ledger: Sandbox) -> None:
    receipt_id = issue_receipt(ledger)
    pledge_id = request_pledge(ledger, receipt_id)
    for financier in ("bank", "factor"):
        assert_reverts(
            ledger,
            request_fn(ledger, receipt_id, financier=financier),
            "steel",
            "ReceiptAlreadyPledged",
            receiptId=receipt_id,
            pledgeId=pledge_id,
        )
    fund_pledge(ledger, pledge_id)
    assert_reverts(ledger, request_fn(ledger, receipt_id, financier="factor"), "steel", "ReceiptAlreadyPledged")


def test_expired_receipt_cannot_be_pledged(ledger: Sandbox) -> None:
    receipt_id = issue_receipt(ledger, expires_in=30 * DAY)
    expiry = receipt_of(ledger, receipt_id)[R_EXPIRY]
    ledger.travel_to(expiry)
    assert_reverts(ledger, request_fn(ledger, receipt_id, due_in=DAY), "steel", "ReceiptExpired", expiry=expiry)


@pytest.mark.parametrize("due", ["now", "at expiry", "after expiry"])
def test_due_date_must_be_in_the_future_and_before_expiry(ledger: Sandbox, due: str) -> None:
    receipt_id = issue_receipt(ledger)
    expiry = receipt_of(ledger, receipt_id)[R_EXPIRY]
    w = receipts(ledger)
    # The next block is one second after the latest, so "now" is `ledger.now() + 1` for the transaction.
    due_date = {"now": ledger.now() + 1, "at expiry": expiry, "after expiry": expiry + 1}[due]
    fn = w.functions.requestPledge(receipt_id, ledger.address("bank"), 1, RATE_BPS, due_date)
    assert_reverts(ledger, fn, "steel", "PledgeInvalidDueDate", dueDate=due_date, expiry=expiry)


@pytest.mark.parametrize(
    ("financier", "error"),
    [
        ("trader", "RegistryMissingRole"),
        ("warehouse", "RegistryMissingRole"),
        ("outsider", "RegistryMissingRole"),
    ],
)
def test_request_reverts_when_financier_is_not_a_financier(ledger: Sandbox, financier: str, error: str) -> None:
    receipt_id = issue_receipt(ledger)
    assert_reverts(ledger, request_fn(ledger, receipt_id, financier=financier), "steel", error)


def test_request_reverts_when_financier_is_frozen(ledger: Sandbox) -> None:
    receipt_id = issue_receipt(ledger)
    ledger.send(ledger.contracts["registry"].functions.freeze(ledger.address("bank"), REASON), "regulator")
    assert_reverts(ledger, request_fn(ledger, receipt_id), "steel", "RegistryParticipantFrozen")


def test_owner_cannot_pledge_to_itself(ledger: Sandbox) -> None:
    receipt_id = issue_receipt(ledger, owner="bank")
    assert_reverts(
        ledger,
        request_fn(ledger, receipt_id, financier="bank"),
        "bank",
        "PledgeFinancierIsBorrower",
        account=ledger.address("bank").lower(),
    )


def test_request_reverts_for_zero_principal(ledger: Sandbox) -> None:
    receipt_id = issue_receipt(ledger)
    assert_reverts(ledger, request_fn(ledger, receipt_id, principal=0), "steel", "PledgeZeroPrincipal")


@pytest.mark.parametrize(
    ("closer", "function", "event"),
    [("steel", "cancelPledge", "PledgeCancelled"), ("bank", "declinePledge", "PledgeDeclined")],
)
def test_cancel_or_decline_unlocks_the_receipt(ledger: Sandbox, closer: str, function: str, event: str) -> None:
    receipt_id = issue_receipt(ledger)
    pledge_id = request_pledge(ledger, receipt_id)
    w = receipts(ledger)
    tx = ledger.send(getattr(w.functions, function)(pledge_id), closer)
    assert ledger.events(tx, "receipts", event) == [
        {
            "pledgeId": pledge_id,
            "borrower": ledger.address("steel"),
            "financier": ledger.address("bank"),
            "receiptId": receipt_id,
        }
    ]
    assert receipt_of(ledger, receipt_id)[R_STATE] == ReceiptState.ACTIVE
    assert_reverts(
        ledger,
        w.functions.fundPledge(pledge_id),
        "bank",
        "PledgeInvalidTransition",
        to=PledgeState.ACTIVE,
    )
    ledger.send(transfer_fn(ledger, receipt_id, "trader"), "steel")
    assert owner_of(ledger, receipt_id) == ledger.address("trader")


def test_fund_reverts_after_the_due_date(ledger: Sandbox) -> None:
    receipt_id = issue_receipt(ledger)
    pledge_id = request_pledge(ledger, receipt_id, due_in=10 * DAY)
    ledger.travel_to(pledge_of(ledger, pledge_id)[P_DUE_DATE])
    assert_reverts(ledger, receipts(ledger).functions.fundPledge(pledge_id), "bank", "PledgePastDue")


def test_fund_is_all_or_nothing_when_the_cash_leg_fails(ledger: Sandbox) -> None:
    receipt_id = issue_receipt(ledger)
    pledge_id = request_pledge(ledger, receipt_id)
    token = ledger.contracts["token"]
    ledger.send(token.functions.approve(ledger.address("receipts"), PRINCIPAL - 1), "bank")
    before = ledger.balance("steel"), ledger.balance("bank")
    assert_reverts(ledger, receipts(ledger).functions.fundPledge(pledge_id), "bank", "ERC20InsufficientAllowance")
    assert (ledger.balance("steel"), ledger.balance("bank")) == before
    assert receipt_of(ledger, receipt_id)[R_STATE] == ReceiptState.PLEDGE_REQUESTED
    assert pledge_of(ledger, pledge_id)[P_STATE] == PledgeState.REQUESTED


def test_fund_reverts_when_the_borrower_was_frozen_after_the_request(ledger: Sandbox) -> None:
    receipt_id = issue_receipt(ledger)
    pledge_id = request_pledge(ledger, receipt_id)
    ledger.send(ledger.contracts["registry"].functions.freeze(ledger.address("steel"), REASON), "regulator")
    assert_reverts(
        ledger,
        receipts(ledger).functions.fundPledge(pledge_id),
        "bank",
        "RegistryParticipantFrozen",
        account=ledger.address("steel").lower(),
    )


# --- repayment and interest ----------------------------------------------------------------------


def test_full_repayment_charges_act365_interest_rounded_up_and_releases_the_lien(ledger: Sandbox) -> None:
    receipt_id, pledge_id = pledged_receipt(ledger)
    funded_at = pledge_of(ledger, pledge_id)[P_ACCRUED_FROM]
    ledger.travel_to(funded_at + 45 * DAY)
    before = ledger.balance("steel"), ledger.balance("bank")
    w = receipts(ledger)
    tx = ledger.send(w.functions.repayPledge(pledge_id, MAX_UINT256), "steel")
    paid_at = block_time(ledger, tx)
    expected_interest = interest(PRINCIPAL, RATE_BPS, paid_at - funded_at)
    charge = PRINCIPAL * RATE_BPS * (paid_at - funded_at)  # the exact interest * 365 days * 10,000
    # Rounded up, not down: the smallest whole fen at or above the exact charge (which is not whole here).
    assert (expected_interest - 1) * YEAR * 10_000 < charge < expected_interest * YEAR * 10_000
    (repaid,) = ledger.events(tx, "receipts", "PledgeRepaid")
    assert repaid == {
        "pledgeId": pledge_id,
        "borrower": ledger.address("steel"),
        "financier": ledger.address("bank"),
        "receiptId": receipt_id,
        "amount": PRINCIPAL + expected_interest,
        "interestPaid": expected_interest,
        "principalPaid": PRINCIPAL,
        "principalOutstanding": 0,
        "interestOutstanding": 0,
        "paidAt": paid_at,
    }
    assert len(ledger.events(tx, "receipts", "PledgeReleased")) == 1
    total = PRINCIPAL + expected_interest
    assert (ledger.balance("steel"), ledger.balance("bank")) == (before[0] - total, before[1] + total)
    assert pledge_of(ledger, pledge_id)[P_STATE] == PledgeState.RELEASED
    assert receipt_of(ledger, receipt_id)[R_STATE] == ReceiptState.ACTIVE
    ledger.send(transfer_fn(ledger, receipt_id, "trader"), "steel")  # unlocked


def test_partial_repayment_pays_accrued_interest_first_then_principal(ledger: Sandbox) -> None:
    receipt_id, pledge_id = pledged_receipt(ledger)
    w = receipts(ledger)
    funded_at = pledge_of(ledger, pledge_id)[P_ACCRUED_FROM]
    ledger.travel_to(funded_at + 30 * DAY)
    tx = ledger.send(w.functions.repayPledge(pledge_id, 1_000), "steel")  # less than the interest
    first_at = block_time(ledger, tx)
    accrued = interest(PRINCIPAL, RATE_BPS, first_at - funded_at)
    (event,) = ledger.events(tx, "receipts", "PledgeRepaid")
    assert (event["interestPaid"], event["principalPaid"]) == (1_000, 0)
    assert (event["principalOutstanding"], event["interestOutstanding"]) == (PRINCIPAL, accrued - 1_000)
    p = pledge_of(ledger, pledge_id)
    assert (p[P_PRINCIPAL], p[P_INTEREST_DUE], p[P_ACCRUED_FROM]) == (PRINCIPAL, accrued - 1_000, first_at)

    ledger.travel_to(first_at + 10 * DAY)
    tx = ledger.send(w.functions.repayPledge(pledge_id, 1_000_000_00), "steel")
    second_at = block_time(ledger, tx)
    accrued2 = accrued - 1_000 + interest(PRINCIPAL, RATE_BPS, second_at - first_at)
    (event,) = ledger.events(tx, "receipts", "PledgeRepaid")
    assert (event["interestPaid"], event["principalPaid"]) == (accrued2, 1_000_000_00 - accrued2)
    assert event["principalOutstanding"] == PRINCIPAL - (1_000_000_00 - accrued2)
    assert ledger.events(tx, "receipts", "PledgeReleased") == []
    assert receipt_of(ledger, receipt_id)[R_STATE] == ReceiptState.PLEDGED


def test_interest_rounds_up_to_the_fen(ledger: Sandbox) -> None:
    _, pledge_id = pledged_receipt(ledger, principal=100, rate_bps=1)
    w = receipts(ledger)
    ledger.travel_to(pledge_of(ledger, pledge_id)[P_ACCRUED_FROM] + 1)  # 100 * 0.01% * 1 s / year: about 3e-8 fen
    assert owed(ledger, pledge_id) == (100, 1)
    tx = ledger.send(w.functions.repayPledge(pledge_id, MAX_UINT256), "steel")
    assert ledger.events(tx, "receipts", "PledgeRepaid")[0]["interestPaid"] == 1


def test_amount_owed_quotes_principal_and_interest_now(ledger: Sandbox) -> None:
    _, pledge_id = pledged_receipt(ledger)
    funded_at = pledge_of(ledger, pledge_id)[P_ACCRUED_FROM]
    ledger.travel_to(funded_at + YEAR)
    assert owed(ledger, pledge_id) == (PRINCIPAL, interest(PRINCIPAL, RATE_BPS, ledger.now() - funded_at))
    assert owed(ledger, 999) == (0, 0)


def test_repay_reverts_for_zero_or_more_than_owed(ledger: Sandbox) -> None:
    _, pledge_id = pledged_receipt(ledger)
    w = receipts(ledger)
    assert_reverts(ledger, w.functions.repayPledge(pledge_id, 0), "steel", "PledgeZeroRepayment")
    # Twice the principal is more than principal plus a few seconds of interest.
    too_much = PRINCIPAL * 2
    assert_reverts(
        ledger,
        w.functions.repayPledge(pledge_id, too_much),
        "steel",
        "PledgeRepaymentExceedsDebt",
        amount=too_much,
    )


def test_repay_reverts_once_the_lien_is_released(ledger: Sandbox) -> None:
    _, pledge_id = pledged_receipt(ledger)
    w = receipts(ledger)
    ledger.send(w.functions.repayPledge(pledge_id, MAX_UINT256), "steel")
    assert_reverts(
        ledger, w.functions.repayPledge(pledge_id, 1), "steel", "PledgeNotActive", state=PledgeState.RELEASED
    )
    assert owed(ledger, pledge_id) == (0, 0)


def test_repayment_is_allowed_after_the_due_date_until_enforced(ledger: Sandbox) -> None:
    receipt_id, pledge_id = pledged_receipt(ledger, due_in=30 * DAY)
    ledger.travel_to(pledge_of(ledger, pledge_id)[P_DUE_DATE] + 5 * DAY)
    tx = ledger.send(receipts(ledger).functions.repayPledge(pledge_id, MAX_UINT256), "steel")
    assert len(ledger.events(tx, "receipts", "PledgeReleased")) == 1
    assert_reverts(
        ledger,
        receipts(ledger).functions.enforcePledge(pledge_id),
        "bank",
        "PledgeInvalidTransition",
        **{"from": PledgeState.RELEASED, "to": PledgeState.ENFORCED},
    )
    assert owner_of(ledger, receipt_id) == ledger.address("steel")


def test_repayment_is_allowed_on_a_frozen_receipt_which_stays_frozen(ledger: Sandbox) -> None:
    receipt_id, pledge_id = pledged_receipt(ledger)
    w = receipts(ledger)
    ledger.send(w.functions.freezeReceipt(receipt_id, REASON), "regulator")
    tx = ledger.send(w.functions.repayPledge(pledge_id, MAX_UINT256), "steel")
    assert len(ledger.events(tx, "receipts", "PledgeReleased")) == 1
    r = receipt_of(ledger, receipt_id)
    assert (r[R_STATE], r[R_FROZEN]) == (ReceiptState.ACTIVE, True)
    assert_reverts(ledger, transfer_fn(ledger, receipt_id, "trader"), "steel", "ReceiptIsFrozen")


# --- enforcement --------------------------------------------------------------------------------


def test_enforce_after_due_date_passes_the_receipt_to_the_financier(ledger: Sandbox) -> None:
    receipt_id, pledge_id = pledged_receipt(ledger, due_in=30 * DAY)
    w = receipts(ledger)
    ledger.send(w.functions.repayPledge(pledge_id, 10_000_00), "steel")
    p = pledge_of(ledger, pledge_id)
    ledger.travel_to(p[P_DUE_DATE] + 1)
    cash = ledger.balance("steel"), ledger.balance("bank")
    tx = ledger.send(w.functions.enforcePledge(pledge_id), "bank")
    at = block_time(ledger, tx)
    (event,) = ledger.events(tx, "receipts", "PledgeEnforced")
    assert event == {
        "pledgeId": pledge_id,
        "borrower": ledger.address("steel"),
        "financier": ledger.address("bank"),
        "receiptId": receipt_id,
        "principalOutstanding": p[P_PRINCIPAL],
        "interestOutstanding": p[P_INTEREST_DUE] + interest(p[P_PRINCIPAL], RATE_BPS, at - p[P_ACCRUED_FROM]),
    }
    assert ledger.events(tx, "receipts", "Transfer") == [
        {"from": ledger.address("steel"), "to": ledger.address("bank"), "tokenId": receipt_id}
    ]
    assert owner_of(ledger, receipt_id) == ledger.address("bank")
    assert receipt_of(ledger, receipt_id)[R_STATE] == ReceiptState.ACTIVE
    closed = pledge_of(ledger, pledge_id)
    assert closed[P_STATE] == PledgeState.ENFORCED
    # the closed pledge records what was owed at enforcement, as the event says
    assert (closed[P_PRINCIPAL], closed[P_INTEREST_DUE]) == (
        event["principalOutstanding"],
        event["interestOutstanding"],
    )
    assert (ledger.balance("steel"), ledger.balance("bank")) == cash  # no cash moves on enforcement
    # The financier now holds an ordinary receipt: it may redeem it.
    ledger.send(w.functions.requestRedemption(receipt_id), "bank")
    ledger.send(w.functions.confirmRedemption(receipt_id), "warehouse")


def test_enforce_reverts_until_after_the_due_date(ledger: Sandbox) -> None:
    _, pledge_id = pledged_receipt(ledger, due_in=30 * DAY)
    due = pledge_of(ledger, pledge_id)[P_DUE_DATE]
    fn = receipts(ledger).functions.enforcePledge(pledge_id)
    assert_reverts(ledger, fn, "bank", "PledgeNotDue", dueDate=due)
    ledger.travel_to(due - 1)  # the transaction runs at the due date itself
    assert_reverts(ledger, fn, "bank", "PledgeNotDue", dueDate=due, timestamp=due)


def test_enforce_reverts_while_the_borrower_is_frozen(ledger: Sandbox) -> None:
    _, pledge_id = pledged_receipt(ledger, due_in=30 * DAY)
    ledger.travel_to(pledge_of(ledger, pledge_id)[P_DUE_DATE] + 1)
    ledger.send(ledger.contracts["registry"].functions.freeze(ledger.address("steel"), REASON), "regulator")
    assert_reverts(
        ledger,
        receipts(ledger).functions.enforcePledge(pledge_id),
        "bank",
        "RegistryParticipantFrozen",
        account=ledger.address("steel").lower(),
    )


# --- locks: a receipt with an open pledge or redemption does not move -------------------------------


@pytest.fixture(params=["requested", "pledged", "redemption"])
def locked_receipt(request: pytest.FixtureRequest, ledger: Sandbox) -> tuple[int, int]:
    """A receipt of the steel trader locked by an open request, an active pledge or a redemption request."""
    receipt_id = issue_receipt(ledger)
    if request.param == "redemption":
        ledger.send(receipts(ledger).functions.requestRedemption(receipt_id), "steel")
    else:
        pledge_id = request_pledge(ledger, receipt_id)
        if request.param == "pledged":
            fund_pledge(ledger, pledge_id)
    return receipt_id, receipt_of(ledger, receipt_id)[R_STATE]


def test_locked_receipt_cannot_be_transferred_by_its_owner(ledger: Sandbox, locked_receipt: tuple[int, int]) -> None:
    receipt_id, state = locked_receipt
    for fn in (
        transfer_fn(ledger, receipt_id, "trader"),
        safe_transfer_fn(ledger, receipt_id, "trader"),
        safe_transfer_fn(ledger, receipt_id, "trader", data=b"memo"),
    ):
        assert_reverts(ledger, fn, "steel", "ReceiptLocked", receiptId=receipt_id, state=state)
    assert owner_of(ledger, receipt_id) == ledger.address("steel")


def test_pledged_receipt_cannot_be_transferred_by_approved_operator(
    ledger: Sandbox, locked_receipt: tuple[int, int]
) -> None:
    """The approve + transferFrom bypass: approving is allowed, moving is not, by any ERC-721 entry point."""
    receipt_id, state = locked_receipt
    w = receipts(ledger)
    ledger.send(w.functions.approve(ledger.address("trader"), receipt_id), "steel")
    ledger.send(w.functions.setApprovalForAll(ledger.address("factor"), True), "steel")
    assert w.functions.getApproved(receipt_id).call() == ledger.address("trader")
    for spender, to in (("trader", "trader"), ("trader", "chemicals"), ("factor", "factor")):
        for fn in (
            transfer_fn(ledger, receipt_id, to),
            safe_transfer_fn(ledger, receipt_id, to),
            safe_transfer_fn(ledger, receipt_id, to, data=b"\x01"),
        ):
            assert_reverts(ledger, fn, spender, "ReceiptLocked", state=state)
    assert owner_of(ledger, receipt_id) == ledger.address("steel")
    assert w.functions.balanceOf(ledger.address("steel")).call() == 1


def test_locked_receipt_cannot_be_redeemed_or_pledged_again(ledger: Sandbox, locked_receipt: tuple[int, int]) -> None:
    receipt_id, state = locked_receipt
    w = receipts(ledger)
    if state == ReceiptState.REDEMPTION_REQUESTED:
        assert_reverts(ledger, w.functions.requestRedemption(receipt_id), "steel", "ReceiptInvalidTransition")
        assert_reverts(ledger, request_fn(ledger, receipt_id), "steel", "ReceiptInvalidTransition")
    else:
        assert_reverts(
            ledger,
            w.functions.requestRedemption(receipt_id),
            "steel",
            "ReceiptInvalidTransition",
            **{"from": state, "to": ReceiptState.REDEMPTION_REQUESTED},
        )
        assert_reverts(ledger, w.functions.confirmRedemption(receipt_id), "warehouse", "ReceiptInvalidTransition")
        assert_reverts(ledger, request_fn(ledger, receipt_id, financier="factor"), "steel", "ReceiptAlreadyPledged")


# --- transfers ---------------------------------------------------------------------------------------


def test_active_receipt_moves_between_active_participants_by_owner_or_approved(ledger: Sandbox) -> None:
    receipt_id = issue_receipt(ledger)
    w = receipts(ledger)
    tx = ledger.send(transfer_fn(ledger, receipt_id, "trader"), "steel")
    assert ledger.events(tx, "receipts", "Transfer")[0]["to"] == ledger.address("trader")
    ledger.send(w.functions.approve(ledger.address("chemicals"), receipt_id), "trader")
    ledger.send(safe_transfer_fn(ledger, receipt_id, "seatmaker", owner="trader"), "chemicals")
    assert owner_of(ledger, receipt_id) == ledger.address("seatmaker")
    assert w.functions.getApproved(receipt_id).call() == ZERO_ADDRESS  # approval lapses on a move


@pytest.mark.parametrize(
    ("setup", "error"),
    [
        ("outsider", "RegistryNotRegistered"),
        ("suspend", "RegistryParticipantNotActive"),
        ("freeze", "RegistryParticipantFrozen"),
    ],
)
def test_transfer_reverts_to_a_participant_who_is_not_active(ledger: Sandbox, setup: str, error: str) -> None:
    receipt_id = issue_receipt(ledger)
    registry = ledger.contracts["registry"]
    to = "outsider" if setup == "outsider" else "trader"
    if setup == "suspend":
        ledger.send(registry.functions.suspend(ledger.address(to)), "operator")
    elif setup == "freeze":
        ledger.send(registry.functions.freeze(ledger.address(to), REASON), "regulator")
    assert_reverts(ledger, transfer_fn(ledger, receipt_id, to), "steel", error, account=ledger.address(to).lower())


def test_transfer_reverts_from_a_frozen_owner(ledger: Sandbox) -> None:
    receipt_id = issue_receipt(ledger)
    w = receipts(ledger)
    ledger.send(w.functions.setApprovalForAll(ledger.address("trader"), True), "steel")
    ledger.send(ledger.contracts["registry"].functions.freeze(ledger.address("steel"), REASON), "regulator")
    assert_reverts(ledger, transfer_fn(ledger, receipt_id, "trader"), "trader", "RegistryParticipantFrozen")
    assert_reverts(
        ledger,
        w.functions.approve(ledger.address("chemicals"), receipt_id),
        "steel",
        "RegistryParticipantFrozen",
    )


def test_approved_operator_must_itself_be_active(ledger: Sandbox) -> None:
    receipt_id = issue_receipt(ledger)
    w = receipts(ledger)
    ledger.send(w.functions.approve(ledger.address("trader"), receipt_id), "steel")
    ledger.send(ledger.contracts["registry"].functions.suspend(ledger.address("trader")), "operator")
    assert_reverts(
        ledger,
        transfer_fn(ledger, receipt_id, "chemicals"),
        "trader",
        "RegistryParticipantNotActive",
        account=ledger.address("trader").lower(),
    )


def test_stranger_without_approval_cannot_transfer(ledger: Sandbox) -> None:
    receipt_id = issue_receipt(ledger)
    assert_reverts(ledger, transfer_fn(ledger, receipt_id, "trader"), "trader", "ERC721InsufficientApproval")


# --- ERC-721 semantics of the contract's own ERC-721 core ------------------------------------------------

#: Init code of two minimal contracts, hand-assembled: whatever they are called with, they return one 32-byte
#: word, the ERC-721 receiver's magic value ``onERC721Received.selector`` (the accepting one) or 0xdeadbeef.
ACCEPTING_RECEIVER = "6010600c60003960106000f363150b7a0260e01b60005260206000f3"
WRONG_MAGIC_RECEIVER = "6010600c60003960106000f363deadbeef60e01b60005260206000f3"
#: A contract without onERC721Received: every call to it reverts with no data.
NO_RECEIVER = "6005600c60003960056000f360006000fd"


def receiver_participant(sb: Sandbox, init_code: str, name: str) -> str:
    """Deploy a receiver contract and register it as an active participant (no role) known as ``name``.

    Call inside a test's snapshot: the chain forgets both afterwards (the name stays in ``sb.accounts``, and is
    only ever used by the test that created it)."""
    funder = sb.w3.eth.accounts[0]
    tx_hash = sb.w3.eth.send_transaction({"from": funder, "data": "0x" + init_code, "gas": 200_000})
    address = sb.w3.eth.get_transaction_receipt(tx_hash)["contractAddress"]
    assert address is not None
    sb.send(sb.contracts["registry"].functions.register(address, keccak(text=f"identity of {name}"), []), "operator")
    sb.accounts[name] = address
    return name


def test_erc721_metadata_and_balances(ledger: Sandbox) -> None:
    w = receipts(ledger)
    assert (w.functions.name().call(), w.functions.symbol().call()) == ("SCF Warehouse Receipt", "SCFWR")
    first, second = issue_receipt(ledger), issue_receipt(ledger)
    assert w.functions.tokenURI(first).call().startswith("data:application/json;base64,")  # test_standards.py
    assert w.functions.balanceOf(ledger.address("steel")).call() == 2
    ledger.send(transfer_fn(ledger, first, "trader"), "steel")
    assert [w.functions.balanceOf(ledger.address(who)).call() for who in ("steel", "trader")] == [1, 1]
    ledger.send(w.functions.requestRedemption(second), "steel")
    ledger.send(w.functions.confirmRedemption(second), "warehouse")
    assert [w.functions.balanceOf(ledger.address(who)).call() for who in ("steel", "trader")] == [0, 1]
    assert_reverts(ledger, w.functions.balanceOf(ZERO_ADDRESS), "steel", "ERC721InvalidOwner", owner=ZERO_ADDRESS)


@pytest.mark.parametrize("function", ["ownerOf", "getApproved", "tokenURI"])
def test_unknown_or_burnt_receipt_does_not_exist_for_erc721(ledger: Sandbox, function: str) -> None:
    w = receipts(ledger)
    burnt = issue_receipt(ledger)
    ledger.send(w.functions.requestRedemption(burnt), "steel")
    ledger.send(w.functions.confirmRedemption(burnt), "warehouse")
    for receipt_id in (burnt, receipt_id_of(lot_key()), 0):
        fn = getattr(w.functions, function)(receipt_id)
        assert_reverts(ledger, fn, "steel", "ERC721NonexistentToken", tokenId=receipt_id)
    for fn in (w.functions.approve(ledger.address("trader"), burnt), transfer_fn(ledger, burnt, "trader")):
        assert_reverts(ledger, fn, "steel", "ERC721NonexistentToken", tokenId=burnt)


def test_approve_emits_and_may_be_given_by_the_owner_or_its_operator_only(ledger: Sandbox) -> None:
    w = receipts(ledger)
    receipt_id = issue_receipt(ledger)
    steel, trader, factor = (ledger.address(n) for n in ("steel", "trader", "factor"))
    tx = ledger.send(w.functions.approve(trader, receipt_id), "steel")
    assert ledger.events(tx, "receipts", "Approval") == [{"owner": steel, "approved": trader, "tokenId": receipt_id}]
    assert_reverts(
        ledger, w.functions.approve(factor, receipt_id), "trader", "ERC721InvalidApprover", approver=trader.lower()
    )
    tx = ledger.send(w.functions.setApprovalForAll(factor, True), "steel")
    assert ledger.events(tx, "receipts", "ApprovalForAll") == [{"owner": steel, "operator": factor, "approved": True}]
    assert w.functions.isApprovedForAll(steel, factor).call() is True
    tx = ledger.send(w.functions.approve(ledger.address("chemicals"), receipt_id), "factor")  # the operator
    assert ledger.events(tx, "receipts", "Approval")[0]["owner"] == steel
    assert w.functions.getApproved(receipt_id).call() == ledger.address("chemicals")
    ledger.send(w.functions.approve(ZERO_ADDRESS, receipt_id), "steel")  # clears it
    assert w.functions.getApproved(receipt_id).call() == ZERO_ADDRESS
    assert_reverts(ledger, transfer_fn(ledger, receipt_id, "trader"), "chemicals", "ERC721InsufficientApproval")


def test_operator_moves_every_receipt_of_its_owner_until_revoked(ledger: Sandbox) -> None:
    w = receipts(ledger)
    first, second = issue_receipt(ledger), issue_receipt(ledger)
    steel, factor = ledger.address("steel"), ledger.address("factor")
    assert_reverts(ledger, w.functions.setApprovalForAll(ZERO_ADDRESS, True), "steel", "ERC721InvalidOperator")
    ledger.send(w.functions.setApprovalForAll(factor, True), "steel")
    ledger.send(transfer_fn(ledger, first, "trader"), "factor")
    assert owner_of(ledger, first) == ledger.address("trader")
    ledger.send(w.functions.setApprovalForAll(factor, False), "steel")
    assert w.functions.isApprovedForAll(steel, factor).call() is False
    assert_reverts(ledger, transfer_fn(ledger, second, "trader"), "factor", "ERC721InsufficientApproval")


def test_transfer_checks_the_receiver_and_the_named_owner(ledger: Sandbox) -> None:
    w = receipts(ledger)
    receipt_id = issue_receipt(ledger)
    steel, trader = ledger.address("steel"), ledger.address("trader")
    assert_reverts(
        ledger,
        w.functions.transferFrom(steel, ZERO_ADDRESS, receipt_id),
        "steel",
        "ERC721InvalidReceiver",
        receiver=ZERO_ADDRESS,
    )
    wrong_owner = assert_reverts(
        ledger,
        w.functions.transferFrom(trader, ledger.address("chemicals"), receipt_id),
        "steel",
        "ERC721IncorrectOwner",
        tokenId=receipt_id,
        owner=steel.lower(),
    )
    assert wrong_owner.arguments["sender"] == trader.lower()
    tx = ledger.send(w.functions.transferFrom(steel, steel, receipt_id), "steel")  # to oneself: allowed, as OZ
    assert ledger.events(tx, "receipts", "Transfer") == [{"from": steel, "to": steel, "tokenId": receipt_id}]
    assert w.functions.balanceOf(steel).call() == 1


def test_safe_transfer_to_a_contract_needs_its_acceptance(ledger: Sandbox) -> None:
    receipt_id = issue_receipt(ledger)
    accepting = receiver_participant(ledger, ACCEPTING_RECEIVER, "accepting receiver")
    wrong_magic = receiver_participant(ledger, WRONG_MAGIC_RECEIVER, "wrong-magic receiver")
    # A registered contract participant without onERC721Received. (The ledger's own contracts are refused as
    # recipients before the receiver is asked: tests/contracts/test_standards.py.)
    no_receiver = receiver_participant(ledger, NO_RECEIVER, "contract without a receiver")
    for to in (wrong_magic, no_receiver):
        for data in (None, b"memo"):
            assert_reverts(
                ledger,
                safe_transfer_fn(ledger, receipt_id, to, data=data),
                "steel",
                "ERC721InvalidReceiver",
                receiver=ledger.address(to).lower(),
            )
    assert owner_of(ledger, receipt_id) == ledger.address("steel")
    ledger.send(safe_transfer_fn(ledger, receipt_id, accepting, data=b"memo"), "steel")
    assert owner_of(ledger, receipt_id) == ledger.address(accepting)
    other = issue_receipt(ledger)
    ledger.send(transfer_fn(ledger, other, wrong_magic), "steel")  # a plain transfer does not ask the receiver
    assert owner_of(ledger, other) == ledger.address(wrong_magic)


def test_approval_lapses_when_the_receipt_is_enforced_or_burnt(ledger: Sandbox) -> None:
    w = receipts(ledger)
    receipt_id, pledge_id = pledged_receipt(ledger, due_in=30 * DAY)
    ledger.send(w.functions.approve(ledger.address("trader"), receipt_id), "steel")  # allowed while locked
    ledger.travel_to(pledge_of(ledger, pledge_id)[P_DUE_DATE] + 1)
    tx = ledger.send(w.functions.enforcePledge(pledge_id), "bank")
    assert ledger.events(tx, "receipts", "Approval") == []  # lapses silently, as OZ's ERC-721 does
    assert w.functions.getApproved(receipt_id).call() == ZERO_ADDRESS
    assert_reverts(
        ledger, transfer_fn(ledger, receipt_id, "chemicals", owner="bank"), "trader", "ERC721InsufficientApproval"
    )
    ledger.send(w.functions.approve(ledger.address("factor"), receipt_id), "bank")
    ledger.send(w.functions.requestRedemption(receipt_id), "bank")
    ledger.send(w.functions.confirmRedemption(receipt_id), "warehouse")
    assert_reverts(ledger, w.functions.getApproved(receipt_id), "bank", "ERC721NonexistentToken")


# --- redemption ------------------------------------------------------------------------------------


def test_redemption_confirmed_by_the_warehouse_burns_the_receipt(ledger: Sandbox) -> None:
    receipt_id = issue_receipt(ledger)
    w = receipts(ledger)
    tx = ledger.send(w.functions.requestRedemption(receipt_id), "steel")
    parties = {
        "receiptId": receipt_id,
        "owner": ledger.address("steel"),
        "warehouse": ledger.address("warehouse"),
    }
    assert ledger.events(tx, "receipts", "ReceiptRedemptionRequested") == [parties]
    assert receipt_of(ledger, receipt_id)[R_STATE] == ReceiptState.REDEMPTION_REQUESTED
    tx = ledger.send(w.functions.confirmRedemption(receipt_id), "warehouse")
    assert ledger.events(tx, "receipts", "ReceiptRedeemed") == [parties]
    assert ledger.events(tx, "receipts", "Transfer") == [
        {"from": ledger.address("steel"), "to": ZERO_ADDRESS, "tokenId": receipt_id}
    ]
    assert receipt_of(ledger, receipt_id)[R_STATE] == ReceiptState.REDEEMED
    assert w.functions.balanceOf(ledger.address("steel")).call() == 0
    assert_reverts(ledger, w.functions.ownerOf(receipt_id), "steel", "ERC721NonexistentToken")


def test_owner_may_withdraw_a_redemption_request(ledger: Sandbox) -> None:
    receipt_id = issue_receipt(ledger)
    w = receipts(ledger)
    ledger.send(w.functions.requestRedemption(receipt_id), "steel")
    tx = ledger.send(w.functions.withdrawRedemption(receipt_id), "steel")
    assert len(ledger.events(tx, "receipts", "ReceiptRedemptionWithdrawn")) == 1
    assert receipt_of(ledger, receipt_id)[R_STATE] == ReceiptState.ACTIVE
    assert_reverts(ledger, w.functions.confirmRedemption(receipt_id), "warehouse", "ReceiptInvalidTransition")
    assert_reverts(ledger, w.functions.withdrawRedemption(receipt_id), "steel", "ReceiptInvalidTransition")


def test_confirm_redemption_reverts_when_the_owner_was_frozen(ledger: Sandbox) -> None:
    receipt_id = issue_receipt(ledger)
    w = receipts(ledger)
    ledger.send(w.functions.requestRedemption(receipt_id), "steel")
    ledger.send(ledger.contracts["registry"].functions.freeze(ledger.address("steel"), REASON), "regulator")
    assert_reverts(ledger, w.functions.confirmRedemption(receipt_id), "warehouse", "RegistryParticipantFrozen")


@pytest.mark.parametrize(
    "call",
    [
        lambda w, rid: w.functions.revalueReceipt(rid, 1, ATTESTATION),
        lambda w, rid: w.functions.updateGoodsStatus(rid, GoodsStatus.SOUND, ATTESTATION),
        lambda w, rid: w.functions.freezeReceipt(rid, REASON),
        lambda w, rid: w.functions.requestRedemption(rid),
        lambda w, rid: w.functions.appointReceiptOracle(rid, ZERO_ADDRESS),
    ],
    ids=["revalue", "goods status", "freeze", "redeem", "oracle"],
)
def test_redeemed_or_unknown_receipt_is_not_found(ledger: Sandbox, call: Callable[[Any, int], Any]) -> None:
    receipt_id = issue_receipt(ledger)
    w = receipts(ledger)
    ledger.send(w.functions.requestRedemption(receipt_id), "steel")
    ledger.send(w.functions.confirmRedemption(receipt_id), "warehouse")
    for rid in (receipt_id, 999):
        fn = call(w, rid)
        who = {"freezeReceipt": "regulator", "requestRedemption": "steel"}.get(fn.fn_name, "warehouse")
        assert_reverts(ledger, fn, who, "ReceiptNotFound", receiptId=rid)


@pytest.mark.parametrize("function", ["cancelPledge", "declinePledge", "fundPledge", "enforcePledge", "repayPledge"])
def test_unknown_pledge_is_not_found(ledger: Sandbox, function: str) -> None:
    w = receipts(ledger)
    fn = w.functions.repayPledge(42, 1) if function == "repayPledge" else getattr(w.functions, function)(42)
    assert_reverts(ledger, fn, "bank", "PledgeNotFound", pledgeId=42)


# --- regulator freeze ------------------------------------------------------------------------------


def test_freeze_and_unfreeze_by_the_regulator(ledger: Sandbox) -> None:
    receipt_id = issue_receipt(ledger)
    w = receipts(ledger)
    tx = ledger.send(w.functions.freezeReceipt(receipt_id, REASON), "regulator")
    assert ledger.events(tx, "receipts", "ReceiptFrozen") == [
        {"receiptId": receipt_id, "regulator": ledger.address("regulator"), "reason": REASON}
    ]
    assert receipt_of(ledger, receipt_id)[R_FROZEN] is True
    assert_reverts(ledger, w.functions.freezeReceipt(receipt_id, REASON), "regulator", "ReceiptIsFrozen")
    tx = ledger.send(w.functions.unfreezeReceipt(receipt_id), "regulator")
    assert ledger.events(tx, "receipts", "ReceiptUnfrozen") == [
        {"receiptId": receipt_id, "regulator": ledger.address("regulator")}
    ]
    assert_reverts(ledger, w.functions.unfreezeReceipt(receipt_id), "regulator", "ReceiptNotFrozen")
    ledger.send(transfer_fn(ledger, receipt_id, "trader"), "steel")


def _frozen_action(ledger: Sandbox, action: str) -> tuple[Any, str]:
    """Set up ``action`` on a receipt, freeze the receipt, and return the blocked call and its sender."""
    w = receipts(ledger)
    if action in ("transfer", "approved transfer", "pledge", "redeem"):
        receipt_id = issue_receipt(ledger)
        ledger.send(w.functions.freezeReceipt(receipt_id, REASON), "regulator")
        if action == "transfer":
            return transfer_fn(ledger, receipt_id, "trader"), "steel"
        if action == "approved transfer":
            ledger.send(w.functions.approve(ledger.address("trader"), receipt_id), "steel")
            return transfer_fn(ledger, receipt_id, "trader"), "trader"
        if action == "pledge":
            return request_fn(ledger, receipt_id), "steel"
        return w.functions.requestRedemption(receipt_id), "steel"
    receipt_id = issue_receipt(ledger)
    if action == "confirm redemption":
        ledger.send(w.functions.requestRedemption(receipt_id), "steel")
        ledger.send(w.functions.freezeReceipt(receipt_id, REASON), "regulator")
        return w.functions.confirmRedemption(receipt_id), "warehouse"
    pledge_id = request_pledge(ledger, receipt_id, due_in=30 * DAY)
    if action == "fund":
        ledger.send(w.functions.freezeReceipt(receipt_id, REASON), "regulator")
        return w.functions.fundPledge(pledge_id), "bank"
    fund_pledge(ledger, pledge_id)
    ledger.send(w.functions.freezeReceipt(receipt_id, REASON), "regulator")
    ledger.travel_to(pledge_of(ledger, pledge_id)[P_DUE_DATE] + 1)
    return w.functions.enforcePledge(pledge_id), "bank"


@pytest.mark.parametrize(
    "action", ["transfer", "approved transfer", "pledge", "fund", "redeem", "confirm redemption", "enforce"]
)
def test_frozen_receipt_cannot_move_be_pledged_funded_redeemed_or_enforced(ledger: Sandbox, action: str) -> None:
    fn, sender = _frozen_action(ledger, action)
    assert_reverts(ledger, fn, sender, "ReceiptIsFrozen")


def test_unlocking_stays_possible_on_a_frozen_receipt(ledger: Sandbox) -> None:
    w = receipts(ledger)
    receipt_id = issue_receipt(ledger)
    first = request_pledge(ledger, receipt_id)
    ledger.send(w.functions.freezeReceipt(receipt_id, REASON), "regulator")
    ledger.send(w.functions.cancelPledge(first), "steel")
    ledger.send(w.functions.unfreezeReceipt(receipt_id), "regulator")
    second = request_pledge(ledger, receipt_id)
    ledger.send(w.functions.freezeReceipt(receipt_id, REASON), "regulator")
    ledger.send(w.functions.declinePledge(second), "bank")
    assert receipt_of(ledger, receipt_id)[R_STATE] == ReceiptState.ACTIVE
    assert w.functions.pledgeOf(receipt_id).call() == second


# --- parameters ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "args", "error"),
    [
        ("setDefaultAdvanceRate", (0,), "PledgeInvalidAdvanceRate"),
        ("setDefaultAdvanceRate", (10_001,), "PledgeInvalidAdvanceRate"),
        ("setFinancierAdvanceRate", ("bank", 10_001), "PledgeInvalidAdvanceRate"),
        ("setFinancierAdvanceRate", ("trader", 5_000), "RegistryMissingRole"),
        ("setMaintenanceRatio", (0,), "PledgeInvalidMaintenanceRatio"),
        ("setMaintenanceRatio", (10_001,), "PledgeInvalidMaintenanceRatio"),
    ],
)
def test_parameter_setters_reject_out_of_range_values(
    ledger: Sandbox, function: str, args: tuple[Any, ...], error: str
) -> None:
    resolved = tuple(ledger.address(a) if isinstance(a, str) else a for a in args)
    assert_reverts(ledger, getattr(receipts(ledger).functions, function)(*resolved), "operator", error)


def test_maintenance_ratio_defaults_to_8000_and_is_set_by_the_operator(ledger: Sandbox) -> None:
    w = receipts(ledger)
    assert w.functions.maintenanceRatioBps().call() == 8_000
    tx = ledger.send(w.functions.setMaintenanceRatio(10_000), "operator")
    assert ledger.events(tx, "receipts", "MaintenanceRatioSet") == [
        {"maintenanceRatioBps": 10_000, "operator": ledger.address("operator")}
    ]
    assert w.functions.maintenanceRatioBps().call() == 10_000


# --- authorisation matrix ----------------------------------------------------------------------------

CALLERS = (
    "operator",
    "automaker",
    "trader",
    "steel",
    "bank",
    "factor",
    "warehouse",
    "warehouse2",
    "regulator",
    "agent",
    "outsider",
)


@dataclass(frozen=True)
class Scene:
    """One chain state serving every case of the matrix (reverted to after each case).

    ``active``: an unlocked receipt of the steel trader; ``redeeming``: one with a redemption requested;
    ``requested``/``open_pledge``: one with a pledge request to the bank (due in ~270 days); ``pledged``/
    ``due_pledge``: one pledged to the bank whose due date has passed; ``frozen``: a frozen receipt.
    """

    active: int
    redeeming: int
    requested: int
    open_pledge: int
    pledged: int
    due_pledge: int
    frozen: int


#: function → (who may call it, the error everyone else gets, how to build the call)
MATRIX: dict[str, tuple[frozenset[str], str, Callable[[Sandbox, Scene], Any]]] = {
    "issueReceipt": (
        frozenset({"warehouse", "warehouse2"}),
        "RegistryMissingRole",
        lambda sb, s: issue_fn(sb),
    ),
    "revalueReceipt": (
        frozenset({"warehouse"}),
        "ReceiptNotAttester",
        lambda sb, s: receipts(sb).functions.revalueReceipt(s.active, VALUATION, ATTESTATION),
    ),
    "anchorReadings": (
        frozenset({"warehouse"}),
        "ReceiptNotAttester",
        lambda sb, s: receipts(sb).functions.anchorReadings(s.active, ATTESTATION, sb.now(), 3, QUANTITY, 100),
    ),
    "updateGoodsStatus": (
        frozenset({"warehouse"}),
        "ReceiptNotAttester",
        lambda sb, s: receipts(sb).functions.updateGoodsStatus(s.active, GoodsStatus.DISPUTED, ATTESTATION),
    ),
    "appointOracle": (
        frozenset({"warehouse", "warehouse2"}),
        "RegistryMissingRole",
        lambda sb, s: receipts(sb).functions.appointOracle(sb.address("agent")),
    ),
    "appointReceiptOracle": (
        frozenset({"warehouse"}),
        "ReceiptNotIssuer",
        lambda sb, s: receipts(sb).functions.appointReceiptOracle(s.active, sb.address("agent")),
    ),
    "requestRedemption": (
        frozenset({"steel"}),
        "ReceiptNotOwner",
        lambda sb, s: receipts(sb).functions.requestRedemption(s.active),
    ),
    "withdrawRedemption": (
        frozenset({"steel"}),
        "ReceiptNotOwner",
        lambda sb, s: receipts(sb).functions.withdrawRedemption(s.redeeming),
    ),
    "confirmRedemption": (
        frozenset({"warehouse"}),
        "ReceiptNotIssuer",
        lambda sb, s: receipts(sb).functions.confirmRedemption(s.redeeming),
    ),
    "freezeReceipt": (
        frozenset({"regulator"}),
        "RegistryMissingRole",
        lambda sb, s: receipts(sb).functions.freezeReceipt(s.active, REASON),
    ),
    "unfreezeReceipt": (
        frozenset({"regulator"}),
        "RegistryMissingRole",
        lambda sb, s: receipts(sb).functions.unfreezeReceipt(s.frozen),
    ),
    "requestPledge": (frozenset({"steel"}), "ReceiptNotOwner", lambda sb, s: request_fn(sb, s.active)),
    "cancelPledge": (
        frozenset({"steel"}),
        "PledgeNotBorrower",
        lambda sb, s: receipts(sb).functions.cancelPledge(s.open_pledge),
    ),
    "declinePledge": (
        frozenset({"bank"}),
        "PledgeNotFinancier",
        lambda sb, s: receipts(sb).functions.declinePledge(s.open_pledge),
    ),
    "fundPledge": (
        frozenset({"bank"}),
        "PledgeNotFinancier",
        lambda sb, s: receipts(sb).functions.fundPledge(s.open_pledge),
    ),
    "repayPledge": (
        frozenset({"steel"}),
        "PledgeNotBorrower",
        lambda sb, s: receipts(sb).functions.repayPledge(s.due_pledge, 1_000),
    ),
    "enforcePledge": (
        frozenset({"bank"}),
        "PledgeNotFinancier",
        lambda sb, s: receipts(sb).functions.enforcePledge(s.due_pledge),
    ),
    "setDefaultAdvanceRate": (
        frozenset({"operator"}),
        "RegistryMissingRole",
        lambda sb, s: receipts(sb).functions.setDefaultAdvanceRate(6_000),
    ),
    "setFinancierAdvanceRate": (
        frozenset({"operator"}),
        "RegistryMissingRole",
        lambda sb, s: receipts(sb).functions.setFinancierAdvanceRate(sb.address("bank"), 6_000),
    ),
    "setMaintenanceRatio": (
        frozenset({"operator"}),
        "RegistryMissingRole",
        lambda sb, s: receipts(sb).functions.setMaintenanceRatio(8_500),
    ),
    "transferFrom": (
        frozenset({"steel"}),
        "ERC721InsufficientApproval",
        lambda sb, s: transfer_fn(sb, s.active, "trader"),
    ),
}

#: (function, caller) → the error that caller gets instead of the function's usual one.
MATRIX_EXCEPTIONS = {
    # A spender's own standing is checked before its approval, so an unregistered stranger fails on that.
    ("transferFrom", "outsider"): "RegistryNotRegistered",
}


@pytest.fixture(scope="class")
def scene(sandbox: Sandbox) -> Iterator[Scene]:
    """The matrix's chain state, built once for the class and thrown away after it."""
    sb = sandbox
    snapshot = sb.snapshot()
    w = receipts(sb)
    active, redeeming, requested, pledged, frozen = (issue_receipt(sb) for _ in range(5))
    sb.send(w.functions.requestRedemption(redeeming), "steel")
    open_pledge = request_pledge(sb, requested, due_in=300 * DAY)
    due_pledge = request_pledge(sb, pledged, due_in=30 * DAY)
    fund_pledge(sb, due_pledge)
    sb.send(w.functions.freezeReceipt(frozen, REASON), "regulator")
    sb.travel_to(pledge_of(sb, due_pledge)[P_DUE_DATE] + 1)
    yield Scene(active, redeeming, requested, open_pledge, pledged, due_pledge, frozen)
    sb.revert(snapshot)


class TestAuthorisation:
    """Only the named party may call each state-changing function; every other role, and a stranger, fails."""

    @pytest.mark.parametrize("caller", CALLERS)
    @pytest.mark.parametrize("function", sorted(MATRIX))
    def test_only_the_named_party_may_call(self, scene: Scene, ledger: Sandbox, function: str, caller: str) -> None:
        allowed, error, build = MATRIX[function]
        fn = build(ledger, scene)
        if caller in allowed:
            assert ledger.send_raw(fn, caller)["status"] == 1, f"{caller} should be allowed to call {function}"
        else:
            assert_reverts(ledger, fn, caller, MATRIX_EXCEPTIONS.get((function, caller), error))


def test_interest_never_counts_backwards_when_the_node_clock_goes_back(anvil_sandbox: Sandbox) -> None:
    """Invariant 11: whatever a node's clock does, no read or repayment fails on time arithmetic. eth-tester cannot
    stamp a block before its parent; anvil can (``evm_setTime``), as it did after a cold restart that lost its time
    offset: reading what is owed and repaying must still work, and the interval that runs backwards accrues
    nothing, and is never charged twice."""
    sb = anvil_sandbox
    snapshot = sb.tester.take_snapshot()
    try:
        _, pledge_id = pledged_receipt(sb)
        w = receipts(sb)
        funded_at = pledge_of(sb, pledge_id)[P_ACCRUED_FROM]
        sb.tester._rpc("evm_setTime", [funded_at - 30 * DAY])  # type: ignore[attr-defined]
        sb.tester._rpc("evm_mine", [])  # type: ignore[attr-defined]
        assert sb.now() < funded_at
        assert tuple(w.functions.amountOwed(pledge_id).call()) == (PRINCIPAL, 0)
        tx = sb.send(w.functions.repayPledge(pledge_id, 1_000), "steel")
        (event,) = sb.events(tx, "receipts", "PledgeRepaid")
        assert (event["interestPaid"], event["principalPaid"]) == (0, 1_000)
        assert pledge_of(sb, pledge_id)[P_ACCRUED_FROM] == funded_at  # not moved back: nothing is charged twice
    finally:
        sb.tester.revert_to_snapshot(snapshot)
        latest = int(sb.w3.eth.get_block("latest")["timestamp"])
        sb.tester._rpc("evm_setTime", [max(latest + 1, int(time.time()))])  # type: ignore[attr-defined]
