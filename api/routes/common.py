"""Shared pieces of the routes: pagination, address and amount types, owner checks."""

from __future__ import annotations

import base64
import binascii
import inspect
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from enum import Enum
from functools import lru_cache
from typing import Annotated, Any, TypeVar

from eth_utils import is_address, to_checksum_address
from fastapi import Depends, Path, Query, Request, Response
from pydantic import AfterValidator, BaseModel, BeforeValidator, Field
from sqlalchemy import ColumnElement, Select, UnaryExpression, and_, bindparam, func, or_, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, InstrumentedAttribute, Session

from api.auth import Caller, require_role
from api.exports import ExportFormat, FormatQuery, Table, columns_of, export_response, file_name
from api.models import NumberedPage, Page, ParticipantView
from api.problems import Problem, jsonable
from api.service import LedgerService
from api.store import IdentifierLabelRecord, ParticipantRecord
from ledger.errors import ContractRevert
from ledger.index.models import ChainUint, PledgeRow
from ledger.models import Pledge, Receipt, ReceiptState, Role

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

MAX_AMOUNT = 2**96 - 1
"""Amounts the contracts store (uint96): about 7.9e28 fen."""


def _address(value: str) -> str:
    checksummed = _checksummed(value) if isinstance(value, str) and len(value) <= 42 else None
    if checksummed is None:
        raise ValueError("not an Ethereum address (0x and 40 hex digits)")
    return checksummed


@lru_cache(maxsize=1 << 14)
def _checksummed(value: str) -> str | None:
    """``value`` checksummed, or None when it is not an address (remembered: both cost a keccak, and the same
    parties come back request after request)."""
    return str(to_checksum_address(value)) if is_address(value) else None


def _iso_date(value: object) -> object:
    if isinstance(value, str) and not _ISO_DATE.fullmatch(value):
        raise ValueError("not a date as YYYY-MM-DD")
    if not isinstance(value, str | date):
        raise ValueError("not a date as YYYY-MM-DD")  # pydantic would read a number as a Unix time
    return value


def _ledger_epoch(value: date) -> date:
    if value.year < 1970:
        raise ValueError("a day on or after 1970-01-01 (the ledger's clock counts from it)")
    return value


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
IsoDate = Annotated[date, BeforeValidator(_iso_date), AfterValidator(_ledger_epoch)]
"""A calendar day written as the document says (``YYYY-MM-DD``), never a number, and not before 1970 (the chain's
times are unsigned seconds since 1970-01-01)."""


def json_integer(value: object) -> object:
    """Money, ids, rates and counts in a JSON body are JSON integers: a boolean (``true`` would be 1 fen), a string
    (``"100"``) or a number with a fraction or exponent (``100.0``, ``1e2``) is refused, never converted."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(
            "must be an integer written as a JSON number without fraction or exponent "
            "(booleans, strings and decimals are refused)"
        )
    return value


_DECIMAL = re.compile(r"0|[1-9][0-9]{0,79}")


def decimal_integer(value: object) -> object:
    """An integer given as text (a path or query parameter, or a JSON string for ids beyond 2^53): ASCII digits
    only, without sign, spaces, separators, fraction or leading zeros; or a JSON integer as :func:`json_integer`."""
    if value is None:
        return None
    if isinstance(value, str):
        if not _DECIMAL.fullmatch(value):
            raise ValueError(
                "must be a decimal integer: ASCII digits 0-9 without sign, spaces, separators or leading zeros"
            )
        return int(value)
    return json_integer(value)


JsonInt = Annotated[int, BeforeValidator(json_integer)]
"""An integer of a JSON body, strictly (see :func:`json_integer`)."""
QueryInt = Annotated[int, BeforeValidator(decimal_integer)]
"""An integer of a query string, strictly (see :func:`decimal_integer`); add ``Query(...)`` for its bounds."""
Address = Annotated[str, AfterValidator(_address), Field(examples=["0x70997970C51812dc3A010C7d01b50e0d17dc79C8"])]
Amount = Annotated[
    int, BeforeValidator(json_integer), Field(gt=0, le=MAX_AMOUNT, description="integer amount in minor units (fen)")
]
Id = Annotated[int, BeforeValidator(json_integer), Field(gt=0, lt=2**64)]
Bps = Annotated[int, BeforeValidator(json_integer), Field(ge=0, le=10_000, description="basis points")]
PathId = Annotated[
    int,
    BeforeValidator(decimal_integer),
    Path(description="the object's id: a decimal integer (ASCII digits, no sign or leading zeros)"),
]
"""An object's id in a path."""


