"""Reports to take away: any list as CSV or XLSX, written once for every list route.

A list route that takes ``format`` (the paged lists through :data:`api.routes.common.ListWindow`, and the
regulator's reports) answers, for ``format=csv`` or ``format=xlsx``, every item that matches its filters and
that the caller may see, not one page, as a file to download:

- one column per field of the list's item model, in the model's order, each cell as the JSON list gives it
  (integers as decimal digits; objects and lists as JSON text; null as an empty cell; booleans as
  ``true``/``false``);
- money in integer fen (the fields the item models mark with ``x-unit: fen``, :data:`api.models.FEN_UNIT`);
- a last row of totals: its first cell ``total: <n> items`` (``n`` the number of rows above), each fen column
  the sum of the column, the other cells empty. A statement (whose rows are balances and movements) has none.

CSV is UTF-8 with a byte-order mark (so that Excel reads Chinese names right; read it as ``utf-8-sig``), comma
separated, quoted where needed (RFC 4180), with ``\\r\\n`` line ends. It streams: rows are read from the index
in batches and sent as they are written. XLSX is written by openpyxl in write-only mode (rows go to a temporary
file as they come, never all in memory) and sent when complete; an integer beyond 2^53 (which a spreadsheet's
numbers cannot hold to the unit) is written as text, exactly. A text cell that a spreadsheet would take for a
formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) gets a leading ``'``.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import os
import re
import tempfile
import typing
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Query
from fastapi.responses import StreamingResponse
from openpyxl import Workbook
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from api.models import FEN_UNIT


class ExportFormat(StrEnum):
    """What a list answers: JSON (the default, one page) or a file of every matching item."""

    JSON = "json"
    CSV = "csv"
    XLSX = "xlsx"


CSV_MEDIA_TYPE = "text/csv"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MEDIA_TYPES = {ExportFormat.CSV: f"{CSV_MEDIA_TYPE}; charset=utf-8", ExportFormat.XLSX: XLSX_MEDIA_TYPE}

FORMAT_PARAMETER = "format"
"""The query parameter; every operation that takes it answers the two file media types too (:func:`declare`)."""

FormatQuery = Annotated[
    ExportFormat,
    Query(
        alias=FORMAT_PARAMETER,
        description="`json` (the default): the answer as documented; `csv` or `xlsx`: every matching item the "
        "caller may see, not one page, as a file with a totals row (see docs/reports.md)",
    ),
]
"""The ``format`` parameter of a list or report route."""

_CSV_ROWS_PER_CHUNK = 1000
"""CSV rows written before a chunk of the answer is sent."""

_SAFE_INTEGER = 2**53
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Column:
    """A column of a file: a field of an item model, and whether it is money in fen (summed in the totals)."""

    name: str
    fen: bool = False


def _marked_fen(annotation: Any) -> bool:
    for argument in typing.get_args(annotation):
        if isinstance(argument, FieldInfo) and argument.json_schema_extra == FEN_UNIT:
            return True
        if _marked_fen(argument):
            return True
    return False


def _is_fen(info: FieldInfo) -> bool:
    return info.json_schema_extra == FEN_UNIT or _marked_fen(info.annotation)


def columns_of(*models: type[BaseModel]) -> list[Column]:
    """The columns of items of ``models``: their fields in order, a field that several have once (the first)."""
    columns: dict[str, Column] = {}
    for model in models:
        for name, info in model.model_fields.items():
            columns.setdefault(name, Column(name, _is_fen(info)))
    return list(columns.values())


@dataclass
class Table:
    """The rows of one file (or one sheet of a workbook): ``rows`` are produced lazily, each a mapping of a
    column's name to its JSON value (an item's ``model_dump(mode="json")``)."""

    name: str
    columns: Sequence[Column]
    rows: Iterable[Mapping[str, Any]]
    totals: bool = True
    _count: int = field(default=0, init=False)
    _sums: dict[str, int] = field(default_factory=dict, init=False)

    def cells(self) -> Iterator[list[Any]]:
        """The header, each row's values (counted and summed as they pass), then the totals row."""
        yield [column.name for column in self.columns]
        for row in self.rows:
            self._count += 1
            for column in self.columns:
                value = row.get(column.name)
                if column.fen and value is not None:
                    self._sums[column.name] = self._sums.get(column.name, 0) + int(value)
            yield [row.get(column.name) for column in self.columns]
        if self.totals:
            label = f"total: {self._count} items"
            yield [
                label if i == 0 else (self._sums.get(c.name, 0) if c.fen else None) for i, c in enumerate(self.columns)
            ]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) and not _is_integer(text) else text


