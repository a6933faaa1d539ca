"""The customer's answers, posted from their page: grant or refuse server access (R9, R10), choose a refund
or a replacement (R12), withdraw (R14). Each is the same desk call as the API's route, for the signed-in
customer on a complaint their session may show; a refusal re-renders the page with its reason, and the
credentials of a grant go from the form to the desk's seal and are never put back into a page."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path
from fastapi.responses import Response
from pydantic import ValidationError

from policy.complaint import ComplaintState
from policy.credentials import ServerCredentials
from policy.models import RemedyChoice
from starter.desk.errors import ComplaintNotFound
from starter.desk.failures import FAILURE_TYPES, failure_of
from starter.desk.validation import validation_items
from starter.web.customer_views import complaint_page
from starter.web.pages import Browser, CustomerBrowser, NothingToShow
from starter.web.sessions import Area

router = APIRouter(prefix="/my/complaints/{complaint_id}", include_in_schema=False)

ComplaintIdInPath = Annotated[str, Path(max_length=200)]
NOTE_LIMIT = 5_000


@router.post("/access")
async def answer_access(complaint_id: ComplaintIdInPath, browser: CustomerBrowser) -> Response:
    form = await browser.form()
    if form.get("answer") == "refuse":
        return await _act(
            browser,
            complaint_id,
            "access_refused",
            lambda actor: browser.desk.refuse_access(complaint_id, actor),
        )
    try:
        credentials = ServerCredentials(
            host=form.get("host", ""),
            username=form.get("username", ""),
            secret=form.get("secret", ""),
            notes=form.get("notes") or None,
        )
    except ValidationError as invalid:
        problem = "; ".join(f"{field}: {message}" for field, message in validation_items(invalid.errors()))
        return await _page(
            browser, complaint_id, problem=f"The access form is not complete ({problem}).", status=422
        )
    return await _act(
        browser,
        complaint_id,
        "access_granted",
        lambda actor: browser.desk.grant_access(complaint_id, actor, credentials),
    )


@router.post("/remedy")
async def choose_remedy(complaint_id: ComplaintIdInPath, browser: CustomerBrowser) -> Response:
    form = await browser.form()
    try:
        choice = RemedyChoice(form.get("choice", ""))
    except ValueError:
        return await _page(browser, complaint_id, problem="Choose a refund or a replacement.", status=422)
    return await _act(
        browser,
        complaint_id,
        f"remedy_{choice.value}",
        lambda actor: browser.desk.choose_remedy(complaint_id, actor, choice),
    )


@router.post("/withdraw")
async def withdraw(complaint_id: ComplaintIdInPath, browser: CustomerBrowser) -> Response:
    form = await browser.form()
    if form.get("confirm") != "yes":
        return await _page(
            browser, complaint_id, problem="Tick the box to confirm the withdrawal.", status=422
        )
    note = form.get("note", "")[:NOTE_LIMIT]
    return await _act(
        browser, complaint_id, "withdrawn", lambda actor: browser.desk.withdraw(complaint_id, actor, note)
    )


async def _act(
    browser: Browser,
    complaint_id: str,
    done: str,
    action: Callable[..., Awaitable[ComplaintState]],
) -> Response:
    """Take `action` as the signed-in customer, then show the page again: after a redirect on success, or
    at once with the refusal's reason (the workflow changed nothing)."""
    session = browser.session
    if session is None or not session.opens(complaint_id):
        raise NothingToShow(Area.CUSTOMER)
    try:
        await browser.desk.ensure_visible(complaint_id, session.actor)
        await action(session.actor)
    except ComplaintNotFound:
        raise NothingToShow(Area.CUSTOMER) from None
    except FAILURE_TYPES as refused:
        failure = failure_of(refused)
        if failure is None:
            raise
        return await _page(
            browser, complaint_id, problem=f"{failure.message} ({failure.code})", status=failure.status
        )
    return browser.redirect(f"/my/complaints/{quote(complaint_id, safe='')}?done={done}")


async def _page(browser: Browser, complaint_id: str, *, problem: str, status: int) -> Response:
    session = browser.session
    if session is None or not session.opens(complaint_id):
        raise NothingToShow(Area.CUSTOMER)
    try:
        return await complaint_page(browser, complaint_id, problem=problem, status=status)
    except ComplaintNotFound:
        raise NothingToShow(Area.CUSTOMER) from None
