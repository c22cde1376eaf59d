"""Invoices, receivable pieces, obligations and financing requests.

Lists read from the index (they may trail the chain by a block); single objects and every check of who may
act are read from the chain. The contracts enforce every rule again, so a request that slipped past these
checks would still revert.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Annotated

from eth_utils import keccak
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.actions import Action, Call, act_on, install, result_link
from api.auth import Caller, CurrentCaller, Service, require_role
from api.models import (
    Fen,
    FinancingRequestItem,
    FinancingRequestView,
    InvoiceItem,
    InvoiceView,
    Page,
    PieceItem,
    PieceView,
    Quote,
    WideFen,
)
from api.problems import Problem
from api.routes.common import (
    MAX_AMOUNT,
    ZERO_ADDRESS,
    Address,
    Amount,
    Bps,
    Id,
    IsoDate,
    JsonInt,
    ListWindow,
    PathId,
    QueryInt,
    SortKey,
    due_timestamp,
    labels_of,
    not_found,
    paged,
    paging,
    path_id,
    remember_label,
    row_dict,
    sees_everything,
)
from api.service import LedgerService
from api.store import FinancingOfferRecord, ParticipantRecord
from ledger.errors import ContractRevert
from ledger.identifiers import (
    INVOICE_CODE_PATTERN,
    INVOICE_NUMBER_PATTERN,
    InvalidIdentifier,
    canonical_invoice_key,
    no_document_hash,
)
from ledger.index.models import FinancingRequestRow, InvoiceRow, PieceRow
from ledger.models import FinancingRequest, Invoice, InvoiceState, Piece, RequestState, Role

router = APIRouter(tags=["receivables"])

# -- invoices -------------------------------------------------------------------------------------------------


class InvoiceCreate(BaseModel):
    buyer: Address = Field(description="the core firm billed")
    amount: Amount
    currency: str = Field("CNY", pattern="^[A-Z]{3}$")
    invoice_number: str = Field(
        min_length=8,
        max_length=20,
        json_schema_extra={"pattern": INVOICE_NUMBER_PATTERN},  # checked by canonical_invoice_key
        examples=["25117000000000123456"],
        description="a fully digitalised e-invoice's 20-digit number, or an older VAT invoice's 8-digit number "
        "(with `invoice_code`); ASCII digits 0-9 only (full-width and other Unicode digits are refused)",
    )
    invoice_code: str | None = Field(
        None,
        json_schema_extra={"pattern": INVOICE_CODE_PATTERN},
        description="10 or 12 ASCII digits, for an older VAT invoice only",
    )
    due_date: date
    document_sha256: str | None = Field(None, pattern="^(0x)?[0-9a-fA-F]{64}$")

    @field_validator("due_date")
    @classmethod
    def _future(cls, value: date) -> date:
        if value.year > 2200:
            raise ValueError("due date too far in the future")
        return value


def invoice_view(invoice: Invoice) -> InvoiceView:
    return InvoiceView(
        id=invoice.invoice_id,
        seller=invoice.seller,
        buyer=invoice.buyer,
        amount=invoice.amount,
        repaid=invoice.repaid,
        redeemed=invoice.redeemed,
        outstanding=invoice.outstanding,
        state=invoice.state.name.lower(),
        due_date=invoice.due_date,
        confirmed_at=invoice.confirmed_at or None,
        document_hash="0x" + invoice.document_hash.hex(),
    )


def _invoice(service: LedgerService, invoice_id: int) -> Invoice:
    invoice = service.client.invoice(path_id(invoice_id))
    if invoice.state is InvoiceState.NONE:
        raise not_found(f"invoice {invoice_id}")
    return invoice


def _register_invoice(service: LedgerService, caller: Caller, body: InvoiceCreate) -> Call:
    require_role(caller, Role.SUPPLIER)
    try:
        key = canonical_invoice_key(body.invoice_number, body.invoice_code)
    except InvalidIdentifier as exc:
        raise Problem(422, "validation", "Invalid request", str(exc)) from None
    key_hash = service.identity_key_hash(key)
    remember_label(service, key_hash, "invoice", body.invoice_number, body.invoice_code)
    document = (
        bytes.fromhex(body.document_sha256.removeprefix("0x")) if body.document_sha256 else no_document_hash(key_hash)
    )
    args = {
        "key_hash": key_hash,
        "buyer": body.buyer,
        "amount": body.amount,
        "currency": body.currency,
        "due_date": due_timestamp(body.due_date),
        "document_hash": document,
    }
    return Call("invoice.register", caller.address, args)


@router.get("/invoices", response_model=Page[InvoiceItem])
@paging
def list_invoices(
    service: Service,
    caller: CurrentCaller,
    window: ListWindow,
    state: str | None = Query(None, description="registered, rejected, confirmed, paid or defaulted"),
    counterparty: Annotated[
        Address | None, Query(description="only invoices this account sold or is billed for")
    ] = None,
    due_from: Annotated[
        IsoDate | None, Query(description="only invoices due on or after this day (YYYY-MM-DD)")
    ] = None,
    due_to: Annotated[IsoDate | None, Query(description="only invoices due on or before this day (YYYY-MM-DD)")] = None,
) -> Page[InvoiceItem] | Response:
    """Invoices the caller sold or is billed for (the regulator and the operator: all), newest first; filtered
    by state, by counterparty (seller or buyer) and by due date."""
    query = select(InvoiceRow)
    if state is not None:
        try:
            query = query.where(InvoiceRow.state == InvoiceState[state.upper()])
        except KeyError:
            raise Problem(422, "validation", "Invalid request", f"unknown state {state!r}") from None
    if counterparty is not None:
        query = query.where(or_(InvoiceRow.seller == counterparty, InvoiceRow.buyer == counterparty))
    if due_from is not None:
        query = query.where(InvoiceRow.due_date >= due_timestamp(due_from))
    if due_to is not None:
        query = query.where(InvoiceRow.due_date <= due_timestamp(due_to))
    parties = (
        () if sees_everything(caller) else (InvoiceRow.seller == caller.address, InvoiceRow.buyer == caller.address)
    )
    keys = (SortKey(InvoiceRow.id, descending=True),)
    return paged(service, query, keys, window, InvoiceItem, any_of=parties, convert=_with_numbers)


def _with_numbers(session: Session, rows: Sequence[InvoiceRow]) -> list[InvoiceItem]:
    """Invoices as listed, each with its number where this gateway registered it: one query for the page."""
    labels = labels_of(session, [row.key_hash for row in rows])
    items = []
    for row in rows:
        label = labels.get(row.key_hash.lower())
        items.append(InvoiceItem.model_validate({**row_dict(row), "invoice_number": label.label if label else None}))
    return items


@router.get("/invoices/{invoice_id}", response_model=InvoiceView)
def get_invoice(invoice_id: PathId, service: Service, caller: CurrentCaller) -> InvoiceView:
    """An invoice as on chain now, with what was repaid, redeemed and is still outstanding: to its seller and its
    buyer, the operator and the regulator (404 to anyone else, as for an invoice that does not exist)."""
    invoice = _invoice(service, invoice_id)
    if not (sees_everything(caller) or caller.address in (invoice.seller, invoice.buyer)):
        raise not_found(f"invoice {invoice_id}")
    return invoice_view(invoice)


def _as_buyer(service: LedgerService, caller: Caller, invoice_id: int, verb: str) -> Invoice:
    require_role(caller, Role.CORE_FIRM)
    invoice = _invoice(service, invoice_id)
    if caller.address != invoice.buyer:
        raise Problem(403, "not-buyer", "Forbidden", f"only the invoice's buyer {verb} it")
    return invoice


def _confirm_invoice(service: LedgerService, caller: Caller, body: None, invoice_id: int) -> Call:
    _as_buyer(service, caller, invoice_id, "confirms")
    return Call("invoice.confirm", caller.address, {"invoice_id": invoice_id})


class Rejection(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


def _reject_invoice(service: LedgerService, caller: Caller, body: Rejection, invoice_id: int) -> Call:
    _as_buyer(service, caller, invoice_id, "rejects")
    return Call("invoice.reject", caller.address, {"invoice_id": invoice_id, "reason": keccak(text=body.reason)})


# -- pieces and obligations ------------------------------------------------------------------------------------


def piece_view(piece: Piece, path: list[int], redeemable: int) -> PieceView:
    return PieceView(
        id=piece.piece_id,
        owner=None if piece.owner == ZERO_ADDRESS else piece.owner,
        slot_id=piece.slot_id,
        parent_id=piece.parent_id or None,
        value=piece.value,
        open_request_id=piece.open_request_id or None,
        frozen=piece.frozen,
        path=path,
        redeemable=redeemable,
    )


def _piece(service: LedgerService, piece_id: int) -> Piece:
    try:
        return service.client.piece(path_id(piece_id))
    except ContractRevert as exc:
        if exc.name == "ReceivablesNonexistentPiece":
            raise not_found(f"piece {piece_id}") from None
        raise


def _may_see_piece(service: LedgerService, caller: Caller, piece: Piece) -> bool:
    if sees_everything(caller) or caller.address == piece.owner:
        return True
    invoice = service.client.invoice(piece.slot_id)
    return caller.address in (invoice.buyer, invoice.seller)


@router.get("/receivables", response_model=Page[PieceItem])
@paging
def list_receivables(service: Service, caller: CurrentCaller, window: ListWindow) -> Page[PieceItem] | Response:
    """The pieces the caller holds (from the index), oldest first."""
    # the (owner, burnt, id) index answers a cursor page, and the count, without reading other rows
    query = select(PieceRow).where(PieceRow.owner == caller.address, PieceRow.burnt.is_(False))
    return paged(service, query, (SortKey(PieceRow.id),), window, PieceItem)


class ObligorExposure(BaseModel):
    core_firm: str = Field(description="the obligor: the invoices' buyer")
    name: str | None = Field(description="its name as onboarded, when this service onboarded it")
    pieces: int
    value: WideFen


class MonthExposure(BaseModel):
    month: str = Field(description="the month the pieces fall due, YYYY-MM (UTC)")
    pieces: int
    value: WideFen


class Portfolio(BaseModel):
    """What the caller holds, by obligor and by month of maturity (pieces not yet redeemed)."""

    holder: str
    currency: str
    pieces: int
    value: WideFen
    by_core_firm: list[ObligorExposure] = Field(description="largest first")
    by_month: list[MonthExposure] = Field(description="in order of maturity")


@router.get("/receivables/portfolio", response_model=Portfolio)
def receivables_portfolio(service: Service, caller: CurrentCaller) -> Portfolio:
    """The caller's receivable pieces summed by obligor (core firm) and by month of maturity, from the index: a
    financier's exposure to each core firm and its maturity ladder (a supplier's the same way)."""
    query = (
        select(PieceRow.value, InvoiceRow.buyer, InvoiceRow.due_date)
        .join(InvoiceRow, InvoiceRow.id == PieceRow.slot_id)
        .where(PieceRow.owner == caller.address, PieceRow.burnt.is_(False))
    )
    by_firm: dict[str, list[int]] = {}
    by_month: dict[str, list[int]] = {}
    with service.sessions() as session:
        for value, buyer, due in session.execute(query):
            month = datetime.fromtimestamp(int(due), UTC).strftime("%Y-%m")
            for totals, key in ((by_firm, buyer), (by_month, month)):
                line = totals.setdefault(key, [0, 0])
                line[0] += 1
                line[1] += int(value)
        known = select(ParticipantRecord.address, ParticipantRecord.name).where(
            ParticipantRecord.address.in_(list(by_firm))
        )
        names = {address: name for address, name in session.execute(known)}
    firms = [
        ObligorExposure(core_firm=firm, name=names.get(firm), pieces=count, value=value)
        for firm, (count, value) in sorted(by_firm.items(), key=lambda item: (-item[1][1], item[0]))
    ]
    months = [
        MonthExposure(month=month, pieces=count, value=value) for month, (count, value) in sorted(by_month.items())
    ]
    return Portfolio(
        holder=caller.address,
        currency="CNY",
        pieces=sum(line.pieces for line in firms),
        value=sum(line.value for line in firms),
        by_core_firm=firms,
        by_month=months,
    )


@router.get("/receivables/{piece_id}", response_model=PieceView)
def get_receivable(piece_id: PathId, service: Service, caller: CurrentCaller) -> PieceView:
    """A receivable piece as on chain now, with its path of splits and what its holder could redeem: to its
    holder, the invoice's seller and buyer, the operator and the regulator (404 to anyone else)."""
    piece = _piece(service, piece_id)
    if not _may_see_piece(service, caller, piece):
        raise not_found(f"piece {piece_id}")
    return piece_view(piece, service.client.path_of(piece_id), service.client.redeemable(piece_id))


