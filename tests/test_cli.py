"""`refund-desk` through Typer's runner, against the time-skipping server, a worker and a real ledger.

The CLI opens its own desk from the environment, as it would in a shell: each test points it at the test's
server, task queue, ledger and vault keys. The runner runs in a thread because the CLI calls `asyncio.run`
and the tests already run on an event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import sqlite3
import struct
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import jwt
import pytest
import typer
from sqlalchemy import update
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner, Result

from ledger.paths import DATA_DIR_ENV
from ledger.repository import Ledger
from ledger.schema import EvidenceRow
from ledger.vault import VaultKeyring
from policy.activation import ActivationState
from policy.complaint import ComplaintState
from policy.evidence import MAX_FILE_BYTES
from policy.models import (
    ActivationStatus,
    ClaimRejection,
    ComplaintKind,
    ComplaintStatus,
    DefectRejection,
    Money,
    Order,
)
from policy.settings import PolicySnapshot
from starter.api.auth import CALLER_ROLES
from starter.cli.app import app
from starter.cli.complaints import ReviewReason
from starter.cli.formatting import time_left
from starter.cli.reporting import reported
from starter.cli.service import TokenRole
from starter.desk import ActivationUnresponsive, ComplaintDesk, ComplaintUnresponsive, Unresponsive
from starter.desk.settings import save_policy
from tests.conftest import in_ledger
from tests.factories import (
    CLAIM,
    DESCRIPTION,
    PAYLOAD_KEYS,
    POLICY,
    SECRET,
    credentials,
    customer,
    number_order,
    software_order,
)

S = ComplaintStatus
JWT_SECRET = "cli-test-secret-" + "y" * 40
runner = CliRunner()


QUIET_CONSOLE: dict[str, str | None] = {
    "COLUMNS": "200",
    "FORCE_COLOR": None,
    "NO_COLOR": None,
    "TTY_COMPATIBLE": None,
    "TTY_INTERACTIVE": None,
}
"""Wide and colourless, whatever the shell running the tests sets: a test asks for a width or colour."""


async def invoke(args: list[str], env: dict[str, str | None]) -> Result:
    """One `refund-desk ...` run with `env` on top of the process's environment."""
    full_env = {**QUIET_CONSOLE, **env}
    return await asyncio.to_thread(lambda: runner.invoke(app, args, env=full_env))


@dataclass
class Cli:
    """`refund-desk` pointed at one test's Temporal server, task queue, ledger and vault."""

    env: dict[str, str | None]

    async def __call__(self, *args: str) -> Result:
        return await invoke(list(args), self.env)


@pytest.fixture
def cli(env: WorkflowEnvironment, desk: ComplaintDesk, ledger: Ledger, keyring: VaultKeyring) -> Cli:
    return Cli(
        {
            "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
            "TEMPORAL_NAMESPACE": env.client.namespace,
            "REFUND_DESK_TASK_QUEUE": desk.task_queue,
            "DATABASE_URL": ledger.engine.url.render_as_string(hide_password=False),
            "REFUND_DESK_VAULT_KEYS": keyring.spec(),
            "REFUND_DESK_PAYLOAD_KEYS": PAYLOAD_KEYS.spec(),
            "REFUND_DESK_OPERATOR": "alice",
        }
    )


async def filed(desk: ComplaintDesk, ledger: Ledger, price: str = "50.00") -> ComplaintState:
    """A defect complaint filed by its customer, once the ledger (which `list` reads) has it."""
    order = software_order(price=price)
    state = await desk.file_defect_complaint(order, DESCRIPTION, filed_by=customer(order), policy=POLICY)
    await in_ledger(ledger, state.complaint_id)
    return state


def succeeded(result: Result) -> str:
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result.stdout


def failed(result: Result, exit_code: int, starts: str) -> str:
    """The command failed as expected: exit code, and exactly one `error: ...` line on stderr."""
    assert result.exit_code == exit_code, (result.stdout, result.stderr, result.exception)
    assert result.stderr.startswith(f"error: {starts}"), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.output
    return result.stderr


async def unchanged(desk: ComplaintDesk, before: ComplaintState) -> None:
    after = await desk.get(before.complaint_id)
    assert (after.status, len(after.events)) == (before.status, len(before.events))


# ------------------------------------------------------------------------------------------- time left

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("deadline", "status", "expected"),
    [
        (NOW + timedelta(days=2, hours=3, minutes=59), S.UNDER_REVIEW, "2d 3h"),
        (NOW + timedelta(hours=3, minutes=5, seconds=30), S.RECTIFYING, "3h 5m"),
        (NOW + timedelta(minutes=4, seconds=59), S.ESCALATED, "4m"),
        (NOW + timedelta(seconds=20), S.UNDER_REVIEW, "<1m"),
        (NOW, S.UNDER_REVIEW, "overdue"),
        (NOW - timedelta(days=1), S.ESCALATED, "overdue"),
        (NOW + timedelta(days=3), S.AWAITING_ACCESS, "paused"),
        (NOW + timedelta(days=3), S.REJECTED, "—"),
        (None, S.UNDER_REVIEW, "—"),
    ],
)
def test_time_left_is_human_and_knows_final_and_paused_clocks(
    deadline: datetime | None, status: ComplaintStatus, expected: str
) -> None:
    assert time_left(deadline, NOW, status) == expected


# ----------------------------------------------------------------------------------------- list, show


async def test_list_shows_complaints_with_time_left_and_filters_by_status(
    cli: Cli, desk: ComplaintDesk, ledger: Ledger
) -> None:
    waiting = await filed(desk, ledger)
    approved = await filed(desk, ledger)
    succeeded(await cli("complaints", "review", approved.complaint_id, "--approve"))

    listed = succeeded(await cli("complaints", "list"))
    assert waiting.complaint_id in listed and approved.complaint_id in listed
    row = next(line for line in listed.splitlines() if waiting.complaint_id in line)
    assert waiting.customer_id in row and "under_review" in row and "major_defect" in row
    assert "4d 23h" in row, "five days from filing, less the moments the test took"

    under_review = succeeded(await cli("complaints", "list", "--status", "under_review"))
    assert waiting.complaint_id in under_review and approved.complaint_id not in under_review
    rectifying = succeeded(await cli("complaints", "list", "--status", "rectifying"))
    assert approved.complaint_id in rectifying and waiting.complaint_id not in rectifying

    mine = succeeded(await cli("complaints", "list", "--customer", waiting.customer_id))
    assert waiting.complaint_id in mine and approved.complaint_id not in mine
    assert "no complaints" in succeeded(await cli("complaints", "list", "--status", "refunded"))


async def test_list_refuses_an_unknown_status(cli: Cli) -> None:
    result = await cli("complaints", "list", "--status", "lost")
    assert result.exit_code == 2
    assert "lost" in result.stderr


async def test_show_prints_the_state_and_the_event_history_but_never_credentials(
    cli: Cli, desk: ComplaintDesk, ledger: Ledger
) -> None:
    state = await filed(desk, ledger)
    succeeded(
        await cli(
            "complaints", "request-access", state.complaint_id, "--scope", "SSH", "--reason", "reproduce it"
        )
    )
    await desk.grant_access(state.complaint_id, customer(state.order), credentials())

    shown = succeeded(await cli("complaints", "show", state.complaint_id))
    assert state.order.order_id in shown and "50.00 EUR" in shown
    assert "status" in shown and "under_review" in shown
    assert "SSH: reproduce it" in shown and "granted" in shown
    events = shown.split("events", 1)[1]
    for event_type in ("filed", "access_requested", "access_granted"):
        assert event_type in events
    assert "support:alice" in events
    assert SECRET not in shown and "hunter2" not in shown


