"""`make run`: the whole system on one machine, on the embedded defaults.

First it checks, before it writes or starts anything: every setting it reads, and that the three ports it
listens on (Temporal's frontend, the web UI, the API) are free; a problem is one `error: ...` line and exit
status 1. Then it applies the ledger migrations, writes the policy in force to `<data dir>/policy.json` (for
the CLI in other shells), starts the Temporal dev server (persistent in `<data dir>/temporal.db`, web UI on
:8233, the complaints' search attributes registered), the worker and the API (:8000), waits until `/healthz`
answers, then prints the URLs, the exports a second shell needs, the policy windows and a development token
per role. Ctrl-C or SIGTERM stops the API first, then the worker (it finishes in-flight tasks), then the
server. Restarting keeps every complaint: all state lives in the data folder, `.data/` in the checkout
(`ledger.paths.data_dir`).
"""

from __future__ import annotations

import asyncio
import errno
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, TypeVar

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from ledger.migrate import upgrade_url
from ledger.paths import DATA_DIR_ENV
from ledger.settings import LedgerSettings
from policy.models import Role
from policy.settings import PolicySettings, PolicySnapshot
from starter.api.auth import CALLER_ROLES, mint_token
from starter.api.settings import ApiSettings
from starter.binaries import tool_path
from starter.desk import connect
from starter.desk.codec import PayloadKeySettings
from starter.desk.settings import (
    SettingsError,
    TemporalSettings,
    data_dir,
    one_line,
    policy_file,
    save_policy,
)
from workflows.search_attributes import REGISTRATION

DEV_TOKEN_TTL = timedelta(hours=24)
DEV_SUBS = {Role.BACKEND: "shop", Role.SUPPORT: "alice", Role.CUSTOMER: "cust-1"}


class LocalPorts(BaseSettings):
    """Where `make run` listens besides Temporal (whose port comes from TEMPORAL_ADDRESS)."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    api_port: int = Field(
        default=8000, ge=1, le=65535, validation_alias=AliasChoices("REFUND_DESK_API_PORT", "api_port")
    )
    ui_port: int = Field(
        default=8233, ge=1, le=65535, validation_alias=AliasChoices("TEMPORAL_UI_PORT", "ui_port")
    )


def temporal_endpoint(address: str) -> tuple[str, int]:
    """The dev server's bind address from TEMPORAL_ADDRESS, so the worker and the API find it there."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise SettingsError(f"TEMPORAL_ADDRESS must be host:port (such as localhost:7233), not {address!r}")
    return ("127.0.0.1" if host == "localhost" else host), int(port)


def dev_server_command(
    ip: str = "127.0.0.1", port: int = 7233, ui_port: int = 8233, data: Path | None = None
) -> list[str]:
    command = [
        tool_path("temporal"),
        "server",
        "start-dev",
        "--db-filename",
        str((data or data_dir()) / "temporal.db"),
        "--ip",
        ip,
        "--port",
        str(port),
        "--ui-port",
        str(ui_port),
        "--log-level",
        "warn",
    ]
    for name, kind in REGISTRATION.items():
        command += ["--search-attribute", f"{name}={kind}"]
    return command


def ensure_jwt_secret(settings: ApiSettings) -> str:
    """The development secret: REFUND_DESK_JWT_SECRET if set, else `<data dir>/jwt.secret`, made on first
    run (so tokens printed yesterday still work today)."""
    if settings.jwt_secret is None and not settings.jwt_secret_file.exists():
        settings.jwt_secret_file.parent.mkdir(parents=True, exist_ok=True)
        settings.jwt_secret_file.write_text(secrets.token_urlsafe(48) + "\n")
        settings.jwt_secret_file.chmod(0o600)
    return settings.secret()


async def wait_for_temporal(settings: TemporalSettings, seconds: float = 60) -> None:
    """Until the server answers: `connect` asks it for its system info. The search attributes need no call,
    the server registers them from its `--search-attribute` flags."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        try:
            await connect(settings)
            return
        except Exception:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)


def wait_for_health(url: str, api: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if api.poll() is not None:
            raise SystemExit(f"the API exited with {api.returncode}")
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} did not answer within {seconds:.0f} s")
        time.sleep(0.2)


def stop_in_order(processes: list[subprocess.Popen[bytes]], grace: float = 20) -> None:
    """SIGTERM each in the order given, waiting up to `grace` seconds for it before SIGKILL: the API, the
    worker (it finishes in-flight tasks), then the server."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