class PieceTransfer(BaseModel):
    to: Address
    amount: Amount


def _require_holder(service: LedgerService, caller: Caller, piece_id: int) -> Piece:
    piece = _piece(service, piece_id)
    if piece.owner != caller.address:
        if _may_see_piece(service, caller, piece):
            raise Problem(403, "not-holder", "Forbidden", f"piece {piece_id} is not yours")
        raise not_found(f"piece {piece_id}")
    return piece


async def _transfer_piece(service: LedgerService, caller: Caller, body: PieceTransfer, piece_id: int) -> Call:
    # The common case, the holder paying with its own piece, reads the piece from the event loop (no worker
    # thread); anything else is answered by the same checks as before.
    try:
        piece = await service.client.piece_async(path_id(piece_id))
    except ContractRevert:
        piece = None
    if piece is None or piece.owner != caller.address:
        await run_in_threadpool(_require_holder, service, caller, piece_id)
    return Call("receivable.transfer", caller.address, {"piece_id": piece_id, "to": body.to, "amount": body.amount})


class Repayment(BaseModel):
    amount: Amount


def _repay_obligation(service: LedgerService, caller: Caller, body: Repayment, slot_id: int) -> Call:
    require_role(caller, Role.CORE_FIRM)
    invoice = _invoice(service, slot_id)
    if invoice.buyer != caller.address:
        raise Problem(403, "not-obligor", "Forbidden", "only the obligation's core firm repays it here")
    return Call("obligation.repay", caller.address, {"slot_id": slot_id, "amount": body.amount})


