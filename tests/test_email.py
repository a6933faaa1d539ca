"""Emails, from a notice to a mailbox (`dispatch.email`, then `dispatch.smtp`), and the link in a customer's
email over real HTTP (`dispatch.links`, `starter.api.auth`, docs/api.md "Links in customers' emails").

Every notice a workflow sends renders for its reader, in words, with its deadline in UTC and from now; HTML
escapes what came from people; a message sent with `send` arrives through a real SMTP server (aiosmtpd) on
loopback with both parts and its Message-ID; a server that cannot do what the URL asks fails in a sentence
that names no address. The link opens its complaint with `?token=` and nothing else, and its token never
reaches the API's log. Nothing is mocked.
"""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from pydantic import SecretStr
from uvicorn.logging import AccessFormatter

from dispatch.email import (
    NOTICES,
    EmailContext,
    RenderedEmail,
    TemplateError,
    UnknownTemplate,
    build_message,
    render,
)
from dispatch.links import customer_link, link_token
from dispatch.mail_sink import MailSink, list_mail
from dispatch.settings import DispatchSettings
from dispatch.smtp import MailNotConfigured, MailNotSent, SmtpServer, send
from policy.activation import ActivationState, CancelReason
from policy.complaint import ComplaintState
from policy.models import Actor, ComplaintKind, ComplaintStatus, Money, ReplacementOffer, Role
from starter.api.settings import TOKEN_AUDIENCE, TOKEN_ISSUER
from tests.conftest import Api
from tests.factories import DESCRIPTION, POLICY, number_order, software_order
from tests.test_api import error_of, file_complaint, new_customer

Json = dict[str, Any]
NOW = datetime(2026, 11, 30, 18, 30, tzinfo=UTC)
"""A Monday: four days later is Friday 4 December 2026 at 18:30 UTC."""
LINK = "https://desk.example/v1/complaints/c?token=t0ken"
WORKFLOWS = Path(__file__).resolve().parent.parent / "workflows"
TEMPLATES = Path(__file__).resolve().parent.parent / "dispatch" / "templates"


# ----------------------------------------------------------------------------------------- contexts


def defect(**changes: Any) -> ComplaintState:
    order = software_order(price="49.90")
    state = ComplaintState(
        complaint_id=f"{order.order_id}.major_defect.0badc0de",
        kind=ComplaintKind.MAJOR_DEFECT,
        order=order,
        description=DESCRIPTION,
        filed_by=Actor(role=Role.CUSTOMER, id=order.customer_id),
        policy=POLICY,
        status=ComplaintStatus.RECTIFYING,
        created_at=NOW - timedelta(days=1),
        deadline=NOW + timedelta(days=4),
    )
    return state.model_copy(update=changes)


def claim() -> ComplaintState:
    order = number_order()
    return defect().model_copy(
        update={
            "complaint_id": f"{order.order_id}.sms_not_received.0badc0de",
            "kind": ComplaintKind.SMS_NOT_RECEIVED,
            "order": order,
            "status": ComplaintStatus.UNDER_REVIEW,
        }
    )


def activation() -> ActivationState:
    order = number_order()
    return ActivationState(
        activation_id=f"act_{order.order_id}",
        order=order,
        phone_number="+447700900123",
        service="whatsapp",
        started_by="backend:shop",
        started_at=NOW - timedelta(minutes=20),
        expires_at=NOW,
    )


PAYLOADS: dict[str, Json] = {
    "deadline_approaching": {"pending": "review", "deadline": (NOW + timedelta(days=4)).isoformat()},
    "choose_remedy": {"due": (NOW + timedelta(days=4)).isoformat()},
    "refund_issued": {"amount": "49.9000"},
    "replacement_issued": {"sku": "plugin-seo-pro"},
    "access_requested": {"scope": "SSH to the web server", "due": (NOW + timedelta(days=4)).isoformat()},
    "replacement_offered": {"sku": "plugin-seo-max"},
    "claim_rejected": {"reason_code": "sms_delivered"},
    "report_refused": {"action": "mark_fixed", "reason_code": "invalid_state", "by": "support:deploy-bot"},
    "activation_canceled": {"reason": CancelReason.NO_SMS_IN_TIME.value, "refund": "0.75"},
}
"""A payload per notice, as the workflows write them (times in ISO-8601)."""

