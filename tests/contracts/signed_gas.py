"""The gas of each act signed and relayed through ``SignedActs`` beside the same act sent directly.

Shared by ``scripts/gas_report.py`` (its signed-acts table) and the gas test. Each act of a realistic story is
measured twice from one chain state: once signed by the participant's own key (the participant switched to
self-custody just before) and relayed by the operator, then thrown away; then sent directly by the hosted
participant, which the story goes on from. The signed figure is the steady state of the nonce bitmap (the
signer has used a nonce of the same 256-nonce word before); the first nonce of a word also pays for a new
storage word, measured once as ``FRESH_WORD``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth_account.signers.local import LocalAccount
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt, Wei

from ledger.tooling.sandbox import Sandbox
from tests.contracts.support import ACCEPT_ANY, DAY, NO_REVIEW, YUAN, invoice_key
from tests.contracts.warehouse_fixtures import (
    DOCUMENTS,
    GOODS,
    PRINCIPAL,
    QUANTITY,
    RATE_BPS,
    TONNE,
    VALUATION,
    YEAR,
    lot_key,
    receipt_id_of,
)

#: The issue's budget: the signed path of an act costs at most this much gas more than the direct one.
SIGNED_OVERHEAD_BUDGET = 15_000

FRESH_WORD = "first nonce of a fresh bitmap word (confirm invoice)"


@dataclass
class SignedGas:
    sb: Sandbox
    pairs: dict[str, tuple[int, int]] = field(default_factory=dict)
    """label → (direct gas, signed gas)."""
    acts: dict[str, str] = field(default_factory=dict)
    """label → the act's EIP-712 type."""

    def _signer(self, who: str) -> LocalAccount:
        """Switch ``who`` to self-custody and give its key a transaction of its own (invalidating nonce 0), so
        that the measured act's nonce word is already in use."""
        sb = self.sb
        key = sb.adopt_self_custody(who)
        if key.address not in sb.tester.get_accounts():  # other tests of the session may have added it
            sb.tester.add_account("0x" + bytes(key.key).hex())
        sb.w3.eth.send_transaction(
            {"from": sb.w3.eth.accounts[0], "to": key.address, "value": Wei(10**18), "gas": 21_000}
        )
        acts = sb.contracts["acts"]
        tx = acts.functions.invalidateNonces(sb.address(who), 0, 1).transact({"from": key.address, "gas": 200_000})
        assert sb.w3.eth.get_transaction_receipt(tx)["status"] == 1
        return key

    def pair(self, label: str, act: str, who: str, call_args: list[Any], direct: ContractFunction) -> TxReceipt:
        """Measure ``act`` signed (then undone) and ``direct`` sent by ``who``; returns the direct receipt."""
        sb = self.sb
        with sb.isolated():
            key = self._signer(who)
            signed = sb.relay(sb.act_document(act, who, call_args, nonce=1), key)
        receipt = sb.send(direct, who)
        self.pairs[label] = (int(receipt["gasUsed"]), int(signed["gasUsed"]))
        self.acts[label] = act
        return receipt

    def fresh_word(self, act: str, who: str, call_args: list[Any], direct: ContractFunction) -> None:
        """The same pairing with a nonce in a word never used: the bitmap word is created."""
        sb = self.sb
        with sb.isolated():
            key = sb.adopt_self_custody(who)
            signed = sb.relay(sb.act_document(act, who, call_args, nonce=7 << 8), key)
        with sb.isolated():
            direct_gas = int(sb.send(direct, who)["gasUsed"])
        self.pairs[FRESH_WORD] = (direct_gas, int(signed["gasUsed"]))
        self.acts[FRESH_WORD] = act


def measure_signed_acts(sb: Sandbox) -> SignedGas:
    """(direct, signed) gas of every kind of act, on a chain state thrown away afterwards."""
    m = SignedGas(sb)
    with sb.isolated():
        _receivables_story(m)
        _warehouse_story(m)
    return m


