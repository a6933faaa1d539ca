"""The dispatcher on real parts: a complaint's notices reach a real SMTP server (the mail sink, aiosmtpd on
loopback) and a real webhook receiver (uvicorn on loopback, verifying every signature with
`standardwebhooks`), in the order their events happened; a receiver that fails is tried again after the
backoff; a customer without an address is recorded as undeliverable, not retried."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from dispatch.dispatcher import Dispatcher
from dispatch.events import ALL_TYPES
from dispatch.mail_sink import MailSink, list_mail
from dispatch.settings import DispatchSettings
from ledger.deliveries import FAILED, SENT, UNDELIVERABLE, Deliveries, backoff
from ledger.records import Notification
from ledger.repository import Ledger
from ledger.schema import DeliveryRow
from ledger.vault import VaultKeyring
from ledger.webhook_endpoints import WebhookEndpoints
from policy.complaint import Review
from policy.models import ReviewDecision
from starter.desk import ComplaintDesk
from tests.conftest import in_ledger, serving
from tests.factories import DESCRIPTION, POLICY, SUPPORT, customer, software_order
from tests.test_webhook_sender import Receiver, receiving

ADDRESS = "ada@example.com"
SUPPORT_ADDRESS = "support@shop.test"


@dataclass
class Clock:
    """The dispatcher's clock: the real one, moved on by a test to pass a backoff."""

    ahead: timedelta = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.ahead


@dataclass
class Stage:
    desk: ComplaintDesk
    dispatcher: Dispatcher
    receiver: Receiver
    mail: Path
    clock: Clock

    async def drain(self) -> int:
        """Dispatch until nothing is due; returns how many deliveries were claimed in all."""
        claimed = 0
        while n := await self.dispatcher.dispatch_once():
            claimed += n
        return claimed

    async def statuses(self) -> dict[str, int]:
        return await Deliveries(self.desk.ledger.engine).counts()


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[MailSink]:
    with MailSink(port=0, folder=tmp_path / "mail") as running:
        yield running


@pytest.fixture
async def stage(
    desk: ComplaintDesk, ledger: Ledger, keyring: VaultKeyring, sink: MailSink, tmp_path: Path
) -> AsyncIterator[Stage]:
    endpoints = WebhookEndpoints(ledger.engine, keyring)
    receiver = Receiver(secrets=[])
    async with receiving(receiver) as url:
        _, secret = await endpoints.create(url, [ALL_TYPES], "the shop's backend")
        receiver.secrets.append(secret)
        settings = DispatchSettings(
            smtp_url=sink.url, support_email=SUPPORT_ADDRESS, public_url="http://127.0.0.1:9"
        )
        clock = Clock()
        dispatcher = Dispatcher.over(
            ledger, keyring, settings, lambda cid, cust: f"http://127.0.0.1:9/my/complaints/{cid}?token=t"
        )
        dispatcher.clock = clock
        yield Stage(desk, dispatcher, receiver, tmp_path / "mail", clock)
        await dispatcher.http.aclose()


def webhook_types(receiver: Receiver) -> list[str]:
    return [json.loads(d.body)["type"] for d in receiver.got]


async def test_a_complaints_notices_reach_support_the_customer_and_the_shop_in_order(stage: Stage) -> None:
    order = software_order()
    await stage.desk.record_order(order, email=ADDRESS)
    filed = await stage.desk.file_defect_complaint(order, DESCRIPTION, customer(order), POLICY)
    cid = filed.complaint_id
    await in_ledger(stage.desk.ledger, cid)
    await stage.desk.review(cid, Review(actor=SUPPORT, decision=ReviewDecision.APPROVE))
    await stage.desk.request_access(cid, SUPPORT, scope="ssh", reason="to reproduce the crash")

    assert await stage.drain() >= 6
    mail = {m.recipient: m for m in list_mail(stage.mail)}
    assert set(mail) == {SUPPORT_ADDRESS, ADDRESS}
    assert cid in mail[SUPPORT_ADDRESS].text
    asked = mail[ADDRESS]
    assert "access" in asked.subject.lower()
    assert f"/my/complaints/{cid}?token=" in asked.text, "the customer's email links to their complaint"
    assert asked.message["Message-ID"].startswith("<ntf_")
    assert DESCRIPTION not in asked.text + mail[SUPPORT_ADDRESS].text

    assert all(d.verified for d in stage.receiver.got), "every webhook verifies with standardwebhooks"
    assert webhook_types(stage.receiver) == [
        "complaint.filed",
        "complaint.status_changed",
        "complaint.status_changed",
        "complaint.access_requested",
    ]
    bodies = [json.loads(d.body) for d in stage.receiver.got]
    assert {b["data"]["complaint_id"] for b in bodies} == {cid}
    assert [b["data"]["previous_status"] for b in bodies[1:3]] == ["under_review", "rectifying"]
    assert ADDRESS not in json.dumps(bodies) and DESCRIPTION not in json.dumps(bodies)
    assert await stage.statuses() == {SENT: 6}


