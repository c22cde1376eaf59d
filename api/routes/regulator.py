"""The regulator's view and powers: the audit trail, the large-transaction report, freezes; and documents.

- ``GET /audit/events``: the raw event log of the index, newest first (regulator or operator).
- ``GET /reports/large-transactions``: large single movements and large daily totals (regulator or operator),
  the anti-money-laundering report of DOMAIN.md.
- ``GET /reports/payment-discipline``: per core firm, its confirmed obligations overdue and their days past due,
  its payments made late, and how late it confirmed its suppliers' invoices (regulator or operator).
- ``POST /freezes``, ``DELETE /freezes/{kind}:{target}``, ``GET /freezes``: freezing participants, receivable
  pieces and warehouse receipts on chain (the regulator; the list also to the operator).
- Documents: the routes of :mod:`api.documents`, included here.

Reads come from the index (they may trail the chain by a block); freezes go to the chain through
:func:`api.operations.perform` like every other state change, so ``Prefer: wait`` and ``Idempotency-Key`` work.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal

from eth_utils import keccak
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy import Text, cast, func, select

from api import documents
from api.actions import Action, Call, install
from api.auth import Caller, CurrentCaller, Service, require_role
from api.exports import ExportFormat, FormatQuery, Table, columns_of, export_response
from api.models import (
    DailyTotal,
    EventItem,
    FreezeItem,
    LargeFinancing,
    LargeMovement,
    LargeTransactionReport,
    NumberedPage,
    Page,
    PaymentDisciplineLine,
    PaymentDisciplineReport,
)
from api.problems import Problem, checksummed_address, jsonable
from api.routes.common import (
    IsoDate,
    JsonInt,
    ListWindow,
    PageNumber,
    PageSize,
    QueryInt,
    SortKey,
    decimal_integer,
    page_of,
    paged,
    paging,
)
from api.service import LedgerService
from api.store import ParticipantRecord
from ledger.index.models import (
    DepositTransferRow,
    EventRow,
    FinancingRequestRow,
    InvoiceRow,
    ParticipantRow,
    PieceRow,
    RepaymentRow,
    WarehouseReceiptRow,
)
from ledger.models import InvoiceState, RequestState, Role

router = APIRouter(tags=["regulator"])
router.include_router(documents.router)

FreezeKind = Literal["participant", "piece", "receipt"]
_UINT256_MAX = 2**256 - 1
_DAY = 86_400


def _require_supervisor(caller: Caller) -> None:
    require_role(caller, Role.REGULATOR, Role.OPERATOR)


def _invalid(detail: str) -> Problem:
    return Problem(422, "validation", "Invalid request", detail)


# -- the audit trail --------------------------------------------------------------------------------------------


@router.get("/audit/events", response_model=Page[EventItem])
@paging
def audit_events(
    service: Service,
    caller: CurrentCaller,
    window: ListWindow,
    contract: str | None = Query(None, description="registry, token, receivables or receipts"),
    name: str | None = Query(None, description="the event's name, e.g. ParticipantFrozen"),
    participant: str | None = Query(None, description="an address appearing among the event's arguments"),
    from_block: Annotated[QueryInt | None, Query(ge=0)] = None,
    to_block: Annotated[QueryInt | None, Query(ge=0)] = None,
    from_time: Annotated[QueryInt | None, Query(ge=0, description="unix seconds, inclusive")] = None,
    to_time: Annotated[QueryInt | None, Query(ge=0, description="unix seconds, inclusive")] = None,
) -> Page[EventItem] | Response:
    """Every event the ledger's contracts emitted, as the chain said it (from the index), newest first: to the
    regulator and the operator."""
    _require_supervisor(caller)
    query = select(EventRow)
    if contract is not None:
        query = query.where(EventRow.contract == contract)
    if name is not None:
        query = query.where(EventRow.name == name)
    if participant is not None:
        address = checksummed_address(participant, "participant").lower()
        query = query.where(func.lower(cast(EventRow.args, Text)).contains(address, autoescape=True))
    if from_block is not None:
        query = query.where(EventRow.block_number >= from_block)
    if to_block is not None:
        query = query.where(EventRow.block_number <= to_block)
    if from_time is not None:
        query = query.where(EventRow.block_timestamp >= from_time)
    if to_time is not None:
        query = query.where(EventRow.block_timestamp <= to_time)
    keys = (SortKey(EventRow.block_number, descending=True), SortKey(EventRow.log_index, descending=True))
    return paged(service, query, keys, window, EventItem)


# -- the large-transaction report ---------------------------------------------------------------------------------


def _day_start(value: date) -> int:
    return int(datetime.combine(value, time(0, 0), tzinfo=UTC).timestamp())


def _utc_date(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).date().isoformat()


def _movement_kind(row: DepositTransferRow) -> str:
    if row.sender is None:
        return "deposit"
    if row.recipient is None:
        return "withdrawal"
    return "transfer"


def _transfer_item(row: DepositTransferRow) -> LargeMovement:
    return LargeMovement(
        kind=_movement_kind(row),
        time=row.block_timestamp,
        date=_utc_date(row.block_timestamp),
        block_number=row.block_number,
        log_index=row.log_index,
        tx_hash=row.tx_hash,
        sender=row.sender,
        recipient=row.recipient,
        amount=jsonable(row.amount),
        bank_reference=row.bank_reference,
        agent=row.agent,
    )


def _financing_item(row: FinancingRequestRow) -> LargeFinancing:
    funded_at = row.closed_at or 0
    return LargeFinancing(
        kind="financing",
        time=funded_at,
        date=_utc_date(funded_at),
        request_id=row.id,
        piece_id=row.piece_id,
        holder=row.holder,
        financier=row.financier,
        face_amount=jsonable(row.amount),
        amount=jsonable(row.price),
        discount=jsonable(row.discount),
        fee=jsonable(row.fee),
        funded_piece_id=row.funded_piece_id,
    )


@router.get("/reports/large-transactions", response_model=LargeTransactionReport)
def large_transactions(
    service: Service,
    caller: CurrentCaller,
    date_from: Annotated[IsoDate | None, Query(description="first UTC day reported (inclusive)")] = None,
    date_to: Annotated[IsoDate | None, Query(description="last UTC day reported (inclusive)")] = None,
    single_threshold: Annotated[
        QueryInt | None, Query(gt=0, description="fen; default the setting (50,000.00 CNY)")
    ] = None,
    daily_threshold: Annotated[
        QueryInt | None, Query(gt=0, description="fen; default the setting (2,000,000.00 CNY)")
    ] = None,
    export: FormatQuery = ExportFormat.JSON,
    part: Annotated[
        Literal["single", "daily"] | None,
        Query(
            description="with `format=csv`: the table in the file (default `single`); with `format=xlsx`: the "
            "one sheet (default both, a sheet each)"
        ),
    ] = None,
) -> LargeTransactionReport | Response:
    """Large-value transactions (DOMAIN.md, "Regulatory reporting"), from the index, amounts in fen:

    - ``single``: every deposit-token movement (deposit, withdrawal, transfer) and every funded financing
      (its price) at or above the single threshold, newest first;
    - ``daily``: each participant's total of deposit-token amounts sent and received in one UTC day, where
      that total is at or above the daily threshold (a financing's price moves as a deposit-token transfer,
      so it counts there).

    The thresholds default to the service's settings; the regulator (or operator) may pass others. To the
    regulator and the operator only. As a file (`format=csv` or `xlsx`), each table as its own rows with a totals
    row (see docs/reports.md): `single` (the columns of both kinds of item) and `daily`.
    """
    _require_supervisor(caller)
    if date_from is not None and date_to is not None and date_from > date_to:
        raise _invalid("date_from is after date_to")
    single = single_threshold or service.settings.large_single_threshold
    daily = daily_threshold or service.settings.large_daily_threshold
    start = _day_start(date_from) if date_from is not None else None
    end = _day_start(date_to + timedelta(days=1)) if date_to is not None else None  # exclusive

    transfers = select(DepositTransferRow).order_by(DepositTransferRow.block_number, DepositTransferRow.log_index)
    financings = select(FinancingRequestRow).where(
        FinancingRequestRow.state == RequestState.FUNDED,
        FinancingRequestRow.price.is_not(None),
        FinancingRequestRow.price >= single,
    )
    if start is not None:
        transfers = transfers.where(DepositTransferRow.block_timestamp >= start)
        financings = financings.where(FinancingRequestRow.closed_at >= start)
    if end is not None:
        transfers = transfers.where(DepositTransferRow.block_timestamp < end)
        financings = financings.where(FinancingRequestRow.closed_at < end)

    items: list[LargeMovement | LargeFinancing] = []
    # (participant, day) -> [sent, received, movements]
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    with service.sessions() as session:
        for row in session.scalars(transfers.execution_options(yield_per=1000)):
            amount = int(row.amount)
            day = _utc_date(row.block_timestamp)
            if amount >= single:
                items.append(_transfer_item(row))
            if row.sender is not None:
                entry = totals[(row.sender, day)]
                entry[0] += amount
                entry[2] += 1
            if row.recipient is not None:
                entry = totals[(row.recipient, day)]
                entry[1] += amount
                entry[2] += 1
        items.extend(_financing_item(row) for row in session.scalars(financings))
    items.sort(key=lambda item: item.time, reverse=True)
    days = [
        DailyTotal(
            participant=participant,
            date=day,
            sent=jsonable(sent),
            received=jsonable(received),
            total=jsonable(sent + received),
            movements=count,
        )
        for (participant, day), (sent, received, count) in totals.items()
        if sent + received >= daily
    ]
    days.sort(key=lambda entry: (entry.date, entry.participant), reverse=True)
    if export is not ExportFormat.JSON:
        tables = [
            Table("single", columns_of(LargeMovement, LargeFinancing), (i.model_dump(mode="json") for i in items)),
            Table("daily", columns_of(DailyTotal), (d.model_dump(mode="json") for d in days)),
        ]
        if part is not None:
            tables = [table for table in tables if table.name == part]
        return export_response(export, "large-transactions", tables)
    return LargeTransactionReport(
        currency="CNY",
        date_from=date_from,
        date_to=date_to,
        single_threshold=single,
        daily_threshold=daily,
        single=items,
        daily=days,
    )


# -- the payment-discipline report --------------------------------------------------------------------------------


def _days_past_due(now: int, due: int) -> int:
    """Whole days from the due date to ``now``, a day begun counting as a day (1 from the first second late)."""
    return -(-(now - due) // _DAY)


def _nearest(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` to the nearest integer, halves up (0 when ``denominator`` is 0)."""
    return (2 * numerator + denominator) // (2 * denominator) if denominator else 0


