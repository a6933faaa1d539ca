"""Reads come from the ledger, a filing is one update-with-start, and a read right after an action shows it.

Over real HTTP on the real desk and worker (the time-skipping server, a SQLite ledger), as in
`tests/test_api.py`:

- every action's answer is already the ledger's: a `GET /v1/complaints/{id}` sent the moment the action
  answers shows the same complaint, its status and its last event, for each action and for a filing;
- a read costs no Temporal call: with the worker stopped, the reads and the ownership checks still answer
  at once (they used to query the workflow, and waited the desk's patience, 30 s, for a 503), and a client
  interceptor counts no call at all while they run;
- a filing is one update-with-start: it answers with the "filed" event in the trail, a second open
  complaint is still `complaint_already_open` (its evidence discarded), a filing the workflow itself
  refuses is the same 422 refusal the desk's own intake gives, a filing with no worker is unresponsive
  within the desk's patience, and histories filed this way replay.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    DescribeWorkflowInput,
    FetchWorkflowHistoryEventsInput,
    Interceptor,
    OutboundInterceptor,
    QueryWorkflowInput,
    SignalWorkflowInput,
    StartWorkflowInput,
    StartWorkflowUpdateInput,
    StartWorkflowUpdateWithStartInput,
    WithStartWorkflowOperation,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateHandle,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from ledger.repository import Ledger
from ledger.vault import VaultKeyring
from policy.complaint import FileDefectComplaint, Filing, Review
from policy.evidence import EvidenceFile
from policy.ids import complaint_workflow_id, new_complaint_id
from policy.models import ComplaintKind, ComplaintStatus, Order, ReviewDecision
from policy.refusals import PolicyRefusal
from policy.settings import PolicySnapshot
from starter.desk import ComplaintDesk, ComplaintUnresponsive
from tests.conftest import Api, TimeSkippingDesk, serving
from tests.factories import BACKEND, CLAIM, DESCRIPTION, POLICY, SECRET, SUPPORT, customer, software_order
from tests.test_api import approved_complaint, error_of, file_complaint, new_customer, place_order
from tests.test_api_numbers import claim, evidence, place_number_order, sms, start_activation
from worker import WORKFLOWS, build_worker
from workflows.common import opened
from workflows.defect_complaint import DefectComplaintWorkflow

Json = dict[str, Any]

GRANT = {"grant": True, "credentials": {"host": "shop.example.net", "username": "deploy", "secret": SECRET}}
WRITTEN = ("complaints", "complaint_events", "evidence", "notifications")
"""What a filing writes; a refused one writes none of it."""


# ----------------------------------------------------------------------------------------------- helpers


async def read(api: Api, complaint_id: str) -> Json:
    """The complaint as support reads it, sent at once."""
    response = await api.support().get(f"/v1/complaints/{complaint_id}")
    assert response.status_code == 200, response.text
    body: Json = response.json()
    return body


async def acted(api: Api, response_of: Awaitable[httpx.Response], event: str, status: str) -> Json:
    """An action's answer, and the read sent the moment it came: the same complaint, the action's event
    last in its trail, in the action's status."""
    response = await response_of
    assert response.status_code == 200, response.text
    answered: Json = response.json()
    shown = await read(api, answered["complaint_id"])
    assert shown == answered, "the read right after the action shows what the action answered"
    assert shown["status"] == status, shown
    assert shown["events"][-1]["type"] == event, shown["events"]
    return shown


def event_types(complaint: Json) -> list[str]:
    return [event["type"] for event in complaint["events"]]


async def written(ledger: Ledger) -> dict[str, int]:
    return await ledger.table_counts(WRITTEN)


async def claim_under_review(api: Api, kind: str = "sms_not_received") -> Json:
    order = await place_number_order(api)
    attachments = [evidence()] if kind == "invalid_number" else []
    response = await claim(api, order, kind, attachments=attachments)
    assert response.status_code == 201, response.text
    body: Json = response.json()
    return body


# --------------------------------------------------------------------------- (a) read after each action


