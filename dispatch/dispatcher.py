"""The dispatcher: claims due deliveries, sends each on its channel, and records how it went.

It runs in the worker process (`worker.run`), a loop beside the Temporal worker. Each claimed delivery is
sent at most once per claim; a crash between sending and recording leaves the row leased, and once the
lease runs out another claim sends it again: at least once, never lost, and the receiver deduplicates on
the message id (the email's Message-ID, the webhook's `webhook-id`). Claims take at most one row per
destination and complaint (the ledger holds later ones back), so a batch is sent concurrently without
reordering anyone's messages.

Each delivery is handled in a task of its own (`asyncio.gather`), with the complaint or activation it is
about bound for its log lines (`starter.telemetry.log_context`), and one line says how it went: `sent`,
`retry` or `undeliverable`, with its channel and id, never its address or its content.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import structlog

from dispatch import email as mail
from dispatch import smtp
from dispatch.settings import DispatchSettings
from dispatch.webhooks import send_webhook
from ledger.contacts import Contacts
from ledger.deliveries import EMAIL, WEBHOOK, Attempt, Deliveries, Delivery, Notice
from ledger.repository import Ledger
from ledger.vault import VaultKeyring
from ledger.webhook_endpoints import WebhookEndpoints
from starter.telemetry.log_context import subject_fields

log = logging.getLogger("refund_desk.dispatch")

SUPPORT = "support"
CUSTOMER_PREFIX = "customer:"

LinkFor = Callable[[str, str], str]
"""(complaint id, customer id) -> the signed link to the complaint a customer's email carries."""


