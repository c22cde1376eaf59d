"""The token standards read as written (issue 21): ERC-3525 value allowances announced on every change, the
end of each one included; ERC-721 metadata a wallet can show; and no asset delivered to one of the ledger's
own contracts, where it would be stuck.

- The deposit token, receivables and warehouse-receipt contracts are active participants (the receivables
  contract holds repayments in escrow), yet no piece or receipt may be sent or issued to one: the registry
  refuses with ``RegistryRecipientIsLedgerContract`` (the deposit token's own tests cover cash).
- EIP-3525: ``ApprovalValue`` "MUST emit when the approval value of a token is set or changed". A whole piece
  changing hands or burnt ends its value allowances: each operator whose allowance was not zero gets
  ``ApprovalValue(piece, operator, 0)``, so allowances folded from the events equal ``allowance()``.
- EIP-721 metadata (``0x5b5e139f``, which both contracts claim): ``tokenURI`` is a ``data:`` URI of the
  token's public facts as metadata JSON.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from eth_utils import keccak, to_checksum_address

from ledger.tooling.sandbox import Sandbox
from tests.contracts.support import ACCEPT_ANY, DAY, NO_REVIEW, assert_reverts, confirmed_piece, split
from tests.contracts.warehouse_fixtures import (
    R_EXPIRY,
    R_VALUATION,
    R_VALUED_AT,
    R_WAREHOUSE,
    issue_fn,
    issue_receipt,
    lot_key,
    owner_of,
    receipt_of,
)

MAX_UINT256 = 2**256 - 1
MAX_VALUE_APPROVALS = 8
DATA_URI = "data:application/json;base64,"
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


# ---------------------------------------------------------------------------------------------------------
# ERC-3525: every change of a value allowance is announced
# ---------------------------------------------------------------------------------------------------------


def approve_value(sb: Sandbox, piece_id: int, operator: str, value: int) -> Any:
    fn = receivables(sb).get_function_by_signature("approve(uint256,address,uint256)")
    return fn(piece_id, operator, value)


def allowance(sb: Sandbox, piece_id: int, operator: str) -> int:
    fn = receivables(sb).get_function_by_signature("allowance(uint256,address)")
    return int(fn(piece_id, operator).call())


def split_fn(sb: Sandbox, piece_id: int, to: str, value: int) -> Any:
    fn = receivables(sb).get_function_by_signature("transferFrom(uint256,address,uint256)")
    return fn(piece_id, sb.address(to), value)


def whole_transfer(sb: Sandbox, holder: str, to: str, piece_id: int) -> Any:
    fn = receivables(sb).get_function_by_signature("transferFrom(address,address,uint256)")
    return fn(sb.address(holder), sb.address(to), piece_id)


def logged(sb: Sandbox, receipt: Any, contract: str) -> list[tuple[str, dict[str, Any]]]:
    """Every event ``contract`` emitted in ``receipt``, in log order, as (name, arguments)."""
    target = sb.contracts[contract]
    names = {
        "0x" + keccak(text=f"{e['name']}({','.join(i['type'] for i in e['inputs'])})").hex(): e["name"]
        for e in target.abi
        if e["type"] == "event"
    }
    found = []
    for log in receipt["logs"]:
        if log["address"] != target.address:
            continue
        name = names["0x" + bytes(log["topics"][0]).hex()]
        found.append((name, dict(getattr(target.events, name)().process_log(log)["args"])))
    return found


@pytest.mark.parametrize("how", ["holder", "approved address", "operator", "safe transfer", "funding"])
def test_a_whole_piece_changing_hands_ends_each_value_allowance_with_an_event(ledger: Sandbox, how: str) -> None:
    """The issue's case: ``allowance(piece, operator)`` 8,000 → 0 when the whole piece moves, now announced as
    ``ApprovalValue(piece, operator, 0)`` before the ``Transfer``, for every operator whose allowance was not
    already zero (one used up was announced when it was spent)."""
    sb = ledger
    r = receivables(sb)
    _, piece_id = confirmed_piece(sb, amount=50_000)
    bank, factor, trader = sb.address("bank"), sb.address("factor"), sb.address("trader")
    sb.send(approve_value(sb, piece_id, bank, 8_000), "seatmaker")
    sb.send(approve_value(sb, piece_id, factor, MAX_UINT256), "seatmaker")
    sb.send(approve_value(sb, piece_id, trader, 100), "seatmaker")
    spent = sb.send(split_fn(sb, piece_id, "chemicals", 100), "trader")
    assert sb.events(spent, "receivables", "ApprovalValue") == [
        {"_tokenId": piece_id, "_operator": trader, "_value": 0}
    ]
    if how == "holder":
        tx = sb.send(whole_transfer(sb, "seatmaker", "chemicals", piece_id), "seatmaker")
    elif how == "approved address":
        sb.send(r.functions.approve(sb.address("steel"), piece_id), "seatmaker")
        tx = sb.send(whole_transfer(sb, "seatmaker", "chemicals", piece_id), "steel")
    elif how == "operator":
        sb.send(r.functions.setApprovalForAll(sb.address("steel"), True), "seatmaker")
        tx = sb.send(whole_transfer(sb, "seatmaker", "chemicals", piece_id), "steel")
    elif how == "safe transfer":
        safe = r.get_function_by_signature("safeTransferFrom(address,address,uint256)")
        tx = sb.send(safe(sb.address("seatmaker"), sb.address("chemicals"), piece_id), "seatmaker")
    else:
        value = r.functions.piece(piece_id).call()[3]
        requested = sb.send(r.functions.requestFinancing(piece_id, value, sb.address("bank"), *ACCEPT_ANY), "seatmaker")
        request_id = sb.events(requested, "receivables", "FinancingRequested")[0]["requestId"]
        sb.send(r.functions.approveFinancing(request_id, 500, 0, 365, NO_REVIEW), "bank")
        tx = sb.send(r.functions.fundFinancing(request_id), "bank")
    events = [(name, args) for name, args in logged(sb, tx, "receivables") if name in ("ApprovalValue", "Transfer")]
    ended = {args["_operator"]: args["_value"] for name, args in events if name == "ApprovalValue"}
    assert ended == {bank: 0, factor: 0}
    assert [name for name, _ in events] == ["ApprovalValue", "ApprovalValue", "Transfer"]
    for operator in (bank, factor, trader):
        assert allowance(sb, piece_id, operator) == 0


def test_a_burnt_piece_ends_each_value_allowance_with_an_event(ledger: Sandbox) -> None:
    sb = ledger
    r = receivables(sb)
    slot, piece_id = confirmed_piece(sb, amount=30_000)
    sb.send(approve_value(sb, piece_id, sb.address("bank"), 2_000), "seatmaker")
    sb.send(r.functions.repay(slot, 30_000), "automaker")
    tx = sb.send(r.functions.redeem(piece_id), "seatmaker")
    events = [(name, args) for name, args in logged(sb, tx, "receivables") if name in ("ApprovalValue", "Transfer")]
    assert events == [
        ("ApprovalValue", {"_tokenId": piece_id, "_operator": sb.address("bank"), "_value": 0}),
        ("Transfer", {"from": sb.address("seatmaker"), "to": "0x" + "00" * 20, "tokenId": piece_id}),
    ]


def test_a_split_keeps_the_value_allowances_of_the_piece_it_leaves(ledger: Sandbox) -> None:
    """Only a whole piece changing hands ends its allowances: a split leaves them, and emits nothing about them."""
    sb = ledger
    _, piece_id = confirmed_piece(sb, amount=10_000)
    sb.send(approve_value(sb, piece_id, sb.address("bank"), 4_000), "seatmaker")
    tx = sb.send(split_fn(sb, piece_id, "chemicals", 6_000), "seatmaker")
    assert sb.events(tx, "receivables", "ApprovalValue") == []
    assert allowance(sb, piece_id, sb.address("bank")) == 4_000


def test_value_allowances_folded_from_the_events_equal_the_contracts(ledger: Sandbox) -> None:
    """Approvals, spending, re-approval, revocation, a whole-piece transfer and its way back, a burn: the last
    ``ApprovalValue`` of each (piece, operator) is what ``allowance`` answers, and zero where there is none."""
    sb = ledger
    r = receivables(sb)
    slot, first = confirmed_piece(sb, amount=100_000)
    second = split(sb, first, "chemicals", 40_000, "seatmaker")
    operators = [sb.address(n) for n in ("bank", "factor", "trader", "steel")]
    txs = [
        sb.send(approve_value(sb, first, operators[0], 8_000), "seatmaker"),
        sb.send(approve_value(sb, first, operators[1], MAX_UINT256), "seatmaker"),
        sb.send(approve_value(sb, second, operators[2], 3_000), "chemicals"),
        sb.send(split_fn(sb, first, "trader", 5_000), "bank"),
        sb.send(split_fn(sb, second, "steel", 1_000), "trader"),
        sb.send(approve_value(sb, first, operators[0], 0), "seatmaker"),
        sb.send(approve_value(sb, first, operators[2], 700), "seatmaker"),
        sb.send(whole_transfer(sb, "seatmaker", "chemicals", first), "seatmaker"),
        sb.send(whole_transfer(sb, "chemicals", "seatmaker", first), "chemicals"),
        sb.send(approve_value(sb, first, operators[3], 900), "seatmaker"),
        sb.send(approve_value(sb, second, operators[0], 50), "chemicals"),
        sb.send(r.functions.repay(slot, 100_000), "automaker"),
        sb.send(r.functions.redeem(second), "chemicals"),
    ]
    folded: dict[tuple[int, str], int] = {}
    for tx in txs:
        for event in sb.events(tx, "receivables", "ApprovalValue"):
            folded[(event["_tokenId"], event["_operator"])] = event["_value"]
    for operator in operators:
        assert allowance(sb, first, operator) == folded.get((first, operator), 0), operator
    assert {key: value for key, value in folded.items() if value} == {(first, operators[3]): 900}
    assert all(value == 0 for (piece, _), value in folded.items() if piece == second)


def test_an_unlimited_value_allowance_is_kept_as_given_and_never_used_up(ledger: Sandbox) -> None:
    sb = ledger
    _, piece_id = confirmed_piece(sb, amount=10_000)
    bank = sb.address("bank")
    tx = sb.send(approve_value(sb, piece_id, bank, MAX_UINT256), "seatmaker")
    assert sb.events(tx, "receivables", "ApprovalValue")[0]["_value"] == MAX_UINT256
    spent = sb.send(split_fn(sb, piece_id, "chemicals", 9_000), "bank")
    assert sb.events(spent, "receivables", "ApprovalValue") == []
    assert allowance(sb, piece_id, bank) == MAX_UINT256


@pytest.mark.parametrize("value", [2**96 - 1, 2**96, MAX_UINT256 - 1])
def test_a_value_allowance_beyond_any_piece_value_other_than_unlimited_is_refused(ledger: Sandbox, value: int) -> None:
    """Allowances are kept beside their operator in 96 bits: one above the largest possible value of a piece
    (2^96 − 2) means nothing but "unlimited", which is said with 2^256 − 1; the others are refused by name."""
    sb = ledger
    _, piece_id = confirmed_piece(sb)
    fn = approve_value(sb, piece_id, sb.address("bank"), value)
    assert_reverts(sb, fn, "seatmaker", "ReceivablesAmountTooLarge", amount=value)
    sb.send(approve_value(sb, piece_id, sb.address("bank"), 2**96 - 2), "seatmaker")
    assert allowance(sb, piece_id, sb.address("bank")) == 2**96 - 2


def test_at_most_eight_operators_hold_a_value_allowance_on_a_piece_at_once(ledger: Sandbox) -> None:
    """The list of a piece's allowances is bounded (a transfer announces the end of each one): a ninth operator
    is refused by name until an allowance is revoked or used up; re-approving a listed operator needs no room."""
    sb = ledger
    _, piece_id = confirmed_piece(sb, amount=10_000)
    operators = [to_checksum_address(keccak(text=f"operator {i}")[-20:]) for i in range(MAX_VALUE_APPROVALS + 1)]
    for operator in operators[:MAX_VALUE_APPROVALS]:
        sb.send(approve_value(sb, piece_id, operator, 10), "seatmaker")
    ninth = approve_value(sb, piece_id, operators[-1], 10)
    assert_reverts(
        sb, ninth, "seatmaker", "ReceivablesTooManyValueApprovals", pieceId=piece_id, limit=MAX_VALUE_APPROVALS
    )
    sb.send(approve_value(sb, piece_id, operators[0], 20), "seatmaker")  # already listed
    assert_reverts(sb, ninth, "seatmaker", "ReceivablesTooManyValueApprovals")
    sb.send(approve_value(sb, piece_id, operators[3], 0), "seatmaker")  # revoked: its entry is free
    sb.send(ninth, "seatmaker")
    assert [allowance(sb, piece_id, o) for o in operators] == [20, 10, 10, 0, 10, 10, 10, 10, 10]
    assert_reverts(sb, approve_value(sb, piece_id, operators[3], 1), "seatmaker", "ReceivablesTooManyValueApprovals")
    # An allowance used up frees its entry too.
    sb.send(approve_value(sb, piece_id, operators[1], 0), "seatmaker")
    sb.send(approve_value(sb, piece_id, sb.address("bank"), 5), "seatmaker")
    sb.send(split_fn(sb, piece_id, "chemicals", 5), "bank")
    sb.send(approve_value(sb, piece_id, operators[3], 1), "seatmaker")
    assert allowance(sb, piece_id, operators[3]) == 1
    # After a whole-piece transfer the new holder starts with an empty list.
    sb.send(whole_transfer(sb, "seatmaker", "chemicals", piece_id), "seatmaker")
    assert [allowance(sb, piece_id, o) for o in operators] == [0] * (MAX_VALUE_APPROVALS + 1)
    for operator in operators[:MAX_VALUE_APPROVALS]:
        sb.send(approve_value(sb, piece_id, operator, 1), "chemicals")
    assert_reverts(sb, ninth, "chemicals", "ReceivablesTooManyValueApprovals")


# ---------------------------------------------------------------------------------------------------------
# ERC-721 metadata: a data URI of the token's public facts
# ---------------------------------------------------------------------------------------------------------


def metadata(uri: str) -> dict[str, Any]:
    """The metadata document of a ``data:application/json;base64,`` URI: strict base64, UTF-8 and JSON (a
    repeated key fails)."""
    assert uri.startswith(DATA_URI), uri[:60]
    document = base64.b64decode(uri[len(DATA_URI) :], validate=True).decode("utf-8")

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _ in pairs]
        assert len(keys) == len(set(keys)), f"repeated key in {keys}"
        return dict(pairs)

    parsed = json.loads(document, object_pairs_hook=unique)
    assert isinstance(parsed, dict)
    return parsed


def test_a_pieces_token_uri_is_metadata_json_of_its_public_facts(ledger: Sandbox) -> None:
    sb = ledger
    r = receivables(sb)
    slot, first = confirmed_piece(sb, amount=1_234_567, due_in=60 * DAY)
    child = split(sb, first, "chemicals", 34_567, "seatmaker")
    due_date = r.functions.invoice(slot).call()[1]
    for piece_id, value, parent in ((first, 1_200_000, 0), (child, 34_567, first)):
        document = metadata(r.functions.tokenURI(piece_id).call())
        assert document == {
            "name": f"SCF Receivable {piece_id}",
            "description": "A piece of a confirmed invoice: a claim on its payer, paid at maturity.",
            "slot": slot,
            "balance": value,
            "properties": {
                "invoiceId": slot,
                "payer": sb.address("automaker"),
                "currency": "CNY",
                "valueDecimals": 2,
                "dueDate": due_date,
                "parentId": parent,
            },
        }
        assert document["balance"] == r.functions.balanceOf(piece_id).call()
    assert r.functions.supportsInterface(bytes.fromhex("5b5e139f")).call()


def test_the_token_uri_of_a_burnt_or_unknown_piece_is_refused(ledger: Sandbox) -> None:
    sb = ledger
    r = receivables(sb)
    slot, piece_id = confirmed_piece(sb, amount=1_000)
    sb.send(r.functions.repay(slot, 1_000), "automaker")
    sb.send(r.functions.redeem(piece_id), "seatmaker")
    for unknown in (piece_id, piece_id + 1, 0):
        assert_reverts(sb, r.functions.tokenURI(unknown), "seatmaker", "ReceivablesNonexistentPiece", pieceId=unknown)


def test_a_receipts_token_uri_is_metadata_json_of_its_public_facts(ledger: Sandbox) -> None:
    sb = ledger
    w = sb.contracts["receipts"]
    key = lot_key()
    receipt_id = issue_receipt(sb, key=key, quantity=2_500, unit=b"kg".ljust(8, b"\0"), valuation=987_654_321)
    sb.send(w.functions.revalueReceipt(receipt_id, 876_543_210, b"\x01" * 32), "warehouse")
    facts = receipt_of(sb, receipt_id)
    assert metadata(w.functions.tokenURI(receipt_id).call()) == {
        "name": "SCF Warehouse Receipt, 2500 kg",
        "description": "A warehouse receipt for a lot of goods held by a licensed warehouse.",
        "properties": {
            "lotKeyHash": "0x" + key.hex(),
            "warehouse": facts[R_WAREHOUSE],
            "quantity": 2_500,
            "unit": "kg",
            "valuation": facts[R_VALUATION],
            "currency": "CNY",
            "valueDecimals": 2,
            "valuedAt": facts[R_VALUED_AT],
            "expiry": facts[R_EXPIRY],
        },
    }
    assert facts[R_VALUATION] == 876_543_210
    assert w.functions.supportsInterface(bytes.fromhex("5b5e139f")).call()


@pytest.mark.parametrize(
    "unit",
    [
        b'"};x\x00\x00\x00\x00',
        b"a\\b\x00\x00\x00\x00\x00",
        b"t\x01\x00\x00\x00\x00\x00\x00",
        b"\xe5\x90\xa8" + b"\0" * 5,
    ],
)
def test_a_unit_that_is_not_plain_text_is_shown_in_hex_and_the_document_stays_valid(
    ledger: Sandbox, unit: bytes
) -> None:
    """The contract accepts any non-zero 8 bytes as a unit (the service only printable ASCII): a quote, a
    backslash, a control or non-ASCII byte cannot break the JSON; the unit is then shown as its 8 bytes."""
    sb = ledger
    receipt_id = issue_receipt(sb, unit=unit)
    document = metadata(sb.contracts["receipts"].functions.tokenURI(receipt_id).call())
    assert document["properties"]["unit"] == "0x" + unit.hex()
    assert document["name"] == f"SCF Warehouse Receipt, 1000 0x{unit.hex()}"
