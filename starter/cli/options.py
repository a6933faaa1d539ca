"""The options more than one command group takes, and who is acting: every action is recorded with the
actor who took it (R16), so each command that acts resolves one."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer

from policy.models import Actor, Role
from starter.cli.reporting import USAGE, fail, reported

OPERATOR_ENV = "REFUND_DESK_OPERATOR"

Operator = Annotated[
    str | None,
    typer.Option(
        "--as",
        "--by",
        "--operator",
        envvar=OPERATOR_ENV,
        show_envvar=True,
        help="Support's id to act as; defaults to the OS user.",
    ),
]
BackendOperator = Annotated[
    str | None,
    typer.Option(
        "--operator",
        "--as",
        "--by",
        envvar=OPERATOR_ENV,
        show_envvar=True,
        help="The shop backend's id to act as; defaults to the OS user.",
    ),
]
OrderId = Annotated[str, typer.Argument(help="The order's id.", show_default=False)]
Note = Annotated[str, typer.Option(help="A note for the audit trail.")]


def acting(given: str | None, role: Role = Role.SUPPORT) -> Actor:
    """Support (or the shop's backend, by `role`) acting under the name given, else REFUND_DESK_OPERATOR
    (read by the option), else the OS user: every action is recorded with who took it (R16)."""
    name = given
    if not name:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):
            fail(f"who is acting? pass --as NAME or set {OPERATOR_ENV}", USAGE)
    with reported():
        return Actor(role=role, id=name)
