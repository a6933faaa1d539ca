"""The chaos run's client side: a retrying, idempotent driver over `ComplaintDesk` (or the API: `HttpDesk`).

While the worker is dead or the server restarting, a call to the desk fails or times out, and an action sent
may still take effect later. So the driver does what a careful client does: it resends a step until the
state shows it took effect, and reads the state before it believes any refusal. The desk reads the ledger's
projection, which can trail the workflow that refused, so the driver reads it again for a while
(`PROJECTION_LAG`); a refusal the state still does not explain is a violation of the scenario, not something
to retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import sqlalchemy.exc
from temporalio.client import (
    Client,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.service import RPCError, RPCStatusCode

from bench.http_desk import HttpDesk
from bench.notices import chaos_email
from ledger.repository import Ledger
from policy import refusals
from policy.activation import ActivationState
from policy.complaint import ComplaintState, FileClaim, FileDefectComplaint
from policy.evidence import EvidenceFile
from policy.ids import activation_workflow_id, complaint_workflow_id
from policy.models import Actor, ComplaintKind, Order
from policy.refusals import PolicyRefusal
from policy.settings import PolicySnapshot
from starter.desk import ComplaintDesk, ComplaintNotFound, OrderNotFound, Unresponsive
from starter.desk.errors import ActivationNotFound
from workflows.activation import NumberActivationWorkflow
from workflows.common import ComplaintWorkflow

T = TypeVar("T")
S = TypeVar("S", ComplaintState, ActivationState)

TRANSIENT: tuple[type[BaseException], ...] = (
    Unresponsive,
    RPCError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    TimeoutError,
    ConnectionError,  # an API process down or killed mid-request (`bench.api_client`) among them
    OSError,
    sqlalchemy.exc.OperationalError,
    ComplaintNotFound,  # a query that raced a restart; the complaint exists, we filed it
    OrderNotFound,
    ActivationNotFound,  # over HTTP, a read that raced the activation's start
)
"""What a client meets while the worker is dead or the server restarting: try again later."""


class StepFailed(Exception):
    """A step cannot take effect (its violation is recorded); the scenario skips to waiting for its end."""


@dataclass
class Expectation:
    """How a scenario must end: the final status and what money or goods moved."""

    entity: str
    """"complaint" or "activation"."""
    status: str
    refund: bool
    replacement_sku: str | None = None
    reason_code: str | None = None
    cancel_reason: str | None = None
    escalated: bool = False
    credentials_filed: bool = False


@dataclass
class Scenario:
    """One complaint's or activation's life in the run, with what the driver saw of it."""

    index: int
    kind: str
    rules: str
    expect: Expectation
    order: Order
    rng: random.Random
    complaint_id: str | None = None
    activation_id: str | None = None
    started: bool = False
    finished: bool = False
    final_status: str | None = None
    duplicates: int = 0
    violations: list[str] = field(default_factory=list)
    last_error: str | None = None

    def violation(self, text: str) -> None:
        self.violations.append(f"#{self.index} {self.kind} ({self.order.order_id}): {text}")

    @property
    def workflow_id(self) -> str | None:
        if self.expect.entity == "activation":
            return activation_workflow_id(self.order.order_id)
        if self.complaint_id is None:
            return None
        kind = ComplaintKind(self.complaint_id.split(".")[1])
        return complaint_workflow_id(self.order.order_id, kind)


Desk = ComplaintDesk | HttpDesk
"""The desk in the run's process, or the API processes over HTTP: the same calls either way."""


