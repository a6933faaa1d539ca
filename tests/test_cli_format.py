"""How the CLI writes what it prints, without a server: an event's detail as text, statuses in colour only
where the console has colour, and tables that fit only when no word has to break."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console
from rich.table import Table

from policy.models import ActivationStatus, ComplaintStatus
from starter.cli.formatting import STATUS_STYLES, detail_text, fits, status_text, unbroken

ISSUED = "2026-12-05T10:00:00+00:00"


@pytest.mark.parametrize(
    ("detail", "text"),
    [
        ({"deadline": ISSUED, "note": "reproduced"}, "deadline: 2026-12-05 10:00:00 UTC; note: reproduced"),
        (
            {
                "reason_code": "user_api_misuse",
                "note": "seen it, twice",
                "refund": {"amount": {"amount": "0.7500", "currency": "EUR"}, "issued_at": ISSUED},
            },
            'reason code: user_api_misuse; note: "seen it, twice"; refund amount: 0.75 EUR; '
            "refund issued at: 2026-12-05 10:00:00 UTC",
        ),
        (
            {
                "replacement": {
                    "sku": "seo-max",
                    "name": "SEO Max",
                    "value": {"amount": "47.35", "currency": "EUR"},
                }
            },
            'replacement sku: seo-max; replacement name: "SEO Max"; replacement value: 47.35 EUR',
        ),
        (
            {"evidence": [], "paused_seconds": 3600.0, "granted": True, "choice": None},
            "evidence: none; paused seconds: 3600; granted: yes; choice: —",
        ),
        ({"evidence": ["ev_1", "ev_2"]}, "evidence: ev_1, ev_2"),
        ({"value": {"amount": "lots", "currency": "EUR"}}, "value: lots EUR"),
        (
            {"items": [{"sku": "a", "count": 2}, {"amount": "1", "currency": "EUR"}]},
            "items: (sku: a; count: 2), 1.00 EUR",
        ),
        ({"note": "", "scope": 'say "hi"'}, 'note: ""; scope: "say \\"hi\\""'),
        ({"note": "20261205", "sku": "2026-12-05"}, "note: 20261205; sku: 2026-12-05"),
        ({}, ""),
    ],
)
def test_an_event_detail_reads_as_text(detail: dict[str, Any], text: str) -> None:
    assert detail_text(detail) == text


def test_every_status_has_a_colour() -> None:
    assert set(STATUS_STYLES) == {*ComplaintStatus, *ActivationStatus}


def printed(console_file: io.StringIO, **options: Any) -> str:
    console = Console(file=console_file, width=80, **options)
    for status in (ComplaintStatus.UNDER_REVIEW, ComplaintStatus.REFUNDED, ComplaintStatus.REJECTED):
        console.print(status_text(status))
    console.print(status_text(ComplaintStatus.WITHDRAWN))
    return console_file.getvalue()


def test_statuses_are_coloured_in_a_terminal_and_plain_elsewhere() -> None:
    terminal = printed(io.StringIO(), force_terminal=True, color_system="standard")
    assert "\x1b[33munder_review\x1b[0m" in terminal, "open: yellow"
    assert "\x1b[32mrefunded\x1b[0m" in terminal, "ended as the customer asked: green"
    assert "\x1b[31mrejected\x1b[0m" in terminal, "refused: red"
    assert "\x1b[2mwithdrawn\x1b[0m" in terminal, "given up: dim"
    assert printed(io.StringIO(), force_terminal=False) == "under_review\nrefunded\nrejected\nwithdrawn\n"


def a_table() -> Table:
    table = Table("id", "note")
    table.columns[0].no_wrap = True
    table.add_row("ord-0123456789.sms_not_received.deadbeef", "a note of several short words")
    return unbroken(table)


@pytest.mark.parametrize(("width", "fit"), [(80, True), (54, True), (53, False), (40, False)])
def test_a_table_fits_only_when_every_column_holds_its_longest_word(width: int, fit: bool) -> None:
    """The id (40) whole, the note at its longest word (`several`, 7), a space either side of each (4)
    and three borders: 54."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width)
    table = a_table()
    assert fits(table, console) is fit
    if fit:
        console.print(table)
        out = buffer.getvalue()
        assert all(len(line) <= width for line in out.splitlines())
        words = {word for line in out.splitlines() for word in line.replace("│", " ").split()}
        assert {"ord-0123456789.sms_not_received.deadbeef", "several", "short", "words"} <= words