def _receivables_story(m: SignedGas) -> None:
    sb = m.sb
    r, token = sb.contracts["receivables"], sb.contracts["token"]
    automaker, bank = sb.address("automaker"), sb.address("bank")
    m.pair(
        "set credit line", "SetCreditLine", "bank", [automaker, 10**12], r.functions.setCreditLine(automaker, 10**12)
    )
    due = sb.now() + 90 * DAY
    register = [invoice_key(), automaker, 1_000_000 * YUAN, b"CNY", due, b"\x01" * 32]
    receipt = m.pair(
        "register invoice", "RegisterInvoice", "seatmaker", register, r.functions.registerInvoice(*register)
    )
    invoice_id = sb.events(receipt, "receivables", "InvoiceRegistered")[0]["invoiceId"]
    m.fresh_word("ConfirmInvoice", "automaker", [invoice_id], r.functions.confirmInvoice(invoice_id))
    receipt = m.pair(
        "confirm invoice (new slot + first piece)",
        "ConfirmInvoice",
        "automaker",
        [invoice_id],
        r.functions.confirmInvoice(invoice_id),
    )
    first = sb.events(receipt, "receivables", "InvoiceConfirmed")[0]["pieceId"]

    other = [invoice_key(), automaker, 10_000 * YUAN, b"CNY", due, b"\x02" * 32]
    receipt = sb.send(r.functions.registerInvoice(*other), "seatmaker")
    other_id = sb.events(receipt, "receivables", "InvoiceRegistered")[0]["invoiceId"]
    reason = b"\x03" * 32
    m.pair(
        "reject invoice", "RejectInvoice", "automaker", [other_id, reason], r.functions.rejectInvoice(other_id, reason)
    )

    # Both ways through `transferPiece`, which decides whole piece or part on chain, as the service does.
    chemicals, trader = sb.address("chemicals"), sb.address("trader")
    receipt = m.pair(
        "split-transfer of a piece",
        "AssignPiece",
        "seatmaker",
        [first, chemicals, 400_000 * YUAN],
        r.functions.transferPiece(first, chemicals, 400_000 * YUAN),
    )
    child = sb.events(receipt, "receivables", "PieceSplit")[0]["pieceId"]
    m.pair(
        "transfer of a whole piece",
        "AssignPiece",
        "chemicals",
        [child, trader, 400_000 * YUAN],
        r.functions.transferPiece(child, trader, 400_000 * YUAN),
    )
    request_args = [child, 400_000 * YUAN, bank, 450, 100 * YUAN]
    receipt = m.pair(
        "request financing", "RequestFinancing", "trader", request_args, r.functions.requestFinancing(*request_args)
    )
    request = sb.events(receipt, "receivables", "FinancingRequested")[0]["requestId"]
    terms = [request, 450, 100 * YUAN, 365, NO_REVIEW]
    m.pair("approve financing", "ApproveFinancing", "bank", terms, r.functions.approveFinancing(*terms))
    m.pair(
        "fund financing (whole piece + cash leg)",
        "FundFinancing",
        "bank",
        [request],
        r.functions.fundFinancing(request),
    )
    registration = [request, b"04539487000452458806".ljust(32, b"\0"), sb.now()]
    m.pair(
        "record financing registration (中登网)",
        "RecordFinancingRegistration",
        "bank",
        registration,
        r.functions.recordFinancingRegistration(*registration),
    )

    for label, act, who, fn in (
        ("decline financing", "DeclineFinancing", "factor", r.functions.declineFinancing),
        ("cancel financing", "CancelFinancing", "seatmaker", r.functions.cancelFinancing),
    ):
        receipt = sb.send(
            r.functions.requestFinancing(first, 1_000 * YUAN, sb.address("factor"), *ACCEPT_ANY), "seatmaker"
        )
        request = sb.events(receipt, "receivables", "FinancingRequested")[0]["requestId"]
        m.pair(label, act, who, [request], fn(request))

    m.pair(
        "repay obligation (part)",
        "Repay",
        "automaker",
        [invoice_id, 500_000 * YUAN],
        r.functions.repay(invoice_id, 500_000 * YUAN),
    )
    m.pair("redeem piece (pro rata, piece kept)", "Redeem", "seatmaker", [first], r.functions.redeem(first))
    spender = sb.address("receivables")
    m.pair(
        "approve settlement allowance",
        "ApproveSettlement",
        "bank",
        [spender, 10**15],
        token.functions.approve(spender, 10**15),
    )
    sb.travel_to(due + int(sb.read("receivables", "gracePeriod")) + 1)
    m.pair(
        "mark an obligation defaulted",
        "MarkDefaulted",
        "seatmaker",
        [invoice_id, first],
        r.functions.markDefaulted(invoice_id, first),
    )


