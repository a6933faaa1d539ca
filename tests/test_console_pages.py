"""Support's console over real HTTP: the queue, a complaint's page and the actions taken from it, on the real
API app (uvicorn on loopback), the real desk, a worker on the time-skipping Temporal server and a real
SQLite ledger. Support signs in through the sign-in form like a browser, and every form is posted with the
CSRF token its page carried."""

from __future__ import annotations

import asyncio
import html
import re
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from ledger.notices import Notices
from policy.models import ComplaintStatus, Role
from starter.web import console_queue
from tests.conftest import Api, in_ledger
from tests.evidence_files import PNG
from tests.factories import SECRET, software_order
from tests.test_api import file_complaint, new_customer
from tests.test_support_doors import GRANT, LOG, NOTES, claim_with_evidence, granted_defect

Json = dict[str, Any]
S = ComplaintStatus

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
SIGN_IN = "/console/sign-in"
HOSTILE = "<script>alert('owned')</script> The number never received the WhatsApp code; asked three times."


# ----------------------------------------------------------------------------------------------- helpers


def csrf_of(page: str) -> str:
    """The CSRF token a page's forms carry."""
    found = CSRF.search(page)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)


async def signed_in(api: Api, sub: str = "alice") -> httpx.AsyncClient:
    """A browser signed in to the console through its form: the sign-in page's cookie and token, then the
    session cookie the post sets (kept by the client, scoped to /console)."""
    browser = api.client()
    form = await browser.get(SIGN_IN)
    assert form.status_code == 200, form.text
    token = api.token(Role.SUPPORT, sub)
    answer = await browser.post(SIGN_IN, data={"csrf_token": csrf_of(form.text), "token": token})
    assert answer.status_code == 303 and answer.headers["location"] == "/console", answer.text
    return browser


async def page_and_csrf(browser: httpx.AsyncClient, path: str) -> tuple[httpx.Response, str]:
    page = await browser.get(path)
    assert page.status_code == 200, page.text
    return page, csrf_of(page.text)


def page_of(complaint_id: str) -> str:
    return f"/console/complaints/{quote(complaint_id, safe='')}"


async def act(
    browser: httpx.AsyncClient, complaint_id: str, action: str, fields: dict[str, str]
) -> httpx.Response:
    """Post an action's form from the complaint's page, with the page's own CSRF token."""
    _, token = await page_and_csrf(browser, page_of(complaint_id))
    return await browser.post(f"{page_of(complaint_id)}/{action}", data={"csrf_token": token, **fields})


async def file_claim(api: Api, customer_id: str, description: str) -> Json:
    """An invalid-number claim (R6) with a screenshot and a log, described as given, in the ledger."""
    claim = await claim_with_evidence(api, customer_id, description)
    await in_ledger(api.desk.ledger, claim["complaint_id"])
    return claim


async def defect(api: Api) -> str:
    """A major-defect complaint under review, projected to the ledger (the queue reads the projection)."""
    complaint_id: str = (await file_complaint(api))["complaint_id"]
    await in_ledger(api.desk.ledger, complaint_id, S.UNDER_REVIEW)
    return complaint_id


async def events_of(api: Api, complaint_id: str) -> list[str]:
    return [event.type for event in (await api.desk.get(complaint_id)).events]


def listed(page: str) -> list[str]:
    """The complaint ids of a queue page's rows, in order."""
    return [
        html.unescape(found)
        for found in re.findall(r'<td data-label="Complaint"><a href="[^"]+">([^<]+)</a>', page)
    ]


# ------------------------------------------------------------------------------------------------- queue


async def test_signed_out_requests_are_sent_to_sign_in_and_change_nothing(api: Api) -> None:
    complaint_id = await defect(api)
    stranger = api.client()
    for path in ("/console", "/console/queue/rows", page_of(complaint_id)):
        answer = await stranger.get(path)
        assert answer.status_code == 303 and answer.headers["location"] == SIGN_IN, path
    posted = await stranger.post(f"{page_of(complaint_id)}/review", data={"decision": "approve"})
    assert posted.status_code == 303 and posted.headers["location"] == SIGN_IN
    forged = api.client()
    forged.cookies.set("rd_console_session", "not-a-session", path="/console")
    assert (await forged.get("/console")).headers["location"] == SIGN_IN
    assert (await api.desk.get(complaint_id)).status is S.UNDER_REVIEW


