"""`refund-desk` through Typer's runner, against the time-skipping server, a worker and a real ledger.

The CLI opens its own desk from the environment, as it would in a shell: each test points it at the test's
server, task queue, ledger and vault keys. The runner runs in a thread because the CLI calls `asyncio.run`
and the tests already run on an event loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import jwt
import pytest
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner, Result

from ledger.repository import Ledger
from ledger.vault import VaultKeyring
from policy.complaint import ComplaintState
from policy.models import ComplaintStatus, Money
from starter.cli import app, time_left
from starter.client import ComplaintDesk
from tests.factories import DESCRIPTION, POLICY, SECRET, credentials, customer, software_order

S = ComplaintStatus
JWT_SECRET = "cli-test-secret-" + "y" * 40
runner = CliRunner()


async def invoke(args: list[str], env: dict[str, str | None]) -> Result:
    """One `refund-desk ...` run with `env` on top of the process's environment."""
    full_env = {"COLUMNS": "200", **env}
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
            "REFUND_DESK_OPERATOR": "alice",
        }
    )


async def filed(desk: ComplaintDesk, ledger: Ledger, price: str = "50.00") -> ComplaintState:
    """A defect complaint filed by its customer, once the ledger (which `list` reads) has it."""
    order = software_order(price=price)
    state = await desk.file_defect_complaint(order, DESCRIPTION, filed_by=customer(order), policy=POLICY)
    for _ in range(500):
        if await ledger.get_complaint(state.complaint_id) is not None:
            return state
        await asyncio.sleep(0.01)
    raise AssertionError(f"{state.complaint_id} never reached the ledger")


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
    failed(await cli("complaints", "show", missing), 1, f"no complaint {missing}")
    failed(await cli("complaints", "fix", missing), 1, f"no complaint {missing}")
    failed(await cli("complaints", "show", "not-a-complaint-id"), 1, "no complaint not-a-complaint-id")


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


async def test_unreachable_temporal_is_one_line(tmp_path: Path) -> None:
    env: dict[str, str | None] = {
        "TEMPORAL_ADDRESS": "127.0.0.1:1",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/ledger.db",
        "REFUND_DESK_VAULT_KEYS": VaultKeyring.generate().spec(),
    }
    result = await invoke(["complaints", "list"], env)
    failed(result, 1, "cannot reach Temporal at 127.0.0.1:1")


# ------------------------------------------------------------------------------------ token, migrate


async def test_token_mints_a_jwt_with_the_configured_secret() -> None:
    env: dict[str, str | None] = {"REFUND_DESK_JWT_SECRET": JWT_SECRET}
    token = succeeded(await invoke(["token", "--role", "support", "--sub", "bob"], env)).strip()
    claims = jwt.decode(token, JWT_SECRET, algorithms=["HS256"])
    assert (claims["role"], claims["sub"]) == ("support", "bob")
    now = datetime.now(UTC).timestamp()
    assert now < claims["exp"] <= now + 3600 + 5

    short = succeeded(await invoke(["token", "--role", "customer", "--sub", "c1", "--ttl", "PT5M"], env))
    claims = jwt.decode(short.strip(), JWT_SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 300


async def test_token_refuses_the_system_role_a_bad_ttl_and_a_missing_secret(tmp_path: Path) -> None:
    env: dict[str, str | None] = {"REFUND_DESK_JWT_SECRET": JWT_SECRET}
    system = await invoke(["token", "--role", "system", "--sub", "desk"], env)
    failed(system, 2, "tokens are for backend, support, customer")
    assert system.stdout == ""
    failed(await invoke(["token", "--role", "support", "--sub", "bob", "--ttl", "soon"], env), 2, "--ttl")

    no_secret: dict[str, str | None] = {
        "REFUND_DESK_JWT_SECRET": None,
        "REFUND_DESK_JWT_SECRET_FILE": str(tmp_path / "absent"),
    }
    failed(await invoke(["token", "--role", "support", "--sub", "bob"], no_secret), 2, "no JWT secret")


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


def test_help_lists_the_commands() -> None:
    out = succeeded(runner.invoke(app, ["--help"], env={"COLUMNS": "200"}))
    for command in ("serve", "worker", "migrate", "token", "complaints"):
        assert command in out
    sub = succeeded(runner.invoke(app, ["complaints", "--help"], env={"COLUMNS": "200"}))
    for command in ("list", "show", "review", "request-access", "fix", "offer-replacement"):
        assert command in sub
