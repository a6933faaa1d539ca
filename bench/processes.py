"""The processes a chaos run plays with: the Temporal dev server, the workers and the API processes
(`bench.supervisor` kills them).

All are real child processes, each in a session of its own so that a signal meant for the run (Ctrl-C)
does not reach them behind the supervisor's back. The worker is `python worker.py` and the API `refund-desk
serve`, configured only through the environment, exactly as an operator runs them; the dev server persists
to a SQLite file, so killing it and starting it again on the same file and port is a server restart, not a
new server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from starter.binaries import tool_path
from starter.desk import connect
from starter.desk.settings import TemporalSettings
from workflows.search_attributes import REGISTRATION

ROOT = Path(__file__).resolve().parent.parent
"""The repository: the worker runs from here, as `python worker.py`."""


def free_port() -> int:
    """A loopback port nobody listens on right now (the dev server binds it a moment later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _stop(process: subprocess.Popen[bytes], sig: signal.Signals, grace: float) -> int:
    """Send `sig`, wait up to `grace` seconds, then SIGKILL; the exit code (negative for a signal)."""
    if process.poll() is None:
        process.send_signal(sig)
    try:
        return process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


@dataclass
class DevServer:
    """`temporal server start-dev` on a fixed loopback port and a SQLite file that outlives the process.

    The flags are `starter.local.run.dev_server_command`'s (the search attributes included), with the web
    UI off: a chaos run has nobody looking at it and one port fewer to collide on."""

    db_file: Path
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def command(self) -> list[str]:
        command = [
            tool_path("temporal"),
            "server",
            "start-dev",
            "--db-filename",
            str(self.db_file),
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--headless",
            "--log-level",
            "warn",
        ]
        for name, kind in REGISTRATION.items():
            command += ["--search-attribute", f"{name}={kind}"]
        return command

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.command(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    async def ready(self, seconds: float = 60) -> None:
        """Until the frontend answers a client's system-info call (what `connect` asks first)."""
        deadline = time.monotonic() + seconds
        settings = TemporalSettings(address=self.address)
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"the dev server exited with {self.process.returncode}: see {self.log}")
            try:
                await connect(settings)
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    async def kill(self) -> None:
        """SIGKILL: no chance to flush or say goodbye; whatever it acknowledged must be in the file."""
        if self.process is not None:
            await asyncio.to_thread(_stop, self.process, signal.SIGKILL, 10)

    async def stop(self) -> None:
        if self.process is not None:
            await asyncio.to_thread(_stop, self.process, signal.SIGTERM, 20)


@dataclass
class WorkerProcess:
    """`python worker.py` (or another worker's `arguments`), configured only through its environment: the
    run's own process environment, less the names in `unset`, plus `environment`."""

    environment: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    arguments: tuple[str, ...] = ("worker.py",)
    unset: tuple[str, ...] = ()
    """Names of the run's environment the process must not inherit (a metrics port two workers on one
    machine cannot both bind, say)."""

    def start(self) -> None:
        inherited = {name: value for name, value in os.environ.items() if name not in self.unset}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, *self.arguments],
                cwd=ROOT,
                env={**inherited, **self.environment},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def exited(self) -> int | None:
        """The exit code if the worker is gone (without us killing it), else None."""
        return None if self.process is None else self.process.poll()

    async def kill(self) -> None:
        if self.process is not None:
            await asyncio.to_thread(_stop, self.process, signal.SIGKILL, 10)

    async def stop(self) -> None:
        """SIGTERM: the worker finishes its in-flight tasks (worker.py's clean shutdown)."""
        if self.process is not None:
            await asyncio.to_thread(_stop, self.process, signal.SIGTERM, 30)


def serve_arguments(port: int) -> tuple[str, ...]:
    """`refund-desk serve` on a loopback port, as `python -m starter.cli` runs it (the console script's
    entry point) with uvicorn's warnings only."""
    address = ("--host", "127.0.0.1", "--port", str(port))
    return ("-m", "starter.cli", "serve", *address, "--log-level", "warning")


@dataclass
class ApiProcess(WorkerProcess):
    """An API process (`refund-desk serve`) on its own loopback port, configured through its environment
    like the worker; `name` tells it apart in the logs and the run's report."""

    port: int = 0
    name: str = "api"
    profile: str = ""
    """The policy it files under (`bench.scenarios.PROFILES`): its environment sets it."""

    def __post_init__(self) -> None:
        self.arguments = serve_arguments(self.port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def ready(self, seconds: float = 120) -> None:
        """Until `/healthz` answers 200 (the ledger and Temporal both reached from the process)."""
        deadline = time.monotonic() + seconds
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as probe:
            while True:
                code = self.exited()
                if code is not None:
                    raise RuntimeError(f"the API process {self.name} exited with {code}: see {self.log}")
                with contextlib.suppress(httpx.TransportError):
                    if (await probe.get("/healthz")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the API process {self.name} never became healthy: see {self.log}")
                await asyncio.sleep(0.2)
