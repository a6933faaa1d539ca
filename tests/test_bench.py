"""The benchmarks' own arithmetic: a wrong percentile or a miscounted baseline plan would make every figure
in the README's "Performance" table wrong while the runs still look fine."""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import (
    HistoryEvent,
    TimerFiredEventAttributes,
    TimerStartedEventAttributes,
)
from temporalio.client import WorkflowHistory

from bench.baseline import BarePlan, Timer
from bench.report import latency_ms, percentile
from bench.workload import activities_in, plan_of

E = EventType


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
