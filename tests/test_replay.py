"""Replays the recorded histories of the main scenarios against today's workflow code.

A change that would make running complaints or activations non-deterministic fails here, not in
production. To add a scenario or accept a compatible change, run `python -m tests.record_histories` (see
its docstring: it records only missing histories unless told otherwise).
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from policy.activation import ActivationState, StartActivation
from policy.complaint import ComplaintState, FileClaim
from policy.ids import activation_workflow_id, complaint_workflow_id
from policy.models import ComplaintKind
from starter.desk.codec import encrypting_converter
from tests.factories import PAYLOAD_KEYS
from tests.record_histories import FAMILIES, HISTORIES, PREVIOUS_RELEASE, SCENARIOS
from worker import WORKFLOWS, workflow_runner
from workflows.patches import INTAKE_IN_WORKFLOW

RECORDED = sorted(HISTORIES.glob("*.json"))


def load(path: Path) -> WorkflowHistory:
    raw = json.loads(path.read_text())
    return WorkflowHistory.from_json(recorded_workflow_id(raw), raw)


def recorded_workflow_id(raw: dict[str, Any]) -> str:
    """The id the workflow ran under, which a history file does not carry: the workflows check it (R15, one
    activation per order), so it is rebuilt from the input, as the desk built it."""
    started = raw["events"][0]["workflowExecutionStartedEventAttributes"]
    argument = json.loads(base64.b64decode(started["input"]["payloads"][0]["data"]))
    order_id = argument["order"]["order_id"]
    if started["workflowType"]["name"] == "NumberActivationWorkflow":
        return activation_workflow_id(order_id)
    return complaint_workflow_id(order_id, ComplaintKind(argument.get("kind", ComplaintKind.MAJOR_DEFECT)))


def patches_of(history: WorkflowHistory) -> set[str]:
    """The ids of the `workflow.patched` markers the history carries."""
    found: set[str] = set()
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            for payload in event.marker_recorded_event_attributes.details["patch-data"].payloads:
                found.add(json.loads(payload.data)["id"])
    return found


@pytest.mark.parametrize("family", FAMILIES)
def test_every_scenario_has_a_recorded_history(family: str) -> None:
    scenarios = {stem for stem in SCENARIOS if stem.startswith(family)}
    assert scenarios, f"no {family} scenario"
    missing = scenarios - {p.stem for p in RECORDED}
    assert not missing, f"record them: python -m tests.record_histories {' '.join(sorted(missing))}"


def test_every_recorded_history_is_of_a_known_family() -> None:
    assert all(p.stem.startswith(FAMILIES) for p in RECORDED), [p.name for p in RECORDED]


def test_the_intake_patch_has_histories_before_and_after_it() -> None:
    """The previous release's defect histories replay the unpatched branch, today's ones the patched."""
    defects = {p.stem: patches_of(load(p)) for p in RECORDED if p.stem.startswith("defect_")}
    assert set(defects) >= PREVIOUS_RELEASE
    assert all(INTAKE_IN_WORKFLOW not in defects[stem] for stem in PREVIOUS_RELEASE)
    assert any(INTAKE_IN_WORKFLOW in ids for stem, ids in defects.items() if stem not in PREVIOUS_RELEASE)


REPORTED = ("defect_fixed_by_report", "defect_report_refused", "claim_withdrawn_by_report")
"""The histories of complaints that systems reported to (the `report` signal, `workflows.reports`)."""


@pytest.mark.parametrize("stem", REPORTED)
def test_the_reported_histories_carry_their_signals(stem: str) -> None:
    history = load(HISTORIES / f"{stem}.json")
    signals = [
        event.workflow_execution_signaled_event_attributes.signal_name
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    ]
    assert signals and set(signals) == {"report"}, signals


@pytest.mark.parametrize("path", RECORDED, ids=[p.stem for p in RECORDED])
async def test_recorded_history_replays_deterministically(path: Path) -> None:
    history = load(path)
    replayer = Replayer(
        workflows=list(WORKFLOWS),
        data_converter=encrypting_converter(PAYLOAD_KEYS),
        workflow_runner=workflow_runner(),
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"


# ------------------------------------------------------------------------- the check is not vacuous
# Copies under the real workflow types' names, changed as a careless edit might. They run unsandboxed: the
# sandbox would re-import this module (pytest, the recorder, the worker) and refuse; what is checked here is
# the command sequence, which the sandbox does not change.


@workflow.defn(name="NumberActivationWorkflow", sandboxed=False)
class ActivationThatWaitsFirst:
    """Today's activation as a careless change might make it: a grace timer before anything else."""

    @workflow.run
    async def run(self, start: StartActivation) -> ActivationState:
        await workflow.sleep(timedelta(seconds=1))
        raise AssertionError("replay must have failed before this point")


@workflow.defn(name="RefundClaimWorkflow", sandboxed=False)
class ClaimThatWaitsFirst:
    """Today's claim, likewise changed: a timer before its first command (an activity or an upsert)."""

    @workflow.run
    async def run(self, claim: FileClaim) -> ComplaintState:
        await workflow.sleep(timedelta(seconds=1))
        raise AssertionError("replay must have failed before this point")


@pytest.mark.parametrize(
    ("stem", "changed"),
    [
        ("activation_completed", ActivationThatWaitsFirst),
        ("activation_canceled_by_customer", ActivationThatWaitsFirst),
        ("claim_invalid_number_rejected", ClaimThatWaitsFirst),
        ("claim_escalated_then_approved", ClaimThatWaitsFirst),
    ],
)
async def test_a_changed_workflow_fails_to_replay_its_history(stem: str, changed: type) -> None:
    history = load(HISTORIES / f"{stem}.json")
    replayer = Replayer(workflows=[changed], data_converter=encrypting_converter(PAYLOAD_KEYS))
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert isinstance(result.replay_failure, workflow.NondeterminismError), result.replay_failure