def _warehouse_story(m: SignedGas) -> None:
    sb = m.sb
    w = sb.contracts["receipts"]
    steel, bank = sb.address("steel"), sb.address("bank")
    expiry = sb.now() + YEAR

    def issue_args() -> list[Any]:
        return [steel, lot_key(), GOODS, QUANTITY, TONNE, VALUATION, expiry, DOCUMENTS]

    sb.send(w.functions.issueReceipt(*issue_args()), "warehouse")  # the owner's first receipt: a fresh balance word
    args = issue_args()
    m.pair(
        "issue warehouse receipt (owner already holds one)",
        "IssueReceipt",
        "warehouse",
        args,
        w.functions.issueReceipt(*args),
    )
    receipt_id = receipt_id_of(args[1])
    due = sb.now() + 90 * DAY
    pledge_args = [receipt_id, bank, PRINCIPAL, RATE_BPS, due]
    receipt = m.pair("request pledge", "RequestPledge", "steel", pledge_args, w.functions.requestPledge(*pledge_args))
    pledge_id = sb.events(receipt, "receipts", "PledgeRequested")[0]["pledgeId"]
    m.pair("fund pledge (lien + cash leg)", "FundPledge", "bank", [pledge_id], w.functions.fundPledge(pledge_id))
    registration = [pledge_id, b"04539487000452458807".ljust(32, b"\0"), sb.now()]
    m.pair(
        "record pledge registration (中登网)",
        "RecordPledgeRegistration",
        "bank",
        registration,
        w.functions.recordPledgeRegistration(*registration),
    )
    revalue = [receipt_id, VALUATION - 1, b"\x01" * 32]
    m.pair("revalue receipt", "RevalueReceipt", "warehouse", revalue, w.functions.revalueReceipt(*revalue))
    sb.travel_to(sb.now() + 30 * DAY)
    m.pair(
        "repay pledge (part)",
        "RepayPledge",
        "steel",
        [pledge_id, PRINCIPAL // 2],
        w.functions.repayPledge(pledge_id, PRINCIPAL // 2),
    )

    for label, act, who, fn in (
        ("decline pledge", "DeclinePledge", "bank", w.functions.declinePledge),
        ("cancel pledge", "CancelPledge", "steel", w.functions.cancelPledge),
    ):
        other = issue_args()
        sb.send(w.functions.issueReceipt(*other), "warehouse")
        receipt = sb.send(w.functions.requestPledge(receipt_id_of(other[1]), bank, PRINCIPAL, RATE_BPS, due), "steel")
        pledge = sb.events(receipt, "receipts", "PledgeRequested")[0]["pledgeId"]
        m.pair(label, act, who, [pledge], fn(pledge))

    goods = issue_args()
    sb.send(w.functions.issueReceipt(*goods), "warehouse")
    goods_id = receipt_id_of(goods[1])
    attest = [goods_id, 1, b"\x04" * 32]  # damaged
    m.pair("update goods status", "UpdateGoodsStatus", "warehouse", attest, w.functions.updateGoodsStatus(*attest))
    oracle = sb.address("warehouse2")
    m.pair("appoint an oracle", "AppointOracle", "warehouse", [oracle], w.functions.appointOracle(oracle))
    moved = issue_args()
    sb.send(w.functions.issueReceipt(*moved), "warehouse")
    moved_id, trader = receipt_id_of(moved[1]), sb.address("trader")
    m.pair(
        "transfer of a receipt",
        "TransferReceipt",
        "steel",
        [moved_id, trader],
        w.functions.transferFrom(steel, trader, moved_id),
    )
    redeemed = issue_args()
    sb.send(w.functions.issueReceipt(*redeemed), "warehouse")
    redeemed_id = receipt_id_of(redeemed[1])
    m.pair(
        "request redemption", "RequestRedemption", "steel", [redeemed_id], w.functions.requestRedemption(redeemed_id)
    )
    m.pair(
        "withdraw redemption", "WithdrawRedemption", "steel", [redeemed_id], w.functions.withdrawRedemption(redeemed_id)
    )
    sb.send(w.functions.requestRedemption(redeemed_id), "steel")
    m.pair(
        "confirm redemption (receipt burnt)",
        "ConfirmRedemption",
        "warehouse",
        [redeemed_id],
        w.functions.confirmRedemption(redeemed_id),
    )
    sb.travel_to(due + 1)
    m.pair("enforce pledge", "EnforcePledge", "bank", [pledge_id], w.functions.enforcePledge(pledge_id))