PageNumber = Annotated[int, BeforeValidator(decimal_integer), Query(ge=1, le=1_000_000)]
PageSize = Annotated[int, BeforeValidator(decimal_integer), Query(ge=1, le=200)]


def page_of(items: Sequence[T], page: int, size: int, total: int) -> NumberedPage[T]:
    """The answer of a list paged by number only."""
    return NumberedPage[T](items=list(items), page=page, size=size, total=total)


# -- lists paged by cursor (keyset) or page number ----------------------------------------------------------

PAGING = """**Paging.** By cursor: the answer's `next` (null on the last page) sent back as `after` gives the items
that follow; the first page is the one without `after`. A cursor page reads only its own rows from an index, so
it costs the same at any depth and at any size of the ledger, and it never repeats or skips an item while items
enter or leave the list in between (one that enters further along the order than the cursor shows on a later
page; one that enters before it, on none of this walk's pages). By page number (`page`, as before): a page
costs in proportion to its offset, and items entering or leaving in between shift the pages.

`total` is the exact number of matching items, counted only when asked: by default with `page` and never with
`after`; `total=false` or `total=true` says otherwise. The count costs in proportion to the matching items, so
clients that do not show it send `total=false` (or page by cursor). An answer is `{"items", "page", "size",
"total", "next"}`: `page` is null when paging by cursor, `total` null when not counted."""
"""How the paged lists page (:func:`paged`); appended to each one's OpenAPI description by :func:`paging`."""

_CURSOR_MAX_LENGTH = 256


def paging(route: F) -> F:
    """Append :data:`PAGING` to a list route's description (its docstring, which FastAPI publishes)."""
    route.__doc__ = f"{inspect.cleandoc(route.__doc__ or '')}\n\n{PAGING}".strip()
    return route


@dataclass(frozen=True)
class Window:
    """The part of a list a request asks for: a page by number (``after`` None) or the page after a cursor."""

    page: int
    size: int
    after: tuple[int, ...] | None
    """The cursor's sort-key values: the page starts after the item that has them."""
    total: bool
    """Whether to count the matching items."""
    export: ExportFormat = ExportFormat.JSON
    """JSON: this page; CSV or XLSX: every matching item as a file (:mod:`api.exports`)."""
    name: str = "export"
    """The list's name in a file's name (from its path)."""


def encode_cursor(values: Sequence[int]) -> str:
    """The cursor after an item with these sort-key values: URL-safe base64 of their JSON, unpadded. Opaque to
    clients; it names a position in the list's order, not a row, so the row may go and the cursor still works."""
    return base64.urlsafe_b64encode(json.dumps(list(values), separators=(",", ":")).encode()).rstrip(b"=").decode()


def _bad_cursor(detail: str = "`after` is not a cursor of this list: send back a `next` as given") -> Problem:
    return Problem(422, "validation", "Invalid request", detail)


