"""The customer's page: where their complaint stands, and the answers the policy asks of them.

The link in a customer's email (`dispatch.links`) opens `/my/complaints/{id}?token=<link token>`. The page
checks the token as the API does (`starter.api.auth.read_token`: signed, unexpired, a customer's, for this
complaint), opens a session restricted to that complaint and answers with the page itself rather than a
redirect: a SameSite=Strict cookie set by a redirect that an email's site started would not come back on
the redirected request. The page's script then takes the token out of the address bar. A customer with an
ordinary customer token signs in at `/my/sign-in` instead and sees all of their complaints.

Anything that does not check out (another customer's link or complaint, an expired link, a forged one)
gets the same plain "not found or expired" page, and never a word of the complaint.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import quote

import jwt
from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from policy.models import Role
from starter.api.auth import LINK_QUERY, Principal, read_token
from starter.api.errors import ApiError
from starter.desk.errors import ComplaintNotFound
from starter.web.customer_views import complaint_page, list_page
from starter.web.pages import CustomerBrowser, CustomerPageBrowser, NothingToShow
from starter.web.sessions import Area, SignInRefused

router = APIRouter(prefix="/my", include_in_schema=False)

MAX_TOKEN = 4_096
ComplaintIdInPath = Annotated[str, Path(max_length=200)]


@router.get("/sign-in")
async def sign_in_page(browser: CustomerPageBrowser) -> Response:
    return browser.render("customer/sign_in.html")


@router.post("/sign-in")
async def sign_in(browser: CustomerPageBrowser) -> Response:
    form = await browser.form()
    try:
        principal, expires = _customer_token(browser, form.get("token", "").strip())
    except SignInRefused as refused:
        return browser.render("customer/sign_in.html", status=401, problem=str(refused))
    _open_session(browser, principal, expires)
    if principal.cid is not None:
        return browser.redirect(f"/my/complaints/{quote(principal.cid, safe='')}")
    return browser.redirect("/my/complaints")


@router.post("/sign-out")
async def sign_out(browser: CustomerBrowser) -> Response:
    return await browser.sign_out()


@router.get("/complaints")
async def my_complaints(browser: CustomerBrowser) -> Response:
    assert browser.session is not None
    if browser.session.complaint_id is not None:
        return browser.redirect(f"/my/complaints/{quote(browser.session.complaint_id, safe='')}")
    return await list_page(browser)


@router.get("/complaints/{complaint_id}")
async def my_complaint(
    complaint_id: ComplaintIdInPath,
    browser: CustomerPageBrowser,
    token: Annotated[str | None, Query(alias=LINK_QUERY, max_length=MAX_TOKEN)] = None,
    done: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """The page, opened from the email's link (`?token=`) or within a session that may show it."""
    if token is not None:
        try:
            principal, expires = _customer_token(browser, token)
        except SignInRefused:
            raise NothingToShow(Area.CUSTOMER) from None
        if principal.cid != complaint_id:
            raise NothingToShow(Area.CUSTOMER)
        _open_session(browser, principal, expires)
    if browser.session is None or not browser.session.opens(complaint_id):
        raise NothingToShow(Area.CUSTOMER)
    try:
        return await complaint_page(browser, complaint_id, done=done)
    except ComplaintNotFound:
        raise NothingToShow(Area.CUSTOMER) from None


def _customer_token(browser: CustomerPageBrowser, token: str) -> tuple[Principal, datetime]:
    """The customer behind a link's or a customer's token, and when it expires; `SignInRefused` else."""
    if not token:
        raise SignInRefused("paste your customer token to sign in")
    try:
        principal = read_token(browser.sessions.rules, token[:MAX_TOKEN])
    except ApiError as refused:
        raise SignInRefused(f"that token does not sign in: {refused.message}") from None
    if principal.role is not Role.CUSTOMER:
        raise SignInRefused("this page is for customers: that token is not a customer's")
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]  # read_token checked it
    return principal, datetime.fromtimestamp(expires, UTC)


def _open_session(browser: CustomerPageBrowser, principal: Principal, expires: datetime) -> None:
    """A session for the customer, restricted to the link's complaint, ending no later than the token."""
    now = datetime.now(UTC)
    lifetime = browser.settings.customer_session_lifetime
    value, session = browser.sessions.open_session(principal, lifetime, now=now, ends_by=expires)
    browser.keep_session(value, session, now=now)