API_HOST = "127.0.0.1"
POLICY_WINDOWS = {
    "claim_window": "claim window",
    "rectify_window": "rectify window",
    "access_response_window": "access response window",
    "remedy_choice_window": "remedy choice window",
    "review_window": "review window",
    "review_reminder_before": "review reminder",
    "sms_wait": "SMS wait",
}
"""The policy's windows as the banner names them."""
SECRET_SETTINGS = ("REFUND_DESK_VAULT_KEYS", "REFUND_DESK_PAYLOAD_KEYS", "REFUND_DESK_JWT_SECRET")
"""What a second shell needs as well when this one set it, and no banner prints."""
Settings = TypeVar("Settings", bound=BaseSettings)


# ------------------------------------------------------------------------------------- before anything


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
        make_url(ledger.database_url)
    except (ArgumentError, ValueError) as error:
        raise SettingsError(f"DATABASE_URL is not a database URL ({error})") from error
    temporal = _read(TemporalSettings)
    ip, port = temporal_endpoint(temporal.address)
    api = _read(ApiSettings)
    if api.jwt_secret is not None or api.jwt_secret_file.is_file():
        api.secret()  # refuses a short one now; a missing one is made after the checks
    policy = _read(PolicySettings).snapshot()
    return Plan(
        ledger, temporal, _read(LocalPorts), api, _read(PayloadKeySettings), policy, ip, port, data_dir()
    )


@dataclass(frozen=True)
class Listener:
    """A port `make run` listens on, whose it is and the setting that moves it."""

    owner: str
    setting: str
    host: str
    port: int
    instead: str = "another port"


def listeners(plan: Plan) -> list[Listener]:
    """The dev server binds its web UI on the frontend's address (`--ui-ip` defaults to `--ip`)."""
    return [
        Listener("Temporal's frontend", "TEMPORAL_ADDRESS", plan.ip, plan.port, "another host:port"),
        Listener("the web UI's", "TEMPORAL_UI_PORT", plan.ip, plan.ports.ui_port),
        Listener("the API's", "REFUND_DESK_API_PORT", API_HOST, plan.ports.api_port),
    ]


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


def prepare(plan: Plan) -> str:
    """The data folder, the JWT secret (made on the first run) and `policy.json`; returns the secret."""
    plan.data.mkdir(parents=True, exist_ok=True)
    jwt_secret = ensure_jwt_secret(plan.api)
    save_policy(plan.policy)
    return jwt_secret


def refuse(message: str) -> int:
    """One line on stderr, status 1: what to change, without a traceback."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    return 1


# ------------------------------------------------------------------------------------------ the banner


def in_words(duration: timedelta) -> str:
    """`5 days`, `1 day 12 h`, `20 min`, `30 s`, `1.5 s`: how a person says a window."""
    whole, micros = divmod(duration // timedelta(microseconds=1), 1_000_000)
    parts = []
    for unit, size in (("day", 86_400), ("h", 3_600), ("min", 60)):
        count, whole = divmod(whole, size)
        if count:
            parts.append(f"{count} {unit}s" if unit == "day" and count != 1 else f"{count} {unit}")
    if whole or micros or not parts:
        parts.append(f"{whole + micros / 1_000_000:g} s")
    return " ".join(parts)


def policy_lines(policy: PolicySnapshot) -> str:
    """The windows a complaint filed now gets, one a line: what a tester shortens before a run."""
    lines = []
    for field, label in POLICY_WINDOWS.items():
        value = in_words(getattr(policy, field))
        after = " before the review deadline" if field == "review_reminder_before" else ""
        lines.append(f"  {label:<24}{value}{after}")
    return "\n".join(lines)


def shown(path: Path) -> str:
    """A path as the person at the terminal reads it best: relative when it is below the cwd."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def second_shell(plan: Plan) -> str:
    """The exports a CLI in another shell needs to reach this instance. Secrets are named, not printed."""
    exports = {"TEMPORAL_ADDRESS": plan.temporal.address}
    for name in ("TEMPORAL_NAMESPACE", "REFUND_DESK_TASK_QUEUE", DATA_DIR_ENV, "DATABASE_URL"):
        if os.environ.get(name):
            exports[name] = os.environ[name]
    if DATA_DIR_ENV in exports:
        exports[DATA_DIR_ENV] = str(plan.data)
    files = {
        "REFUND_DESK_VAULT_KEY_FILE": plan.ledger.vault_key_file,
        "REFUND_DESK_PAYLOAD_KEY_FILE": plan.payload.payload_key_file,
        "REFUND_DESK_JWT_SECRET_FILE": plan.api.jwt_secret_file,
    }
    exports |= {name: str(path.absolute()) for name, path in files.items() if os.environ.get(name)}
    hidden = [name for name in SECRET_SETTINGS if os.environ.get(name)]
    if "DATABASE_URL" in exports and make_url(exports["DATABASE_URL"]).password:
        del exports["DATABASE_URL"]
        hidden.insert(0, "DATABASE_URL")
    lines = [f"  export {name}={shlex.quote(value)}" for name, value in exports.items()]
    if hidden:
        lines.append(f"  and {', '.join(hidden)} as in this shell (not printed here)")
    return "\n".join(lines)


