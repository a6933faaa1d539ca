"""Replays the recorded histories of the main scenarios against today's workflow code.

A change that would make running complaints non-deterministic fails here, not in production. To add a
scenario or accept a compatible change, run `python -m tests.record_histories`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from tests.record_histories import HISTORIES, SCENARIOS
from workflows.defect_complaint import DefectComplaintWorkflow

RECORDED = sorted(HISTORIES.glob("*.json"))


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, json.loads(path.read_text()))


def test_every_scenario_has_a_recorded_history() -> None:
    assert {p.stem for p in RECORDED} >= {f"defect_{name}" for name in SCENARIOS}


@pytest.mark.parametrize("path", RECORDED, ids=[p.stem for p in RECORDED])
async def test_recorded_history_replays_deterministically(path: Path) -> None:
    history = load(path)
    replayer = Replayer(workflows=[DefectComplaintWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
