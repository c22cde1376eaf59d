"""``GET /health`` (chain reachable, chain id, indexer lag) and ``GET /metrics`` (Prometheus text)."""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from api.auth import CurrentCaller, Service
from api.models import Health, Rules

router = APIRouter(tags=["system"])

REGISTRY = CollectorRegistry()
REQUESTS = Counter("scf_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=REGISTRY)
LATENCY = Histogram(
    "scf_http_request_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
IN_FLIGHT = Gauge("scf_pipeline_in_flight", "ledger operations signed and not yet final", registry=REGISTRY)
CHAIN_HEAD = Gauge("scf_chain_head_block", "the chain's latest block", registry=REGISTRY)
INDEXED = Gauge("scf_indexed_block", "the last block in the index", registry=REGISTRY)


def observe(request: Request, status: int, seconds: float) -> None:
    route = request.scope.get("route")
    template = getattr(route, "path", "unmatched")
    REQUESTS.labels(request.method, template, str(status)).inc()
    LATENCY.labels(request.method, template).observe(seconds)


@router.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "the chain does not answer: the report, `status` degraded"}},
)
def health(service: Service) -> JSONResponse:
    """Whether the service reaches its chain, and how far the index trails it; to anyone, without a key (for
    load balancers and monitors). 200 with `status` ok, or 503 with `status` degraded and the reason."""
    body: dict[str, Any] = {"chain_id": service.settings.chain_id, "contracts": dict(service.deployment.addresses)}
    try:
        lag = service.indexer_lag()
        body.update(status="ok", chain="reachable", **lag)
        status = 200
    except Exception as exc:
        body.update(status="degraded", chain="unreachable", detail=str(exc).splitlines()[0][:200])
        status = 503
    body["in_flight"] = service.pipeline.in_flight
    body["pipeline_owner"] = service.owns_pipeline
    body["process"] = os.getpid()
    body["handed_off"] = service.pipeline.handed_off
    index_process = service.index_process
    body["indexer_process"] = None if index_process is None else index_process.pid
    body["indexer_restarts"] = 0 if index_process is None else index_process.restarts
    return JSONResponse(body, status_code=status)


@router.get("/rules", response_model=Rules)
def rules(service: Service, caller: CurrentCaller) -> Rules:
    """The ledger's rule parameters now (the longest tenor, the grace period, the pledge ratios), read from the
    contracts, with the chain's time: what a client checks a due date or a pledge's maturity against before it
    asks, instead of its own clock. To any participant."""
    del caller
    return Rules(chain_time=service.client.chain_time(), **service.client.rules())


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(service: Service) -> Response:
    """The service's metrics in the Prometheus text format (requests, latency, operations in flight, the chain's
    head and the index's last block); to anyone, without a key."""
    IN_FLIGHT.set(service.pipeline.in_flight)
    try:
        lag = service.indexer_lag()
        CHAIN_HEAD.set(lag["head"])
        if lag["indexed"] is not None:
            INDEXED.set(lag["indexed"])
    except Exception:
        pass
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