async def test_the_queue_lists_open_complaints_most_urgent_first_and_not_the_closed(api: Api) -> None:
    first, second, closed = await defect(api), await defect(api), await defect(api)
    support = api.support()
    asked = await support.post(
        f"/v1/complaints/{first}/access-request", json={"scope": "ssh", "reason": "read the error log"}
    )
    assert asked.status_code == 200, asked.text
    rejected = await support.post(
        f"/v1/complaints/{closed}/review", json={"decision": "reject", "reason_code": "not_a_defect"}
    )
    assert rejected.json()["status"] == "rejected", rejected.text
    await in_ledger(api.desk.ledger, first, S.AWAITING_ACCESS)
    await in_ledger(api.desk.ledger, closed, S.REJECTED)

    page = (await (await signed_in(api)).get("/console")).text
    # the access request moved the first's next deadline (the customer's answer) past the second's review
    assert listed(page) == [second, first]
    assert "<h1>Queue</h1>" in page and "Page 1 of 1, 2 complaints" in page
    assert "Waiting for the customer to grant or refuse server access" in page
    assert page.count('class="badge due-later">in 4 days 23 hours') == 2
    assert page.count("<time datetime=") == 2
    for label in ("Complaint", "Kind", "Status", "Customer", "Order", "Product", "Due"):
        assert page.count(f'data-label="{label}"') == 2, label


async def test_the_queue_filters_by_kind_status_and_search_and_says_what_it_cannot_take(api: Api) -> None:
    claim = (await file_claim(api, new_customer(), HOSTILE))["complaint_id"]
    waiting, plain = await defect(api), await defect(api)
    asked = await api.support().post(
        f"/v1/complaints/{waiting}/access-request", json={"scope": "ssh", "reason": "read the error log"}
    )
    assert asked.status_code == 200, asked.text
    await in_ledger(api.desk.ledger, waiting, S.AWAITING_ACCESS)
    plain_state = await api.desk.get(plain)
    browser = await signed_in(api)

    async def shown(query: str) -> list[str]:
        answer = await browser.get(f"/console?{query}")
        assert answer.status_code == 200, answer.text
        return listed(answer.text)

    assert await shown("kind=invalid_number") == [claim]
    assert set(await shown("kind=major_defect")) == {waiting, plain}
    assert await shown("status=awaiting_access") == [waiting]
    assert await shown(f"q={plain_state.order.order_id}") == [plain]
    assert await shown(f"q={plain_state.customer_id}") == [plain]
    assert await shown(f"q={quote(claim[:-3])}") == [claim], "a complaint id's start"
    assert await shown("q=nothing-like-it") == []
    assert (
        "No open complaint matches these filters." in (await browser.get("/console?q=nothing-like-it")).text
    )
    assert await shown("escalated=1") == []

    for query in ("kind=bogus", "status=refunded", "page=0", "page=-1", "page=abc", "q=" + "x" * 201):
        answer = await browser.get(f"/console?{query}")
        assert answer.status_code == 400, query
        assert 'class="alert error" role="alert"' in answer.text, query
        assert len(listed(answer.text)) == 3, f"{query}: the queue without the filter it could not take"


async def test_the_escalated_filter_keeps_the_complaints_r13_escalated(
    api: Api, env: WorkflowEnvironment
) -> None:
    late = await defect(api)
    await env.sleep(timedelta(days=5, minutes=1))
    await in_ledger(api.desk.ledger, late, S.ESCALATED)
    # an order placed at the server's (skipped) time, so its complaint is within the claim window
    order = software_order().model_copy(update={"placed_at": await api.desk.now()})
    await api.desk.ledger.record_order(order)
    filed = await api.customer(order.customer_id).post(
        "/v1/complaints",
        json={"order_id": order.order_id, "kind": "major_defect", "description": HOSTILE},
    )
    assert filed.status_code == 201, filed.text
    fresh = filed.json()["complaint_id"]
    await in_ledger(api.desk.ledger, fresh, S.UNDER_REVIEW)

    browser = await signed_in(api)
    everything = (await browser.get("/console")).text
    assert listed(everything) == [late, fresh], "the missed deadline first"
    assert 'class="badge due-overdue">overdue by 1 minute' in everything
    assert listed((await browser.get("/console?escalated=1")).text) == [late]
    assert listed((await browser.get("/console?status=escalated")).text) == [late]