async def test_unknown_complaint_is_not_found(cli: Cli) -> None:
    missing = "ord-nope.major_defect.deadbeef"
    failed(await cli("complaints", "show", missing), 1, f"complaint_not_found: no complaint {missing}")
    failed(await cli("complaints", "fix", missing), 1, f"complaint_not_found: no complaint {missing}")
    failed(
        await cli("complaints", "show", "not-a-complaint-id"),
        1,
        "complaint_not_found: no complaint not-a-complaint-id",
    )


# ------------------------------------------------------------------------- 80 columns, pipes, colour

LONG_DESCRIPTION = (
    "The checkout plugin crashes whenever a customer pays with a saved card: the payment-gateway callback "
    "answers HTTP 500 and the order stays pending. Reproduced on staging with version 2.3.0 and a fresh "
    "WordPress 6.5 install, every other plugin disabled, in Firefox and in Chromium alike."
)


def words_of(out: str) -> set[str]:
    """Every whitespace-separated word printed, table borders aside."""
    return {word for line in out.splitlines() for word in line.replace("│", " ").split()}


def within_80(out: str) -> str:
    wide = [line for line in out.splitlines() if len(line) > 80]
    assert not wide, "\n".join(wide)
    return out


async def a_busy_defect(cli: Cli, desk: ComplaintDesk, ledger: Ledger) -> ComplaintState:
    """A defect with a long description, an access request, a grant and an approval on its trail."""
    order = software_order()
    state = await desk.file_defect_complaint(order, LONG_DESCRIPTION, filed_by=customer(order), policy=POLICY)
    await in_ledger(ledger, state.complaint_id)
    args = [
        "--scope",
        "read-only SSH to the staging host",
        "--reason",
        "to reproduce the crash, step by step",
    ]
    succeeded(await cli("complaints", "request-access", state.complaint_id, *args))
    await desk.grant_access(state.complaint_id, customer(order), credentials())
    succeeded(await cli("complaints", "review", state.complaint_id, "--approve", "--note", "seen it, twice"))
    await in_ledger(ledger, state.complaint_id, S.RECTIFYING)
    return await desk.get(state.complaint_id)


async def test_at_80_columns_list_and_show_fit_and_break_no_word(
    cli: Cli, desk: ComplaintDesk, ledger: Ledger
) -> None:
    defect = await a_busy_defect(cli, desk, ledger)
    claim_order = await number(ledger)
    claim_id = complaint_id_in(succeeded(await cli(*file_args(claim_order, SMS))))
    await in_ledger(ledger, claim_id)
    at_80 = Cli({**cli.env, "COLUMNS": "80"})

    listed = within_80(succeeded(await at_80("complaints", "list")))
    printed = words_of(listed)
    for word in (defect.complaint_id, claim_id, defect.customer_id, claim_order.customer_id):
        assert word in printed, listed
    for word in ("rectifying", "under_review", "sms_not_received", "major_defect", "4d", "23h"):
        assert word in printed, listed

    shown = within_80(succeeded(await at_80("complaints", "show", defect.complaint_id)))
    printed = words_of(shown)
    assert set(LONG_DESCRIPTION.split()) <= printed, shown
    for word in (defect.complaint_id, "access_requested", "access_granted", "deficiency_approved"):
        assert word in printed, shown
    assert '"seen it, twice"' in " ".join(shown.split()), "the note, quoted, whole"

    activation_id = await rented(cli, await number(ledger))
    shown = within_80(succeeded(await at_80("activations", "show", activation_id)))
    assert {activation_id, PHONE, "waiting_for_sms", "backend:alice"} <= words_of(shown), shown


async def test_into_a_pipe_rows_are_printed_whole(cli: Cli, desk: ComplaintDesk, ledger: Ledger) -> None:
    defect = await a_busy_defect(cli, desk, ledger)
    piped = Cli({**cli.env, "COLUMNS": None})

    listed = succeeded(await piped("complaints", "list"))
    row = next(line for line in listed.splitlines() if defect.complaint_id in line)
    assert defect.customer_id in row and "major_defect" in row and "rectifying" in row

    shown = succeeded(await piped("complaints", "show", defect.complaint_id))
    assert any(LONG_DESCRIPTION in line for line in shown.splitlines()), "the description on one line"
    approved = next(line for line in shown.splitlines() if "deficiency_approved" in line)
    assert 'note: "seen it, twice"' in approved and "support:alice" in approved
    assert "\x1b[" not in listed + shown, "no colour into a pipe"


YELLOW_UNDER_REVIEW = r"\x1b\[33munder_review *\x1b\[0m"
RED_REJECTED = r"\x1b\[31mrejected *\x1b\[0m"
"""The status in its colour (standard SGR codes), padded to its cell in a table."""


async def test_in_a_terminal_statuses_are_in_colour(cli: Cli, desk: ComplaintDesk, ledger: Ledger) -> None:
    waiting = await filed(desk, ledger)
    rejected = await filed(desk, ledger)
    reject = ["--reject", "--reason", "not_a_defect"]
    coloured = Cli({**cli.env, "FORCE_COLOR": "1", "TERM": "xterm-256color"})
    review = await coloured("complaints", "review", rejected.complaint_id, *reject)
    assert re.search(RED_REJECTED, succeeded(review))
    await in_ledger(ledger, rejected.complaint_id, S.REJECTED)

    listed = succeeded(await coloured("complaints", "list"))
    row = next(line for line in listed.splitlines() if waiting.complaint_id in line)
    assert re.search(YELLOW_UNDER_REVIEW, row), "open: yellow"
    row = next(line for line in listed.splitlines() if rejected.complaint_id in line)
    assert re.search(RED_REJECTED, row), "refused: red"
    shown = succeeded(await coloured("complaints", "show", waiting.complaint_id))
    assert re.search(YELLOW_UNDER_REVIEW, shown)


# ---------------------------------------------------------------------------------------------- review


async def test_review_approve_moves_to_rectifying_and_a_second_review_is_refused(
    cli: Cli, desk: ComplaintDesk, ledger: Ledger
) -> None:
    state = await filed(desk, ledger)
    out = succeeded(await cli("complaints", "review", state.complaint_id, "--approve", "--note", "seen it"))
    assert f"{state.complaint_id}: rectifying" in out and "deadline" in out
    approved = await desk.get(state.complaint_id)
    assert approved.status is S.RECTIFYING
    assert approved.review is not None and approved.review.by == "support:alice"
    assert approved.review.note == "seen it"

    again = await cli("complaints", "review", state.complaint_id, "--approve", "--by", "bob")
    failed(again, 1, "invalid_state: cannot review while the complaint is rectifying")
    await unchanged(desk, approved)


async def test_reject_without_a_reason_is_a_usage_error_and_changes_nothing(
    cli: Cli, desk: ComplaintDesk, ledger: Ledger
) -> None:
    state = await filed(desk, ledger)
    before = await desk.get(state.complaint_id)
    message = failed(await cli("complaints", "review", state.complaint_id, "--reject"), 2, "")
    assert "--reason" in message and "not_a_defect" in message
    failed(await cli("complaints", "review", state.complaint_id), 2, "say --approve or --reject")
    await unchanged(desk, before)


async def test_a_final_complaint_refuses_every_action_and_stays_as_it_is(
    cli: Cli, desk: ComplaintDesk, ledger: Ledger
) -> None:
    state = await filed(desk, ledger)
    rejected = await cli(
        "complaints", "review", state.complaint_id, "--reject", "--reason", "user_api_misuse"
    )
    assert f"{state.complaint_id}: rejected" in succeeded(rejected)
    final = await desk.get(state.complaint_id)
    assert final.resolution is not None and final.resolution.reason_code == "user_api_misuse"

    failed(await cli("complaints", "fix", state.complaint_id), 1, "invalid_state: the complaint is already")
    await unchanged(desk, final)