DEADLINES = {
    "complaint_filed",
    "deadline_approaching",
    "choose_remedy",
    "access_requested",
    "replacement_offered",
}
"""The notices whose reader has something to do by a time: four days after `NOW`."""


def context(name: str, **changes: Any) -> EmailContext:
    """The notice `name` as the dispatcher would hand it over, for its reader; `changes` to the context."""
    template = name
    notice = NOTICES[template]
    subject = claim() if template == "claim_rejected" else defect()
    about_complaint = notice.about == "complaint"
    fields: Json = {
        "template": template,
        "payload": PAYLOADS.get(template, {}),
        "recipient_role": notice.recipient,
        "complaint": subject if about_complaint else None,
        "activation": None if about_complaint else activation(),
        "link": LINK if about_complaint and notice.recipient == "customer" else None,
        "now": NOW,
    }
    return EmailContext(**(fields | changes))


# ------------------------------------------------------------------------------------------- render


def flat(text: str) -> str:
    """`text` with its lines joined: a phrase may wrap anywhere in plain text."""
    return " ".join(text.split())


def used_by_workflows() -> dict[str, str]:
    """Every template a workflow names in `notice(...)` or `_notify(...)`, with its reader."""
    call = re.compile(r"\b(?:notice|_notify)\(\s*(?:(?P<to>[\w.]+),\s*)?\"(?P<template>\w+)\"")
    found: dict[str, str] = {}
    for source in WORKFLOWS.glob("*.py"):
        for match in call.finditer(source.read_text()):
            found[match["template"]] = "support" if match["to"] == "SUPPORT" else "customer"
    return found


def test_every_template_a_workflow_uses_has_its_files_and_its_reader() -> None:
    used = used_by_workflows()
    assert len(used) == 13, used
    assert {name: notice.recipient for name, notice in NOTICES.items()} == used
    for name in used:
        for part in ("txt", "html"):
            assert (TEMPLATES / f"{name}.{part}.j2").is_file(), f"{name} has no {part} template"


@pytest.mark.parametrize("template", sorted(NOTICES))
def test_every_notice_renders_for_its_reader_in_words(template: str) -> None:
    ctx = context(template)
    email = render(ctx)
    assert email.subject and "\n" not in email.subject and "{" not in email.subject
    for body in (email.text, email.html):
        assert "What you can do:" in body and "By when:" in body, body
        assert "None" not in body and "{{" not in body and "{%" not in body
    assert ctx.complaint is not None or ctx.activation is not None
    order = ctx.complaint.order if ctx.complaint is not None else ctx.activation.order  # type: ignore[union-attr]
    text = flat(email.text)
    assert order.order_id in text and order.product.name in text and order.product.name in email.html
    if ctx.recipient_role == "support":
        assert ctx.complaint is not None and ctx.complaint.complaint_id in text
    elif ctx.complaint is not None:
        assert f"\n{LINK}\n" in email.text and f'href="{LINK}"' in email.html
    if template in DEADLINES:
        when = "in 4 days, by Friday 4 December 2026 at 18:30 UTC"
        assert when in text and when in email.html, email.text
    assert all(len(line) <= 76 for line in email.text.splitlines() if " " in line), email.text


def test_the_words_of_a_few_notices() -> None:
    refund = render(context("refund_issued"))
    assert refund.subject.startswith("We refunded 49.90 EUR for order ")
    rejected = flat(render(context("claim_rejected")).text)
    assert "rejected it: the provider's records show the SMS reached the number. No refund" in rejected
    refused = render(context("report_refused"))
    assert refused.subject.endswith(": the complaint's state does not allow it now"), refused.subject
    said = flat(refused.text)
    assert "support:deploy-bot reported that the defect is fixed on complaint " in said, said
    assert "The policy refused it: the complaint's state does not allow it now (invalid_state)." in said
    canceled = flat(render(context("activation_canceled")).text)
    assert "no SMS arrived in the time the number waits for it. We returned 0.75 EUR" in canceled
    offered = render(context("replacement_offered", complaint=defect(replacement_offer=_offer())))
    assert "SEO Max plugin (plugin-seo-max), worth 52.00 EUR" in flat(offered.text)
    escalated = render(context("complaint_escalated", complaint=defect(deadline=NOW - timedelta(hours=2))))
    assert "its deadline was Monday 30 November 2026 at 16:30 UTC, 2 hours ago" in flat(escalated.text)
    soon = {**PAYLOADS["choose_remedy"], "due": (NOW + timedelta(hours=1, minutes=5, seconds=30)).isoformat()}
    remedy = flat(render(context("choose_remedy", payload=soon)).text)
    assert "in 1 hour and 5 minutes, by Monday 30 November 2026 at 19:35:30 UTC" in remedy


