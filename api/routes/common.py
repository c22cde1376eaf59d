"""Shared pieces of the routes: pagination, address and amount types, owner checks."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, TypeVar

from eth_utils import is_address, to_checksum_address
from fastapi import Query
from pydantic import AfterValidator, BaseModel, BeforeValidator, Field

from api.problems import Problem

T = TypeVar("T")

MAX_AMOUNT = 2**96 - 1
"""Amounts the contracts store (uint96): about 7.9e28 fen."""


def _address(value: str) -> str:
    if not isinstance(value, str) or not is_address(value):
        raise ValueError("not an Ethereum address (0x and 40 hex digits)")
    return str(to_checksum_address(value))


def _iso_date(value: object) -> object:
    if isinstance(value, str) and not _ISO_DATE.fullmatch(value):
        raise ValueError("not a date as YYYY-MM-DD")
    if not isinstance(value, str | date):
        raise ValueError("not a date as YYYY-MM-DD")  # pydantic would read a number as a Unix time
    return value


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
IsoDate = Annotated[date, BeforeValidator(_iso_date)]
"""A calendar day written as the document says (``YYYY-MM-DD``), never a number."""

Address = Annotated[str, AfterValidator(_address), Field(examples=["0x70997970C51812dc3A010C7d01b50e0d17dc79C8"])]
Amount = Annotated[int, Field(gt=0, le=MAX_AMOUNT, description="integer amount in minor units (fen)")]
Id = Annotated[int, Field(gt=0, lt=2**64)]
Bps = Annotated[int, Field(ge=0, le=10_000, description="basis points")]


class Page(BaseModel):
    items: list[Any]
    page: int
    size: int
    total: int


PageNumber = Annotated[int, Query(ge=1, le=1_000_000)]
PageSize = Annotated[int, Query(ge=1, le=200)]


def page_of(items: list[Any], page: int, size: int, total: int) -> dict[str, Any]:
    return {"items": items, "page": page, "size": size, "total": total}


def not_found(what: str) -> Problem:
    return Problem(404, "not-found", "Not found", f"no {what}")


def path_id(value: int) -> int:
    if not 0 < value < 2**256:
        raise not_found(f"object {value}")
    return value