def _is_integer(text: str) -> bool:
    return text.lstrip("-").isdigit() and text.isascii()


def _sheet_value(value: Any) -> Any:
    """A cell's value for a workbook: integers as numbers while a spreadsheet holds them exactly, else as text
    (the JSON answers give an integer from 2^53 on as a string already); everything else as in a CSV."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value if -_SAFE_INTEGER < value < _SAFE_INTEGER else str(value)
    return _SHEET_ILLEGAL.sub(lambda found: f"\\x{ord(found.group()):02x}", _text(value))


_SHEET_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
"""The control characters a workbook's XML cannot hold (what openpyxl refuses): written as ``\\xNN`` in the cell,
so that an audit record of a request with such a character in its path still exports (a CSV keeps them as
they are)."""


class _Lines:
    """A file-like sink for :mod:`csv` whose text is taken out after each row."""

    def __init__(self) -> None:
        self.buffer = io.StringIO()

    def take(self) -> bytes:
        text = self.buffer.getvalue()
        self.buffer.seek(0)
        self.buffer.truncate()
        return text.encode("utf-8")


def csv_chunks(table: Table) -> Iterator[bytes]:
    """``table`` as CSV, a chunk per 1,000 rows (see the module's docstring)."""
    sink = _Lines()
    writer = csv.writer(sink.buffer, lineterminator="\r\n")
    yield "\ufeff".encode()
    pending = 0
    for cells in table.cells():
        writer.writerow([_text(value) for value in cells])
        pending += 1
        if pending >= _CSV_ROWS_PER_CHUNK:
            yield sink.take()
            pending = 0
    yield sink.take()


def xlsx_chunks(tables: Sequence[Table]) -> Iterator[bytes]:
    """``tables`` as a workbook, a sheet each, written to a temporary file and then read out in chunks."""
    workbook = Workbook(write_only=True)
    for table in tables:
        sheet = workbook.create_sheet(title=table.name[:31])
        for cells in table.cells():
            sheet.append([_sheet_value(value) for value in cells])
    descriptor, path = tempfile.mkstemp(suffix=".xlsx")
    os.close(descriptor)
    try:
        workbook.save(path)
        with open(path, "rb") as written:
            while chunk := written.read(64 * 1024):
                yield chunk
    finally:
        os.unlink(path)


def export_response(export: ExportFormat, name: str, tables: Sequence[Table]) -> StreamingResponse:
    """The file of ``tables`` in ``export`` (CSV holds the first table only: a caller with several picks one),
    named ``<name>-<UTC time>.<csv|xlsx>``. Nothing is read before the answer's body is sent; the rows'
    iterables do their reading then (so a route checks its input and the caller's rights before)."""
    if export is ExportFormat.JSON:
        raise ValueError("JSON is the routes' own answer")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    filename = f"{name}-{stamp}.{export.value}"
    chunks = csv_chunks(tables[0]) if export is ExportFormat.CSV else xlsx_chunks(tables)
    headers = {"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"}
    return StreamingResponse(chunks, media_type=MEDIA_TYPES[export], headers=headers)


def file_name(path: str) -> str:
    """A file name for the list at ``path``: ``/pledges/3/margin-calls`` → ``pledges-3-margin-calls``."""
    return "-".join(part for part in path.split("/") if part) or "export"


# -- the OpenAPI document ------------------------------------------------------------------------------------

_FILE_CONTENT = {
    CSV_MEDIA_TYPE: {
        "schema": {"type": "string"},
        "example": "id,amount\r\n7,100000000\r\ntotal: 1 items,100000000\r\n",
    },
    XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
}


def declare(document: dict[str, Any]) -> None:
    """Declare the file answers (``text/csv``, the XLSX media type) beside the JSON one on every operation that
    takes the ``format`` query parameter."""
    for item in document.get("paths", {}).values():
        for operation in item.values():
            takes_format = any(
                p.get("name") == FORMAT_PARAMETER and p.get("in") == "query" for p in operation.get("parameters", [])
            )
            if takes_format and "200" in operation.get("responses", {}):
                answer = operation["responses"]["200"]
                answer.setdefault("content", {}).update(copy.deepcopy(_FILE_CONTENT))
                answer["description"] = (
                    answer.get("description", "Successful Response")
                    + "; with `format=csv` or `format=xlsx` a file of every matching item, with a totals row"
                )