class _Discipline:
    """One core firm's counts and sums while the report reads the index."""

    def __init__(self) -> None:
        self.confirmed = self.outstanding = self.overdue = self.defaulted = self.paid_late = 0
        self.outstanding_amount = self.overdue_amount = self.repaid_late_amount = 0
        self.max_days = self.weighted_days = 0
        self.registered = self.confirmed_late = self.confirmed_late_amount = 0
        self.awaiting = self.awaiting_late = self.awaiting_late_amount = 0

    def line(self, firm: str, name: str | None) -> PaymentDisciplineLine:
        return PaymentDisciplineLine(
            core_firm=firm,
            name=name,
            confirmed=self.confirmed,
            outstanding=self.outstanding,
            outstanding_amount=jsonable(self.outstanding_amount),
            overdue=self.overdue,
            overdue_amount=jsonable(self.overdue_amount),
            max_days_past_due=self.max_days,
            average_days_past_due=_nearest(self.weighted_days, self.overdue_amount),
            defaulted=self.defaulted,
            paid_late=self.paid_late,
            repaid_late_amount=jsonable(self.repaid_late_amount),
            registered=self.registered,
            confirmed_late=self.confirmed_late,
            confirmed_late_amount=jsonable(self.confirmed_late_amount),
            confirmed_late_share_bps=_nearest(10_000 * self.confirmed_late, self.registered),
            awaiting=self.awaiting,
            awaiting_late=self.awaiting_late,
            awaiting_late_amount=jsonable(self.awaiting_late_amount),
            late_share_bps=_nearest(10_000 * (self.confirmed_late + self.awaiting_late), self.registered),
        )


