"""`GET /metrics`: the desk in Prometheus' text format (docs/metrics.md).

Two kinds of figures, and why they differ:

- This process's requests (`RequestMetrics`, an ASGI middleware in front of everything else): a counter by
  route template, method and status, and a latency histogram by route template and method. Per process,
  lost on restart: Prometheus sums them across the API's processes (`sum(rate(...))`).
- The business (`ledger.metrics`): open complaints, escalations, refunds, replacements, notices, the
  dispatcher's lag, read from the ledger at each scrape, so every process shows the same figures and a
  restart loses none; a dashboard takes one process's (`max(...)`), never their sum.

A route's label is its template (`/v1/complaints/{complaint_id}`), never the path it was called with, so
no complaint id or link token reaches a label, and a label's values are bounded by the routes.

`/metrics` takes no token, like `/healthz`: it is added after the gate's table is made, so the gate lets it
through as it does the browser pages, and it is not in the OpenAPI document. Its figures name no customer
and no complaint, but they do tell how the shop is doing: in production only the scraper should reach it
(a network policy, or the reverse proxy refusing `/metrics` from outside).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Final

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger.metrics import LedgerFigures, LedgerMetrics
from starter.api.dependencies import Desk

log = logging.getLogger("refund_desk.api.metrics")

LEDGER_TIMEOUT_SECONDS: Final = 5.0
"""How long a scrape waits for the ledger's figures before it answers without them (`ledger_up` 0)."""

METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Methods named in a label as they are; any other is `other`, so a caller cannot add label values."""

UNMATCHED: Final = "unmatched"
"""The route label of a request no route takes (a 404 for an unknown path)."""


class HttpMetrics:
    """This process's request counter and latency histogram, one pair per app (not the global registry:
    each app, and each test's app, counts its own requests)."""

    def __init__(self) -> None:
        self.requests = Counter(
            "refund_desk_http_requests",
            "HTTP requests answered by this API process, by route template, method and status.",
            ["route", "method", "status"],
            registry=None,
        )
        self.duration = Histogram(
            "refund_desk_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response, by route template and method.",
            ["route", "method"],
            registry=None,
        )

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.duration.labels(route, method).observe(seconds)


def route_template(routes: Iterable[BaseRoute], chosen: object, request: Scope) -> str:
    """The template of the route that takes (or would take, but for its method) the request; `UNMATCHED`
    if none. `chosen` is the route the router left in the scope, if it ran and says; a request the gate or
    CORS answered never reached the router, and a mount (`/assets`) does not say, so `request` (its path and
    method as they came) is matched against `routes` as the router would."""
    if isinstance(chosen, BaseRoute):
        return str(getattr(chosen, "path", UNMATCHED))
    partial: BaseRoute | None = None
    for route in routes:
        match, _ = route.matches(request)
        if match is Match.FULL:
            return str(getattr(route, "path", UNMATCHED))
        if match is Match.PARTIAL and partial is None:
            partial = route
    return str(getattr(partial, "path", UNMATCHED)) if partial is not None else UNMATCHED


class RequestMetrics:
    """Times and counts every HTTP request, whoever answers it: the route, the gate, CORS, or an error."""

    def __init__(self, app: ASGIApp, *, routes: Sequence[BaseRoute], metrics: HttpMetrics) -> None:
        self.app = app
        self.routes = routes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # The router rewrites the scope's paths for a mount: keep them as they came, to match afterwards.
        request = {key: scope[key] for key in ("type", "method", "path", "root_path") if key in scope}
        status = 500  # what the server answers when the app raises before it starts a response

        async def counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counted)
        finally:
            method = scope["method"] if scope["method"] in METHODS else "other"
            route = route_template(self.routes, scope.get("route"), request)
            self.metrics.observe(route, method, status, time.perf_counter() - started)


