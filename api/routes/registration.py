"""Registration in 中登网 (动产和权利担保统一登记): recording it, the filing's fields, the unregistered report.

Since 1 January 2021 a receivable's pledge or transfer (factoring included) and a pledge of movable property such
as a warehouse receipt are registered by the secured party in the unified registry run by the credit reference
centre of the People's Bank of China (国务院《关于实施动产和权利担保统一登记的决定》, 国发〔2020〕18号; 中国人民银行
《动产和权利担保统一登记办法》, 2021年第7号令). The ledger cannot see the registry: the financier registers there and
records here, on chain, the registration number and date it got (see docs/rules.md#registration).

- ``POST /financing-requests/{request_id}/registration`` and ``POST /pledges/{pledge_id}/registration``: the
  financier records the registration of its funded financing or active pledge, once.
- ``GET /financing-requests/{request_id}/registration-filing`` and ``GET /pledges/{pledge_id}/registration-filing``:
  what the financier types into 中登网, read from what the ledger knows (JSON, or one row as CSV or XLSX).
- ``GET /reports/unregistered``: every funded financing and active pledge still unregistered after the grace
  period (the regulator and the operator; CSV and XLSX like the other reports).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.actions import Action, Call, install
from api.auth import Caller, CurrentCaller, Service, require_role
from api.exports import ExportFormat, FormatQuery, Table, columns_of, export_response
from api.models import Fen
from api.problems import Problem
from api.routes.common import (
    IsoDate,
    PathId,
    QueryInt,
    due_timestamp,
    labels_of,
    not_found,
    path_id,
    receipt_labels,
    sees_everything,
)
from api.service import LedgerService
from api.store import ParticipantRecord
from ledger.index.models import FinancingRequestRow, InvoiceRow, PieceRow, PledgeRow, WarehouseReceiptRow
from ledger.models import InvoiceState, PledgeState, RequestState, Role

router = APIRouter(tags=["registration"])

_DAY = 86_400
NUMBER_DIGITS = 20
"""A 中登网 initial registration number (初始登记编号) as its registration certificate prints it: 20 ASCII digits."""


class RegistrationRecord(BaseModel):
    number: str = Field(
        description="the 中登网 initial registration number (初始登记编号): 20 ASCII digits, as on the registration"
        " certificate (登记证明)"
    )
    registered_on: IsoDate = Field(description="the registration's date (YYYY-MM-DD, UTC), not after today")

    @field_validator("number")
    @classmethod
    def _number(cls, value: str) -> str:
        if len(value) != NUMBER_DIGITS or not value.isascii() or not value.isdigit():
            raise ValueError(f"a 中登网 registration number is {NUMBER_DIGITS} ASCII digits")
        return value

    def arguments(self) -> dict[str, Any]:
        return {
            "number": self.number.encode("ascii").ljust(32, b"\0"),
            "registered_at": due_timestamp(self.registered_on),
        }


def _registration_args(service: LedgerService, body: RegistrationRecord) -> dict[str, Any]:
    args = body.arguments()
    now = service.client.chain_time()
    if args["registered_at"] > now:
        raise Problem(422, "validation", "Invalid request", "the registration's date is after today (chain time)")
    return args


def _record_financing(service: LedgerService, caller: Caller, body: RegistrationRecord, request_id: int) -> Call:
    require_role(caller, Role.FINANCIER)
    found = service.client.financing_request(path_id(request_id))
    if found.state is RequestState.NONE or caller.address not in (found.holder, found.financier):
        raise not_found(f"financing request {request_id}")
    if found.financier != caller.address:
        raise Problem(403, "not-financier", "Forbidden", "this request is addressed to another financier")
    return Call("financing.register", caller.address, {"request_id": request_id, **_registration_args(service, body)})


def _record_pledge(service: LedgerService, caller: Caller, body: RegistrationRecord, pledge_id: int) -> Call:
    require_role(caller, Role.FINANCIER)
    found = service.client.pledge_loan(path_id(pledge_id))
    if found.state is PledgeState.NONE or caller.address not in (found.borrower, found.financier):
        raise not_found(f"pledge {pledge_id}")
    if found.financier != caller.address:
        raise Problem(403, "not-financier", "Forbidden", "this pledge is another financier's")
    return Call("pledge.register", caller.address, {"pledge_id": pledge_id, **_registration_args(service, body)})


# -- the filing -----------------------------------------------------------------------------------------------


class RegistrationFiling(BaseModel):
    """What a financier types into 中登网 for one financing or pledge, from what the ledger knows; one flat row."""

    kind: str = Field(description="`financing` (a receivable's transfer, 保理) or `pledge` (a warehouse receipt's)")
    id: int = Field(description="the financing request's or the pledge's id")
    registration_type: str = Field(description="the 中登网 登记类型: 应收账款转让（保理） or 动产质押（仓单）")
    secured_party: str = Field(description="担保权人 / 受让人: the financier's address")
    secured_party_name: str | None = Field(description="its name, where this service onboarded it")
    secured_party_credit_code: str | None = Field(description="its unified social credit code (统一社会信用代码)")
    grantor: str = Field(description="担保人 / 出让人: the supplier (transferor) or the borrower (pledgor)")
    grantor_name: str | None
    grantor_credit_code: str | None
    obligor: str | None = Field(description="应收账款债务人: the core firm that owes the receivable; null for a pledge")
    obligor_name: str | None
    collateral: str = Field(description="财产描述: the collateral in words (Chinese), from the ledger's records")
    invoice_number: str | None = Field(description="the invoice's number, where this gateway was told it")
    receipt_id: str | None = Field(description="the warehouse receipt's id (decimal), for a pledge")
    lot_number: str | None = Field(description="the lot's number, where this gateway was told it")
    quantity: str | None = Field(description="the receipt's quantity in its unit, for a pledge")
    unit: str | None
    collateral_amount: Fen = Field(description="the receivable's amount transferred, or the receipt's valuation, fen")
    secured_amount: Fen = Field(description="主债权金额: the price paid for the receivable, or the principal lent, fen")
    currency: str
    maturity: int = Field(description="the receivable's due date, or the loan's, Unix seconds (UTC)")
    funded_at: int | None = Field(description="when the financing or the loan was funded, Unix seconds")
    period_months: int = Field(
        description="登记期限 in months (1 to 360, the registry's range): from today to the maturity, rounded up"
    )
    registration_number: str | None = Field(description="the 初始登记编号 recorded on chain; null while unregistered")
    registered_at: int | None = Field(description="the registration's date as recorded, Unix seconds")


def _period_months(now: int, maturity: int) -> int:
    start, end = (datetime.fromtimestamp(t, UTC).date() for t in (now, max(now, maturity)))
    months = (end.year - start.year) * 12 + end.month - start.month + (end.day > start.day)
    return min(max(months, 1), 360)


def _parties(session: Session, *addresses: str | None) -> dict[str, ParticipantRecord]:
    wanted = [a for a in addresses if a]
    found = session.scalars(select(ParticipantRecord).where(ParticipantRecord.address.in_(wanted)))
    return {record.address: record for record in found}


def _party(parties: dict[str, ParticipantRecord], address: str) -> tuple[str | None, str | None]:
    record = parties.get(address)
    return (record.name, record.credit_code) if record is not None else (None, None)


def _yuan(fen: int) -> str:
    return f"{fen // 100:,}.{fen % 100:02d}"


def _day(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).date().isoformat()


def _financing_filing(session: Session, row: FinancingRequestRow, now: int) -> RegistrationFiling:
    piece = session.get(PieceRow, row.piece_id)
    invoice = session.get(InvoiceRow, piece.slot_id) if piece is not None else None
    if invoice is None:  # the index has every funded request's piece and obligation; a trailing index has not
        raise Problem(503, "index-behind", "Index behind", "the index does not hold this request's obligation yet")
    parties = _parties(session, row.financier, row.holder, invoice.buyer)
    label = labels_of(session, [invoice.key_hash]).get(invoice.key_hash.lower())
    number = label.label if label is not None else None
    (financier_name, financier_code), (holder_name, holder_code) = (
        _party(parties, row.financier),
        _party(parties, row.holder),
    )
    obligor_name, _ = _party(parties, invoice.buyer)
    amount = int(row.amount)
    collateral = (
        f"应收账款：发票{number or '#' + str(invoice.id)}项下对{obligor_name or invoice.buyer}的应收账款"
        f"（票面金额人民币{_yuan(int(invoice.amount))}元）中的人民币{_yuan(amount)}元，到期日{_day(int(invoice.due_date))}"
    )
    return RegistrationFiling(
        kind="financing",
        id=row.id,
        registration_type="应收账款转让（保理）",
        secured_party=row.financier,
        secured_party_name=financier_name,
        secured_party_credit_code=financier_code,
        grantor=row.holder,
        grantor_name=holder_name,
        grantor_credit_code=holder_code,
        obligor=invoice.buyer,
        obligor_name=obligor_name,
        collateral=collateral,
        invoice_number=number,
        receipt_id=None,
        lot_number=None,
        quantity=None,
        unit=None,
        collateral_amount=amount,
        secured_amount=int(row.price or 0),
        currency=invoice.currency,
        maturity=int(invoice.due_date),
        funded_at=row.closed_at if row.state is RequestState.FUNDED else None,
        period_months=_period_months(now, int(invoice.due_date)),
        registration_number=row.registration_number,
        registered_at=row.registered_at,
    )


def _pledge_filing(session: Session, row: PledgeRow, now: int) -> RegistrationFiling:
    receipt = session.get(WarehouseReceiptRow, row.receipt_id)
    if receipt is None:
        raise Problem(503, "index-behind", "Index behind", "the index does not hold this pledge's receipt yet")
    parties = _parties(session, row.financier, row.borrower, receipt.warehouse)
    lot, goods = receipt_labels(session, [receipt])[receipt.id]
    (financier_name, financier_code), (borrower_name, borrower_code) = (
        _party(parties, row.financier),
        _party(parties, row.borrower),
    )
    warehouse_name, _ = _party(parties, receipt.warehouse)
    collateral = (
        f"仓单质押：{warehouse_name or receipt.warehouse}签发的仓单#{receipt.id}"
        f"{'（货位/批次' + lot + '）' if lot else ''}项下{goods + '，' if goods else '货物'}"
        f"{receipt.quantity} {receipt.unit}，估值人民币{_yuan(int(receipt.valuation))}元"
    )
    return RegistrationFiling(
        kind="pledge",
        id=row.id,
        registration_type="动产质押（仓单）",
        secured_party=row.financier,
        secured_party_name=financier_name,
        secured_party_credit_code=financier_code,
        grantor=row.borrower,
        grantor_name=borrower_name,
        grantor_credit_code=borrower_code,
        obligor=None,
        obligor_name=None,
        collateral=collateral,
        invoice_number=None,
        receipt_id=str(receipt.id),
        lot_number=lot,
        quantity=str(receipt.quantity),
        unit=receipt.unit,
        collateral_amount=int(receipt.valuation),
        secured_amount=int(row.principal_requested),
        currency="CNY",
        maturity=int(row.due_date),
        funded_at=row.funded_at,
        period_months=_period_months(now, int(row.due_date)),
        registration_number=row.registration_number,
        registered_at=row.registered_at,
    )


def _filing_response(export: ExportFormat, name: str, filing: RegistrationFiling) -> RegistrationFiling | Response:
    if export is ExportFormat.JSON:
        return filing
    table = Table(name, columns_of(RegistrationFiling), [filing.model_dump(mode="json")], totals=False)
    return export_response(export, name, [table])


@router.get("/financing-requests/{request_id}/registration-filing", response_model=RegistrationFiling)
def financing_registration_filing(
    request_id: PathId, service: Service, caller: CurrentCaller, export: FormatQuery = ExportFormat.JSON
) -> RegistrationFiling | Response:
    """The fields a financier files in 中登网 for a funded financing (a receivable's transfer, 保理): the parties,
    the receivable, the amounts, the maturity and the registration period, and the registration once recorded.
    Read from the index. To the request's financier and holder, the operator and the regulator (404 to anyone
    else, and for a request not funded)."""
    with service.sessions() as session:
        row = session.get(FinancingRequestRow, path_id(request_id))
        visible = row is not None and (sees_everything(caller) or caller.address in (row.holder, row.financier))
        if row is None or not visible or row.state is not RequestState.FUNDED:
            raise not_found(f"funded financing request {request_id}")
        filing = _financing_filing(session, row, service.client.chain_time())
    return _filing_response(export, f"registration-filing-financing-{request_id}", filing)


@router.get("/pledges/{pledge_id}/registration-filing", response_model=RegistrationFiling)
def pledge_registration_filing(
    pledge_id: PathId, service: Service, caller: CurrentCaller, export: FormatQuery = ExportFormat.JSON
) -> RegistrationFiling | Response:
    """The fields a financier files in 中登网 for a funded pledge of a warehouse receipt (动产质押): the parties,
    the receipt and its goods, the amounts, the maturity and the registration period, and the registration once
    recorded. Read from the index. To the pledge's financier and borrower, the operator and the regulator (404
    to anyone else, and for a pledge never funded)."""
    with service.sessions() as session:
        row = session.get(PledgeRow, path_id(pledge_id))
        visible = row is not None and (sees_everything(caller) or caller.address in (row.borrower, row.financier))
        if row is None or not visible or row.funded_at is None:
            raise not_found(f"funded pledge {pledge_id}")
        filing = _pledge_filing(session, row, service.client.chain_time())
    return _filing_response(export, f"registration-filing-pledge-{pledge_id}", filing)


# -- the unregistered report ------------------------------------------------------------------------------------


class UnregisteredItem(BaseModel):
    """A funded financing or an active pledge whose registration its financier has not recorded in time."""

    kind: str = Field(description="`financing` or `pledge`")
    id: int
    financier: str
    financier_name: str | None
    grantor: str = Field(description="the supplier who sold the receivable, or the borrower")
    grantor_name: str | None
    amount: Fen = Field(description="the receivable's amount financed, or the principal lent, fen")
    funded_at: int
    days_unregistered: int = Field(description="whole days since funding (a day begun counts)")


class UnregisteredReport(BaseModel):
    chain_time: int
    grace_days: int
    items: list[UnregisteredItem]


@router.get("/reports/unregistered", response_model=UnregisteredReport)
def unregistered(
    service: Service,
    caller: CurrentCaller,
    grace_days: Annotated[
        QueryInt | None,
        Query(gt=0, le=3650, description="days after funding; default the setting SCF_REGISTRATION_GRACE_DAYS (30)"),
    ] = None,
    export: FormatQuery = ExportFormat.JSON,
) -> UnregisteredReport | Response:
    """Every funded financing of a receivable (its obligation not yet paid) and every active pledge whose 中登网
    registration its financier has not recorded on chain more than `grace_days` after funding, at the chain's
    time, oldest first. From the index. To the regulator and the operator only; as a file (`format=csv` or
    `xlsx`) one row each with a totals row."""
    if not sees_everything(caller):
        raise Problem(403, "forbidden", "Forbidden", "the unregistered report is the regulator's and the operator's")
    days = grace_days or service.settings.registration_grace_days
    now = service.client.chain_time()
    cutoff = now - days * _DAY
    items: list[UnregisteredItem] = []
    with service.sessions() as session:
        financings = (
            select(FinancingRequestRow)
            .join(PieceRow, PieceRow.id == FinancingRequestRow.piece_id)
            .join(InvoiceRow, InvoiceRow.id == PieceRow.slot_id)
            .where(
                FinancingRequestRow.state == RequestState.FUNDED,
                FinancingRequestRow.registration_number.is_(None),
                FinancingRequestRow.closed_at < cutoff,
                InvoiceRow.state.in_((InvoiceState.CONFIRMED, InvoiceState.DEFAULTED)),
            )
        )
        pledges = select(PledgeRow).where(
            PledgeRow.state == PledgeState.ACTIVE,
            PledgeRow.registration_number.is_(None),
            PledgeRow.funded_at < cutoff,
        )
        found: list[tuple[str, int, str, str, int, int]] = [
            ("financing", r.id, r.financier, r.holder, int(r.amount), int(r.closed_at or 0))
            for r in session.scalars(financings)
        ]
        found += [
            ("pledge", p.id, p.financier, p.borrower, int(p.principal_requested), int(p.funded_at or 0))
            for p in session.scalars(pledges)
        ]
        parties = _parties(session, *{a for f in found for a in f[2:4]})
    for kind, id_, financier, grantor, amount, funded_at in sorted(found, key=lambda f: (f[5], f[0], f[1])):
        items.append(
            UnregisteredItem(
                kind=kind,
                id=id_,
                financier=financier,
                financier_name=_party(parties, financier)[0],
                grantor=grantor,
                grantor_name=_party(parties, grantor)[0],
                amount=amount,
                funded_at=funded_at,
                days_unregistered=-(-(now - funded_at) // _DAY),
            )
        )
    if export is not ExportFormat.JSON:
        rows = (item.model_dump(mode="json") for item in items)
        return export_response(export, "unregistered", [Table("unregistered", columns_of(UnregisteredItem), rows)])
    return UnregisteredReport(chain_time=now, grace_days=days, items=items)


ACTIONS = (
    Action(
        "POST",
        "/financing-requests/{request_id}/registration",
        "record_financing_registration",
        _record_financing,
        "financing.register",
        RegistrationRecord,
        description="Record the 中登网 registration of a funded financing (its financier, once): the initial "
        "registration number and date. The obligation is then financed by no other financier until it is paid "
        "(409 `ReceivablesRegisteredElsewhere`).",
    ),
    Action(
        "POST",
        "/pledges/{pledge_id}/registration",
        "record_pledge_registration",
        _record_pledge,
        "pledge.register",
        RegistrationRecord,
        description="Record the 中登网 registration of an active pledge (its financier, once): the initial "
        "registration number and date.",
    ),
)
install(router, ACTIONS)
