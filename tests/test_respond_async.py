"""The asynchronous form over real HTTP on the Temporal dev server, as a system uses it: the worker stopped,
the report sent with `Prefer: respond-async` (202 at once), a worker started, and the complaint as the
report made it (or the refusal in its trail and support's notices)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from ledger.repository import Ledger
from ledger.vault import VaultKeyring
from policy.complaint import Review
from policy.ids import workflow_id_of
from policy.models import ReviewDecision
from policy.reports import derived_report_id
from starter.api.respond_async import prefers_async
from starter.desk import ComplaintDesk
from tests.conftest import Api, migrated_ledger, serving
from tests.factories import DESCRIPTION, POLICY, SECRET, SUPPORT, customer, history_text, software_order
from worker import build_worker

QUICKLY = 5.0
"""Seconds a 202 may take: an update without a worker would wait the desk's patience (30 s), then 503."""


@dataclass
class Stage:
    env: WorkflowEnvironment
    ledger: Ledger
    desk: ComplaintDesk
    api: Api

    @asynccontextmanager
    async def worker(self) -> AsyncIterator[None]:
        """A worker for the block, with nothing cached: once it stops, nothing of it waits on a sticky
        queue, and the next worker takes every task."""
        async with build_worker(
            self.env.client, self.ledger, self.desk.keyring, self.desk.task_queue, max_cached_workflows=0
        ):
            yield

    async def defect(self, *, approved: bool) -> tuple[str, str]:
        """A defect complaint filed (and approved) while a worker runs: its id and its customer."""
        order = software_order()
        await self.ledger.record_order(order)
        async with self.worker():
            state = await self.desk.file_defect_complaint(order, DESCRIPTION, customer(order), POLICY)
            if approved:
                await self.desk.review(
                    state.complaint_id, Review(actor=SUPPORT, decision=ReviewDecision.APPROVE)
                )
        return state.complaint_id, order.customer_id

    async def read(self, location: str, until: str) -> dict[str, Any]:
        """The complaint at `location` once its trail holds an event of type `until` (a worker runs)."""
        reader = self.api.support()
        for _ in range(300):
            complaint: dict[str, Any] = (await reader.get(location)).json()
            if until in [event["type"] for event in complaint["events"]]:
                return complaint
            await asyncio.sleep(0.1)
        raise AssertionError(f"{location} never recorded {until}: {complaint}")


@pytest.fixture
async def stage(dev_server: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Stage]:
    ledger = await migrated_ledger(f"sqlite+aiosqlite:///{tmp_path}/ledger.db")
    desk = ComplaintDesk(
        client=dev_server.client,
        ledger=ledger,
        keyring=VaultKeyring.generate(),
        task_queue=f"async-{uuid.uuid4().hex[:8]}",
    )
    try:
        async with serving(desk) as api:
            yield Stage(dev_server, ledger, desk, api)
    finally:
        await ledger.close()


