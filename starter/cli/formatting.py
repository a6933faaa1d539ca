"""How the CLI writes what the desk answers: times, money, sizes and clocks as people read them, and the
console every command prints through."""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from rich.console import Console
from rich.table import Table
from rich.text import Text

from policy.models import ComplaintStatus, Money, canonical_amount

NO_VALUE = "—"
"""What a missing time, deadline or clock reads as."""


def time_left(deadline: datetime | None, now: datetime, status: ComplaintStatus) -> str:
    """How long support still has to rectify, to the coarsest two units ("2d 3h", "3h 5m", "4m", "<1m").

    "—" when there is no clock (a final complaint, or no deadline), "paused" while an access request waits
    for the customer (R10 stops the clock), "overdue" once the deadline has passed.
    """
    if deadline is None or status.is_final:
        return NO_VALUE
    if status is ComplaintStatus.AWAITING_ACCESS:
        return "paused"
    return until(deadline, now)


def until(deadline: datetime, now: datetime) -> str:
    """The time from `now` to `deadline` in its two coarsest units, "overdue" once it has passed: the one
    clock format that complaints and activations share."""
    left = deadline - now
    if left <= timedelta(0):
        return "overdue"
    minutes = int(left.total_seconds()) // 60
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m" if minutes else "<1m"


def when(moment: datetime | None) -> str:
    """A time in UTC to the second (short test windows pass in seconds), the same for everyone."""
    if moment is None:
        return NO_VALUE
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def money(value: Money) -> str:
    """`50.00 EUR`: the ledger keeps four decimal places, people read two unless more are used."""
    return f"{canonical_amount(value.amount):f} {value.currency}"


def size(count: int) -> str:
    """A file's size as people read it: `812 B`, `3.4 KiB`, `1.2 MiB`."""
    if count < 1024:
        return f"{count} B"
    if count < 1024 * 1024:
        return f"{count / 1024:.1f} KiB"
    return f"{count / (1024 * 1024):.1f} MiB"


PIPE_WIDTH = 1_000


def console() -> Console:
    """A console made per command, so it sees the stream and width of this invocation (tests swap them).

    Into a pipe (and no COLUMNS) rows are printed whole rather than squeezed into a guessed 80 columns, so
    that `refund-desk complaints list | grep ...` finds ids and statuses unbroken.
    """
    made = Console(highlight=False)
    if not made.is_terminal and "COLUMNS" not in os.environ:
        made.width = PIPE_WIDTH
    return made


def plain(value: object) -> Text:
    """Plain text: ids, notes and reasons are data, never rich markup."""
    return Text(str(value))


def facts_grid(facts: Iterable[tuple[str, str]]) -> Table:
    """Labelled facts, one a line: the label in bold, the value beside it."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    for label, value in facts:
        grid.add_row(plain(label), plain(value))
    return grid
