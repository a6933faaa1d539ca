"""Sending an email: the message `dispatch.email.build_message` made, handed to the SMTP server of
`REFUND_DESK_SMTP_URL`.

Apart from rendering because it is the one part that talks to the network and holds a secret (the URL may
carry a password): what it raises says what failed and at which server, and the dispatcher records that
sentence, so no error here names an address, a password or the message. Nothing here logs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Final
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from dispatch.settings import DispatchSettings


class MailNotConfigured(RuntimeError):
    """`REFUND_DESK_SMTP_URL` is unset or unusable: emails wait in the outbox until it is set."""


class MailNotSent(RuntimeError):
    """The SMTP server could not be reached or refused the message. `code` is its reply code, if it
    answered one; `permanent` says whether it was a 5xx, which sending again will not change."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.permanent = code is not None and 500 <= code < 600


@dataclass(frozen=True)
class SmtpServer:
    """Where `smtp_url` sends: `smtp://[user[:password]@]host[:port][?starttls=true]`, or `smtps://` for
    TLS from the first byte. `starttls` is None to use STARTTLS when the server offers it, True to require
    it, False never to."""

    host: str
    port: int
    implicit_tls: bool
    starttls: bool | None
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, url: str) -> SmtpServer:
        """Said without the URL itself in any error, since it may hold a password."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise MailNotConfigured("REFUND_DESK_SMTP_URL must start with smtp:// or smtps://")
        try:
            port = parts.port
        except ValueError:
            raise MailNotConfigured("REFUND_DESK_SMTP_URL has a port that is not a number") from None
        if not parts.hostname or parts.path not in ("", "/") or parts.fragment:
            raise MailNotConfigured("REFUND_DESK_SMTP_URL must be smtp://[user[:password]@]host[:port]")
        return cls(
            host=parts.hostname,
            port=port or (465 if parts.scheme == "smtps" else 25),
            implicit_tls=parts.scheme == "smtps",
            starttls=_starttls(parts.query, parts.scheme),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
        )

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def _starttls(query: str, scheme: str) -> bool | None:
    try:
        options = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise MailNotConfigured("REFUND_DESK_SMTP_URL's query is not name=value") from None
    if set(options) - {"starttls"} or len(options.get("starttls", [])) > 1:
        raise MailNotConfigured("REFUND_DESK_SMTP_URL takes one option, starttls=true or starttls=false")
    if "starttls" not in options:
        return None
    value = options["starttls"][0].lower()
    if value not in ("true", "false"):
        raise MailNotConfigured("REFUND_DESK_SMTP_URL's starttls is true or false")
    if value == "true" and scheme == "smtps":
        raise MailNotConfigured("smtps:// is TLS from the first byte: it takes no starttls=true")
    return value == "true"


SMTP_TIMEOUT: Final = 30.0
"""Seconds for each step of a conversation with the SMTP server."""


async def send(message: EmailMessage, settings: DispatchSettings) -> None:
    """Hand `message` to the SMTP server of `settings.smtp_url`, to its `To` from its `From`.

    `MailNotConfigured` when there is none or it is unusable; `MailNotSent` when the server cannot be
    reached, lacks the STARTTLS the URL requires, or refuses; the dispatcher retries either. The error's
    sentence names the server (host and port), never an address, a password or the message."""
    if settings.smtp_url is None:
        raise MailNotConfigured("REFUND_DESK_SMTP_URL is not set: emails wait in the outbox")
    server = SmtpServer.parse(settings.smtp_url.get_secret_value())
    try:
        await aiosmtplib.send(
            message,
            hostname=server.host,
            port=server.port,
            username=server.username,
            password=server.password,
            use_tls=server.implicit_tls,
            start_tls=server.starttls,
            timeout=SMTP_TIMEOUT,
        )
    except aiosmtplib.SMTPException as error:
        raise _not_sent(error, server) from None
    except OSError as error:  # ssl.SSLError among them
        raise MailNotSent(f"the SMTP server {server} failed: {type(error).__name__}") from None


def _not_sent(error: aiosmtplib.SMTPException, server: SmtpServer) -> MailNotSent:
    """The failure in words that hold no address: servers echo addresses in their replies, and aiosmtplib
    puts recipients in its exceptions, so neither's text is kept."""
    if isinstance(error, aiosmtplib.SMTPConnectError | aiosmtplib.SMTPServerDisconnected):
        return MailNotSent(f"cannot reach the SMTP server {server} ({type(error).__name__})")
    if isinstance(error, aiosmtplib.SMTPTimeoutError):
        return MailNotSent(f"the SMTP server {server} did not answer in time")
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        codes = sorted({refused.code for refused in error.recipients})
        return MailNotSent(f"the SMTP server {server} refused the recipient ({codes[0]})", codes[0])
    if isinstance(error, aiosmtplib.SMTPAuthenticationError):
        return MailNotSent(f"the SMTP server {server} refused the login ({error.code})", error.code)
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return MailNotSent(f"the SMTP server {server} refused the message ({error.code})", error.code)
    if "STARTTLS" in str(error):
        return MailNotSent(
            f"the SMTP server {server} does not offer STARTTLS, which REFUND_DESK_SMTP_URL requires "
            "(starttls=true)"
        )
    return MailNotSent(f"the SMTP server {server} failed ({type(error).__name__})")
