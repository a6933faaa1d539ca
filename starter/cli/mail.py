"""`refund-desk mail list|show`: the emails `make run`'s local SMTP sink saved (`dispatch.mail_sink`).

They read the sink's folder, `<data>/mail` (or `--folder`), and nothing else: no server needs to run, and
the messages of a stopped `make run` can still be read. `list` numbers the messages in arrival order, the
newest last, as `show N` takes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Column, Table

from dispatch.mail_sink import list_mail, mail_folder, read_mail
from starter.cli.formatting import console, plain, unbroken, when
from starter.cli.reporting import REFUSED, USAGE, fail

mail = typer.Typer(
    help="The emails make run's local SMTP sink saved in <data>/mail: list them, show one.",
    no_args_is_help=True,
)

Folder = Annotated[
    Path | None,
    typer.Option(help="The folder of saved messages (default: <data>/mail).", show_default=False),
]


def _folder(folder: Path | None) -> Path:
    chosen = folder if folder is not None else mail_folder()
    if folder is not None and not folder.is_dir():
        fail(f"{folder} is not a folder", USAGE)
    return chosen


@mail.command("list")
def list_(folder: Folder = None) -> None:
    """Every saved message, numbered, the newest last: when it arrived (UTC), to whom, its subject."""
    where = _folder(folder)
    found = list_mail(where)
    out = console()
    if not found:
        out.print(plain(f"no messages in {where}"))
        return
    table = Table(
        Column("#", justify="right", no_wrap=True),
        Column("received (UTC)", no_wrap=True),
        Column("to", no_wrap=True),
        Column("subject"),
        box=None,
    )
    for number, message in enumerate(found, start=1):
        table.add_row(
            plain(number),
            plain(when(message.received_at).removesuffix(" UTC")),
            plain(message.recipient),
            plain(message.subject),
        )
    out.print(unbroken(table))


@mail.command("show")
def show(
    number: Annotated[int, typer.Argument(help="The message's number in `mail list`.", show_default=False)],
    folder: Folder = None,
) -> None:
    """One message's headers and its plain-text part."""
    try:
        message = read_mail(_folder(folder), number)
    except IndexError as missing:
        fail(str(missing), REFUSED)
    out = console()
    out.print(plain(f"From:     {message.message.get('From', '')}"))
    out.print(plain(f"To:       {message.recipient}"))
    out.print(plain(f"Subject:  {message.subject}"))
    out.print(plain(f"Received: {when(message.received_at)}"))
    out.print(plain(""))
    out.print(plain(message.text.rstrip("\n")), soft_wrap=True)
