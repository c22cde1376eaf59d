"""JSON text in C where it is exact: :func:`dumps` writes with orjson (twenty times the standard library's speed
on the service's answers, records and JSON-RPC requests) and falls back to :mod:`json` for what orjson refuses
rather than writes differently: integers beyond 64 bits (an amount or id of the ledger can be any ``uint256``),
keys that are not strings. The text is compact (no spaces), UTF-8 (not ``\\u`` escapes); the values are the same.

Reading stays with :mod:`json`: orjson reads an integer beyond 64 bits as a float, silently, and the answers the
service reads (the node's) are mostly strings, where orjson is barely faster.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON."""
    try:
        return orjson.dumps(value)
    except TypeError:  # an integer beyond 64 bits, a key that is not a string: the standard library writes both
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def dumps_text(value: Any) -> str:
    """:func:`dumps` as a string (SQLAlchemy's JSON columns take one)."""
    return dumps(value).decode()