@dataclass
class Driver:
    desk: Desk
    duplicate_rate: float
    transient: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    """The first message of each kind of transient error, for the summary."""
    duplicates_sent: int = 0
    report_rate: float = 0.0
    """The share of the steps a system may report (a fix, an access answer, a withdrawal) sent as the
    `report` signal (`Prefer: respond-async` over HTTP) instead of the update."""
    reports: ReportFigures = field(default_factory=lambda: ReportFigures())

    @property
    def client(self) -> Client:
        return self.desk.client

    @property
    def ledger(self) -> Ledger:
        return self.desk.ledger

    def desk_for(self, policy: PolicySnapshot) -> Desk:
        """The same desk filing under `policy` (each complaint and activation keeps its own copy)."""
        return dataclasses.replace(self.desk, policy=policy)

    # ------------------------------------------------------------------------------------- retrying

    def _note(self, scenario: Scenario | None, err: BaseException) -> None:
        name = getattr(err, "transient_name", None) or type(err).__name__
        if isinstance(err, RPCError):
            name = f"RPCError.{err.status.name if err.status else 'None'}"
        self.transient[name] += 1
        self.examples.setdefault(name, str(err)[:300])
        if scenario is not None:
            scenario.last_error = f"{name}: {err}"[:300]

    async def retry(self, scenario: Scenario | None, call: Callable[[], Awaitable[T]]) -> T:
        """`call` until it returns without a transient error (a refusal or anything else goes up)."""
        delay = 0.2
        while True:
            try:
                return await call()
            except PolicyRefusal:
                raise
            except TRANSIENT as err:
                self._note(scenario, err)
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, 3.0)

    def _twice(self, scenario: Scenario) -> bool:
        """Some requests go out twice at once, on purpose: under chaos clients retry and duplicate."""
        twice = scenario.rng.random() < self.duplicate_rate
        if twice:
            scenario.duplicates += 1
            self.duplicates_sent += 1
        return twice

    async def act(
        self,
        scenario: Scenario,
        what: str,
        send: Callable[[], Awaitable[Any]],
        read: Callable[[], Awaitable[S]],
        done: Callable[[S], bool],
        underway: Callable[[S], bool] | None = None,
        report: Callable[[str], Awaitable[Any]] | None = None,
    ) -> S | None:
        """Send `what` until it has taken effect; returns the state that shows it (None if the send itself
        answered and nothing needed reading). A refusal counts as success only if the state shows the step
        done (an earlier send took effect), or `underway` (an earlier send is still being carried out: wait
        for it), within `PROJECTION_LAG`; otherwise it is this scenario's violation.

        A step a system may report comes with `report`, which sends it as a report with the id it is given.
        At `report_rate` the step goes as a report (with its duplicate, if any, as the update or as the same
        report again), and once one send is taken the driver waits for the state to show the step done."""
        delay = 0.2
        first = [send] * (2 if self._twice(scenario) else 1)
        reported = report is not None and self.report_rate > 0 and scenario.rng.random() < self.report_rate
        if report is not None and reported:
            first, send = self._as_report(scenario, what, send, report, len(first) > 1)
        while True:
            outcomes = await asyncio.gather(*(self._attempt(scenario, one) for one in first))
            first = [send]
            if any(o is None for o in outcomes) and reported:
                return await self.wait_until(scenario, what, read, done)
            if all(o is None for o in outcomes):
                return None
            state = await self.retry(scenario, read)
            if done(state):
                return state
            if underway is not None and underway(state):
                return await self.wait_until(scenario, what, read, done)
            refusal = next((o for o in outcomes if isinstance(o, PolicyRefusal)), None)
            if refusal is not None:
                state = await self._explained(scenario, read, done, underway, state)
                if done(state):
                    return state
                if underway is not None and underway(state):
                    return await self.wait_until(scenario, what, read, done)
                scenario.violation(f"{what} refused ({refusal}) while {_describe(state)}")
                raise StepFailed(what)
            if _is_final(state):
                scenario.violation(f"{what} never took effect: {_describe(state)}")
                raise StepFailed(what)
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, 3.0)

    async def _explained(
        self,
        scenario: Scenario,
        read: Callable[[], Awaitable[S]],
        done: Callable[[S], bool],
        underway: Callable[[S], bool] | None,
        state: S,
    ) -> S:
        """The state, read again until it shows the step done or underway, or is final, or `PROJECTION_LAG`
        has passed: the workflow refused from its own state, and the desk reads the ledger's projection of
        it, which a killed worker's stranded activity can leave behind by up to its 30 s timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PROJECTION_LAG.total_seconds()
        while not (done(state) or (underway is not None and underway(state)) or _is_final(state)):
            if loop.time() >= deadline:
                break
            await asyncio.sleep(0.5)
            state = await self.retry(scenario, read)
        return state

    def _as_report(
        self,
        scenario: Scenario,
        what: str,
        update: Callable[[], Awaitable[Any]],
        report: Callable[[str], Awaitable[Any]],
        twice: bool,
    ) -> tuple[list[Callable[[], Awaitable[Any]]], Callable[[], Awaitable[Any]]]:
        """The first sends of `what` as a report, and the send its retries repeat: one id for all of them,
        as a retrying system keeps it. Sent `twice`, its duplicate is the update half of the time (a signal
        racing an update), the same report otherwise."""
        report_id = f"chaos-{scenario.index}-{what.replace(' ', '-')}"
        self.reports.sent += 1

        async def as_report() -> Any:
            return await report(report_id)

        if not twice:
            return [as_report], as_report
        if scenario.rng.random() < 0.5:
            self.reports.raced_with_update += 1
            return [as_report, update], as_report
        self.reports.sent_twice += 1
        return [as_report, as_report], as_report

    async def _attempt(self, scenario: Scenario, send: Callable[[], Awaitable[Any]]) -> BaseException | None:
        try:
            await send()
        except PolicyRefusal as refusal:
            return refusal
        except TRANSIENT as err:
            self._note(scenario, err)
            return err
        return None

    async def wait_until(
        self, scenario: Scenario, what: str, read: Callable[[], Awaitable[S]], until: Callable[[S], bool]
    ) -> S:
        """Poll until the state satisfies `until` (a timer that must fire first, say)."""
        while True:
            state = await self.retry(scenario, read)
            if until(state):
                return state
            if isinstance(state, ComplaintState) and (refused := _refused_report(state)) is not None:
                scenario.violation(f"{what}: a report was refused: {refused}")
                raise StepFailed(what)
            if _is_final(state):
                scenario.violation(f"ended before {what}: {_describe(state)}")
                raise StepFailed(what)
            await asyncio.sleep(0.5)

    async def expect_refusal(
        self,
        scenario: Scenario,
        what: str,
        call: Callable[[], Awaitable[Any]],
        code: str,
        wait_codes: frozenset[str] = frozenset(),
    ) -> None:
        """`call` must be refused with `code`; `wait_codes` mean "not yet" (a projection still landing)."""
        while True:
            try:
                await self.retry(scenario, call)
            except PolicyRefusal as refusal:
                if refusal.code == code:
                    return
                if refusal.code in wait_codes:
                    await asyncio.sleep(0.5)
                    continue
                scenario.violation(f"{what}: refused with {refusal.code}, expected {code}")
                return
            scenario.violation(f"{what}: accepted, expected the refusal {code}")
            return

    # --------------------------------------------------------------------------------- the records

    async def place(self, scenario: Scenario) -> None:
        """The backend records the order (twice, sometimes: the same order again is not a conflict)."""
        sends = 2 if self._twice(scenario) else 1
        email = chaos_email(scenario.order.customer_id)
        for _ in range(sends):
            await self.retry(scenario, lambda: self.desk.record_order(scenario.order, email=email))

    async def start_activation(self, scenario: Scenario, desk: Desk, actor: Actor) -> str:
        """Idempotent by design: the same number again answers with the activation."""
        order_id = scenario.order.order_id
        phone = f"+4477009{scenario.index % 100_000:05d}"

        async def start() -> ActivationState:
            state, _ = await desk.start_activation(order_id, phone, "whatsapp", actor)
            return state

        scenario.started = True
        sends = 2 if self._twice(scenario) else 1
        states = await asyncio.gather(*(self.retry(scenario, start) for _ in range(sends)))
        ids = {s.activation_id for s in states}
        if len(ids) != 1:
            scenario.violation(f"a repeated start answered with other activations: {sorted(ids)}")
        scenario.activation_id = states[0].activation_id
        return states[0].activation_id

    async def file(
        self,
        scenario: Scenario,
        desk: Desk,
        kind: ComplaintKind,
        description: str,
        actor: Actor,
        evidence: list[EvidenceFile] | None = None,
    ) -> str:
        """File the complaint, finding it again if an attempt's answer was lost: the workflow id is fixed
        by the order and kind (R15), and the complaint id travels in the workflow's input."""
        order = scenario.order
        scenario.started = True

        async def once() -> str:
            delay = 0.2
            while True:
                try:
                    state = await desk.file(order, kind, description, actor, evidence=evidence or [])
                    return state.complaint_id
                except PolicyRefusal as refusal:
                    if refusal.code != refusals.COMPLAINT_ALREADY_OPEN:
                        scenario.violation(f"filing refused: {refusal}")
                        raise StepFailed("file") from None
                except TRANSIENT as err:
                    self._note(scenario, err)
                found = await self.retry(scenario, lambda: self.filed_id(order, kind))
                if found is not None:
                    return found
                await asyncio.sleep(delay * random.uniform(0.5, 1.5))
                delay = min(delay * 2, 3.0)

        sends = 2 if self._twice(scenario) else 1
        ids = set(await asyncio.gather(*(once() for _ in range(sends))))
        if len(ids) != 1:
            scenario.violation(f"one filing made several complaints: {sorted(ids)} (R15)")
        scenario.complaint_id = sorted(ids)[0]
        return scenario.complaint_id

    async def filed_id(self, order: Order, kind: ComplaintKind) -> str | None:
        """The complaint filed on the order and kind, from the ledger, else from its workflow's input."""
        records = await self.ledger.list_complaints(order_id=order.order_id, kind=kind.value, limit=2)
        if records:
            return records[0].state.complaint_id
        handle = self.client.get_workflow_handle(complaint_workflow_id(order.order_id, kind))
        try:
            async for event in handle.fetch_history_events():
                payloads = event.workflow_execution_started_event_attributes.input.payloads
                filing_type = FileDefectComplaint if kind is ComplaintKind.MAJOR_DEFECT else FileClaim
                [filing] = await self.client.data_converter.decode(payloads, [filing_type])
                complaint_id: str = filing.complaint_id
                return complaint_id
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                return None
            raise
        return None

    # ------------------------------------------------------------------------------------- the ends

    async def complaint_outcome(self, scenario: Scenario) -> ComplaintState:
        """The workflow's result (Temporal's word on how it ended), waited for across restarts."""
        assert scenario.complaint_id is not None
        complaint_id = scenario.complaint_id
        final = await self.retry(scenario, lambda: self.desk.outcome(complaint_id))
        scenario.finished = True
        scenario.final_status = final.status.value
        return final

    async def activation_outcome(self, scenario: Scenario) -> ActivationState:
        handle = self.client.get_workflow_handle(
            activation_workflow_id(scenario.order.order_id), result_type=ActivationState
        )
        final: ActivationState = await self.retry(scenario, handle.result)
        scenario.finished = True
        scenario.final_status = final.status.value
        return final


