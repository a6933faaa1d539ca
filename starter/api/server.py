"""How uvicorn serves the API (`refund-desk serve`, and the tests' `served`): with a deadline on headers.

uvicorn times out a keep-alive connection that sends nothing, but not one that sends a request's headers
slowly: a client that sends a header line every few seconds holds its connection, and its slot, for as long
as it likes. `HeaderDeadline` starts a timer when a connection opens and when a new request's first bytes
arrive on it, stops it once the headers are complete, and answers 408 and closes the connection when it
fires. The body's deadline is the gate's (`starter.api.gate`): it reads the body before the app runs.

uvicorn's access log writes each request's path with its query string, where the link in a customer's
email carries its token (`?token=`, docs/api.md "Links in customers' emails"). `RedactTokens` rewrites a
record on uvicorn's loggers before any handler sees it, so a token never reaches a log line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any, ClassVar

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from starter.api.settings import ApiSettings


def _timeout_response(seconds: float) -> bytes:
    message = f"the request's headers did not arrive within {seconds:g} s"
    body = json.dumps({"error": {"code": "request_timeout", "message": message}}).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class HeaderDeadline(H11Protocol):
    """uvicorn's h11 protocol, with `header_timeout` seconds for each request's headers to arrive."""

    header_timeout: ClassVar[float] = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start()

    def data_received(self, data: bytes) -> None:
        if self._deadline is None and (self.cycle is None or self.cycle.response_complete):
            self._start()  # the first bytes of the next request
        super().data_received(data)

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a request's headers were complete: its cycle began
            self._stop()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop()
        super().connection_lost(exc)

    def _start(self) -> None:
        self._stop()
        self._deadline = self.loop.call_later(self.header_timeout, self._expired)

    def _stop(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.write(_timeout_response(self.header_timeout))
            self.transport.close()


def with_header_timeout(seconds: float) -> type[HeaderDeadline]:
    """`HeaderDeadline` with its timeout: uvicorn makes one protocol object per connection from a class."""

    class Timed(HeaderDeadline):
        header_timeout = seconds

    return Timed


TOKEN_IN_QUERY = re.compile(r"\b((?:(?:access_)?token|link)=)[A-Za-z0-9._~+/=%-]+", re.IGNORECASE)
"""A token's value in a query string (`?token=...`, `&access_token=...`, a console sign-in `?link=...`):
the characters a URL carries."""
UVICORN_LOGGERS = ("uvicorn.access", "uvicorn.error", "uvicorn.asgi")


def redacted(text: str) -> str:
    return TOKEN_IN_QUERY.sub(r"\1[redacted]", text)


class RedactTokens(logging.Filter):
    """Replaces the value of every `token=` in a record with `[redacted]`, and keeps the record. Text
    arguments are redacted in place, since uvicorn's access formatter reads the arguments one by one; a
    token left in another argument (the ASGI trace's scope) turns the record into its redacted text."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redacted(arg) if isinstance(arg, str) else arg for arg in record.args)
        if isinstance(record.msg, str):
            record.msg = redacted(record.msg)
        message = record.getMessage()
        if TOKEN_IN_QUERY.search(message.replace("[redacted]", "")):
            record.msg, record.args = redacted(message), None
        return True


def redact_tokens_in_logs() -> None:
    """Put `RedactTokens` on uvicorn's loggers, once each: filters on a logger apply to what it logs itself
    (the access log, the errors, the ASGI trace), whatever handlers a log configuration gives it."""
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, RedactTokens) for existing in logger.filters):
            logger.addFilter(RedactTokens())


def server_config(app: Any, settings: ApiSettings, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration for `app`: `options` as `uvicorn.Config` takes them (host, port, log level),
    the protocol with the header deadline of `settings`, and tokens kept out of its logs."""
    config = uvicorn.Config(app, http=with_header_timeout(settings.header_timeout.total_seconds()), **options)
    redact_tokens_in_logs()  # after Config, whose log configuration (re)creates the loggers' handlers
    return config
