"""`make run`: the whole system on one machine, on the embedded defaults.

Applies the ledger migrations, starts the Temporal dev server (persistent in `.data/temporal.db`, web UI on
:8233, the complaints' search attributes registered) and the worker, then waits. Ctrl-C or SIGTERM stops the
worker first (it finishes in-flight tasks) and the server after. Restarting keeps every complaint.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from ledger.migrate import upgrade_url
from ledger.settings import LedgerSettings
from starter.binaries import tool_path
from starter.client import connect
from starter.settings import TemporalSettings
from workflows.search_attributes import REGISTRATION

DATA = Path(".data")


def dev_server_command(port: int = 7233, ui_port: int = 8233) -> list[str]:
    command = [
        tool_path("temporal"),
        "server",
        "start-dev",
        "--db-filename",
        str(DATA / "temporal.db"),
        "--ip",
        "127.0.0.1",
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


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """Worker first (it finishes in-flight tasks), then the server."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def run() -> int:
    DATA.mkdir(exist_ok=True)
    ledger = LedgerSettings()
    temporal = TemporalSettings()
    asyncio.run(upgrade_url(ledger.database_url))
    print(f"ledger ready: {ledger.database_url}", flush=True)

    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())

    processes: list[subprocess.Popen[bytes]] = []
    with (DATA / "temporal.log").open("ab") as server_log:
        server = subprocess.Popen(dev_server_command(), stdout=server_log, stderr=subprocess.STDOUT)
        processes.append(server)
        try:
            asyncio.run(wait_for_temporal(temporal))
            worker = subprocess.Popen([sys.executable, "worker.py"], env=os.environ.copy())
            processes.insert(0, worker)
            print(
                "\nRefund Desk is running:\n"
                f"  Temporal   {temporal.address} (namespace {temporal.namespace})\n"
                "  Web UI     http://127.0.0.1:8233\n"
                f"  Worker     task queue {temporal.task_queue}\n"
                "Ctrl-C stops everything; state stays in .data/.\n",
                flush=True,
            )
            while not stopping.wait(timeout=1):
                for name, process in (("temporal server", server), ("worker", worker)):
                    if process.poll() is not None:
                        print(f"{name} exited with {process.returncode}; stopping", flush=True)
                        return 1
            return 0
        finally:
            _stop(processes)
            print("stopped", flush=True)


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
