"""What the customer's pages show: a complaint in plain words with the questions the policy asks now, and
the list of a signed-in customer's complaints."""

from __future__ import annotations

from fastapi.responses import Response

from policy.complaint import ComplaintState
from policy.due import next_due
from starter.web import words
from starter.web.actions import allowed_actions
from starter.web.pages import Browser

DONE = {
    "access_granted": "Thank you: access is granted. Your credentials were sealed as they arrived and are "
    "not shown again, here or anywhere.",
    "access_refused": "You refused access to your server. Under our policy this ends the complaint.",
    "remedy_refund": "Your choice is recorded: a full refund.",
    "remedy_replacement": "Your choice is recorded: a replacement.",
    "withdrawn": "Your complaint is withdrawn.",
}
"""The confirmations a redirect after an action may ask for (`?done=`); any other value shows nothing."""


async def complaint_page(
    browser: Browser,
    complaint_id: str,
    *,
    done: str | None = None,
    problem: str | None = None,
    status: int = 200,
) -> Response:
    """The complaint as its customer sees it, with a form for each answer the policy lets them give now."""
    assert browser.session is not None
    state = await browser.desk.get_for(complaint_id, browser.session.actor)
    now = await browser.desk.now()
    due = next_due(state)
    return browser.render(
        "customer/complaint.html",
        status=status,
        state=state,
        kind_words=words.KIND_FOR_CUSTOMER[state.kind],
        status_words=words.STATUS_FOR_CUSTOMER[state.status],
        due=due,
        time_left=words.time_left(due, now),
        at_deadline=words.at_deadline(state, for_customer=True),
        allowed=allowed_actions(state, browser.session.actor, now),
        replacement=replacement_on_offer(state),
        done=DONE.get(done or ""),
        problem=problem,
    )


def replacement_on_offer(state: ComplaintState) -> str:
    """What a replacement would be (R12): support's offer if they made one, else the same product again."""
    offer = state.replacement_offer
    if offer is None:
        return f"{state.order.product.name} again"
    return f"{offer.name}, worth {offer.value.amount} {offer.value.currency}"


async def list_page(browser: Browser) -> Response:
    """A signed-in customer's complaints, newest first."""
    assert browser.session is not None
    found = await browser.desk.list_complaints(customer_id=browser.session.sub, limit=100)
    rows = [(state, words.STATUS_FOR_CUSTOMER[state.status]) for state in found]
    return browser.render("customer/list.html", rows=rows)
