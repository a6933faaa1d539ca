"""The chaos run's people: every notice its scenarios send must reach them, whatever the kills.

A real SMTP server (the mail sink, on loopback) stands for the customers' and support's inboxes, and a
real webhook receiver (uvicorn on loopback) for the shop's backend: it verifies every delivery with the
`standardwebhooks` library and answers the first try of every seventh event with 503, so the retries are
exercised too. Nine customers in ten gave an email address with their order; the tenth's notices are
recorded as undeliverable. The worker, and with it the dispatcher, is SIGKILLed throughout: a delivery it
was sending is sent again after its lease, and the receivers deduplicate on the message id. At the end
`settle` waits for the outbox to empty and checks that every delivery the ledger calls sent arrived.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from sqlalchemy import select
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from dispatch.events import ALL_TYPES
from dispatch.mail_sink import MailSink, mail_files
from ledger.deliveries import EMAIL, FAILED, PENDING, SENT, UNDELIVERABLE, WEBHOOK, Deliveries
from ledger.repository import Ledger
from ledger.schema import DeliveryRow
from ledger.vault import VaultKeyring
from ledger.webhook_endpoints import WebhookEndpoints

WITHOUT_ADDRESS_EVERY = 10
REFUSE_FIRST_TRY_EVERY = 7


def chaos_email(customer_id: str) -> str | None:
    """The address a chaos customer gave with their orders: none for one customer in ten."""
    digest = int(hashlib.sha256(customer_id.encode()).hexdigest(), 16)
    return None if digest % WITHOUT_ADDRESS_EVERY == 0 else f"{customer_id}@chaos.test"


@dataclass
class Receiver:
    """The shop's backend: verifies each webhook, remembers each id, refuses some first tries."""

    secret: str = ""
    received: dict[str, int] = field(default_factory=dict)
    unverified: int = 0

    async def hook(self, request: Request) -> Response:
        try:
            body = await request.body()
        except ClientDisconnect:  # the worker was killed mid-send: it sends again after its lease
            return Response(status_code=499)
        try:
            Webhook(self.secret).verify(body, dict(request.headers))
        except WebhookVerificationError:
            self.unverified += 1
            return Response(status_code=401)
        message_id = request.headers["webhook-id"]
        seen = self.received.get(message_id, 0)
        self.received[message_id] = seen + 1
        refuse = seen == 0 and refused_first(message_id)
        return Response(status_code=503 if refuse else 204)

    def again_after_a_kill(self) -> int:
        """Deliveries received more often than the receiver asked for (its refused first tries aside):
        those a killed worker had sent but not recorded."""
        return sum(n - (2 if refused_first(m) else 1) for m, n in self.received.items() if n > 1)


def refused_first(message_id: str) -> bool:
    """Whether the receiver answers this event's first try with 503 (one in `REFUSE_FIRST_TRY_EVERY`)."""
    return int(hashlib.sha256(message_id.encode()).hexdigest(), 16) % REFUSE_FIRST_TRY_EVERY == 0


@dataclass
class People:
    """The inboxes and the receiver, and what `settle` found."""

    sink: MailSink
    receiver: Receiver
    url: str
    figures: dict[str, int] = field(default_factory=dict)

    def environment(self) -> dict[str, str]:
        """What the worker's dispatcher needs to reach them, at the run's pace."""
        return {
            "REFUND_DESK_SMTP_URL": self.sink.url,
            "REFUND_DESK_SUPPORT_EMAIL": "support@chaos.test",
            "REFUND_DESK_DELIVERY_LEASE": "5",
            "REFUND_DESK_DISPATCH_INTERVAL": "0.2",
            "REFUND_DESK_JWT_SECRET": secrets.token_urlsafe(32),
        }

    async def subscribe(self, ledger: Ledger, keyring: VaultKeyring) -> None:
        _, secret = await WebhookEndpoints(ledger.engine, keyring).create(self.url, [ALL_TYPES], "chaos")
        self.receiver.secret = secret

    async def settle(self, ledger: Ledger, within: float) -> list[str]:
        """Wait (up to `within` seconds) until no delivery is pending, then check each arrived."""
        deliveries = Deliveries(ledger.engine)
        for _ in range(int(within * 2)):
            if PENDING not in await deliveries.counts():
                break
            await asyncio.sleep(0.5)
        counts = await deliveries.counts()
        found = [f"{counts[PENDING]} notices never delivered (lost)"] if counts.get(PENDING) else []
        if counts.get(FAILED):
            found.append(f"{counts[FAILED]} notices marked failed")
        sent = await _sent_ids(ledger)
        mailed = _mailed_ids(self.sink.folder)
        missing_mail = sent[EMAIL] - mailed
        missing_hooks = sent[WEBHOOK] - set(self.receiver.received)
        if missing_mail:
            found.append(f"{len(missing_mail)} emails the ledger calls sent never arrived")
        if missing_hooks:
            found.append(f"{len(missing_hooks)} webhooks the ledger calls sent never arrived")
        if self.receiver.unverified:
            found.append(f"{self.receiver.unverified} webhooks failed their signature check")
        self.figures = {
            "emails_sent": len(sent[EMAIL]),
            "webhooks_sent": len(sent[WEBHOOK]),
            "undeliverable": counts.get(UNDELIVERABLE, 0),
            "webhooks_refused_first": sum(refused_first(m) for m in self.receiver.received),
            "webhooks_again_after_a_kill": self.receiver.again_after_a_kill(),
        }
        return found


async def _sent_ids(ledger: Ledger) -> dict[str, set[str]]:
    async with ledger.engine.connect() as conn:
        rows = await conn.execute(
            select(DeliveryRow.channel, DeliveryRow.message_id).where(DeliveryRow.status == SENT)
        )
    sent: dict[str, set[str]] = {EMAIL: set(), WEBHOOK: set()}
    for channel, message_id in rows.all():
        sent[channel].add(message_id)
    return sent


def _mailed_ids(folder: Path) -> set[str]:
    """The ids of the emails in the sink (their Message-ID, `<id@refund-desk>`)."""
    ids = set()
    for path in mail_files(folder):
        with path.open("rb") as file:
            message = email.message_from_binary_file(file, policy=email.policy.default)
        ids.add(str(message["Message-ID"]).strip("<>").split("@", 1)[0])
    return ids


@asynccontextmanager
async def people(workdir: Path) -> AsyncIterator[People]:
    """The mail sink and the webhook receiver, on loopback, for the length of the run."""
    receiver = Receiver()
    app = Starlette(routes=[Route("/hook", receiver.hook, methods=["POST"])])
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        with MailSink(port=0, folder=workdir / "mail") as sink:
            yield People(sink=sink, receiver=receiver, url=f"http://127.0.0.1:{port}/hook")
    finally:
        server.should_exit = True
        with suppress(asyncio.CancelledError):
            await serving
