"""The benchmarks' own arithmetic: a wrong percentile or a miscounted baseline plan would make every figure
in the README's "Performance" table wrong while the runs still look fine."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import (
    HistoryEvent,
    TimerFiredEventAttributes,
    TimerStartedEventAttributes,
)
from temporalio.client import WorkflowHistory

from bench.baseline import SDK_DEFAULT_CACHE, BarePlan, Timer, bare_worker_options
from bench.report import against, latency_ms, percentile
from bench.targets import UPDATES
from bench.workload import activities_in, plan_of

E = EventType
ROOT = Path(__file__).resolve().parent.parent


def test_percentile_is_a_measured_sample_by_nearest_rank() -> None:
    samples = [0.5, 0.1, 0.4, 0.2, 0.3]
    assert percentile(samples, 50) == 0.3
    assert percentile(samples, 99) == 0.5
    assert percentile(samples, 1) == 0.1
    assert percentile(list(range(1, 101)), 99) == 99
    assert latency_ms([0.010, 0.020, 0.030]) == {
        "count": 3,
        "p50_ms": 20.0,
        "p99_ms": 30.0,
        "mean_ms": 20.0,
        "max_ms": 30.0,
    }


def _event(kind: int, **attributes: object) -> HistoryEvent:
    return HistoryEvent(event_type=kind, **attributes)  # type: ignore[arg-type]


def _timer_started(timer_id: str, seconds: int) -> HistoryEvent:
    attributes = TimerStartedEventAttributes(timer_id=timer_id)
    attributes.start_to_fire_timeout.FromSeconds(seconds)
    return _event(E.EVENT_TYPE_TIMER_STARTED, timer_started_event_attributes=attributes)


def test_the_baseline_plan_counts_activities_where_the_complaint_ran_them() -> None:
    """Two at the start, one and two in the updates, a cancelled wait that is no timer of the plan, then a
    fired 30 s deadline with three after it."""
    activity = _event(E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
    events = [
        _event(E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED),
        activity,
        activity,
        _timer_started("1", 60),
        _event(E.EVENT_TYPE_TIMER_CANCELED),
        _event(E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED),
        activity,
        _event(E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED),
        _event(E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED),
        activity,
        activity,
        _event(E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED),
        _timer_started("2", 30),
        _event(
            E.EVENT_TYPE_TIMER_FIRED, timer_fired_event_attributes=TimerFiredEventAttributes(timer_id="2")
        ),
        activity,
        activity,
        activity,
    ]
    plan = plan_of(WorkflowHistory("wf", events))
    assert plan == BarePlan(at_start=2, per_update=[1, 2], timers=[Timer(seconds=30.0, then=3)])
    assert activities_in(plan) == 8


def test_an_update_the_first_workflow_task_accepts_came_with_the_start() -> None:
    """The project files with update-with-start: the `filed` update is accepted by the first workflow task,
    so the bare lifecycle sends its first update with its start too; an update accepted later did not."""
    task_done = _event(E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
    accepted = _event(E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED)
    completed = _event(E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED)
    activity = _event(E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
    started = _event(E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED)
    with_start = [started, task_done, accepted, activity, activity, task_done, completed]
    later = [started, task_done, activity, task_done, accepted, activity, task_done, completed]

    assert plan_of(WorkflowHistory("wf", with_start)) == BarePlan(
        at_start=0, per_update=[2], update_with_start=True
    )
    assert plan_of(WorkflowHistory("wf", later)) == BarePlan(at_start=1, per_update=[1])


def test_the_bare_worker_runs_with_the_sdks_defaults_unless_a_benchmark_says_otherwise() -> None:
    """The project's own settings (REFUND_DESK_*) never reach the bare worker: a plain Temporal user's worker
    has the SDK's sticky cache."""
    assert SDK_DEFAULT_CACHE == 1000
    assert bare_worker_options({"REFUND_DESK_WORKFLOW_CACHE": "0"}) == {}
    assert bare_worker_options(
        {"BENCH_BARE_WORKFLOW_CACHE": "0", "BENCH_BARE_MAX_CONCURRENT_ACTIVITIES": "7"}
    ) == {
        "max_cached_workflows": 0,
        "max_concurrent_activities": 7,
    }
    assert against(">= 0.6x", True) == ">= 0.6x: met"
    assert against("<= 15 ms", False) == "<= 15 ms: NOT MET"
    assert against("<= 15 ms", None) == "<= 15 ms: not measured"


TINY_TARGETS = [
    *("--lifecycles", "2", "--concurrency", "2", "--deadline", "20", "--choice-window", "1"),
    *("--complaints", "5", "--filing-concurrency", "5", "--gets", "10", "--get-concurrency", "5"),
    *("--timeout", "300"),
]
"""Two lifecycles a side (a 20 s deadline: filing and three updates fit in it on a busy machine), five
complaints filed, read twice each and updated, five bare workflows the same: about 70 s, mostly the
deadlines' waits."""


async def test_a_tiny_targets_run_reports_every_target_against_the_bare_baseline(tmp_path: Path) -> None:
    """`python -m bench.targets` end to end at the smallest size: it runs, fails nothing, and reports each
    of its targets with a value and a verdict, every phase with all its calls. The figures themselves are
    not checked: they are the machine's."""
    command = [sys.executable, "-m", "bench.targets", *TINY_TARGETS]
    environment = {**os.environ, "BENCH_OUT": str(tmp_path)}
    run = await asyncio.to_thread(
        subprocess.run, command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=400
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-3000:]
    document = json.loads((tmp_path / "targets.json").read_text())
    figures = document["figures"]

    assert document["benchmark"] == "targets"
    assert figures["failures"] == []
    assert figures["sticky_cache"]["bare"] == SDK_DEFAULT_CACHE
    assert [t["name"] for t in figures["targets"]] == [
        "lifecycle throughput, project / bare",
        "update p50, API / bare",
        "GET p50",
        "GET p99",
        "filing rate, API / bare",
    ]
    for target in figures["targets"]:
        assert target["value"] > 0 and target["met"] in (True, False), target
    lifecycles = figures["lifecycles"]
    assert lifecycles["problems"] == []
    assert lifecycles["project"]["closed"] == lifecycles["bare"]["closed"] == 2
    calls = {name: (phase["calls"], phase["errors"]) for name, phase in figures["phases"].items()}
    assert calls == {
        "bare starts": (5, {}),
        "API filing (POST)": (5, {}),
        "API reads (GET)": (10, {}),
        "bare updates": (5 * len(UPDATES), {}),
        "API updates": (5 * len(UPDATES), {}),
    }
    labels = [row["label"] for row in document["table"]]
    verdicts = [row["goal"] for row in document["table"] if row["goal"].endswith(("met", "MET"))]
    assert len(verdicts) == 5 and "failed requests" in labels
    assert not (tmp_path / "targets-run").exists(), "the work directory is removed after a run that passed"
