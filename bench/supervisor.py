"""The chaos run's supervisor: SIGKILLs a worker at random intervals and starts a new one at once, SIGKILLs
an API process at random intervals and starts it again after a short pause, and restarts the dev server
once when asked.

A process that exits on its own is started again too, and counted apart: that is not chaos the run made,
it is something the process did. A worker or an API process connects to Temporal as it starts and exits if
nobody answers, which would count as an exit of its own; so no process is killed or started from the
moment the server restart is asked until the server is back, and the restart waits until the last process
started has had `quiet_before_restart` seconds to connect.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.processes import ApiProcess, DevServer, WorkerProcess


@dataclass
class Supervisor:
    server: DevServer
    workers: list[WorkerProcess]
    rng: random.Random
    kill_every: tuple[float, float]
    say: Callable[[str], None]
    apis: list[ApiProcess] = field(default_factory=list)
    api_kill_every: tuple[float, float] = (5.0, 15.0)
    api_pause: tuple[float, float] = (0.5, 2.0)
    """How long a killed API process stays down before it is started again, seconds."""
    kills: int = 0
    """Worker kills (SIGKILL)."""
    api_kills: int = 0
    unexpected_worker_exits: list[int] = field(default_factory=list)
    unexpected_api_exits: list[int] = field(default_factory=list)
    server_signal: str = "kill"
    """How the one server restart stops it: "kill" (SIGKILL) or "term" (a clean stop)."""
    server_restarts: int = 0
    server_down_seconds: float = 0.0
    quiet_before_restart: float = 10.0
    """Seconds since the last process start before the server is stopped: time to import and connect."""
    _last_start: float = 0.0
    _restarting: asyncio.Task[None] | None = None
    _down: set[int] = field(default_factory=set)
    """The API processes (by index) killed and not yet started again."""
    _pending: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def worker_starts(self) -> int:
        return sum(w.starts for w in self.workers)

    @property
    def api_starts(self) -> int:
        return sum(a.starts for a in self.apis)

    async def run(self, stop: asyncio.Event) -> None:
        """The kill loop, until `stop` is set. Ticks every 0.1 s so a process that died by itself is replaced
        as fast as a killed one."""
        next_kill = time.monotonic() + self.rng.uniform(*self.kill_every)
        # Drawn only with API processes (and a worker's index only among several), so that a seed kills
        # the one worker of a single run at the times it always did.
        next_api_kill = time.monotonic() + self.rng.uniform(*self.api_kill_every) if self.apis else 0.0
        while not stop.is_set():
            now = time.monotonic()
            if self._server_restarting():
                pass  # no kill and no start while the server restart is under way: the module's docstring
            elif self._replace_exited():
                pass
            elif now >= next_kill:
                await self._kill_a_worker()
                next_kill = time.monotonic() + self.rng.uniform(*self.kill_every)
            elif self.apis and now >= next_api_kill:
                await self._kill_an_api()
                next_api_kill = time.monotonic() + self.rng.uniform(*self.api_kill_every)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.1)
        await asyncio.gather(*self._pending, return_exceptions=True)

    def _replace_exited(self) -> bool:
        """Start again each process that exited by itself; whether there was one."""
        found = False
        for n, worker in enumerate(self.workers):
            code = worker.exited()
            if code is not None:
                self.unexpected_worker_exits.append(code)
                self.say(f"worker {n + 1} exited by itself with {code}; starting another")
                self._start(worker)
                found = True
        for n, api in enumerate(self.apis):
            code = api.exited()
            if code is not None and n not in self._down:
                self.unexpected_api_exits.append(code)
                self.say(f"API process {api.name} exited by itself with {code}; starting it again")
                self._start(api)
                found = True
        return found

    async def _kill_a_worker(self) -> None:
        n = self.rng.randrange(len(self.workers)) if len(self.workers) > 1 else 0
        await self.workers[n].kill()
        self.kills += 1
        self._start(self.workers[n])
        which = f"worker {n + 1} of {len(self.workers)}" if len(self.workers) > 1 else "worker"
        self.say(f"kill {self.kills}: {which} SIGKILLed and restarted")

    async def _kill_an_api(self) -> None:
        up = [n for n in range(len(self.apis)) if n not in self._down]
        if not up:
            return
        n = self.rng.choice(up)
        self._down.add(n)
        await self.apis[n].kill()
        self.api_kills += 1
        pause = self.rng.uniform(*self.api_pause)
        self.say(f"API kill {self.api_kills}: {self.apis[n].name} SIGKILLed, back in {pause:.1f} s")
        task = asyncio.create_task(self._start_api_after(n, pause))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _start_api_after(self, n: int, pause: float) -> None:
        await asyncio.sleep(pause)
        if self._restarting is not None:
            await self._restarting  # the process connects to Temporal as it starts
        self._start(self.apis[n])
        self._down.discard(n)

    def _start(self, process: WorkerProcess) -> None:
        process.start()
        self._last_start = time.monotonic()

    def _server_restarting(self) -> bool:
        return self._restarting is not None and not self._restarting.done()

    def restart_server_soon(self) -> None:
        """Start the one server restart in the background (the kill loop pauses until the server is back)."""
        if self._restarting is None:
            self._restarting = asyncio.create_task(self._restart_server())

    async def _restart_server(self) -> None:
        # Nothing starts once the restart is asked (the kill loop and the API restarts wait for it).
        quiet_left = self._last_start + self.quiet_before_restart - time.monotonic()
        if quiet_left > 0:
            await asyncio.sleep(quiet_left)
        began = time.monotonic()
        self.say(f"dev server: SIG{self.server_signal.upper()}")
        await (self.server.kill() if self.server_signal == "kill" else self.server.stop())
        self.server.start()
        await self.server.ready()
        self.server_down_seconds = time.monotonic() - began
        self.server_restarts += 1
        self.say(f"dev server back on the same file and port after {self.server_down_seconds:.1f} s")

    async def settle(self) -> None:
        """Wait for a server restart and API restarts still under way, so the checks run against processes
        that are up."""
        if self._restarting is not None:
            await self._restarting
        await asyncio.gather(*self._pending, return_exceptions=True)