# -- financing requests ------------------------------------------------------------------------------------------


class FinancingCreate(BaseModel):
    piece_id: Id
    amount: Amount
    financier: Address
    max_discount_rate_bps: Bps = Field(
        description="the highest discount rate a year (365-day basis) the holder accepts: the quote it was shown;"
        " an approval above it is refused on chain"
    )
    max_fee: JsonInt = Field(ge=0, le=2**96 - 1, description="the highest fee the holder accepts, fen")


class FinancingTerms(BaseModel):
    discount_rate_bps: Bps = Field(description="annual discount rate")
    fee: JsonInt = Field(0, ge=0, le=2**96 - 1, description="flat fee in fen")
    day_count_basis: JsonInt = Field(365, description="365 or 360")
    review: str | None = Field(
        None,
        pattern="^0x[0-9a-fA-F]{64}$",
        description="the hash or reference of the financier's credit review (0x and 64 hex digits, not zero):"
        " required when the obligation runs longer than the review tenor (`GET /rules`)",
    )

    @field_validator("review")
    @classmethod
    def _review(cls, value: str | None) -> str | None:
        if value is not None and int(value, 16) == 0:
            raise ValueError("a credit review is not zero: leave it out when there is none")
        return value


# -- standing terms and quotes: the price a supplier sees before it asks ---------------------------------------


