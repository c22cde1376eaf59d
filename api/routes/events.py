"""The event feed for integrators (:mod:`ledger.index.feed`): read it by cursor or follow it as a stream.

- ``GET /events?after=<seq>&kinds=...&counterparty=...&limit=...``: the caller's visible events after a sequence
  number, oldest first, and ``next``, the cursor to send back as ``after``.
- ``GET /events/stream``: the same as Server-Sent Events, from ``Last-Event-ID`` or ``?after=``: each event's
  ``id:`` is its sequence number; an event a reorganisation dropped comes as ``event: retracted`` (its
  ``added`` one as ``event: added``); a comment line every ``SCF_EVENTS_HEARTBEAT_SECONDS`` keeps proxies from
  closing an idle stream.

Visibility is that of the lists: a participant sees the events naming it or its objects; the regulator and the
operator see every event.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.auth import Caller, CurrentCaller, Service
from api.exports import ExportFormat, FormatQuery, Table, columns_of, export_response
from api.models import FeedEventView, FeedPage
from api.problems import Problem
from api.routes.common import Address, QueryInt, parse_kinds
from api.service import LedgerService
from ledger.index.feed import FeedRow, feed_view, read_feed

router = APIRouter(prefix="/events", tags=["events"])

_STREAM_BATCH = 200
_STREAM_POLL_SECONDS = 0.25

After = Annotated[
    QueryInt,
    Query(ge=0, lt=2**63, description="the sequence number to start after (0: from the first event)"),
]
Kinds = Annotated[
    list[str] | None,
    Query(
        description="only these kinds (`invoice.confirmed`, `piece.transferred`, …), repeated or separated by "
        "commas; none: every kind"
    ),
]
Counterparty = Annotated[Address | None, Query(description="only events that name this participant")]


def visible_to(caller: Caller) -> str | None:
    """The party whose events ``caller`` sees, or None for every event (the regulator and the operator)."""
    return None if caller.is_operator or caller.is_regulator else caller.address


def _read(
    service: LedgerService, after: int, limit: int, party: str | None, kinds: list[str], counterparty: str | None
) -> list[FeedRow]:
    with service.sessions() as session:
        rows = read_feed(session, after, limit, party=party, kinds=kinds, counterparty=counterparty)
        session.expunge_all()
        return rows


@router.get("", response_model=FeedPage)
def list_events(
    service: Service,
    caller: CurrentCaller,
    after: After = 0,
    kinds: Kinds = None,
    counterparty: Counterparty = None,
    limit: Annotated[QueryInt, Query(ge=1, le=500, description="at most this many events")] = 100,
    export: FormatQuery = ExportFormat.JSON,
) -> dict[str, Any] | Response:
    """The events the caller may see after the sequence number `after`, oldest first, in the chain's order
    (block, log index). Each has a stable `id`, its `seq` in the feed, its `kind`, the business `fields`
    (amounts as integer fen) and its `parties`; `action` is `added`, or `retracted` for an event a
    reorganisation took off the chain (announced once more, under the same id). Send `next` back as `after`
    for the events that follow; it stays put while there are none.

    As a file (`format=csv` or `xlsx`): every such event after `after` (not `limit` of them), `fields` and
    `parties` as JSON text; the totals row counts them (see docs/reports.md)."""
    party, wanted = visible_to(caller), parse_kinds(kinds)
    if export is not ExportFormat.JSON:

        def every_event() -> Iterator[dict[str, Any]]:
            cursor = after
            while batch := _read(service, cursor, _STREAM_BATCH, party, wanted, counterparty):
                yield from (feed_view(row) for row in batch)
                cursor = batch[-1].seq

        return export_response(export, "events", [Table("events", columns_of(FeedEventView), every_event())])
    rows = _read(service, after, limit, party, wanted, counterparty)
    return {"items": [feed_view(row) for row in rows], "next": rows[-1].seq if rows else after, "limit": limit}


def _last_event_id(value: str | None) -> int | None:
    if value is None:
        return None
    if not re.fullmatch(r"0|[1-9][0-9]{0,17}", value.strip()):
        raise Problem(422, "validation", "Invalid request", "Last-Event-ID must be an event's sequence number")
    return int(value)


def sse_message(row: FeedRow) -> str:
    """One Server-Sent Event: ``id:`` the sequence number, ``event:`` the action, ``data:`` the event as JSON."""
    data = json.dumps(feed_view(row), separators=(",", ":"))
    return f"id: {row.seq}\nevent: {row.action}\ndata: {data}\n\n"


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "Server-Sent Events: `id:` the sequence number, `event:` added or retracted, `data:` the "
            "event as JSON (as an item of `GET /events`)",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def stream_events(
    request: Request,
    service: Service,
    caller: CurrentCaller,
    after: Annotated[
        QueryInt | None, Query(ge=0, lt=2**63, description="start after this sequence number (else Last-Event-ID)")
    ] = None,
    kinds: Kinds = None,
    counterparty: Counterparty = None,
    limit: Annotated[
        QueryInt | None, Query(ge=1, le=1_000_000, description="close the stream after this many events")
    ] = None,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> StreamingResponse:
    """The events the caller may see, as Server-Sent Events (`text/event-stream`), from the cursor on and then
    as the index stores them. `id:` is each event's sequence number: a consumer that reconnects sends the last
    one it saw as `Last-Event-ID` (browsers' EventSource do) and misses nothing. `event:` is `added`, or
    `retracted` for an event a reorganisation took off the chain. A comment line (`: heartbeat`) comes every
    `SCF_EVENTS_HEARTBEAT_SECONDS` while nothing happens. Without a cursor the stream starts at the first
    event."""
    resumed = _last_event_id(last_event_id)
    cursor = after if after is not None else (resumed or 0)
    party = visible_to(caller)
    wanted = parse_kinds(kinds)
    heartbeat = service.settings.events_heartbeat_seconds

    async def messages() -> AsyncIterator[str]:
        nonlocal cursor
        sent = 0
        quiet_since = time.monotonic()
        yield ": stream of scf-ledger events\n\n"
        while True:
            batch = _STREAM_BATCH if limit is None else min(_STREAM_BATCH, limit - sent)
            rows = await run_in_threadpool(_read, service, cursor, batch, party, wanted, counterparty)
            for row in rows:
                yield sse_message(row)
                cursor = row.seq
                sent += 1
            if limit is not None and sent >= limit:
                return
            if rows:
                quiet_since = time.monotonic()
                continue
            if await request.is_disconnected():
                return
            if time.monotonic() - quiet_since >= heartbeat:
                yield ": heartbeat\n\n"
                quiet_since = time.monotonic()
            await asyncio.sleep(_STREAM_POLL_SECONDS)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(messages(), media_type="text/event-stream", headers=headers)