@pytest.mark.parametrize("who", ["customer", "backend"])
async def test_a_filing_is_in_the_ledger_when_it_answers_and_a_read_at_once_shows_it(
    api: Api, who: str
) -> None:
    owner = new_customer()
    order = await place_order(api, owner)
    filer = api.customer(owner) if who == "customer" else api.backend()
    response = await filer.post(
        "/v1/complaints",
        json={"order_id": order["order_id"], "kind": "major_defect", "description": DESCRIPTION},
    )
    assert response.status_code == 201, response.text
    filed: Json = response.json()
    assert filed["status"] == "under_review" and event_types(filed) == ["filed"]

    for reader in (api.support(), api.customer(owner), api.backend()):
        shown = await reader.get(f"/v1/complaints/{filed['complaint_id']}")
        assert shown.status_code == 200, shown.text
        assert shown.json() == filed
    listed = await api.customer(owner).get("/v1/complaints")
    assert [c["complaint_id"] for c in listed.json()["items"]] == [filed["complaint_id"]]


@pytest.mark.parametrize("kind", ["sms_not_received", "invalid_number"])
async def test_a_claim_filed_is_read_at_once_as_it_answered(api: Api, kind: str) -> None:
    filed = await claim_under_review(api, kind)
    assert event_types(filed) == ["filed"]
    assert await read(api, filed["complaint_id"]) == filed


async def test_each_action_on_a_defect_is_shown_by_a_read_right_after_it(api: Api) -> None:
    """Offer, review, access request, grant, reveal, remedy choice and fix: each answer is the ledger's."""
    complaint = await file_complaint(api)
    complaint_id, owner = complaint["complaint_id"], complaint["customer_id"]
    path = f"/v1/complaints/{complaint_id}"
    support, customer = api.support(), api.customer(owner)

    offer = {"sku": "plugin-seo-max", "name": "SEO Max plugin", "value": "50.00"}
    await acted(api, support.post(f"{path}/replacement", json=offer), "replacement_offered", "under_review")
    approve = {"decision": "approve", "note": "reproduced"}
    await acted(api, support.post(f"{path}/review", json=approve), "deficiency_approved", "rectifying")
    ask = {"scope": "ssh to the web host", "reason": "reproduce the crash"}
    await acted(api, support.post(f"{path}/access-request", json=ask), "access_requested", "awaiting_access")
    await acted(api, customer.post(f"{path}/access", json=GRANT), "access_granted", "rectifying")

    revealed = await support.post(f"{path}/credentials/reveal")
    assert revealed.status_code == 200, revealed.text
    shown = await read(api, complaint_id)
    last = shown["events"][-1]
    assert (last["type"], last["seq"]) == ("credentials_revealed", revealed.json()["event_seq"])

    choice = {"choice": "replacement"}
    chosen = await acted(api, customer.post(f"{path}/remedy", json=choice), "remedy_chosen", "rectifying")
    assert chosen["remedy_choice"] == "replacement"
    await acted(api, support.post(f"{path}/fix", json={"note": "patched"}), "rectified", "rectified")


async def test_the_same_remedy_twice_at_once_is_shown_by_the_read_after_either_answer(api: Api) -> None:
    """The second of two same choices sent at once records nothing and may answer while the first one's
    event is still being written: the desk answers it once the ledger shows that event too."""
    complaint = await approved_complaint(api)
    path, owner = f"/v1/complaints/{complaint['complaint_id']}", complaint["customer_id"]

    async def choose_then_read() -> tuple[Json, Json]:
        response = await api.customer(owner).post(f"{path}/remedy", json={"choice": "refund"})
        assert response.status_code == 200, response.text
        return response.json(), await read(api, complaint["complaint_id"])

    for answered, shown in await asyncio.gather(choose_then_read(), choose_then_read()):
        assert shown == answered
        assert (shown["remedy_choice"], event_types(shown)[-1]) == ("refund", "remedy_chosen")
    assert event_types(shown).count("remedy_chosen") == 1


@pytest.mark.parametrize(
    ("ending", "event"),
    [
        ("rejected", "rejected"),
        ("access_refused", "access_refused"),
        ("withdrawn", "withdrawn"),
    ],
)
async def test_each_action_that_ends_a_defect_is_shown_by_a_read_right_after_it(
    api: Api, ending: str, event: str
) -> None:
    complaint = await file_complaint(api)
    path, owner = f"/v1/complaints/{complaint['complaint_id']}", complaint["customer_id"]
    if ending == "rejected":
        body = {"decision": "reject", "reason_code": "not_a_defect", "note": "works here"}
        action = api.support().post(f"{path}/review", json=body)
    elif ending == "access_refused":
        ask = {"scope": "ssh", "reason": "reproduce"}
        await acted(
            api, api.support().post(f"{path}/access-request", json=ask), "access_requested", "awaiting_access"
        )
        action = api.customer(owner).post(f"{path}/access", json={"grant": False})
    else:
        action = api.customer(owner).post(f"{path}/withdraw", json={"note": "solved it myself"})
    await acted(api, action, event, ending)


