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

import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.patches import DECIDE_FROM_WHAT_WOKE


MIN_TIMER = timedelta(milliseconds=1)
"""The shortest timer a wait arms: a wait for an instant that has passed still arms one, so that the run's
commands never depend on what its clock says (a timer, whatever `workflow.now()` reads)."""


class WakeClock:
    """`_has_come()`, `_now()` and `_wait_until()`: a run decides that an instant has come because a timer
    set for it fired, never because `workflow.now()` says so (it may be a stale clock)."""

    _woke_at: datetime | None = None
    """The latest instant a fired timer of this run was set for: that instant has certainly come."""
    _continue_requested: bool = False
    _decides_from_wakes: bool | None = None
    """Whether this run decides from what woke its waits (`DECIDE_FROM_WHAT_WOKE`): asked once per run."""

    def _deciding_from_wakes(self) -> bool:
        if self._decides_from_wakes is None:
            self._decides_from_wakes = workflow.patched(DECIDE_FROM_WHAT_WOKE)
        return self._decides_from_wakes

    def _has_come(self, instant: datetime) -> bool:
        """Whether the run may act on `instant` having come: once a timer set for it, or for later, has
        fired. Complaints started before this decide by the clock, as they recorded."""
        if self._deciding_from_wakes():
            return self._woke_at is not None and self._woke_at >= instant
        return workflow.now() >= instant

    def _now(self) -> datetime:
        """`workflow.now()`, but never before an instant a fired timer has shown to have come: the instant
        the complaint records for what it does."""
        now = workflow.now()
        return now if self._woke_at is None or self._woke_at <= now else self._woke_at

    async def _wait_until(
        self, when: datetime, condition: Callable[[], bool], *, or_continue: bool = False
    ) -> bool:
        """A durable timer that a condition can cut short; returns whether the condition holds. With
        `or_continue`, a request to continue as new cuts it short too (the caller then continues). When the
        timer fires, `when` has come: `_has_come(when)` and `_now()` say so from then on. The timer is armed
        whatever the clock says (at least `MIN_TIMER`), unless the condition holds already."""

        def wake() -> bool:
            return condition() or (or_continue and self._continue_requested)

        if not self._deciding_from_wakes():
            remaining = when - workflow.now()
            if remaining > timedelta(0):
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(wake, timeout=remaining)
            return condition()
        if wake():
            return condition()
        try:
            await workflow.wait_condition(wake, timeout=max(when - workflow.now(), MIN_TIMER))
        except TimeoutError:
            self._woke_at = when if self._woke_at is None else max(self._woke_at, when)
        return condition()
