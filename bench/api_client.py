"""The scaled chaos run's HTTP client: the API processes behind it, a token per caller, an idempotency key
per request, and a move to another process when one is down.

Every POST carries an `Idempotency-Key` (docs/api.md "Idempotency"), one per request, the same for each of
its retries. A request whose answer was lost (its API process was SIGKILLed after reading it, so the action
may have been taken) is sent again with the same key to another process: the ledger keeps the keys, so
any process answers it with the first answer, or runs it if the first never did. A key whose first attempt
died with its process stays held for the store's lease (two minutes); the client waits `key_patience` for
it and then gives the request up as unanswered (`KeyHeld`), so that the driver reads the state and decides,
as it does after any unanswered request.

A refused connection means nothing was sent: the next process is tried at once. Only after `reach`
seconds without any process answering does a request fail (`ApiUnreachable`).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx

from policy.models import Actor
from policy.settings import PolicySnapshot
from starter.api.auth import mint_token

TOKEN_TTL = timedelta(hours=12)
"""Long enough for a full run, within the API's default `token_max_lifetime` (a day)."""
REMINT_AFTER = 6 * 3600.0
"""Seconds after which a cached token is minted again, well before it expires."""
TIMEOUT = httpx.Timeout(45.0, connect=3.0)
"""Above the API's 30 s patience for a workflow, so the API answers 503 before the client gives up."""


class ApiUnreachable(ConnectionError):
    """No API process answered within the client's reach: all of them down at once, for long."""


class KeyHeld(ConnectionError):
    """The request's key stayed in use: its first attempt died with its process and holds the key until
    the lease runs out. The action may have been taken; read the state before sending it again."""


@dataclass
class ApiFigures:
    """What the client saw of the API processes, for the run's report."""

    requests: int = 0
    """Requests made (a request retried with its key counts once)."""
    sent: int = 0
    """Attempts that reached a process, retries included."""
    refused: int = 0
    """Connections refused (a process down): moved to another process, nothing sent."""
    lost: int = 0
    """Answers lost after the request was sent (the process killed mid-request): sent again, same key."""
    replayed: int = 0
    """Answers with `Idempotent-Replayed: true`: a retry answered with its first attempt's answer."""
    keys_in_use: int = 0
    """409 `idempotency_key_in_use` answers waited out."""
    keys_given_up: int = 0
    """Keys still held after `key_patience`: the request handed back as unanswered."""
    rate_limited: int = 0
    by_status: Counter[int] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        plain = {k: v for k, v in vars(self).items() if k != "by_status"}
        return {**plain, "by_status": {str(k): v for k, v in sorted(self.by_status.items())}}


@dataclass
class ApiPool:
    """The API processes (`urls`), the ones each policy files under (`filing`), and the run's HTTP client."""

    http: httpx.AsyncClient
    urls: list[str]
    filing: dict[PolicySnapshot, list[str]]
    secret: str
    rng: random.Random
    key_patience: float = 10.0
    reach: float = 60.0
    figures: ApiFigures = field(default_factory=ApiFigures)
    _tokens: dict[Actor, tuple[str, float]] = field(default_factory=dict)

    def token(self, actor: Actor) -> str:
        """A bearer token for `actor`, as the shop's identity provider would mint it (HS256 on the secret
        the API processes share)."""
        cached = self._tokens.get(actor)
        if cached is not None and time.monotonic() - cached[1] < REMINT_AFTER:
            return cached[0]
        token = mint_token(self.secret, actor.role, actor.id, ttl=TOKEN_TTL)
        self._tokens[actor] = (token, time.monotonic())
        return token

    def filing_urls(self, policy: PolicySnapshot) -> list[str]:
        """The processes that file under `policy` (each API process files under its environment's)."""
        found = self.filing.get(policy)
        if found is None:
            raise ValueError(f"no API process files under {policy!r}")
        return found

    async def call(
        self,
        method: str,
        path: str,
        actor: Actor,
        body: dict[str, Any] | None = None,
        urls: list[str] | None = None,
        prefer: str | None = None,
    ) -> httpx.Response:
        """The first answer a process gives to the request (any status but `idempotency_key_in_use` and
        `rate_limited`, which are waited out), sent to `urls` (default: every process) starting at a random
        one and moving on when one is down; `prefer` is the request's `Prefer` header (RFC 7240)."""
        self.figures.requests += 1
        headers = {"Authorization": f"Bearer {self.token(actor)}"}
        if prefer is not None:
            headers["Prefer"] = prefer
        content = None
        if body is not None:
            content = json.dumps(body).encode()  # the same bytes on every retry, as the key requires
            headers["Content-Type"] = "application/json"
        if method == "POST":
            headers["Idempotency-Key"] = str(uuid.uuid4())
        return await self._send(method, path, headers, content, urls or self.urls)

    async def _send(
        self, method: str, path: str, headers: dict[str, str], content: bytes | None, urls: list[str]
    ) -> httpx.Response:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.reach
        key_given_up: float | None = None
        turn = self.rng.randrange(len(urls))
        refused_in_a_row = 0
        while True:
            url = urls[turn % len(urls)]
            turn += 1
            try:
                response = await self.http.request(method, url + path, headers=headers, content=content)
            except httpx.ConnectError:
                self.figures.refused += 1
                refused_in_a_row += 1
                if refused_in_a_row >= len(urls):  # every process down: wait a little for a restart
                    refused_in_a_row = 0
                    await self._pause(loop, give_up, 0.3)
                continue
            except (httpx.TransportError, httpx.TimeoutException):
                self.figures.lost += 1
                await self._pause(loop, give_up, 0.1)
                continue
            refused_in_a_row = 0
            self.figures.sent += 1
            self.figures.by_status[response.status_code] += 1
            code = _error_code(response)
            if response.status_code == 409 and code == "idempotency_key_in_use":
                self.figures.keys_in_use += 1
                key_given_up = key_given_up or loop.time() + self.key_patience
                if loop.time() >= key_given_up:
                    self.figures.keys_given_up += 1
                    raise KeyHeld(f"{method} {path}: the key stayed in use for {self.key_patience:.0f} s")
                await asyncio.sleep(_retry_after(response))
                continue
            if response.status_code == 429:
                self.figures.rate_limited += 1
                await self._pause(loop, give_up, _retry_after(response))
                continue
            if response.headers.get("Idempotent-Replayed") == "true":
                self.figures.replayed += 1
            return response

    async def _pause(self, loop: asyncio.AbstractEventLoop, give_up: float, seconds: float) -> None:
        if loop.time() >= give_up:
            raise ApiUnreachable(f"no API process answered within {self.reach:.0f} s")
        await asyncio.sleep(seconds * self.rng.uniform(0.5, 1.5))


def _error_code(response: httpx.Response) -> str | None:
    """The `error.code` of an error body, else None."""
    if response.status_code < 400:
        return None
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


def error_of(response: httpx.Response) -> tuple[str, str]:
    """The code and message of an error body (the status and the raw text if it has none)."""
    code = _error_code(response)
    if code is None:
        return f"http_{response.status_code}", response.text[:300]
    message = response.json()["error"].get("message", "")
    return code, str(message)


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.1, min(float(response.headers.get("Retry-After", "1")), 5.0))
    except ValueError:
        return 1.0