def decode_cursor(cursor: str) -> tuple[int, ...]:
    """The sort-key values of :func:`encode_cursor`; a 422 problem for anything else."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):
        raise _bad_cursor() from None
    if not (isinstance(values, list) and values and all(type(v) is int and v >= 0 for v in values)):
        raise _bad_cursor()
    return tuple(values)


def list_window(
    request: Request,
    page: Annotated[
        int,
        BeforeValidator(decimal_integer),
        Query(ge=1, le=1_000_000, description="page number (offset paging); not with `after`"),
    ] = 1,
    size: Annotated[int, BeforeValidator(decimal_integer), Query(ge=1, le=200, description="items per page")] = 50,
    after: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=_CURSOR_MAX_LENGTH,
            description="a `next` cursor from the previous page: the items after it (keyset paging)",
        ),
    ] = None,
    total: Annotated[
        bool | None,
        Query(description="count the matching items (default: with `page` yes, with `after` no)"),
    ] = None,
    export: FormatQuery = ExportFormat.JSON,
) -> Window:
    """The paging parameters of a list route (see :data:`PAGING`), and the answer's format: a file of every
    matching item ignores the paging parameters."""
    if after is not None and "page" in request.query_params:
        raise _bad_cursor("send either `page` or `after`, not both")
    return Window(
        page=page,
        size=size,
        after=None if after is None else decode_cursor(after),
        total=(after is None) if total is None else total,
        export=export,
        name=file_name(request.url.path),
    )


ListWindow = Annotated[Window, Depends(list_window)]


@dataclass(frozen=True)
class SortKey:
    """A column a list is ordered by. A list's keys end with a unique one (its id), so that they order the
    items totally and a cursor names one position.

    A cursor holds integers: a column of another type gives ``to_cursor`` (its value as an integer) and
    ``from_cursor`` (back, raising ``ValueError`` or ``OverflowError`` for an integer that is no such value). The
    database compares and orders the column itself; only a list merged from several sides (``any_of``) orders
    the cursor integers too, so there they must run in the column's order."""

    column: InstrumentedAttribute[Any]
    descending: bool = False
    to_cursor: Callable[[Any], int] = int
    from_cursor: Callable[[int], Any] | None = None

    def order(self) -> UnaryExpression[Any]:
        return self.column.desc() if self.descending else self.column.asc()

    def bind(self, value: int) -> ColumnElement[Any]:
        """``value`` as a parameter of this column's type; a 422 problem if the column cannot hold it."""
        if self.from_cursor is not None:
            try:
                return bindparam(None, self.from_cursor(value), type_=self.column.type)
            except (ValueError, OverflowError):
                raise _bad_cursor() from None
        if value >= (2**256 if isinstance(self.column.type, ChainUint) else 2**63):
            raise _bad_cursor()
        return bindparam(None, value, type_=self.column.type)


def _after(keys: Sequence[SortKey], values: tuple[int, ...]) -> ColumnElement[bool]:
    """The items after ``values`` in the order of ``keys``: one comparison for one key, a row-value comparison
    when the keys run one way (an index range on every database), else the lexicographic comparison spelled
    out."""
    if len(values) != len(keys):
        raise _bad_cursor()
    bound = [key.bind(value) for key, value in zip(keys, values, strict=True)]
    if len(keys) == 1:
        return keys[0].column < bound[0] if keys[0].descending else keys[0].column > bound[0]
    if len({key.descending for key in keys}) == 1:
        columns, row = tuple_(*(key.column for key in keys)), tuple_(*bound)
        return columns < row if keys[0].descending else columns > row
    alternatives = []
    for i, key in enumerate(keys):
        beyond = key.column < bound[i] if key.descending else key.column > bound[i]
        alternatives.append(and_(*(k.column == b for k, b in zip(keys[:i], bound[:i], strict=True)), beyond))
    return or_(*alternatives)


def _sort_values(keys: Sequence[SortKey], row: Any) -> tuple[int, ...]:
    return tuple(key.to_cursor(getattr(row, key.column.key)) for key in keys)


