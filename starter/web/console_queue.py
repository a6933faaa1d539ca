"""Support's queue: the console's home, every open complaint and claim, most urgent first.

Read from the ledger's queue (`ledger.queue`), whose order is the policy's next deadline (`policy.due`), so
the complaint about to escalate or to fall to a default remedy is the first one seen. The table refreshes
itself: its rows are a partial of their own (`/console/queue/rows`), which the full page includes and the
pages' script fetches again every `REFRESH_SECONDS`. A filter the queue cannot take (an unknown kind, a
closed status, page 0) is left out and said so, never a server error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import Response

from ledger.queue import ComplaintQueue, QueuePage
from ledger.records import ComplaintRecord
from policy.due import next_due
from policy.models import FINAL_STATUSES, ComplaintKind, ComplaintStatus
from starter.desk.failures import FAILURE_TYPES, failure_of
from starter.web import words
from starter.web.pages import Browser, SupportBrowser

router = APIRouter(prefix="/console", include_in_schema=False)

PAGE_SIZE = 25
MAX_SEARCH = 200
MAX_PAGE_DIGITS = 6
"""Up to page 999,999: past that an offset means nothing, and a huge number must not reach the database."""
REFRESH_SECONDS = 20

OPEN_STATUSES = tuple(status for status in ComplaintStatus if status not in FINAL_STATUSES)


@dataclass
class QueueFilters:
    """The queue's query parameters, as far as they are valid; `problems` says what was left out and why."""

    kind: ComplaintKind | None = None
    status: ComplaintStatus | None = None
    escalated: bool = False
    search: str = ""
    page: int = 1
    problems: list[str] = field(default_factory=list)

    def query(self, page: int | None = None) -> str:
        """The filters as a query string (without `?`), at `page` if given: for the pager and the refresh."""
        params: dict[str, str] = {}
        if self.kind is not None:
            params["kind"] = self.kind.value
        if self.status is not None:
            params["status"] = self.status.value
        if self.escalated:
            params["escalated"] = "1"
        if self.search:
            params["q"] = self.search
        number = self.page if page is None else page
        if number != 1:
            params["page"] = str(number)
        return urlencode(params)


def read_filters(params: Mapping[str, str]) -> QueueFilters:
    """The filters of a request's query string. Read by hand rather than by FastAPI's `Query`, whose
    refusal is a JSON error: a person who mistyped a URL gets the queue and a sentence instead."""
    filters = QueueFilters()
    kind = params.get("kind", "")
    if kind:
        try:
            filters.kind = ComplaintKind(kind)
        except ValueError:
            filters.problems.append("That kind of complaint does not exist; showing every kind.")
    status = params.get("status", "")
    if status:
        try:
            filters.status = ComplaintStatus(status)
        except ValueError:
            filters.problems.append("That status does not exist; showing every status.")
        else:
            if filters.status in FINAL_STATUSES:
                filters.status = None
                filters.problems.append("Closed complaints are not in the queue; showing every open status.")
    filters.escalated = params.get("escalated", "") == "1"
    search = params.get("q", "").strip()
    if len(search) > MAX_SEARCH:
        filters.problems.append(f"A search is at most {MAX_SEARCH} characters; showing without it.")
    else:
        filters.search = search
    filters.page = _page_number(params.get("page", ""), filters.problems)
    return filters


def _page_number(text: str, problems: list[str]) -> int:
    if not text:
        return 1
    if text.isascii() and text.isdigit() and len(text) <= MAX_PAGE_DIGITS and int(text) >= 1:
        return int(text)
    problems.append("Pages are numbered from 1; showing the first page.")
    return 1


@dataclass(frozen=True)
class QueueRow:
    """One complaint of the queue as its row shows it."""

    record: ComplaintRecord
    due: datetime | None
    time_left: str
    urgency: words.Urgency

    @property
    def status_words(self) -> str:
        return words.STATUS_FOR_SUPPORT[self.record.state.status]


async def queue_context(browser: Browser, filters: QueueFilters) -> dict[str, Any]:
    """What both the page and its rows partial show: the page of the queue the filters ask for."""
    queue = ComplaintQueue(browser.desk.ledger.engine)
    found = await _page_of(queue, filters, filters.page)
    pages = max(1, -(-found.total // PAGE_SIZE))
    if filters.page > pages:
        filters.problems.append(f"There is no page {filters.page}; showing the last page, {pages}.")
        filters.page = pages
        found = await _page_of(queue, filters, pages)
    now = await browser.desk.now()
    rows = []
    for record in found.records:
        due = next_due(record.state)
        rows.append(QueueRow(record, due, words.time_left(due, now), words.urgency(due, now)))
    return {
        "filters": filters,
        "rows": rows,
        "total": found.total,
        "pages": pages,
        "rows_url": _with_query("/console/queue/rows", filters.query()),
        "previous_url": _with_query("/console", filters.query(filters.page - 1))
        if filters.page > 1
        else None,
        "next_url": _with_query("/console", filters.query(filters.page + 1))
        if filters.page < pages
        else None,
        "refresh_seconds": REFRESH_SECONDS,
    }


def _with_query(path: str, query: str) -> str:
    return f"{path}?{query}" if query else path


async def _page_of(queue: ComplaintQueue, filters: QueueFilters, page: int) -> QueuePage:
    return await queue.page(
        kind=None if filters.kind is None else filters.kind.value,
        status=None if filters.status is None else filters.status.value,
        escalated=filters.escalated,
        search=filters.search or None,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )


@router.get("")
async def queue_page(browser: SupportBrowser) -> Response:
    """The queue with its filters. A filter it could not take is answered 400, with the queue without it;
    a page past the last (the queue shrank since the link was made) shows the last page."""
    return await _answer(browser, "console/queue.html", kinds=words.KIND_WORDS, open_statuses=OPEN_STATUSES)


@router.get("/queue/rows")
async def queue_rows(browser: SupportBrowser) -> Response:
    """The table alone, for the page's refresh. A signed-out browser is redirected, and a queue that cannot
    be read is an error status: the script notices either and leaves the table as it was."""
    return await _answer(browser, "console/_queue_rows.html")


async def _answer(browser: Browser, template: str, **extra: Any) -> Response:
    """The queue, or, when the ledger cannot be read now, the reason under its status (503) and no rows."""
    filters = read_filters(browser.request.query_params)
    status = 400 if filters.problems else 200
    try:
        context = await queue_context(browser, filters)
    except FAILURE_TYPES as exc:
        failure = failure_of(exc)
        if failure is None:
            raise
        context = {"filters": filters, "rows": [], "total": 0, "pages": 1, "failure": failure}
        context["rows_url"] = _with_query("/console/queue/rows", filters.query())
        status = failure.status
    return browser.render(template, status=status, **context, **extra)