class FinancingOffer(BaseModel):
    core_firm: Address | None = Field(None, description="the obligor these terms are for; null: any core firm")
    discount_rate_bps: Bps = Field(description="annual discount rate")
    fee: JsonInt = Field(0, ge=0, le=2**63 - 1, description="flat fee in fen")
    day_count_basis: JsonInt = Field(365, description="365 or 360")

    @field_validator("day_count_basis")
    @classmethod
    def _basis(cls, value: int) -> int:
        if value not in (360, 365):
            raise ValueError("the day count basis is 365 or 360")
        return value


class OfferView(BaseModel):
    financier: str
    core_firm: str | None = Field(description="null: any core firm")
    discount_rate_bps: int
    fee: Fen
    day_count_basis: int
    updated_at: datetime


class OfferList(BaseModel):
    items: list[OfferView]


class QuoteView(BaseModel):
    """What financing ``amount`` of a piece would cost at the financier's standing terms, funded now."""

    financier: str
    core_firm: str = Field(description="the piece's obligor")
    piece_id: int
    amount: Fen
    discount_rate_bps: int
    day_count_basis: int
    days: int = Field(description="days to maturity, counted up, as the contract counts them")
    discount: Fen = Field(description="amount × rate × days ÷ (basis × 10,000), rounded up (the ledger's favour)")
    fee: Fen
    price: Fen = Field(description="what the holder would receive: amount − discount − fee")
    as_of: int = Field(description="the block time the days are counted from (unix seconds)")