@router.get("/reports/payment-discipline", response_model=PaymentDisciplineReport)
def payment_discipline(
    service: Service,
    caller: CurrentCaller,
    core_firm: Annotated[str | None, Query(description="only this core firm (its address)")] = None,
    confirmation_days: Annotated[
        QueryInt | None,
        Query(
            gt=0,
            le=3650,
            description="days after registration beyond which a confirmation is late; default the setting (30)",
        ),
    ] = None,
    export: FormatQuery = ExportFormat.JSON,
) -> PaymentDisciplineReport | Response:
    """The core firms' payment discipline at the chain's time (the timestamp of its latest block, not the
    service's clock), from the index, amounts in fen, a day 86,400 seconds. For each core firm (each buyer of an
    invoice):

    - its confirmed obligations not paid in full, and of them those past their due date: how many, what they
      still owe, the days past due of the oldest and their average weighted by what each still owes (a day begun
      counts as a day; the average to the nearest day, halves up);
    - the obligations it paid in full after the due date, and everything it paid after a due date;
    - the confirmation delay: of the invoices its suppliers registered with it, how many it confirmed more than
      `confirmation_days` after registration, and how many still await its confirmation longer than that, with
      their shares of all registered in basis points (to the nearest, halves up).

    To the regulator and the operator only. As a file (`format=csv` or `xlsx`), one row per core firm with a totals
    row (see docs/reports.md)."""
    _require_supervisor(caller)
    firm_filter = None if core_firm is None else checksummed_address(core_firm, "core_firm")
    days = confirmation_days or service.settings.late_confirmation_days
    late_after = days * _DAY
    now = service.client.chain_time()

    invoices = select(
        InvoiceRow.buyer,
        InvoiceRow.state,
        InvoiceRow.amount,
        InvoiceRow.repaid,
        InvoiceRow.due_date,
        InvoiceRow.registered_at,
        InvoiceRow.confirmed_at,
    )
    # every payment made after its obligation's due date, with the obligation's state and what it still owes
    late_payments = (
        select(InvoiceRow.buyer, InvoiceRow.state, RepaymentRow.amount, RepaymentRow.outstanding)
        .join(InvoiceRow, InvoiceRow.id == RepaymentRow.slot_id)
        .where(RepaymentRow.block_timestamp > InvoiceRow.due_date)
    )
    if firm_filter is not None:
        invoices = invoices.where(InvoiceRow.buyer == firm_filter)
        late_payments = late_payments.where(InvoiceRow.buyer == firm_filter)

    firms: dict[str, _Discipline] = defaultdict(_Discipline)
    with service.sessions() as session:
        for buyer, state, amount, repaid, due, registered_at, confirmed_at in session.execute(
            invoices.execution_options(yield_per=1000)
        ):
            firm = firms[buyer]
            amount, due = int(amount), int(due)
            firm.registered += 1
            if confirmed_at is not None:
                firm.confirmed += 1
                if confirmed_at - registered_at > late_after:
                    firm.confirmed_late += 1
                    firm.confirmed_late_amount += amount
            elif state == InvoiceState.REGISTERED:
                firm.awaiting += 1
                if now - registered_at > late_after:
                    firm.awaiting_late += 1
                    firm.awaiting_late_amount += amount
            owed = amount - int(repaid)
            if state in (InvoiceState.CONFIRMED, InvoiceState.DEFAULTED) and owed > 0:
                firm.outstanding += 1
                firm.outstanding_amount += owed
                firm.defaulted += state == InvoiceState.DEFAULTED
                if now > due:
                    late = _days_past_due(now, due)
                    firm.overdue += 1
                    firm.overdue_amount += owed
                    firm.max_days = max(firm.max_days, late)
                    firm.weighted_days += late * owed
        for buyer, state, amount, outstanding in session.execute(late_payments):
            firm = firms[buyer]
            firm.repaid_late_amount += int(amount)
            if int(outstanding) == 0 and state == InvoiceState.PAID:
                firm.paid_late += 1  # the payment that settled it came after the due date
        known = select(ParticipantRecord.address, ParticipantRecord.name).where(
            ParticipantRecord.address.in_(list(firms))
        )
        names = {address: name for address, name in session.execute(known)}
    lines = sorted(
        (firm.line(address, names.get(address)) for address, firm in firms.items()),
        key=lambda line: (-int(line.overdue_amount), line.core_firm),
    )
    if export is not ExportFormat.JSON:
        rows = (line.model_dump(mode="json") for line in lines)
        table = Table("payment-discipline", columns_of(PaymentDisciplineLine), rows)
        return export_response(export, "payment-discipline", [table])
    return PaymentDisciplineReport(currency="CNY", chain_time=now, confirmation_days=days, firms=lines)