async def test_the_queue_pages_keep_their_filters(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console_queue, "PAGE_SIZE", 2)
    complaints = [await defect(api) for _ in range(3)]
    browser = await signed_in(api)

    first = (await browser.get("/console?kind=major_defect")).text
    assert listed(first) == complaints[:2]
    assert "Page 1 of 2, 3 complaints" in first
    assert '<a href="/console?kind=major_defect&amp;page=2" rel="next">Next</a>' in first
    assert "Previous" not in first
    second = (await browser.get("/console?kind=major_defect&page=2")).text
    assert listed(second) == complaints[2:]
    assert '<a href="/console?kind=major_defect" rel="prev">Previous</a>' in second
    assert 'rel="next"' not in second
    beyond = await browser.get("/console?kind=major_defect&page=9")
    assert beyond.status_code == 200 and listed(beyond.text) == complaints[2:]
    assert "There is no page 9; showing the last page, 2." in beyond.text


async def test_the_queue_refreshes_its_rows_from_the_same_partial(api: Api) -> None:
    complaint_id = await defect(api)
    browser = await signed_in(api)
    page = (await browser.get("/console?kind=major_defect&escalated=")).text
    assert 'data-refresh-url="/console/queue/rows?kind=major_defect"' in page
    assert 'data-refresh-seconds="20"' in page and 'data-refresh-status="queue-status"' in page
    assert '<p id="queue-status" class="hint" role="status" aria-live="polite"></p>' in page

    rows = await browser.get("/console/queue/rows?kind=major_defect")
    assert rows.status_code == 200 and rows.headers["cache-control"] == "no-store"
    assert listed(rows.text) == [complaint_id]
    assert "<h1" not in rows.text and "<html" not in rows.text, "the table alone"
    assert listed((await browser.get("/console/queue/rows?kind=sms_not_received")).text) == []


# ------------------------------------------------------------------------------------- a complaint's page


async def test_the_complaint_page_shows_the_complaint_its_evidence_trail_and_notices(api: Api) -> None:
    claim = await file_claim(api, new_customer(), HOSTILE)
    complaint_id = claim["complaint_id"]
    shot, log = claim["evidence"]
    notices = Notices(api.desk.ledger.engine)
    for _ in range(500):  # the filing's notice is written by an activity just after the filing answers
        if await notices.deliveries(about=complaint_id):
            break
        await asyncio.sleep(0.01)
    browser = await signed_in(api)

    page = (await browser.get(page_of(complaint_id))).text
    assert f"<h1>Complaint {complaint_id}</h1>" in page
    assert html.escape(HOSTILE, quote=False) in page.replace("&#39;", "'") and "<script>alert" not in page
    assert claim["order_id"] in page and "UK number" in page and "0.75 EUR" in page
    assert "Waiting for support&#39;s review." in page
    assert "Unreviewed at the deadline, it is escalated (R13)." in page
    image_url = f"{page_of(complaint_id)}/evidence/{shot['ref']}"
    assert f'<img src="{image_url}" alt="Evidence: {shot["name"]}">' in page
    assert f"<pre>{html.escape(LOG.decode())}</pre>" in page
    assert '<ol class="timeline">' in page and '<span class="what">Filed</span>' in page
    assert (
        '<td data-label="What">complaint_filed</td>' in page
        and '<td data-label="Status">pending</td>' in page
    )

    image = await browser.get(image_url)
    assert image.status_code == 200 and image.content == PNG
    assert image.headers["content-type"] == "image/png"
    assert image.headers["content-disposition"].startswith("inline; filename=")
    assert image.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert image.headers["x-content-type-options"] == "nosniff"
    assert image.headers["cache-control"] == "no-store"
    download = await browser.get(f"{page_of(complaint_id)}/evidence/{log['ref']}?download=1")
    assert download.content == LOG and download.headers["content-type"] == "application/octet-stream"
    assert download.headers["content-disposition"] == 'attachment; filename="what-happened.txt"'
    missing = await browser.get(f"{page_of(complaint_id)}/evidence/ev_{'0' * 32}")
    assert missing.status_code == 404 and "Not found" in missing.text


