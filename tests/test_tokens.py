"""Tokens that must not live forever, over real HTTP (docs/api.md "Auth"): `iat` required and not in the
future, `exp - iat` capped, `iss` and `aud` this deployment's, tokens issued before
`REFUND_DESK_TOKENS_NOT_BEFORE` refused (revocation), and no key written twice.

Each refused token is sent to an endpoint that would write (the backend's `POST /v1/orders`) and one that
reads (support's list); each is 401 with the Bearer challenge, and the ledger is as it was. Each refusal
has its accepted twin, so the 401s are the claim's doing. Nothing is mocked: uvicorn on a loopback port, the
real desk, a worker on the time-skipping Temporal server, a real SQLite ledger.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from policy.models import Role
from starter.api.auth import mint_token
from starter.api.settings import TOKEN_AUDIENCE, TOKEN_ISSUER
from starter.desk import ComplaintDesk
from tests.conftest import JWT_SECRET, Api, serving
from tests.test_api import error_of, new_customer, order_body
from tests.test_hostile_input import settled, snapshot

Json = dict[str, Any]
DAY = 86_400


def claims(now: int, role: str = "backend", sub: str = "shop", **changes: Any) -> Json:
    """What `mint_token` writes for a ten-minute token issued at `now`, with `changes` (None removes a
    claim)."""
    base: Json = {
        "sub": sub,
        "role": role,
        "iat": now,
        "exp": now + 600,
        "iss": TOKEN_ISSUER,
        "aud": TOKEN_AUDIENCE,
    }
    merged = base | changes
    return {name: value for name, value in merged.items() if value is not None}


def signed(payload: Json) -> str:
    return jwt.encode(payload, JWT_SECRET, algorithm="HS256")


def _segment(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def signed_text(header: str, payload: str) -> str:
    """A token whose header and claims are exactly these JSON texts (keys repeated as written), HS256."""
    signing_input = f"{_segment(header)}.{_segment(payload)}"
    digest = hmac.new(JWT_SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(digest).decode().rstrip('=')}"


async def assert_refused(api: Api, token: str, why: str) -> str:
    """401 with the challenge on a write and on a read, and nothing written; returns the message."""
    before = await settled(api.desk.ledger)
    client = api.client({"Authorization": f"Bearer {token}"})
    written = await client.post("/v1/orders", json=order_body(new_customer()))
    assert error_of(written, 401)["code"] == "unauthorized", why
    assert written.headers["WWW-Authenticate"] == "Bearer"
    listed = await client.get("/v1/complaints")
    assert error_of(listed, 401)["code"] == "unauthorized", why
    assert await snapshot(api.desk.ledger) == before
    message: str = error_of(written, 401)["message"]
    return message


async def assert_accepted(api: Api, token: str, why: str) -> None:
    response = await api.client({"Authorization": f"Bearer {token}"}).post(
        "/v1/orders", json=order_body(new_customer())
    )
    assert response.status_code == 201, (why, response.text)


Claims = Callable[[int], Json]
"""Claims made when the test runs, from the time it runs: a token made at collection could expire first."""


@pytest.mark.parametrize(
    "token",
    [
        lambda now: signed({"sub": "shop", "role": "backend", "exp": 10**30}),
        lambda now: signed_text(
            '{"alg": "HS256", "typ": "JWT"}',
            f'{{"sub": "cust-1", "role": "customer", "exp": {now + 600}, "role": "backend"}}',
        ),
    ],
    ids=["exp-10^30", "role-twice"],
)
async def test_the_findings_as_they_were_made_are_401(api: Api, token: Callable[[int], str]) -> None:
    """Tokens shaped as they were minted (`sub`, `role`, `exp`): one with `exp` 10^30 was accepted, so a
    leaked one was good forever; a customer's with a second `role` key, `backend`, acted as the backend."""
    await assert_refused(api, token(int(time.time())), "as found")


@pytest.mark.parametrize(
    ("refused", "accepted", "message"),
    [
        (lambda n: claims(n, exp=10**30), lambda n: claims(n, exp=n + DAY), "lives longer"),
        (lambda n: claims(n, exp=1e30), lambda n: claims(n, exp=n + 600.5), "lives longer"),
        (lambda n: claims(n, exp=n + DAY + 1), lambda n: claims(n, exp=n + DAY), "lives longer"),
        (lambda n: claims(n, iat=None), lambda n: claims(n), "no iat"),
        (lambda n: claims(n, iat="yesterday"), lambda n: claims(n), "numbers of seconds"),
        (lambda n: claims(n, iat=True), lambda n: claims(n), "numbers of seconds"),
        (
            lambda n: claims(n, iat=n + 3600, exp=n + 4200),
            lambda n: claims(n, iat=n + 30, exp=n + 630),
            "in the future",
        ),
        (lambda n: claims(n, iss=None), lambda n: claims(n), "no iss"),
        (lambda n: claims(n, iss="someone-else"), lambda n: claims(n), "not issued by refund-desk"),
        (lambda n: claims(n, aud=None), lambda n: claims(n), "no aud"),
        (
            lambda n: claims(n, aud="another-api"),
            lambda n: claims(n, aud=[TOKEN_AUDIENCE, "another-api"]),
            "not for refund-desk-api",
        ),
    ],
    ids=[
        "exp-10^30",
        "exp-1e30-float",
        "a-day-and-a-second",
        "no-iat",
        "iat-text",
        "iat-boolean",
        "iat-an-hour-ahead",
        "no-iss",
        "another-iss",
        "no-aud",
        "another-aud",
    ],
)
async def test_a_token_without_a_bounded_life_or_for_another_deployment_is_401(
    api: Api, refused: Claims, accepted: Claims, message: str
) -> None:
    """`exp` of 10^30 used to be accepted, and nothing required `iat`, `iss` or `aud`. The twin in each case
    is accepted: a token of exactly the longest lifetime (24 h by default), `iat` within a minute of clock
    skew, an `aud` list that names this API."""
    now = int(time.time())
    said = await assert_refused(api, signed(refused(now)), message)
    assert message in said, said
    await assert_accepted(api, signed(accepted(now)), message)


