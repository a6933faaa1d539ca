"""What `make run` checks before it writes a file or starts a process: every setting it reads, and that
the ports it listens on are free (Temporal's frontend, the web UI, the API, and the local mail sink unless
REFUND_DESK_SMTP_URL sends mail elsewhere). A problem is one `error: ...` line and exit status 1."""

from __future__ import annotations

import errno
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.exc import ArgumentError

from dispatch.mail_sink import SINK_HOST
from dispatch.settings import DispatchSettings
from dispatch.smtp import MailNotConfigured, SmtpServer
from ledger.database_url import parsed_url
from ledger.paths import data_dir
from ledger.settings import LedgerSettings
from policy.settings import PolicySettings, PolicySnapshot
from starter.api.settings import ApiSettings
from starter.desk.codec import PayloadKeySettings
from starter.desk.settings import (
    SettingsError,
    TemporalSettings,
)
from starter.desk.validation import one_line
from starter.telemetry.runtime import METRICS_ADDRESS_ENV, RuntimeMetricsSettings


class LocalPorts(BaseSettings):
    """Where `make run` listens besides Temporal (whose port comes from TEMPORAL_ADDRESS)."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    api_port: int = Field(
        default=8000, ge=1, le=65535, validation_alias=AliasChoices("REFUND_DESK_API_PORT", "api_port")
    )
    ui_port: int = Field(
        default=8233, ge=1, le=65535, validation_alias=AliasChoices("TEMPORAL_UI_PORT", "ui_port")
    )
    mail_sink_port: int = Field(
        default=8025,
        ge=0,
        le=65535,
        validation_alias=AliasChoices("REFUND_DESK_MAIL_SINK_PORT", "mail_sink_port"),
        description="Where the local SMTP sink listens when REFUND_DESK_SMTP_URL is unset; 0: a free port.",
    )


def temporal_endpoint(address: str) -> tuple[str, int]:
    """The dev server's bind address from TEMPORAL_ADDRESS, so the worker and the API find it there."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise SettingsError(f"TEMPORAL_ADDRESS must be host:port (such as localhost:7233), not {address!r}")
    return ("127.0.0.1" if host == "localhost" else host), int(port)


API_HOST = "127.0.0.1"


Settings = TypeVar("Settings", bound=BaseSettings)


@dataclass(frozen=True)
class Plan:
    """Every setting `make run` reads, read and checked before it writes a file or starts a process."""

    ledger: LedgerSettings
    temporal: TemporalSettings
    ports: LocalPorts
    api: ApiSettings
    payload: PayloadKeySettings
    policy: PolicySnapshot
    ip: str
    port: int
    data: Path
    dispatch: DispatchSettings
    worker_metrics: RuntimeMetricsSettings
    """Where the worker serves the SDK's metrics, if REFUND_DESK_WORKER_METRICS_ADDRESS says; else `make run`
    takes a free loopback port for it as it starts the worker."""

    @property
    def mail_sink(self) -> bool:
        """Whether `make run` starts its SMTP sink: only when no SMTP server is configured."""
        return self.dispatch.smtp_url is None


def _read(kind: type[Settings]) -> Settings:
    """`kind()` from the environment; an invalid value is a `SettingsError` naming its variable."""
    try:
        return kind()
    except ValidationError as error:
        raise SettingsError(one_line(error, kind.model_config.get("env_prefix") or "")) from error


def read_plan() -> Plan:
    """The settings, or a `SettingsError` saying which one is wrong: a JWT secret given but short, a
    TEMPORAL_ADDRESS that is not host:port, a DATABASE_URL that is no URL, a value pydantic refuses."""
    ledger = _read(LedgerSettings)
    try:
        parsed_url(ledger.database_url)
    except ArgumentError as error:  # said without the URL, which may hold a password
        raise SettingsError(f"DATABASE_URL is not a database URL: {error}") from None
    temporal = _read(TemporalSettings)
    ip, port = temporal_endpoint(temporal.address)
    api = _read(ApiSettings)
    if api.jwt_secret is not None or api.jwt_secret_file.is_file():
        api.secret()  # refuses a short one now; a missing one is made after the checks
    policy = _read(PolicySettings).snapshot()
    dispatch = _read(DispatchSettings)
    if dispatch.smtp_url is not None:
        try:
            SmtpServer.parse(dispatch.smtp_url.get_secret_value())
        except MailNotConfigured as error:  # said without the URL, which may hold a password
            raise SettingsError(str(error)) from None
    ports = _read(LocalPorts)
    payload = _read(PayloadKeySettings)
    worker_metrics = _read(RuntimeMetricsSettings)
    return Plan(ledger, temporal, ports, api, payload, policy, ip, port, data_dir(), dispatch, worker_metrics)


@dataclass(frozen=True)
class Listener:
    """A port `make run` listens on, whose it is and the setting that moves it."""

    owner: str
    setting: str
    host: str
    port: int
    instead: str = "another port"


def listeners(plan: Plan) -> list[Listener]:
    """The dev server binds its web UI on the frontend's address (`--ui-ip` defaults to `--ip`). The mail
    sink is checked when it starts on a port of its setting's; port 0 takes whichever is free."""
    found = [
        Listener("Temporal's frontend", "TEMPORAL_ADDRESS", plan.ip, plan.port, "another host:port"),
        Listener("the web UI's", "TEMPORAL_UI_PORT", plan.ip, plan.ports.ui_port),
        Listener("the API's", "REFUND_DESK_API_PORT", API_HOST, plan.ports.api_port),
    ]
    if plan.worker_metrics.metrics_address is not None:
        host, _, port = plan.worker_metrics.metrics_address.rpartition(":")
        found.append(
            Listener("the worker's metrics", METRICS_ADDRESS_ENV, host, int(port), "another host:port")
        )
    if plan.mail_sink and plan.ports.mail_sink_port != 0:
        sink = Listener("the mail sink's", "REFUND_DESK_MAIL_SINK_PORT", SINK_HOST, plan.ports.mail_sink_port)
        found.append(sink)
    return found


def bind_error(host: str, port: int) -> OSError | None:
    """Why a server could not listen on (host, port), or None if it could.

    Binds as uvicorn (asyncio's `create_server`) and the Temporal dev server (Go's `net.Listen`) do, with
    SO_REUSEADDR: a port an earlier run left in TIME_WAIT is free to them and so free here, while a port
    another process listens on (on this address or on a wildcard one) is not."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
    except OSError as error:
        return error
    return None


def port_problems(plan: Plan) -> list[str]:
    """One sentence per port that cannot be had, naming the setting that moves it."""
    problems: list[str] = []
    claimed: dict[int, Listener] = {}
    taken = 0
    for listener in listeners(plan):
        first = claimed.setdefault(listener.port, listener)
        if first is not listener:
            problems.append(
                f"{first.setting} and {listener.setting} both name port {listener.port}: "
                f"set {listener.setting} to another port"
            )
            continue
        error = bind_error(listener.host, listener.port)
        if error is None:
            continue
        where = f"set {listener.setting} to {listener.instead}"
        if error.errno == errno.EADDRINUSE:
            taken += 1
            problems.append(f"port {listener.port} is taken ({listener.owner}): {where}")
        else:
            reason = error.strerror or str(error)
            problems.append(
                f"cannot listen on {listener.host}:{listener.port} ({listener.owner}: {reason}): {where}"
            )
    if taken == len(claimed) == len(listeners(plan)):
        problems.append("is `make run` running already?")
    return problems


def refuse(message: str) -> int:
    """One line on stderr, status 1: what to change, without a traceback."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    return 1