async def test_an_unknown_complaint_is_the_not_found_page(api: Api) -> None:
    browser = await signed_in(api)
    for complaint_id in ("ord-nothing.major_defect.00000000", "x" * 201):
        answer = await browser.get(page_of(complaint_id))
        assert answer.status_code == 404 and "Not found, or the link has expired" in answer.text
    _, token = await page_and_csrf(browser, "/console")
    posted = await browser.post(
        f"{page_of('ord-nothing.major_defect.00000000')}/fix", data={"csrf_token": token, "note": ""}
    )
    assert posted.status_code == 404 and "Not found" in posted.text


# ------------------------------------------------------------------------------------------------ actions


async def test_approving_from_the_page_redirects_to_a_confirmation_and_offers_what_follows(api: Api) -> None:
    complaint_id = await defect(api)
    browser = await signed_in(api)
    page = (await browser.get(page_of(complaint_id))).text
    for action in ("review", "access-request", "fix", "replacement"):
        assert f'action="{page_of(complaint_id)}/{action}"' in page, action
    assert "/reveal" not in page, "nothing was granted to reveal"

    answer = await act(
        browser, complaint_id, "review", {"decision": "approve", "reason_code": "", "note": "seen"}
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == f"{page_of(complaint_id)}?done=approved"
    assert (await api.desk.get(complaint_id)).status is S.RECTIFYING
    after = (await browser.get(answer.headers["location"])).text
    assert '<div class="alert ok" role="status"><p>The complaint was approved.</p></div>' in after
    assert f'action="{page_of(complaint_id)}/review"' not in after, "reviewed: no second review"
    assert f'action="{page_of(complaint_id)}/fix"' in after
    assert "Deficiency approved" in after
    odd = (await browser.get(f"{page_of(complaint_id)}?done=<b>you+won</b>")).text
    assert "you won" not in odd and 'class="alert ok"' not in odd, "only the fixed sentences"


async def test_rejecting_a_claim_names_its_reason_in_words(api: Api) -> None:
    complaint_id = (await file_claim(api, new_customer(), HOSTILE))["complaint_id"]
    browser = await signed_in(api)
    page = (await browser.get(page_of(complaint_id))).text
    assert '<option value="number_valid">' in page and '<option value="not_a_defect">' not in page

    answer = await act(browser, complaint_id, "review", {"decision": "reject", "reason_code": "number_valid"})
    assert answer.status_code == 303 and answer.headers["location"].endswith("?done=rejected")
    state = await api.desk.get(complaint_id)
    assert state.status is S.REJECTED and state.review is not None
    assert state.review.reason_code is not None and state.review.reason_code.value == "number_valid"
    after = (await browser.get(page_of(complaint_id))).text
    assert "the number works: the evidence does not show it refused the code" in after
    assert "No action is open to support on this complaint now." in after


async def test_requesting_access_marking_fixed_and_offering_a_replacement_from_the_page(api: Api) -> None:
    asked, fixed, offered = await defect(api), await defect(api), await defect(api)
    browser = await signed_in(api)

    answer = await act(browser, asked, "access-request", {"scope": "SSH to web1", "reason": "read the log"})
    assert answer.status_code == 303 and answer.headers["location"].endswith("?done=access-requested")
    state = await api.desk.get(asked)
    assert (
        state.status is S.AWAITING_ACCESS and state.access is not None and state.access.scope == "SSH to web1"
    )

    answer = await act(browser, fixed, "fix", {"note": "patched in 2.3.1"})
    assert answer.status_code == 303 and (await api.desk.get(fixed)).status is S.RECTIFIED

    page = (await browser.get(page_of(offered))).text
    assert "Between 45.00 and 55.00 EUR" in page
    assert re.search(r'id="offer-currency"[^>]*value="EUR"', page), "the order's currency by default"
    fields = {"sku": "plugin-seo-max", "name": "SEO Max plugin", "value": "52.00", "currency": "EUR"}
    answer = await act(browser, offered, "replacement", fields)
    assert answer.status_code == 303 and answer.headers["location"].endswith("?done=replacement-offered")
    offer = (await api.desk.get(offered)).replacement_offer
    assert offer is not None and offer.sku == "plugin-seo-max" and str(offer.value.amount) == "52.00"


async def test_a_form_the_action_cannot_take_is_a_422_and_a_refused_action_a_409_changing_nothing(
    api: Api,
) -> None:
    complaint_id = await defect(api)
    claim = (await file_claim(api, new_customer(), HOSTILE))["complaint_id"]
    browser = await signed_in(api)
    before, claim_before = await events_of(api, complaint_id), await events_of(api, claim)

    invalid = await act(browser, complaint_id, "access-request", {"scope": "", "reason": "why not"})
    assert invalid.status_code == 422 and "Scope: " in invalid.text
    assert "why not</textarea>" in invalid.text, "the form keeps what was typed"
    too_far = await act(browser, complaint_id, "replacement", {"sku": "x", "name": "X", "value": "99.00"})
    assert too_far.status_code == 422 and "replacement_out_of_tolerance" in too_far.text
    no_reason = await act(browser, complaint_id, "review", {"decision": "reject", "reason_code": ""})
    assert no_reason.status_code == 422 and "reason_code_required" in no_reason.text

    page = (await browser.get(page_of(claim))).text
    assert "/access-request" not in page and "/fix" not in page, "a claim has neither"
    refused = await act(browser, claim, "access-request", {"scope": "ssh", "reason": "to look"})
    assert refused.status_code == 409
    assert '<div class="alert error" role="alert">' in refused.text and "invalid_state" in refused.text
    assert "has no request access" in refused.text
    assert await events_of(api, complaint_id) == before and await events_of(api, claim) == claim_before
    assert (await api.desk.get(complaint_id)).status is S.UNDER_REVIEW


async def test_a_post_without_the_pages_csrf_token_is_refused_403_and_changes_nothing(api: Api) -> None:
    complaint_id = await defect(api)
    browser = await signed_in(api)
    path = f"{page_of(complaint_id)}/review"
    for token in (
        {},
        {"csrf_token": "forged"},
        {"csrf_token": csrf_of((await api.client().get(SIGN_IN)).text)},
    ):
        answer = await browser.post(path, data={"decision": "approve", **token})
        assert answer.status_code == 403 and "This form was refused" in answer.text, token
    assert await events_of(api, complaint_id) == ["filed"]


async def test_reveal_shows_the_granted_credentials_once_and_is_recorded(api: Api) -> None:
    complaint_id, _ = await granted_defect(api)
    browser = await signed_in(api, "bob")
    page = (await browser.get(page_of(complaint_id))).text
    assert "<h3>Reveal credentials</h3>" in page and SECRET not in page

    answer = await act(browser, complaint_id, "reveal", {})
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    assert f'<pre class="secret">{SECRET}</pre>' in answer.text
    assert GRANT["credentials"]["host"] in answer.text and html.escape(NOTES) in answer.text
    assert SECRET not in str(answer.url) and "location" not in answer.headers
    state = await api.desk.get(complaint_id)
    revealed = [event for event in state.events if event.type == "credentials_revealed"]
    assert len(revealed) == 1 and revealed[0].actor == "support:bob"
    assert "Server credentials revealed" in answer.text
    assert "credentials ref" not in answer.text and "credentials_ref" not in answer.text
    again = (await browser.get(page_of(complaint_id))).text
    assert SECRET not in again, "shown once: reading the page again does not show it"


async def test_a_signed_out_session_opens_nothing(api: Api) -> None:
    browser = await signed_in(api)
    session = browser.cookies["rd_console_session"]
    _, token = await page_and_csrf(browser, "/console")
    signed_out = await browser.post("/console/sign-out", data={"csrf_token": token})
    assert signed_out.status_code == 303
    kept = api.client()
    kept.cookies.set("rd_console_session", session, path="/console")
    for path in ("/console", "/console/queue/rows"):
        again = await kept.get(path)
        assert again.status_code == 303 and again.headers["location"] == SIGN_IN, path
