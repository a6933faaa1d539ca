"""Who before what: the checks every request passes before its body is read (docs/api.md "Auth", "Limits").

A pure ASGI middleware. It finds the route a request is for by its path and method, as the app's router
would, and then, in this order:

1. the bearer token (401) and the route's roles (403), read from the `allow(...)` dependencies the route
   itself declares, so the routes stay the one place that says who may call them; a link's token (with
   `cid`) only on its own complaint (403 `token_scope`), and from the query string only on a route that
   declares `allow(..., by_link=True)` (`starter.api.auth`);
2. the caller's request rate (429, `starter.api.ratelimit`);
3. the route's body limit (413, `starter.api.limits`), from Content-Length at once, else as the bytes come;
4. the body's arrival within `body_timeout` (408, and the connection is closed);
5. the body's JSON size and depth (422), on the raw bytes, before anything parses them.

Only then does the app run, with the body already read. So an anonymous or wrong-role request never has
its body read, let alone parsed, and a refused body costs no more than the bytes received so far. The
route's own `allow(...)` checks the role again as the route runs, on the gate's reading of the token;
ownership (404 for another customer's) stays the routes' business. A request no route takes (404, 405)
and the docs are passed on as they are.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from policy.models import Role
from starter.api.auth import ADMITTED, Allow, AllowByLink, Principal, TokenRules, admit, authenticate
from starter.api.errors import ApiError, error_response
from starter.api.limits import body_limit, json_shape_refusal
from starter.api.ratelimit import RateLimiter

PUBLIC_ROUTES = frozenset({"healthz"})
"""The API's only routes that take no token; any other route without `allow(...)` stops the app's start."""


@dataclass(frozen=True)
class RoutePolicy:
    """What the gate checks for one route: who may call it (None: anyone), whether a link's token may come
    in its query string, and how much body it takes."""

    route: APIRoute
    roles: frozenset[Role] | None
    max_body: int
    by_link: bool = False


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for dependency in dependant.dependencies:
        yield dependency
        yield from _dependencies(dependency)


def admitted_roles(route: APIRoute) -> frozenset[Role] | None:
    """The roles every `allow(...)` among the route's dependencies admits; None if it has none."""
    declared = [dep.call.roles for dep in _dependencies(route.dependant) if isinstance(dep.call, Allow)]
    return frozenset.intersection(*declared) if declared else None


def route_policies(routes: Iterable[APIRoute]) -> list[RoutePolicy]:
    """A policy per route, in the router's order; refuses a route that would be open by omission."""
    policies = []
    for route in routes:
        roles = admitted_roles(route)
        if (roles is None) != (route.name in PUBLIC_ROUTES):
            raise RuntimeError(f"route {route.name} must either declare allow(...) or be in PUBLIC_ROUTES")
        by_link = any(isinstance(dep.call, AllowByLink) for dep in _dependencies(route.dependant))
        policies.append(
            RoutePolicy(route=route, roles=roles, max_body=body_limit(route.name), by_link=by_link)
        )
    return policies


class _Gone(Exception):
    """The client disconnected before its body was read: there is no one to answer."""


class Gate:
    """The checks of the module's docstring, in front of `app`."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        policies: list[RoutePolicy],
        tokens: TokenRules,
        limiter: RateLimiter,
        body_timeout: float,
    ) -> None:
        self.app = app
        self.policies = policies
        self.tokens = tokens
        self.limiter = limiter
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self._route(scope) if scope["type"] == "http" else None
        if found is None:
            await self.app(scope, receive, send)
            return
        policy, params = found
        try:
            if policy.roles is not None:
                self._admit(scope, policy, policy.roles, params)
            receive = await self._read_body(scope, receive, policy.max_body)
        except ApiError as refusal:
            await error_response(refusal)(scope, receive, send)
            return
        except _Gone:
            return
        await self.app(scope, receive, send)

    def _route(self, scope: Scope) -> tuple[RoutePolicy, dict[str, Any]] | None:
        """The route's policy and the parameters of its path."""
        for policy in self.policies:
            match, child = policy.route.matches(scope)
            if match is Match.FULL:
                return policy, child.get("path_params", {})
        return None

    def _admit(
        self, scope: Scope, policy: RoutePolicy, roles: frozenset[Role], params: dict[str, Any]
    ) -> Principal:
        principal = authenticate(self.tokens, scope, by_link=policy.by_link)
        admit(principal, roles, policy.route.path, params)
        scope[ADMITTED] = principal  # the route's `allow(...)` takes it rather than reading the token again
        wait = self.limiter.wait((principal.role.value, principal.sub))
        if wait > 0:
            seconds = math.ceil(wait)
            raise ApiError(
                429,
                "rate_limited",
                f"too many requests from this caller: try again in {seconds} s",
                headers={"Retry-After": str(seconds)},
            )
        return principal

    async def _read_body(self, scope: Scope, receive: Receive, limit: int) -> Receive:
        """The request's body, read whole within the limits, handed on as one message; `receive` itself
        when the request has no body."""
        headers = Headers(scope=scope)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _too_large(limit)
        if declared in ("", "0") and "transfer-encoding" not in headers:
            return receive
        try:
            async with asyncio.timeout(self.body_timeout):
                body = await _whole_body(receive, limit)
        except TimeoutError:
            raise ApiError(
                408,
                "request_timeout",
                f"the request's body did not arrive within {self.body_timeout:g} s",
                headers={"Connection": "close"},
            ) from None
        refusal = json_shape_refusal(body)
        if refusal is not None:
            message = f"the request is not valid (body: {refusal})"
            fields = [{"field": "body", "message": refusal}]
            raise ApiError(422, "validation_error", message, fields=fields)
        return replay_body(body, receive)


async def _whole_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    received = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Gone
        chunk: bytes = message.get("body", b"")
        received += len(chunk)
        if received > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def replay_body(body: bytes, receive: Receive) -> Receive:
    """The body as one message, then whatever the connection says next (a disconnect)."""
    pending = [body]

    async def replayed() -> Message:
        if pending:
            return {"type": "http.request", "body": pending.pop(), "more_body": False}
        return await receive()

    return replayed


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"this route takes a request body of {limit} bytes at most")