@pytest.mark.parametrize(
    ("kind", "action", "event", "status"),
    [
        ("sms_not_received", "approve", "refunded", "refunded"),
        ("invalid_number", "reject", "rejected", "rejected"),
        ("sms_not_received", "withdraw", "withdrawn", "withdrawn"),
    ],
)
async def test_each_action_on_a_claim_is_shown_by_a_read_right_after_it(
    api: Api, kind: str, action: str, event: str, status: str
) -> None:
    filed = await claim_under_review(api, kind)
    path = f"/v1/complaints/{filed['complaint_id']}"
    if action == "approve":
        response = api.support().post(f"{path}/review", json={"decision": "approve", "note": ""})
    elif action == "reject":
        body = {"decision": "reject", "reason_code": "number_valid", "note": "it works"}
        response = api.support().post(f"{path}/review", json=body)
    else:
        response = api.customer(filed["customer_id"]).post(f"{path}/withdraw")
    shown = await acted(api, response, event, status)
    if action == "approve":
        assert event_types(shown) == ["filed", "claim_approved", "refunded"]


# ------------------------------------------------------------------------ (b) no Temporal call to read


class Calls(Interceptor):
    """Counts the client's calls to Temporal by kind: the ones the desk makes (starts, updates,
    update-with-start, queries, describes, signals, histories)."""

    def __init__(self) -> None:
        self.made: Counter[str] = Counter()

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _Counting(next, self.made)


class _Counting(OutboundInterceptor):
    def __init__(self, next: OutboundInterceptor, made: Counter[str]) -> None:
        super().__init__(next)
        self._made = made

    async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
        self._made["start_workflow"] += 1
        return await super().start_workflow(input)

    async def start_update_with_start_workflow(
        self, input: StartWorkflowUpdateWithStartInput
    ) -> WorkflowUpdateHandle[Any]:
        self._made["update_with_start"] += 1
        return await super().start_update_with_start_workflow(input)

    async def start_workflow_update(self, input: StartWorkflowUpdateInput) -> WorkflowUpdateHandle[Any]:
        self._made["update"] += 1
        return await super().start_workflow_update(input)

    async def query_workflow(self, input: QueryWorkflowInput) -> Any:
        self._made["query_workflow"] += 1
        return await super().query_workflow(input)

    async def describe_workflow(self, input: DescribeWorkflowInput) -> Any:
        self._made["describe_workflow"] += 1
        return await super().describe_workflow(input)

    async def signal_workflow(self, input: SignalWorkflowInput) -> None:
        self._made["signal_workflow"] += 1
        await super().signal_workflow(input)

    def fetch_workflow_history_events(self, input: FetchWorkflowHistoryEventsInput) -> Any:
        self._made["fetch_history"] += 1
        return super().fetch_workflow_history_events(input)


def counted(client: Client, calls: Calls) -> Client:
    """The same connection, with `calls` counting what goes through it."""
    config = client.config()
    config["interceptors"] = [*config.get("interceptors", []), calls]
    return Client(**config)


@asynccontextmanager
async def worker_for(desk: ComplaintDesk, env: WorkflowEnvironment) -> AsyncIterator[None]:
    async with build_worker(env.client, desk.ledger, desk.keyring, desk.task_queue):
        yield


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
async def counted_desk(
    env: WorkflowEnvironment, ledger: Ledger, keyring: VaultKeyring, calls: Calls
) -> TimeSkippingDesk:
    """A desk whose Temporal calls `calls` counts, on a task queue no worker polls until a test starts one;
    its patience is the default 30 s, as deployed."""
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    return TimeSkippingDesk(
        client=counted(env.client, calls), ledger=ledger, keyring=keyring, task_queue=queue
    )


