"""The clock a complaint decides by: what woke its wait, never a clock a query may have seen stale.

Temporal's Core SDK answers a query that a worker picks up after newer events exist (a timer fired while
no worker polled) by applying those events with the clock of the task before. A workflow that then asked
`workflow.now()` whether its deadline had come would conclude it had not, and arm another timer; with the
sticky cache on, those commands go out with the next real task, where a replay decides otherwise, and the
history can never be replayed (docs/upstream/query-clock.md, tests/test_query_clock.py).

So a complaint's wait remembers what woke it. When the timer fires, the instant it was set for has come,
whatever `workflow.now()` says: `_now()` is the later of the two, and every decision after a wait, and
every instant the complaint records, reads it. A condition that woke the wait is the condition's to tell.
Complaints started before this replay without it (`workflows.patches.DECIDE_FROM_WHAT_WOKE`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.patches import DECIDE_FROM_WHAT_WOKE


class WakeClock:
    """`_now()` and `_wait_until()` for a workflow whose decisions after a timer follow from the timer."""

    _woke_at: datetime | None = None
    """The latest instant a fired timer of this run was set for: that instant has certainly come."""
    _continue_requested: bool = False

    def _now(self) -> datetime:
        """`workflow.now()`, but never before an instant a fired timer has shown to have come."""
        now = workflow.now()
        return now if self._woke_at is None or self._woke_at <= now else self._woke_at

    async def _wait_until(
        self, when: datetime, condition: Callable[[], bool], *, or_continue: bool = False
    ) -> bool:
        """A durable timer that a condition can cut short; returns whether the condition holds. With
        `or_continue`, a request to continue as new cuts it short too (the caller then continues). When the
        timer fires, `when` has come, and `_now()` says so from then on."""
        remaining = when - self._now()
        if remaining > timedelta(0):
            wake = (lambda: condition() or self._continue_requested) if or_continue else condition
            try:
                await workflow.wait_condition(wake, timeout=remaining)
            except TimeoutError:
                if workflow.patched(DECIDE_FROM_WHAT_WOKE):
                    self._woke_at = when
        return condition()
