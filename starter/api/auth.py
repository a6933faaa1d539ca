"""Bearer tokens (docs/api.md "Auth"): HS256 JWTs with `sub`, `role`, `iat`, `exp`, `iss` and `aud`.

A token is refused unless every one of those claims is there and right: signed with the secret, issued by
and for this deployment (`iss`, `aud`), not issued in the future, living no longer than the deployment
allows (`exp - iat`), not expired, not issued before the deployment's `tokens_not_before` (the way to revoke
every token issued so far), and with no key written twice in its header or claims (a JSON parser keeps the
last of two `role` keys; another reader of the same token might keep the first).

Who may call what is declared per route with `allow(...)`; `starter.api.gate` reads those declarations and
answers 401 and 403 before a body is read, and `allow` checks again as the route runs. Whether a customer
owns what they ask for is `dependencies.OwnComplaintId`'s and the desk's business (another customer's order
or complaint is simply not found).

A link token (docs/api.md "Links in customers' emails", minted by `dispatch.links`) is a customer's token
with one more claim, `cid`: the one complaint it opens. It may live up to `REFUND_DESK_LINK_LIFETIME`
rather than `token_max_lifetime`, since an email is read days after it is sent; in exchange it reads that
complaint and takes the customer's actions on it, and is 403 `token_scope` anywhere else. It is the only
token taken from the query string (`?token=`), and only by `GET /v1/complaints/{complaint_id}`, the page a
link opens: a browser cannot send a header from a link.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from jwt.utils import base64url_decode
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import Headers, QueryParams
from starlette.types import Scope

from dispatch.settings import DispatchSettings
from policy.models import Actor, Identifier, Role
from starter.api.errors import ApiError
from starter.api.settings import TOKEN_AUDIENCE, TOKEN_ISSUER, ApiSettings

ALGORITHM = "HS256"
CALLER_ROLES = (Role.BACKEND, Role.SUPPORT, Role.CUSTOMER)
"""Roles a token may carry; `system` is the desk itself and is never handed out."""
REQUIRED_CLAIMS = ("sub", "role", "iat", "exp", "iss", "aud")
CLOCK_SKEW = timedelta(seconds=60)
"""How far in the future an `iat` may lie: the minting machine's clock may run a little ahead of ours."""
LINK_CLAIM = "cid"
"""The claim that makes a customer's token a link's: the id of the one complaint it opens."""
LINK_QUERY = "token"
"""The query parameter a link carries its token in."""
LINK_PATH = "/v1/complaints/{complaint_id}"
"""What a link token opens: this route, and the routes below it that admit customers, for its `cid`."""


