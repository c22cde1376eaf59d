"""The service's JSON answers, written by :mod:`ledger.jsontext` (orjson; the standard library for what orjson
refuses: integers beyond 64 bits). The text is starlette's own (compact, UTF-8), written about twenty times
faster: a batch's answer of a hundred operations was 2 % of the service's CPU under load."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from ledger import jsontext


class FastJSONResponse(JSONResponse):
    """:class:`JSONResponse` rendered by :func:`ledger.jsontext.dumps`."""

    def render(self, content: Any) -> bytes:
        return jsontext.dumps(content)
