"""`make run`: the whole system on one machine, on the embedded defaults.

First it checks, before it writes or starts anything: every setting it reads, and that the ports it
listens on (Temporal's frontend, the web UI, the API, the mail sink) are free; a problem is one `error: ...`
line and exit status 1. Then it applies the ledger migrations, writes the policy in force to
`<data dir>/policy.json` (for the CLI in other shells), starts the Temporal dev server (persistent in
`<data dir>/temporal.db`, web UI on :8233, the complaints' search attributes registered), the local SMTP
sink (:8025, saving every email in `<data dir>/mail/`) unless REFUND_DESK_SMTP_URL names a real server, the
worker (whose dispatcher sends the emails, with links to the API) and the API (:8000), waits until
`/healthz` answers, then prints the URLs, where mail lands, the exports a second shell needs, the policy
windows and a development token per role. Ctrl-C or SIGTERM stops the API first, then the worker (it
finishes in-flight tasks), then the server, then the sink. Restarting keeps every complaint: all state lives
in the data folder, `.data/` in the checkout (`ledger.paths.data_dir`).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from dispatch.mail_sink import MAIL_FOLDER, MailSink
from ledger.database_url import checked_database_url, upgrade_schema
from ledger.paths import DATA_DIR_ENV, data_dir
from starter.api.settings import ApiSettings
from starter.binaries import tool_path
from starter.desk import connect
from starter.desk.failures import failure_of
from starter.desk.settings import (
    SettingsError,
    TemporalSettings,
    save_policy,
)
from starter.local.banner import banner
from starter.local.preflight import API_HOST, Plan, port_problems, read_plan, refuse
from starter.telemetry.logs import configure_process_logging
from starter.telemetry.runtime import METRICS_ADDRESS_ENV
from starter.web.sessions import CODEC_PATH
from workflows.search_attributes import REGISTRATION


def dev_server_command(
    ip: str = "127.0.0.1",
    port: int = 7233,
    ui_port: int = 8233,
    data: Path | None = None,
    *,
    codec_endpoint: str | None = None,
) -> list[str]:
    """The dev server's command line; its web UI decodes payloads through `codec_endpoint` (the API's
    `/codec`). The dev server has no flag to make its UI send cookies with those calls: support ticks
    "Include cross-origin credentials" in the UI's Codec Server settings (docs/encryption.md)."""
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
    if codec_endpoint is not None:
        command += ["--ui-codec-endpoint", codec_endpoint]
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


def prepare(plan: Plan) -> str:
    """The data folder, the JWT secret (made on the first run) and `policy.json`; returns the secret."""
    plan.data.mkdir(parents=True, exist_ok=True)
    jwt_secret = ensure_jwt_secret(plan.api)
    save_policy(plan.policy)
    return jwt_secret


CODEC_ORIGINS_ENV = "REFUND_DESK_CODEC_CORS_ORIGINS"
SMTP_URL_ENV = "REFUND_DESK_SMTP_URL"
PUBLIC_URL_ENV = "REFUND_DESK_PUBLIC_URL"


def web_ui_origins(ui_port: int) -> str:
    """The web UI's origins on the port this run gives it, so its calls to `/codec` pass CORS wherever
    TEMPORAL_UI_PORT moved it."""
    return f"http://localhost:{ui_port},http://127.0.0.1:{ui_port}"


def start_mail_sink(plan: Plan) -> MailSink | None:
    """The local SMTP sink, saving into `<data dir>/mail`, started; None when REFUND_DESK_SMTP_URL sends
    mail to a real server. `OSError` when its port cannot be had."""
    if not plan.mail_sink:
        return None
    return MailSink(plan.ports.mail_sink_port, plan.data / MAIL_FOLDER).start()


def worker_metrics_address(plan: Plan) -> str:
    """Where the worker serves the Temporal SDK's metrics: REFUND_DESK_WORKER_METRICS_ADDRESS if set (its
    port checked free with the others), else a loopback port free now, so the banner can print it."""
    if plan.worker_metrics.metrics_address is not None:
        return plan.worker_metrics.metrics_address
    with socket.socket() as sock:
        sock.bind((API_HOST, 0))
        port: int = sock.getsockname()[1]
    return f"{API_HOST}:{port}"