class Principal(BaseModel):
    """Who is calling, as the token says."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    sub: Identifier
    role: Role
    cid: str | None = Field(default=None, min_length=1, max_length=200)
    """Set on a link token only: the complaint it is restricted to."""

    @property
    def actor(self) -> Actor:
        return Actor(role=self.role, id=self.sub)


@dataclass(frozen=True)
class TokenRules:
    """What a token must satisfy in this deployment (docs/settings.md)."""

    secret: str = field(repr=False)
    issuer: str = TOKEN_ISSUER
    audience: str = TOKEN_AUDIENCE
    max_lifetime: timedelta = timedelta(hours=24)
    not_before: datetime | None = None
    link_lifetime: timedelta = timedelta(days=7)
    """The longest a link token (one with `cid`) may live, instead of `max_lifetime`."""

    @classmethod
    def of(cls, settings: ApiSettings, dispatch: DispatchSettings | None = None) -> TokenRules:
        """The rules of `settings`; links live as long as `dispatch` (else the environment) says."""
        return cls(
            secret=settings.secret(),
            issuer=settings.token_issuer,
            audience=settings.token_audience,
            max_lifetime=settings.token_max_lifetime,
            not_before=settings.tokens_not_before,
            link_lifetime=(dispatch or DispatchSettings()).link_lifetime,
        )


def mint_token(
    secret: str,
    role: Role,
    sub: str,
    ttl: timedelta = timedelta(hours=1),
    *,
    issuer: str = TOKEN_ISSUER,
    audience: str = TOKEN_AUDIENCE,
    now: datetime | None = None,
    complaint_id: str | None = None,
) -> str:
    """A token for `sub` in `role`, issued at `now` (whole seconds, as JWTs count; the clock's by default)
    and valid for `ttl`: for development and tests (`refund-desk token`), and with `complaint_id` the token
    of a customer's link, restricted to that complaint (`dispatch/links.py`). The API refuses an ordinary
    token whose `ttl` is over its `token_max_lifetime`."""
    if role not in CALLER_ROLES:
        raise ValueError(f"tokens are for {', '.join(r.value for r in CALLER_ROLES)}")
    Principal(sub=sub, role=role, cid=complaint_id)  # refuse what the API would refuse
    issued = (now or datetime.now(UTC)).replace(microsecond=0)
    claims: dict[str, Any] = {
        "sub": sub,
        "role": role.value,
        "iat": issued,
        "exp": issued + ttl,
        "iss": issuer,
        "aud": audience,
    }
    if complaint_id is not None:
        claims[LINK_CLAIM] = complaint_id
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def read_token(rules: TokenRules, token: str) -> Principal:
    """The caller behind a token; `ApiError` 401 for anything the module's docstring lists."""
    claims = _verified_claims(rules, token)
    _refuse_repeated_keys(token)
    _check_lifetime(rules, claims)
    try:
        principal = Principal.model_validate(claims)
    except ValidationError:
        raise unauthorized("the token's sub, role or cid is not valid") from None
    if principal.role not in CALLER_ROLES:
        raise unauthorized("the token's role is not valid")
    if principal.cid is not None and principal.role is not Role.CUSTOMER:
        raise unauthorized("a link token (one with cid) is a customer's")
    return principal


def _verified_claims(rules: TokenRules, token: str) -> dict[str, Any]:
    """The claims, once the signature, `exp`, `iss` and `aud` are checked. `iat` is checked by
    `_check_lifetime` instead, with a clock skew that `exp` does not get."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            rules.secret,
            algorithms=[ALGORITHM],
            audience=rules.audience,
            issuer=rules.issuer,
            options={"require": list(REQUIRED_CLAIMS), "verify_iat": False},
        )
    except jwt.ExpiredSignatureError:
        raise unauthorized("the token has expired") from None
    except jwt.MissingRequiredClaimError as missing:
        raise unauthorized(f"the token has no {missing.claim}") from None
    except jwt.InvalidAudienceError:
        raise unauthorized(f"the token is not for {rules.audience}") from None
    except jwt.InvalidIssuerError:
        raise unauthorized(f"the token was not issued by {rules.issuer}") from None
    except (jwt.InvalidTokenError, ValueError, TypeError, OverflowError):
        raise unauthorized("the token is not valid") from None
    return claims


def _check_lifetime(rules: TokenRules, claims: dict[str, Any]) -> None:
    issued, expires = claims["iat"], claims["exp"]
    if not (_finite_number(issued) and _finite_number(expires)):
        raise unauthorized("the token's iat and exp must be numbers of seconds")
    if issued > time.time() + CLOCK_SKEW.total_seconds():
        raise unauthorized("the token is issued in the future")
    longest = rules.link_lifetime if LINK_CLAIM in claims else rules.max_lifetime
    if expires - issued > longest.total_seconds():
        raise unauthorized(f"the token lives longer than the {longest} this API allows")
    if rules.not_before is not None and issued < rules.not_before.timestamp():
        raise unauthorized("the token was issued before the tokens this API accepts (revoked)")


def _finite_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _refuse_repeated_keys(token: str) -> None:
    """A header or claims object with a key twice is refused: readers disagree on which one counts."""
    header, claims, _ = token.split(".")
    for segment in (header, claims):
        try:
            json.loads(base64url_decode(segment), object_pairs_hook=_unique_keys)
        except ValueError:
            raise unauthorized("the token repeats a key") from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("a repeated key")
    return dict(pairs)


def unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


bearer = HTTPBearer(
    auto_error=False, description="A JWT (HS256) with `sub`, `role`, `iat`, `exp`, `iss` and `aud`."
)
link_query = APIKeyQuery(
    name=LINK_QUERY,
    scheme_name="LinkToken",
    auto_error=False,
    description="A customer's link token (with `cid`), as the link in an email carries it: "
    "`GET /v1/complaints/{complaint_id}` only.",
)


def presented_token(scope: Scope, *, by_link: bool) -> tuple[str, bool]:
    """The token a request carries, and whether it came from the query string. `Authorization`, when
    sent, is the one that counts; the query's `token` only where the route takes a link (`by_link`)."""
    header = Headers(scope=scope).get("authorization")
    if header is not None:
        scheme, token = get_authorization_scheme_param(header)
        if scheme.lower() != "bearer" or not token:
            raise unauthorized("send Authorization: Bearer <token>")
        return token, False
    queried = QueryParams(scope.get("query_string", b"")).getlist(LINK_QUERY)
    if not queried:
        raise unauthorized("send Authorization: Bearer <token>")
    if not by_link:
        raise unauthorized(
            f"a token in the query string opens GET {LINK_PATH} only: send Authorization: Bearer <token>"
        )
    if len(queried) > 1:
        raise unauthorized("the query string carries two tokens")
    return queried[0], True


def authenticate(rules: TokenRules, scope: Scope, *, by_link: bool) -> Principal:
    """The caller behind the request's token (`ApiError` 401 otherwise). The query string takes a link's
    token only: an ordinary token, which opens everything its customer has, never travels in a URL."""
    token, queried = presented_token(scope, by_link=by_link)
    principal = read_token(rules, token)
    if queried and principal.cid is None:
        raise unauthorized(f"the query string takes a link's token (with {LINK_CLAIM}) only")
    return principal


def admit(principal: Principal, roles: frozenset[Role], route_path: str, params: Mapping[str, Any]) -> None:
    """403 unless `principal` may call the route of `route_path`, with `params` for its path: a link's
    token its own complaint only (`token_scope`), then any token its role (`forbidden`)."""
    if principal.cid is not None and not _opens(principal.cid, roles, route_path, params):
        raise ApiError(
            403,
            "token_scope",
            f"this link's token opens complaint {principal.cid} only (reading it, and the customer's "
            "actions on it): use a customer token for anything else",
        )
    if principal.role not in roles:
        raise forbidden(roles)


def _opens(complaint_id: str, roles: frozenset[Role], route_path: str, params: Mapping[str, Any]) -> bool:
    under = route_path == LINK_PATH or route_path.startswith(LINK_PATH + "/")
    return under and Role.CUSTOMER in roles and params.get("complaint_id") == complaint_id


ADMITTED = "refund_desk.principal"
"""Where `starter.api.gate` leaves the caller it authenticated, in the request's scope, for the route."""


def admitted(scope: Scope) -> Principal | None:
    """The caller the gate authenticated for this request (the same token, read the same way), if any."""
    found = scope.get(ADMITTED)
    return found if isinstance(found, Principal) else None


async def caller(
    request: Request, _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    """The caller, from `Authorization: Bearer`. (`_bearer` declares the scheme in the OpenAPI document.)
    The gate read the token already; the route takes its reading rather than decoding it again."""
    rules: TokenRules = request.app.state.tokens
    return admitted(request.scope) or authenticate(rules, request.scope, by_link=False)


async def link_caller(
    request: Request,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    _link: Annotated[str | None, Depends(link_query)],
) -> Principal:
    """The caller, from `Authorization: Bearer` or else a link's `?token=`."""
    rules: TokenRules = request.app.state.tokens
    return admitted(request.scope) or authenticate(rules, request.scope, by_link=True)


@dataclass(frozen=True)
class Allow:
    """A dependency admitting only `roles`: anyone else with a valid token gets 403. The gate reads
    `roles` to refuse the same callers before the body is read."""

    roles: frozenset[Role]

    async def __call__(self, request: Request, principal: Annotated[Principal, Depends(caller)]) -> Principal:
        admit(principal, self.roles, request.scope["route"].path, request.path_params)
        return principal


@dataclass(frozen=True)
class AllowByLink(Allow):
    """`Allow`, taking a link's token from the query string as well: the gate reads the class to know."""

    async def __call__(
        self, request: Request, principal: Annotated[Principal, Depends(link_caller)]
    ) -> Principal:
        admit(principal, self.roles, request.scope["route"].path, request.path_params)
        return principal


def allow(*roles: Role, by_link: bool = False) -> Allow:
    return AllowByLink(frozenset(roles)) if by_link else Allow(frozenset(roles))


def forbidden(roles: frozenset[Role]) -> ApiError:
    names = " or ".join(r.value for r in CALLER_ROLES if r in roles)
    return ApiError(403, "forbidden", f"this needs the {names} role")