@dataclass
class Dispatcher:
    ledger: Ledger
    deliveries: Deliveries
    contacts: Contacts
    endpoints: WebhookEndpoints
    settings: DispatchSettings
    link_for: LinkFor | None = None
    owner: str = field(default_factory=lambda: f"dispatcher-{uuid.uuid4().hex[:12]}")
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    """What time it is: claims, backoff and expiry read it (a test moves it past a backoff)."""
    http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(follow_redirects=False))

    @classmethod
    def over(
        cls, ledger: Ledger, keyring: VaultKeyring, settings: DispatchSettings, link_for: LinkFor | None
    ) -> Dispatcher:
        """A dispatcher reading and recording through `ledger`'s database, opening sealed addresses and
        webhook secrets with the vault's `keyring`."""
        return cls(
            ledger=ledger,
            deliveries=Deliveries(ledger.engine),
            contacts=Contacts(ledger.engine, keyring),
            endpoints=WebhookEndpoints(ledger.engine, keyring),
            settings=settings,
            link_for=link_for,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set: a full batch is followed at once by the next, an empty one by a pause
        of `dispatch_interval`. An error of the ledger's is logged and tried again after the pause."""
        pause = self.settings.dispatch_interval.total_seconds()
        try:
            while not stop.is_set():
                try:
                    sent = await self.dispatch_once()
                except Exception:
                    log.exception("dispatch failed; trying again in %.1f s", pause)
                    sent = 0
                if sent < self.settings.dispatch_batch:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=pause)
        finally:
            await self.http.aclose()

    async def dispatch_once(self) -> int:
        """Claim one batch of due deliveries and send them; returns how many were claimed."""
        claimed = await self.deliveries.claim(
            self.owner,
            now=self.clock(),
            lease=self.settings.delivery_lease,
            limit=self.settings.dispatch_batch,
        )
        await asyncio.gather(*(self._deliver(delivery) for delivery in claimed))
        return len(claimed)

    async def _deliver(self, delivery: Delivery) -> None:
        """One delivery; whatever goes wrong with it (a template, the ledger) is its own failed attempt,
        retried like any other, and never holds back the rest of the batch."""
        about = subject_fields(delivery.sequence_key or "")
        with structlog.contextvars.bound_contextvars(
            delivery_id=delivery.id, channel=delivery.channel, **about
        ):
            try:
                await self._send(delivery)
            except Exception as err:
                log.exception("delivery %s failed before it was sent", delivery.id)
                with contextlib.suppress(Exception):
                    await self._retry(delivery, Attempt(0, error=_reason(err)))

    async def _send(self, delivery: Delivery) -> None:
        if delivery.channel == EMAIL:
            await self._email(delivery)
        elif delivery.channel == WEBHOOK:
            await self._webhook(delivery)
        else:
            await self._undeliverable(delivery, f"no channel {delivery.channel}")

    # ---------------------------------------------------------------------------------------- email

    async def _email(self, delivery: Delivery) -> None:
        notice = await self.deliveries.notice(delivery.source_id)
        address = await self._address(notice.recipient)
        if address is None:
            await self._undeliverable(delivery, "the customer gave no email address")
            return
        try:
            rendered = mail.render(await self._context(notice))
        except mail.TemplateError as err:  # sending again would make the same email: none
            await self._undeliverable(delivery, _reason(err))
            return
        message = mail.build_message(
            rendered, to=address, sender=self.settings.mail_from, message_id=delivery.message_id
        )
        started = time.monotonic()
        try:
            await smtp.send(message, self.settings)
        except Exception as err:  # any failure to hand it over is retried, a 5xx too (a server's
            # configuration can be mended within `delivery_retry_for`); the reason, without addresses
            await self._retry(delivery, Attempt(_ms(started), error=_reason(err)))
            return
        await self._sent(delivery, Attempt(_ms(started)))

    async def _address(self, recipient: str) -> str | None:
        if recipient == SUPPORT:
            return self.settings.support_email
        if recipient.startswith(CUSTOMER_PREFIX):
            return await self.contacts.email_of(recipient.removeprefix(CUSTOMER_PREFIX))
        return None

    async def _context(self, notice: Notice) -> mail.EmailContext:
        """What the email's template needs beyond the notice: the complaint or activation it is about, and
        for a customer the signed link to their complaint."""
        complaint = activation = None
        if notice.complaint_id is not None:
            record = await self.ledger.get_complaint(notice.complaint_id, events=False)
            complaint = None if record is None else record.state
        elif notice.activation_id is not None:
            found = await self.ledger.get_activation(notice.activation_id)
            activation = None if found is None else found.state
        customer = notice.recipient.startswith(CUSTOMER_PREFIX)
        link = None
        if customer and complaint is not None and self.link_for is not None:
            link = self.link_for(complaint.complaint_id, complaint.customer_id)
        return mail.EmailContext(
            template=notice.template,
            payload=notice.payload,
            recipient_role="customer" if customer else "support",
            complaint=complaint,
            activation=activation,
            link=link,
            now=self.clock(),
        )

    # -------------------------------------------------------------------------------------- webhook

    async def _webhook(self, delivery: Delivery) -> None:
        now = self.clock()
        endpoint = await self.endpoints.get(delivery.destination)
        if endpoint is None or not endpoint.enabled:
            why = "the endpoint was deleted" if endpoint is None else "the endpoint is disabled"
            await self._undeliverable(delivery, why)
            return
        result = await send_webhook(
            self.http,
            url=endpoint.url,
            secrets=await self.endpoints.signing_secrets(endpoint.endpoint_id, now),
            event=await self.deliveries.webhook_event(delivery.source_id),
            timeout=self.settings.webhook_timeout.total_seconds(),
        )
        attempt = Attempt(result.latency_ms, status_code=result.status_code, error=result.error)
        if result.delivered:
            await self._sent(delivery, attempt)
        else:
            await self._retry(delivery, attempt)

    # ------------------------------------------------------------------------------------ outcomes

    async def _sent(self, delivery: Delivery, attempt: Attempt) -> None:
        await self.deliveries.record_sent(delivery, attempt, self.clock())
        log.info("delivery sent", extra=_fields(delivery, attempt))

    async def _retry(self, delivery: Delivery, attempt: Attempt) -> None:
        await self.deliveries.record_retry(delivery, attempt, self.clock())
        log.warning("delivery failed; retried later", extra=_fields(delivery, attempt))

    async def _undeliverable(self, delivery: Delivery, why: str) -> None:
        """`why` is the desk's own sentence or an error's kind (`_reason`), never a server's text."""
        await self.deliveries.record_undeliverable(delivery, why, self.clock())
        log.warning("delivery undeliverable", extra={"attempts": delivery.attempts + 1, "reason": why})


def _fields(delivery: Delivery, attempt: Attempt) -> dict[str, object]:
    """What a delivery's outcome line carries beside the bound context: which try, how long it took, the
    receiver's status and the error's kind."""
    return {
        "attempts": delivery.attempts + 1,
        "latency_ms": attempt.latency_ms,
        "status_code": attempt.status_code,
        "error": attempt.error,
    }


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _reason(err: Exception) -> str:
    """Why a send failed, for the delivery log: the error's kind and an SMTP code if it has one, never its
    text (an SMTP server's answer names the address)."""
    code = getattr(err, "code", None)
    return type(err).__name__ if code is None else f"{type(err).__name__} {code}"
