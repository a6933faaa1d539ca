"""The customer's page, over real HTTP on the real API app and desk: opened from the email's link, it says
where the complaint stands and takes the customer's answers; nothing else opens it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx

from policy.models import ComplaintStatus, Role
from tests.conftest import Api, in_ledger
from tests.test_api import file_complaint, new_customer
from tests.test_email import link_for, token_of

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
NOT_FOUND = "Not found, or the link has expired"


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found is not None, page.text
    return found.group(1)


async def opened(api: Api, complaint: dict[str, str]) -> tuple[httpx.AsyncClient, httpx.Response]:
    """A browser that opened the complaint's emailed link, and the page it got."""
    browser = api.client()
    page = await browser.get(link_for(api, complaint))
    assert page.status_code == 200, page.text
    return browser, page


async def access_requested(api: Api) -> dict[str, str]:
    complaint = await file_complaint(api)
    path = f"/v1/complaints/{complaint['complaint_id']}"
    assert (await api.support().post(f"{path}/review", json={"decision": "approve"})).status_code == 200
    asked = await api.support().post(f"{path}/access-request", json={"scope": "SSH", "reason": "read logs"})
    assert asked.json()["status"] == "awaiting_access", asked.text
    return complaint


async def test_the_emailed_link_opens_the_page_with_a_strict_session_and_no_token_in_it(api: Api) -> None:
    complaint = await file_complaint(api)
    browser, page = await opened(api, complaint)
    assert "Your complaint about" in page.text and "We are reviewing your complaint." in page.text
    assert "Next deadline" in page.text and "senior member of support" in page.text
    assert token_of(link_for(api, complaint)) not in page.text
    cookie = page.headers["set-cookie"]
    for flag in ("rd_my_session=", "HttpOnly", "SameSite=strict", "Path=/my"):
        assert flag.lower() in cookie.lower(), cookie
    assert page.headers["referrer-policy"] == "no-referrer" and page.headers["cache-control"] == "no-store"
    again = await browser.get(f"/my/complaints/{complaint['complaint_id']}")
    assert again.status_code == 200 and complaint["complaint_id"] in again.text, "the session opens it again"


async def test_another_customers_link_an_expired_one_or_none_shows_nothing_of_the_complaint(api: Api) -> None:
    mine, theirs = await file_complaint(api), await file_complaint(api)
    mine_token = token_of(link_for(api, mine))
    expired = link_for(api, mine, now=datetime.now(UTC) - timedelta(days=8))
    ordinary = api.token(Role.CUSTOMER, mine["customer_id"])
    attempts = [
        f"/my/complaints/{theirs['complaint_id']}?token={mine_token}",
        expired,
        f"/my/complaints/{mine['complaint_id']}?token={ordinary}x",
        f"/my/complaints/{mine['complaint_id']}",
    ]
    for url in attempts:
        page = await api.client().get(url)
        assert page.status_code == 404 and NOT_FOUND in page.text, url
        assert mine["complaint_id"] not in page.text and theirs["complaint_id"] not in page.text
        assert "set-cookie" not in page.headers or "rd_my_session=" not in page.headers["set-cookie"]
    browser, _ = await opened(api, mine)
    other = await browser.get(f"/my/complaints/{theirs['complaint_id']}")
    assert other.status_code == 404 and theirs["complaint_id"] not in other.text, "a link's session opens one"


async def test_granting_access_from_the_page_seals_the_credentials_and_never_shows_them(api: Api) -> None:
    complaint = await access_requested(api)
    browser, page = await opened(api, complaint)
    assert "We ask for access to your server" in page.text and "Grant access" in page.text
    assert "Refund or replacement" in page.text, "the remedy may be chosen from the start (R12)"
    secret = "hunter2-" + new_customer()
    form = {
        "csrf_token": csrf_of(page),
        "answer": "grant",
        "host": "web1",
        "username": "ops",
        "secret": secret,
    }
    granted = await browser.post(f"/my/complaints/{complaint['complaint_id']}/access", data=form)
    assert granted.status_code == 303 and granted.headers["location"].endswith("?done=access_granted")
    shown = await browser.get(granted.headers["location"])
    assert "access is granted" in shown.text and secret not in shown.text
    assert "We ask for access" not in shown.text, "the question is answered"
    state = await api.desk.get(complaint["complaint_id"])
    assert state.status is ComplaintStatus.RECTIFYING and state.access is not None and state.access.granted


async def test_refusing_access_from_the_page_ends_the_complaint(api: Api) -> None:
    complaint = await access_requested(api)
    browser, page = await opened(api, complaint)
    form = {"csrf_token": csrf_of(page), "answer": "refuse"}
    refused = await browser.post(f"/my/complaints/{complaint['complaint_id']}/access", data=form)
    assert refused.status_code == 303
    assert (await api.desk.get(complaint["complaint_id"])).status is ComplaintStatus.ACCESS_REFUSED
    shown = await browser.get(refused.headers["location"])
    assert "Access to your server was refused" in shown.text and "Withdraw" not in shown.text