# ---------------------------------------------------------------------------- access, fix, replacement


async def test_request_access_pauses_the_clock(cli: Cli, desk: ComplaintDesk, ledger: Ledger) -> None:
    state = await filed(desk, ledger)
    out = succeeded(
        await cli(
            "complaints",
            "request-access",
            state.complaint_id,
            "--scope",
            "read-only SSH",
            "--reason",
            "to reproduce the crash",
        )
    )
    assert f"{state.complaint_id}: awaiting_access" in out and "paused" in out
    waiting = await desk.get(state.complaint_id)
    assert waiting.status is S.AWAITING_ACCESS
    assert waiting.access is not None and waiting.access.scope == "read-only SSH"
    assert waiting.events[-1].actor == "support:alice"


async def test_fix_rectifies(cli: Cli, desk: ComplaintDesk, ledger: Ledger) -> None:
    state = await filed(desk, ledger)
    succeeded(await cli("complaints", "review", state.complaint_id, "--approve"))
    out = succeeded(await cli("complaints", "fix", state.complaint_id, "--note", "patched in 2.3.1"))
    assert f"{state.complaint_id}: rectified" in out
    fixed = await desk.get(state.complaint_id)
    assert fixed.status is S.RECTIFIED and fixed.events[-1].detail["note"] == "patched in 2.3.1"


async def test_r11_fix_async_reports_the_fix_and_says_where_to_read_it(
    cli: Cli, desk: ComplaintDesk, ledger: Ledger
) -> None:
    state = await filed(desk, ledger)
    succeeded(await cli("complaints", "review", state.complaint_id, "--approve"))
    fix = ["complaints", "fix", state.complaint_id, "--async"]
    args = [*fix, "--note", "2.3.1 deployed", "--as", "deploy-bot"]
    out = succeeded(await cli(*args))
    reported, read = out.splitlines()
    assert reported.startswith(f"reported mark_fixed on {state.complaint_id} as rpt_"), out
    assert read == f"read it: refund-desk complaints show {state.complaint_id}"
    for _ in range(300):
        fixed = await desk.get(state.complaint_id)
        if fixed.is_final:
            break
        await asyncio.sleep(0.02)
    assert fixed.status is S.RECTIFIED and fixed.events[-1].actor == "support:deploy-bot"
    assert fixed.events[-1].detail["note"] == "2.3.1 deployed"
    failed(await cli(*args), 1, "invalid_state: the complaint is already rectified")


async def test_offer_replacement_checks_the_tolerance_and_keeps_the_value_exact(
    cli: Cli, desk: ComplaintDesk, ledger: Ledger
) -> None:
    state = await filed(desk, ledger, price="50.00")
    before = await desk.get(state.complaint_id)
    args = ["complaints", "offer-replacement", state.complaint_id, "--sku", "plugin-seo-max"]
    cheap = await cli(*args, "--name", "SEO Max", "--value", "12.50")
    failed(cheap, 1, "replacement_out_of_tolerance: ")
    await unchanged(desk, before)
    assert (await desk.get(state.complaint_id)).replacement_offer is None

    failed(await cli(*args, "--name", "SEO Max", "--value", "lots"), 2, "--value 'lots' is not an amount")

    succeeded(await cli(*args, "--name", "SEO Max", "--value", "47.35"))
    offered = (await desk.get(state.complaint_id)).replacement_offer
    assert offered is not None and offered.sku == "plugin-seo-max"
    assert offered.value == Money(amount=Decimal("47.35"), currency="EUR"), "the order's currency"


TEMPORAL_UNAVAILABLE_AT_PORT_1 = (
    "temporal_unavailable: Temporal, the workflow service, is unavailable; try again shortly "
    "(TEMPORAL_ADDRESS=127.0.0.1:1)\n"
)


async def test_unreachable_temporal_is_one_line(tmp_path: Path) -> None:
    env: dict[str, str | None] = {
        "TEMPORAL_ADDRESS": "127.0.0.1:1",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/ledger.db",
        "REFUND_DESK_VAULT_KEYS": VaultKeyring.generate().spec(),
        "REFUND_DESK_PAYLOAD_KEYS": PAYLOAD_KEYS.spec(),
    }
    result = await invoke(["complaints", "list"], env)
    failed(result, 1, TEMPORAL_UNAVAILABLE_AT_PORT_1)


# ------------------------------------------------------------------------------------ token, migrate


async def test_token_mints_a_jwt_with_the_configured_secret_issuer_and_audience() -> None:
    env: dict[str, str | None] = {"REFUND_DESK_JWT_SECRET": JWT_SECRET}
    token = succeeded(await invoke(["token", "--role", "support", "--sub", "bob"], env)).strip()
    claims = jwt.decode(token, JWT_SECRET, algorithms=["HS256"], audience="refund-desk-api")
    assert (claims["role"], claims["sub"], claims["iss"]) == ("support", "bob", "refund-desk")
    now = datetime.now(UTC).timestamp()
    assert now < claims["exp"] <= now + 3600 + 5
    assert claims["exp"] - claims["iat"] == 3600

    short = succeeded(await invoke(["token", "--role", "customer", "--sub", "c1", "--ttl", "PT5M"], env))
    claims = jwt.decode(short.strip(), JWT_SECRET, algorithms=["HS256"], audience="refund-desk-api")
    assert claims["exp"] - claims["iat"] == 300

    deployment = env | {"REFUND_DESK_TOKEN_ISSUER": "shop-idp", "REFUND_DESK_TOKEN_AUDIENCE": "desk"}
    theirs = succeeded(await invoke(["token", "--role", "backend", "--sub", "shop"], deployment)).strip()
    claims = jwt.decode(theirs, JWT_SECRET, algorithms=["HS256"], audience="desk")
    assert claims["iss"] == "shop-idp"


async def test_console_link_prints_a_one_time_sign_in_link_for_the_api_at_its_public_url() -> None:
    env: dict[str, str | None] = {
        "REFUND_DESK_JWT_SECRET": JWT_SECRET,
        "REFUND_DESK_PUBLIC_URL": "http://desk:9",
    }
    link = succeeded(await invoke(["console-link", "--sub", "bob"], env)).strip()
    assert link.startswith("http://desk:9/console/sign-in?link="), link
    token = link.split("?link=", 1)[1]
    claims = jwt.decode(token, JWT_SECRET, algorithms=["HS256"], audience="refund-desk-api/console-sign-in")
    assert (claims["role"], claims["sub"], claims["exp"] - claims["iat"]) == ("support", "bob", 3600)
    assert claims["jti"], "a link is spent by its id"
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(token, JWT_SECRET, algorithms=["HS256"], audience="refund-desk-api")
    refused = await invoke(["console-link", "--sub", "not an id"], env)
    assert refused.exit_code != 0 and not refused.stdout.startswith("http")


async def test_token_refuses_a_ttl_the_api_would_refuse() -> None:
    """The API refuses a token living longer than REFUND_DESK_TOKEN_MAX_LIFETIME (a day by default), so
    the CLI does not print one; a day itself is fine."""
    env: dict[str, str | None] = {"REFUND_DESK_JWT_SECRET": JWT_SECRET}
    too_long = await invoke(["token", "--role", "support", "--sub", "bob", "--ttl", "P2D"], env)
    failed(too_long, 2, "--ttl 'P2D' is longer than the 86400 s REFUND_DESK_TOKEN_MAX_LIFETIME allows")
    assert too_long.stdout == ""
    succeeded(await invoke(["token", "--role", "support", "--sub", "bob", "--ttl", "P1D"], env))
    shorter = env | {"REFUND_DESK_TOKEN_MAX_LIFETIME": "PT10M"}
    failed(
        await invoke(["token", "--role", "support", "--sub", "bob"], shorter),
        2,
        "--ttl '3600' is longer than the 600 s",
    )


