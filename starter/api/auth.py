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
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jwt.utils import base64url_decode
from pydantic import BaseModel, ConfigDict, ValidationError

from policy.models import Actor, Identifier, Role
from starter.api.errors import ApiError
from starter.api.settings import TOKEN_AUDIENCE, TOKEN_ISSUER, ApiSettings

ALGORITHM = "HS256"
CALLER_ROLES = (Role.BACKEND, Role.SUPPORT, Role.CUSTOMER)
"""Roles a token may carry; `system` is the desk itself and is never handed out."""
REQUIRED_CLAIMS = ("sub", "role", "iat", "exp", "iss", "aud")
CLOCK_SKEW = timedelta(seconds=60)
"""How far in the future an `iat` may lie: the minting machine's clock may run a little ahead of ours."""


class Principal(BaseModel):
    """Who is calling, as the token says."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    sub: Identifier
    role: Role

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

    @classmethod
    def of(cls, settings: ApiSettings) -> TokenRules:
        return cls(
            secret=settings.secret(),
            issuer=settings.token_issuer,
            audience=settings.token_audience,
            max_lifetime=settings.token_max_lifetime,
            not_before=settings.tokens_not_before,
        )


def mint_token(
    secret: str,
    role: Role,
    sub: str,
    ttl: timedelta = timedelta(hours=1),
    *,
    issuer: str = TOKEN_ISSUER,
    audience: str = TOKEN_AUDIENCE,
) -> str:
    """A token for `sub` in `role`, valid for `ttl` from now: for development and tests (`refund-desk
    token`). The API refuses it if `ttl` is over its `token_max_lifetime`."""
    if role not in CALLER_ROLES:
        raise ValueError(f"tokens are for {', '.join(r.value for r in CALLER_ROLES)}")
    Principal(sub=sub, role=role)  # refuse a sub the API would refuse
    now = datetime.now(UTC).replace(microsecond=0)
    claims = {"sub": sub, "role": role.value, "iat": now, "exp": now + ttl, "iss": issuer, "aud": audience}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def read_token(rules: TokenRules, token: str) -> Principal:
    """The caller behind a token; `ApiError` 401 for anything the module's docstring lists."""
    claims = _verified_claims(rules, token)
    _refuse_repeated_keys(token)
    _check_lifetime(rules, claims)
    try:
        principal = Principal.model_validate(claims)
    except ValidationError:
        raise unauthorized("the token's sub or role is not valid") from None
    if principal.role not in CALLER_ROLES:
        raise unauthorized("the token's role is not valid")
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
    if expires - issued > rules.max_lifetime.total_seconds():
        raise unauthorized(f"the token lives longer than the {rules.max_lifetime} this API allows")
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


async def caller(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise unauthorized("send Authorization: Bearer <token>")
    rules: TokenRules = request.app.state.tokens
    return read_token(rules, credentials.credentials)


@dataclass(frozen=True)
class Allow:
    """A dependency admitting only `roles`: anyone else with a valid token gets 403. The gate reads
    `roles` to refuse the same callers before the body is read."""

    roles: frozenset[Role]

    async def __call__(self, principal: Annotated[Principal, Depends(caller)]) -> Principal:
        if principal.role not in self.roles:
            raise forbidden(self.roles)
        return principal


def allow(*roles: Role) -> Allow:
    return Allow(frozenset(roles))


def forbidden(roles: frozenset[Role]) -> ApiError:
    names = " or ".join(r.value for r in CALLER_ROLES if r in roles)
    return ApiError(403, "forbidden", f"this needs the {names} role")
