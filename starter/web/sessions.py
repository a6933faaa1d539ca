"""Browser sessions: a token, checked once at sign-in, turned into an HttpOnly, SameSite=Strict cookie.

A session is a JWT signed with the API's secret, but for an audience of its own (`<aud>/web-session`): a
session cookie is no bearer token for the API, and no API token passes for a session. It names the person
(`sub`, `role`), the complaint a customer's link restricted it to (`cid`), and its own id (`sid`), which
sign-out spends in the ledger (`ledger.spent_tokens`), so a signed-out cookie opens nothing even before it
expires. Revoking every API token (`REFUND_DESK_TOKENS_NOT_BEFORE`) revokes the sessions issued before too.

Support signs in with a support token pasted into a form, or with a one-time link (`make run` prints one):
a JWT for the audience `<aud>/console-sign-in` whose `jti` is spent at its first use.

A console sign-in also hands the browser a codec pass (`codec_pass`): the same session (`sid`, `sub`,
`exp`) for an audience of its own (`<aud>/codec`), in a cookie scoped to `/codec`, which the API's codec
takes instead of a support token (`starter.api.cors`), so the Temporal web UI decodes payloads for whoever
signed in to the console. Its `sid` is the session's, so the sign-out that spends one spends both.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import jwt

from ledger.spent_tokens import SpentTokens
from policy.models import Actor, Role
from starter.api.auth import ALGORITHM, Principal, TokenRules

SESSION_CLAIMS = ("sub", "role", "iat", "exp", "iss", "aud", "sid")
LINK_CLAIMS = ("sub", "role", "iat", "exp", "iss", "aud", "jti")
LINK_QUERY = "link"
"""The query parameter a console sign-in link carries its token in."""
CODEC_COOKIE = "rd_codec_session"
CODEC_PATH = "/codec"
"""The codec pass's cookie and the path it is scoped to: the codec's routes, nothing else."""


class Area(StrEnum):
    """The two places a browser signs in to, each with its own cookie, scoped to its own path."""

    CONSOLE = "console"
    CUSTOMER = "my"

    @property
    def cookie(self) -> str:
        return f"rd_{self.value}_session"

    @property
    def path(self) -> str:
        return f"/{self.value}"

    @property
    def role(self) -> Role:
        return Role.SUPPORT if self is Area.CONSOLE else Role.CUSTOMER


class SignInRefused(Exception):
    """A sign-in token or link that does not open a session; the message says why, for the person."""


@dataclass(frozen=True)
class WebSession:
    sid: str
    role: Role
    sub: str
    expires_at: datetime
    complaint_id: str | None = None
    """Set when a customer's emailed link opened the session: the one complaint it shows."""

    @property
    def actor(self) -> Actor:
        return Actor(role=self.role, id=self.sub)

    def opens(self, complaint_id: str) -> bool:
        """Whether this session may show `complaint_id` at all (ownership is the desk's to check)."""
        return self.complaint_id in (None, complaint_id)


def link_audience(rules: TokenRules) -> str:
    return f"{rules.audience}/console-sign-in"


def sign_in_link_token(rules: TokenRules, sub: str, lifetime: timedelta, *, now: datetime) -> str:
    """A one-time token signing support person `sub` in to the console within `lifetime`."""
    issued = now.replace(microsecond=0)
    Principal(sub=sub, role=Role.SUPPORT)  # refuse what a session would refuse
    claims = {
        "sub": sub,
        "role": Role.SUPPORT.value,
        "iat": issued,
        "exp": issued + lifetime,
        "iss": rules.issuer,
        "aud": link_audience(rules),
        "jti": secrets.token_urlsafe(24),
    }
    return jwt.encode(claims, rules.secret, algorithm=ALGORITHM)


def sign_in_link(base_url: str, rules: TokenRules, sub: str, lifetime: timedelta, *, now: datetime) -> str:
    """`{base_url}/console/sign-in?link=<token>`: what `make run` and `refund-desk console-link` print."""
    token = sign_in_link_token(rules, sub, lifetime, now=now)
    return f"{base_url.rstrip('/')}{Area.CONSOLE.path}/sign-in?{LINK_QUERY}={token}"