async def test_token_refuses_the_system_role_a_bad_ttl_and_a_missing_secret(tmp_path: Path) -> None:
    env: dict[str, str | None] = {"REFUND_DESK_JWT_SECRET": JWT_SECRET}
    system = await invoke(["token", "--role", "system", "--sub", "desk"], env)
    assert system.exit_code == 2, (system.stdout, system.stderr)
    assert "'system' is not one of 'backend', 'support', 'customer'" in system.stderr, "refused by the parser"
    assert system.stdout == ""
    failed(await invoke(["token", "--role", "support", "--sub", "bob", "--ttl", "soon"], env), 2, "--ttl")

    no_secret: dict[str, str | None] = {
        "REFUND_DESK_JWT_SECRET": None,
        "REFUND_DESK_JWT_SECRET_FILE": str(tmp_path / "absent"),
    }
    failed(
        await invoke(["token", "--role", "support", "--sub", "bob"], no_secret),
        2,
        "settings_invalid: no JWT secret",
    )


async def test_migrate_creates_the_ledger_schema(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "ledger.db"
    url = f"sqlite+aiosqlite:///{path}"
    out = succeeded(await invoke(["migrate"], {"DATABASE_URL": url}))
    assert "ledger schema is at head" in out and str(path) in out

    ledger = Ledger.connect(url)
    try:
        counts = await ledger.table_counts()
    finally:
        await ledger.close()
    assert {"orders", "complaints", "complaint_events", "refunds", "vault_secrets"} <= set(counts)
    with sqlite3.connect(path) as db:
        assert db.execute("select count(*) from alembic_version").fetchone() == (1,)

    succeeded(await invoke(["migrate"], {"DATABASE_URL": url}))  # again: already at head, nothing to do


NOTHING_LISTENS = "postgresql+asyncpg://ledger:hunter2@127.0.0.1:1/refunds"
"""A PostgreSQL URL whose port nothing listens on."""


def unusable_urls(tmp_path: Path) -> list[tuple[str, str]]:
    """DATABASE_URLs no engine can be made for, and how the error line starts for each."""
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    invalid = "database_url_invalid: DATABASE_URL: "
    return [
        ("not a url", f"{invalid}Could not parse SQLAlchemy URL"),
        (
            f"sqlite+aiosqlite:///{a_file}/ledger.db",
            f"{invalid}cannot make the folder of {a_file}/ledger.db: ",
        ),
        (f"sqlite:///{tmp_path}/ledger.db", f"{invalid}sqlite://: The asyncio extension requires an async"),
        ("postgresql://ledger@127.0.0.1:1/refunds", f"{invalid}postgresql://"),
        ("postgresql+asyncpg://ledger@127.0.0.1:99999/refunds", f"{invalid}port 99999 is not a TCP port"),
        ("postgresql+asyncpg://ledger@127.0.0.1:port/refunds", f"{invalid}cannot be read: "),
    ]


async def test_migrate_reports_an_unusable_database_url_in_one_line_and_exit_2(tmp_path: Path) -> None:
    for url, starts in unusable_urls(tmp_path):
        failed(await invoke(["migrate"], {"DATABASE_URL": url}), 2, starts)


async def test_migrate_reports_a_database_that_does_not_answer_in_one_line_without_its_password() -> None:
    message = failed(
        await invoke(["migrate"], {"DATABASE_URL": NOTHING_LISTENS}),
        1,
        "ledger_unavailable: the ledger is unavailable; try again shortly "
        "(DATABASE_URL=postgresql+asyncpg://ledger:***@127.0.0.1:1/refunds: cannot connect to the database: ",
    )
    assert "Connect call failed" in message and "hunter2" not in message


async def test_migrate_refuses_a_ledger_a_newer_release_migrated(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    url = f"sqlite+aiosqlite:///{path}"
    succeeded(await invoke(["migrate"], {"DATABASE_URL": url}))
    with sqlite3.connect(path) as db:
        db.execute("update alembic_version set version_num = 'f00dfacef00d'")
    failed(
        await invoke(["migrate"], {"DATABASE_URL": url}),
        2,
        "database_url_invalid: DATABASE_URL: the ledger there is at a revision this release does not know "
        "(Can't locate revision identified by 'f00dfacef00d')\n",
    )


async def test_a_ledger_never_migrated_says_to_run_migrate(cli: Cli, tmp_path: Path) -> None:
    bare = Cli({**cli.env, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/bare.db"})
    failed(
        await bare("complaints", "list"),
        2,
        "ledger_not_migrated: the ledger has no schema yet: run `refund-desk migrate` against this "
        "DATABASE_URL",
    )


async def test_every_command_reports_an_unusable_database_url_before_dialling_temporal(
    tmp_path: Path,
) -> None:
    commands = [
        ["complaints", "list"],
        ["complaints", "show", "ord-1.major_defect.deadbeef"],
        ["complaints", "fix", "ord-1.major_defect.deadbeef", "--as", "alice"],
        ["activations", "show", "act_ord-1", "--as", "shop"],
        ["worker"],
        ["serve"],
    ]
    for url, starts in unusable_urls(tmp_path):
        # Temporal unreachable too: the URL is said first, and a command that got past it fails fast
        env: dict[str, str | None] = {"DATABASE_URL": url, "TEMPORAL_ADDRESS": "127.0.0.1:1"}
        for command in commands:
            failed(await invoke(command, env), 2, starts)


async def test_every_command_reports_a_database_that_does_not_answer_in_one_line(
    cli: Cli, ledger: Ledger
) -> None:
    order = await number(ledger)
    activation_id = await rented(cli, order)
    down = Cli({**cli.env, "DATABASE_URL": NOTHING_LISTENS})
    for command in (
        ["complaints", "list"],
        ["activations", "show", activation_id],
        [*file_args(order, SMS)],
    ):
        message = failed(await down(*command), 1, "ledger_unavailable: the ledger is unavailable; ")
        assert "(DATABASE_URL=postgresql+asyncpg://ledger:***@127.0.0.1:1/refunds: " in message
        assert "hunter2" not in message


def test_help_lists_the_commands() -> None:
    out = succeeded(runner.invoke(app, ["--help"], env={"COLUMNS": "200"}))
    for command in ("serve", "worker", "migrate", "token", "complaints", "activations"):
        assert command in out
    sub = succeeded(runner.invoke(app, ["complaints", "--help"], env={"COLUMNS": "200"}))
    for command in ("file", "list", "show", "review", "request-access", "fix", "offer-replacement"):
        assert re.search(rf"^\W*{command} ", sub, re.M), (command, sub)
    numbers = succeeded(runner.invoke(app, ["activations", "--help"], env={"COLUMNS": "200"}))
    for command in ("start", "show", "sms", "cancel"):
        assert re.search(rf"^\W*{command} ", numbers, re.M), (command, numbers)


def test_token_offers_exactly_the_roles_that_get_tokens() -> None:
    assert {role.value for role in TokenRole} == {role.value for role in CALLER_ROLES}
    out = succeeded(runner.invoke(app, ["token", "--help"], env={"COLUMNS": "200"}))
    assert re.search(r"[<\[]backend\|support\|customer[>\]]", out), out
    assert "system" not in out


def test_review_help_lists_every_rejection_code() -> None:
    out = succeeded(runner.invoke(app, ["complaints", "review", "--help"], env={"COLUMNS": "250"}))
    for code in (*DefectRejection, *ClaimRejection):
        assert code.value in out


# ----------------------------------------------------------------------------------------- activations

PHONE = "+447700900123"


async def number(ledger: Ledger, price: str = "0.75") -> Order:
    """A virtual number order, recorded in the ledger as the shop's backend would first."""
    order, _ = await ledger.record_order(number_order(price=price))
    return order


async def projected(ledger: Ledger, order: Order) -> ActivationState:
    """The activation as the ledger has it: the workflow writes its row in an activity of its own, which
    may finish a moment after `start` has answered."""
    for _ in range(500):
        record = await ledger.activation_of_order(order.order_id)
        if record is not None:
            return record.state
        await asyncio.sleep(0.01)
    raise AssertionError(f"the activation of {order.order_id} never reached the ledger")


async def rented(cli: Cli, order: Order) -> str:
    """`activations start` on the order; the activation id it printed, for the next command at once."""
    out = succeeded(
        await cli("activations", "start", order.order_id, "--phone", PHONE, "--service", "whatsapp")
    )
    match = re.search(r"^started activation (act_\S+)$", out, re.M)
    assert match is not None and match.group(1) == f"act_{order.order_id}", out
    return match.group(1)


async def test_activation_start_show_and_sms_complete_it_as_the_backend(cli: Cli, ledger: Ledger) -> None:
    order = await number(ledger)
    out = succeeded(
        await cli("activations", "start", order.order_id, "--phone", PHONE, "--service", "whatsapp")
    )
    activation_id = f"act_{order.order_id}"
    assert f"started activation {activation_id}" in out
    assert f"{activation_id}: waiting_for_sms (expires " in out
    assert "19m)" in out, "twenty minutes to wait (R1), less the moments the test took"
    waiting = await projected(ledger, order)
    assert waiting.started_by == "backend:alice" and waiting.phone_number == PHONE

    shown = succeeded(await cli("activations", "show", activation_id))
    for fact in (order.order_id, order.customer_id, PHONE, "whatsapp", "waiting_for_sms", "0.75 EUR"):
        assert fact in shown
    assert "by backend:alice" in shown and "19m" in shown
    assert "sms" not in shown.replace("waiting_for_sms", ""), "no SMS yet"

    done = succeeded(await cli("activations", "sms", activation_id, "Your WhatsApp code: 123-456"))
    assert f"{activation_id}: completed" in done and "not refundable" in done
    shown = succeeded(await cli("activations", "show", activation_id))
    assert "completed" in shown and "Your WhatsApp code: 123-456" in shown
    assert "refund" not in shown
    record = await ledger.activation_of_order(order.order_id)
    assert record is not None and record.state.status is ActivationStatus.COMPLETED
    assert await ledger.refund_of_order(order.order_id) is None


async def test_activation_cancel_refunds_the_price_once_and_shows_the_refund(
    cli: Cli, ledger: Ledger
) -> None:
    order = await number(ledger, price="0.75")
    activation_id = await rented(cli, order)

    out = succeeded(await cli("activations", "cancel", activation_id))
    assert f"{activation_id}: canceled (canceled_by_backend); refund 0.75 EUR at " in out
    balance = await ledger.balance(order.customer_id)
    assert balance.totals == {"EUR": Decimal("0.75")} and len(balance.entries) == 1
    assert balance.entries[0].actor == "backend:alice"

    again = succeeded(await cli("activations", "cancel", activation_id, "--operator", "shop"))
    assert "canceled" in again and "0.75 EUR" in again
    balance = await ledger.balance(order.customer_id)
    assert len(balance.entries) == 1 and balance.totals == {"EUR": Decimal("0.75")}, "refunded once (R2)"

    shown = succeeded(await cli("activations", "show", activation_id))
    assert "canceled" in shown and "canceled_by_backend" in shown and "by backend:alice" in shown
    refund_line = next(line for line in shown.splitlines() if line.strip().startswith("refund"))
    assert "0.75 EUR at " in refund_line


async def test_cancel_after_the_sms_is_refused_and_refunds_nothing(cli: Cli, ledger: Ledger) -> None:
    order = await number(ledger)
    activation_id = await rented(cli, order)
    succeeded(await cli("activations", "sms", activation_id, "code 4242"))

    failed(await cli("activations", "cancel", activation_id), 1, "invalid_state: the SMS was received")
    assert (await ledger.table_counts(["refunds"])) == {"refunds": 0}
    assert (await ledger.balance(order.customer_id)).entries == []
    assert "completed" in succeeded(await cli("activations", "show", activation_id))


async def test_an_sms_after_a_cancel_is_refused_and_the_refund_stands(cli: Cli, ledger: Ledger) -> None:
    order = await number(ledger)
    activation_id = await rented(cli, order)
    succeeded(await cli("activations", "cancel", activation_id))

    failed(await cli("activations", "sms", activation_id, "code 4242"), 1, "invalid_state: ")
    shown = succeeded(await cli("activations", "show", activation_id))
    assert "canceled" in shown and "code 4242" not in shown
    assert len((await ledger.balance(order.customer_id)).entries) == 1


async def test_unknown_activation_is_not_found_by_every_command(cli: Cli) -> None:
    for missing in ("act_ord-nope", "not-an-activation"):
        failed(await cli("activations", "show", missing), 1, f"activation_not_found: no activation {missing}")
        failed(
            await cli("activations", "sms", missing, "code 1"),
            1,
            f"activation_not_found: no activation {missing}",
        )
        failed(
            await cli("activations", "cancel", missing), 1, f"activation_not_found: no activation {missing}"
        )


@pytest.mark.parametrize(
    ("phone", "service", "field"),
    [
        ("07700 900123", "whatsapp", "phone_number"),
        ("+0447700900123", "whatsapp", "phone_number"),
        ("+44770090012345678", "whatsapp", "phone_number"),
        (PHONE, "what's app", "service"),
    ],
)
async def test_a_malformed_number_or_service_is_a_usage_error_and_writes_nothing(
    cli: Cli, ledger: Ledger, phone: str, service: str, field: str
) -> None:
    order = await number(ledger)
    before = await ledger.table_counts()
    message = failed(
        await cli("activations", "start", order.order_id, "--phone", phone, "--service", service),
        2,
        f"validation_error: {field}",
    )
    assert "pattern" in message
    assert await ledger.table_counts() == before
    assert await ledger.activation_of_order(order.order_id) is None


async def test_an_empty_sms_is_a_usage_error_and_the_number_keeps_waiting(cli: Cli, ledger: Ledger) -> None:
    order = await number(ledger)
    activation_id = await rented(cli, order)
    failed(await cli("activations", "sms", activation_id, ""), 2, "validation_error: text: ")
    assert "waiting_for_sms" in succeeded(await cli("activations", "show", activation_id))


async def test_starting_twice_with_the_same_number_says_already_and_keeps_one_activation(
    cli: Cli, ledger: Ledger
) -> None:
    order = await number(ledger)
    activation_id = await rented(cli, order)

    again = succeeded(
        await cli("activations", "start", order.order_id, "--phone", PHONE, "--service", "whatsapp")
    )
    assert f"activation {activation_id} already existed" in again and "started activation" not in again
    assert f"{activation_id}: waiting_for_sms" in again
    assert (await ledger.table_counts(["activations"])) == {"activations": 1}

    other = await cli(
        "activations", "start", order.order_id, "--phone", "+447700900999", "--service", "whatsapp"
    )
    failed(other, 1, "activation_conflict: ")
    assert (await ledger.table_counts(["activations"])) == {"activations": 1}
    state = await projected(ledger, order)
    assert state.phone_number == PHONE


async def test_activation_start_refuses_an_unknown_order_and_a_software_order(
    cli: Cli, ledger: Ledger
) -> None:
    failed(
        await cli("activations", "start", "ord-nope", "--phone", PHONE, "--service", "whatsapp"),
        1,
        "order_not_found: no order ord-nope",
    )
    software, _ = await ledger.record_order(software_order())
    refused = await cli("activations", "start", software.order_id, "--phone", PHONE, "--service", "whatsapp")
    failed(refused, 1, "kind_not_for_product: ")
    assert (await ledger.table_counts(["activations"])) == {"activations": 0}


async def test_activations_act_as_the_named_backend_operator(cli: Cli, ledger: Ledger) -> None:
    order = await number(ledger)
    args = ["activations", "start", order.order_id, "--phone", PHONE, "--service", "telegram"]
    succeeded(await cli(*args, "--operator", "shop-backend"))
    assert (await projected(ledger, order)).started_by == "backend:shop-backend"


@pytest.mark.parametrize(
    ("silent", "what"),
    [(ActivationUnresponsive("act_ord-1"), "activation"), (ComplaintUnresponsive("ord-1.x.y"), "complaint")],
)
def test_a_workflow_that_does_not_answer_is_one_line_and_exit_1(
    silent: Unresponsive, what: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(typer.Exit) as exited, reported():
        raise silent
    assert exited.value.exit_code == 1
    err = capsys.readouterr().err
    assert err == (
        f"error: {what}_unresponsive: the {what} did not answer in time (is a worker running?); an action "
        f"sent may still take effect, so read the {what} before sending it again\n"
    )


def test_a_temporal_error_says_the_address_and_what_the_server_said(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "temporal.example:7233")
    with pytest.raises(typer.Exit) as exited, reported():
        raise RPCError("namespace refunds is not found", RPCStatusCode.NOT_FOUND, b"")
    assert exited.value.exit_code == 1
    assert capsys.readouterr().err == (
        "error: temporal_unavailable: Temporal, the workflow service, is unavailable; try again shortly "
        "(TEMPORAL_ADDRESS=temporal.example:7233: namespace refunds is not found)\n"
    )


def test_a_failure_the_table_does_not_know_keeps_its_traceback() -> None:
    with pytest.raises(ZeroDivisionError), reported():
        raise ZeroDivisionError("a bug")
    with pytest.raises(RuntimeError, match="not a connect"), reported():
        raise RuntimeError("not a connect failure")


async def test_activations_report_an_unreachable_temporal_in_one_line(tmp_path: Path) -> None:
    env: dict[str, str | None] = {
        "TEMPORAL_ADDRESS": "127.0.0.1:1",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/ledger.db",
        "REFUND_DESK_VAULT_KEYS": VaultKeyring.generate().spec(),
        "REFUND_DESK_PAYLOAD_KEYS": PAYLOAD_KEYS.spec(),
        "REFUND_DESK_OPERATOR": "alice",
    }
    failed(await invoke(["activations", "show", "act_ord-1"], env), 1, TEMPORAL_UNAVAILABLE_AT_PORT_1)


# ------------------------------------------------------------------------------------- complaints file

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def tiny_png() -> bytes:
    """A real 1x1 grey PNG: the signature, IHDR, one IDAT row and IEND, each chunk with its CRC."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\x80"))
        + chunk(b"IEND", b"")
    )


def complaint_id_in(out: str) -> str:
    """The id `complaints file` printed, on its status line."""
    match = re.search(r"^(ord-[0-9a-f]{10}\.[a-z_]+\.[0-9a-f]{8}): ", out, re.M)
    assert match is not None, out
    return match.group(1)


def file_args(order: Order, kind: ComplaintKind, description: str = CLAIM, *extra: str) -> list[str]:
    return ["complaints", "file", order.order_id, "--kind", kind.value, "--description", description, *extra]


SMS = ComplaintKind.SMS_NOT_RECEIVED
INVALID = ComplaintKind.INVALID_NUMBER
DEFECT = ComplaintKind.MAJOR_DEFECT


async def test_file_an_sms_claim_then_list_and_show_it_with_its_review_deadline(
    cli: Cli, ledger: Ledger
) -> None:
    order = await number(ledger)
    out = succeeded(await cli(*file_args(order, SMS)))
    assert f"filed sms_not_received complaint on order {order.order_id}" in out and "evidence" not in out
    complaint_id = complaint_id_in(out)
    assert f"{complaint_id}: under_review (deadline " in out
    await in_ledger(ledger, complaint_id)

    listed = succeeded(await cli("complaints", "list", "--kind", "sms_not_received"))
    row = next(line for line in listed.splitlines() if complaint_id in line)
    assert order.customer_id in row and "sms_not_received" in row and "under_review" in row
    assert "4d 23h" in row, "the review deadline: five days from filing"
    assert complaint_id not in succeeded(await cli("complaints", "list", "--kind", "major_defect"))

    shown = succeeded(await cli("complaints", "show", complaint_id))
    assert "review deadline" in shown and "4d 23h" in shown
    assert "by backend:alice" in shown, "the shop's backend filed it on the customer's behalf"
    assert "never received the WhatsApp code" in shown and "UK number for WhatsApp" in shown
    assert "evidence" not in shown.split("events", 1)[0]


async def test_an_invalid_number_claim_without_evidence_is_refused_and_writes_nothing(
    cli: Cli, ledger: Ledger
) -> None:
    order = await number(ledger)
    before = await ledger.table_counts()
    failed(await cli(*file_args(order, INVALID)), 1, "evidence_required: ")
    assert await ledger.table_counts() == before


async def test_an_invalid_number_claim_keeps_a_png_screenshot_and_show_lists_it(
    cli: Cli, ledger: Ledger, tmp_path: Path
) -> None:
    order = await number(ledger)
    screenshot = tmp_path / "2fa-screen.png"
    screenshot.write_bytes(tiny_png())
    notes = tmp_path / "what-happened.txt"
    notes.write_text("WhatsApp said: this number is not valid\n")

    out = succeeded(
        await cli(*file_args(order, INVALID, CLAIM, "--evidence", str(screenshot), "--evidence", str(notes)))
    )
    assert "filed invalid_number complaint" in out and "with 2 evidence files" in out
    complaint_id = complaint_id_in(out)
    stored = await ledger.evidence_of(complaint_id)
    assert [(e.name, e.content_type, e.size) for e in stored] == [
        ("2fa-screen.png", "image/png", len(tiny_png())),
        ("what-happened.txt", "text/plain", len(notes.read_bytes())),
    ]
    found = await ledger.evidence_data(stored[0].ref)
    assert found is not None and found[1].data == tiny_png()

    shown = succeeded(await cli("complaints", "show", complaint_id))
    assert f"2fa-screen.png (image/png, {len(tiny_png())} B)" in shown
    assert f"what-happened.txt (text/plain, {len(notes.read_bytes())} B)" in shown


async def test_file_a_major_defect_on_a_software_order(cli: Cli, ledger: Ledger) -> None:
    order, _ = await ledger.record_order(software_order())
    out = succeeded(await cli(*file_args(order, DEFECT, DESCRIPTION)))
    complaint_id = complaint_id_in(out)
    assert f"{complaint_id}: under_review (deadline " in out and "4d 23h" in out
    await in_ledger(ledger, complaint_id)
    shown = succeeded(await cli("complaints", "show", complaint_id))
    assert "major_defect" in shown and "review deadline" not in shown and "deadline" in shown


async def test_the_cli_files_under_the_policy_make_run_saved(
    cli: Cli, ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CLI in a second shell, with none of `make run`'s exports, files under the windows it started with."""
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    save_policy(PolicySnapshot(rectify_window=timedelta(minutes=30)))  # as `make run` does
    saved = Cli({**cli.env, DATA_DIR_ENV: str(tmp_path), "REFUND_DESK_RECTIFY_WINDOW": None})
    order, _ = await ledger.record_order(software_order())
    out = succeeded(await saved(*file_args(order, DEFECT, DESCRIPTION)))
    complaint_id = complaint_id_in(out)
    await in_ledger(ledger, complaint_id)
    record = await ledger.get_complaint(complaint_id)
    assert record is not None and record.state.deadline is not None
    assert record.state.deadline - record.state.created_at == timedelta(minutes=30)


async def test_a_claim_must_fit_the_product_it_is_about(cli: Cli, ledger: Ledger) -> None:
    software, _ = await ledger.record_order(software_order())
    rented_number = await number(ledger)
    before = await ledger.table_counts()
    failed(await cli(*file_args(software, SMS)), 1, "kind_not_for_product: ")
    failed(await cli(*file_args(software, INVALID)), 1, "kind_not_for_product: ")
    failed(await cli(*file_args(rented_number, DEFECT, DESCRIPTION)), 1, "kind_not_for_product: ")
    assert await ledger.table_counts() == before


async def test_a_short_description_is_refused_as_insufficient_reasons(cli: Cli, ledger: Ledger) -> None:
    order = await number(ledger)
    before = await ledger.table_counts()
    failed(await cli(*file_args(order, SMS, "no sms")), 1, "insufficient_reasons: ")
    assert await ledger.table_counts() == before


async def test_a_claim_after_the_claim_window_is_refused(cli: Cli, ledger: Ledger) -> None:
    order, _ = await ledger.record_order(number_order(placed_at=datetime.now(UTC) - timedelta(days=6)))
    before = await ledger.table_counts()
    failed(await cli(*file_args(order, SMS)), 1, "claim_window_expired: ")
    assert await ledger.table_counts() == before


async def test_an_sms_claim_is_refused_while_the_number_waits_and_once_its_sms_came(
    cli: Cli, ledger: Ledger
) -> None:
    order = await number(ledger)
    activation_id = await rented(cli, order)
    failed(await cli(*file_args(order, SMS)), 1, "activation_pending: ")
    succeeded(await cli("activations", "sms", activation_id, "code 4242"))
    failed(await cli(*file_args(order, SMS)), 1, "activation_completed: ")
    assert (await ledger.table_counts(["complaints"])) == {"complaints": 0}


async def test_an_sms_claim_after_the_cancel_refunded_it_is_already_refunded(
    cli: Cli, ledger: Ledger
) -> None:
    order = await number(ledger)
    activation_id = await rented(cli, order)
    succeeded(await cli("activations", "cancel", activation_id))
    failed(await cli(*file_args(order, SMS)), 1, "already_refunded: ")
    assert (await ledger.table_counts(["complaints"])) == {"complaints": 0}


async def test_a_second_open_claim_of_the_same_kind_is_refused(cli: Cli, ledger: Ledger) -> None:
    order = await number(ledger)
    first = complaint_id_in(succeeded(await cli(*file_args(order, SMS))))
    await in_ledger(ledger, first)
    failed(await cli(*file_args(order, SMS)), 1, "complaint_already_open: ")
    assert (await ledger.table_counts(["complaints"])) == {"complaints": 1}


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        ("screen.png", b"not a png at all", "the file's content is not image/png"),
        ("screen.bin", PNG_SIGNATURE + b"rest", "application/octet-stream is not accepted"),
    ],
)
async def test_evidence_the_policy_does_not_accept_is_rejected_and_nothing_is_stored(
    cli: Cli, ledger: Ledger, tmp_path: Path, name: str, data: bytes, says: str
) -> None:
    order = await number(ledger)
    path = tmp_path / name
    path.write_bytes(data)
    before = await ledger.table_counts()
    message = failed(
        await cli(*file_args(order, INVALID, CLAIM, "--evidence", str(path))), 1, "evidence_rejected: "
    )
    assert says in message
    assert await ledger.table_counts() == before


async def test_evidence_that_cannot_be_read_is_a_usage_error(
    cli: Cli, ledger: Ledger, tmp_path: Path
) -> None:
    order = await number(ledger)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    huge = tmp_path / "huge.png"
    with huge.open("wb") as sparse:
        sparse.truncate(MAX_FILE_BYTES + 1)
    before = await ledger.table_counts()
    for path, says in [
        (tmp_path / "absent.png", "No such file or directory"),
        (tmp_path, "Is a directory"),
        (empty, "data: "),
        (huge, "larger than 5 MiB"),
    ]:
        result = await cli(*file_args(order, INVALID, CLAIM, "--evidence", str(path)))
        failed(result, 2, f"--evidence {path}: {says}")
    assert await ledger.table_counts() == before


async def test_file_refuses_an_unknown_order_and_another_customers_order(cli: Cli, ledger: Ledger) -> None:
    order = await number(ledger)
    failed(
        await cli("complaints", "file", "ord-nope", "--kind", "sms_not_received", "--description", CLAIM),
        1,
        "order_not_found: no order ord-nope",
    )
    others = await cli(*file_args(order, SMS, CLAIM, "--customer", "cust-someone-else"))
    failed(others, 1, f"order_not_found: no order {order.order_id} for customer cust-someone-else")
    assert (await ledger.table_counts(["complaints"])) == {"complaints": 0}
    mine = succeeded(await cli(*file_args(order, SMS, CLAIM, "--customer", order.customer_id)))
    assert "filed sms_not_received complaint" in mine


# ------------------------------------------------------------------------------- reviewing claims


async def claimed(cli: Cli, ledger: Ledger, kind: ComplaintKind = SMS) -> tuple[Order, str]:
    """A claim about a number filed through the CLI, once the ledger has it."""
    order = await number(ledger)
    out = succeeded(await cli(*file_args(order, kind)))
    complaint_id = complaint_id_in(out)
    await in_ledger(ledger, complaint_id)
    return order, complaint_id


def test_the_reason_option_takes_exactly_every_rejection_reason() -> None:
    policy_codes = {code.value for code in DefectRejection} | {code.value for code in ClaimRejection}
    assert {code.value for code in ReviewReason} == policy_codes
    for code in ReviewReason:
        assert code.rejection_reason().value == code.value


@pytest.mark.parametrize("reason", ["sms_delivered", "contradicts_terms"])
async def test_reject_an_sms_claim_with_a_claim_reason(
    cli: Cli, desk: ComplaintDesk, ledger: Ledger, reason: str
) -> None:
    order, complaint_id = await claimed(cli, ledger)
    out = succeeded(await cli("complaints", "review", complaint_id, "--reject", "--reason", reason))
    assert f"{complaint_id}: rejected" in out
    final = await desk.get(complaint_id)
    assert final.resolution is not None and final.resolution.reason_code == reason
    assert final.review is not None and final.review.by == "support:alice"
    assert (await ledger.balance(order.customer_id)).entries == []

    await in_ledger(ledger, complaint_id, ComplaintStatus.REJECTED)
    assert complaint_id in succeeded(await cli("complaints", "list", "--status", "rejected"))
    shown = succeeded(await cli("complaints", "show", complaint_id))
    assert f"rejected ({reason})" in shown


async def test_a_reason_that_does_not_fit_the_kind_is_refused_and_changes_nothing(
    cli: Cli, desk: ComplaintDesk, ledger: Ledger
) -> None:
    _, complaint_id = await claimed(cli, ledger)
    before = await desk.get(complaint_id)
    misfit = await cli("complaints", "review", complaint_id, "--reject", "--reason", "user_api_misuse")
    failed(misfit, 1, "reason_code_not_allowed: user_api_misuse is not a reason to reject a sms_not_received")
    await unchanged(desk, before)

    defect = await filed(desk, ledger)
    misfit = await cli("complaints", "review", defect.complaint_id, "--reject", "--reason", "number_valid")
    failed(misfit, 1, "reason_code_not_allowed: ")
    await unchanged(desk, await desk.get(defect.complaint_id))

    unknown = await cli("complaints", "review", complaint_id, "--reject", "--reason", "because")
    assert unknown.exit_code == 2 and "because" in unknown.stderr and "sms_delivered" in unknown.stderr
    await unchanged(desk, before)


async def test_reject_an_invalid_number_claim_as_number_valid(
    cli: Cli, desk: ComplaintDesk, ledger: Ledger, tmp_path: Path
) -> None:
    order = await number(ledger)
    screenshot = tmp_path / "screen.png"
    screenshot.write_bytes(tiny_png())
    complaint_id = complaint_id_in(
        succeeded(await cli(*file_args(order, INVALID, CLAIM, "--evidence", str(screenshot))))
    )
    out = succeeded(await cli("complaints", "review", complaint_id, "--reject", "--reason", "number_valid"))
    assert f"{complaint_id}: rejected" in out
    final = await desk.get(complaint_id)
    assert final.resolution is not None and final.resolution.reason_code == "number_valid"


async def test_approving_a_claim_refunds_the_price_and_show_says_so(
    cli: Cli, desk: ComplaintDesk, ledger: Ledger
) -> None:
    order, complaint_id = await claimed(cli, ledger)
    out = succeeded(
        await cli("complaints", "review", complaint_id, "--approve", "--note", "provider log empty")
    )
    assert f"{complaint_id}: refunded" in out
    balance = await ledger.balance(order.customer_id)
    assert balance.totals == {"EUR": Decimal("0.75")} and len(balance.entries) == 1

    await in_ledger(ledger, complaint_id, ComplaintStatus.REFUNDED)
    row = next(
        line
        for line in succeeded(await cli("complaints", "list", "--status", "refunded")).splitlines()
        if complaint_id in line
    )
    assert "sms_not_received" in row and "—" in row, "a final claim has no clock"
    resolution = next(
        line
        for line in succeeded(await cli("complaints", "show", complaint_id)).splitlines()
        if "resolution" in line
    )
    assert "refunded, 0.75 EUR at " in resolution
    shown = succeeded(await cli("complaints", "show", complaint_id))
    assert "refund amount: 0.75 EUR; refund issued at: " in shown, "a nested record flattened under its key"
    assert 'note: "provider log empty"' in shown
    assert "{" not in shown.split("events", 1)[1], "an event's detail is text, never a dict"


async def test_a_withdrawn_claim_is_listed_and_shown_as_withdrawn(
    cli: Cli, desk: ComplaintDesk, ledger: Ledger
) -> None:
    order, complaint_id = await claimed(cli, ledger)
    await desk.withdraw(complaint_id, customer(order), note="the code came after all")
    await in_ledger(ledger, complaint_id, ComplaintStatus.WITHDRAWN)
    listed = succeeded(await cli("complaints", "list", "--status", "withdrawn", "--kind", "sms_not_received"))
    assert complaint_id in listed
    shown = succeeded(await cli("complaints", "show", complaint_id))
    assert "withdrawn" in shown and f"customer:{order.customer_id}" in shown


async def test_an_unreviewed_claim_is_listed_as_escalated_and_can_still_be_rejected(
    cli: Cli, desk: ComplaintDesk, ledger: Ledger, env: WorkflowEnvironment
) -> None:
    _, complaint_id = await claimed(cli, ledger)
    await env.sleep(POLICY.review_window + timedelta(hours=1))
    await in_ledger(ledger, complaint_id, ComplaintStatus.ESCALATED)

    listed = succeeded(await cli("complaints", "list", "--status", "escalated"))
    row = next(line for line in listed.splitlines() if complaint_id in line)
    assert "sms_not_received" in row and "escalated" in row
    assert "escalated" in succeeded(await cli("complaints", "show", complaint_id))

    out = succeeded(
        await cli("complaints", "review", complaint_id, "--reject", "--reason", "insufficient_evidence")
    )
    assert f"{complaint_id}: rejected" in out


# ------------------------------------------------------------------------------------- support's doors


def test_help_lists_support_doors() -> None:
    sub = succeeded(runner.invoke(app, ["complaints", "--help"], env={"COLUMNS": "200"}))
    for command in ("evidence", "reveal-credentials"):
        assert re.search(rf"^\W*{command} ", sub, re.M), (command, sub)


async def test_r6_evidence_saves_the_file_as_filed_and_refuses_a_damaged_one(
    cli: Cli, ledger: Ledger, tmp_path: Path
) -> None:
    order = await number(ledger)
    screenshot = tmp_path / "2fa-screen.png"
    screenshot.write_bytes(tiny_png())
    complaint_id = complaint_id_in(
        succeeded(await cli(*file_args(order, INVALID, CLAIM, "--evidence", str(screenshot))))
    )
    ref = (await ledger.evidence_of(complaint_id))[0].ref
    assert f"2fa-screen.png (image/png, {len(tiny_png())} B), ref {ref}" in succeeded(
        await cli("complaints", "show", complaint_id)
    )

    saved = tmp_path / "opened.png"
    out = succeeded(await cli("complaints", "evidence", complaint_id, ref, "--out", str(saved)))
    assert saved.read_bytes() == tiny_png() and saved.stat().st_mode & 0o777 == 0o600
    assert f"saved 2fa-screen.png (image/png, {len(tiny_png())} B) to {saved}" in out
    assert hashlib.sha256(tiny_png()).hexdigest() in out
    failed(await cli("complaints", "evidence", complaint_id, ref, "--out", str(saved)), 2, "--out ")
    succeeded(await cli("complaints", "evidence", complaint_id, ref, "--out", str(saved), "--force"))
    folder = tmp_path / "inbox"
    folder.mkdir()
    succeeded(await cli("complaints", "evidence", complaint_id, ref, "--out", str(folder)))
    assert (folder / "2fa-screen.png").read_bytes() == tiny_png(), "a folder: saved under the stored name"

    unknown = tmp_path / "unknown.png"
    failed(
        await cli("complaints", "evidence", complaint_id, "ev_" + "0" * 32, "--out", str(unknown)),
        1,
        "evidence_not_found: ",
    )
    async with ledger.engine.begin() as conn:
        await conn.execute(update(EvidenceRow).where(EvidenceRow.ref == ref).values(data=b"not the png"))
    damaged = tmp_path / "damaged.png"
    failed(
        await cli("complaints", "evidence", complaint_id, ref, "--out", str(damaged)), 1, "evidence_damaged: "
    )
    assert not damaged.exists() and not unknown.exists(), "a refusal writes nothing"


async def test_r9_reveal_credentials_prints_them_once_and_records_who_revealed_them(
    cli: Cli, desk: ComplaintDesk, ledger: Ledger
) -> None:
    state = await filed(desk, ledger)
    complaint_id = state.complaint_id
    failed(await cli("complaints", "reveal-credentials", complaint_id), 1, "invalid_state: no server access")
    succeeded(await cli("complaints", "request-access", complaint_id, "--scope", "ssh", "--reason", "logs"))
    failed(await cli("complaints", "reveal-credentials", complaint_id), 1, "invalid_state: access request #1")
    await desk.grant_access(complaint_id, customer(state.order), credentials())

    out = succeeded(await cli("complaints", "reveal-credentials", complaint_id, "--as", "bob"))
    assert "shop.example.net" in out and "deploy" in out
    assert SECRET in out.split(), "the secret whole, on its line"
    assert "credentials_revealed by support:bob" in out
    shown = succeeded(await cli("complaints", "show", complaint_id))
    assert "credentials_revealed" in shown and "support:bob" in shown and SECRET not in shown

    succeeded(await cli("complaints", "fix", complaint_id))
    await in_ledger(ledger, complaint_id, S.RECTIFIED)
    ended = failed(await cli("complaints", "reveal-credentials", complaint_id), 1, "invalid_state: ")
    assert "rectified" in ended and SECRET not in ended
    events = (await desk.get(complaint_id)).events
    assert [e.actor for e in events if e.type == "credentials_revealed"] == ["support:bob"]
