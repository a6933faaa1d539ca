"""A complaint's page in the console: everything support needs to decide on it, and the forms to act.

The page is read fresh on every request, from the same desk calls as the API's `GET /v1/complaints/{id}`
and its evidence door, plus the ledger's deliveries of the complaint's notices. Its action forms are exactly
those the policy's guards allow support now (`starter.web.actions`), and the actions' routes
(`console_actions`) answer a refusal with this same page, fresh, under the refusal's status.

Evidence is shown where it can be shown safely: pictures inline from a route of their own, served with a
sandboxing CSP and never sniffed; plain text read here and escaped into the page; anything else (a PDF)
only as a download.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from ledger.notices import NoticeDelivery, Notices
from policy.complaint import REJECTION_REASONS, ComplaintState
from policy.due import next_due
from policy.models import ComplaintEvent, EvidenceRef, canonical_amount
from starter.api.schemas.support_doors import attachment
from starter.desk.failures import FAILURE_TYPES, Failure, failure_of
from starter.web import words
from starter.web.actions import allowed_actions, may_reveal
from starter.web.pages import Browser, NothingToShow, SupportBrowser, path_part
from starter.web.sessions import Area

router = APIRouter(prefix="/console", include_in_schema=False)

MAX_COMPLAINT_ID = 200
MAX_REF = 64
MAX_TEXT_SHOWN = 20_000
"""The most characters of a text file the page shows inline; the rest is one download away."""
NOTICES_SHOWN = 50

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
"""Pictures a browser shows inline; every other type is served only as a download."""

EVIDENCE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}
"""A customer's file, opened in the console: never sniffed into something else, never able to run or load
anything even when opened on its own, never cached."""

HIDDEN_DETAIL = ("credential", "secret")
"""Words in an event detail's key that keep it off the page whatever its value."""


DONE = {
    "approved": "The complaint was approved.",
    "rejected": "The complaint was rejected.",
    "access-requested": "Server access was requested from the customer.",
    "fixed": "The defect was marked fixed.",
    "replacement-offered": "The replacement was offered to the customer.",
}
"""The confirmation an action's redirect asks for, by its key: fixed sentences, so a link cannot make the
page say anything else."""


@dataclass(frozen=True)
class EvidenceShown:
    """One evidence file as the page shows it: inline picture, text, or a download link."""

    file: EvidenceRef
    url: str
    shown_as: str
    """`image`, `text` or `download`."""
    text: str | None = None
    cut: bool = False
    """Whether `text` is only the start of the file."""
    problem: str | None = None


@dataclass(frozen=True)
class EventShown:
    event: ComplaintEvent
    what: str
    detail: list[tuple[str, str | datetime]]


def shown_detail(detail: Mapping[str, Any]) -> list[tuple[str, str | datetime]]:
    """An event's detail as the timeline lists it: only plain strings and numbers, and never a key that
    could name a secret (a vault reference, a credential). An instant (the trail keeps them as ISO text)
    comes back as one, so the page shows it like every other time."""
    return [
        (key.replace("_", " "), _instant(value) or str(value))
        for key, value in detail.items()
        if isinstance(value, str | int | float | Decimal)
        and not any(word in key.lower() for word in HIDDEN_DETAIL)
    ]


def _instant(value: object) -> datetime | None:
    if not isinstance(value, str) or "T" not in value or len(value) > 40:
        return None
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        return None
    return instant if instant.tzinfo is not None else None


def evidence_url(complaint_id: str, ref: str, *, download: bool = False) -> str:
    url = f"/console/complaints/{path_part(complaint_id)}/evidence/{path_part(ref)}"
    return f"{url}?download=1" if download else url


def replacement_range(state: ComplaintState) -> tuple[str, str, str]:
    """The values a replacement offer may have (R12: the price within the policy's tolerance), as text."""
    price, tolerance = state.order.price.amount, state.policy.replacement_value_tolerance
    low = max(Decimal(0), price * (1 - tolerance))
    return (
        f"{canonical_amount(low):f}",
        f"{canonical_amount(price * (1 + tolerance)):f}",
        state.order.price.currency,
    )


async def _evidence(browser: Browser, state: ComplaintState) -> list[EvidenceShown]:
    """Each evidence file, with a text file's start read here so it is shown escaped in the page itself."""
    shown = []
    for file in state.evidence:
        url = evidence_url(state.complaint_id, file.ref)
        if file.content_type in IMAGE_TYPES:
            shown.append(EvidenceShown(file, url, "image"))
        elif file.content_type == "text/plain":
            shown.append(await _text_evidence(browser, state.complaint_id, file, url))
        else:
            shown.append(
                EvidenceShown(file, evidence_url(state.complaint_id, file.ref, download=True), "download")
            )
    return shown