@dataclass(frozen=True)
class SessionTokens:
    """Mints and reads sessions and sign-in links under the API's token rules."""

    rules: TokenRules
    spent: SpentTokens

    @property
    def session_audience(self) -> str:
        return f"{self.rules.audience}/web-session"

    @property
    def link_audience(self) -> str:
        return link_audience(self.rules)

    @property
    def codec_audience(self) -> str:
        return f"{self.rules.audience}/codec"

    def open_session(
        self, principal: Principal, lifetime: timedelta, *, now: datetime, ends_by: datetime | None = None
    ) -> tuple[str, WebSession]:
        """A new session for `principal` (its link's complaint kept) and the cookie value carrying it. It
        lives `lifetime`, or until `ends_by` if sooner (a link's own expiry)."""
        issued = now.replace(microsecond=0)
        expires = issued + lifetime if ends_by is None else min(issued + lifetime, ends_by)
        session = WebSession(
            sid=secrets.token_urlsafe(24),
            role=principal.role,
            sub=principal.sub,
            expires_at=expires,
            complaint_id=principal.cid,
        )
        claims: dict[str, Any] = {
            "sub": session.sub,
            "role": session.role.value,
            "iat": issued,
            "exp": expires,
            "iss": self.rules.issuer,
            "aud": self.session_audience,
            "sid": session.sid,
        }
        if session.complaint_id is not None:
            claims["cid"] = session.complaint_id
        return jwt.encode(claims, self.rules.secret, algorithm=ALGORITHM), session

    async def read_session(self, value: str, area: Area) -> WebSession | None:
        """The session a cookie carries, or None if it is not one of ours for `area`, has expired, predates
        the deployment's revocation or was signed out of."""
        return await self._read(value, self.session_audience, area)

    async def _read(self, value: str, audience: str, area: Area) -> WebSession | None:
        claims = self._decode(value, audience, SESSION_CLAIMS)
        if claims is None or claims.get("role") != area.role.value:
            return None
        cid = claims.get("cid")
        try:
            session = WebSession(
                sid=str(claims["sid"]),
                role=Role(claims["role"]),
                sub=str(claims["sub"]),
                expires_at=datetime.fromtimestamp(claims["exp"], UTC),
                complaint_id=None if cid is None else str(cid),
            )
        except (ValueError, TypeError, OverflowError):
            return None
        if await self.spent.is_spent(session.sid):
            return None
        return session

    def codec_pass(self, session: WebSession, *, now: datetime) -> str:
        """The cookie value that lets a support `session` decode payloads at `/codec`: the session itself,
        for the codec's audience, ending with it."""
        if session.role is not Role.SUPPORT or session.complaint_id is not None:
            raise ValueError("only support's console session decodes payloads")
        claims: dict[str, Any] = {
            "sub": session.sub,
            "role": session.role.value,
            "iat": now.replace(microsecond=0),
            "exp": session.expires_at,
            "iss": self.rules.issuer,
            "aud": self.codec_audience,
            "sid": session.sid,
        }
        return jwt.encode(claims, self.rules.secret, algorithm=ALGORITHM)

    async def read_codec_pass(self, value: str) -> WebSession | None:
        """The support session a codec pass carries, or None if it is not one (a console or customer
        session's cookie, a bearer token, a forgery), has expired, predates the deployment's revocation
        or was signed out of."""
        return await self._read(value, self.codec_audience, Area.CONSOLE)

    async def end_session(self, session: WebSession) -> None:
        """Sign-out: the session's id is spent, so its cookie opens nothing from now on."""
        await self.spent.spend(session.sid, session.expires_at)

    async def redeem_sign_in_link(self, token: str) -> Principal:
        """Support's principal behind a sign-in link, spending it; `SignInRefused` if it is not a valid
        link, has expired or was used already."""
        claims = self._decode(token, self.link_audience, LINK_CLAIMS)
        if claims is None or claims.get("role") != Role.SUPPORT.value:
            raise SignInRefused("this sign-in link is not valid or has expired: ask for a new one")
        try:
            principal = Principal(sub=claims["sub"], role=Role.SUPPORT)
        except ValueError:
            raise SignInRefused("this sign-in link is not valid: ask for a new one") from None
        expires = datetime.fromtimestamp(claims["exp"], UTC)
        if not await self.spent.spend(str(claims["jti"]), expires):
            raise SignInRefused("this sign-in link was used already: each link signs in once")
        return principal

    def _decode(self, token: str, audience: str, required: tuple[str, ...]) -> dict[str, Any] | None:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.rules.secret,
                algorithms=[ALGORITHM],
                audience=audience,
                issuer=self.rules.issuer,
                options={"require": list(required)},
            )
        except (jwt.InvalidTokenError, ValueError, TypeError, OverflowError):
            return None
        issued = claims["iat"]
        not_before = self.rules.not_before
        if not isinstance(issued, int | float) or (
            not_before is not None and issued < not_before.timestamp()
        ):
            return None
        return claims
