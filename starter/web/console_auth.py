"""Signing in to the console and out of it.

Support signs in with a support token pasted into the form (the same token the API and the CLI take), or
with a one-time sign-in link; either becomes a console session (`starter.web.sessions`). A link is opened
with GET, which only shows a button: the link is spent by the POST that button sends, so a mail scanner or
a browser's prefetch that follows the link does not use it up.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from policy.models import Role
from starter.api.auth import Principal, read_token
from starter.api.errors import ApiError
from starter.web.pages import ConsoleBrowser, SupportBrowser
from starter.web.sessions import LINK_QUERY, SignInRefused

router = APIRouter(prefix="/console", include_in_schema=False)

MAX_TOKEN = 4_096


@router.get("/sign-in")
async def sign_in_page(
    browser: ConsoleBrowser, link: Annotated[str | None, Query(alias=LINK_QUERY, max_length=MAX_TOKEN)] = None
) -> Response:
    if browser.session is not None and link is None:
        return browser.redirect("/console")
    return browser.render("console/sign_in.html", link=link)


@router.post("/sign-in")
async def sign_in(browser: ConsoleBrowser) -> Response:
    form = await browser.form()
    link, token = form.get(LINK_QUERY, "").strip(), form.get("token", "").strip()
    try:
        principal = await _signed_in(browser, link=link, token=token)
    except SignInRefused as refused:
        return browser.render("console/sign_in.html", status=401, link=link or None, problem=str(refused))
    now = datetime.now(UTC)
    value, session = browser.sessions.open_session(
        principal, browser.settings.console_session_lifetime, now=now
    )
    browser.keep_session(value, session, now=now)
    return browser.redirect("/console")


async def _signed_in(browser: ConsoleBrowser, *, link: str, token: str) -> Principal:
    if link:
        return await browser.sessions.redeem_sign_in_link(link[:MAX_TOKEN])
    if not token:
        raise SignInRefused("paste a support token to sign in")
    try:
        principal = read_token(browser.sessions.rules, token[:MAX_TOKEN])
    except ApiError as refused:
        raise SignInRefused(f"that token does not sign in: {refused.message}") from None
    if principal.role is not Role.SUPPORT or principal.cid is not None:
        raise SignInRefused("the console is for support: that token is not a support token")
    return principal


@router.post("/sign-out")
async def sign_out(browser: SupportBrowser) -> Response:
    return await browser.sign_out()
