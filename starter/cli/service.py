"""The commands that run the desk rather than act on it: the API (`serve`), the worker, the ledger's schema
(`migrate`) and development tokens (`token`). `app` registers them at the top level."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

import typer
from pydantic import TypeAdapter, ValidationError

from ledger.database_url import checked_database_url, shown_database_url, upgrade_schema
from policy.models import Role
from policy.settings import Duration
from starter.api.settings import ApiSettings
from starter.cli.formatting import console, plain
from starter.cli.reporting import USAGE, fail, reported


class LogLevel(StrEnum):
    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"
    DEBUG = "debug"
    TRACE = "trace"


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    log_level: Annotated[LogLevel, typer.Option(help="uvicorn's log level.")] = LogLevel.INFO,
) -> None:
    """Serve the HTTP API (docs/api.md) with uvicorn until interrupted, with the header and body deadlines
    of REFUND_DESK_HEADER_TIMEOUT and REFUND_DESK_BODY_TIMEOUT."""
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE

    from starter.api.app import create_app  # FastAPI is only loaded by the command that serves it
    from starter.api.server import server_config
    from starter.telemetry import traces

    with reported():
        traces.start(traces.API)  # before the app and the desk's client: both ask it whether to trace
        checked_database_url()  # the API opens the desk only once it serves: a wrong URL is said here
        settings = ApiSettings()
        application = create_app(settings=settings)  # refuses a missing JWT secret before binding the port
    # log_config=None: uvicorn's records go to the root logger's JSON handler (starter.telemetry.logs)
    # rather than to the text handlers uvicorn's default configuration would give its loggers.
    options = {"host": host, "port": port, "log_level": log_level.value, "log_config": None}
    server = uvicorn.Server(server_config(application, settings, **options))
    server.run()
    traces.stop()  # the last spans sent: `refund-desk` ends with os._exit, which skips the exporter's flush
    if not server.started:  # the port taken, or the desk not opened: exit 3, as uvicorn.run does
        raise typer.Exit(STARTUP_FAILURE)


def worker() -> None:
    """Run the worker (every workflow and activity) until SIGINT or SIGTERM, then finish in-flight tasks."""
    import worker as worker_process

    with reported():
        checked_database_url()
        worker_process.main()


def migrate() -> None:
    """Create the ledger schema, or bring it to the latest revision, at DATABASE_URL."""
    with reported():
        upgrade_schema(checked_database_url())
    console().print(plain(f"ledger schema is at head ({shown_database_url()})"))


class TokenRole(StrEnum):
    """The roles a token is minted for: the API's callers. `system` is the desk itself, which acts without
    a token, so the option does not offer it and the parser refuses it."""

    BACKEND = Role.BACKEND.value
    SUPPORT = Role.SUPPORT.value
    CUSTOMER = Role.CUSTOMER.value


def token(
    role: Annotated[TokenRole, typer.Option(help="Whose token: the shop's backend, support or a customer.")],
    sub: Annotated[str, typer.Option(help="Who the token is for: the caller's id.")],
    ttl: Annotated[
        str, typer.Option(help="How long it is valid: seconds, or ISO-8601 such as PT30M or P1D.")
    ] = "3600",
) -> None:
    """Print a bearer token signed with the configured secret (REFUND_DESK_JWT_SECRET), issued by and for
    the configured issuer and audience: for development. The API refuses a --ttl over
    REFUND_DESK_TOKEN_MAX_LIFETIME (24 h), so this does too."""
    from starter.api.auth import mint_token

    try:
        lifetime = TypeAdapter(Duration).validate_python(ttl)
    except ValidationError:
        fail(f"--ttl {ttl!r} is not a duration: give seconds or ISO-8601 (PT30M, P1D)", USAGE)
    with reported():  # a missing secret, a setting out of shape, or a sub the API would refuse
        settings = ApiSettings()
        if lifetime > settings.token_max_lifetime:
            fail(
                f"--ttl {ttl!r} is longer than the {settings.token_max_lifetime.total_seconds():g} s "
                "REFUND_DESK_TOKEN_MAX_LIFETIME allows: the API would refuse the token",
                USAGE,
            )
        minted = mint_token(
            settings.secret(),
            Role(role.value),
            sub,
            lifetime,
            issuer=settings.token_issuer,
            audience=settings.token_audience,
        )
    typer.echo(minted)


def console_link(
    sub: Annotated[str, typer.Option(help="The support person the link signs in.")] = "alice",
) -> None:
    """Print a one-time link signing `sub` in to the support console (`/console`), valid for
    REFUND_DESK_SIGN_IN_LINK_LIFETIME (1 h), at the API's REFUND_DESK_PUBLIC_URL."""
    from dispatch.settings import DispatchSettings
    from starter.api.auth import TokenRules
    from starter.web.sessions import sign_in_link
    from starter.web.settings import WebSettings

    with reported():  # a missing secret, a setting out of shape, or a sub the API would refuse
        rules = TokenRules.of(ApiSettings())
        lifetime = WebSettings().sign_in_link_lifetime
        link = sign_in_link(DispatchSettings().public_url, rules, sub, lifetime, now=datetime.now(UTC))
    typer.echo(link)
