"""The dispatcher killed mid-batch, as it runs in production: inside `python worker.py`, on the real dev
server, with a real SMTP server and a real webhook receiver on loopback. The worker is SIGKILLed while a
slow receiver is taking a batch; a new worker finishes the outbox once the dead one's leases run out.
Every message arrives, and a receiver that deduplicates on the message id holds each once."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from dispatch.events import ALL_TYPES
from dispatch.mail_sink import MailSink, list_mail
from ledger.deliveries import EMAIL, PENDING, SENT, WEBHOOK, Deliveries
from ledger.schema import DeliveryRow
from ledger.vault import VaultKeyring
from ledger.webhook_endpoints import WebhookEndpoints
from starter.desk import ComplaintDesk
from tests.conftest import in_ledger, migrated_ledger
from tests.factories import DESCRIPTION, POLICY, customer, software_order
from tests.test_end_to_end import worker_process
from tests.test_webhook_sender import Receiver, receiving

COMPLAINTS = 8
BATCH = 4


async def until(check: Callable[[], Awaitable[bool]], seconds: float) -> None:
    """Wait for `check()` to hold, or fail after `seconds`."""
    for _ in range(int(seconds * 10)):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {seconds} s")


async def test_a_dispatcher_killed_mid_batch_loses_no_notice(
    dev_server: WorkflowEnvironment, tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/ledger.db"
    ledger = await migrated_ledger(url)
    keyring = VaultKeyring.generate()
    queue = f"crash-{uuid.uuid4().hex[:8]}"
    desk = ComplaintDesk(client=dev_server.client, ledger=ledger, keyring=keyring, task_queue=queue)
    deliveries = Deliveries(ledger.engine)
    receiver = Receiver(secrets=[], delay=0.4)
    log = tmp_path / "worker.log"
    try:
        async with receiving(receiver) as hook:
            _, secret = await WebhookEndpoints(ledger.engine, keyring).create(hook, [ALL_TYPES], "shop")
            receiver.secrets.append(secret)
            with MailSink(port=0, folder=tmp_path / "mail") as sink:
                extra = {
                    "REFUND_DESK_SMTP_URL": sink.url,
                    "REFUND_DESK_DELIVERY_LEASE": "2",
                    "REFUND_DESK_DISPATCH_INTERVAL": "0.1",
                    "REFUND_DESK_DISPATCH_BATCH": str(BATCH),
                }
                filed: list[str] = []
                with worker_process(dev_server, url, keyring, queue, log, extra) as first:
                    for n in range(COMPLAINTS):
                        order = software_order()
                        await desk.record_order(order, email=f"customer-{n}@example.com")
                        complaint = await desk.file_defect_complaint(
                            order, DESCRIPTION, customer(order), POLICY
                        )
                        filed.append(complaint.complaint_id)

                    async def some_arrived() -> bool:
                        return len(receiver.got) >= 2

                    await until(some_arrived, 30)
                    first.kill()
                    first.wait()
                left = (await deliveries.counts()).get(PENDING, 0)
                assert left > 0, "the kill came after the outbox was empty: nothing was in flight"

                async def emptied() -> bool:
                    return PENDING not in await deliveries.counts()

                with worker_process(dev_server, url, keyring, queue, log, extra):
                    for complaint_id in filed:  # a filing the kill cut short is recorded by the new worker
                        await in_ledger(ledger, complaint_id, seconds=90)
                    await until(emptied, 60)
                mailed = [str(m.message["Message-ID"]) for m in list_mail(tmp_path / "mail")]

        async with ledger.engine.connect() as conn:
            rows = (
                await conn.execute(select(DeliveryRow.channel, DeliveryRow.message_id, DeliveryRow.status))
            ).all()
        assert {status for _, _, status in rows} == {SENT}
        webhooks = {m for channel, m, _ in rows if channel == WEBHOOK}
        emails = {m for channel, m, _ in rows if channel == EMAIL}
        assert len(webhooks) == len(emails) == COMPLAINTS
        got = Counter(d.headers["webhook-id"] for d in receiver.got)
        assert set(got) == webhooks, "every webhook arrived"
        assert all(d.verified for d in receiver.got)
        assert sum(got.values()) - len(got) <= BATCH, "only what was in flight at the kill came twice"
        assert {m.strip("<>").split("@")[0] for m in mailed} == emails, "every email arrived"
        assert all(json.loads(d.body)["type"] == "complaint.filed" for d in receiver.got)
    finally:
        await ledger.close()