def page_rows(
    session: Session,
    query: Select[Any],
    keys: Sequence[SortKey],
    window: Window,
    *,
    any_of: Sequence[ColumnElement[bool]] = (),
) -> tuple[list[Any], str | None, int | None]:
    """The rows of ``window`` of the list ``query`` (one entity, filtered, not ordered) ordered by ``keys``,
    restricted to the rows matching any of ``any_of`` (none: all): ``(rows, next cursor, total or None)``.

    One more row than the page is read to know whether a next page exists. With several ``any_of`` (the lists
    of what a participant sees as either party), a cursor page and the first page read each on its own, in
    order from its own index and no further than the page needs, and merge them here: one ``OR`` would have
    the database gather and sort every matching row before it could return the first. A later page by number
    is one ``OR`` query with an offset, as it always was: its cost grows with the offset anyway."""
    keys = tuple(keys)
    orders = [key.order() for key in keys]
    start = 0 if window.after is not None else (window.page - 1) * window.size
    ranged = query if window.after is None else query.where(_after(keys, window.after))
    if len(any_of) <= 1 or start > 0:
        visible = ranged.where(or_(*any_of)) if any_of else ranged
        rows = list(session.scalars(visible.order_by(*orders).offset(start or None).limit(window.size + 1)))
    else:
        merged: dict[tuple[int, ...], Any] = {}
        for condition in any_of:
            for row in session.scalars(ranged.where(condition).order_by(*orders).limit(window.size + 1)):
                merged[_sort_values(keys, row)] = row
        directions = [-1 if key.descending else 1 for key in keys]
        ordered = sorted(merged, key=lambda values: tuple(d * v for d, v in zip(directions, values, strict=True)))
        rows = [merged[values] for values in ordered[: window.size + 1]]
    next_cursor = encode_cursor(_sort_values(keys, rows[window.size - 1])) if len(rows) > window.size else None
    total = None
    if window.total:
        matching = query.where(or_(*any_of)) if any_of else query
        # count(*) over the filter itself, not over a subquery of whole rows: the database may count an index
        total = int(session.scalar(matching.with_only_columns(func.count(), maintain_column_froms=True)) or 0)
    return rows[: window.size], next_cursor, total


def listing(items: Sequence[T], window: Window, total: int | None, next_cursor: str | None) -> Page[T]:
    """The answer of a paged list (see :data:`PAGING`)."""
    page = window.page if window.after is None else None
    return Page[T](items=list(items), page=page, size=window.size, total=total, next=next_cursor)


def not_found(what: str) -> Problem:
    return Problem(404, "not-found", "Not found", f"no {what}")


def path_id(value: int) -> int:
    if not 0 < value < 2**256:
        raise not_found(f"object {value}")
    return value


# -- shared by the route modules ------------------------------------------------------------------------------

ZERO_ADDRESS = "0x" + "00" * 20


def row_dict(row: DeclarativeBase) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column in row.__table__.columns:
        value = getattr(row, column.key)
        out[column.key] = value.name.lower() if isinstance(value, Enum) else jsonable(value)
    return out


Item = TypeVar("Item", bound=BaseModel)


Convert = Callable[[Session, Sequence[Any]], list[Item]]
"""Rows of a list's query to its items (with more reads in the same session if it needs them)."""


def paged(
    service: LedgerService,
    query: Select[Any],
    keys: Sequence[SortKey],
    window: Window,
    item: type[Item],
    *,
    any_of: Sequence[ColumnElement[bool]] = (),
    convert: Convert[Item] | None = None,
) -> Page[Item] | Response:
    """The answer of a list route: ``window`` of the index rows of ``query`` (filtered, not ordered) in the
    order of ``keys``, restricted to those matching any of ``any_of`` (see :func:`page_rows` and
    :data:`PAGING`), each row as an ``item`` (:func:`row_dict`, or ``convert``). For a ``window`` that asks for a
    file, every such row instead, read in batches in the same order (:func:`all_rows`), as a file
    (:mod:`api.exports`)."""
    to_items: Convert[Item] = convert or (lambda _, rows: [item.model_validate(row_dict(r)) for r in rows])
    if window.export is not ExportFormat.JSON:

        def rows() -> Iterator[dict[str, Any]]:
            with service.sessions() as session:
                for batch in all_rows(session, query, keys, any_of=any_of):
                    for listed in to_items(session, batch):
                        yield listed.model_dump(mode="json")

        return export_response(window.export, window.name, [Table(window.name, columns_of(item), rows())])
    with service.sessions() as session:
        found, next_cursor, total = page_rows(session, query, keys, window, any_of=any_of)
        return listing(to_items(session, found), window, total, next_cursor)