class LedgerCollector(Collector):
    """The ledger's figures of one scrape as Prometheus metrics; `figures` None: the ledger did not answer,
    and only `refund_desk_ledger_up` 0 is shown."""

    def __init__(self, figures: LedgerFigures | None) -> None:
        self.figures = figures

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "refund_desk_ledger_up",
            "1 if this scrape read the ledger's figures, 0 if the ledger did not answer.",
        )
        up.add_metric([], 0 if self.figures is None else 1)
        yield up
        if self.figures is not None:
            yield from ledger_metrics(self.figures)


def ledger_metrics(figures: LedgerFigures) -> Iterator[Metric]:
    """The figures as metric families: counters for what only grows, gauges for the rest."""
    open_complaints = GaugeMetricFamily(
        "refund_desk_complaints_open",
        "Complaints not yet final, by kind and status.",
        labels=["kind", "status"],
    )
    for (kind, status), count in sorted(figures.open_complaints.items()):
        open_complaints.add_metric([kind, status], count)
    yield open_complaints
    escalations = CounterMetricFamily(
        "refund_desk_escalations",
        "Complaints escalated because support had not reviewed them by their deadline (R13), by kind.",
        labels=["kind"],
    )
    for kind, count in sorted(figures.escalations.items()):
        escalations.add_metric([kind], count)
    yield escalations
    yield from _money(figures, "refunds", "refunded_amount", "Refunds issued", "Money refunded")
    yield from _money(figures, "replacements", "replacement_value", "Replacements issued", "Their value")
    notices = CounterMetricFamily(
        "refund_desk_notices",
        "Notices (emails and webhooks) whose delivery ended, by channel and how: delivered, failed after "
        "their retry period, or undeliverable (nowhere to send them).",
        labels=["channel", "state"],
    )
    for (channel, state), count in sorted(figures.notices.items()):
        notices.add_metric([channel, state], count)
    yield notices
    yield GaugeMetricFamily(
        "refund_desk_dispatcher_lag_seconds",
        "Age of the oldest notice still waiting to be delivered; 0 when none waits.",
        value=figures.dispatcher_lag.total_seconds(),
    )


def _money(
    figures: LedgerFigures, what: str, money: str, count_help: str, money_help: str
) -> Iterator[Metric]:
    moved = figures.refunds if what == "refunds" else figures.replacements
    count = CounterMetricFamily(f"refund_desk_{what}", f"{count_help}, by currency.", labels=["currency"])
    total = CounterMetricFamily(
        f"refund_desk_{money}", f"{money_help}, in the currency's units, by currency.", labels=["currency"]
    )
    for currency, figure in sorted(moved.items()):
        count.add_metric([currency], figure.count)
        total.add_metric([currency], float(figure.amount))
    yield count
    yield total


async def read_figures(metrics: LedgerMetrics) -> LedgerFigures | None:
    """The ledger's figures now, or None if the ledger does not answer within `LEDGER_TIMEOUT_SECONDS`."""
    try:
        async with asyncio.timeout(LEDGER_TIMEOUT_SECONDS):
            return await metrics.read(datetime.now(UTC))
    except (SQLAlchemyError, OSError, TimeoutError) as error:
        log.warning("metrics: the ledger did not answer: %s", type(error).__name__)
        return None


router = APIRouter(include_in_schema=False)


@router.get("/metrics")
async def metrics(request: Request, desk: Desk) -> Response:
    """This process's request metrics, the process's own (memory, CPU, GC) and the ledger's figures."""
    registry = CollectorRegistry(auto_describe=False)
    http: HttpMetrics = request.app.state.http_metrics
    for collector in (http.requests, http.duration, PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    registry.register(LedgerCollector(await read_figures(LedgerMetrics(desk.ledger.engine))))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def install(app: FastAPI) -> None:
    """Add `/metrics` and the middleware that counts every request. Call it after the gate and CORS are
    added: a middleware added later runs outside them, and so counts and times their refusals too."""
    app.state.http_metrics = HttpMetrics()
    app.include_router(router)
    gated: list[BaseRoute] = [policy.route for policy in app.state.route_policies]
    mounts = [route for route in app.router.routes if isinstance(route, Mount)]
    app.add_middleware(RequestMetrics, routes=[*gated, *mounts], metrics=app.state.http_metrics)
