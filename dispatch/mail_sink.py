"""A local SMTP server for development that delivers nowhere: each message it takes is a file.

`make run` starts one on 127.0.0.1 and points the worker's `REFUND_DESK_SMTP_URL` at it, so the emails the
dispatcher sends can be read without a mail account: `refund-desk mail list` and `refund-desk mail show N`
(`starter.cli.mail`, which reads the files with `list_mail` and `read_mail`). Messages land in
`<data>/mail/` as `.eml` files, readable by their owner only (mode 0600: they hold addresses), named by
their arrival in UTC and a sequence number, so that the names sort in arrival order and hold nothing from
the message.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import itertools
import logging
import os
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from ledger.paths import data_dir

SINK_HOST = "127.0.0.1"
AIOSMTPD_LOGGER = "mail.log"
MAIL_FOLDER = "mail"
FILE_NAME = re.compile(r"^(\d{8}T\d{6}\d{6}Z)-(\d{6})-([0-9a-f]{6})\.eml$")
"""`20261204T183000123456Z-000001-9f3a1c.eml`: arrival (UTC, microseconds), sequence, a random tail."""


def mail_folder() -> Path:
    """Where the sink writes and the CLI reads: `<data>/mail`."""
    return data_dir() / MAIL_FOLDER


class SavingHandler:
    """aiosmtpd's handler: each message's bytes, as received, to a new file in `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._sequence = itertools.count(1)
        self._lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        self.save(raw)
        return "250 Message accepted for delivery"

    def save(self, raw: bytes) -> Path:
        """Write `raw` under a new name: to a hidden temporary file made 0600 from the start, then renamed,
        so that a reader never sees half a message and no one else ever sees any of it."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self._lock:
            number = next(self._sequence)
        arrived = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        name = f"{arrived}-{number:06d}-{secrets.token_hex(3)}.eml"
        partial = self.folder / f".{name}.part"
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(raw)
        final = self.folder / name
        partial.rename(final)
        return final


class _Controller(Controller):
    """aiosmtpd's threaded controller, able to listen on a port the system picks (port 0): it learns the
    port from its socket before it connects to itself to check the server answers."""

    def _trigger_server(self) -> None:
        if self.port == 0 and isinstance(self.server, asyncio.Server):
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


class MailSink:
    """The SMTP sink on `SINK_HOST`:`port` (0: a free port, then read `port`), saving into `folder`.
    `start` and `stop`, or a `with` block."""

    def __init__(self, port: int = 0, folder: Path | None = None) -> None:
        self.folder = folder if folder is not None else mail_folder()
        self.handler = SavingHandler(self.folder)
        self._controller = _Controller(
            self.handler, hostname=SINK_HOST, port=port, server_hostname="localhost"
        )

    @property
    def port(self) -> int:
        port: int = self._controller.port
        return port

    @property
    def url(self) -> str:
        """The `REFUND_DESK_SMTP_URL` that sends here."""
        return f"smtp://{SINK_HOST}:{self.port}"

    def start(self) -> MailSink:
        # aiosmtpd logs every command it reads, addresses included, at INFO: only its warnings may show.
        logging.getLogger(AIOSMTPD_LOGGER).setLevel(max(logging.WARNING, logging.getLogger().level))
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> MailSink:
        return self.start()

    def __exit__(self, *_: Any) -> None:
        self.stop()


# --------------------------------------------------------------------------------------------- read


@dataclass(frozen=True)
class Mail:
    """One saved message: where it is, when it arrived, and what `list` and `show` print of it."""

    path: Path
    received_at: datetime
    recipient: str
    subject: str
    message: EmailMessage

    @property
    def text(self) -> str:
        """The plain-text part (the HTML one, as it is, for a message without one)."""
        body = self.message.get_body(preferencelist=("plain", "html"))
        content: str = body.get_content() if body is not None else ""
        return content


def mail_files(folder: Path) -> list[Path]:
    """The saved messages, oldest first (their names sort in arrival order); other files are ignored."""
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.iterdir() if FILE_NAME.match(path.name) and path.is_file())


def read_file(path: Path) -> Mail:
    match = FILE_NAME.match(path.name)
    if match is None:
        raise ValueError(f"{path.name} is not a message the sink saved")
    with path.open("rb") as file:
        message = email.message_from_binary_file(file, policy=email.policy.default)
    assert isinstance(message, EmailMessage)  # what the default policy makes
    arrived = datetime.strptime(match.group(1), "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)
    return Mail(
        path=path,
        received_at=arrived,
        recipient=str(message.get("To", "")),
        subject=" ".join(str(message.get("Subject", "")).split()),
        message=message,
    )


def list_mail(folder: Path | None = None) -> list[Mail]:
    """Every message in `folder` (the sink's, `<data>/mail`, by default), oldest first: message `n` of
    `read_mail` is the n-th of this list."""
    return [read_file(path) for path in mail_files(folder if folder is not None else mail_folder())]


def read_mail(folder: Path | None, which: int) -> Mail:
    """Message number `which`, counted from 1 in arrival order as `list_mail` gives them; a negative
    number counts from the newest (-1). `IndexError` when there is no such message."""
    files = mail_files(folder if folder is not None else mail_folder())
    if which == 0 or not -len(files) <= which <= len(files):
        raise IndexError(f"there is no message {which}: the folder holds {len(files)}")
    return read_file(files[which - 1 if which > 0 else which])