def _offer() -> ReplacementOffer:
    return ReplacementOffer(
        sku="plugin-seo-max", name="SEO Max plugin", value=Money(amount="52.00", currency="EUR")
    )


def test_without_a_link_the_customer_is_sent_to_their_account() -> None:
    """The worker mints links with the API's secret; a worker without one still sends the email."""
    email = render(context("choose_remedy", link=None))
    assert "Choose in your account with the shop." in flat(email.text)
    assert "Open your complaint" not in email.text and "href" not in email.html
    assert "with the link below" in flat(render(context("choose_remedy")).text)


def test_html_escapes_what_people_wrote_and_the_text_keeps_it() -> None:
    scope = '<script>alert("x")</script> & <b>root</b>'
    payload = {**PAYLOADS["access_requested"], "scope": scope}
    email = render(context("access_requested", payload=payload))
    assert "<script>" not in email.html and "<b>root</b>" not in email.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;root&lt;/b&gt;" in email.html
    assert scope in flat(email.text)


def test_a_notice_that_cannot_be_rendered_says_why() -> None:
    with pytest.raises(UnknownTemplate, match="no email template 'complaint_lost': the notices are"):
        render(context("refund_issued", template="complaint_lost"))
    with pytest.raises(TemplateError, match="is for customer, not support"):
        render(context("refund_issued", recipient_role="support"))
    with pytest.raises(TemplateError, match="needs due in its payload"):
        render(context("choose_remedy", payload={}))
    with pytest.raises(TemplateError, match="needs its activation"):
        render(context("sms_received", activation=None))
    with pytest.raises(TemplateError, match="holds an amount that is not a number"):
        render(context("refund_issued", payload={"amount": "lots"}))


# ------------------------------------------------------------------------------------------ message


def test_the_message_has_both_parts_and_the_delivery_id() -> None:
    rendered = RenderedEmail(subject="Hello", text="plain words\n", html="<p>plain words</p>")
    message = build_message(
        rendered, to="bob@example.com", sender="Desk <desk@example.com>", message_id="d-1"
    )
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["Message-ID"] == "<d-1@refund-desk>" and message["X-Refund-Desk-Message"] == "d-1"
    with pytest.raises(ValueError, match="message id"):
        build_message(rendered, to="bob@example.com", sender="desk@example.com", message_id="a>b")
    with pytest.raises(ValueError):
        build_message(rendered, to="bob@example.com\nBcc: eve@example.com", sender="d@e.com", message_id="d")


# --------------------------------------------------------------------------------------------- SMTP


def settings_for(url: str | None) -> DispatchSettings:
    return DispatchSettings(smtp_url=None if url is None else SecretStr(url))


async def test_a_message_sent_arrives_with_both_parts_and_its_message_id(tmp_path: Path) -> None:
    email = render(context("choose_remedy"))
    message = build_message(email, to="cust@example.com", sender="Desk <desk@example.com>", message_id="d-42")
    with MailSink(0, tmp_path / "mail") as sink:
        await send(message, settings_for(sink.url))
    [arrived] = list_mail(tmp_path / "mail")
    assert arrived.recipient == "cust@example.com" and arrived.subject == email.subject
    assert arrived.message["Message-ID"] == "<d-42@refund-desk>"
    assert arrived.message["X-Refund-Desk-Message"] == "d-42"
    html = arrived.message.get_body(preferencelist=("html",))
    assert html is not None and html.get_content() == email.html
    assert arrived.text == email.text


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Refusing:
    """An SMTP server's handler that refuses every recipient, naming the address as real servers do."""

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        return f"550 5.1.1 <{address}>: Recipient address rejected"


@contextmanager
def smtp_server(handler: object) -> Iterator[int]:
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()


def a_message() -> EmailMessage:
    rendered = RenderedEmail(subject="Hello", text="secret body\n", html="<p>secret body</p>")
    return build_message(rendered, to="victim@example.com", sender="desk@example.com", message_id="d-7")