@pytest.mark.parametrize("who", ["support", "backend", "owner"])
async def test_reads_and_ownership_checks_answer_from_the_ledger_with_no_worker_and_no_temporal_call(
    env: WorkflowEnvironment, counted_desk: TimeSkippingDesk, calls: Calls, who: str
) -> None:
    async with serving(counted_desk) as api:
        async with worker_for(counted_desk, env):
            complaint = await file_complaint(api)
            complaint_id, owner = complaint["complaint_id"], complaint["customer_id"]
            path = f"/v1/complaints/{complaint_id}"
            approved = await api.support().post(f"{path}/review", json={"decision": "approve", "note": ""})
            assert approved.status_code == 200, approved.text
        assert calls.made == {"update_with_start": 1, "update": 1}, "a filing and an action: no query"
        # the worker is gone: a query would now wait the desk's patience (30 s), then answer 503
        calls.made.clear()
        reader = {"support": api.support(), "backend": api.backend(), "owner": api.customer(owner)}[who]
        started = time.monotonic()

        shown = await reader.get(path)
        assert shown.status_code == 200, shown.text
        assert shown.json() == approved.json()
        listed = await reader.get("/v1/complaints", params={"order_id": complaint["order_id"]})
        assert [c["status"] for c in listed.json()["items"]] == ["rectifying"]
        if who != "support":  # the order's page, with its complaints, is the backend's and the owner's
            order = await reader.get(f"/v1/orders/{complaint['order_id']}")
            assert order.status_code == 200, order.text
            assert [c["status"] for c in order.json()["complaints"]] == ["rectifying"]

        stranger = api.customer("someone-else")
        assert error_of(await stranger.get(path), 404)["code"] == "complaint_not_found"
        assert error_of(await stranger.post(f"{path}/withdraw"), 404)["code"] == "complaint_not_found"
        # the owner passes the ownership check (from the ledger), then meets the body's validation
        unknown_choice = await api.customer(owner).post(f"{path}/remedy", json={"choice": "a pony"})
        assert error_of(unknown_choice, 422)["code"] == "validation_error"
        missing = f"/v1/complaints/{complaint['order_id']}.major_defect.{uuid.uuid4().hex[:8]}"
        assert error_of(await reader.get(missing), 404)["code"] == "complaint_not_found"

        assert time.monotonic() - started < 5, "every read answered at once, with no worker running"
        assert calls.made == {}, "no read, list or ownership check called Temporal"


async def test_the_desks_reads_and_actions_make_no_query(
    env: WorkflowEnvironment, counted_desk: TimeSkippingDesk, calls: Calls
) -> None:
    """The CLI's and the pages' reads go through the same desk calls as the API's (`get`, `get_for`,
    `ensure_visible`, `as_filed`), and an action costs its update alone."""
    async with worker_for(counted_desk, env):
        order = await placed(counted_desk)
        owner = customer(order)
        filed = await counted_desk.file(order, ComplaintKind.MAJOR_DEFECT, DESCRIPTION, owner)
        assert calls.made == {"update_with_start": 1}
        for state in (
            await counted_desk.get(filed.complaint_id),
            await counted_desk.get_for(filed.complaint_id, owner),
            await counted_desk.get_for(filed.complaint_id, SUPPORT),
        ):
            assert state == filed
        assert (await counted_desk.as_filed(filed.complaint_id)).order == order
        await counted_desk.ensure_visible(filed.complaint_id, owner)
        await counted_desk.ensure_visible(filed.complaint_id, BACKEND)
        approved = await counted_desk.review(
            filed.complaint_id, Review(actor=SUPPORT, decision=ReviewDecision.APPROVE)
        )
        assert await counted_desk.get(filed.complaint_id) == approved
    assert calls.made == {"update_with_start": 1, "update": 1}


# ------------------------------------------------------------------------------ (c) update-with-start


class TrustingDesk(ComplaintDesk):
    """A desk that leaves intake to the workflow: what a filing meets when the desk's own check passed and
    the workflow's, at its start, does not (a clock that differs, an SMS that came in between)."""

    async def _check_intake(
        self,
        order: Order,
        kind: ComplaintKind,
        description: str,
        evidence: Sequence[EvidenceFile],
        policy: PolicySnapshot,
    ) -> None:
        return None


class RacingDesk(ComplaintDesk):
    """A desk whose filing with evidence raced another past the check for an open complaint (a describe):
    the evidence is stored, and the start itself has the last word."""

    async def _refuse_if_open(self, workflow_id: str, order: Order, kind: ComplaintKind) -> None:
        return None