@dataclass
class RandomQueries:
    """State queries sent at random to live complaints and activations while the scenarios are driven, as
    support's tools and the web UI send them: each straight to Temporal (no retry, no ledger), with a short
    rpc timeout. A query a worker cannot answer in time is no violation (workers are being killed), but it
    is counted. What they are for: some reach a new worker after a timer fired while no worker polled,
    the sequence that once left histories no worker could replay (tests/test_query_clock.py), which the
    replay of every history at the end of the run would then catch."""

    client: Client
    per_second: float
    timeout: timedelta
    rng: random.Random
    spacing: float = 5.0
    """Seconds before the same workflow is asked again (a person refreshing a page, not a loop): without
    it the rate would fall on the last few workflows of the run, and a worker without the sticky cache
    loses a workflow task that meets a query (docs/reliability.md), which would stall them."""
    kills: Callable[[], int] = lambda: 0
    """How many times the worker has been killed so far (the supervisor's count)."""
    answered: int = 0
    answered_after_a_kill: int = 0
    """Answered by a worker started after the query was sent: the query waited out a kill."""
    timed_out: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    """Failed queries by error (the server restarting, a workflow that just ended, ...)."""
    examples: dict[str, str] = field(default_factory=dict)

    @property
    def sent(self) -> int:
        return self.answered + self.timed_out + self.failed.total()

    def figures(self) -> dict[str, int]:
        return {
            "sent": self.sent,
            "answered": self.answered,
            "answered_after_a_kill": self.answered_after_a_kill,
            "timed_out": self.timed_out,
            "failed": self.failed.total(),
        }

    async def run(self, scenarios: Sequence[Scenario], stop: asyncio.Event) -> None:
        """Until `stop` is set: a query every 1/`per_second` s on average (Poisson), to a scenario started
        and not yet ended that was not asked in the last `spacing` seconds, each query its own task; then
        wait for those still asking."""
        asking: set[asyncio.Task[None]] = set()
        asked: dict[int, float] = {}  # scenario index -> when it was last asked (the loop's clock)
        loop = asyncio.get_running_loop()
        while self.per_second > 0 and not stop.is_set():
            now = loop.time()
            live = [
                s
                for s in scenarios
                if s.started
                and not s.finished
                and s.workflow_id is not None
                and (s.index not in asked or now - asked[s.index] >= self.spacing)
            ]
            if live:
                chosen = self.rng.choice(live)
                asked[chosen.index] = now
                task = asyncio.create_task(self.ask(chosen))
                asking.add(task)
                task.add_done_callback(asking.discard)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.rng.expovariate(self.per_second))
        await asyncio.gather(*asking)

    async def ask(self, scenario: Scenario) -> None:
        workflow_id = scenario.workflow_id
        assert workflow_id is not None
        handle = self.client.get_workflow_handle(workflow_id)
        kills = self.kills()
        try:
            # The rpc timeout bounds the query; the outer one the client's own retries of a dead server.
            async with asyncio.timeout(2 * self.timeout.total_seconds()):
                if scenario.expect.entity == "activation":
                    await handle.query(NumberActivationWorkflow.state, rpc_timeout=self.timeout)
                else:
                    await handle.query(ComplaintWorkflow.state, rpc_timeout=self.timeout)
        except TimeoutError:
            self.timed_out += 1
        except RPCError as err:
            if err.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
                self.timed_out += 1
            else:
                self._failed(f"RPCError.{err.status.name if err.status else 'None'}", err)
        except Exception as err:  # a query the workflow failed or rejected, a payload it could not read
            self._failed(type(err).__name__, err)
        else:
            self.answered += 1
            self.answered_after_a_kill += self.kills() != kills

    def _failed(self, kind: str, err: BaseException) -> None:
        self.failed[kind] += 1
        self.examples.setdefault(kind, str(err)[:300])


