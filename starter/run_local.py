"""`make run`: the whole system on one machine, on the embedded defaults.

Applies the ledger migrations, starts the Temporal dev server (persistent in `.data/temporal.db`, web UI on
:8233, the complaints' search attributes registered), the worker and the API (:8000), waits until `/healthz`
answers, then prints the URLs and a development token per role. Ctrl-C or SIGTERM stops the API first, then
the worker (it finishes in-flight tasks), then the server. Restarting keeps every complaint: all state lives
in `.data/`.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import IO

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.migrate import upgrade_url
from ledger.settings import LedgerSettings
from policy.models import Role
from starter.api.auth import CALLER_ROLES, mint_token
from starter.api.settings import ApiSettings
from starter.binaries import tool_path
from starter.desk import connect
from starter.desk.settings import TemporalSettings
from workflows.search_attributes import REGISTRATION

DATA = Path(".data")
DEV_TOKEN_TTL = timedelta(hours=24)
DEV_SUBS = {Role.BACKEND: "shop", Role.SUPPORT: "alice", Role.CUSTOMER: "cust-1"}


class LocalPorts(BaseSettings):
    """Where `make run` listens besides Temporal (whose port comes from TEMPORAL_ADDRESS)."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    api_port: int = Field(default=8000, validation_alias=AliasChoices("REFUND_DESK_API_PORT", "api_port"))
    ui_port: int = Field(default=8233, validation_alias=AliasChoices("TEMPORAL_UI_PORT", "ui_port"))


def temporal_endpoint(address: str) -> tuple[str, int]:
    """The dev server's bind address from TEMPORAL_ADDRESS, so the worker and the API find it there."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise SystemExit(f"TEMPORAL_ADDRESS must be host:port, not {address!r}")
    return ("127.0.0.1" if host == "localhost" else host), int(port)


def dev_server_command(ip: str = "127.0.0.1", port: int = 7233, ui_port: int = 8233) -> list[str]:
    command = [
        tool_path("temporal"),
        "server",
        "start-dev",
        "--db-filename",
        str(DATA / "temporal.db"),
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
    """The development secret: REFUND_DESK_JWT_SECRET if set, else `.data/jwt.secret`, made on first run
    (so tokens printed yesterday still work today)."""
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


def _banner(temporal: TemporalSettings, ports: LocalPorts, jwt_secret: str) -> str:
    api = f"http://127.0.0.1:{ports.api_port}"
    tokens = "\n".join(
        f"  export {role.value.upper()}_TOKEN={mint_token(jwt_secret, role, DEV_SUBS[role], DEV_TOKEN_TTL)}"
        for role in CALLER_ROLES
    )
    return (
        "\nRefund Desk is running:\n"
        f"  API        {api}   (docs {api}/docs, health {api}/healthz)\n"
        f"  Web UI     http://127.0.0.1:{ports.ui_port}\n"
        f"  Temporal   {temporal.address} (namespace {temporal.namespace})\n"
        f"  Worker     task queue {temporal.task_queue}\n"
        f"\nDevelopment tokens (24 h; the customer is {DEV_SUBS[Role.CUSTOMER]}):\n{tokens}\n"
        "More: .venv/bin/refund-desk token --role customer --sub <id>\n"
        "Ctrl-C stops everything; state stays in .data/.\n"
    )


def run() -> int:
    DATA.mkdir(exist_ok=True)
    ledger = LedgerSettings()
    temporal = TemporalSettings()
    ports = LocalPorts()
    jwt_secret = ensure_jwt_secret(ApiSettings())
    ip, port = temporal_endpoint(temporal.address)
    asyncio.run(upgrade_url(ledger.database_url))
    print(f"ledger ready: {ledger.database_url}", flush=True)

    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())

    cli = [sys.executable, "-m", "starter.cli"]
    env = {**os.environ, "REFUND_DESK_JWT_SECRET": jwt_secret}
    processes: list[subprocess.Popen[bytes]] = []
    with (DATA / "temporal.log").open("ab") as server_log:
        server = _start(dev_server_command(ip, port, ports.ui_port), processes, stdout=server_log)
        try:
            asyncio.run(wait_for_temporal(temporal))
            worker = _start([*cli, "worker"], processes, env=env)
            api_command = [*cli, "serve", "--host", "127.0.0.1", "--port", str(ports.api_port)]
            api = _start([*api_command, "--log-level", "warning"], processes, env=env)
            wait_for_health(f"http://127.0.0.1:{ports.api_port}/healthz", api)
            print(_banner(temporal, ports, jwt_secret), flush=True)
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
