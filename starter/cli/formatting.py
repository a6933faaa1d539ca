"""How the CLI writes what the desk answers: times, money, sizes and clocks as people read them, statuses
in colour, an event's detail as text, and the console every command prints through.

In a terminal the output fits its width without breaking a word: a table is printed only when each of its
columns can hold its longest word, and a view falls back to one block per row when it cannot. Into a pipe
(no terminal, no COLUMNS) rows are printed whole and without colour, for grep and scripts."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from policy.models import ActivationStatus, ComplaintStatus, Money, canonical_amount

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


Fact = tuple[str, str | Text]
"""A label and its value: plain text, or text already styled (a status)."""


def facts_grid(facts: Iterable[Fact]) -> Table:
    """Labelled facts, one a line: the label in bold, the value beside it, wrapped between its words."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")  # a word wider than the whole column is folded, never cut short
    for label, value in facts:
        grid.add_row(plain(label), value if isinstance(value, Text) else plain(value))
    return grid


STATUS_STYLES: dict[ComplaintStatus | ActivationStatus, str] = {
    ComplaintStatus.UNDER_REVIEW: "yellow",
    ComplaintStatus.AWAITING_ACCESS: "yellow",
    ComplaintStatus.RECTIFYING: "yellow",
    ComplaintStatus.AWAITING_REMEDY_CHOICE: "yellow",
    ComplaintStatus.ESCALATED: "bold yellow",
    ComplaintStatus.RECTIFIED: "green",
    ComplaintStatus.REFUNDED: "green",
    ComplaintStatus.REPLACED: "green",
    ComplaintStatus.REJECTED: "red",
    ComplaintStatus.ACCESS_REFUSED: "red",
    ComplaintStatus.WITHDRAWN: "dim",
    ActivationStatus.WAITING_FOR_SMS: "yellow",
    ActivationStatus.COMPLETED: "green",
    ActivationStatus.CANCELED: "dim",
}
"""Open and waiting: yellow (escalated, past its deadline, in bold); ended as the customer asked: green;
refused: red; given up: dim."""


def status_text(status: ComplaintStatus | ActivationStatus) -> Text:
    """A status in its colour; the colour is dropped where the console has none (a pipe)."""
    return Text(status.value, style=STATUS_STYLES[status])


def unbroken(table: Table) -> Table:
    """`table` with each column at least as wide as its longest word (its longest value, for a column that
    does not wrap), so that rich wraps a cell only between words."""
    for column in table.columns:
        values = [str(column.header), *(_plain_of(cell) for cell in column.cells)]
        if column.no_wrap:
            longest = max(cell_len(value) for value in values)
        else:
            longest = max((cell_len(word) for value in values for word in value.split()), default=1)
        column.min_width = max(column.min_width or 0, longest)
    return table


def _plain_of(cell: object) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def fits(table: Table, out: Console) -> bool:
    """Whether an `unbroken` table fits the console's width: its narrowest rendering, every column at its
    longest word, borders and padding included. (rich's own `Measurement.get` caps the answer at the
    width, so the table is asked directly.)"""
    return table.__rich_measure__(out, out.options).minimum <= out.width


def detail_text(detail: Mapping[str, Any]) -> str:
    """An event's detail as text: `deadline: 2026-12-05 10:00:00 UTC; note: "seen it"`.

    A nested record is flattened under its key (`refund amount: 0.75 EUR; refund issued at: ...`), an
    amount with its currency reads as money, times read as `when` writes them, and text with spaces or
    separators in it is quoted, so that it cannot be taken for the next pair.
    """
    return "; ".join(f"{label}: {value}" for label, value in _detail_pairs(detail, ""))


def _detail_pairs(detail: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, str]]:
    for key, value in detail.items():
        label = f"{prefix}{key.replace('_', ' ')}"
        if isinstance(value, Mapping) and not _is_money(value):
            yield from _detail_pairs(value, f"{label} ")
        else:
            yield label, detail_value(value)


def _is_money(value: Mapping[str, Any]) -> bool:
    return set(value) == {"amount", "currency"}


def detail_value(value: Any) -> str:
    """One value of an event's detail, as `detail_text` writes it."""
    if value is None:
        return NO_VALUE
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Mapping):  # a record in a list: flattened in brackets
        return _money_text(value) if _is_money(value) else f"({detail_text(value)})"
    if isinstance(value, list | tuple):
        return ", ".join(detail_value(item) for item in value) if value else "none"
    if isinstance(value, str):
        return _string_text(value)
    return str(value)


def _money_text(value: Mapping[str, Any]) -> str:
    try:
        return money(Money.model_validate(value))
    except ValidationError:
        return f"{value['amount']} {value['currency']}"


QUOTED_WHEN_IN = frozenset(' \t\n;,"')
"""Characters that would blur where a value of free text ends: it is quoted if it holds any of them."""


def _string_text(value: str) -> str:
    """A time (the workflows record times as ISO 8601 with their zone) as `when` writes it; free text
    quoted; a code or an id as it is."""
    if "T" in value:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is not None:
            return when(moment)
    if not value or QUOTED_WHEN_IN.intersection(value):
        return json.dumps(value, ensure_ascii=False)
    return value