def dispatch_environment(plan: Plan, sink: MailSink | None) -> dict[str, str]:
    """What the worker's dispatcher needs beside the JWT secret (which signs the links in customers'
    emails): the sink's URL, when there is one, and the API's URL for those links, unless set already."""
    env = {PUBLIC_URL_ENV: os.environ.get(PUBLIC_URL_ENV) or f"http://{API_HOST}:{plan.ports.api_port}"}
    if sink is not None:
        env[SMTP_URL_ENV] = sink.url
    return env


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
    try:
        upgrade_schema(checked_database_url())
    except Exception as error:
        failure = failure_of(error)
        if failure is None:
            raise
        cause = error.orig if isinstance(error, DBAPIError) else error
        return refuse(f"{failure.code}: {failure.message} (the ledger's migrations: {cause})")
    print(
        f"ledger ready: {make_url(plan.ledger.database_url).render_as_string(hide_password=True)}", flush=True
    )
    return serve(plan, jwt_secret)


def serve(plan: Plan, jwt_secret: str) -> int:
    """The sink, the server, the worker and the API until Ctrl-C, SIGTERM or one of them exits; stops them
    in order, the sink last."""
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    try:
        sink = start_mail_sink(plan)
    except OSError as error:  # its port, taken since the checks
        return refuse(f"the mail sink cannot listen on port {plan.ports.mail_sink_port}: {error.strerror}")
    try:
        return _serve(plan, jwt_secret, sink, stopping)
    finally:
        if sink is not None:
            sink.stop()  # after the worker, which may be sending to it


def _serve(plan: Plan, jwt_secret: str, sink: MailSink | None, stopping: threading.Event) -> int:
    cli = [sys.executable, "-m", "starter.cli"]
    env = {
        **os.environ,
        "REFUND_DESK_JWT_SECRET": jwt_secret,
        DATA_DIR_ENV: str(plan.data),
        CODEC_ORIGINS_ENV: os.environ.get(CODEC_ORIGINS_ENV) or web_ui_origins(plan.ports.ui_port),
        **dispatch_environment(plan, sink),
        METRICS_ADDRESS_ENV: worker_metrics_address(plan),
    }
    # The secret is handed over as REFUND_DESK_JWT_SECRET; beside it, a _FILE variant is a conflict.
    env.pop("REFUND_DESK_JWT_SECRET_FILE", None)
    processes: list[subprocess.Popen[bytes]] = []
    with (plan.data / "temporal.log").open("ab") as server_log:
        codec = f"http://{API_HOST}:{plan.ports.api_port}{CODEC_PATH}"
        command = dev_server_command(plan.ip, plan.port, plan.ports.ui_port, plan.data, codec_endpoint=codec)
        server = _start(command, processes, stdout=server_log)
        try:
            asyncio.run(wait_for_temporal(plan.temporal))
            worker = _start([*cli, "worker"], processes, env=env)
            api_command = [*cli, "serve", "--host", API_HOST, "--port", str(plan.ports.api_port)]
            api = _start([*api_command, "--log-level", "warning"], processes, env=env)
            wait_for_health(f"http://{API_HOST}:{plan.ports.api_port}/healthz", api)
            sink_port = sink.port if sink is not None else None
            print(banner(plan, jwt_secret, sink_port, env[METRICS_ADDRESS_ENV]), flush=True)
            watched = {"temporal server": server, "worker": worker, "API": api}
            while not stopping.wait(timeout=1):
                for name, process in watched.items():
                    if process.poll() is not None:
                        print(f"{name} exited with {process.returncode}; stopping", flush=True)
                        return 1
            return 0
        finally:
            # Time for the worker's in-flight activities and deliveries (REFUND_DESK_WORKER_SHUTDOWN_GRACE).
            stop_in_order(processes, grace=plan.temporal.worker_shutdown_grace.total_seconds() + 10)
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
    """Its own log lines (the mail sink's, the Temporal client's) as JSON on stderr, as its children's
    are: they read the same REFUND_DESK_LOG_* settings from the environment they inherit."""
    try:
        configure_process_logging()
    except SettingsError as error:
        sys.exit(refuse(str(error)))
    sys.exit(run())
