"""Projections of ``Receivables``: invoices and obligations, credit lines, pieces (ERC-721 identity, ERC-3525
slot and value, the tree of splits, value allowances), redemptions and financing requests."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ledger.index.decoding import ZERO_ADDRESS, ChainEvent
from ledger.index.projections.support import ProjectionTable, ascii_text, registrar
from ledger.models import InvoiceState, RequestState

if TYPE_CHECKING:
    from ledger.index.unit_of_work import Projector

EVENT_PROJECTIONS: ProjectionTable = {}
_projection = registrar(EVENT_PROJECTIONS)


# -- receivables: invoices and obligations ------------------------------------------------------------------


@_projection("receivables", "InvoiceRegistered")
def _invoice_registered(p: Projector, e: ChainEvent) -> None:
    a = e.args
    p.invoices.add(
        {
            "id": a["invoiceId"],
            "key_hash": a["keyHash"],
            "seller": a["seller"],
            "buyer": a["buyer"],
            "amount": a["amount"],
            "currency": ascii_text(a["currency"]),
            "due_date": a["dueDate"],
            "document_hash": a["documentHash"],
            "state": InvoiceState.REGISTERED,
            "registered_at": e.block_timestamp,
            "confirmed_at": None,
            "first_piece_id": None,
            "rejection_reason": None,
            "repaid": 0,
            "redeemed": 0,
            "defaulted_by": None,
            "updated_block": e.block_number,
        }
    )


@_projection("receivables", "InvoiceConfirmed")
def _invoice_confirmed(p: Projector, e: ChainEvent) -> None:
    a = e.args
    p.change(
        p.invoices,
        a["invoiceId"],
        e,
        state=InvoiceState.CONFIRMED,
        confirmed_at=e.block_timestamp,
        first_piece_id=a["pieceId"],
    )
    line = p.credit_lines.require(a["buyer"], e)
    p.change(p.credit_lines, a["buyer"], e, used=line["used"] + a["amount"])


@_projection("receivables", "InvoiceRejected")
def _invoice_rejected(p: Projector, e: ChainEvent) -> None:
    p.change(p.invoices, e.args["invoiceId"], e, state=InvoiceState.REJECTED, rejection_reason=e.args["reason"])


@_projection("receivables", "CreditLineSet")
def _credit_line_set(p: Projector, e: ChainEvent) -> None:
    a = e.args
    line = {"core_firm": a["coreFirm"], "credit_limit": a["limit"], "used": a["used"], "updated_block": e.block_number}
    if p.credit_lines.get(a["coreFirm"]) is None:
        p.credit_lines.add(line)
    else:
        p.change(p.credit_lines, a["coreFirm"], e, credit_limit=a["limit"], used=a["used"])
    key = (a["grantor"], a["coreFirm"])
    if p.credit_grants.get(key) is None:
        p.credit_grants.add(
            {"grantor": a["grantor"], "core_firm": a["coreFirm"], "amount": a["grant"], "updated_block": e.block_number}
        )
    else:
        p.change(p.credit_grants, key, e, amount=a["grant"])


@_projection("receivables", "ObligationRepaid")
def _obligation_repaid(p: Projector, e: ChainEvent) -> None:
    a = e.args
    p.change(p.invoices, a["slotId"], e, repaid=a["repaid"])
    line = p.credit_lines.require(a["payer"], e)
    p.change(p.credit_lines, a["payer"], e, used=line["used"] - a["amount"])
    p.repayments.add(
        {
            "block_number": e.block_number,
            "log_index": e.log_index,
            "tx_hash": e.tx_hash,
            "block_timestamp": e.block_timestamp,
            "slot_id": a["slotId"],
            "payer": a["payer"],
            "amount": a["amount"],
            "repaid": a["repaid"],
            "outstanding": a["outstanding"],
        }
    )


@_projection("receivables", "ObligationPaid")
def _obligation_paid(p: Projector, e: ChainEvent) -> None:
    p.change(p.invoices, e.args["slotId"], e, state=InvoiceState.PAID)


@_projection("receivables", "ObligationDefaulted")
def _obligation_defaulted(p: Projector, e: ChainEvent) -> None:
    p.change(p.invoices, e.args["slotId"], e, state=InvoiceState.DEFAULTED, defaulted_by=e.args["declaredBy"])


@_projection("receivables", "ParametersUpdated")
def _receivables_parameters_updated(p: Projector, e: ChainEvent) -> None:
    p.set_parameter("receivables.max_tenor", e.args["maxTenor"], e)
    p.set_parameter("receivables.grace_period", e.args["gracePeriod"], e)
    p.set_parameter("receivables.review_tenor", e.args["reviewTenor"], e)


# -- receivables: pieces (ERC-721 identity, ERC-3525 slot and value, the tree of splits) ----------------------


@_projection("receivables", "Transfer")
def _piece_transferred(p: Projector, e: ChainEvent) -> None:
    piece_id, sender, recipient = e.args["tokenId"], e.args["from"], e.args["to"]
    if sender == ZERO_ADDRESS:
        # A new piece: its slot follows in SlotChanged, its value in TransferValue, its parent in PieceSplit.
        p.pieces.add(
            {
                "id": piece_id,
                "slot_id": None,
                "owner": recipient,
                "value": 0,
                "checkpoint": 0,
                "parent_id": None,
                "root_id": piece_id,
                "depth": 0,
                "path": str(piece_id),
                "frozen": False,
                "open_request_id": None,
                "burnt": False,
                "created_at": e.block_timestamp,
                "updated_block": e.block_number,
            }
        )
    elif recipient == ZERO_ADDRESS:
        p.change(p.pieces, piece_id, e, owner=None, burnt=True)
    else:
        p.change(p.pieces, piece_id, e, owner=recipient)


@_projection("receivables", "SlotChanged")
def _piece_slot_changed(p: Projector, e: ChainEvent) -> None:
    p.change(p.pieces, e.args["_tokenId"], e, slot_id=e.args["_newSlot"])


@_projection("receivables", "TransferValue")
def _piece_value_moved(p: Projector, e: ChainEvent) -> None:
    source, target, value = e.args["_fromTokenId"], e.args["_toTokenId"], e.args["_value"]
    if source != 0:
        row = p.pieces.require(source, e)
        p.change(p.pieces, source, e, value=row["value"] - value)
    if target != 0:
        row = p.pieces.require(target, e)
        p.change(p.pieces, target, e, value=row["value"] + value)


@_projection("receivables", "PieceSplit")
def _piece_split(p: Projector, e: ChainEvent) -> None:
    parent = p.pieces.require(e.args["parentId"], e)
    piece_id = e.args["pieceId"]
    p.change(
        p.pieces,
        piece_id,
        e,
        parent_id=parent["id"],
        root_id=parent["root_id"],
        depth=parent["depth"] + 1,
        path=f"{parent['path']}/{piece_id}",
        checkpoint=parent["checkpoint"],
    )


@_projection("receivables", "ApprovalValue")
def _piece_allowance_set(p: Projector, e: ChainEvent) -> None:
    """An allowance set, spent, or ended (0: by the holder, used up, or the piece changed hands or was burnt)."""
    key = (e.args["_tokenId"], e.args["_operator"])
    value = e.args["_value"]
    if value == 0:
        if p.allowances.get(key) is not None:
            p.allowances.remove(key)
    elif p.allowances.get(key) is None:
        p.allowances.add({"piece_id": key[0], "operator": key[1], "value": value, "updated_block": e.block_number})
    else:
        p.change(p.allowances, key, e, value=value)


@_projection("receivables", "PieceFrozen", "PieceUnfrozen")
def _piece_freeze_changed(p: Projector, e: ChainEvent) -> None:
    p.change(p.pieces, e.args["pieceId"], e, frozen=e.name == "PieceFrozen")


@_projection("receivables", "PieceRedeemed")
def _piece_redeemed(p: Projector, e: ChainEvent) -> None:
    a = e.args
    invoice = p.invoices.require(a["slotId"], e)
    p.change(p.pieces, a["pieceId"], e, checkpoint=invoice["repaid"])
    p.change(p.invoices, a["slotId"], e, redeemed=invoice["redeemed"] + a["payout"])
    p.redemptions.add(
        {
            "block_number": e.block_number,
            "log_index": e.log_index,
            "tx_hash": e.tx_hash,
            "block_timestamp": e.block_timestamp,
            "piece_id": a["pieceId"],
            "slot_id": a["slotId"],
            "holder": a["holder"],
            "payout": a["payout"],
            "remaining": a["remaining"],
        }
    )


# -- receivables: financing ---------------------------------------------------------------------------------


@_projection("receivables", "FinancingRequested")
def _financing_requested(p: Projector, e: ChainEvent) -> None:
    a = e.args
    p.requests.add(
        {
            "id": a["requestId"],
            "piece_id": a["pieceId"],
            "holder": a["holder"],
            "financier": a["financier"],
            "amount": a["amount"],
            "state": RequestState.REQUESTED,
            "discount_rate_bps": None,
            "day_count_basis": None,
            "fee": None,
            "discount": None,
            "price": None,
            "funded_piece_id": None,
            "max_discount_rate_bps": a["maxDiscountRateBps"],
            "max_fee": a["maxFee"],
            "review": None,
            "requested_at": e.block_timestamp,
            "approved_at": None,
            "closed_at": None,
            "registration_number": None,
            "registered_at": None,
            "registration_recorded_at": None,
            "updated_block": e.block_number,
        }
    )
    p.change(p.pieces, a["pieceId"], e, open_request_id=a["requestId"])


@_projection("receivables", "FinancingApproved")
def _financing_approved(p: Projector, e: ChainEvent) -> None:
    a = e.args
    p.change(
        p.requests,
        a["requestId"],
        e,
        state=RequestState.APPROVED,
        discount_rate_bps=a["discountRateBps"],
        fee=a["fee"],
        day_count_basis=a["dayCountBasis"],
        review=a["review"],
        approved_at=e.block_timestamp,
    )


@_projection("receivables", "FinancingFunded")
def _financing_funded(p: Projector, e: ChainEvent) -> None:
    a = e.args
    request = p.change(
        p.requests,
        a["requestId"],
        e,
        state=RequestState.FUNDED,
        discount=a["discount"],
        fee=a["fee"],
        price=a["price"],
        funded_piece_id=a["pieceId"],
        closed_at=e.block_timestamp,
    )
    p.change(p.pieces, request["piece_id"], e, open_request_id=None)


@_projection("receivables", "FinancingRegistered")
def _financing_registered(p: Projector, e: ChainEvent) -> None:
    a = e.args
    p.change(
        p.requests,
        a["requestId"],
        e,
        registration_number=ascii_text(a["number"]),
        registered_at=a["registeredAt"],
        registration_recorded_at=e.block_timestamp,
    )


@_projection("receivables", "FinancingDeclined", "FinancingCancelled")
def _financing_closed(p: Projector, e: ChainEvent) -> None:
    state = RequestState.DECLINED if e.name == "FinancingDeclined" else RequestState.CANCELLED
    request = p.change(p.requests, e.args["requestId"], e, state=state, closed_at=e.block_timestamp)
    p.change(p.pieces, request["piece_id"], e, open_request_id=None)