def _banner(plan: Plan, jwt_secret: str) -> str:
    """What a person needs next: where each part listens, the policy, a second shell's exports, tokens."""
    api = f"http://{API_HOST}:{plan.ports.api_port}"
    ui_host = API_HOST if plan.ip in ("0.0.0.0", "::") else plan.ip
    tokens = "\n".join(
        f"  export {role.value.upper()}_TOKEN={mint_token(jwt_secret, role, DEV_SUBS[role], DEV_TOKEN_TTL)}"
        for role in CALLER_ROLES
    )
    return (
        "\nRefund Desk is running:\n"
        f"  API        {api}   (docs {api}/docs, health {api}/healthz)\n"
        f"  Web UI     http://{ui_host}:{plan.ports.ui_port}\n"
        f"  Temporal   {plan.temporal.address} (namespace {plan.temporal.namespace})\n"
        f"  Worker     task queue {plan.temporal.task_queue}\n"
        f"  Data       {shown(plan.data)}/\n"
        f"\nPolicy in force, saved to {shown(policy_file())} for the CLI (a REFUND_DESK_* window set in"
        f" its shell wins):\n{policy_lines(plan.policy)}\n"
        f"\nIn a second shell, for the CLI against this instance:\n{second_shell(plan)}\n"
        f"\nDevelopment tokens (24 h; the customer is {DEV_SUBS[Role.CUSTOMER]}):\n{tokens}\n"
        "More: .venv/bin/refund-desk token --role customer --sub <id>\n"
        f"Ctrl-C stops everything; state stays in {shown(plan.data)}/.\n"
    )


# --------------------------------------------------------------------------------------------- running


def run() -> int:
    """Check, then start; every refusal before the start is one line and status 1, with nothing started."""
    try:
        plan = read_plan()
        problems = port_problems(plan)
        if problems:
            return refuse("; ".join(problems))
        jwt_secret = prepare(plan)
    except SettingsError as error:
        return refuse(str(error))
    asyncio.run(upgrade_url(plan.ledger.database_url))
    print(
        f"ledger ready: {make_url(plan.ledger.database_url).render_as_string(hide_password=True)}", flush=True
    )
    return serve(plan, jwt_secret)


def serve(plan: Plan, jwt_secret: str) -> int:
    """The server, the worker and the API until Ctrl-C, SIGTERM or one of them exits; stops them in order."""
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())

    cli = [sys.executable, "-m", "starter.cli"]
    env = {**os.environ, "REFUND_DESK_JWT_SECRET": jwt_secret, DATA_DIR_ENV: str(plan.data)}
    processes: list[subprocess.Popen[bytes]] = []
    with (plan.data / "temporal.log").open("ab") as server_log:
        command = dev_server_command(plan.ip, plan.port, plan.ports.ui_port, plan.data)
        server = _start(command, processes, stdout=server_log)
        try:
            asyncio.run(wait_for_temporal(plan.temporal))
            worker = _start([*cli, "worker"], processes, env=env)
            api_command = [*cli, "serve", "--host", API_HOST, "--port", str(plan.ports.api_port)]
            api = _start([*api_command, "--log-level", "warning"], processes, env=env)
            wait_for_health(f"http://{API_HOST}:{plan.ports.api_port}/healthz", api)
            print(_banner(plan, jwt_secret), flush=True)
            watched = {"temporal server": server, "worker": worker, "API": api}
            while not stopping.wait(timeout=1):
                for name, process in watched.items():
                    if process.poll() is not None:
                        print(f"{name} exited with {process.returncode}; stopping", flush=True)
                        return 1
            return 0
        finally:
            stop_in_order(processes)
            print("stopped", flush=True)


def _start(
    command: list[str],
    processes: list[subprocess.Popen[bytes]],
    *,
    env: dict[str, str] | None = None,
    stdout: IO[bytes] | None = None,
) -> subprocess.Popen[bytes]:
    """Start a child; the newest goes first in `processes`, so stopping runs in reverse start order.

    Each child gets a session of its own: Ctrl-C in the terminal reaches only this process, which then
    stops the children in order, instead of all of them at once (the server must outlive the worker)."""
    process = subprocess.Popen(
        command,
        env=env,
        stdout=stdout,
        stderr=subprocess.STDOUT if stdout else None,
        start_new_session=True,
    )
    processes.insert(0, process)
    return process


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
