"""The chaos run in its scaled shape (`python -m bench.chaos --scaled`), small: the ledger on a throwaway
PostgreSQL cluster, three `python worker.py` on one task queue, and six API processes (`refund-desk serve`,
two for each policy the scenarios file under) that the driver talks to over HTTP with an idempotency key on
every POST; a random worker and a random API process SIGKILLed over and over, and the dev server once.

The run's own checks are the assertions: nothing lost, no violation (money at most once per order and as
each scenario expects, balances, audit trails, every notice delivered, every history replayed), and the
chaos it claims to have made counted.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from bench.scenarios import HISTORY_BOUND, PATH_BY_NAME, PROFILES, Windows

ROOT = Path(__file__).resolve().parent.parent
SMALL_SCALED = [
    "--scaled",
    *("--complaints", "50", "--seed", "11", "--timeout", "300", "--queries-per-second", "5"),
    *("--kill-every", "6..10", "--min-kills", "2", "--api-kill-every", "5..10", "--min-api-kills", "2"),
]
"""Fifty scenarios (every path two or three times); a worker kill every 6-10 s and an API kill every
5-10 s, at least two of each; the one server restart. The drive's budget is generous (300 s, the run takes
about a minute on a quiet machine) so that a busy machine slows the run rather than failing it."""


async def test_r16_a_small_scaled_chaos_run_over_http_loses_nothing_and_moves_money_at_most_once(
    tmp_path: Path,
) -> None:
    """R16 with several workers and API processes sharing one PostgreSQL ledger: whatever process dies,
    a retried request (the same idempotency key, another process) acts at most once."""
    workdir = tmp_path / "chaos"
    command = [sys.executable, "-m", "bench.chaos", *SMALL_SCALED, "--workdir", str(workdir)]
    run = await asyncio.to_thread(
        subprocess.run, command, cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    summary = json.loads((workdir / "chaos.json").read_text())

    assert summary["violations"] == [], run.stdout[-4000:]
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert summary["started"] == summary["finished"] == summary["scenarios"] == 50
    assert summary["lost"] == 0 and not summary["timed_out"]
    assert summary["deployment"] == {
        "ledger": "postgresql",
        "workers": 3,
        "api_processes": 6,
        "api_policies": list(PROFILES),
    }
    assert summary["worker_kills"] >= 2 and summary["api_kills"] >= 2 and summary["server_restarts"] == 1
    assert summary["worker_exits_by_itself"] == [] and summary["api_exits_by_itself"] == []
    assert summary["api_starts"] == 6 + summary["api_kills"]
    for name, figures in summary["by_kind"].items():
        assert figures["count"] >= 2 and figures["as_expected"] == figures["count"], (name, figures)
    expected = summary["by_kind"].items()
    assert summary["refunds"] == sum(f["count"] for n, f in expected if PATH_BY_NAME[n].expect.refund)
    assert summary["replacements"] == sum(
        f["count"] for n, f in expected if PATH_BY_NAME[n].expect.replacement_sku
    )
    assert summary["max_refunds_per_order"] == summary["max_refunds_per_complaint_or_activation"] == 1
    assert summary["max_replacements_per_complaint"] == 1
    assert summary["unreplayable"] == 0
    assert summary["histories_replayed"] == summary["started"] + summary["runs_continued_as_new"]
    assert summary["notices"]["emails_sent"] > 0 and summary["notices"]["webhooks_sent"] > 0
    http = summary["http"]
    assert http["requests"] > 50 * 3 and "500" not in http["by_status"], http
    assert "deployment       ledger postgresql, 3 workers, 6 API processes" in run.stdout
    assert "api kills        " in run.stdout and "violations       0" in run.stdout


def test_the_scaled_run_files_every_path_under_one_of_three_policies() -> None:
    """An API process files under its environment's policy, so the scaled run has processes for three:
    every path's policy is one of them, and the continuing path's bound is the short profile's."""
    windows = Windows(short=timedelta(seconds=4), long=timedelta(seconds=300), profiles=True)
    profiles = {windows.profile(name) for name in PROFILES}
    continuing = windows.policy(rectify_window=True).model_copy(
        update={"history_events_per_run": HISTORY_BOUND}
    )

    assert len(profiles) == 3
    assert continuing == windows.profile("short")
    assert windows.policy(access_response_window=True) == windows.profile("access")
    assert windows.profile("access").rectify_window == timedelta(seconds=300)
    assert windows.policy() == windows.profile("long")
