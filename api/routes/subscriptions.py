"""Webhook subscriptions (:mod:`api.webhooks`): create, list, read, delete, resume, and read the delivery log.

A participant subscribes to the events it may see (as in ``GET /events``); the regulator and the operator to
every event. Each subscription belongs to its creator: another participant gets a 404 for it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from api.auth import Caller, CurrentCaller, Service
from api.models import DeliveryPage, NewSubscriptionView, SubscriptionList, SubscriptionView
from api.problems import Problem
from api.routes.common import MAX_KINDS, Address, JsonInt, PathId, QueryInt, not_found, parse_kinds
from api.webhooks import (
    ACTIVE,
    DELETED,
    PAUSED,
    DeliveryRecord,
    SubscriptionRecord,
    TargetRefused,
    WebhookSettings,
    check_target,
    delivery_view,
    new_secret,
    seal_secret,
    subscription_view,
)
from ledger.index.feed import last_seq

router = APIRouter(prefix="/subscriptions", tags=["subscriptions"])


class NewSubscription(BaseModel):
    """A webhook subscription to create."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2048, description="where to POST each event (http or https)")
    kinds: list[str] = Field(
        default_factory=list, max_length=MAX_KINDS, description="only these kinds (none: every kind it may see)"
    )
    counterparty: Address | None = Field(None, description="only events that name this participant")
    start: Literal["now"] | Annotated[JsonInt, Field(ge=0, lt=2**63)] = Field(
        "now", description="`now` (events from now on) or a sequence number of the feed to start after (0: all)"
    )


def _owned(session: Any, caller: Caller, subscription_id: int) -> SubscriptionRecord:
    record = session.get(SubscriptionRecord, subscription_id) if 0 < subscription_id < 2**63 else None
    if record is None or record.status == DELETED or record.owner != caller.address:
        raise not_found(f"subscription {subscription_id}")
    assert isinstance(record, SubscriptionRecord)
    return record


@router.post("", status_code=201, response_model=NewSubscriptionView)
async def create_subscription(body: NewSubscription, service: Service, caller: CurrentCaller) -> dict[str, Any]:
    """Subscribe a URL to the events the caller may see. The answer holds the subscription's signing
    `secret`, shown this once: keep it to verify the `SCF-Signature` header of each delivery (see the README).
    A URL whose host resolves to a private, loopback, link-local or metadata address is refused unless the
    operator allow-listed it."""
    kinds = parse_kinds(body.kinds)
    config = WebhookSettings.of(service.settings)
    try:
        await check_target(body.url, config.allow)
    except TargetRefused as exc:
        raise Problem(422, "webhook-target-refused", "Webhook target refused", str(exc)) from None

    def create() -> dict[str, Any]:
        with service.sessions() as session, session.begin():
            cursor = last_seq(session) if body.start == "now" else int(body.start)
            record = SubscriptionRecord(
                owner=caller.address,
                url=body.url,
                kinds=kinds,
                counterparty=body.counterparty,
                secret_sealed=b"",
                secret_key_id="",
                cursor=cursor,
                status=ACTIVE,
                failures=0,
            )
            session.add(record)
            session.flush()  # its id, which the sealed secret is bound to
            secret = new_secret()
            seal_secret(record, service.secrets, secret)
            return {**subscription_view(record), "secret": secret}

    created = await run_in_threadpool(create)
    if service.deliverer is not None:
        service.deliverer.poke()
    return created


@router.get("", response_model=SubscriptionList)
def list_subscriptions(service: Service, caller: CurrentCaller) -> dict[str, Any]:
    """The caller's subscriptions (deleted ones left out)."""
    with service.sessions() as session:
        records = session.scalars(
            select(SubscriptionRecord)
            .where(SubscriptionRecord.owner == caller.address, SubscriptionRecord.status != DELETED)
            .order_by(SubscriptionRecord.id)
        )
        return {"items": [subscription_view(r) for r in records]}


@router.get("/{subscription_id}", response_model=SubscriptionView)
def get_subscription(subscription_id: PathId, service: Service, caller: CurrentCaller) -> dict[str, Any]:
    """One of the caller's subscriptions: its filters, its cursor (the last event delivered), its status."""
    with service.sessions() as session:
        return subscription_view(_owned(session, caller, subscription_id))


@router.delete("/{subscription_id}", status_code=204, response_class=Response)
def delete_subscription(subscription_id: PathId, service: Service, caller: CurrentCaller) -> Response:
    """Stop and delete a subscription (its delivery log stays for the operator)."""
    with service.sessions() as session, session.begin():
        _owned(session, caller, subscription_id).status = DELETED
    if service.deliverer is not None:
        service.deliverer.poke()
    return Response(status_code=204)


@router.post("/{subscription_id}/resume", response_model=SubscriptionView)
def resume_subscription(subscription_id: PathId, service: Service, caller: CurrentCaller) -> dict[str, Any]:
    """Resume a subscription paused after repeated failures: delivery starts again with the event that failed."""
    with service.sessions() as session, session.begin():
        record = _owned(session, caller, subscription_id)
        if record.status == PAUSED:
            record.status = ACTIVE
            record.failures = 0
            record.paused_reason = None
        view = subscription_view(record)
    if service.deliverer is not None:
        service.deliverer.poke()
    return view


@router.get("/{subscription_id}/deliveries", response_model=DeliveryPage)
def list_deliveries(
    subscription_id: PathId,
    service: Service,
    caller: CurrentCaller,
    after: Annotated[QueryInt, Query(ge=0, lt=2**63, description="the delivery id to start after")] = 0,
    limit: Annotated[QueryInt, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """The subscription's delivery log, oldest first: every attempt, its answer's status or its error."""
    with service.sessions() as session:
        _owned(session, caller, subscription_id)
        records = list(
            session.scalars(
                select(DeliveryRecord)
                .where(DeliveryRecord.subscription_id == subscription_id, DeliveryRecord.id > after)
                .order_by(DeliveryRecord.id)
                .limit(limit)
            )
        )
        items = [delivery_view(r) for r in records]
    return {"items": items, "next": items[-1]["id"] if items else after}
