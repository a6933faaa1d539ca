"""Bearer tokens (docs/api.md "Auth"): HS256 JWTs with `sub`, `role` and an enforced `exp`.

Who may call what is declared per route with `allow(...)` (through `dependencies`); whether a customer owns
what they ask for is `dependencies.OwnComplaintId`'s and the desk's business (another customer's order or
complaint is simply not found).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, ValidationError

from policy.models import Actor, Identifier, Role
from starter.api.errors import ApiError

ALGORITHM = "HS256"
CALLER_ROLES = (Role.BACKEND, Role.SUPPORT, Role.CUSTOMER)
"""Roles a token may carry; `system` is the desk itself and is never handed out."""


class Principal(BaseModel):
    """Who is calling, as the token says."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    sub: Identifier
    role: Role

    @property
    def actor(self) -> Actor:
        return Actor(role=self.role, id=self.sub)


def mint_token(secret: str, role: Role, sub: str, ttl: timedelta = timedelta(hours=1)) -> str:
    """A token for `sub` in `role`, valid for `ttl`: for development and tests (`refund-desk token`)."""
    if role not in CALLER_ROLES:
        raise ValueError(f"tokens are for {', '.join(r.value for r in CALLER_ROLES)}")
    Principal(sub=sub, role=role)  # refuse a sub the API would refuse
    now = datetime.now(UTC)
    claims = {"sub": sub, "role": role.value, "iat": now, "exp": now + ttl}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def read_token(secret: str, token: str) -> Principal:
    """The caller behind a token; `ApiError` 401 for a missing claim, a bad signature or an expired one."""
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub", "role"]}
        )
    except jwt.ExpiredSignatureError:
        raise _unauthorized("the token has expired") from None
    except jwt.InvalidTokenError:
        raise _unauthorized("the token is not valid") from None
    try:
        principal = Principal.model_validate(claims)
    except ValidationError:
        raise _unauthorized("the token's sub or role is not valid") from None
    if principal.role not in CALLER_ROLES:
        raise _unauthorized("the token's role is not valid")
    return principal


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


bearer = HTTPBearer(auto_error=False, description="A JWT (HS256) with `sub`, `role` and `exp`.")


async def caller(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("send Authorization: Bearer <token>")
    secret: str = request.app.state.jwt_secret
    return read_token(secret, credentials.credentials)


def allow(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting only `roles`: anyone else with a valid token gets 403."""
    names = " or ".join(r.value for r in roles)

    async def admitted(principal: Annotated[Principal, Depends(caller)]) -> Principal:
        if principal.role not in roles:
            raise ApiError(403, "forbidden", f"this needs the {names} role")
        return principal

    return admitted
