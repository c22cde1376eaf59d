"""Projections of ``WarehouseReceipts`` (``receipts``): receipts, their oracles, pledges with their repayments and
margin calls, and the financing parameters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ledger.index.decoding import ZERO_ADDRESS, ChainEvent
from ledger.index.projections.support import ProjectionTable, address_or_none, ascii_text, registrar
from ledger.models import GoodsStatus, PledgeState, ReceiptState

if TYPE_CHECKING:
    from ledger.index.unit_of_work import Projector

EVENT_PROJECTIONS: ProjectionTable = {}
_projection = registrar(EVENT_PROJECTIONS)


# -- warehouse receipts -------------------------------------------------------------------------------------


def _receipt_shell(receipt_id: int, e: ChainEvent) -> dict[str, Any]:
    """A receipt row before its ``ReceiptIssued`` fills it (the mint's ``Transfer`` comes first)."""
    return {
        "id": receipt_id,
        "warehouse": None,
        "owner": None,
        "lot_key_hash": None,
        "goods_hash": None,
        "document_hash": None,
        "quantity": None,
        "unit": None,
        "valuation": None,
        "valued_at": None,
        "expiry": None,
        "goods_status": GoodsStatus.SOUND,
        "state": ReceiptState.ACTIVE,
        "frozen": False,
        "pledge_id": None,
        "oracle": None,
        "issued_at": e.block_timestamp,
        "updated_block": e.block_number,
    }


@_projection("receipts", "Transfer")
def _receipt_transferred(p: Projector, e: ChainEvent) -> None:
    receipt_id, sender, recipient = e.args["tokenId"], e.args["from"], e.args["to"]
    if sender == ZERO_ADDRESS and p.receipts.get(receipt_id) is None:
        p.receipts.add(_receipt_shell(receipt_id, e))
    p.change(p.receipts, receipt_id, e, owner=address_or_none(recipient))


@_projection("receipts", "ReceiptIssued")
def _receipt_issued(p: Projector, e: ChainEvent) -> None:
    a = e.args
    if p.receipts.get(a["receiptId"]) is None:
        p.receipts.add(_receipt_shell(a["receiptId"], e))
    p.change(
        p.receipts,
        a["receiptId"],
        e,
        warehouse=a["warehouse"],
        owner=a["owner"],
        lot_key_hash=a["lotKeyHash"],
        goods_hash=a["goodsHash"],
        document_hash=a["documentHash"],
        quantity=a["quantity"],
        unit=ascii_text(a["unit"]),
        valuation=a["valuation"],
        valued_at=a["valuedAt"],
        expiry=a["expiry"],
        issued_at=e.block_timestamp,
    )


@_projection("receipts", "ReceiptRevalued")
def _receipt_revalued(p: Projector, e: ChainEvent) -> None:
    p.change(p.receipts, e.args["receiptId"], e, valuation=e.args["valuation"], valued_at=e.args["valuedAt"])


@_projection("receipts", "ReceiptGoodsStatusUpdated")
def _receipt_goods_status_updated(p: Projector, e: ChainEvent) -> None:
    p.change(p.receipts, e.args["receiptId"], e, goods_status=GoodsStatus(e.args["status"]))


@_projection("receipts", "OracleAppointed")
def _oracle_appointed(p: Projector, e: ChainEvent) -> None:
    warehouse, receipt_id, oracle = e.args["warehouse"], e.args["receiptId"], e.args["oracle"]
    if receipt_id != 0:
        p.change(p.receipts, receipt_id, e, oracle=address_or_none(oracle))
    elif oracle == ZERO_ADDRESS:
        if p.oracles.get(warehouse) is not None:
            p.oracles.remove(warehouse)
    elif p.oracles.get(warehouse) is None:
        p.oracles.add({"warehouse": warehouse, "oracle": oracle, "updated_block": e.block_number})
    else:
        p.change(p.oracles, warehouse, e, oracle=oracle)


@_projection("receipts", "ReceiptFrozen", "ReceiptUnfrozen")
def _receipt_freeze_changed(p: Projector, e: ChainEvent) -> None:
    p.change(p.receipts, e.args["receiptId"], e, frozen=e.name == "ReceiptFrozen")


_RECEIPT_STATE_AFTER: Mapping[str, ReceiptState] = {
    "ReceiptRedemptionRequested": ReceiptState.REDEMPTION_REQUESTED,
    "ReceiptRedemptionWithdrawn": ReceiptState.ACTIVE,
    "ReceiptRedeemed": ReceiptState.REDEEMED,
}


@_projection("receipts", *_RECEIPT_STATE_AFTER)
def _receipt_redemption_moved(p: Projector, e: ChainEvent) -> None:
    p.change(p.receipts, e.args["receiptId"], e, state=_RECEIPT_STATE_AFTER[e.name])


@_projection("receipts", "PledgeRequested")
def _pledge_requested(p: Projector, e: ChainEvent) -> None:
    a = e.args
    p.pledges.add(
        {
            "id": a["pledgeId"],
            "receipt_id": a["receiptId"],
            "borrower": a["borrower"],
            "financier": a["financier"],
            "state": PledgeState.REQUESTED,
            "rate_bps": a["rateBps"],
            "due_date": a["dueDate"],
            "principal_requested": a["principal"],
            "principal": a["principal"],
            "interest_due": 0,
            "accrued_from": None,
            "funded_at": None,
            "closed_at": None,
            "margin_called_at": None,
            "requested_at": e.block_timestamp,
            "registration_number": None,
            "registered_at": None,
            "registration_recorded_at": None,
            "updated_block": e.block_number,
        }
    )
    p.change(p.receipts, a["receiptId"], e, state=ReceiptState.PLEDGE_REQUESTED, pledge_id=a["pledgeId"])


_PLEDGE_CLOSED: Mapping[str, PledgeState] = {
    "PledgeCancelled": PledgeState.CANCELLED,
    "PledgeDeclined": PledgeState.DECLINED,
    "PledgeReleased": PledgeState.RELEASED,
}


@_projection("receipts", *_PLEDGE_CLOSED)
def _pledge_closed(p: Projector, e: ChainEvent) -> None:
    p.change(p.pledges, e.args["pledgeId"], e, state=_PLEDGE_CLOSED[e.name], closed_at=e.block_timestamp)
    p.change(p.receipts, e.args["receiptId"], e, state=ReceiptState.ACTIVE)


@_projection("receipts", "PledgeFunded")
def _pledge_funded(p: Projector, e: ChainEvent) -> None:
    a = e.args
    p.change(
        p.pledges,
        a["pledgeId"],
        e,
        state=PledgeState.ACTIVE,
        principal=a["principal"],
        funded_at=a["fundedAt"],
        accrued_from=a["fundedAt"],
    )
    p.change(p.receipts, a["receiptId"], e, state=ReceiptState.PLEDGED)


@_projection("receipts", "PledgeRegistered")
def _pledge_registered(p: Projector, e: ChainEvent) -> None:
    a = e.args
    p.change(
        p.pledges,
        a["pledgeId"],
        e,
        registration_number=ascii_text(a["number"]),
        registered_at=a["registeredAt"],
        registration_recorded_at=e.block_timestamp,
    )


@_projection("receipts", "PledgeRepaid")
def _pledge_repaid(p: Projector, e: ChainEvent) -> None:
    a = e.args
    previous = p.pledges.require(a["pledgeId"], e)["accrued_from"] or 0
    p.change(
        p.pledges,
        a["pledgeId"],
        e,
        principal=a["principalOutstanding"],
        interest_due=a["interestOutstanding"],
        accrued_from=max(previous, a["paidAt"]),  # as the contract: the accrual mark never moves back
    )
    p.pledge_repayments.add(
        {
            "block_number": e.block_number,
            "log_index": e.log_index,
            "tx_hash": e.tx_hash,
            "block_timestamp": e.block_timestamp,
            "pledge_id": a["pledgeId"],
            "amount": a["amount"],
            "interest_paid": a["interestPaid"],
            "principal_paid": a["principalPaid"],
            "principal_outstanding": a["principalOutstanding"],
            "interest_outstanding": a["interestOutstanding"],
        }
    )


@_projection("receipts", "PledgeEnforced")
def _pledge_enforced(p: Projector, e: ChainEvent) -> None:
    a = e.args
    p.change(
        p.pledges,
        a["pledgeId"],
        e,
        state=PledgeState.ENFORCED,
        principal=a["principalOutstanding"],
        interest_due=a["interestOutstanding"],
        closed_at=e.block_timestamp,
    )
    p.change(p.receipts, a["receiptId"], e, state=ReceiptState.ACTIVE)


@_projection("receipts", "PledgeMarginCalled")
def _pledge_margin_called(p: Projector, e: ChainEvent) -> None:
    a = e.args
    p.change(p.pledges, a["pledgeId"], e, margin_called_at=e.block_timestamp)
    p.margin_calls.add(
        {
            "block_number": e.block_number,
            "log_index": e.log_index,
            "tx_hash": e.tx_hash,
            "block_timestamp": e.block_timestamp,
            "pledge_id": a["pledgeId"],
            "receipt_id": a["receiptId"],
            "borrower": a["borrower"],
            "financier": a["financier"],
            "principal": a["principal"],
            "valuation": a["valuation"],
            "maintenance_ratio_bps": a["maintenanceRatioBps"],
        }
    )


@_projection("receipts", "AdvanceRateSet")
def _advance_rate_set(p: Projector, e: ChainEvent) -> None:
    financier = e.args["financier"]
    name = "receipts.advance_rate_bps" if financier == ZERO_ADDRESS else f"receipts.advance_rate_bps.{financier}"
    p.set_parameter(name, e.args["advanceRateBps"], e)


@_projection("receipts", "MaintenanceRatioSet")
def _maintenance_ratio_set(p: Projector, e: ChainEvent) -> None:
    p.set_parameter("receipts.maintenance_ratio_bps", e.args["maintenanceRatioBps"], e)