EXPORT_BATCH = 1000
"""Index rows read at a time for a file of a list."""


def all_rows(
    session: Session,
    query: Select[Any],
    keys: Sequence[SortKey],
    *,
    any_of: Sequence[ColumnElement[bool]] = (),
    batch: int = EXPORT_BATCH,
) -> Iterator[list[Any]]:
    """Every row of the list ``query`` in the order of ``keys``, in batches, each read by cursor after the last
    (so the read costs the same at any depth; see :func:`page_rows`)."""
    after: tuple[int, ...] | None = None
    while True:
        rows, next_cursor, _ = page_rows(session, query, keys, Window(1, batch, after, False), any_of=any_of)
        if rows:
            yield rows
        if next_cursor is None:
            return
        after = decode_cursor(next_cursor)


def sees_everything(caller: Caller) -> bool:
    return caller.is_operator or caller.is_regulator


def due_timestamp(value: date) -> int:
    return int(datetime.combine(value, time(0, 0), tzinfo=UTC).timestamp())


# -- event kinds (the feed's filters: GET /events, subscriptions) -------------------------------------------

MAX_KINDS = 50
EVENT_KIND = re.compile(r"[a-z][a-z0-9-]*\.[a-z][a-z0-9-]*")


def parse_kinds(kinds: list[str] | None) -> list[str]:
    """The kinds of a ``kinds`` filter (repeated, or separated by commas); a 422 problem for a malformed one."""
    found: list[str] = []
    for entry in kinds or ():
        for kind in entry.split(","):
            kind = kind.strip()
            if not EVENT_KIND.fullmatch(kind):
                detail = f"{kind!r} is not an event kind (a noun, a dot and a verb, like `invoice.confirmed`)"
                raise Problem(422, "validation", "Invalid request", detail)
            if kind not in found:
                found.append(kind)
    if len(found) > MAX_KINDS:
        raise Problem(422, "validation", "Invalid request", f"at most {MAX_KINDS} kinds")
    return found


# -- what identity hashes stand for ----------------------------------------------------------------------------


def remember_label(service: LedgerService, key_hash: bytes, kind: str, label: str, description: str | None) -> None:
    """Keep what the hash ``key_hash`` on chain stands for, as this gateway was given it, for the lists to show: an
    invoice's or a lot's number (by its keyed identity hash), or the goods' description (by its keccak, the
    receipt's ``goodsHash``). Each hash is a function of what it stands for, so the first record is the only one
    (a second writer, or an act that then fails, would write the same)."""
    record = IdentifierLabelRecord(
        key_hash="0x" + key_hash.hex(), kind=kind, label=label, description=description, created_at=datetime.now(UTC)
    )
    with service.sessions() as session:
        if session.get(IdentifierLabelRecord, record.key_hash) is not None:
            return
        session.add(record)
        try:
            session.commit()
        except IntegrityError:  # the same hash kept meanwhile by another request: the same label
            session.rollback()


def labels_of(session: Session, key_hashes: Sequence[str | None]) -> dict[str, IdentifierLabelRecord]:
    """The labels this gateway keeps for ``key_hashes`` (0x-prefixed hex), by hash; one query."""
    wanted = {key.lower() for key in key_hashes if key}
    if not wanted:
        return {}
    found = session.scalars(select(IdentifierLabelRecord).where(IdentifierLabelRecord.key_hash.in_(wanted)))
    return {record.key_hash: record for record in found}


def receipt_labels(session: Session, rows: Sequence[Any]) -> dict[int, tuple[str | None, str | None]]:
    """The lot number and goods' description this gateway keeps for each receipt row (by id): the lot by its
    identity hash, the goods by their keccak (the receipt's ``goods_hash``); one query."""
    labels = labels_of(session, [hash_ for row in rows for hash_ in (row.lot_key_hash, row.goods_hash)])
    out: dict[int, tuple[str | None, str | None]] = {}
    for row in rows:
        lot = labels.get(row.lot_key_hash.lower()) if row.lot_key_hash else None
        goods = labels.get(row.goods_hash.lower()) if row.goods_hash else None
        out[row.id] = (lot.label if lot else None, goods.description if goods else None)
    return out