async def test_minted_tokens_carry_iat_iss_and_aud_and_a_shorter_max_lifetime_is_enforced(
    desk: ComplaintDesk,
) -> None:
    """REFUND_DESK_TOKEN_MAX_LIFETIME, ..._ISSUER and ..._AUDIENCE: a deployment's own values."""
    async with serving(
        desk, token_max_lifetime=timedelta(minutes=30), token_issuer="shop-idp", token_audience="desk"
    ) as api:
        ours = {"issuer": "shop-idp", "audience": "desk"}

        def ours_for(ttl: timedelta) -> str:
            return mint_token(
                JWT_SECRET, Role.BACKEND, "shop", ttl, issuer=ours["issuer"], audience=ours["audience"]
            )

        minted = ours_for(timedelta(minutes=30))
        decoded = jwt.decode(minted, JWT_SECRET, algorithms=["HS256"], audience="desk")
        assert decoded["iss"] == "shop-idp" and decoded["exp"] - decoded["iat"] == 1800
        await assert_accepted(api, minted, "30 min, ours")
        too_long = ours_for(timedelta(minutes=31))
        assert "lives longer" in await assert_refused(api, too_long, "31 min")
        default_issuer = mint_token(JWT_SECRET, Role.BACKEND, "shop", timedelta(minutes=10))
        assert "not issued by shop-idp" in await assert_refused(api, default_issuer, "another issuer")


async def test_tokens_issued_before_tokens_not_before_are_revoked(desk: ComplaintDesk) -> None:
    """REFUND_DESK_TOKENS_NOT_BEFORE revokes every token issued before it (a leaked one among them) without
    a new secret; tokens issued since are accepted. Restarting the API with the setting is the revocation."""
    cutoff = datetime.now(UTC).replace(microsecond=0)
    leaked = signed(claims(int(cutoff.timestamp()) - 1))
    async with serving(desk) as api:
        await assert_accepted(api, leaked, "no cutoff yet")
    async with serving(desk, tokens_not_before=cutoff) as api:
        assert "revoked" in await assert_refused(api, leaked, "issued a second before the cutoff")
        await assert_accepted(api, signed(claims(int(cutoff.timestamp()))), "issued at the cutoff")
        await assert_accepted(api, api.token(Role.BACKEND, "shop"), "minted now")


@pytest.mark.parametrize(
    ("header", "payload"),
    [
        (
            '{"alg": "HS256", "typ": "JWT"}',
            '{"sub": "cust-1", "role": "customer", "iat": %(iat)d, "exp": %(exp)d, "iss": "refund-desk", '
            '"aud": "refund-desk-api", "role": "backend"}',
        ),
        (
            '{"alg": "HS256", "typ": "JWT"}',
            '{"sub": "cust-1", "sub": "shop", "role": "backend", "iat": %(iat)d, "exp": %(exp)d, '
            '"iss": "refund-desk", "aud": "refund-desk-api"}',
        ),
        (
            '{"alg": "HS256", "alg": "HS256", "typ": "JWT"}',
            '{"sub": "shop", "role": "backend", "iat": %(iat)d, "exp": %(exp)d, "iss": "refund-desk", '
            '"aud": "refund-desk-api"}',
        ),
    ],
    ids=["role-twice", "sub-twice", "alg-twice-in-the-header"],
)
async def test_a_token_with_a_key_written_twice_is_401(api: Api, header: str, payload: str) -> None:
    """`{"role": "customer", ..., "role": "backend"}` was read as the backend (the last key wins in Python's
    parser; another reader of the same token may take the first). Now such a token is refused outright."""
    now = int(time.time())
    token = signed_text(header, payload % {"iat": now, "exp": now + 600})
    assert "repeats a key" in await assert_refused(api, token, "a key twice")
    unique = json.dumps(dict(json.loads(payload % {"iat": now, "exp": now + 600})))
    await assert_accepted(api, signed_text('{"alg": "HS256", "typ": "JWT"}', unique), "each key once")