# -- freezes -----------------------------------------------------------------------------------------------------


class FreezeCreate(BaseModel):
    kind: FreezeKind
    target: str | JsonInt = Field(
        description="the participant's address, or the piece's or receipt's id (a JSON integer, or a string of "
        "decimal ASCII digits or 0x and hex digits)"
    )
    reason: str = Field(min_length=1, max_length=1000, description="kept off chain; its keccak-256 goes on chain")


_HEX_ID = re.compile(r"0x[0-9a-fA-F]{1,64}")


def _target(kind: str, target: str | int) -> str | int:
    """The chain's value for ``target``: a checksummed address, or a uint256 id (decimal, or 0x hex)."""
    if kind == "participant":
        if not isinstance(target, str):
            raise _invalid("a participant is frozen by its address")
        return checksummed_address(target, "participant")
    if kind not in ("piece", "receipt"):
        raise _invalid(f"unknown kind {kind!r}: participant, piece or receipt")
    if isinstance(target, int):
        number = target
    elif _HEX_ID.fullmatch(target):
        number = int(target[2:], 16)
    else:
        try:
            number = int(decimal_integer(target))  # type: ignore[call-overload]
        except ValueError:
            raise _invalid(f"a {kind} is named by its id, not {target!r}") from None
    if not 0 < number <= _UINT256_MAX:
        raise _invalid(f"no {kind} has id {number}")
    return number