# -- participants, as the participants' and the gateway's routes show them -------------------------------------

ASSIGNABLE_ROLES = {r.role_name: r for r in Role if r not in (Role.OPERATOR, Role.SYSTEM)}
"""The roles the operator gives at onboarding (a gateway reads them from the chain when it serves a participant)."""


def participant_view(record: ParticipantRecord, service: LedgerService) -> ParticipantView:
    view = ParticipantView(
        id=record.address,
        name=record.name,
        credit_code=record.credit_code,
        roles=list(record.roles),
        login_address=record.login_address,
        custody=record.custody,
        signer=current_signer(record, service),
    )
    try:
        on_chain = service.client.participant(record.address)
        view.status = on_chain.status.name.lower()
        view.frozen = on_chain.frozen
    except Exception:  # the registration is still in flight
        view.status = "pending"
    return view


def current_signer(record: ParticipantRecord, service: LedgerService) -> str | None:
    """A self-custody participant's signer as the registry knows it now (rotations and recoveries change it on
    chain alone); the record's when the chain does not answer for it yet (registration in flight)."""
    if record.custody != "self":
        return None
    try:
        return service.client.signer_of(record.address)
    except Exception:  # the registration is still in flight
        return record.signer or record.address


# -- warehouse receipts: who sees one, who issued it (warehouse and sensor routes) ------------------------------

OPEN_RECEIPT_STATES = (ReceiptState.PLEDGE_REQUESTED, ReceiptState.PLEDGED)


def receipt_of(service: LedgerService, receipt_id: int) -> Receipt:
    try:
        receipt = service.client.receipt(path_id(receipt_id))
    except ContractRevert as exc:
        if exc.name in ("ERC721NonexistentToken", "ReceiptNotFound"):
            raise not_found(f"warehouse receipt {receipt_id}") from None
        raise
    if receipt.state is ReceiptState.NONE:
        raise not_found(f"warehouse receipt {receipt_id}")
    return receipt


def open_pledge(service: LedgerService, receipt: Receipt) -> Pledge | None:
    """The pledge the receipt is in (requested or active), if any."""
    if receipt.state not in OPEN_RECEIPT_STATES:
        return None
    pledge_id = service.client.pledge_of(receipt.receipt_id)
    return service.client.pledge_loan(pledge_id) if pledge_id else None


def may_see_receipt(service: LedgerService, caller: Caller, receipt: Receipt) -> bool:
    if sees_everything(caller) or caller.address in (receipt.warehouse, receipt.owner):
        return True
    pledge = open_pledge(service, receipt)
    if pledge is not None:
        return caller.address in (pledge.borrower, pledge.financier)
    if receipt.state is ReceiptState.REDEEMED:  # burnt: its former borrowers and lenders still see it
        with service.sessions() as session:
            party = session.scalar(
                select(PledgeRow.id)
                .where(
                    PledgeRow.receipt_id == receipt.receipt_id,
                    or_(PledgeRow.borrower == caller.address, PledgeRow.financier == caller.address),
                )
                .limit(1)
            )
        return party is not None
    return False


def visible_receipt(service: LedgerService, caller: Caller, receipt_id: int) -> Receipt:
    receipt = receipt_of(service, receipt_id)
    if not may_see_receipt(service, caller, receipt):
        raise not_found(f"warehouse receipt {receipt_id}")
    return receipt


def as_issuer(service: LedgerService, caller: Caller, receipt_id: int) -> Receipt:
    require_role(caller, Role.WAREHOUSE)
    receipt = visible_receipt(service, caller, receipt_id)
    if receipt.warehouse != caller.address:
        raise Problem(403, "not-issuer", "Forbidden", f"only the warehouse that issued receipt {receipt_id} does this")
    return receipt
