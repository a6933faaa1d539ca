"""CORS for the codec alone, and the console's codec pass: the Temporal web UI calls `/codec` from a browser;
nothing else is meant to be called from a web page, so no other route answers a preflight or carries
`Access-Control-*` headers.

**Origins.** Only the origins of `REFUND_DESK_CODEC_CORS_ORIGINS` are let in, each echoed exactly in
`Access-Control-Allow-Origin` (never `*`) with `Access-Control-Allow-Credentials: true`, so the UI may send
cookies; every `/codec` answer says `Vary: Origin`. A preflight from any other origin, or for another
method or header, is 403 and names no origin, so the browser keeps the call from being sent.

**Credentials.** A request with `Authorization` (the CLI's `--codec-auth`) is judged by the gate as ever.
One without it but with the console's codec pass (`starter.web.sessions.CODEC_COOKIE`, set at console
sign-in, scoped to `/codec`) is let in as that support person if the pass is a live support session (not
expired, not signed out of, not revoked) and the request comes from one of the origins above: the pass
then stands in for a support token, a token for the session's person that lives a minute and never leaves
the process, so the gate, its rate limit and the route's `allow(...)` judge it like any other. A pass that
does not open is 401; a pass sent from an origin not let in is 403 (a page on another port of the same
host is the same site, so its browser would send the pass along).
"""

from __future__ import annotations

from datetime import timedelta

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from policy.models import Role
from starter.api.auth import TokenRules, mint_token, unauthorized
from starter.api.errors import ApiError, error_response
from starter.desk.failures import failure_of
from starter.web.pages import sessions_of
from starter.web.sessions import CODEC_COOKIE, CODEC_PATH

CODEC_PREFIX = CODEC_PATH
METHODS = ("POST",)
HEADERS = ("authorization", "content-type", "x-namespace", "accept", "accept-language", "content-language")
"""What a preflight may ask for: the codec's one method, and the headers the UI and the CLI send."""
MAX_AGE = 600
PASS_TOKEN_LIFETIME = timedelta(minutes=1)
"""How long the token a codec pass stands in for lives: the one request it is made for."""


class CodecCors:
    """CORS and the codec pass in front of `/codec` and its routes; every other path goes past it."""

    def __init__(self, app: ASGIApp, origins: list[str]) -> None:
        self.app = app
        self.origins = frozenset(origins) - {"*", "null"}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not (path == CODEC_PREFIX or path.startswith(CODEC_PREFIX + "/")):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        allowed = origin is not None and origin in self.origins

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer = MutableHeaders(scope=message)
                answer.add_vary_header("Origin")
                if allowed and origin is not None:
                    answer["Access-Control-Allow-Origin"] = origin
                    answer["Access-Control-Allow-Credentials"] = "true"
            await send(message)

        if scope["method"] == "OPTIONS" and origin is not None and "access-control-request-method" in headers:
            await self._preflight(headers, allowed)(scope, receive, send_with_cors)
            return
        if "authorization" not in headers and CODEC_COOKIE in Request(scope).cookies:
            try:
                scope = await self._with_pass(scope, allowed)
            except ApiError as refusal:
                await error_response(refusal)(scope, receive, send_with_cors)
                return
        await self.app(scope, receive, send_with_cors)

    def _preflight(self, headers: Headers, allowed: bool) -> Response:
        asked = {h.strip().lower() for h in headers.get("access-control-request-headers", "").split(",")}
        asked.discard("")
        method = headers["access-control-request-method"]
        if not allowed or method not in METHODS or not asked <= set(HEADERS):
            return Response("this origin, method or header may not call the codec", status_code=403)
        return Response(
            status_code=200,
            headers={
                "Access-Control-Allow-Methods": ", ".join(METHODS),
                "Access-Control-Allow-Headers": ", ".join(HEADERS),
                "Access-Control-Max-Age": str(MAX_AGE),
                "Vary": "Access-Control-Request-Method, Access-Control-Request-Headers",
            },
        )

    async def _with_pass(self, scope: Scope, allowed: bool) -> Scope:
        """`scope` with the support token the codec pass stands in for; `ApiError` if it stands for none."""
        request = Request(scope)
        if not allowed:
            raise ApiError(
                403,
                "forbidden",
                "the console's session decodes payloads only from the Temporal UI's origins "
                "(REFUND_DESK_CODEC_CORS_ORIGINS): elsewhere send Authorization: Bearer <support token>",
            )
        sessions = sessions_of(request)
        try:
            session = await sessions.read_codec_pass(request.cookies[CODEC_COOKIE])
        except Exception as exc:
            failure = failure_of(exc)
            if failure is None or failure.usage:
                raise
            raise ApiError(failure.status, failure.code, failure.message) from None
        if session is None:
            raise unauthorized(
                "the console's session has ended, was signed out of or is not valid: sign in to the "
                "console again, or send Authorization: Bearer <support token>"
            )
        rules: TokenRules = sessions.rules
        token = mint_token(
            rules.secret,
            Role.SUPPORT,
            session.sub,
            min(PASS_TOKEN_LIFETIME, rules.max_lifetime),
            issuer=rules.issuer,
            audience=rules.audience,
        )
        headers = [(k, v) for k, v in scope["headers"] if k != b"authorization"]
        headers.append((b"authorization", f"Bearer {token}".encode()))
        return {**scope, "headers": headers}