def _freeze_id(kind: str, target: str | int) -> str:
    return f"{kind}:{target}"


_FREEZE_ARGUMENT = {"participant": "account", "piece": "piece_id", "receipt": "receipt_id"}
"""The argument of each freeze operation that names what it freezes."""


def _freeze(service: LedgerService, caller: Caller, body: FreezeCreate) -> Call:
    require_role(caller, Role.REGULATOR)
    target = _target(body.kind, body.target)
    args = {_FREEZE_ARGUMENT[body.kind]: target, "reason": keccak(text=body.reason)}
    return Call(f"freeze.{body.kind}", caller.address, args)


def _lift(service: LedgerService, caller: Caller, kind: str, raw: str) -> Call:
    require_role(caller, Role.REGULATOR)
    target = _target(kind, raw)
    return Call(f"unfreeze.{kind}", caller.address, {_FREEZE_ARGUMENT[kind]: target})


def _unfreeze(service: LedgerService, caller: Caller, body: None, freeze_id: str) -> Call:
    kind, separator, raw = freeze_id.partition(":")
    if not separator or not raw:
        raise _invalid("a freeze id is <kind>:<target>, e.g. piece:12")
    return _lift(service, caller, kind, raw)


def _unfreeze_by_parts(service: LedgerService, caller: Caller, body: None, kind: str, target: str) -> Call:
    return _lift(service, caller, kind, target)


