"""Support's actions from a complaint's page: review, request server access, mark fixed, offer a
replacement, reveal the credentials granted.

Each is the desk call its API route makes (`starter.api.routers.support`), with the form checked by the same
body model. Every post reads its form first, which checks its CSRF token: a forged post changes nothing. A
success redirects to the complaint's page with a fixed confirmation (post/redirect/get, so reloading does
not act twice); a refusal shows the page again, read fresh, under the refusal's status with its reason; a
form the body model refuses is the page under 422 with each field's message. The reveal alone is not
redirected: its answer is the one page that holds the secret, shown once and never cached.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import Field, ValidationError

from policy.complaint import Review, review_reason_refusal
from policy.models import Actor, ReviewDecision
from starter.api.schemas.actions import AccessRequestIn, FixIn, ReplacementIn, ReviewIn
from starter.api.schemas.common import FreeText
from starter.desk.failures import FAILURE_TYPES
from starter.desk.validation import validation_items
from starter.web.console_complaint import MAX_COMPLAINT_ID, refusal_of, show_complaint
from starter.web.pages import Browser, NothingToShow, SupportBrowser
from starter.web.sessions import Area

router = APIRouter(prefix="/console/complaints/{complaint_id}", include_in_schema=False)

MAX_NOTE = 2_000
"""A note typed in the console: shorter than the API allows, and what the form's textarea says."""


class ReviewForm(ReviewIn):
    note: FreeText = Field(default="", max_length=MAX_NOTE)


class FixForm(FixIn):
    note: FreeText = Field(default="", max_length=MAX_NOTE)


FIELD_LABELS = {
    "decision": "Decision",
    "reason_code": "Reason for rejecting",
    "note": "Note",
    "scope": "Scope",
    "reason": "Why access is needed",
    "sku": "SKU",
    "name": "Product name",
    "value": "Value",
    "currency": "Currency",
}
"""A refused field by the label its form shows it under."""

Act = Callable[[Actor], Awaitable[str]]
"""An action: takes the actor, acts through the desk, returns the key of its confirmation (`DONE`)."""


async def acting(
    browser: Browser, complaint_id: str, form: Mapping[str, str], action: str, act: Act
) -> Response:
    """Run `act` for the signed-in person, and answer as every action does (see the module)."""
    assert browser.session is not None
    if len(complaint_id) > MAX_COMPLAINT_ID:
        raise NothingToShow(Area.CONSOLE)
    kept = {"values": form, "failed_action": action}
    try:
        done = await act(browser.session.actor)
    except ValidationError as invalid:
        problems = [
            (FIELD_LABELS.get(name, name), message) for name, message in validation_items(invalid.errors())
        ]
        return await show_complaint(browser, complaint_id, status=422, problems=problems, **kept)
    except FAILURE_TYPES as exc:
        failure = refusal_of(exc)
        return await show_complaint(browser, complaint_id, status=failure.status, failure=failure, **kept)
    return browser.redirect(f"/console/complaints/{quote(complaint_id, safe='')}?done={done}")


@router.post("/review")
async def review(complaint_id: str, browser: SupportBrowser) -> Response:
    """R8: approve the deficiency or reject it with one of R8's reasons; R5/R6: the same for a claim."""
    form = await browser.form()

    async def act(actor: Actor) -> str:
        body = ReviewForm.model_validate(
            {
                "decision": form.get("decision", ""),
                "reason_code": form.get("reason_code") or None,
                "note": form.get("note", ""),
            }
        )
        refusal = review_reason_refusal(body.decision, body.reason_code)
        if refusal is not None:
            raise refusal
        decision = Review(actor=actor, decision=body.decision, reason_code=body.reason_code, note=body.note)
        await browser.desk.review(complaint_id, decision)
        return "approved" if body.decision is ReviewDecision.APPROVE else "rejected"

    return await acting(browser, complaint_id, form, "review", act)


@router.post("/access-request")
async def request_access(complaint_id: str, browser: SupportBrowser) -> Response:
    """R9: ask the customer for temporary access to their server (R10 pauses the clock meanwhile)."""
    form = await browser.form()

    async def act(actor: Actor) -> str:
        body = AccessRequestIn.model_validate(
            {"scope": form.get("scope", ""), "reason": form.get("reason", "")}
        )
        await browser.desk.request_access(complaint_id, actor, body.scope, body.reason)
        return "access-requested"

    return await acting(browser, complaint_id, form, "request_access", act)


@router.post("/fix")
async def mark_fixed(complaint_id: str, browser: SupportBrowser) -> Response:
    """R11: the defect is rectified before the deadline; the complaint ends with no refund."""
    form = await browser.form()

    async def act(actor: Actor) -> str:
        body = FixForm.model_validate({"note": form.get("note", "")})
        await browser.desk.mark_fixed(complaint_id, actor, body.note)
        return "fixed"

    return await acting(browser, complaint_id, form, "mark_fixed", act)


@router.post("/replacement")
async def offer_replacement(complaint_id: str, browser: SupportBrowser) -> Response:
    """R12: offer another product of around the same value (the workflow holds it to the tolerance)."""
    form = await browser.form()

    async def act(actor: Actor) -> str:
        body = ReplacementIn.model_validate(
            {
                "sku": form.get("sku", "").strip(),
                "name": form.get("name", ""),
                "value": form.get("value", "").strip(),
                "currency": form.get("currency", "").strip() or None,
            }
        )
        desk = browser.desk
        offer = await desk.replacement_offer(complaint_id, body.sku, body.name, body.value, body.currency)
        await desk.offer_replacement(complaint_id, actor, offer)
        return "replacement-offered"

    return await acting(browser, complaint_id, form, "offer_replacement", act)


@router.post("/reveal")
async def reveal_credentials(complaint_id: str, browser: SupportBrowser) -> Response:
    """R9: the credentials the customer granted, shown once in this answer (never redirected to, so never in
    a URL or a history entry; `Cache-Control: no-store` like every page). The workflow records the reveal
    in the audit trail before the vault is opened."""
    await browser.form()
    assert browser.session is not None
    if len(complaint_id) > MAX_COMPLAINT_ID:
        raise NothingToShow(Area.CONSOLE)
    try:
        revealed = await browser.desk.reveal_granted_credentials(complaint_id, browser.session.actor)
    except FAILURE_TYPES as exc:
        failure = refusal_of(exc)
        return await show_complaint(browser, complaint_id, status=failure.status, failure=failure)
    credentials = revealed.credentials
    shown = {
        "host": credentials.host,
        "username": credentials.username,
        "secret": credentials.secret.get_secret_value(),
        "notes": credentials.notes,
        "revealed_at": revealed.recorded.at,
    }
    return await show_complaint(browser, complaint_id, revealed=shown)
