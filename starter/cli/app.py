"""`refund-desk`: run the worker and the API, migrate the ledger, mint development tokens, and act on
activations and complaints.

- `refund-desk serve|worker|migrate|token` (`service`): run the desk, bring its ledger to the latest schema,
  mint a development token.
- `refund-desk activations start|show|sms|cancel` (`activations`): the shop's backend on a rented number
  (R1, R2): start it waiting for its SMS, read it, report the SMS that came, or cancel it (the price goes
  back once).
- `refund-desk complaints file` (`complaints`): the shop's backend files a complaint of any kind on a
  customer's behalf, with evidence files (R3-R6, R15); `complaints list|show|review|request-access|fix|
  offer-replacement`: support's side, for defects (R8-R12) and for claims about numbers (R5, R6).

Each of these commands is one call on the desk of `starter.desk`, the module the HTTP API uses too, so the
CLI refuses exactly what the API and the workflow refuse: it only turns arguments into the policy's models
and the resulting state (or refusal) into text (`formatting`, `complaint_views`). Whoever acts is recorded
(R16): support or the backend as named by `--as`/`--operator` or REFUND_DESK_OPERATOR, else the OS user
(`options`). Expected failures print one `error: ...` line to stderr and exit 1 (the desk said no, or could
not be reached) or 2 (the command, a file it names or the settings are wrong); only a bug shows a traceback
(`reporting`).
"""

from __future__ import annotations

import logging
import os
import sys

import typer

from starter.cli import service
from starter.cli.activations import activations
from starter.cli.complaints import complaints
from starter.cli.mail import mail
from starter.cli.reporting import USAGE
from starter.desk.settings import SettingsError
from starter.telemetry.logs import configure_process_logging

app = typer.Typer(
    name="refund-desk",
    help="Refund Desk: a shop's return policy run as Temporal workflows.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for command in (service.serve, service.worker, service.migrate, service.token, service.console_link):
    app.command()(command)
app.add_typer(complaints, name="complaints")
app.add_typer(activations, name="activations")
app.add_typer(mail, name="mail")


def main() -> None:
    """The `refund-desk` entry point.

    It ends the process with `os._exit` once the command is done and its output flushed: the Temporal
    client's native threads can outlive the event loop, and a short-lived process that lets the interpreter
    tear down under them may abort with "PyGILState_Release: thread state ... must be current"
    (temporalio/sdk-python#300), turning a clean exit (or a one-line error) into a core dump.
    """
    code = 0
    try:
        configure_process_logging()  # every log line JSON on stderr, beside the command's own output
        app(prog_name="refund-desk")
    except SettingsError as wrong:
        typer.echo(f"error: {wrong}", err=True)
        code = USAGE
    except SystemExit as done:
        if isinstance(done.code, str):
            typer.echo(done.code, err=True)
            code = 1
        else:
            code = done.code or 0
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