def _offer_view(record: FinancingOfferRecord) -> OfferView:
    return OfferView(
        financier=record.financier,
        core_firm=record.core_firm or None,
        discount_rate_bps=record.discount_rate_bps,
        fee=record.fee,
        day_count_basis=record.day_count_basis,
        updated_at=record.updated_at.replace(tzinfo=record.updated_at.tzinfo or UTC),  # SQLite keeps no zone
    )


@router.put("/financing-offers", response_model=OfferView)
def publish_offer(body: FinancingOffer, service: Service, caller: CurrentCaller) -> OfferView:
    """A financier publishes (or replaces) its standing terms, for one core firm's obligations or for any: the
    portal quotes them to suppliers before they ask (`GET /financing-quote`). Indicative: what binds is the
    terms the financier approves a request with, on chain."""
    require_role(caller, Role.FINANCIER)
    core_firm = body.core_firm or ""
    with service.sessions() as session, session.begin():
        record = session.scalars(
            select(FinancingOfferRecord).where(
                FinancingOfferRecord.financier == caller.address, FinancingOfferRecord.core_firm == core_firm
            )
        ).one_or_none()
        if record is None:
            record = FinancingOfferRecord(financier=caller.address, core_firm=core_firm)
            session.add(record)
        record.discount_rate_bps, record.fee = body.discount_rate_bps, body.fee
        record.day_count_basis, record.updated_at = body.day_count_basis, datetime.now(UTC)
        session.flush()
        return _offer_view(record)


@router.get("/financing-offers", response_model=OfferList)
def list_offers(
    service: Service,
    caller: CurrentCaller,
    financier: Annotated[Address | None, Query(description="one financier's terms")] = None,
) -> OfferList:
    """Financiers' standing terms (to every participant: they are offers to the market)."""
    query = select(FinancingOfferRecord).order_by(FinancingOfferRecord.financier, FinancingOfferRecord.core_firm)
    if financier is not None:
        query = query.where(FinancingOfferRecord.financier == financier)
    with service.sessions() as session:
        return OfferList(items=[_offer_view(record) for record in session.scalars(query).all()])


