"""Emails: a notice rendered for the person who reads it, and made a MIME message to send.

A notice is what a workflow records for someone (`workflows.common.notice`): a template name, a recipient
and a small payload. `render` turns it into a subject, a plain-text body and an HTML body from the Jinja2
templates in `dispatch/templates/` (`<notice>.txt.j2` and `<notice>.html.j2`, the HTML autoescaped, every
variable required). Each email says what happened, what the reader can do (a customer: through the link to
the complaint, `dispatch.links`) and by when, the time in UTC and from now ("in 4 days, by Friday 4
December 2026 at 18:30 UTC"). `NOTICES` lists every notice, whom it is for and what its payload holds.

`build_message` makes the message (text and HTML as alternatives, a `Message-ID` built from the delivery's
id, so that a receiver can drop a message sent twice); `dispatch.smtp` sends it. Nothing here logs, and no
error it raises names an address or holds a body.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from email.message import EmailMessage
from email.utils import format_datetime
from functools import cache
from importlib import resources
from typing import Any, Final, Literal

import jinja2

from policy.activation import ActivationState
from policy.complaint import ComplaintState
from policy.models import Money, canonical_amount

Recipient = Literal["customer", "support"]


@dataclass(frozen=True)
class NoticeKind:
    """One kind of notice: who reads it, what it is about, and the payload keys its templates need."""

    recipient: Recipient
    about: Literal["complaint", "activation"]
    payload: tuple[str, ...] = ()


NOTICES: Final[Mapping[str, NoticeKind]] = {
    "complaint_filed": NoticeKind("support", "complaint"),
    "deadline_approaching": NoticeKind("support", "complaint", ("pending", "deadline")),
    "complaint_escalated": NoticeKind("support", "complaint"),
    "choose_remedy": NoticeKind("customer", "complaint", ("due",)),
    "refund_issued": NoticeKind("customer", "complaint", ("amount",)),
    "replacement_issued": NoticeKind("customer", "complaint", ("sku",)),
    "access_requested": NoticeKind("customer", "complaint", ("scope", "due")),
    "replacement_offered": NoticeKind("customer", "complaint", ("sku",)),
    "defect_rectified": NoticeKind("customer", "complaint"),
    "claim_rejected": NoticeKind("customer", "complaint", ("reason_code",)),
    "report_refused": NoticeKind("support", "complaint", ("action", "reason_code", "by")),
    "activation_canceled": NoticeKind("customer", "activation", ("reason", "refund")),
    "sms_received": NoticeKind("customer", "activation"),
}
"""Every notice the workflows send (`tests/test_email.py` holds them to it), by template name."""


class TemplateError(ValueError):
    """A notice that cannot be rendered as asked: sending it again will not help."""


class UnknownTemplate(TemplateError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no email template {name!r}: the notices are {', '.join(sorted(NOTICES))}")


@dataclass(frozen=True)
class EmailContext:
    """What one email is made of. `complaint` is the ledger's projection (its events may be empty)."""

    template: str
    payload: dict[str, Any]
    recipient_role: Recipient
    complaint: ComplaintState | None
    activation: ActivationState | None
    link: str | None
    """The customer's signed link to the complaint (`dispatch.links`), for a customer's email about one;
    without it the email sends the customer to their account with the shop instead."""
    now: datetime


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


# ------------------------------------------------------------------------------------------- words


