"""The worker accepts only what the desk sealed: anyone who reaches the Temporal frontend can send a plain
JSON update naming any actor, or replay a payload captured from another complaint's history. Each is
refused without changing anything and without wedging the complaint, which goes on as if nothing had been
sent; the desk's own sealed inputs keep working. On the time-skipping server with the real worker and a
real ledger; the direct update goes through the real `temporal` CLI too."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from ledger.repository import Ledger
from ledger.vault import VaultKeyring
from policy.complaint import ComplaintState, FileDefectComplaint, Review
from policy.ids import complaint_workflow_id, new_complaint_id, workflow_id_of
from policy.models import ComplaintKind, ComplaintStatus, ReviewDecision
from starter.binaries import tool_path
from starter.desk import ComplaintDesk
from starter.desk.codec import EncryptionCodec, encrypting_converter
from starter.desk.sealed import UNSEALED_INPUT
from tests.conftest import TimeSkippingDesk
from tests.factories import DESCRIPTION, PAYLOAD_KEYS, POLICY, SUPPORT, customer, software_order
from worker import build_worker
from workflows.defect_complaint import DefectComplaintWorkflow

FORGED = Review(actor=SUPPORT.model_copy(update={"id": "forged-agent"}), decision=ReviewDecision.APPROVE)


async def filed(desk: ComplaintDesk) -> ComplaintState:
    order, _ = await desk.ledger.record_order(software_order())
    return await desk.file_defect_complaint(order, DESCRIPTION, filed_by=customer(order), policy=POLICY)


def plain_client(env: WorkflowEnvironment) -> Client:
    """A client as anyone with the frontend's address has one: no keys, plain JSON payloads."""
    config = env.client.config()
    config["data_converter"] = pydantic_data_converter
    return Client(**config)


class CapturedFrom(EncryptionCodec):
    """Seals every payload for one workflow, whatever it is sent to: a payload read from that complaint's
    history and replayed against another."""

    def __init__(self, workflow_id: str) -> None:
        super().__init__(PAYLOAD_KEYS)
        self.captured_from = workflow_id

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(payload, self.captured_from) for payload in payloads]


class OlderRelease(EncryptionCodec):
    """A client of a release that sent its inputs in clear (and reads the worker's sealed answers)."""

    def __init__(self) -> None:
        super().__init__(PAYLOAD_KEYS)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)


async def refused_unsealed(sending: Awaitable[object]) -> None:
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await sending
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == UNSEALED_INPUT, cause


async def unchanged(desk: ComplaintDesk, before: ComplaintState) -> None:
    after = await desk.get(before.complaint_id)
    assert after.status is before.status and [e.type for e in after.events] == [e.type for e in before.events]
    assert after.review is None
    trail = await desk.ledger.complaint_events(before.complaint_id)
    assert [e.type for e in trail] == ["filed"] and all("forged" not in e.actor for e in trail)


async def test_a_plain_json_update_naming_any_actor_is_refused_and_the_complaint_goes_on(
    env: WorkflowEnvironment, desk: ComplaintDesk
) -> None:
    state = await filed(desk)
    handle = plain_client(env).get_workflow_handle(workflow_id_of(state.complaint_id))
    await refused_unsealed(handle.execute_update(DefectComplaintWorkflow.review, FORGED))
    await unchanged(desk, state)
    reviewed = await desk.review(state.complaint_id, Review(actor=SUPPORT, decision=ReviewDecision.APPROVE))
    assert reviewed.status is ComplaintStatus.RECTIFYING and reviewed.review is not None
    assert reviewed.review.by == "support:alice"


async def test_a_payload_sealed_for_another_complaint_is_refused(
    env: WorkflowEnvironment, desk: ComplaintDesk
) -> None:
    victim, other = await filed(desk), await filed(desk)
    config = env.client.config()
    config["data_converter"] = dataclasses.replace(
        encrypting_converter(PAYLOAD_KEYS), payload_codec=CapturedFrom(workflow_id_of(other.complaint_id))
    )
    replaying = Client(**config).get_workflow_handle(workflow_id_of(victim.complaint_id))
    await refused_unsealed(replaying.execute_update(DefectComplaintWorkflow.review, FORGED))
    await unchanged(desk, victim)


async def test_a_plain_json_start_fails_at_once_and_writes_nothing(
    env: WorkflowEnvironment, desk: ComplaintDesk, ledger: Ledger
) -> None:
    order = software_order()
    await ledger.record_order(order)
    before = await ledger.table_counts()
    filing = FileDefectComplaint(
        complaint_id=new_complaint_id(order.order_id, ComplaintKind.MAJOR_DEFECT),
        order=order,
        description=DESCRIPTION,
        filed_by=customer(order),
        policy=POLICY,
    )
    workflow_id = complaint_workflow_id(order.order_id, ComplaintKind.MAJOR_DEFECT)
    with pytest.raises(WorkflowFailureError) as failed:
        await plain_client(env).execute_workflow(
            DefectComplaintWorkflow.run, filing, id=workflow_id, task_queue=desk.task_queue
        )
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == UNSEALED_INPUT
    assert await ledger.table_counts() == before


async def test_an_older_releases_plain_input_passes_until_the_grace_period_ends(
    env: WorkflowEnvironment, ledger: Ledger, keyring: VaultKeyring
) -> None:
    queue = "tq-grace"
    until = datetime.now(UTC) + timedelta(days=1)
    async with build_worker(env.client, ledger, keyring, queue, accept_unsealed_until=until):
        desk = TimeSkippingDesk(client=env.client, ledger=ledger, keyring=keyring, task_queue=queue)
        state = await filed(desk)
        config = env.client.config()
        config["data_converter"] = dataclasses.replace(
            encrypting_converter(PAYLOAD_KEYS), payload_codec=OlderRelease()
        )
        handle = Client(**config).get_workflow_handle(workflow_id_of(state.complaint_id))
        approved = await handle.execute_update(
            DefectComplaintWorkflow.review, Review(actor=SUPPORT, decision=ReviewDecision.APPROVE)
        )
    assert approved.status is ComplaintStatus.RECTIFYING


async def test_a_direct_update_through_the_temporal_cli_is_refused_and_changes_nothing(
    env: WorkflowEnvironment, desk: ComplaintDesk
) -> None:
    state = await filed(desk)
    update = {"actor": {"role": "support", "id": "forged-agent"}, "decision": "approve", "note": ""}
    command = [
        tool_path("temporal"),
        "workflow",
        "update",
        "execute",
        "--address",
        env.client.service_client.config.target_host,
        "--namespace",
        env.client.namespace,
        "--workflow-id",
        workflow_id_of(state.complaint_id),
        "--name",
        "review",
        "--input",
        json.dumps(update),
    ]
    done = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0, done.stdout
    assert UNSEALED_INPUT in done.stdout + done.stderr, done.stdout + done.stderr
    await unchanged(desk, state)
