"""The webhook sender against real receivers on loopback (uvicorn serving a small Starlette app), each of
which verifies every delivery with the `standardwebhooks` reference library, as a shop's backend would.

A delivery is the event's JSON, signed with every secret the endpoint signs with: a receiver answering 500
and then 200 sees two deliveries with the same `webhook-id`, each verified; a receiver slower than the
timeout, one that redirects and a port nobody listens on are reported as not delivered, with the status
if one came and a short reason that never holds the secrets or the receiver's body. During a rotation's
overlap a receiver that still holds only the old secret verifies. Nothing is mocked.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dispatch.events import ALL_TYPES, COMPLAINT_REFUNDED, WebhookEvent, event_id
from dispatch.webhooks import AttemptResult, send_webhook, webhook_body
from ledger.repository import Ledger
from ledger.vault import VaultKeyring
from ledger.webhook_endpoints import WebhookEndpoints, new_secret
from tests.conftest import served

LEAK = "receiver-body-must-not-be-recorded"
"""What every receiver's answer body says: it must appear in no result."""


@dataclass
class Delivered:
    body: bytes
    headers: dict[str, str]
    verified: bool


@dataclass
class Receiver:
    """Holds `secrets`, verifies each delivery with them, and answers `statuses` in turn (the last one
    again after that); 401 to a delivery that none of its secrets verifies."""

    secrets: list[str]
    statuses: list[int] = field(default_factory=lambda: [200])
    delay: float = 0.0
    location: str | None = None
    got: list[Delivered] = field(default_factory=list)

    def verifies(self, body: bytes, headers: dict[str, str]) -> bool:
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
            return True
        return False

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        headers = dict(request.headers)
        verified = self.verifies(body, headers)
        self.got.append(Delivered(body, headers, verified))
        await asyncio.sleep(self.delay)
        status = self.statuses[min(len(self.got), len(self.statuses)) - 1] if verified else 401
        extra = {"Location": self.location} if self.location else {}
        return Response(json.dumps({"note": LEAK}), status, headers=extra, media_type="application/json")


@asynccontextmanager
async def receiving(receiver: Receiver) -> AsyncIterator[str]:
    """The receiver served on a free loopback port; yields its URL."""
    app = Starlette(routes=[Route("/hook", receiver.hook, methods=["POST"])])
    async with served(app) as base_url:
        yield f"{base_url}/hook"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def an_event() -> WebhookEvent:
    return WebhookEvent(
        id=event_id("ord-1001.major_defect.9f86d081", 7),
        type=COMPLAINT_REFUNDED,
        occurred_at=datetime(2026, 12, 1, 10, 0, 0, 250000, tzinfo=UTC),
        data={"complaint_id": "ord-1001.major_defect.9f86d081", "amount": "49.90", "note": "réparé ✓"},
        sequence_key="ord-1001.major_defect.9f86d081",
    )


def assert_clean(result: AttemptResult, *secrets: str) -> None:
    """A result's reason holds neither the receiver's body nor a secret."""
    text = result.error or ""
    assert LEAK not in text
    for secret in secrets:
        assert secret not in text and secret.removeprefix("whsec_") not in text


async def test_a_delivery_is_the_events_json_signed_the_standard_webhooks_way_500_then_200(
    http: httpx.AsyncClient,
) -> None:
    secret = new_secret()
    receiver = Receiver([secret], statuses=[500, 200])
    event = an_event()
    async with receiving(receiver) as url:
        first = await send_webhook(http, url=url, secrets=[secret], event=event, timeout=5)
        five = timedelta(seconds=5)
        second = await send_webhook(http, url=url, secrets=[secret], event=event, timeout=five)

    assert (first.status_code, first.delivered, first.error) == (500, False, "HTTP 500")
    assert (second.status_code, second.delivered, second.error) == (200, True, None)
    assert first.latency_ms >= 0 and second.latency_ms >= 0
    assert_clean(first, secret)
    assert [d.verified for d in receiver.got] == [True, True]
    for delivered in receiver.got:
        assert delivered.headers["webhook-id"] == event.id
        assert delivered.headers["content-type"] == "application/json"
        sent_at = int(delivered.headers["webhook-timestamp"])
        assert sent_at == pytest.approx(datetime.now(UTC).timestamp(), abs=30)
        assert delivered.headers["webhook-signature"].startswith("v1,")
        assert json.loads(delivered.body) == {
            "id": event.id,
            "type": COMPLAINT_REFUNDED,
            "occurred_at": "2026-12-01T10:00:00.250000Z",
            "data": event.data,
        }
        assert delivered.body == webhook_body(event).encode()
        assert b": " not in delivered.body and "réparé ✓".encode() in delivered.body  # compact UTF-8
        assert secret.encode() not in delivered.body


