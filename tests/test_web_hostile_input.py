"""Hostile requests to every browser page: each gets a 4xx or an ordinary page, never a 500, and no
action is taken by a request that is not a well-formed form of this browser."""

from __future__ import annotations

import httpx

from policy.models import ComplaintStatus
from tests.conftest import Api
from tests.test_api import file_complaint
from tests.test_console_pages import csrf_of, signed_in
from tests.test_email import link_for

ODD_IDS = [
    "x" * 300,
    "ord-1.major_defect.%00",
    "%ED%A0%80",
    "..%2F..%2Fetc%2Fpasswd",
    "%3Cscript%3E",
]

ODD_QUERIES = [
    "page=99999999999999999999",
    "page=-1&kind=%3Cscript%3E&status=refunded",
    "q=" + "a" * 5000,
    "q=%00%ED%A0%80",
    "escalated=%FF",
]


async def test_no_odd_path_or_query_makes_a_page_fail(api: Api) -> None:
    support = await signed_in(api)
    complaint = await file_complaint(api)
    customer = api.client()
    assert (await customer.get(link_for(api, complaint))).status_code == 200
    answers: list[httpx.Response] = []
    for odd in ODD_IDS:
        for path in (f"/console/complaints/{odd}", f"/console/complaints/{odd}/evidence/{odd}"):
            answers.append(await support.get(path))
        answers.append(await customer.get(f"/my/complaints/{odd}"))
        answers.append(await customer.get(f"/my/complaints/{odd}?token={odd}"))
    for query in ODD_QUERIES:
        answers.append(await support.get(f"/console?{query}"))
        answers.append(await support.get(f"/console/queue/rows?{query}"))
    answers.append(await api.client().get("/console/sign-in?link=" + "a" * 5000))
    answers.append(await api.client().get("/console/sign-in?link=%00"))
    failed = [(a.request.url, a.status_code) for a in answers if a.status_code >= 500]
    assert failed == [], failed
    assert all(a.status_code < 500 for a in answers) and len(answers) > 20


async def test_no_malformed_form_takes_an_action_or_makes_a_page_fail(api: Api) -> None:
    complaint = await file_complaint(api)
    customer = api.client()
    page = await customer.get(link_for(api, complaint))
    csrf = csrf_of(page.text)
    path = f"/my/complaints/{complaint['complaint_id']}/withdraw"
    bodies: list[tuple[bytes, str]] = [
        (b"csrf_token=" + csrf.encode() + b"&confirm=yes&note=%FF%FE", "application/x-www-form-urlencoded"),
        (b"\xff\xfe\x00garbage", "application/x-www-form-urlencoded"),
        (b'{"csrf_token": "' + csrf.encode() + b'", "confirm": "yes"}', "application/json"),
        (b"&".join(b"f%d=1" % n for n in range(500)), "application/x-www-form-urlencoded"),
        (b"csrf_token=x&note=" + b"a" * 2_000_000, "application/x-www-form-urlencoded"),
        (
            b"--b\r\nContent-Disposition: form-data; name=file; filename=a\r\n\r\nx\r\n--b--\r\n",
            "multipart/form-data; boundary=b",
        ),
    ]
    answers = [
        await customer.post(path, content=body, headers={"Content-Type": kind}) for body, kind in bodies
    ]
    failed = [(n, a.status_code, a.text[:200]) for n, a in enumerate(answers) if a.status_code >= 500]
    assert failed == [], failed
    state = await api.desk.get(complaint["complaint_id"])
    # Only the first body is a well-formed form of this browser; its odd note is text like any other.
    assert all(400 <= a.status_code < 500 for a in answers[1:]), [a.status_code for a in answers]
    withdrawn = answers[0].status_code == 303
    assert state.status is (ComplaintStatus.WITHDRAWN if withdrawn else ComplaintStatus.UNDER_REVIEW)


async def test_a_body_over_the_pages_limit_is_refused_unread(api: Api) -> None:
    support = await signed_in(api)
    page = await support.get("/console")
    answer = await support.post(
        "/console/sign-out", data={"csrf_token": csrf_of(page.text), "pad": "a" * 200_000}
    )
    assert answer.status_code == 413 and "too large" in answer.text
    assert (await support.get("/console")).status_code == 200, "still signed in: nothing was done"
