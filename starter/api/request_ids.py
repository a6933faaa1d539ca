"""Every request gets an id, and every line logged while it is handled carries it (docs/logging.md).

`RequestIds` is the outermost middleware: it takes the caller's `X-Request-ID` when it is a sane one
(1-128 characters of letters, digits and `._:-`, so a log line never carries what a caller chose to put in
a header) or makes one, binds it as `request_id` in `structlog.contextvars` for the request, with the
complaint (or activation) its path names, and echoes it in the response's `X-Request-ID`. uvicorn's
access line is logged as the response starts, inside the request, so it carries them too; so do the
gate's refusals, which come from further in. A filing learns its complaint's id only once filed: its route
binds it then (`starter.telemetry.log_context.bind_complaint`).
"""

from __future__ import annotations

import re
import uuid

import structlog
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from starter.telemetry.log_context import activation_fields, complaint_fields

HEADER = b"x-request-id"
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
COMPLAINT_PATH = re.compile(r"^/(?:v1|console|my)/complaints/([^/]+)")
ACTIVATION_PATH = re.compile(r"^/v1/activations/([^/]+)")


def request_id_of(scope: Scope) -> str:
    """The caller's `X-Request-ID` if it is sane, else a new one (32 hex digits)."""
    for name, value in scope.get("headers", ()):
        if name == HEADER:
            given: str = value.decode("latin-1")
            if SANE_REQUEST_ID.fullmatch(given):
                return given
            break
    return uuid.uuid4().hex


def path_fields(path: str) -> dict[str, str]:
    """The complaint or activation a path is about, as log fields; nothing for any other path."""
    complaint = COMPLAINT_PATH.match(path)
    if complaint:
        return complaint_fields(complaint.group(1))
    activation = ACTIVATION_PATH.match(path)
    return activation_fields(activation.group(1)) if activation else {}


class RequestIds:
    """The ASGI middleware: `request_id` and the path's subject bound for the request, the id echoed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != HEADER]
                message = {**message, "headers": [*headers, (HEADER, request_id.encode())]}
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id, **path_fields(scope["path"])):
            await self.app(scope, receive, send_with_id)


def install(app: FastAPI) -> None:
    """Add `RequestIds` outside every middleware added before it: call it last."""
    app.add_middleware(RequestIds)
