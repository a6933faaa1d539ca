"""Signing in to the console and out of it.

Support signs in with a support token pasted into the form (the same token the API and the CLI take), or
with a one-time sign-in link; either becomes a console session (`starter.web.sessions`). A link is opened
with GET, which only shows a button: the link is spent by the POST that button sends, so a mail scanner or
a browser's prefetch that follows the link does not use it up.

Signing in also sets the codec pass (`starter.web.sessions.codec_pass`), a second cookie scoped to
`/codec`, so the Temporal web UI, calling the codec from the browser with its credentials, decodes
payloads for whoever is signed in here; signing out clears it, and the session's id it shares is spent.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from policy.models import Role
from starter.api.auth import Principal, read_token
from starter.api.errors import ApiError
from starter.web.pages import Browser, ConsoleBrowser, SupportBrowser
from starter.web.sessions import CODEC_COOKIE, CODEC_PATH, LINK_QUERY, SignInRefused

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
    response = browser.redirect("/console")
    codec_pass = browser.sessions.codec_pass(session, now=now)
    _set_codec_cookie(browser, response, codec_pass, max(session.expires_at - now, timedelta(seconds=1)))
    return response


def _set_codec_cookie(browser: Browser, response: Response, value: str, lifetime: timedelta) -> None:
    """The codec pass, as the session's own cookie is set (HttpOnly, SameSite=Strict, Secure over HTTPS)
    but scoped to `/codec`. SameSite is about the site, not the origin: the web UI on another port of the
    same host is the same site, so the pass goes with its credentialed calls; a page of another site never
    sends it."""
    response.set_cookie(
        CODEC_COOKIE,
        value,
        max_age=max(0, int(lifetime.total_seconds())),
        path=CODEC_PATH,
        httponly=True,
        samesite="strict",
        secure=browser.request.url.scheme == "https",
    )


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
    response = await browser.sign_out()
    _set_codec_cookie(browser, response, "", timedelta(0))
    return response
