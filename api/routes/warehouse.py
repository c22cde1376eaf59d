"""Warehouse receipts and pledge loans.

A warehouse issues a receipt (an ERC-721) for a lot it holds; the owner pledges it to a financier for a loan;
while the loan is open the receipt can neither move nor be redeemed nor back a second loan. Lists read from
the index (they may trail the chain by a block); single objects and every check of who may act are read from
the chain. The contracts enforce every rule again, so a request that slipped past these checks would still
revert.

Receipt ids are the salted lot key hash read as a ``uint256``: beyond 2**53 they are given as decimal strings
(JSON numbers that wide lose digits in many clients); they are accepted as numbers or strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any

from eth_utils import keccak
from fastapi import APIRouter, Query, Response
from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, WithJsonSchema, field_validator
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from api.actions import Action, Call, Link, act_on, install, result_link
from api.auth import Caller, CurrentCaller, Service, require_role
from api.models import MarginCallItem, Owed, Page, PledgeItem, PledgeView, ReceiptItem, ReceiptView
from api.problems import Problem, jsonable
from api.receipt_document import CONTENT_TYPE as RECEIPT_CONTENT_TYPE
from api.receipt_document import ReceiptElements, receipt_document
from api.routes.common import (
    ZERO_ADDRESS,
    Address,
    Amount,
    Bps,
    ListWindow,
    PathId,
    SortKey,
    decimal_integer,
    due_timestamp,
    json_integer,
    not_found,
    paged,
    paging,
    path_id,
    receipt_labels,
    remember_label,
    row_dict,
    sees_everything,
)
from api.routes.common import (
    as_issuer as _as_issuer,
)
from api.routes.common import (
    open_pledge as _open_pledge,
)
from api.routes.common import (
    visible_receipt as _visible_receipt,
)
from api.service import LedgerService
from api.store import ParticipantRecord
from ledger.documents import store_document
from ledger.identifiers import (
    LOT_NUMBER_PATTERN,
    InvalidIdentifier,
    canonical_lot_key,
    canonical_lot_number,
)
from ledger.index.models import PledgeMarginCallRow, PledgeRow, WarehouseReceiptRow
from ledger.models import GoodsStatus, Pledge, PledgeState, Receipt, ReceiptState, Role

router = APIRouter(tags=["warehouse"])

ReceiptId = Annotated[
    int,
    BeforeValidator(decimal_integer),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "exclusiveMinimum": 0},
                {"type": "string", "pattern": "^[1-9][0-9]{0,77}$"},
            ]
        }
    ),
    Field(
        gt=0,
        lt=2**256,
        description="a receipt id: a JSON integer, or a decimal string of ASCII digits (ids beyond 2^53 do not survive "
        "JavaScript's numbers)",
    ),
]
Quantity = Annotated[int, BeforeValidator(json_integer), Field(gt=0, le=2**64 - 1, description="units of goods")]
OPEN_PLEDGE_STATES = (PledgeState.REQUESTED, PledgeState.ACTIVE)


def _not_too_late(value: date) -> date:
    if value.year > 2200:
        raise ValueError("date too far in the future")
    return value


LedgerDate = Annotated[date, AfterValidator(_not_too_late)]


def _state_filter(enum: type[ReceiptState] | type[PledgeState], state: str) -> Any:
    try:
        return enum[state.upper()]
    except KeyError:
        raise Problem(422, "validation", "Invalid request", f"unknown state {state!r}") from None


# -- views and look-ups -----------------------------------------------------------------------------------------


def receipt_view(receipt: Receipt, pledge_id: int | None, owed: Owed | None) -> ReceiptView:
    return ReceiptView(
        id=jsonable(receipt.receipt_id),
        warehouse=receipt.warehouse,
        owner=None if receipt.owner == ZERO_ADDRESS else receipt.owner,
        valuation=receipt.valuation,
        quantity=jsonable(receipt.quantity),
        unit=receipt.unit,
        valued_at=receipt.valued_at,
        expiry=receipt.expiry,
        goods_status=receipt.goods_status.name.lower(),
        state=receipt.state.name.lower(),
        frozen=receipt.frozen,
        pledge_id=pledge_id,
        owed=owed,
    )


def owed_view(service: LedgerService, pledge_id: int) -> Owed:
    principal, interest = service.client.amount_owed(pledge_id)
    return Owed(principal=principal, interest=interest, total=principal + interest)


def pledge_view(service: LedgerService, pledge: Pledge) -> PledgeView:
    """The pledge; with `owed` while it is active (the other fields are always there: the route answers the
    fields set, see :mod:`api.models`)."""
    view = PledgeView(
        id=pledge.pledge_id,
        receipt_id=jsonable(pledge.receipt_id),
        borrower=pledge.borrower,
        financier=pledge.financier,
        state=pledge.state.name.lower(),
        rate_bps=pledge.rate_bps,
        principal=pledge.principal,
        interest_due=pledge.interest_due,
        due_date=pledge.due_date,
        accrued_from=pledge.accrued_from or None,
    )
    if pledge.state is PledgeState.ACTIVE:
        view.owed = owed_view(service, pledge.pledge_id)
    return view


def _as_owner(service: LedgerService, caller: Caller, receipt_id: int) -> Receipt:
    receipt = _visible_receipt(service, caller, receipt_id)
    if receipt.owner != caller.address:
        raise Problem(403, "not-owner", "Forbidden", f"warehouse receipt {receipt_id} is not yours")
    return receipt


def _pledge(service: LedgerService, caller: Caller, pledge_id: int) -> Pledge:
    pledge = service.client.pledge_loan(path_id(pledge_id))
    if pledge.state is PledgeState.NONE:
        raise not_found(f"pledge {pledge_id}")
    if not (sees_everything(caller) or caller.address in (pledge.borrower, pledge.financier)):
        raise not_found(f"pledge {pledge_id}")
    return pledge


def _as_financier(service: LedgerService, caller: Caller, pledge_id: int) -> Pledge:
    require_role(caller, Role.FINANCIER)
    pledge = _pledge(service, caller, pledge_id)
    if pledge.financier != caller.address:
        raise Problem(403, "not-financier", "Forbidden", "this pledge is addressed to another financier")
    return pledge


def _as_borrower(service: LedgerService, caller: Caller, pledge_id: int) -> Pledge:
    pledge = _pledge(service, caller, pledge_id)
    if pledge.borrower != caller.address:
        raise Problem(403, "not-borrower", "Forbidden", "only the borrower does this")
    return pledge


def _credit_code(service: LedgerService, caller: Caller) -> str:
    with service.sessions() as session:
        record = session.get(ParticipantRecord, caller.address)
    if record is None:
        raise Problem(403, "unknown-participant", "Forbidden", "the caller has no participant record")
    return record.credit_code


# -- receipts ---------------------------------------------------------------------------------------------------


class ReceiptCreate(BaseModel):
    owner: Address = Field(description="the owner of the goods, who receives the receipt")
    lot_number: str = Field(
        min_length=1,
        max_length=64,
        json_schema_extra={"pattern": LOT_NUMBER_PATTERN},  # checked by canonical_lot_key
        examples=["SH-2025-000123"],
        description="ASCII letters, digits and . _ / -; letters are case-insensitive (the key uses upper case)",
    )
    goods_description: str = Field(min_length=1, max_length=2000, examples=["hot-rolled coil Q235B, 1,000 t"])
    quantity: Quantity
    unit: str = Field(min_length=1, max_length=8, examples=["t"], description="up to 8 ASCII characters")
    valuation: Amount
    expiry: LedgerDate
    document_sha256: str | None = Field(
        None,
        pattern="^(0x)?[0-9a-fA-F]{64}$",
        description="the SHA-256 of an attachment (a scan of the signed paper receipt), written into the receipt "
        "document; the document's own SHA-256 goes on chain",
    )
    elements: ReceiptElements = Field(
        description="the elements of the 仓单 that are not on chain (GB/T 30332-2024, 《民法典》第九百零九条): written "
        "into the receipt document, whose SHA-256 is the receipt's document hash (docs/warehouse-receipts.md)"
    )

    @field_validator("unit")
    @classmethod
    def _ascii_unit(cls, value: str) -> str:
        if not value.isascii() or not value.isprintable() or len(value.encode("ascii")) > 8:
            raise ValueError("a unit is 1 to 8 printable ASCII characters")
        return value


def _issue_receipt(service: LedgerService, caller: Caller, body: ReceiptCreate) -> Call:
    require_role(caller, Role.WAREHOUSE)
    try:
        key = canonical_lot_key(_credit_code(service, caller), body.lot_number)
    except InvalidIdentifier as exc:
        raise Problem(422, "validation", "Invalid request", str(exc)) from None
    if body.elements.storage_period.start > body.expiry:
        raise Problem(
            422,
            "validation",
            "Invalid request",
            "elements.storage_period.start: the storage period starts after the receipt expires",
            errors=[
                {
                    "loc": ["body", "elements", "storage_period", "start"],
                    "msg": "the storage period starts on or before the receipt's expiry",
                    "type": "value_error",
                }
            ],
        )
    key_hash = service.identity_key_hash(key)
    goods_hash = keccak(text=body.goods_description)
    content = receipt_document(
        elements=body.elements,
        receipt_id=int.from_bytes(key_hash, "big"),
        warehouse=caller.address,
        owner=body.owner,
        lot_number=canonical_lot_number(body.lot_number),
        goods_description=body.goods_description,
        goods_hash=goods_hash,
        quantity=body.quantity,
        unit=body.unit,
        valuation=body.valuation,
        expiry=body.expiry,
        issue_date=datetime.fromtimestamp(service.client.chain_time(), UTC).date(),
        attachment_sha256=body.document_sha256,
    )
    stored = store_document(
        service.sessions,
        service.secrets,
        caller.address,
        content,
        RECEIPT_CONTENT_TYPE,
        [body.owner],
        f"warehouse receipt (仓单) of lot {canonical_lot_number(body.lot_number)}",
    )
    remember_label(service, key_hash, "lot", canonical_lot_number(body.lot_number), None)
    remember_label(service, goods_hash, "goods", "", body.goods_description)
    document = bytes.fromhex(stored.sha256)
    args = {
        "owner": body.owner,
        "lot_key_hash": key_hash,
        "goods_hash": goods_hash,
        "quantity": body.quantity,
        "unit": body.unit,
        "valuation": body.valuation,
        "expiry": due_timestamp(body.expiry),
        "document_hash": document,
    }
    return Call("receipt.issue", caller.address, args)


@router.get("/warehouse-receipts", response_model=Page[ReceiptItem])
@paging
def list_receipts(
    service: Service,
    caller: CurrentCaller,
    window: ListWindow,
    state: str | None = Query(None, description="active, pledge_requested, pledged, redemption_requested or redeemed"),
) -> Page[ReceiptItem] | Response:
    """Receipts the caller issued (a warehouse), owns, or that are pledged or offered to it (a financier),
    newest first."""
    query = select(WarehouseReceiptRow)
    parties: tuple[ColumnElement[bool], ...] = ()
    if not sees_everything(caller):
        pledged_to_me = select(PledgeRow.receipt_id).where(
            PledgeRow.financier == caller.address, PledgeRow.state.in_(OPEN_PLEDGE_STATES)
        )
        parties = (
            WarehouseReceiptRow.warehouse == caller.address,
            WarehouseReceiptRow.owner == caller.address,
            WarehouseReceiptRow.id.in_(pledged_to_me),
        )
    if state is not None:
        query = query.where(WarehouseReceiptRow.state == _state_filter(ReceiptState, state))
    keys = (SortKey(WarehouseReceiptRow.issued_at, descending=True), SortKey(WarehouseReceiptRow.id))
    return paged(service, query, keys, window, ReceiptItem, any_of=parties, convert=_with_lots)


def _with_lots(session: Session, rows: Sequence[WarehouseReceiptRow]) -> list[ReceiptItem]:
    """Receipts as listed, each with its lot number and goods' description where this gateway issued it: one
    query (the description is kept by its keccak, the receipt's ``goods_hash``)."""
    labels = receipt_labels(session, rows)
    items = []
    for row in rows:
        lot, goods = labels[row.id]
        listed = {"lot_number": lot, "goods_description": goods}
        items.append(ReceiptItem.model_validate({**row_dict(row), **listed}))
    return items


@router.get("/warehouse-receipts/{receipt_id}", response_model=ReceiptView)
def get_receipt(receipt_id: PathId, service: Service, caller: CurrentCaller) -> ReceiptView:
    """A receipt as on chain now, with its open pledge and what is owed on it: to its warehouse and owner, the
    borrower and financier of its open pledge (of any of its pledges once redeemed), the operator and the
    regulator (404 to anyone else)."""
    receipt = _visible_receipt(service, caller, receipt_id)
    pledge = _open_pledge(service, receipt)
    owed = owed_view(service, pledge.pledge_id) if pledge and pledge.state is PledgeState.ACTIVE else None
    return receipt_view(receipt, pledge.pledge_id if pledge is not None else None, owed)


class Revaluation(BaseModel):
    valuation: Amount
    attestation: str = Field(min_length=1, max_length=2000, description="the basis; its keccak goes on chain")


def _revalue_receipt(service: LedgerService, caller: Caller, body: Revaluation, receipt_id: int) -> Call:
    _as_issuer(service, caller, receipt_id)
    args = {"receipt_id": receipt_id, "valuation": body.valuation, "attestation_hash": keccak(text=body.attestation)}
    return Call("receipt.revalue", caller.address, args)


class GoodsStatusUpdate(BaseModel):
    status: str = Field(pattern="^(sound|damaged|disputed|missing)$")
    attestation: str = Field(min_length=1, max_length=2000)


def _update_goods_status(service: LedgerService, caller: Caller, body: GoodsStatusUpdate, receipt_id: int) -> Call:
    _as_issuer(service, caller, receipt_id)
    args = {
        "receipt_id": receipt_id,
        "status": GoodsStatus[body.status.upper()],
        "attestation_hash": keccak(text=body.attestation),
    }
    return Call("receipt.goods-status", caller.address, args)


class OracleAppointment(BaseModel):
    oracle: Address | None = Field(
        description="the participant that attests for every receipt of the caller (valuations, goods status, sensor "
        "readings: docs/sensors.md); null revokes the appointment"
    )


def _appoint_oracle(service: LedgerService, caller: Caller, body: OracleAppointment) -> Call:
    require_role(caller, Role.WAREHOUSE)
    return Call("receipt.appoint-oracle", caller.address, {"oracle": body.oracle or ZERO_ADDRESS})


class ReceiptTransfer(BaseModel):
    to: Address


def _transfer_receipt(service: LedgerService, caller: Caller, body: ReceiptTransfer, receipt_id: int) -> Call:
    _as_owner(service, caller, receipt_id)
    return Call("receipt.transfer", caller.address, {"receipt_id": receipt_id, "to": body.to})


# -- pledge loans -----------------------------------------------------------------------------------------------


class PledgeCreate(BaseModel):
    receipt_id: ReceiptId
    financier: Address
    principal: Amount
    rate_bps: Bps = Field(description="annual interest rate")
    due_date: LedgerDate


class PledgeRepayment(BaseModel):
    amount: Amount | None = Field(None, description="fen; null pays everything owed when the transaction runs")


def _request_pledge(service: LedgerService, caller: Caller, body: PledgeCreate) -> Call:
    _as_owner(service, caller, body.receipt_id)
    args = {
        "receipt_id": body.receipt_id,
        "financier": body.financier,
        "principal": body.principal,
        "rate_bps": body.rate_bps,
        "due_date": due_timestamp(body.due_date),
    }
    return Call("pledge.request", caller.address, args)


@router.get("/pledges", response_model=Page[PledgeItem])
@paging
def list_pledges(
    service: Service,
    caller: CurrentCaller,
    window: ListWindow,
    state: str | None = Query(None, description="requested, cancelled, declined, active, released or enforced"),
) -> Page[PledgeItem] | Response:
    """Pledges the caller asked for (a borrower) or was asked for (a financier), newest first."""
    query = select(PledgeRow)
    if state is not None:
        query = query.where(PledgeRow.state == _state_filter(PledgeState, state))
    parties = (
        () if sees_everything(caller) else (PledgeRow.borrower == caller.address, PledgeRow.financier == caller.address)
    )
    return paged(service, query, (SortKey(PledgeRow.id, descending=True),), window, PledgeItem, any_of=parties)


@router.get("/pledges/{pledge_id}", response_model=PledgeView, response_model_exclude_unset=True)
def get_pledge(pledge_id: PathId, service: Service, caller: CurrentCaller) -> PledgeView:
    """A pledge loan as on chain now: with what is `owed` while it is active, and the financier's
    `advance_limit` on the receipt while it is requested; to its borrower and its financier, the operator and
    the regulator (404 to anyone else)."""
    pledge = _pledge(service, caller, pledge_id)
    view = pledge_view(service, pledge)
    if pledge.state is PledgeState.REQUESTED:
        view.advance_limit = service.client.advance_limit(pledge.receipt_id, pledge.financier)
    return view


MARGIN_CALL_ORDER = (
    SortKey(PledgeMarginCallRow.block_number, descending=True),
    SortKey(PledgeMarginCallRow.log_index, descending=True),
)
"""Newest first, as raised on chain."""


@router.get("/margin-calls", response_model=Page[MarginCallItem])
@paging
def list_margin_calls(service: Service, caller: CurrentCaller, window: ListWindow) -> Page[MarginCallItem] | Response:
    """Margin calls on the pledges the caller lent on (a financier) or borrowed on, newest first; every one to the
    regulator and the operator. A margin call is raised when a revaluation of the receipt puts the outstanding
    `principal` above `maintenance_ratio_bps` of its new `valuation` (principal × 10,000 > valuation × ratio); the
    pledge stays active, and the borrower is expected to repay or the financier to act."""
    parties = (
        ()
        if sees_everything(caller)
        else (PledgeMarginCallRow.borrower == caller.address, PledgeMarginCallRow.financier == caller.address)
    )
    return paged(service, select(PledgeMarginCallRow), MARGIN_CALL_ORDER, window, MarginCallItem, any_of=parties)


@router.get("/pledges/{pledge_id}/margin-calls", response_model=Page[MarginCallItem])
@paging
def list_pledge_margin_calls(
    pledge_id: PathId, service: Service, caller: CurrentCaller, window: ListWindow
) -> Page[MarginCallItem] | Response:
    """The margin calls raised on one pledge, newest first, to its financier and borrower, the regulator and the
    operator (404 to anyone else, as for a pledge that does not exist); see `GET /margin-calls`."""
    _pledge(service, caller, pledge_id)
    query = select(PledgeMarginCallRow).where(PledgeMarginCallRow.pledge_id == pledge_id)
    return paged(service, query, MARGIN_CALL_ORDER, window, MarginCallItem)


def _repay_pledge(service: LedgerService, caller: Caller, body: PledgeRepayment, pledge_id: int) -> Call:
    _as_borrower(service, caller, pledge_id)
    return Call("pledge.repay", caller.address, {"pledge_id": pledge_id, "amount": body.amount})


def _receipt_links(field: str) -> tuple[Link, ...]:
    return (
        result_link("GetReceipt", "get", "/warehouse-receipts/{receipt_id}", field),
        *(
            result_link(f"Receipt{name}", "post", f"/warehouse-receipts/{{receipt_id}}/{tail}", field)
            for name, tail in (
                ("Valuation", "valuations"),
                ("GoodsStatus", "goods-status"),
                ("Transfer", "transfers"),
                ("Redeem", "redeem"),
                ("WithdrawRedemption", "redemption/withdraw"),
                ("ConfirmRedemption", "redemption/confirm"),
            )
        ),
    )


ACTIONS = (
    Action(
        "POST",
        "/warehouse-receipts",
        "issue_receipt",
        _issue_receipt,
        "receipt.issue",
        ReceiptCreate,
        description="Issue a receipt for a lot the caller (a warehouse) holds. The lot's key (warehouse credit code, "
        "lot number) goes on chain salted and hashed and is the receipt's id; a lot is receipted once only (409).",
        links=_receipt_links("receipt_id"),
    ),
    Action(
        "POST",
        "/warehouse-receipts/{receipt_id}/valuations",
        "revalue_receipt",
        _revalue_receipt,
        "receipt.revalue",
        Revaluation,
        description="Attest a new valuation (the issuing warehouse). A pledged receipt whose loan is now above the "
        "maintenance ratio raises a margin call (`PledgeMarginCalled` among the result's events).",
    ),
    Action(
        "POST",
        "/warehouse-receipts/{receipt_id}/goods-status",
        "update_goods_status",
        _update_goods_status,
        "receipt.goods-status",
        GoodsStatusUpdate,
        description="Attest the condition of the goods (the issuing warehouse); goods not sound cannot be pledged.",
    ),
    Action(
        "PUT",
        "/oracle-appointment",
        "appoint_oracle",
        _appoint_oracle,
        "receipt.appoint-oracle",
        OracleAppointment,
        description="Appoint (or, with null, revoke) the oracle that attests for every receipt the caller (a "
        "warehouse) issued, such as the service's sensor monitor (docs/sensors.md); the warehouse stays an attester.",
    ),
    Action(
        "POST",
        "/warehouse-receipts/{receipt_id}/transfers",
        "transfer_receipt",
        _transfer_receipt,
        "receipt.transfer",
        ReceiptTransfer,
        description="Hand the receipt (title to the goods) to another participant (the owner; not while pledged).",
    ),
    Action(
        "POST",
        "/warehouse-receipts/{receipt_id}/redeem",
        "request_redemption",
        act_on("receipt.redeem", "receipt_id", _as_owner),
        "receipt.redeem",
        description="Ask the warehouse to release the goods (the owner; not while pledged).",
    ),
    Action(
        "POST",
        "/warehouse-receipts/{receipt_id}/redemption/withdraw",
        "withdraw_redemption",
        act_on("receipt.redemption-withdraw", "receipt_id", _as_owner),
        "receipt.redemption-withdraw",
    ),
    Action(
        "POST",
        "/warehouse-receipts/{receipt_id}/redemption/confirm",
        "confirm_redemption",
        act_on("receipt.redemption-confirm", "receipt_id", _as_issuer),
        "receipt.redemption-confirm",
        description="The goods have left (the issuing warehouse): the receipt is burnt.",
    ),
    Action(
        "POST",
        "/pledges",
        "request_pledge",
        _request_pledge,
        "pledge.request",
        PledgeCreate,
        description="Ask a financier for a loan against a receipt the caller owns (at most the financier's advance "
        "rate of its valuation); the financier then funds or declines it.",
        links=(
            result_link("GetPledge", "get", "/pledges/{pledge_id}", "pledge_id"),
            *(
                result_link(f"{verb.capitalize()}Pledge", "post", f"/pledges/{{pledge_id}}/{verb}", "pledge_id")
                for verb in ("fund", "decline", "cancel", "repay", "enforce")
            ),
        ),
    ),
    Action(
        "POST",
        "/pledges/{pledge_id}/fund",
        "fund_pledge",
        act_on("pledge.fund", "pledge_id", _as_financier),
        "pledge.fund",
        description="Lend: the principal moves to the borrower and the receipt is pledged, in one transaction.",
    ),
    Action(
        "POST",
        "/pledges/{pledge_id}/decline",
        "decline_pledge",
        act_on("pledge.decline", "pledge_id", _as_financier),
        "pledge.decline",
    ),
    Action(
        "POST",
        "/pledges/{pledge_id}/cancel",
        "cancel_pledge",
        act_on("pledge.cancel", "pledge_id", _as_borrower),
        "pledge.cancel",
    ),
    Action(
        "POST",
        "/pledges/{pledge_id}/repay",
        "repay_pledge",
        _repay_pledge,
        "pledge.repay",
        PledgeRepayment,
        description="Pay towards the loan, interest first; paying everything owed releases the lien.",
    ),
    Action(
        "POST",
        "/pledges/{pledge_id}/enforce",
        "enforce_pledge",
        act_on("pledge.enforce", "pledge_id", _as_financier),
        "pledge.enforce",
        description="Take the receipt for an unpaid loan after its due date (the financier).",
    ),
)
install(router, ACTIONS)