async def _post_timed(client: httpx.AsyncClient, path: str, **kwargs: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await client.post(path, **kwargs)
    return response, time.monotonic() - started


async def test_r11_a_fix_reported_by_signal_while_no_worker_runs_rectifies_the_complaint(
    stage: Stage,
) -> None:
    cid, _ = await stage.defect(approved=True)
    pipeline = stage.api.support("deploy-bot")
    key = str(uuid.uuid4())
    headers = {"Prefer": "wait=10, Respond-Async", "Idempotency-Key": key}
    sent, took = await _post_timed(
        pipeline, f"/v1/complaints/{cid}/fix", json={"note": "2.3.1 deployed"}, headers=headers
    )
    assert sent.status_code == 202 and took < QUICKLY, (sent.status_code, took, sent.text)
    location = f"/v1/complaints/{cid}"
    assert sent.headers["location"] == location and sent.headers["preference-applied"] == "respond-async"
    accepted = sent.json()
    assert set(accepted) == {"complaint_id", "report_id", "action", "accepted_at"}
    assert accepted["complaint_id"] == cid and accepted["action"] == "mark_fixed"
    assert accepted["report_id"] == derived_report_id("support:deploy-bot", cid, "mark_fixed", key)
    again = await pipeline.post(f"/v1/complaints/{cid}/fix", json={"note": "2.3.1 deployed"}, headers=headers)
    assert again.status_code == 202 and again.json() == accepted  # the retry is the same report
    waiting = (await stage.api.support().get(location)).json()
    assert waiting["status"] == "rectifying"  # no worker has taken it yet

    async with stage.worker():
        final = await stage.read(location, until="rectified")
    assert final["status"] == "rectified" and final["resolution"]["outcome"] == "rectified"
    assert [e["type"] for e in final["events"]] == ["filed", "deficiency_approved", "rectified"]
    assert final["events"][-1]["actor"] == "support:deploy-bot"


async def test_r9_a_grant_reported_while_none_was_requested_is_refused_in_the_trail_and_told_to_support(
    stage: Stage,
) -> None:
    cid, customer_id = await stage.defect(approved=False)
    panel = stage.api.customer(customer_id)
    grant = {
        "grant": True,
        "credentials": {"host": "web1.example.com", "username": "deploy", "secret": SECRET},
    }
    sent, took = await _post_timed(
        panel, f"/v1/complaints/{cid}/access", json=grant, headers={"Prefer": "respond-async"}
    )
    assert sent.status_code == 202 and took < QUICKLY, (sent.status_code, took, sent.text)
    assert SECRET not in sent.text and sent.json()["action"] == "grant_access"

    async with stage.worker():
        complaint = await stage.read(sent.headers["location"], until="report_refused")
    refused = complaint["events"][-1]
    assert refused["actor"] == f"customer:{customer_id}"
    assert refused["detail"]["reason_code"] == "invalid_state"
    assert refused["detail"]["report_id"] == sent.json()["report_id"]
    assert complaint["status"] == "under_review" and SECRET not in str(complaint)
    notices = (await stage.api.support().get("/v1/notices", params={"complaint_id": cid})).json()
    assert [(n["what"], n["to"]) for n in notices["items"] if n["what"] == "report_refused"] == [
        ("report_refused", "support")
    ]
    history = await stage.env.client.get_workflow_handle(workflow_id_of(cid)).fetch_history()
    assert "grant_access" in history_text(history)  # the report is there, its credentials sealed
    assert SECRET not in history.to_json() and SECRET not in history_text(history)


async def test_without_the_preference_the_action_stays_an_update(stage: Stage) -> None:
    cid, customer_id = await stage.defect(approved=False)
    async with stage.worker():
        withdrawn = await stage.api.customer(customer_id).post(
            f"/v1/complaints/{cid}/withdraw", headers={"Prefer": "return=minimal, handling=lenient"}
        )
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn", withdrawn.text
    assert "preference-applied" not in withdrawn.headers


async def test_a_report_on_an_ended_complaint_is_refused_at_once_with_its_code(stage: Stage) -> None:
    cid, customer_id = await stage.defect(approved=False)
    owner = stage.api.customer(customer_id)
    async with stage.worker():
        assert (await owner.post(f"/v1/complaints/{cid}/withdraw")).status_code == 200
    again = await owner.post(f"/v1/complaints/{cid}/withdraw", headers={"Prefer": "respond-async"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_state", again.text
    other = await stage.api.customer("cust-stranger").post(
        f"/v1/complaints/{cid}/withdraw", headers={"Prefer": "respond-async"}
    )
    assert other.status_code == 404 and other.json()["error"]["code"] == "complaint_not_found"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["respond-async"], True),
        (["RESPOND-ASYNC"], True),
        (["wait=10, respond-async"], True),
        (["return=minimal", "respond-async; foo=bar"], True),
        (['handling="lenient, respond-async"'], False),  # inside a quoted value, not a preference
        (["respond-asynchronously"], False),
        (["return=minimal"], False),
        ([], False),
        (['"' * 20_000 + ", respond-async"], False),  # past the length read: ignored, and at once
    ],
)
def test_the_prefer_header_is_read_as_rfc_7240_says(values: list[str], expected: bool) -> None:
    assert prefers_async(values) is expected