async def _text_evidence(browser: Browser, complaint_id: str, file: EvidenceRef, url: str) -> EvidenceShown:
    assert browser.session is not None
    try:
        opened = await browser.desk.open_evidence(complaint_id, file.ref, browser.session.actor)
    except FAILURE_TYPES as exc:
        failure = failure_of(exc)
        problem = failure.message if failure is not None else "it could not be read"
        return EvidenceShown(file, url, "text", problem=problem)
    text = opened.data.decode("utf-8", errors="replace")
    return EvidenceShown(file, url, "text", text=text[:MAX_TEXT_SHOWN], cut=len(text) > MAX_TEXT_SHOWN)


async def page_context(browser: Browser, state: ComplaintState) -> dict[str, Any]:
    """Everything the complaint's page shows of `state`, read at the desk's `now`."""
    assert browser.session is not None
    actor, now = browser.session.actor, await browser.desk.now()
    due = next_due(state)
    deliveries: list[NoticeDelivery] = await Notices(browser.desk.ledger.engine).deliveries(
        about=state.complaint_id, limit=NOTICES_SHOWN
    )
    return {
        "state": state,
        "due": due,
        "time_left": words.time_left(due, now),
        "urgency": words.urgency(due, now),
        "at_deadline": words.at_deadline(state, for_customer=False),
        "status_words": words.STATUS_FOR_SUPPORT[state.status],
        "allowed": allowed_actions(state, actor, now),
        "may_reveal": may_reveal(state, actor),
        "rejection_reasons": REJECTION_REASONS[state.kind],
        "replacement_range": replacement_range(state),
        "evidence": await _evidence(browser, state),
        "events": [EventShown(e, words.event_words(e.type), shown_detail(e.detail)) for e in state.events],
        "deliveries": deliveries,
        "page_url": f"/console/complaints/{path_part(state.complaint_id)}",
    }


async def show_complaint(browser: Browser, complaint_id: str, status: int = 200, **extra: Any) -> Response:
    """The complaint's page as it stands now, with `extra` (a refusal, a confirmation, revealed credentials)
    under `status`. A complaint the desk cannot find is the not-found page; one it cannot read now (Temporal
    or the ledger down) is the page with only the reason."""
    assert browser.session is not None
    if len(complaint_id) > MAX_COMPLAINT_ID:
        raise NothingToShow(Area.CONSOLE)
    try:
        state = await browser.desk.get_for(complaint_id, browser.session.actor)
    except FAILURE_TYPES as exc:
        failure = refusal_of(exc)
        return browser.render(
            "console/complaint.html", status=failure.status, complaint_id=complaint_id, failure=failure
        )
    context = await page_context(browser, state)
    return browser.render(
        "console/complaint.html", status=status, complaint_id=complaint_id, **context, **extra
    )


def refusal_of(exc: Exception) -> Failure:
    """The failure to show for a desk exception; a complaint that is not there is the not-found page."""
    failure = failure_of(exc)
    if failure is None:
        raise exc
    if failure.code == "complaint_not_found":
        raise NothingToShow(Area.CONSOLE) from None
    return failure


@router.get("/complaints/{complaint_id}")
async def complaint_page(complaint_id: str, browser: SupportBrowser, done: str = "") -> Response:
    """The complaint, with the confirmation of the action just taken when its redirect says so."""
    return await show_complaint(browser, complaint_id, done=DONE.get(done))


@router.get("/complaints/{complaint_id}/evidence/{ref}")
async def evidence_file(complaint_id: str, ref: str, browser: SupportBrowser, download: str = "") -> Response:
    """R6: an evidence file's bytes, as filed and checked against their SHA-256 (`desk.open_evidence`). A
    picture is shown inline (`<img>` on the complaint's page); anything else, or any file asked for with
    `?download=1`, is an attachment, and only pictures keep their own content type."""
    assert browser.session is not None
    if len(complaint_id) > MAX_COMPLAINT_ID or len(ref) > MAX_REF:
        raise NothingToShow(Area.CONSOLE)
    try:
        found = await browser.desk.open_evidence(complaint_id, ref, browser.session.actor)
    except FAILURE_TYPES as exc:
        failure = refusal_of(exc)
        if failure.status == 404:
            raise NothingToShow(Area.CONSOLE) from None
        return await show_complaint(browser, complaint_id, status=failure.status, failure=failure)
    image = found.content_type in IMAGE_TYPES
    disposition = attachment(found.name)
    if image and download != "1":
        disposition = "inline" + disposition.removeprefix("attachment")
    media_type = found.content_type if image else "application/octet-stream"
    headers = {"Content-Disposition": disposition, **EVIDENCE_HEADERS}
    return Response(found.data, media_type=media_type, headers=headers)
