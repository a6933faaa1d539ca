"""JSON logs, one event per line on stderr, from every process of the desk (docs/logging.md).

The desk's own modules, and every library it runs on (uvicorn, temporalio, httpx, SQLAlchemy, aiosmtpd),
log through the standard `logging` module; `configure_logging` puts one handler on the root logger whose
`structlog.stdlib.ProcessorFormatter` turns each record into an event: `timestamp` (ISO-8601, UTC),
`level`, `logger`, `event`, the record's `extra` fields, the context bound with `structlog.contextvars`
(the API's `request_id`, the complaint a request, an activity or a delivery is about:
`starter.telemetry.log_context`), and for records temporalio's `activity.logger` and `workflow.logger`
make, the workflow they ran for. `redact_secrets` runs last before the renderer, so what it removes never
reaches the stream, whoever logged it.

Code that logs keeps using `logging.getLogger(...)`: a process that never calls `configure_logging` (a
test, a notebook) logs as before, instead of through structlog's unconfigured default, which prints to
stdout.

The entry points call `configure_process_logging`: the worker (`worker.main`, `refund-desk worker`), the
API (`refund-desk serve`), the CLI (`starter.cli.app.main`) and `make run` (`starter.local.run.main`),
whose children inherit the environment and so the same settings.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Literal, TextIO

import structlog
from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio import activity, workflow
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

from starter.desk.settings import SettingsError
from starter.desk.validation import one_line
from starter.telemetry.redaction import redact_secrets

LEVEL_ENV = "REFUND_DESK_LOG_LEVEL"
FORMAT_ENV = "REFUND_DESK_LOG_FORMAT"

Level = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
Format = Literal["json", "console"]

QUIET_LOGGERS = ("httpx", "httpcore", "sqlalchemy", "aiosqlite", "asyncpg", "aiosmtpd", "mail.log", "hpack")
"""Loggers held at WARNING whatever the level: at INFO and below they write what the desk keeps out of its
logs. httpx and httpcore: every request's URL (a webhook endpoint's URL may carry the shop's own token);
SQLAlchemy, and aiosqlite and asyncpg at DEBUG: every statement with its parameters (descriptions,
addresses); aiosmtpd (`mail.log`, the local sink's server): every SMTP command it reads, addresses
included."""

NOISY_LOGGERS = ("alembic",)
"""Held at WARNING too, for noise rather than secrets: the ledger's migrations say at INFO what the
database is, on every start of `make run` and every `refund-desk migrate`."""

CORE_LOGGER = "temporalio.core"
"""Where the Temporal SDK's core (Rust) logs are forwarded, instead of its own text on stderr."""

DROPPED_EXTRAS = ("color_message", "message", "temporal_log", "taskName", "asctime")
"""Attributes a record may carry that are not fields of the event: uvicorn's coloured copy of the message,
the SDK core's raw log object, and attributes `logging` itself sets on some records."""

HANDLER_MARK = "_refund_desk_logs"

_core_forwarded: list[Runtime] = []
"""The default runtime `configure_process_logging` made, once a process: `refund-desk worker` configures
in the CLI's entry point and again in the worker's."""


class LogSettings(BaseSettings):
    """How much the process logs, and how: REFUND_DESK_LOG_LEVEL and REFUND_DESK_LOG_FORMAT."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    level: Level = Field(default="INFO", validation_alias=AliasChoices(LEVEL_ENV, "level"))
    format: Format = Field(default="json", validation_alias=AliasChoices(FORMAT_ENV, "format"))
    """`json`: one JSON object a line, for machines (the default, in every process). `console`: aligned,
    coloured text on a terminal, for a person watching `make run`; the same fields, the same redaction."""

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @classmethod
    def from_environment(cls) -> LogSettings:
        """The settings, or a `SettingsError` naming the variable that is wrong."""
        try:
            return cls()
        except ValidationError as error:
            raise SettingsError(one_line(error)) from error


def temporal_fields(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """The workflow a temporalio record is about, as top-level fields: `activity.logger` puts it in the
    record's `temporal_activity` extra, `workflow.logger` in `temporal_workflow`. Context already bound
    (the activity's own interceptor binds the same workflow id) wins."""
    about = event_dict.pop("temporal_activity", None)
    if isinstance(about, dict):
        event_dict.setdefault("workflow_id", about.get("workflow_id"))
        event_dict.setdefault("run_id", about.get("workflow_run_id"))
        event_dict.setdefault("activity_type", about.get("activity_type"))
        event_dict.setdefault("attempt", about.get("attempt"))
    running = event_dict.pop("temporal_workflow", None)
    if isinstance(running, dict):
        event_dict.setdefault("workflow_id", running.get("workflow_id"))
        event_dict.setdefault("run_id", running.get("run_id"))
        event_dict.setdefault("workflow_type", running.get("workflow_type"))
    for key in DROPPED_EXTRAS:
        event_dict.pop(key, None)
    for key in [key for key in event_dict if key.startswith("__")]:  # temporalio's private markers
        del event_dict[key]
    return event_dict


FIRST_KEYS = ("timestamp", "level", "logger", "event")


def keys_in_order(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """`FIRST_KEYS` first, then the rest as bound: a line reads from when and what to the details."""
    first = {key: event_dict.pop(key) for key in FIRST_KEYS if key in event_dict}
    return {**first, **event_dict}


def _shared_processors() -> list[Any]:
    """What every event goes through, from `logging` or from structlog, before it is rendered."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        temporal_fields,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        structlog.processors.StackInfoRenderer(),
    ]


def _renderer(settings: LogSettings, stream: TextIO) -> Any:
    if settings.format == "console":
        return structlog.dev.ConsoleRenderer(colors=stream.isatty())
    return structlog.processors.JSONRenderer(sort_keys=False, ensure_ascii=False)


def formatter(settings: LogSettings, stream: TextIO) -> structlog.stdlib.ProcessorFormatter:
    """The formatter of the root handler: the shared processors, the traceback as text (so redaction sees
    it), the redaction, then the renderer of `settings.format`."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_secrets,
            keys_in_order,
            _renderer(settings, stream),
        ],
    )


def configure_logging(settings: LogSettings | None = None, stream: TextIO | None = None) -> None:
    """Every record of this process, at `settings.level` and above, to `stream` (stderr) as one event a
    line. Replaces the handler an earlier call installed and leaves any other handler (a test's capture)
    in place; structlog's own loggers (`structlog.stdlib.get_logger`) go the same way."""
    settings = settings or LogSettings.from_environment()
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter(settings, stream))
    # The handler filters too: a logger with a level of its own (uvicorn's, from `--log-level`) passes
    # its records on to the root's handlers whatever the root's level says.
    handler.setLevel(settings.level)
    setattr(handler, HANDLER_MARK, True)
    root = logging.getLogger()
    for existing in [h for h in root.handlers if getattr(h, HANDLER_MARK, False)]:
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(settings.level)
    for name in (*QUIET_LOGGERS, *NOISY_LOGGERS):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(settings.level)))
    # The workflow and the activity are fields of the event (`temporal_fields`), not text appended to it.
    activity.logger.activity_info_on_message = False
    workflow.logger.workflow_info_on_message = False
    structlog.configure(
        processors=[*_shared_processors(), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: a second configure_logging (a test's) reaches loggers made before it.
        cache_logger_on_first_use=False,
    )


def temporal_core_logging() -> LoggingConfig:
    """The SDK core's logs (WARN and above from the core, ERROR from the rest, its default filter)
    forwarded to the `temporalio.core` logger, and so rendered like every other line: for any `Runtime`
    the process makes (`starter.telemetry.runtime`'s too)."""
    return LoggingConfig(
        filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
        forwarding=LogForwardingConfig(logger=logging.getLogger(CORE_LOGGER)),
    )


def configure_process_logging() -> LogSettings:
    """`configure_logging` from the environment, for a process's entry point, and the SDK's default
    runtime made with `temporal_core_logging`, before any client is: the core writes nothing to stderr of
    its own. `SettingsError` on a wrong setting, before anything starts."""
    settings = LogSettings.from_environment()
    configure_logging(settings)
    if not _core_forwarded:
        _core_forwarded.append(Runtime(telemetry=TelemetryConfig(logging=temporal_core_logging())))
        Runtime.set_default(_core_forwarded[0])
    return settings
