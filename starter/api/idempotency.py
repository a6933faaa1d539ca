"""Idempotency keys on the API's POSTs (docs/api.md "Idempotency"): a retry gets the first answer back.

A pure ASGI middleware, inside `starter.api.gate`: a request reaches it with its caller admitted and its
body within the route's limits. For a POST under `/v1/` with an `Idempotency-Key` header it reads the body,
then asks the ledger's store (`ledger.idempotency`) about the key, scoped to the caller (the token's role
and sub, the token checked again here):

- a new key: the request runs, and its answer is kept before the client sees its last byte, so a retry
  sent on receipt finds it. Kept are 2xx and 4xx answers but 401, 403, 408 and 429, which are about the
  caller or the connection, not the request; a 5xx (Temporal or the ledger away, a workflow that did not
  answer) releases the key, so the retry runs again;
- the same key with the same method, path and body again: the kept answer, status, body, `Content-Type`
  and `Location`, with `Idempotent-Replayed: true`;
- the same key with anything else: 422 `idempotency_key_reused`;
- the same key while its first request still runs: 409 `idempotency_key_in_use`, `Retry-After: 1`.

The body is kept as an HMAC-SHA256 keyed from the JWT secret, not a plain hash: the body of `.../access`
holds server credentials, which a plain hash in the ledger would expose to a guess of the password.
`/codec` is a pure translation and its answers are decrypted payloads, which must not land in the ledger:
it ignores the header, as does every GET.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger.idempotency import (
    DEFAULT_TTL,
    Claim,
    Claimed,
    IdempotencyStore,
    InProgress,
    KeyedRequest,
    Mismatch,
    Replay,
    StoredResponse,
)
from policy.settings import Duration
from starter.api.auth import TokenRules, read_token
from starter.api.errors import ApiError, error_response
from starter.api.gate import replay_body
from starter.api.schemas.common import MAX_BODY_BYTES
from starter.desk.failures import failure_of

log = logging.getLogger("refund_desk.api")

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
KEYED_PREFIX = "/v1/"
KEY_PATTERN = "^[!-~]{1,255}$"
"""1-255 visible ASCII characters: a UUID, a ULID, an order id with a suffix all fit."""
_KEY = re.compile(KEY_PATTERN)
NOT_KEPT = frozenset({401, 403, 408, 429})
"""Client errors about the caller or the connection rather than the request: a retry must run again."""


class IdempotencySettings(BaseSettings):
    """How long a key is kept (docs/api.md "Idempotency")."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    ttl: Duration = Field(
        default=DEFAULT_TTL,
        validation_alias=AliasChoices("REFUND_DESK_IDEMPOTENCY_TTL", "ttl"),
        description="How long the answer to a request with an Idempotency-Key is kept: ISO-8601 or seconds.",
    )


def install(app: FastAPI, tokens: TokenRules) -> None:
    """Add the middleware (call it before the gate's `add_middleware`, so the gate runs first) and declare
    the header on every keyed operation of the OpenAPI document."""
    app.add_middleware(IdempotencyKeys, tokens=tokens, ttl=IdempotencySettings().ttl)
    _declare_header(app)


class IdempotencyKeys:
    """The middleware of the module's docstring."""

    def __init__(self, app: ASGIApp, *, tokens: TokenRules, ttl: timedelta) -> None:
        self.app = app
        self.tokens = tokens
        self.ttl = ttl
        self._fingerprint_key = hmac.digest(tokens.secret.encode(), b"refund-desk idempotency", "sha256")
        self._store: IdempotencyStore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        keys = _keys(scope)
        caller = self._caller(scope) if keys else None
        if not keys or caller is None:
            await self.app(scope, receive, send)  # the app answers a missing or bad token itself
            return
        if len(keys) > 1 or not _KEY.fullmatch(keys[0]):
            await error_response(_invalid_key(keys))(scope, receive, send)
            return
        body = await _whole_body(receive)
        if body is None:
            return  # the client went away
        if isinstance(body, ApiError):
            await error_response(body)(scope, receive, send)
            return
        await self._keyed(scope, replay_body(body, receive), send, caller, keys[0], body)

    async def _keyed(
        self, scope: Scope, receive: Receive, send: Send, caller: str, key: str, body: bytes
    ) -> None:
        """Claim the key for the request, then run the request or answer for it."""
        request = KeyedRequest(scope["method"], _target(scope), self._fingerprint(body))
        store = self._store_of(scope)
        try:
            claim = await store.claim(caller, key, request)
        except Exception as error:
            await _store_failure(error)(scope, receive, send)
            return
        if isinstance(claim, Claimed):
            await self._run(scope, receive, send, _Holder(store, caller, key, claim.attempt))
        else:
            await _answer(claim)(scope, receive, send)

    def _caller(self, scope: Scope) -> str | None:
        """`role:sub` of the request's valid bearer token, or None."""
        scheme, token = get_authorization_scheme_param(Headers(scope=scope).get("authorization"))
        if scheme.lower() != "bearer" or not token:
            return None
        try:
            principal = read_token(self.tokens, token)
        except ApiError:
            return None
        return f"{principal.role.value}:{principal.sub}"

    def _fingerprint(self, body: bytes) -> str:
        return hmac.new(self._fingerprint_key, body, hashlib.sha256).hexdigest()

    def _store_of(self, scope: Scope) -> IdempotencyStore:
        """The store on the desk's ledger, which the app's lifespan opens."""
        engine = scope["app"].state.desk.ledger.engine
        if self._store is None or self._store.engine is not engine:
            self._store = IdempotencyStore(engine, self.ttl)
        return self._store

    async def _run(self, scope: Scope, receive: Receive, send: Send, holder: _Holder) -> None:
        """Run the request; keep or release its answer before its last byte goes out. A request that ends
        without a whole answer (an exception, a crash) releases the key."""
        captured = _Captured()

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured.status = message["status"]
                captured.headers = Headers(raw=message.get("headers", []))
            elif message["type"] == "http.response.body":
                captured.body.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    captured.complete = True
                    await holder.settle(captured)
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            if not captured.complete:
                await holder.release()


