"""The pages in a real browser: Chromium (tests/browser.py) on the real API app, served by uvicorn over
loopback HTTP, on the real desk (a worker on Temporal's time-skipping test server and a SQLite ledger).
Nothing is mocked. Each test reads what a person would see, and checks the desk agrees.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from playwright.async_api import Locator, Page, expect
from temporalio.testing import WorkflowEnvironment

from policy.models import ComplaintStatus, RemedyChoice
from tests.browser import (
    ACCESS,
    DESKTOP,
    ISO_UTC,
    LEDGER_WAIT,
    OFFER,
    PHONE,
    SCREENSHOTS,
    NewContext,
    console_link,
    customer_link,
    examine,
    file_about,
    new_complaint,
    new_page,
    screenshot,
    scroll_width,
    sign_in_with_token,
    support_acts,
    times_shown,
)
from tests.browser import chromium as chromium
from tests.browser import contexts as contexts
from tests.conftest import Api, in_ledger
from tests.factories import DESCRIPTION
from tests.test_api import new_customer, place_order
from tests.test_email import token_of

NOT_FOUND = "Not found, or the link has expired"
TOKYO = timezone(timedelta(hours=9))  # no daylight saving time


def heading(page: Page) -> Locator:
    return page.get_by_role("heading", level=1)


def section(page: Page, heading_id: str) -> Locator:
    """A card of the page, by the id of its heading."""
    return page.locator(f"section[aria-labelledby='{heading_id}']")


# ------------------------------------------------------------------------------------- the whole story


async def test_the_whole_story_in_the_browser_ends_replaced(
    api: Api, env: WorkflowEnvironment, contexts: NewContext
) -> None:
    """Support signs in with a token, finds the complaint by its order, approves it, asks for access and
    offers a replacement; the customer grants access and chooses the replacement from the email's link;
    support's fix after the deadline is refused and changes nothing; the replacement is issued."""
    desk = api.desk
    complaint_id, order = await new_complaint(api)
    await new_complaint(api)  # another in the queue, which the search leaves out

    support = await new_page(contexts)
    await sign_in_with_token(support, api)
    await expect(support.locator("#queue tbody tr")).to_have_count(2)
    await support.get_by_label("Search").fill(order["order_id"])
    await support.get_by_role("button", name="Show").click()
    rows = support.locator("#queue tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows).to_contain_text(order["order_id"])
    await rows.get_by_role("link", name=complaint_id).click()
    await expect(heading(support)).to_have_text(f"Complaint {complaint_id}")
    await expect(section(support, "summary-heading")).to_contain_text("Waiting for support's review.")
    done = support.locator(".alert.ok")

    await support.get_by_label("Approve", exact=True).check()
    await support.get_by_role("button", name="Send the review").click()
    await expect(done).to_have_text("The complaint was approved.")
    assert (await desk.get(complaint_id)).status is ComplaintStatus.RECTIFYING

    await support.get_by_label("Scope").fill(ACCESS["scope"])
    await support.get_by_label("Why access is needed").fill(ACCESS["reason"])
    await support.get_by_role("button", name="Request access").click()
    await expect(done).to_have_text("Server access was requested from the customer.")
    assert (await desk.get(complaint_id)).status is ComplaintStatus.AWAITING_ACCESS

    await support.get_by_label("SKU").fill(OFFER["sku"])
    await support.get_by_label("Product name").fill(OFFER["name"])
    await support.get_by_label("Value", exact=True).fill(OFFER["value"])
    await expect(support.get_by_label("Currency")).to_have_value("EUR")
    await support.get_by_role("button", name="Offer the replacement").click()
    await expect(done).to_have_text("The replacement was offered to the customer.")
    offered = (await desk.get(complaint_id)).replacement_offer
    assert offered is not None and offered.sku == OFFER["sku"]

    # The customer opens the link in their email.
    customer = await new_page(contexts)
    await customer.goto(customer_link(api, complaint_id, order["customer_id"]))
    await expect(heading(customer)).to_have_text("Your complaint about SEO Pro plugin")
    await expect(customer).not_to_have_url(re.compile("token="))  # the script takes it out of the address
    await expect(customer.get_by_role("heading", name="We ask for access to your server")).to_be_visible()
    await expect(customer.get_by_text(ACCESS["reason"])).to_be_visible()
    replacement = customer.get_by_label("A replacement: SEO Max plugin, worth 54.00 EUR")
    await expect(replacement).to_be_visible()
    thanks = customer.locator(".alert.ok")

    secret = "hunter2-" + new_customer()
    await customer.get_by_label("Host", exact=True).fill("shop.example.net")
    await customer.get_by_label("User name").fill("deploy")
    await customer.get_by_label("Password or key").fill(secret)
    await customer.get_by_role("button", name="Grant access").click()
    await expect(thanks).to_contain_text("Thank you: access is granted.")
    assert secret not in await customer.content()
    granted = await desk.get(complaint_id)
    assert granted.status is ComplaintStatus.RECTIFYING and granted.access and granted.access.granted

    await replacement.check()
    await customer.get_by_role("button", name="Save my choice").click()
    await expect(thanks).to_have_text("Your choice is recorded: a replacement.")
    chosen = await desk.get(complaint_id)
    assert chosen.remedy_choice is RemedyChoice.REPLACEMENT and chosen.deadline is not None

    # Support opens the page before the deadline, and marks the fix only after it.
    await support.goto(f"{api.base_url}/console/complaints/{complaint_id}")
    await expect(section(support, "access-heading")).to_contain_text("Granted")
    await expect(section(support, "summary-heading")).to_contain_text("Remedy chosen")
    fix = support.locator("form", has=support.get_by_role("button", name="Mark fixed"))
    await fix.get_by_label("Note (optional)").fill("patched in 2.3.1")
    await env.sleep(chosen.deadline + timedelta(minutes=1) - await desk.now())
    async with support.expect_response(lambda r: r.url.endswith("/fix")) as answer:
        await fix.get_by_role("button", name="Mark fixed").click()
    assert (await answer.value).status == 409
    refusal = support.get_by_role("alert")
    await expect(refusal).to_contain_text("Refused:")
    await expect(refusal).to_contain_text("Nothing was changed.")
    assert await refusal.locator("code").inner_text() in ("invalid_state", "remedy_being_issued")
    await expect(section(support, "trail-heading")).not_to_contain_text("Marked fixed")

    final = await desk.outcome(complaint_id)
    assert final.status is ComplaintStatus.REPLACED
    assert final.resolution is not None and final.resolution.replacement is not None
    assert final.resolution.replacement.sku == OFFER["sku"]
    assert "rectified" not in [event.type for event in final.events], "the refused fix left no trace"
    await in_ledger(desk.ledger, complaint_id, ComplaintStatus.REPLACED, seconds=LEDGER_WAIT)

    await support.goto(f"{api.base_url}/console/complaints/{complaint_id}")
    await expect(section(support, "summary-heading")).to_contain_text("Closed: replacement issued.")
    resolution = section(support, "resolution-heading")
    await expect(resolution).to_contain_text("SEO Max plugin (SKU plugin-seo-max)")
    await expect(section(support, "actions-heading")).to_contain_text("No action is open to support")
    await customer.reload()
    await expect(customer.locator("p.status")).to_have_text(
        "We sent you a replacement. This complaint is closed."
    )


async def test_a_one_time_sign_in_link_signs_in_once(api: Api, contexts: NewContext) -> None:
    complaint_id, _ = await new_complaint(api)
    link = console_link(api, "bob")

    first = await new_page(contexts)
    await first.goto(link)
    await expect(heading(first)).to_have_text("Sign in to the support console")
    await first.get_by_role("button", name="Sign in", exact=True).click()
    await expect(heading(first)).to_have_text("Queue")
    await expect(first.get_by_text("Signed in as bob")).to_be_visible()
    await expect(first.get_by_role("link", name=complaint_id)).to_be_visible()

    again = await new_page(contexts)  # the same link, forwarded to another browser
    await again.goto(link)
    async with again.expect_response(lambda r: r.request.method == "POST") as answer:
        await again.get_by_role("button", name="Sign in", exact=True).click()
    assert (await answer.value).status == 401
    await expect(again.get_by_role("alert")).to_contain_text("this sign-in link was used already")
    await again.goto(f"{api.base_url}/console")
    await expect(heading(again)).to_have_text("Sign in to the support console")
    await expect(again.get_by_text(complaint_id)).to_have_count(0)
    await expect(again.get_by_text("Signed in as")).to_have_count(0)


# ---------------------------------------------------------------------------------------------- refusals


async def test_a_forged_csrf_token_is_refused_and_changes_nothing(api: Api, contexts: NewContext) -> None:
    complaint_id, order = await new_complaint(api)
    before = await api.desk.get(complaint_id)

    support = await new_page(contexts)
    await sign_in_with_token(support, api)
    await support.goto(f"{api.base_url}/console/complaints/{complaint_id}")
    await support.get_by_label("Approve", exact=True).check()
    await support.evaluate(
        """() => {
          const field = document.querySelector('form[action$="/review"] input[name="csrf_token"]');
          field.value = "forged" + field.value.slice(6);
        }"""
    )
    async with support.expect_response(lambda r: r.url.endswith("/review")) as answer:
        await support.get_by_role("button", name="Send the review").click()
    assert (await answer.value).status == 403
    await expect(heading(support)).to_have_text("This form was refused")
    await expect(support.get_by_role("alert")).to_contain_text("Nothing was changed.")

    customer = await new_page(contexts)
    await customer.goto(customer_link(api, complaint_id, order["customer_id"]))
    await customer.get_by_label("Yes, withdraw it").check()
    await customer.evaluate(
        """() => {
          const field = document.querySelector('form[action$="/withdraw"] input[name="csrf_token"]');
          field.value = field.value.split("").reverse().join("");
        }"""
    )
    async with customer.expect_response(lambda r: r.url.endswith("/withdraw")) as answer:
        await customer.get_by_role("button", name="Withdraw my complaint").click()
    assert (await answer.value).status == 403
    await expect(heading(customer)).to_have_text("This form was refused")

    after = await api.desk.get(complaint_id)
    assert after.status is ComplaintStatus.UNDER_REVIEW and after.review is None
    assert [e.type for e in after.events] == [e.type for e in before.events], "the trail is unchanged"


async def test_another_customers_link_or_an_expired_one_shows_nothing_of_the_complaint(
    api: Api, contexts: NewContext
) -> None:
    mine, my_order = await new_complaint(api, amount="31.40")
    theirs, their_order = await new_complaint(api)
    me, them = my_order["customer_id"], their_order["customer_id"]
    attempts = {
        "their link, on my complaint": (
            f"{api.base_url}/my/complaints/{mine}?token={token_of(customer_link(api, theirs, them))}"
        ),
        "a link to my complaint in their name": customer_link(api, mine, them),
        "my link, expired": customer_link(api, mine, me, now=datetime.now(UTC) - timedelta(days=8)),
    }
    mine_shows = (mine, my_order["order_id"], me, "31.40", DESCRIPTION[:40], "We are reviewing")
    for what, url in attempts.items():
        page = await new_page(contexts)
        response = await page.goto(url)
        assert response is not None and response.status == 404, what
        await expect(heading(page)).to_have_text(NOT_FOUND)
        html = await page.content()
        for shown in (*mine_shows, theirs, them):
            assert shown not in html, (what, shown)
        assert "rd_my_session" not in [cookie["name"] for cookie in await page.context.cookies()], what

    page = await new_page(contexts)  # while my own link, fresh, opens it
    await page.goto(customer_link(api, mine, me))
    await expect(page.locator("body")).to_contain_text("31.40")
    await expect(heading(page)).to_have_text("Your complaint about SEO Pro plugin")


# ------------------------------------------------------------------------------- accessibility, usability


async def scene(api: Api) -> dict[str, str]:
    """A queue with a complaint under review (support's page shows its four action forms) and one awaiting
    the customer's answer to an access request, with a replacement offered (the customer's page shows the
    access form and the remedy form). The pages' addresses, by name."""
    under_review, _ = await new_complaint(api)
    waiting, order = await new_complaint(api)
    await support_acts(api, waiting, "access-request", ACCESS)
    await support_acts(api, waiting, "replacement", OFFER)
    await in_ledger(api.desk.ledger, waiting, ComplaintStatus.AWAITING_ACCESS, seconds=LEDGER_WAIT)
    return {
        "queue": f"{api.base_url}/console",
        "console complaint": f"{api.base_url}/console/complaints/{under_review}",
        "customer page": customer_link(api, waiting, order["customer_id"]),
    }


SHOWING = {
    "queue": ("Show",),
    "console complaint": ("Send the review", "Request access", "Mark fixed", "Offer the replacement"),
    "customer page": ("Grant access", "Refuse access", "Save my choice", "Withdraw my complaint"),
}
"""Buttons of the forms each page must show for its checks to cover them."""


async def opened(api: Api, contexts: NewContext, which: str, url: str, **options: Any) -> Page:
    """`url` in a fresh context with `options`, signed in to the console first where it is a console page."""
    page = await new_page(contexts, **options)
    if which != "customer page":
        await sign_in_with_token(page, api)
    await page.goto(url)
    await expect(heading(page)).to_be_visible()
    return page


@pytest.mark.parametrize("which", list(SHOWING))
async def test_the_pages_are_named_ordered_reachable_narrow_and_local(
    api: Api, contexts: NewContext, which: str
) -> None:
    """Every control is named (a checkbox on its label's line), the headings descend one level at a time
    from one h1, the Tab key reaches every link, button and control, nothing scrolls sideways at 375 px, and
    times are in the reader's zone (UTC, said so, without JavaScript)."""
    url = (await scene(api))[which]

    page = await opened(api, contexts, which, url)
    for button in SHOWING[which]:
        await expect(page.get_by_role("button", name=button, exact=True)).to_be_visible()
    report = await examine(page, url)
    assert report.controls >= 8, report
    assert report.unnamed == [], "controls without an accessible name"
    assert report.detached == [], "a checkbox or radio button apart from its label"
    assert report.heading_problems() == [], report.headings
    assert report.interactive - report.reached == set(), "not reachable with the Tab key"

    phone = await opened(api, contexts, which, url, viewport=PHONE)
    assert await scroll_width(phone) <= PHONE["width"], "the page scrolls sideways at 375 px"

    tokyo = await opened(api, contexts, which, url, timezone_id="Asia/Tokyo")
    await expect(tokyo.locator("time").first).not_to_have_text(re.compile(r"UTC$"))
    shown = await times_shown(tokyo)
    assert shown, "the page shows a time"
    for attribute, text in shown:
        assert ISO_UTC.fullmatch(attribute), attribute
        local = datetime.fromisoformat(attribute).astimezone(TOKYO)
        assert not text.endswith("UTC") and f"{local.hour % 12 or 12}:{local:%M}" in text, (attribute, text)

    plain = await opened(api, contexts, which, url, java_script_enabled=False, timezone_id="Asia/Tokyo")
    shown = await times_shown(plain)
    assert shown, "the page shows a time"
    for attribute, text in shown:
        instant = datetime.fromisoformat(attribute)
        assert text == f"{instant:%Y-%m-%d %H:%M} UTC", (attribute, text)


# ------------------------------------------------------------------------------------------ screenshots


async def test_screenshots_of_the_queue_a_complaint_and_the_customers_page(
    api: Api, env: WorkflowEnvironment, contexts: NewContext
) -> None:
    """The three pages at a desktop width, full length, with a realistic queue: one complaint escalated
    (overdue), one due within the day, two later (one waiting for the customer's answer about access). With
    this fuller data, too, nothing scrolls sideways on a phone."""
    desk = api.desk
    start = await desk.now()
    amounts = ("49.90", "50.00", "19.00", "120.00")
    orders = [await place_order(api, new_customer(), amount) for amount in amounts]
    overdue = await file_about(api, orders[0])
    await env.sleep(start + timedelta(hours=12) - await desk.now())
    soon = await file_about(api, orders[1])
    await env.sleep(start + timedelta(days=2) - await desk.now())
    await file_about(api, orders[2])
    waiting = await file_about(api, orders[3])
    await support_acts(api, waiting, "review", {"decision": "approve", "note": "reproduced on 2.3.0"})
    await support_acts(api, waiting, "access-request", ACCESS)
    await support_acts(api, waiting, "replacement", OFFER | {"value": "118.00"})
    await env.sleep(start + timedelta(days=5, hours=2) - await desk.now())
    await in_ledger(desk.ledger, overdue, ComplaintStatus.ESCALATED, seconds=LEDGER_WAIT)
    await in_ledger(desk.ledger, waiting, ComplaintStatus.AWAITING_ACCESS, seconds=LEDGER_WAIT)

    options = {"viewport": DESKTOP, "timezone_id": "Europe/Berlin"}
    support = await opened(api, contexts, "queue", f"{api.base_url}/console", **options)
    for urgency in ("overdue", "soon", "later"):
        await expect(support.locator(f"#queue .due-{urgency}").first).to_be_visible()
    await expect(support.locator("#queue tbody tr").first).to_contain_text(overdue)
    await expect(support.locator("#queue tbody tr").nth(1)).to_contain_text(soon)
    await expect(support.locator("#queue tbody tr")).to_have_count(4)
    saved = [await screenshot(support, "queue")]

    await support.goto(f"{api.base_url}/console/complaints/{waiting}")
    await expect(section(support, "offer-heading")).to_contain_text("SEO Max plugin")
    saved.append(await screenshot(support, "complaint"))

    customer = await opened(
        api, contexts, "customer page", customer_link(api, waiting, orders[3]["customer_id"]), **options
    )
    await expect(customer.get_by_role("button", name="Grant access")).to_be_visible()
    saved.append(await screenshot(customer, "customer"))

    for which, url in (
        ("queue", f"{api.base_url}/console"),
        ("console complaint", f"{api.base_url}/console/complaints/{waiting}"),
        ("customer page", customer_link(api, waiting, orders[3]["customer_id"])),
    ):
        phone = await opened(api, contexts, which, url, viewport=PHONE)
        assert await scroll_width(phone) <= PHONE["width"], f"the {which} scrolls sideways at 375 px"

    assert saved == [SCREENSHOTS / f"{name}.png" for name in ("queue", "complaint", "customer")]
    for path in saved:
        data = path.read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 20_000, path
        width = int.from_bytes(data[16:20], "big")
        assert width == DESKTOP["width"], (path, width)