def plural(count: int, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def span(length: timedelta) -> str:
    """A length of time as people say it: "4 days", "1 day and 5 hours", "3 hours", "25 minutes"."""
    seconds = int(abs(length).total_seconds())
    days, seconds = divmod(seconds, 86_400)
    hours, seconds = divmod(seconds, 3_600)
    minutes, seconds = divmod(seconds, 60)
    if days >= 2:
        return plural(days, "day")
    if days == 1:
        return "1 day" + (f" and {plural(hours, 'hour')}" if hours else "")
    if hours >= 2:
        return plural(hours, "hour")
    if hours == 1:
        return "1 hour" + (f" and {plural(minutes, 'minute')}" if minutes else "")
    if minutes:
        return plural(minutes, "minute")
    return plural(seconds, "second")


@dataclass(frozen=True)
class Moment:
    """An instant as the reader needs it: in UTC, and how far from the email's `now`."""

    at: datetime
    now: datetime

    @property
    def utc(self) -> str:
        """`Friday 4 December 2026 at 18:30 UTC` (seconds too when there are some: short test windows)."""
        at = self.at.astimezone(UTC)
        clock = f"{at:%H:%M:%S}" if at.second else f"{at:%H:%M}"
        return f"{at:%A} {at.day} {at:%B %Y} at {clock} UTC"

    @property
    def relative(self) -> str:
        """`in 4 days`, `2 hours ago`, `now`."""
        left = self.at - self.now
        if abs(left) < timedelta(seconds=1):
            return "now"
        return f"in {span(left)}" if left > timedelta(0) else f"{span(left)} ago"

    @property
    def passed(self) -> bool:
        return self.at <= self.now

    def __str__(self) -> str:
        """A deadline in the reader's terms: `in 4 days, by Friday ... UTC`, or `Friday ... UTC, 2 hours
        ago` once it has passed."""
        if self.passed:
            return f"{self.utc}, {self.relative}"
        return f"{self.relative}, by {self.utc}"


def moment(value: datetime | str | None, now: datetime) -> Moment:
    """`value` (ISO-8601 text, as payloads carry times, or a datetime) as a `Moment`; naive means UTC."""
    if value is None:
        raise TemplateError("a time the email needs is missing")
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return Moment(at if at.tzinfo is not None else at.replace(tzinfo=UTC), now)


@cache
def _words() -> dict[str, str]:
    """`templates/words.json`: the codes a reader meets (kinds, reasons), as words."""
    loaded: dict[str, str] = json.loads(
        resources.files("dispatch").joinpath("templates/words.json").read_text()
    )
    return loaded


def words(code: object) -> str:
    """A code (a kind, a reason) as a reader understands it; one without words is shown as it is."""
    text = str(getattr(code, "value", code))
    return _words().get(text, text.replace("_", " "))


# ----------------------------------------------------------------------------------------- render


def notice_of(template: str) -> NoticeKind:
    """The notice named `template`; `UnknownTemplate` for a name no template has."""
    try:
        return NOTICES[template]
    except KeyError:
        raise UnknownTemplate(template) from None


@cache
def environment() -> jinja2.Environment:
    """The templates of `dispatch/templates/`, as package data; HTML autoescaped, every variable required."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("dispatch", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(ctx: EmailContext) -> RenderedEmail:
    """The email of `ctx.template` for its reader. `TemplateError` (`UnknownTemplate` among them) when the
    notice is unknown, meant for another reader, or lacks what its templates need."""
    _check(ctx, notice_of(ctx.template))
    variables = _variables(ctx)
    templates = environment()
    try:
        text = templates.get_template(f"{ctx.template}.txt.j2").make_module(variables)
        subject = " ".join(str(getattr(text, "subject", "")).split())
        html = templates.get_template(f"{ctx.template}.html.j2").render(variables, subject=subject)
    except jinja2.TemplateNotFound as missing:
        raise TemplateError(f"the notice {ctx.template} has no template {missing.name}") from None
    except InvalidOperation:
        raise TemplateError(f"the notice {ctx.template} holds an amount that is not a number") from None
    except (jinja2.UndefinedError, ValueError) as error:
        raise TemplateError(f"the notice {ctx.template} cannot be rendered: {error}") from None
    if not subject:
        raise TemplateError(f"{ctx.template}.txt.j2 sets no subject")
    return RenderedEmail(subject=subject, text=tidy(str(text)), html=html.rstrip("\n") + "\n")


def _check(ctx: EmailContext, notice: NoticeKind) -> None:
    if ctx.recipient_role != notice.recipient:
        raise TemplateError(f"the notice {ctx.template} is for {notice.recipient}, not {ctx.recipient_role}")
    if ctx.now.tzinfo is None:
        raise TemplateError("now must carry a zone")
    if notice.about == "complaint" and ctx.complaint is None:
        raise TemplateError(f"the notice {ctx.template} needs its complaint")
    if notice.about == "activation" and ctx.activation is None:
        raise TemplateError(f"the notice {ctx.template} needs its activation")
    missing = [key for key in notice.payload if key not in ctx.payload]
    if missing:
        raise TemplateError(f"the notice {ctx.template} needs {', '.join(missing)} in its payload")


def _variables(ctx: EmailContext) -> dict[str, Any]:
    """What the templates see: the notice's payload and subject, its order and product, the link, and the
    helpers that word times (`at(...)`), money (`money(...)`) and codes (`words(...)`)."""
    if ctx.complaint is not None:
        order = ctx.complaint.order
    elif ctx.activation is not None:
        order = ctx.activation.order
    else:
        raise TemplateError(f"the notice {ctx.template} needs a complaint or an activation")
    currency = order.price.currency

    def money(amount: object) -> str:
        """`49.90 EUR`, of a `Money` or of an amount in the order's currency (payloads carry text)."""
        if isinstance(amount, Money):
            return f"{canonical_amount(amount.amount):f} {amount.currency}"
        return f"{canonical_amount(Decimal(str(amount))):f} {currency}"

    def at(value: datetime | str | None) -> Moment:
        return moment(value, ctx.now)

    return {
        "notice": ctx.template,
        "reader": ctx.recipient_role,
        "payload": ctx.payload,
        "complaint": ctx.complaint,
        "activation": ctx.activation,
        "order": order,
        "product": order.product,
        "price": money(order.price.amount),
        "link": ctx.link,
        "via": "with the link below" if ctx.link else "in your account with the shop",
        "at": at,
        "money": money,
        "words": words,
        "span": span,
    }


def tidy(text: str) -> str:
    """Plain text as mail readers show it best: lines wrapped at 76 columns (a link is never broken), at
    most one blank line in a row, no trailing spaces, one final newline."""
    lines: list[str] = []
    for line in text.splitlines():
        if line.strip():
            lines.extend(textwrap.wrap(line.rstrip(), 76, break_long_words=False, break_on_hyphens=False))
        elif lines and lines[-1]:
            lines.append("")
    return "\n".join(lines).strip("\n") + "\n"


# ---------------------------------------------------------------------------------------- message

MESSAGE_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MESSAGE_DOMAIN: Final = "refund-desk"
MESSAGE_HEADER: Final = "X-Refund-Desk-Message"


def build_message(rendered: RenderedEmail, *, to: str, sender: str, message_id: str) -> EmailMessage:
    """The email as sent: text and HTML as alternatives, `Message-ID: <{message_id}@refund-desk>` and
    `X-Refund-Desk-Message: {message_id}`, the same for every attempt at one delivery, so that a receiver
    (or a person) can tell a message sent twice. `Auto-Submitted` keeps auto-replies from answering it."""
    if not MESSAGE_ID.fullmatch(message_id):
        raise ValueError("a message id is 1-128 of A-Z a-z 0-9 . _ -, starting with a letter or digit")
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = rendered.subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = f"<{message_id}@{MESSAGE_DOMAIN}>"
    message[MESSAGE_HEADER] = message_id
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message