async def test_a_refused_recipient_is_a_permanent_failure_that_names_no_address() -> None:
    with smtp_server(Refusing()) as port, pytest.raises(MailNotSent) as refused:
        await send(a_message(), settings_for(f"smtp://127.0.0.1:{port}"))
    assert str(refused.value) == f"the SMTP server 127.0.0.1:{port} refused the recipient (550)"
    assert refused.value.code == 550 and refused.value.permanent
    assert refused.value.__cause__ is None and refused.value.__suppress_context__


async def test_starttls_required_from_a_server_without_it_fails_clearly(tmp_path: Path) -> None:
    with MailSink(0, tmp_path) as sink, pytest.raises(MailNotSent) as failed:
        await send(a_message(), settings_for(f"{sink.url}?starttls=true"))
    assert str(failed.value) == (
        f"the SMTP server 127.0.0.1:{sink.port} does not offer STARTTLS, which REFUND_DESK_SMTP_URL "
        "requires (starttls=true)"
    )
    assert list_mail(tmp_path) == [], "nothing went over the plain connection"


async def test_no_server_configured_or_none_listening_is_said_plainly() -> None:
    with pytest.raises(MailNotConfigured, match="REFUND_DESK_SMTP_URL is not set"):
        await send(a_message(), settings_for(None))
    port = free_port()
    with pytest.raises(MailNotSent, match=f"cannot reach the SMTP server 127.0.0.1:{port}") as failed:
        await send(a_message(), settings_for(f"smtp://127.0.0.1:{port}"))
    assert not failed.value.permanent


@pytest.mark.parametrize(
    ("url", "server"),
    [
        ("smtp://mail.example", SmtpServer("mail.example", 25, False, None)),
        ("smtps://mail.example", SmtpServer("mail.example", 465, True, None)),
        ("smtp://mail.example:587?starttls=true", SmtpServer("mail.example", 587, False, True)),
        (
            "smtp://a%40b:p%3Ass@mail.example:2525",
            SmtpServer("mail.example", 2525, False, None, "a@b", "p:ss"),
        ),
    ],
)
def test_smtp_urls(url: str, server: SmtpServer) -> None:
    assert SmtpServer.parse(url) == server


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://user:hunter2@mail.example", "must start with smtp:// or smtps://"),
        ("smtp://user:hunter2@mail.example:x", "a port that is not a number"),
        ("smtp://user:hunter2@mail.example?tls=1", "takes one option"),
        ("smtps://user:hunter2@mail.example?starttls=true", "takes no starttls=true"),
        ("smtp://user:hunter2@mail.example?starttls=maybe", "starttls is true or false"),
    ],
)
def test_an_unusable_smtp_url_is_refused_without_its_password(url: str, message: str) -> None:
    with pytest.raises(MailNotConfigured, match=message) as refused:
        SmtpServer.parse(url)
    assert "hunter2" not in str(refused.value)


# --------------------------------------------------------------------------------------------- links


def link_for(api: Api, complaint: Json, **changes: Any) -> str:
    fields: Json = {
        "public_url": api.base_url,
        "secret": api.secret,
        "complaint_id": complaint["complaint_id"],
        "customer_id": complaint["customer_id"],
        "lifetime": timedelta(days=7),
        "now": datetime.now(UTC),
        "issuer": TOKEN_ISSUER,
        "audience": TOKEN_AUDIENCE,
    }
    return customer_link(**(fields | changes))


def token_of(link: str) -> str:
    return link.split("?token=", 1)[1]


def on_the_api(link: str) -> str:
    """The API's door for a link's token: the same complaint and token, read as JSON."""
    return link.replace("/my/complaints/", "/v1/complaints/", 1)