def like(desk: ComplaintDesk, kind: type[ComplaintDesk]) -> ComplaintDesk:
    """A desk of `kind` on `desk`'s connections and task queue (its worker)."""
    return kind(client=desk.client, ledger=desk.ledger, keyring=desk.keyring, task_queue=desk.task_queue)


async def placed(desk: ComplaintDesk) -> Order:
    """A software order in the ledger, placed now by the server's clock."""
    order, _ = await desk.ledger.record_order(
        software_order().model_copy(update={"placed_at": await desk.now()})
    )
    return order


async def test_a_filing_is_one_update_with_start_that_answers_once_projected(
    env: WorkflowEnvironment, counted_desk: TimeSkippingDesk, calls: Calls
) -> None:
    async with worker_for(counted_desk, env):
        filed = await counted_desk.file(
            await placed(counted_desk), ComplaintKind.MAJOR_DEFECT, DESCRIPTION, BACKEND
        )
        record = await counted_desk.ledger.get_complaint(filed.complaint_id)
    assert calls.made == {"update_with_start": 1}, "one round trip: no start, query or describe besides"
    assert [(e.seq, e.type) for e in filed.events] == [(1, "filed")]
    assert record is not None and record.state == filed, "projected before the filing answered"


async def test_a_second_open_complaint_is_still_already_open_and_its_evidence_discarded(
    desk: ComplaintDesk, api: Api
) -> None:
    first = await claim_under_review(api, "invalid_number")
    order = {"order_id": first["order_id"], "customer_id": first["customer_id"]}
    before = await written(desk.ledger)

    duplicate = await claim(api, order, "invalid_number", attachments=[evidence()])
    assert error_of(duplicate, 409)["code"] == "complaint_already_open"
    async with serving(like(desk, RacingDesk)) as raced:
        past_the_check = await claim(raced, order, "invalid_number", attachments=[evidence()])
    assert error_of(past_the_check, 409) == error_of(duplicate, 409)
    assert await written(desk.ledger) == before, "its evidence was stored, then discarded; nothing else"
    assert await read(api, first["complaint_id"]) == first


@pytest.mark.parametrize(
    ("kind", "description", "code"),
    [
        ("major_defect", "it broke", "insufficient_reasons"),
        ("sms_not_received", "no sms came", "insufficient_reasons"),
        ("invalid_number", CLAIM, "evidence_required"),
    ],
)
async def test_an_intake_the_workflow_refuses_is_the_same_422_and_writes_nothing(
    desk: ComplaintDesk, api: Api, kind: str, description: str, code: str
) -> None:
    """The desk's own intake refuses first; a desk that skipped it meets the workflow's, which the `filed`
    update's validator checks before the update is accepted: the same 422, and nothing written."""
    owner = new_customer()
    order = await place_order(api, owner) if kind == "major_defect" else await place_number_order(api, owner)
    body = {"order_id": order["order_id"], "kind": kind, "description": description}
    before = await written(desk.ledger)

    by_the_desk = await api.customer(owner).post("/v1/complaints", json=body)
    async with serving(like(desk, TrustingDesk)) as skipped:
        by_the_workflow = await skipped.customer(owner).post("/v1/complaints", json=body)
    assert error_of(by_the_desk, 422)["code"] == code
    assert error_of(by_the_workflow, 422) == error_of(by_the_desk, 422)
    assert await written(desk.ledger) == before


async def test_r5_an_sms_the_ledger_saw_refuses_the_filing_in_the_run_with_the_same_422(
    desk: ComplaintDesk, api: Api
) -> None:
    """R5 is the run's own check (an activity), made after the `filed` update was accepted: the update
    answers with the refusal the run fails with."""
    order = await place_number_order(api)
    activation = await start_activation(api, order["order_id"])
    received = await sms(api, activation["activation_id"], "Your WhatsApp code is 123-456")
    assert received.json()["status"] == "completed", received.text
    body = {"order_id": order["order_id"], "kind": "sms_not_received", "description": CLAIM}
    before = await written(desk.ledger)

    by_the_desk = await api.customer(order["customer_id"]).post("/v1/complaints", json=body)
    async with serving(like(desk, TrustingDesk)) as skipped:
        by_the_workflow = await skipped.customer(order["customer_id"]).post("/v1/complaints", json=body)
    assert error_of(by_the_desk, 422)["code"] == "activation_completed"
    assert error_of(by_the_workflow, 422) == error_of(by_the_desk, 422)
    assert await written(desk.ledger) == before