async def test_an_incomplete_grant_is_refused_on_the_page_and_changes_nothing(api: Api) -> None:
    complaint = await access_requested(api)
    browser, page = await opened(api, complaint)
    form = {"csrf_token": csrf_of(page), "answer": "grant", "host": "web1", "username": "ops", "secret": ""}
    answer = await browser.post(f"/my/complaints/{complaint['complaint_id']}/access", data=form)
    assert answer.status_code == 422 and "Nothing was changed" in answer.text and "secret" in answer.text
    assert (await api.desk.get(complaint["complaint_id"])).status is ComplaintStatus.AWAITING_ACCESS


async def test_choosing_a_remedy_and_withdrawing_from_the_page(api: Api) -> None:
    complaint = await file_complaint(api)
    browser, page = await opened(api, complaint)
    path = f"/my/complaints/{complaint['complaint_id']}"
    chose = await browser.post(f"{path}/remedy", data={"csrf_token": csrf_of(page), "choice": "replacement"})
    assert chose.status_code == 303 and chose.headers["location"].endswith("?done=remedy_replacement")
    assert (await api.desk.get(complaint["complaint_id"])).remedy_choice == "replacement"
    page = await browser.get(chose.headers["location"])
    assert "Your choice is recorded: a replacement." in page.text
    unconfirmed = await browser.post(f"{path}/withdraw", data={"csrf_token": csrf_of(page)})
    assert unconfirmed.status_code == 422 and "Tick the box" in unconfirmed.text
    assert (await api.desk.get(complaint["complaint_id"])).status is ComplaintStatus.UNDER_REVIEW
    gone = await browser.post(f"{path}/withdraw", data={"csrf_token": csrf_of(page), "confirm": "yes"})
    assert gone.status_code == 303
    assert (await api.desk.get(complaint["complaint_id"])).status is ComplaintStatus.WITHDRAWN
    after = await browser.get(gone.headers["location"])
    assert "You withdrew this complaint" in after.text and "Save my choice" not in after.text


async def test_a_refused_answer_shows_its_reason_and_changes_nothing(api: Api) -> None:
    complaint = await file_complaint(api)
    browser, page = await opened(api, complaint)
    before = await api.desk.get(complaint["complaint_id"])
    answer = await browser.post(
        f"/my/complaints/{complaint['complaint_id']}/access",
        data={"csrf_token": csrf_of(page), "answer": "refuse"},
    )
    assert answer.status_code == 409 and "invalid_state" in answer.text and 'role="alert"' in answer.text
    assert len((await api.desk.get(complaint["complaint_id"])).events) == len(before.events)


async def test_a_forged_csrf_token_is_refused_and_changes_nothing(api: Api) -> None:
    complaint = await file_complaint(api)
    browser, page = await opened(api, complaint)
    path = f"/my/complaints/{complaint['complaint_id']}/withdraw"
    for token in ("", "forged", csrf_of(page)[:-2] + "xx"):
        answer = await browser.post(path, data={"csrf_token": token, "confirm": "yes"})
        assert answer.status_code == 403 and "This form was refused" in answer.text
    elsewhere, _ = await opened(api, await file_complaint(api))
    stolen = await elsewhere.post(path, data={"csrf_token": csrf_of(page), "confirm": "yes"})
    assert stolen.status_code in (403, 404)
    assert (await api.desk.get(complaint["complaint_id"])).status is ComplaintStatus.UNDER_REVIEW


async def test_signing_out_ends_the_session_for_good(api: Api) -> None:
    complaint = await file_complaint(api)
    browser, page = await opened(api, complaint)
    kept = dict(browser.cookies)
    out = await browser.post("/my/sign-out", data={"csrf_token": csrf_of(page)})
    assert out.status_code == 303 and out.headers["location"] == "/my/sign-in"
    replayed = api.client()
    for name, value in kept.items():
        replayed.cookies.set(name, value)
    again = await replayed.get(f"/my/complaints/{complaint['complaint_id']}")
    assert again.status_code == 404, "the signed-out cookie opens nothing, even before it expires"


async def test_a_customer_token_signs_in_to_the_list_of_their_complaints(api: Api) -> None:
    me = new_customer()
    first, second = await file_complaint(api, me), await file_complaint(api, me)
    for filed in (first, second):  # the list is the ledger's, written just after filing
        await in_ledger(api.desk.ledger, filed["complaint_id"])
    browser = api.client()
    form_page = await browser.get("/my/sign-in")
    wrong = await browser.post(
        "/my/sign-in", data={"csrf_token": csrf_of(form_page), "token": api.token(Role.SUPPORT, "alice")}
    )
    assert wrong.status_code == 401 and "is not a customer" in wrong.text
    signed = await browser.post(
        "/my/sign-in", data={"csrf_token": csrf_of(form_page), "token": api.token(Role.CUSTOMER, me)}
    )
    assert signed.status_code == 303 and signed.headers["location"] == "/my/complaints"
    listed = await browser.get("/my/complaints")
    assert first["complaint_id"] in listed.text and second["complaint_id"] in listed.text
    assert (await browser.get(f"/my/complaints/{second['complaint_id']}")).status_code == 200