@dataclass
class ReportFigures:
    """The steps the driver sent as reports (signals), for the run's report."""

    sent: int = 0
    raced_with_update: int = 0
    """Sent twice at once: as the report and as the update."""
    sent_twice: int = 0
    """Sent twice at once as a report: one id in process; over HTTP, one per request's key."""


def _refused_report(state: ComplaintState) -> str | None:
    """The first `report_refused` of the trail, told: no step of a scenario is one the policy refuses."""
    for event in state.events:
        if event.type == "report_refused":
            detail = event.detail
            return f"{detail.get('action')}: {detail.get('reason_code')} {detail.get('reason')}"
    return None


def _is_final(state: ComplaintState | ActivationState) -> bool:
    return state.is_final


def _describe(state: ComplaintState | ActivationState) -> str:
    if isinstance(state, ComplaintState):
        reason = state.resolution.reason_code if state.resolution else None
        return f"the complaint is {state.status.value}" + (f" ({reason})" if reason else "")
    return f"the activation is {state.status.value}"


PATIENCE = timedelta(seconds=5)
"""How long the driver's desk waits for a workflow before it counts the call as unanswered and retries."""

PROJECTION_LAG = timedelta(seconds=60)
"""How long the ledger's projection of a complaint (what the desk reads) may trail its workflow (what
refuses an action): twice an activity's start-to-close timeout, for a worker killed while recording."""