async def test_a_refusal_after_the_update_was_accepted_fails_it_with_the_runs_code(
    desk: ComplaintDesk,
) -> None:
    """A client that starts a defect carrying a state, as only a continued run may, passes the `filed`
    update's validator and is refused by the run (`not_a_continuation`): the update fails with that
    code, not with Temporal's "the workflow completed first"."""
    order = await placed(desk)
    complaint_id = new_complaint_id(order.order_id, ComplaintKind.MAJOR_DEFECT)
    fields = {"complaint_id": complaint_id, "order": order, "description": DESCRIPTION}
    plain = Filing(filed_by=BACKEND, policy=POLICY, **fields)
    carried = opened(plain, ComplaintKind.MAJOR_DEFECT, order.placed_at, order.placed_at)
    start = WithStartWorkflowOperation(
        DefectComplaintWorkflow.run,
        FileDefectComplaint(filed_by=BACKEND, policy=POLICY, continued=carried, **fields),
        id=complaint_workflow_id(order.order_id, ComplaintKind.MAJOR_DEFECT),
        task_queue=desk.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
    )
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await desk.client.execute_update_with_start_workflow(
            DefectComplaintWorkflow.filed, start_workflow_operation=start
        )
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "not_a_continuation", cause
    assert await desk.ledger.get_complaint(complaint_id) is None


async def test_a_filing_with_no_worker_is_unresponsive_within_the_patience_then_files_once_one_is_back(
    env: WorkflowEnvironment, ledger: Ledger, keyring: VaultKeyring
) -> None:
    """Without a worker Temporal holds the `filed` update: the desk's patience makes it 503-able
    (`ComplaintUnresponsive`) rather than a hang; the workflow was started, and files once a worker runs."""
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    desk = ComplaintDesk(env.client, ledger, keyring, task_queue=queue, patience=timedelta(seconds=1))
    order = await placed(desk)
    started = time.monotonic()
    with pytest.raises(ComplaintUnresponsive):
        await desk.file(order, ComplaintKind.MAJOR_DEFECT, DESCRIPTION, BACKEND)
    assert time.monotonic() - started < 10
    async with build_worker(env.client, ledger, keyring, queue):
        with pytest.raises(PolicyRefusal) as again:
            await desk.file(order, ComplaintKind.MAJOR_DEFECT, DESCRIPTION, BACKEND)
        assert again.value.code == "complaint_already_open"
        filed = []
        for _ in range(500):
            filed = await desk.list_complaints(order_id=order.order_id)
            if filed:
                break
            await asyncio.sleep(0.01)
    assert [c.status for c in filed] == [ComplaintStatus.UNDER_REVIEW]


async def test_histories_of_filings_by_update_with_start_replay(desk: ComplaintDesk, api: Api) -> None:
    """The `filed` update comes in the first workflow task, with the start: a complaint filed so, acted on
    and ended, and a filing the workflow refused, replay as they ran."""
    complaint = await file_complaint(api)
    path = f"/v1/complaints/{complaint['complaint_id']}"
    await acted(api, api.support().post(f"{path}/fix", json={"note": "patched"}), "rectified", "rectified")
    order = await place_number_order(api)
    body = {"order_id": order["order_id"], "kind": "sms_not_received", "description": "no sms came"}
    async with serving(like(desk, TrustingDesk)) as skipped:
        refused = await skipped.customer(order["customer_id"]).post("/v1/complaints", json=body)
    assert error_of(refused, 422)["code"] == "insufficient_reasons"

    replayer = Replayer(workflows=list(WORKFLOWS), data_converter=desk.client.data_converter)
    for workflow_id, updates in (
        (complaint_workflow_id(complaint["order_id"], ComplaintKind.MAJOR_DEFECT), ["filed", "mark_fixed"]),
        (complaint_workflow_id(order["order_id"], ComplaintKind.SMS_NOT_RECEIVED), []),  # refused, unrecorded
    ):
        handle = desk.client.get_workflow_handle(workflow_id)
        with contextlib.suppress(WorkflowFailureError):
            await handle.result()
        history = await handle.fetch_history()
        accepted = [
            e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
        ]
        assert accepted == updates
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, f"{workflow_id}: {result.replay_failure}"
