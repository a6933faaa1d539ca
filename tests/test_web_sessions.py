"""Browser sessions and the console's one-time sign-in links, on both ledgers: what opens a session, what
ends one, and that neither a session nor a link passes for an API token (nor the reverse)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
from sqlalchemy import func, select

from ledger.repository import Ledger
from ledger.schema import SpentTokenRow
from ledger.spent_tokens import SpentTokens
from policy.models import Role
from starter.api.auth import Principal, TokenRules
from starter.web.csrf import CsrfRefused, check_csrf, csrf_token
from starter.web.sessions import Area, SessionTokens, SignInRefused, sign_in_link, sign_in_link_token
from starter.web.settings import WebSettings
from tests.conftest import JWT_SECRET, Api

RULES = TokenRules(secret=JWT_SECRET)
ALICE = Principal(sub="alice", role=Role.SUPPORT)
HOUR = timedelta(hours=1)


def tokens(ledger: Ledger, rules: TokenRules = RULES) -> SessionTokens:
    return SessionTokens(rules=rules, spent=SpentTokens(ledger.engine))


async def test_a_session_opens_its_own_area_only_until_it_ends(any_ledger: Ledger) -> None:
    sessions = tokens(any_ledger)
    value, session = sessions.open_session(ALICE, HOUR, now=datetime.now(UTC))
    read = await sessions.read_session(value, Area.CONSOLE)
    assert read == session and read.actor.id == "alice"
    assert await sessions.read_session(value, Area.CUSTOMER) is None, "a support session is no customer's"
    assert await sessions.read_session(value + "x", Area.CONSOLE) is None
    await sessions.end_session(session)
    assert await sessions.read_session(value, Area.CONSOLE) is None, "signed out before it expires"


async def test_an_expired_or_revoked_session_opens_nothing(any_ledger: Ledger) -> None:
    sessions = tokens(any_ledger)
    old, _ = sessions.open_session(ALICE, HOUR, now=datetime.now(UTC) - 2 * HOUR)
    assert await sessions.read_session(old, Area.CONSOLE) is None
    fresh, _ = sessions.open_session(ALICE, HOUR, now=datetime.now(UTC) - timedelta(minutes=5))
    assert await sessions.read_session(fresh, Area.CONSOLE) is not None
    revoked = tokens(any_ledger, TokenRules(secret=JWT_SECRET, not_before=datetime.now(UTC)))
    assert await revoked.read_session(fresh, Area.CONSOLE) is None, "REFUND_DESK_TOKENS_NOT_BEFORE ends it"


async def test_a_customers_link_session_keeps_its_complaint_and_ends_with_the_link(
    any_ledger: Ledger,
) -> None:
    sessions = tokens(any_ledger)
    now = datetime.now(UTC)
    link = Principal(sub="cust-1", role=Role.CUSTOMER, cid="ord-1.major_defect.ab")
    value, session = sessions.open_session(link, HOUR, now=now, ends_by=now + timedelta(minutes=10))
    assert now + timedelta(minutes=9) < session.expires_at <= now + timedelta(minutes=10), "the link's end"
    read = await sessions.read_session(value, Area.CUSTOMER)
    assert read is not None and read.complaint_id == link.cid
    assert read.opens(link.cid or "") and not read.opens("ord-2.major_defect.cd")


async def test_a_sign_in_link_signs_in_once(any_ledger: Ledger) -> None:
    sessions = tokens(any_ledger)
    token = sign_in_link_token(RULES, "alice", HOUR, now=datetime.now(UTC))
    assert await sessions.redeem_sign_in_link(token) == ALICE
    for again in (
        token,
        token + "x",
        sign_in_link_token(RULES, "bob", HOUR, now=datetime.now(UTC) - 2 * HOUR),
    ):
        try:
            await sessions.redeem_sign_in_link(again)
        except SignInRefused as refused:
            assert "used already" in str(refused) or "not valid or has expired" in str(refused)
        else:
            raise AssertionError("a used, broken or expired link signed in")


async def test_spending_sweeps_the_rows_of_tokens_that_expired_anyway(any_ledger: Ledger) -> None:
    spent = SpentTokens(any_ledger.engine)
    now = datetime.now(UTC)
    assert await spent.spend("old", now - HOUR, now=now - 2 * HOUR)
    assert await spent.spend("new", now + HOUR, now=now)
    assert not await spent.spend("new", now + HOUR, now=now), "spent twice is refused by the key"
    async with any_ledger.engine.connect() as conn:
        left = (await conn.execute(select(func.count()).select_from(SpentTokenRow))).scalar_one()
    assert left == 1 and await spent.is_spent("new") and not await spent.is_spent("old")


def test_a_csrf_token_is_bound_to_its_browser() -> None:
    token = csrf_token(JWT_SECRET, "session-a")
    check_csrf(JWT_SECRET, "session-a", token)
    for binding, presented in (("session-b", token), ("session-a", token[:-1]), (None, token), ("a", None)):
        try:
            check_csrf(JWT_SECRET, binding, presented)
        except CsrfRefused:
            continue
        raise AssertionError(f"{presented!r} passed for {binding!r}")


async def test_neither_a_session_nor_a_link_is_an_api_token_nor_the_reverse(api: Api) -> None:
    sessions = SessionTokens(rules=RULES, spent=SpentTokens(api.desk.ledger.engine))
    cookie, _ = sessions.open_session(ALICE, HOUR, now=datetime.now(UTC))
    link = sign_in_link(api.base_url, RULES, "alice", HOUR, now=datetime.now(UTC)).split("?link=")[1]
    for token in (cookie, link):
        answer = await api.client({"Authorization": f"Bearer {token}"}).get("/v1/notices")
        assert answer.status_code == 401, answer.text
        assert jwt.get_unverified_header(token)["alg"] == "HS256"
    browser = api.client()
    browser.cookies.set(Area.CONSOLE.cookie, api.token(Role.SUPPORT, "alice"), path="/console")
    queue = await browser.get("/console")
    assert queue.status_code == 303 and queue.headers["location"] == "/console/sign-in"


def test_every_web_setting_is_documented() -> None:
    documented = (Path(__file__).parent.parent / "docs" / "settings.md").read_text()
    names = [f"REFUND_DESK_{name.upper()}" for name in WebSettings.model_fields]
    assert names and [name for name in names if f"`{name}`" not in documented] == []