ACTIONS = (
    Action(
        "POST",
        "/freezes",
        "freeze",
        _freeze,
        body=FreezeCreate,
        description="Freeze a participant (no deposit-token movement to or from it, no new business), a receivable "
        "piece or a warehouse receipt, on chain. Lift it with `DELETE /freezes/{kind}:{target}`.\n\n"
        "Operations `freeze.participant`, `freeze.piece`, `freeze.receipt`.",
    ),
    Action(
        "DELETE",
        "/freezes/{freeze_id}",
        "unfreeze",
        _unfreeze,
        params={"freeze_id": str},
        description="Lift a freeze. The freeze's id is `<kind>:<target>`, as `GET /freezes` lists it: "
        "`DELETE /freezes/participant:0x70997970C51812dc3A010C7d01b50e0d17dc79C8`, `DELETE /freezes/piece:12`, "
        "`DELETE /freezes/receipt:<id>`. Lifting what is not frozen is a 409 with the contract's error.\n\n"
        "Operations `unfreeze.participant`, `unfreeze.piece`, `unfreeze.receipt`.",
    ),
    Action(
        "DELETE",
        "/freezes/{kind}/{target}",
        "unfreeze_by_parts",
        _unfreeze_by_parts,
        params={"kind": str, "target": str},
        description="`DELETE /freezes/piece/12`: the same as `DELETE /freezes/piece:12`.",
        include_in_schema=False,
    ),
)
install(router, ACTIONS)


_FREEZE_EVENTS = {"ParticipantFrozen": "participant", "PieceFrozen": "piece", "ReceiptFrozen": "receipt"}
_FREEZE_TARGET_ARG = {"participant": "account", "piece": "pieceId", "receipt": "receiptId"}


@router.get("/freezes", response_model=NumberedPage[FreezeItem])
def list_freezes(
    service: Service,
    caller: CurrentCaller,
    page: PageNumber = 1,
    size: PageSize = 50,
    kind: Annotated[FreezeKind | None, Query()] = None,
    export: FormatQuery = ExportFormat.JSON,
) -> NumberedPage[FreezeItem] | Response:
    """What is frozen now (from the index), with who froze it, when, and the hash of the reason: to the
    regulator and the operator. Participants first (by account), then pieces and receipts (by id); paged by
    number only (a file, `format=csv` or `xlsx`, holds every one)."""
    _require_supervisor(caller)
    with service.sessions() as session:
        frozen: list[tuple[str, str | int]] = []
        if kind in (None, "participant"):
            accounts = session.scalars(
                select(ParticipantRow.account).where(ParticipantRow.frozen.is_(True)).order_by(ParticipantRow.account)
            )
            frozen.extend(("participant", account) for account in accounts)
        if kind in (None, "piece"):
            pieces = session.scalars(
                select(PieceRow.id).where(PieceRow.frozen.is_(True), PieceRow.burnt.is_(False)).order_by(PieceRow.id)
            )
            frozen.extend(("piece", piece) for piece in pieces)
        if kind in (None, "receipt"):
            receipts = session.scalars(
                select(WarehouseReceiptRow.id)
                .where(WarehouseReceiptRow.frozen.is_(True))
                .order_by(WarehouseReceiptRow.id)
            )
            frozen.extend(("receipt", int(receipt)) for receipt in receipts)
        latest: dict[str, EventRow] = {}
        if frozen:
            names = [n for n, k in _FREEZE_EVENTS.items() if kind in (None, k)]
            events = session.scalars(
                select(EventRow)
                .where(EventRow.name.in_(names))
                .order_by(EventRow.block_number, EventRow.log_index)
                .execution_options(yield_per=1000)
            )
            for event in events:
                event_kind = _FREEZE_EVENTS[event.name]
                value = event.args.get(_FREEZE_TARGET_ARG[event_kind])
                if value is not None:
                    latest[_freeze_id(event_kind, int(value) if event_kind != "participant" else value)] = event
    items = []
    listed = frozen if export is not ExportFormat.JSON else frozen[(page - 1) * size : page * size]
    for frozen_kind, target in listed:
        identifier = _freeze_id(frozen_kind, target)
        last = latest.get(identifier)
        items.append(
            FreezeItem(
                id=identifier,
                kind=frozen_kind,
                target=jsonable(target),
                reason_hash=None if last is None else last.args.get("reason"),
                frozen_by=None if last is None else last.args.get("regulator"),
                frozen_at=None if last is None else last.block_timestamp,
                block_number=None if last is None else last.block_number,
                tx_hash=None if last is None else last.tx_hash,
            )
        )
    if export is not ExportFormat.JSON:
        rows = (item.model_dump(mode="json") for item in items)
        return export_response(export, "freezes", [Table("freezes", columns_of(FreezeItem), rows)])
    return page_of(items, page, size, len(frozen))