class _Captured:
    """The answer as the app sends it."""

    def __init__(self) -> None:
        self.status = 0
        self.headers = Headers()
        self.body = bytearray()
        self.complete = False

    def stored(self) -> StoredResponse:
        return StoredResponse(
            self.status, self.headers.get("content-type"), self.headers.get("location"), bytes(self.body)
        )


@dataclass(frozen=True)
class _Holder:
    """The request that claimed a key, and what it does with the key once it has its answer."""

    store: IdempotencyStore
    caller: str
    key: str
    attempt: str

    async def settle(self, answer: _Captured) -> None:
        """Keep the answer, or release the key if it is not one to keep. The answer goes out either way: the
        request took effect, and a failure here leaves the key to its lease."""
        if not _kept(answer.status):
            await self.release()
            return
        try:
            await self.store.complete(self.caller, self.key, self.attempt, answer.stored())
        except Exception as error:
            log.warning("idempotency key %r not kept (%s: %s)", self.key, type(error).__name__, error)

    async def release(self) -> None:
        try:
            await self.store.release(self.caller, self.key, self.attempt)
        except Exception as error:
            log.warning("idempotency key %r not released (%s: %s)", self.key, type(error).__name__, error)


def _kept(status: int) -> bool:
    return 200 <= status < 500 and status not in NOT_KEPT


def _keys(scope: Scope) -> list[str]:
    """The request's Idempotency-Key values, for a POST to a route under `/v1/`; [] for any other."""
    if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].startswith(KEYED_PREFIX):
        return []
    keys = Headers(scope=scope).getlist(HEADER)
    return keys if keys and _routed(scope) else []


def _routed(scope: Scope) -> bool:
    """Whether a route takes the request: for an unknown path the router answers 404 without the body."""
    return any(route.matches(scope)[0] is Match.FULL for route in scope["app"].router.routes)


def _target(scope: Scope) -> str:
    query: bytes = scope.get("query_string", b"")
    path: str = scope["path"]
    return f"{path}?{query.decode('latin-1')}" if query else path


def _invalid_key(keys: list[str]) -> ApiError:
    why = "is sent more than once" if len(keys) > 1 else "must be 1-255 visible ASCII characters"
    return ApiError(422, "idempotency_key_invalid", f"the {HEADER} header {why}")


async def _whole_body(receive: Receive) -> bytes | ApiError | None:
    """The request's body (the gate has bounded it already; this bound is for a request it let through);
    None if the client disconnected."""
    chunks = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.extend(message.get("body", b""))
        if len(chunks) > MAX_BODY_BYTES:
            return ApiError(413, "payload_too_large", f"a request body is {MAX_BODY_BYTES} bytes at most")
        if not message.get("more_body", False):
            return bytes(chunks)


def _answer(claim: Claim) -> Response:
    """The answer to a request whose key was claimed before."""
    if isinstance(claim, Replay):
        stored = claim.response
        headers = {REPLAYED: "true"}
        if stored.location is not None:
            headers["Location"] = stored.location
        return Response(stored.body, stored.status, headers=headers, media_type=stored.content_type)
    if isinstance(claim, InProgress):
        running = f"a request with this {HEADER} is still running: try again in a second"
        return error_response(ApiError(409, "idempotency_key_in_use", running, headers={"Retry-After": "1"}))
    assert isinstance(claim, Mismatch)
    first = claim.first
    reused = (
        f"this {HEADER} was sent with another request first ({first.method} {first.path}, or another "
        "body): a new request needs a new key"
    )
    return error_response(ApiError(422, "idempotency_key_reused", reused))


def _store_failure(error: Exception) -> Response:
    """The contract's answer when the store cannot be asked: as the app's own handlers answer it."""
    failure = failure_of(error)
    if failure is None or failure.usage:
        log.error("idempotency store failed", exc_info=error)
        return error_response(ApiError(500, "internal_error", "something went wrong on our side"))
    log.warning("%s: %s (idempotency store: %s)", failure.code, failure.message, type(error).__name__)
    return error_response(ApiError(failure.status, failure.code, failure.message))


def _declare_header(app: FastAPI) -> None:
    """The header as an optional parameter of every keyed operation, so generated clients can send it."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        for path, operations in schema.get("paths", {}).items():
            post = operations.get("post")
            if path.startswith(KEYED_PREFIX) and post is not None:
                parameters = post.setdefault("parameters", [])
                if not any(p.get("name") == HEADER for p in parameters):
                    parameters.append(HEADER_PARAMETER)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


HEADER_PARAMETER: dict[str, Any] = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": (
        "Makes a retry safe: the same key with the same body again answers the first response (with "
        f"`{REPLAYED}: true`) instead of acting twice, for a day (`REFUND_DESK_IDEMPOTENCY_TTL`). Another "
        "body with the same key is 422 `idempotency_key_reused`; a key whose first request still runs, "
        "409 `idempotency_key_in_use`; a key that is not 1-255 visible ASCII characters, 422 "
        "`idempotency_key_invalid`."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": KEY_PATTERN},
}
