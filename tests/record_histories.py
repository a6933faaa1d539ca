"""Record the main complaint scenarios' histories into tests/histories/ for the replay test.

Run `python -m tests.record_histories` after an intended, compatible change to a workflow (or to add a
scenario); never to make a failing replay pass: that failure means running complaints would break.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from ledger.vault import VaultKeyring
from policy.complaint import Review
from policy.models import Actor, DefectRejection, Money, RemedyChoice, ReplacementOffer, ReviewDecision, Role
from starter.binaries import tool_path
from starter.client import ComplaintDesk, register_search_attributes, workflow_id_of
from tests.conftest import TimeSkippingDesk, migrated_ledger
from tests.factories import DESCRIPTION, POLICY, SUPPORT, credentials, customer, software_order
from worker import build_worker

HISTORIES = Path(__file__).parent / "histories"
APPROVE = Review(actor=SUPPORT, decision=ReviewDecision.APPROVE, note="reproduced")

Scenario = Callable[[ComplaintDesk, WorkflowEnvironment, str, str], Awaitable[None]]


async def refunded_by_default_after_access(
    desk: ComplaintDesk, env: WorkflowEnvironment, cid: str, cust: str
) -> None:
    await desk.request_access(cid, SUPPORT, scope="ssh", reason="reproduce")
    await env.sleep(timedelta(days=1))
    await desk.grant_access(cid, customer_actor(cust), credentials())
    await desk.review(cid, APPROVE)


async def replaced_with_offer(desk: ComplaintDesk, env: WorkflowEnvironment, cid: str, cust: str) -> None:
    offer = ReplacementOffer(
        sku="plugin-seo-max", name="SEO Max", value=Money(amount=Decimal("52.00"), currency="EUR")
    )
    await desk.review(cid, APPROVE)
    await desk.offer_replacement(cid, SUPPORT, offer)
    await desk.choose_remedy(cid, customer_actor(cust), RemedyChoice.REPLACEMENT)


async def rectified(desk: ComplaintDesk, env: WorkflowEnvironment, cid: str, cust: str) -> None:
    await desk.review(cid, APPROVE)
    await env.sleep(timedelta(days=2))
    await desk.mark_fixed(cid, SUPPORT, note="patched")


async def access_silence(desk: ComplaintDesk, env: WorkflowEnvironment, cid: str, cust: str) -> None:
    await desk.request_access(cid, SUPPORT, scope="ssh", reason="reproduce")


async def escalated_then_rejected(desk: ComplaintDesk, env: WorkflowEnvironment, cid: str, cust: str) -> None:
    await env.sleep(timedelta(days=5, hours=1))
    reject = Review(
        actor=SUPPORT, decision=ReviewDecision.REJECT, reason_code=DefectRejection.USER_API_MISUSE
    )
    await desk.review(cid, reject)


async def withdrawn_while_choosing(
    desk: ComplaintDesk, env: WorkflowEnvironment, cid: str, cust: str
) -> None:
    await desk.review(cid, APPROVE)
    await env.sleep(timedelta(days=5, hours=1))
    await desk.withdraw(cid, customer_actor(cust))


SCENARIOS: dict[str, Scenario] = {
    "refunded_by_default_after_access": refunded_by_default_after_access,
    "replaced_with_offer": replaced_with_offer,
    "rectified": rectified,
    "access_silence": access_silence,
    "escalated_then_rejected": escalated_then_rejected,
    "withdrawn_while_choosing": withdrawn_while_choosing,
}


def customer_actor(customer_id: str) -> Actor:
    return Actor(role=Role.CUSTOMER, id=customer_id)


async def record() -> None:
    HISTORIES.mkdir(exist_ok=True)
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=tool_path("temporal-test-server")
    )
    async with env:
        await register_search_attributes(env.client)
        with tempfile.TemporaryDirectory() as tmp:
            ledger = await migrated_ledger(f"sqlite+aiosqlite:///{tmp}/ledger.db")
            keyring = VaultKeyring.generate()
            queue = f"record-{uuid.uuid4().hex[:8]}"
            desk = TimeSkippingDesk(client=env.client, ledger=ledger, keyring=keyring, task_queue=queue)
            async with build_worker(env.client, ledger, keyring, queue):
                for name, scenario in SCENARIOS.items():
                    order = software_order()
                    state = await desk.file_defect_complaint(order, DESCRIPTION, customer(order), POLICY)
                    await scenario(desk, env, state.complaint_id, order.customer_id)
                    final = await desk.outcome(state.complaint_id)
                    handle = env.client.get_workflow_handle(workflow_id_of(state.complaint_id))
                    history = await handle.fetch_history()
                    path = HISTORIES / f"defect_{name}.json"
                    path.write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")
                    print(f"{path.name}: {final.status.value}, {len(history.events)} events")
            await ledger.close()


if __name__ == "__main__":
    asyncio.run(record())
