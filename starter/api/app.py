"""The HTTP API of docs/api.md: a thin FastAPI layer over `starter.desk.ComplaintDesk`.

Each route declares who may call it (`dependencies`), translates the body into the policy's models, makes
one desk call and translates the result back. Every complaint action is a Temporal update, so what a route
returns is the complaint as the workflow holds it right after the action, and a refused action changes
nothing. Errors, whatever raises them, get one body (`errors`). In front of the routes, `gate` checks the
caller, the caller's rate and the body's limits before the body is read, and `cors` lets browsers call
`/codec` and nothing else. The browser pages (`starter.web`) are served by the same app.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline

from starter.api import idempotency, metrics, request_ids
from starter.api.auth import TokenRules
from starter.api.cors import CodecCors
from starter.api.errors import documented, install
from starter.api.gate import Gate, route_policies
from starter.api.ratelimit import RateLimiter
from starter.api.routers import (
    activations,
    codec,
    complaints,
    customer,
    customers,
    health,
    notices,
    orders,
    support,
    webhooks,
)
from starter.api.settings import ApiSettings
from starter.desk import ComplaintDesk, open_desk
from starter.telemetry import traces
from starter.web.app import install_pages

ROUTERS = (orders, activations, complaints, support, customer, customers, notices, health, codec, webhooks)

GATE_ERRORS = documented(408, 413, 429)
"""What `Gate` may answer on a route that takes a token, beside the 401 and 403 each route documents."""
OPEN_GATE_ERRORS = documented(408, 413)
"""What it may answer on `/healthz`, which takes none."""


def operation_id(route: APIRoute) -> str:
    """An operation is called by its function's name (`file_complaint`), which generated clients use as the
    method name, rather than FastAPI's default that appends the path and method."""
    return route.name


def create_app(desk: ComplaintDesk | None = None, settings: ApiSettings | None = None) -> FastAPI:
    """The API over `desk`, or over one opened from the environment for the app's lifetime. `/docs` and
    `/redoc` serve their JavaScript and CSS from the installed `fastapi-offline` package, not from a CDN,
    so they work on a machine without the internet."""
    settings = settings or ApiSettings()
    tokens = TokenRules.of(settings)  # a missing secret fails at start, not at the first request

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if desk is not None:
            app.state.desk = desk
            yield
            return
        async with open_desk() as opened:
            app.state.desk = opened
            yield

    app = FastAPIOffline(
        title="Refund Desk",
        version="1",
        summary="A shop's return policy run as Temporal workflows: orders, complaints, refunds.",
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        redirect_slashes=False,  # its redirect's Location echoes the request's Host header
    )
    app.state.tokens = tokens
    app.state.currency = settings.currency
    install(app)
    routes = [route for module in ROUTERS for route in module.router.routes if isinstance(route, APIRoute)]
    for module in ROUTERS:
        app.include_router(module.router, responses=OPEN_GATE_ERRORS if module is health else GATE_ERRORS)
    app.state.route_policies = route_policies(routes)  # what the gate checks, route by route
    install_pages(app)  # support's console and the customer's page, which the gate lets through
    idempotency.install(app, tokens)  # added before the gate, so it runs after it: on admitted callers
    app.add_middleware(
        Gate,
        policies=app.state.route_policies,
        tokens=tokens,
        limiter=RateLimiter(settings.rate_limit, settings.rate_burst),
        body_timeout=settings.body_timeout.total_seconds(),
    )
    app.add_middleware(CodecCors, origins=settings.codec_origins())
    metrics.install(app)  # `/metrics` outside the gate's table; counts the gate's and CORS' answers too
    traces.instrument_app(app)  # where this process traces: a span per request, around everything
    request_ids.install(app)  # outermost: every line of a request, the gate's refusals too, has its id
    return app
