"""The FastAPI application: ``create_app(settings)``; ``uvicorn api.app:app`` or ``scf serve`` runs it.

Start-up (the lifespan) brings the ledger up (:meth:`api.service.LedgerService.start`): secrets checked,
database migrated, chain checked, contracts deployed if needed, pipeline and indexer running; or takes a
service already started (``scf serve`` starts it first, so that a failure is one line, not a traceback). The
first start prints the operator's API key once; then the garbage collector's policy is set
(:mod:`api.gc_policy`). :mod:`api.edge` sits in front of every route: forwarded
headers from trusted proxies only, request-size limits, security headers.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from starlette.types import Scope

from api import auth, batch, docs, gc_policy, openapi, operations, portal, problems
from api.audit_log import AuditLog, AuditLogMiddleware
from api.edge import BodyLimitMiddleware, EdgeMiddleware, RateLimiter
from api.json_response import FastJSONResponse
from api.request_log import RequestLogMiddleware
from api.routes import (
    acts,
    audit,
    docex,
    events,
    gateway,
    money,
    participants,
    receivables,
    registration,
    regulator,
    sensors,
    subscriptions,
    system,
    warehouse,
)
from api.service import LedgerService
from ledger.catalogue import CATALOGUE, Catalogue
from ledger.settings import Settings, get_settings

logger = logging.getLogger("api")


def create_app(
    settings: Settings | None = None,
    *,
    run_indexer: bool = True,
    service: LedgerService | None = None,
    catalogue: Catalogue = CATALOGUE,
    extra_routers: Sequence[APIRouter] = (),
) -> FastAPI:
    """The application; ``service``, when given, is a ledger already started, which the application stops at
    its shutdown. ``catalogue``: the operations the ledger's client knows (:mod:`ledger.catalogue`), and
    ``extra_routers`` the routes of any operations added to it (:mod:`api.actions`)."""

    def current_settings() -> Settings:
        return service.settings if service is not None else settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ledger = service or await LedgerService.start(current_settings(), run_indexer=run_indexer, catalogue=catalogue)
        app.state.ledger = ledger
        app.state.sign_in_limiter = RateLimiter(ledger.settings.sign_in_requests_per_minute)
        announce_operator_key(ledger)
        gc_policy.tune()
        try:
            yield
        finally:
            app.state.ledger = None
            await ledger.stop()

    app = FastAPI(
        title="scf-ledger",
        version="0.1.0",
        summary="Supply-chain finance ledger: confirmed receivables, financing, warehouse-receipt pledges.",
        lifespan=lifespan,
        default_response_class=FastJSONResponse,
        # FastAPI's /docs and /redoc load their scripts from a CDN: api.docs serves /docs from our own origin.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    problems.install(app)
    openapi.install(app)
    docs.install(app)
    portal.install(app)
    # Added first, so innermost: the routes read the body through it (api.edge).
    app.add_middleware(BodyLimitMiddleware, settings_of=current_settings)
    # The regulator's gateway refuses every write but freezes (api.routes.gateway); others pass everything.
    app.add_middleware(gateway.ReadOnlyGatewayMiddleware)

    # The request id, the request's log line and its metrics (api.request_log).
    app.add_middleware(RequestLogMiddleware)

    # One audit record per action, with its final status and request id.
    app.add_middleware(AuditLogMiddleware, log_of=_audit_log_of)
    # Added last, so outermost: every middleware sees the client and scheme a trusted proxy reported, and every
    # answer gets the security headers (api.edge).
    app.add_middleware(EdgeMiddleware, settings_of=current_settings)

    routers = (
        auth.router,
        operations.router,
        participants.router,
        money.router,
        receivables.router,
        warehouse.router,
        sensors.router,
        registration.router,
        regulator.router,
        system.router,
        audit.router,
        events.router,
        subscriptions.router,
        acts.router,
        gateway.router,
        *extra_routers,
        batch.router,
    )
    for router in routers:
        app.include_router(router)
    app.state.batch_targets = batch.targets(routers)  # what a batch's items may name (api.batch)
    # Documents between gateways: not batch items (an upload's bytes, a peer's signed envelope).
    app.include_router(docex.router)
    return app


OWN_ACCOUNT_KEY = {
    "operator": "The operator's API key",
    "member": "The API key of this gateway's own account (its relayer: it serves participants, POST /gateway/...)",
    "regulator": "The regulator's API key",
}
"""What the first start's key is, by the gateway's role (docs/consortium.md)."""


def announce_operator_key(service: LedgerService) -> None:
    """Print the operator's API key when this start created it (the first start): it is shown once only."""
    if service.operator_api_key is None:
        return
    banner = (
        "\n" + "=" * 78 + "\n"
        f"  {OWN_ACCOUNT_KEY[service.role]} (shown once, stored only as a hash):\n\n    {service.operator_api_key}\n\n"
        "  Use it as `Authorization: Bearer <key>`; rotate with POST /participants/{id}/keys,\n"
        "  or, if it is lost, with `scf api-key reissue` on this machine.\n" + "=" * 78
    )
    print(banner, flush=True)


def _audit_log_of(scope: Scope) -> AuditLog | None:
    service: LedgerService | None = getattr(scope["app"].state, "ledger", None)
    return None if service is None else service.audit_log


def service_of(app: FastAPI) -> LedgerService:
    service: LedgerService = app.state.ledger
    return service


app = create_app()
