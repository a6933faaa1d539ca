"""The processes a chaos run plays with: the Temporal dev server, the worker, and the supervisor that kills
them.

Both are real child processes, each in a session of its own so that a signal meant for the run (Ctrl-C)
does not reach them behind the supervisor's back. The worker is `python worker.py`, configured only through
the environment, exactly as an operator runs it; the dev server persists to a SQLite file, so killing it
and starting it again on the same file and port is a server restart, not a new server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

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
    """`python worker.py` (or another worker's `arguments`), configured only through its environment."""

    environment: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    arguments: tuple[str, ...] = ("worker.py",)

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, *self.arguments],
                cwd=ROOT,
                env={**os.environ, **self.environment},
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


@dataclass
class Supervisor:
    """Kills the worker with SIGKILL at random intervals and starts a new one at once; restarts the dev
    server when asked. A worker that exits on its own is started again too, and counted apart: that is
    not chaos the run made, it is something the worker did."""

    server: DevServer
    worker: WorkerProcess
    rng: random.Random
    kill_every: tuple[float, float]
    say: Callable[[str], None]
    kills: int = 0
    unexpected_worker_exits: list[int] = field(default_factory=list)
    server_signal: str = "kill"
    """How the one server restart stops it: "kill" (SIGKILL) or "term" (a clean stop)."""
    server_restarts: int = 0
    server_down_seconds: float = 0.0
    _restarting: asyncio.Task[None] | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """The kill loop, until `stop` is set. Ticks every 0.1 s so a worker that died by itself is replaced
        as fast as a killed one."""
        next_kill = time.monotonic() + self.rng.uniform(*self.kill_every)
        while not stop.is_set():
            code = self.worker.exited()
            if code is not None:
                self.unexpected_worker_exits.append(code)
                self.say(f"worker exited by itself with {code}; starting another")
                self.worker.start()
            elif time.monotonic() >= next_kill:
                await self.worker.kill()
                self.kills += 1
                self.worker.start()
                self.say(f"kill {self.kills}: worker SIGKILLed and restarted")
                next_kill = time.monotonic() + self.rng.uniform(*self.kill_every)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.1)

    def restart_server_soon(self) -> None:
        """Start the one server restart in the background (the kill loop keeps going meanwhile)."""
        if self._restarting is None:
            self._restarting = asyncio.create_task(self._restart_server())

    async def _restart_server(self) -> None:
        began = time.monotonic()
        self.say(f"dev server: SIG{self.server_signal.upper()}")
        await (self.server.kill() if self.server_signal == "kill" else self.server.stop())
        self.server.start()
        await self.server.ready()
        self.server_down_seconds = time.monotonic() - began
        self.server_restarts += 1
        self.say(f"dev server back on the same file and port after {self.server_down_seconds:.1f} s")

    async def settle(self) -> None:
        """Wait for a server restart still under way, so the checks run against a server that is up."""
        if self._restarting is not None:
            await self._restarting