async def test_the_link_opens_its_complaint_and_its_token_nothing_else(api: Api) -> None:
    me = new_customer()
    mine, other = await file_complaint(api, me), await file_complaint(api, me)
    link = link_for(api, mine)
    assert link.startswith(f"{api.base_url}/my/complaints/{mine['complaint_id']}?token=")
    anyone = api.client()
    page = await anyone.get(link)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), page.text
    assert mine["complaint_id"] in page.text
    opened = await anyone.get(on_the_api(link))
    assert opened.status_code == 200, opened.text
    assert opened.json()["complaint_id"] == mine["complaint_id"] and opened.json()["events"]

    token = token_of(link)
    elsewhere = [
        anyone.get(f"/v1/complaints/{other['complaint_id']}", params={"token": token}),
        api.client({"Authorization": f"Bearer {token}"}).get(f"/v1/complaints/{other['complaint_id']}"),
        api.client({"Authorization": f"Bearer {token}"}).get("/v1/complaints"),
        api.client({"Authorization": f"Bearer {token}"}).get(f"/v1/orders/{mine['order_id']}"),
        api.client({"Authorization": f"Bearer {token}"}).get(f"/v1/customers/{me}/balance"),
        api.client({"Authorization": f"Bearer {token}"}).post(
            f"/v1/complaints/{mine['complaint_id']}/review", json={"decision": "approve"}
        ),
        api.client({"Authorization": f"Bearer {token}"}).post(
            f"/v1/complaints/{other['complaint_id']}/withdraw", json={}
        ),
    ]
    for response in elsewhere:
        error = error_of(await response, 403)
        assert error["code"] == "token_scope", error
        assert f"opens complaint {mine['complaint_id']} only" in error["message"]
        assert token not in error["message"]


async def test_the_links_token_takes_the_customers_actions_on_its_complaint_from_the_header_only(
    api: Api,
) -> None:
    complaint = await file_complaint(api)
    token = token_of(link_for(api, complaint))
    path = f"/v1/complaints/{complaint['complaint_id']}/withdraw"
    in_query = await api.client().post(path, params={"token": token}, json={})
    assert error_of(in_query, 401)["code"] == "unauthorized"
    withdrawn = await api.client({"Authorization": f"Bearer {token}"}).post(path, json={"note": "sorted"})
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["status"] == "withdrawn"


async def test_only_a_living_customer_link_opens_from_the_query(api: Api) -> None:
    complaint = await file_complaint(api)
    path = f"/v1/complaints/{complaint['complaint_id']}"
    expired = on_the_api(link_for(api, complaint, now=datetime.now(UTC) - timedelta(days=8)))
    too_long = on_the_api(link_for(api, complaint, lifetime=timedelta(days=7, seconds=1)))
    week = on_the_api(
        link_for(api, complaint, lifetime=timedelta(days=7))
    )  # longer than the day tokens may live
    ordinary = api.token(Role.CUSTOMER, complaint["customer_id"])
    claims = jwt.decode(token_of(week), api.secret, ["HS256"], audience=TOKEN_AUDIENCE)
    as_support = jwt.encode(claims | {"role": "support", "sub": "alice"}, api.secret, "HS256")
    anyone = api.client()
    assert "expired" in error_of(await anyone.get(expired), 401)["message"]
    assert "lives longer" in error_of(await anyone.get(too_long), 401)["message"]
    assert "a customer's" in error_of(await anyone.get(path, params={"token": as_support}), 401)["message"]
    assert "link's token" in error_of(await anyone.get(path, params={"token": ordinary}), 401)["message"]
    assert (await anyone.get(week)).status_code == 200
    assert claims["cid"] == complaint["complaint_id"] and claims["exp"] - claims["iat"] == 7 * 86_400
    with pytest.raises(ValueError):
        link_token(
            secret=api.secret,
            complaint_id=complaint["complaint_id"],
            customer_id="not an id",
            lifetime=timedelta(days=1),
            now=datetime.now(UTC),
            issuer=TOKEN_ISSUER,
            audience=TOKEN_AUDIENCE,
        )


class Kept(logging.Handler):
    """Every record a logger passes on, formatted as uvicorn's access log formats it."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.access = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s')

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(
            self.access.format(record) if record.name == "uvicorn.access" else self.format(record)
        )


async def test_the_links_token_never_reaches_the_apis_log(api: Api) -> None:
    complaint, other = await file_complaint(api), await file_complaint(api)
    link = link_for(api, complaint)
    kept = Kept()
    loggers = [logging.getLogger(name) for name in ("uvicorn.access", "uvicorn.error")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.INFO)
        logger.addHandler(kept)
    try:
        assert (await api.client().get(link)).status_code == 200
        elsewhere = f"/v1/complaints/{other['complaint_id']}?token={token_of(link)}"
        assert (await api.client().get(elsewhere)).status_code == 403
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(kept)
            logger.setLevel(level)
    assert any(f"/my/complaints/{complaint['complaint_id']}?token=[redacted]" in line for line in kept.lines)
    assert len(kept.lines) >= 2 and not any(token_of(link) in line for line in kept.lines), kept.lines
