"""One attempt at a webhook: the event as JSON, signed the Standard Webhooks way, POSTed to the endpoint.

The body is `{"id", "type", "occurred_at", "data"}`, compact UTF-8 JSON. The headers are `webhook-id` (the
event's id: the same on every attempt, so a receiver deduplicates on it), `webhook-timestamp` (Unix
seconds) and `webhook-signature`, one `v1,<base64 HMAC-SHA256>` per signing secret, space-separated: during
a rotation's overlap both the new and the previous secret sign, so a receiver with either verifies. The
signatures are made by the `standardwebhooks` package, the reference a receiver verifies with.

Only a 2xx answer delivers. A redirect is not followed (the endpoint's URL is the one the shop registered),
and the receiver's body is never kept, logged or stored: the attempt is its status, its latency and, when
it failed, a short reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from standardwebhooks import Webhook

from dispatch.events import WebhookEvent

DRAINED_BYTES = 64 * 1024
"""The most of a receiver's answer read (and dropped): an acknowledgement is a few bytes."""

DRAIN_SECONDS = 1.0
"""The longest the body of an answer is waited for, once its status has come."""

ERROR_CHARS = 200
"""The longest reason an attempt records (the ledger's column holds 500)."""


@dataclass(frozen=True)
class AttemptResult:
    """How one attempt went: the receiver's status (None if none came), how long it took, why it failed."""

    status_code: int | None
    latency_ms: int
    error: str | None
    delivered: bool


def webhook_body(event: WebhookEvent) -> str:
    """The JSON text a delivery of `event` carries, the same on every attempt."""
    occurred_at = event.occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    payload = {"id": event.id, "type": event.type, "occurred_at": occurred_at, "data": event.data}
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=str)
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate in the data, which UTF-8 cannot carry but JSON can escape
        text = json.dumps(payload, separators=(",", ":"), default=str)
    return text


def signed_headers(message_id: str, body: str, secrets: list[str], at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers for `body`, signed at `at` with each secret in turn."""
    if not secrets:
        raise ValueError("a webhook is signed with at least one secret")
    timestamp = datetime.fromtimestamp(int(at.timestamp()), UTC)
    signatures = [Webhook(secret).sign(message_id, timestamp, body) for secret in secrets]
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": " ".join(signatures),
        "content-type": "application/json",
    }


async def send_webhook(
    client: httpx.AsyncClient,
    *,
    url: str,
    secrets: list[str],
    event: WebhookEvent,
    timeout: float | timedelta,  # noqa: ASYNC109 (the dispatcher's setting, applied with asyncio.timeout)
    now: datetime | None = None,
) -> AttemptResult:
    """POST `event` to `url`, signed with `secrets` (current first); the receiver's answer must begin
    within `timeout`. Never raises for what the receiver or the network does: that is the result."""
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
    if not secrets:
        return AttemptResult(status_code=None, latency_ms=0, error="no signing secret", delivered=False)
    body = webhook_body(event)
    headers = signed_headers(event.id, body, secrets, now or datetime.now(UTC))
    started = time.monotonic()
    try:
        request = client.build_request(
            "POST", url, content=body.encode(), headers=headers, timeout=httpx.Timeout(seconds)
        )
        async with asyncio.timeout(seconds):
            response = await client.send(request, stream=True, follow_redirects=False)
    except (TimeoutError, httpx.TimeoutException):
        return _failed(started, None, f"no answer within {seconds:g} s")
    except httpx.InvalidURL:
        return _failed(started, None, "the endpoint's URL is not valid")
    except httpx.HTTPError as err:
        return _failed(started, None, _reason(err))
    latency = _ms(started)
    await _drain(response, min(seconds, DRAIN_SECONDS))
    status = response.status_code
    if 200 <= status < 300:
        return AttemptResult(status_code=status, latency_ms=latency, error=None, delivered=True)
    why = f"HTTP {status}: a redirect, not followed" if 300 <= status < 400 else f"HTTP {status}"
    return AttemptResult(status_code=status, latency_ms=latency, error=why, delivered=False)


async def _drain(response: httpx.Response, seconds: float) -> None:
    """Read and drop the receiver's body, up to `DRAINED_BYTES` and `seconds`, so that the connection can
    carry the next delivery; a longer or slower one is cut off with the connection. Its status counts
    whatever the body does."""
    try:
        with contextlib.suppress(httpx.HTTPError, TimeoutError):
            async with asyncio.timeout(seconds):
                drained = 0
                async for chunk in response.aiter_raw():
                    drained += len(chunk)
                    if drained > DRAINED_BYTES:
                        break
    finally:
        await response.aclose()


def _reason(err: httpx.HTTPError) -> str:
    """A short reason for a failed exchange: the kind of failure and the transport's own words (which
    name at most the host and port, never a header or the body)."""
    kind = {
        httpx.ConnectError: "could not connect",
        httpx.RemoteProtocolError: "the receiver broke the HTTP exchange",
        httpx.UnsupportedProtocol: "the URL's scheme is not http or https",
    }
    label = next((text for cls, text in kind.items() if isinstance(err, cls)), type(err).__name__)
    detail = " ".join(str(err).split())
    return (f"{label}: {detail}" if detail else label)[:ERROR_CHARS]


def _failed(started: float, status: int | None, error: str) -> AttemptResult:
    return AttemptResult(status_code=status, latency_ms=_ms(started), error=error, delivered=False)


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