def quote(amount: int, rate_bps: int, fee: int, basis: int, due: int, now: int) -> tuple[int, int, int]:
    """(days, discount, price) as ``Receivables._price`` computes them: days to maturity counted up, the
    discount rounded up, nothing paid out when the charges reach the amount."""
    days = -(-max(due - now, 0) // 86_400)
    discount = -(-(amount * rate_bps * days) // (basis * 10_000))
    charges = discount + fee
    return days, discount, amount - charges if charges < amount else 0


@router.get("/financing-quote", response_model=QuoteView)
def financing_quote(
    service: Service,
    caller: CurrentCaller,
    piece_id: Annotated[QueryInt, Query(gt=0, lt=2**64, description="the piece to finance")],
    amount: Annotated[QueryInt, Query(gt=0, le=MAX_AMOUNT, description="fen to finance")],
    financier: Annotated[Address, Query(description="the financier asked")],
) -> QuoteView:
    """The price of financing ``amount`` of a piece with ``financier`` at its standing terms for the piece's
    obligor (else its terms for any core firm), funded now: shown to the holder before it asks. 404 when the
    financier published no terms that apply."""
    piece = _piece(service, piece_id)
    if not _may_see_piece(service, caller, piece):
        raise not_found(f"piece {piece_id}")
    if amount > piece.value:
        raise Problem(422, "validation", "Invalid request", f"the piece holds {piece.value} fen, less than {amount}")
    invoice = service.client.invoice(piece.slot_id)
    with service.sessions() as session:
        offers = {
            record.core_firm: record
            for record in session.scalars(
                select(FinancingOfferRecord).where(
                    FinancingOfferRecord.financier == financier,
                    FinancingOfferRecord.core_firm.in_((invoice.buyer, "")),
                )
            ).all()
        }
    offer = offers.get(invoice.buyer) or offers.get("")
    if offer is None:
        raise Problem(404, "no-offer", "No standing terms", f"{financier} published no terms for {invoice.buyer}")
    now = int(service.w3.eth.get_block("latest")["timestamp"])
    days, discount, price = quote(
        amount, offer.discount_rate_bps, offer.fee, offer.day_count_basis, invoice.due_date, now
    )
    return QuoteView(
        financier=financier,
        core_firm=invoice.buyer,
        piece_id=piece_id,
        amount=amount,
        discount_rate_bps=offer.discount_rate_bps,
        day_count_basis=offer.day_count_basis,
        days=days,
        discount=discount,
        fee=offer.fee,
        price=price,
        as_of=now,
    )


def request_view(request: FinancingRequest) -> FinancingRequestView:
    return FinancingRequestView(
        id=request.request_id,
        holder=request.holder,
        piece_id=request.piece_id,
        financier=request.financier,
        amount=request.amount,
        state=request.state.name.lower(),
        discount_rate_bps=request.discount_rate_bps,
        day_count_basis=request.day_count_basis,
        fee=request.fee,
        price=request.price or None,
        funded_piece_id=request.funded_piece_id or None,
        max_discount_rate_bps=request.max_discount_rate_bps,
        max_fee=request.max_fee,
        review="0x" + request.review.hex() if any(request.review) else None,
    )


def _request(service: LedgerService, caller: Caller, request_id: int) -> FinancingRequest:
    found = service.client.financing_request(path_id(request_id))
    if found.state is RequestState.NONE:
        raise not_found(f"financing request {request_id}")
    if not (sees_everything(caller) or caller.address in (found.holder, found.financier)):
        raise not_found(f"financing request {request_id}")
    return found


def _request_financing(service: LedgerService, caller: Caller, body: FinancingCreate) -> Call:
    _require_holder(service, caller, body.piece_id)
    args = {
        "piece_id": body.piece_id,
        "amount": body.amount,
        "financier": body.financier,
        "max_discount_rate_bps": body.max_discount_rate_bps,
        "max_fee": body.max_fee,
    }
    return Call("financing.request", caller.address, args)


@router.get("/financing-requests", response_model=Page[FinancingRequestItem])
@paging
def list_financing_requests(
    service: Service,
    caller: CurrentCaller,
    window: ListWindow,
    state: str | None = None,
    counterparty: Annotated[Address | None, Query(description="only requests this account made or is asked")] = None,
) -> Page[FinancingRequestItem] | Response:
    """Requests the caller made, or (a financier) those addressed to it, newest first; filtered by state and by
    counterparty (holder or financier)."""
    query = select(FinancingRequestRow)
    if state is not None:
        try:
            query = query.where(FinancingRequestRow.state == RequestState[state.upper()])
        except KeyError:
            raise Problem(422, "validation", "Invalid request", f"unknown state {state!r}") from None
    if counterparty is not None:
        query = query.where(
            or_(FinancingRequestRow.holder == counterparty, FinancingRequestRow.financier == counterparty)
        )
    parties = (
        ()
        if sees_everything(caller)
        else (FinancingRequestRow.holder == caller.address, FinancingRequestRow.financier == caller.address)
    )
    keys = (SortKey(FinancingRequestRow.id, descending=True),)
    return paged(service, query, keys, window, FinancingRequestItem, any_of=parties, convert=_with_obligor)


def _with_obligor(session: Session, rows: Sequence[FinancingRequestRow]) -> list[FinancingRequestItem]:
    """Requests as listed, each with its piece's obligor (and its name) and due date: one query for the page."""
    obligations = {
        piece: (buyer, name, due)
        for piece, buyer, name, due in session.execute(
            select(PieceRow.id, InvoiceRow.buyer, ParticipantRecord.name, InvoiceRow.due_date)
            .join(InvoiceRow, InvoiceRow.id == PieceRow.slot_id)
            .outerjoin(ParticipantRecord, ParticipantRecord.address == InvoiceRow.buyer)
            .where(PieceRow.id.in_({row.piece_id for row in rows}))
        )
    }
    items = []
    for row in rows:
        obligor, name, due = obligations[row.piece_id]
        fields = {**row_dict(row), "obligor": obligor, "obligor_name": name, "due_date": due}
        items.append(FinancingRequestItem.model_validate(fields))
    return items


@router.get("/financing-requests/{request_id}", response_model=FinancingRequestView, response_model_exclude_unset=True)
def get_financing_request(request_id: PathId, service: Service, caller: CurrentCaller) -> FinancingRequestView:
    """A financing request as on chain now and, while it is approved, the `quote` that funding would settle
    now: to its holder and its financier, the operator and the regulator (404 to anyone else)."""
    view = request_view(_request(service, caller, request_id))
    if view.state == "approved":
        discount, fee, price = service.client.quote_financing(request_id)
        view.quote = Quote(discount=discount, fee=fee, price=price)
    return view


def _as_financier(service: LedgerService, caller: Caller, request_id: int) -> FinancingRequest:
    require_role(caller, Role.FINANCIER)
    found = _request(service, caller, request_id)
    if found.financier != caller.address:
        raise Problem(403, "not-financier", "Forbidden", "this request is addressed to another financier")
    return found


def _approve_financing(service: LedgerService, caller: Caller, body: FinancingTerms, request_id: int) -> Call:
    _as_financier(service, caller, request_id)
    args = {
        "request_id": request_id,
        "discount_rate_bps": body.discount_rate_bps,
        "fee": body.fee,
        "day_count_basis": body.day_count_basis,
        "review": bytes.fromhex(body.review[2:]) if body.review is not None else bytes(32),
    }
    return Call("financing.approve", caller.address, args)


def _cancel_financing(service: LedgerService, caller: Caller, body: None, request_id: int) -> Call:
    found = _request(service, caller, request_id)
    if found.holder != caller.address:
        raise Problem(403, "not-holder", "Forbidden", "only the requesting holder cancels")
    return Call("financing.cancel", caller.address, {"request_id": request_id})


ACTIONS = (
    Action(
        "POST",
        "/invoices",
        "register_invoice",
        _register_invoice,
        "invoice.register",
        InvoiceCreate,
        description="Register an invoice on the buyer (supplier). Its key is the invoice's national identity (the "
        "20-digit e-invoice number, or an older VAT invoice's code and number, in ASCII digits): it goes on chain "
        "salted and hashed, and the same invoice can be registered once only, by any seller (409 "
        "`ReceivablesInvoiceAlreadyRegistered`).",
        links=(
            result_link("GetInvoice", "get", "/invoices/{invoice_id}", "invoice_id"),
            result_link("ConfirmInvoice", "post", "/invoices/{invoice_id}/confirm", "invoice_id"),
            result_link("RejectInvoice", "post", "/invoices/{invoice_id}/reject", "invoice_id"),
        ),
    ),
    Action(
        "POST",
        "/invoices/{invoice_id}/confirm",
        "confirm_invoice",
        _confirm_invoice,
        "invoice.confirm",
        links=(
            result_link("GetPiece", "get", "/receivables/{piece_id}", "piece_id"),
            result_link("TransferPiece", "post", "/receivables/{piece_id}/transfers", "piece_id"),
            result_link("RedeemPiece", "post", "/receivables/{piece_id}/redeem", "piece_id"),
        ),
    ),
    Action("POST", "/invoices/{invoice_id}/reject", "reject_invoice", _reject_invoice, "invoice.reject", Rejection),
    Action(
        "POST",
        "/receivables/{piece_id}/transfers",
        "transfer_piece",
        _transfer_piece,
        "receivable.transfer",
        PieceTransfer,
        description="Pay a supplier with part of a piece (a new piece recording its parent) or all of it (the piece"
        " itself): which, the contract decides as the transaction runs, so exactly `amount` moves or the payment is"
        " refused (`ReceivablesInsufficientValue` when the piece no longer holds it).",
        links=(result_link("GetPiece", "get", "/receivables/{piece_id}", "piece_id"),),
    ),
    Action(
        "POST",
        "/receivables/{piece_id}/redeem",
        "redeem_piece",
        act_on("receivable.redeem", "piece_id", _require_holder),
        "receivable.redeem",
    ),
    Action(
        "POST",
        "/obligations/{slot_id}/repayments",
        "repay_obligation",
        _repay_obligation,
        "obligation.repay",
        Repayment,
    ),
    Action(
        "POST",
        "/financing-requests",
        "request_financing",
        _request_financing,
        "financing.request",
        FinancingCreate,
        links=(
            result_link("GetRequest", "get", "/financing-requests/{request_id}", "request_id"),
            *(
                result_link(
                    f"{verb.capitalize()}Request", "post", f"/financing-requests/{{request_id}}/{verb}", "request_id"
                )
                for verb in ("approve", "fund", "decline", "cancel")
            ),
        ),
    ),
    Action(
        "POST",
        "/financing-requests/{request_id}/approve",
        "approve_financing",
        _approve_financing,
        "financing.approve",
        FinancingTerms,
    ),
    Action(
        "POST",
        "/financing-requests/{request_id}/fund",
        "fund_financing",
        act_on("financing.fund", "request_id", _as_financier),
        "financing.fund",
    ),
    Action(
        "POST",
        "/financing-requests/{request_id}/decline",
        "decline_financing",
        act_on("financing.decline", "request_id", _as_financier),
        "financing.decline",
    ),
    Action(
        "POST", "/financing-requests/{request_id}/cancel", "cancel_financing", _cancel_financing, "financing.cancel"
    ),
)
install(router, ACTIONS)
