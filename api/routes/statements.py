"""Daily statements: ``GET /participants/{participant_id}/statement?date=YYYY-MM-DD`` (JSON, or a file with
``format=csv`` or ``xlsx``): a participant's opening balance, movements and closing balance for one calendar
day, in deposit tokens and in receivables held, from the index (:mod:`ledger.index.statements`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Response

from api.auth import CurrentCaller, Service
from api.exports import ExportFormat, FormatQuery, Table, columns_of, export_response
from api.models import Statement, StatementAccount, StatementLine, StatementMovement
from api.problems import Problem
from api.routes.common import IsoDate, not_found
from api.routes.participants import _may_see, _participant_or_404
from ledger.index.statements import Account, deposit_account, indexed_block, receivables_account

router = APIRouter(tags=["participants"])

FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(9998, 12, 31)


def day_bounds(day: date, zone: ZoneInfo) -> tuple[int, int]:
    """The unix seconds of ``day``'s first second in ``zone`` and of the next day's (exclusive)."""
    start = datetime.combine(day, time(0, 0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=zone)
    return int(start.timestamp()), int(end.timestamp())


def _account_view(account: Account) -> StatementAccount:
    balance = account.opening
    movements = []
    for m in account.movements:
        balance += m.amount
        movements.append(
            StatementMovement(
                time=m.time,
                block_number=m.block_number,
                log_index=m.log_index,
                tx_hash=m.tx_hash,
                kind=m.kind,
                counterparty=m.counterparty,
                amount=m.amount,
                balance=balance,
                reference=m.reference,
                piece_id=m.piece_id,
                invoice_id=m.invoice_id,
            )
        )
    return StatementAccount(opening=account.opening, movements=movements, closing=balance)


def _lines(statement: Statement) -> Iterator[dict[str, Any]]:
    accounts: tuple[tuple[Literal["deposits", "receivables"], StatementAccount], ...] = (
        ("deposits", statement.deposits),
        ("receivables", statement.receivables),
    )
    for name, account in accounts:
        edge = {"block_number": None, "log_index": None, "tx_hash": None, "counterparty": None, "reference": None}
        edge |= {"piece_id": None, "invoice_id": None}
        yield StatementLine(
            account=name, kind="opening", time=statement.from_time, amount=None, balance=account.opening, **edge
        ).model_dump(mode="json")
        for m in account.movements:
            yield StatementLine(account=name, **m.model_dump()).model_dump(mode="json")
        moved = sum(m.amount for m in account.movements)
        yield StatementLine(
            account=name, kind="closing", time=statement.to_time, amount=moved, balance=account.closing, **edge
        ).model_dump(mode="json")


@router.get("/participants/{participant_id}/statement", response_model=Statement)
def daily_statement(
    participant_id: str,
    service: Service,
    caller: CurrentCaller,
    day: Annotated[IsoDate, Query(alias="date", description="the calendar day (YYYY-MM-DD) in the report time zone")],
    export: FormatQuery = ExportFormat.JSON,
) -> Statement | Response:
    """A participant's statement for one calendar day of the report time zone (`SCF_REPORT_TIME_ZONE`, China
    Standard Time by default), amounts in fen: for the deposit token and for receivables held (the value of its
    pieces), the opening balance, each movement (time, block, transaction, kind, counterparty, signed amount,
    balance after it) and the closing balance, with `opening + sum(amounts) = closing` to the fen. Read from the
    index up to `indexed_block`: the closing balance of a day that is over is the balance on chain after the day's
    last block; of today, the balance at `indexed_block`. To the participant itself, the operator and the
    regulator (404 to anyone else, as for an account that is no participant).

    As a file (`format=csv` or `xlsx`): a row per account's opening, per movement (with the balance after it)
    and per account's closing (its `amount` the sum of the movements), no totals row (docs/reports.md)."""
    record = _participant_or_404(service, participant_id)
    if not _may_see(caller, record.address):
        raise not_found(f"participant {participant_id}")
    if not FIRST_DAY <= day <= LAST_DAY:
        raise Problem(422, "validation", "Invalid request", f"a statement's date is from {FIRST_DAY} to {LAST_DAY}")
    zone = ZoneInfo(service.settings.report_time_zone)
    start, end = day_bounds(day, zone)
    with service.sessions() as session:
        through = indexed_block(session)
        deposits = deposit_account(session, record.address, start, end, -1 if through is None else through)
        receivables = receivables_account(session, record.address, start, end, -1 if through is None else through)
    statement = Statement(
        participant=record.address,
        date=day,
        time_zone=service.settings.report_time_zone,
        currency="CNY",
        from_time=start,
        to_time=end,
        indexed_block=through,
        deposits=_account_view(deposits),
        receivables=_account_view(receivables),
    )
    if export is ExportFormat.JSON:
        return statement
    name = f"statement-{record.address}-{day.isoformat()}"
    table = Table("statement", columns_of(StatementLine), _lines(statement), totals=False)
    return export_response(export, name, [table])