async def test_a_receiver_slower_than_the_timeout_is_not_delivered(http: httpx.AsyncClient) -> None:
    secret = new_secret()
    receiver = Receiver([secret], delay=1.5)
    async with receiving(receiver) as url:
        result = await send_webhook(http, url=url, secrets=[secret], event=an_event(), timeout=0.3)
    assert (result.status_code, result.delivered) == (None, False)
    assert result.error == "no answer within 0.3 s"
    assert 250 <= result.latency_ms < 1400, result.latency_ms
    assert [d.verified for d in receiver.got] == [True]


async def test_a_redirect_is_not_followed_and_nobody_listening_is_not_delivered(
    http: httpx.AsyncClient,
) -> None:
    secret = new_secret()
    elsewhere = Receiver([secret])
    async with receiving(elsewhere) as target:
        redirecting = Receiver([secret], statuses=[307], location=target)
        async with receiving(redirecting) as url:
            moved = await send_webhook(http, url=url, secrets=[secret], event=an_event(), timeout=5)
    assert (moved.status_code, moved.delivered) == (307, False)
    assert moved.error is not None and "redirect" in moved.error
    assert len(redirecting.got) == 1 and elsewhere.got == [], "the redirect was not followed"

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    refused = await send_webhook(
        http, url=f"http://127.0.0.1:{port}/hook", secrets=[secret], event=an_event(), timeout=5
    )
    assert (refused.status_code, refused.delivered) == (None, False)
    assert refused.error is not None and refused.error.startswith("could not connect")
    assert_clean(refused, secret)


async def test_during_a_rotation_overlap_a_receiver_with_only_the_old_secret_still_verifies(
    http: httpx.AsyncClient, ledger: Ledger, keyring: VaultKeyring
) -> None:
    endpoints = WebhookEndpoints(ledger.engine, keyring)
    old_only = Receiver([], statuses=[200])
    async with receiving(old_only) as url:
        endpoint, old = await endpoints.create(url, [ALL_TYPES])
        old_only.secrets.append(old)
        at = datetime.now(UTC)
        new = await endpoints.rotate_secret(endpoint.endpoint_id, timedelta(hours=1), now=at)
        new_only = Receiver([new])
        async with receiving(new_only) as new_url:
            overlap = await endpoints.signing_secrets(endpoint.endpoint_id, at + timedelta(minutes=59))
            assert overlap == [new, old]
            during = await send_webhook(http, url=url, secrets=overlap, event=an_event(), timeout=5)
            switched = await send_webhook(http, url=new_url, secrets=overlap, event=an_event(), timeout=5)
            after = await endpoints.signing_secrets(endpoint.endpoint_id, at + timedelta(hours=1))
            assert after == [new]
            late = await send_webhook(http, url=url, secrets=after, event=an_event(), timeout=5)

    assert during.delivered and switched.delivered, (during, switched)
    signatures = old_only.got[0].headers["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    assert (late.status_code, late.delivered) == (401, False), "the old secret no longer signs"
    assert [d.verified for d in old_only.got] == [True, False]
    assert_clean(late, old, new)


async def test_no_secret_means_no_delivery_and_nothing_sent(http: httpx.AsyncClient) -> None:
    receiver = Receiver([new_secret()])
    async with receiving(receiver) as url:
        result = await send_webhook(http, url=url, secrets=[], event=an_event(), timeout=5)
    assert not result.delivered and result.error == "no signing secret"
    assert receiver.got == []