async def test_a_failing_receiver_gets_the_same_message_again_after_the_backoff(stage: Stage) -> None:
    """The receiver answers 503 once: the event is sent again with the same `webhook-id` once the backoff
    has passed (not before), and the complaint's next event waits behind it."""
    stage.receiver.statuses = [503, 200]
    order = software_order()
    await stage.desk.record_order(order, email=ADDRESS)
    filed = await stage.desk.file_defect_complaint(order, DESCRIPTION, customer(order), POLICY)
    await in_ledger(stage.desk.ledger, filed.complaint_id)
    await stage.desk.review(filed.complaint_id, Review(actor=SUPPORT, decision=ReviewDecision.APPROVE))

    await stage.drain()
    assert webhook_types(stage.receiver) == ["complaint.filed"], "the next event waits behind the retry"
    stage.clock.ahead += backoff(1) - timedelta(seconds=1)
    await stage.drain()
    assert len(stage.receiver.got) == 1
    stage.clock.ahead += timedelta(seconds=1)
    await stage.drain()
    ids = [d.headers["webhook-id"] for d in stage.receiver.got]
    assert webhook_types(stage.receiver) == ["complaint.filed", "complaint.filed", "complaint.status_changed"]
    assert ids[0] == ids[1] != ids[2], "a retry carries the id the receiver deduplicates on"


async def test_a_customer_without_an_address_is_recorded_undeliverable_and_support_still_hears(
    stage: Stage,
) -> None:
    order = software_order()
    await stage.desk.record_order(order)
    filed = await stage.desk.file_defect_complaint(order, DESCRIPTION, customer(order), POLICY)
    await in_ledger(stage.desk.ledger, filed.complaint_id)
    await stage.desk.review(filed.complaint_id, Review(actor=SUPPORT, decision=ReviewDecision.APPROVE))
    await stage.desk.request_access(filed.complaint_id, SUPPORT, scope="ssh", reason="to reproduce")
    await stage.drain()
    counts = await stage.statuses()
    assert counts[UNDELIVERABLE] == 1 and FAILED not in counts
    assert [m.recipient for m in list_mail(stage.mail)] == [SUPPORT_ADDRESS]


async def test_a_deleted_endpoint_gets_nothing_more(
    stage: Stage, ledger: Ledger, keyring: VaultKeyring
) -> None:
    endpoints = WebhookEndpoints(ledger.engine, keyring)
    [endpoint] = await endpoints.list()
    order = software_order()
    await stage.desk.record_order(order, email=ADDRESS)
    filed = await stage.desk.file_defect_complaint(order, DESCRIPTION, customer(order), POLICY)
    await in_ledger(ledger, filed.complaint_id)
    await endpoints.delete(endpoint.endpoint_id)
    await stage.drain()
    assert stage.receiver.got == []
    assert (await stage.statuses())[UNDELIVERABLE] == 1


async def test_a_notice_that_cannot_be_made_is_undeliverable_alone(stage: Stage, ledger: Ledger) -> None:
    """A notice whose email cannot be made (a template this release lacks) is recorded undeliverable with
    its reason, since sending again would make the same email; the rest of the batch is delivered."""
    await ledger.enqueue_notification(
        Notification(dedupe_key="odd:1:no_such_notice", recipient="support", template="no_such_notice")
    )
    order = software_order()
    await stage.desk.record_order(order, email=ADDRESS)
    filed = await stage.desk.file_defect_complaint(order, DESCRIPTION, customer(order), POLICY)
    await in_ledger(ledger, filed.complaint_id)
    await stage.drain()
    async with ledger.engine.connect() as conn:
        rows = (await conn.execute(select(DeliveryRow.status, DeliveryRow.last_error))).all()
    assert sorted(status for status, _ in rows) == [SENT, SENT, UNDELIVERABLE]
    assert [error for status, error in rows if status == UNDELIVERABLE] == ["UnknownTemplate"]
    assert [m.recipient for m in list_mail(stage.mail)] == [SUPPORT_ADDRESS]


def test_every_dispatch_setting_is_documented() -> None:
    documented = (Path(__file__).parent.parent / "docs" / "settings.md").read_text()
    missing = [f"REFUND_DESK_{name.upper()}" for name in DispatchSettings.model_fields]
    assert [name for name in missing if f"`{name}`" not in documented] == []


async def test_support_sees_each_notice_and_a_failed_one_shows_up_as_failed(
    stage: Stage, ledger: Ledger
) -> None:
    """`GET /v1/notices`: support lists the outbox's deliveries (who, what, state), never an address; a
    delivery given up on shows up with `status=failed` and its last error; other roles are refused."""
    stage.receiver.statuses = [500]
    order = software_order()
    await stage.desk.record_order(order, email=ADDRESS)
    filed = await stage.desk.file_defect_complaint(order, DESCRIPTION, customer(order), POLICY)
    await in_ledger(ledger, filed.complaint_id)
    await stage.drain()
    stage.clock.ahead += timedelta(days=4)  # past `delivery_retry_for`: the next failure is the last
    await stage.drain()
    async with serving(stage.desk) as api:
        listed = await api.support().get("/v1/notices", params={"complaint_id": filed.complaint_id})
        failed = await api.support().get("/v1/notices", params={"status": "failed"})
        refused = await api.customer(order.customer_id).get("/v1/notices")
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert {(i["channel"], i["to"], i["what"], i["status"]) for i in items} == {
        ("email", "support", "complaint_filed", SENT),
        (
            "webhook",
            items[0]["to"] if items[0]["channel"] == "webhook" else items[1]["to"],
            "complaint.filed",
            FAILED,
        ),
    }
    [gave_up] = failed.json()["items"]
    assert gave_up["last_status"] == 500 and gave_up["attempts"] == 2
    assert ADDRESS not in listed.text
    assert refused.status_code == 403
