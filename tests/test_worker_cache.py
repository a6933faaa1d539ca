"""The worker's sticky cache as documented (off by default; bounded at `CACHE_WITH_MEMORY_BOUND` where a
deployment turns it on), and a cached workflow holds only what is its own.

A cached complaint holds its sandbox: every module imported in it for that workflow alone. The helper modules
(`worker.PASSED_THROUGH`) are shared with the worker instead, and the workflow modules stay sandboxed. These
checks are structural, no timing and no memory reading (`bench.cache_memory` measures that): the deployed
settings, the runner `build_worker` gives the workflows, and what a real workflow's sandbox imports for
itself while it replays a recorded history.
"""

from __future__ import annotations

import pkgutil
import sys
import types
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import (
    Replayer,
    UnsandboxedWorkflowRunner,
    WorkflowInstance,
    WorkflowInstanceDetails,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

import workflows
from ledger.repository import Ledger
from ledger.vault import VaultKeyring
from starter.desk.codec import encrypting_converter
from starter.desk.settings import CACHE_WITH_MEMORY_BOUND, DEFAULT_WORKFLOW_CACHE, TemporalSettings
from tests.factories import PAYLOAD_KEYS
from tests.test_replay import load
from worker import PASSED_THROUGH, WORKFLOWS, build_worker, workflow_runner

ROOT = Path(__file__).resolve().parent.parent
HISTORIES = ROOT / "tests" / "histories"
WORKFLOW_MODULES = {cls.__module__ for cls in WORKFLOWS}


def test_the_deployed_worker_keeps_no_sticky_cache_by_default_as_documented(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("REFUND_DESK_WORKFLOW_CACHE", raising=False)
    assert DEFAULT_WORKFLOW_CACHE == 0
    assert TemporalSettings().worker_options()["max_cached_workflows"] == DEFAULT_WORKFLOW_CACHE
    row = next(
        line
        for line in (ROOT / "docs" / "settings.md").read_text().splitlines()
        if line.startswith("| `REFUND_DESK_WORKFLOW_CACHE` |")
    )
    assert f"| `{DEFAULT_WORKFLOW_CACHE}` |" in row
    assert f"bound it at `{CACHE_WITH_MEMORY_BOUND}` or less" in row


def test_the_cache_is_still_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFUND_DESK_WORKFLOW_CACHE", "0")
    assert TemporalSettings().worker_options()["max_cached_workflows"] == 0
    monkeypatch.setenv("REFUND_DESK_WORKFLOW_CACHE", "12000")
    assert TemporalSettings().worker_options()["max_cached_workflows"] == 12_000


def passes_through(runner: SandboxedWorkflowRunner, module: str) -> bool:
    """Whether `runner`'s sandbox takes `module` from the worker rather than importing it again, by the
    SDK's rule: a module listed, or a submodule of one."""
    parts = module.split(".")
    listed = runner.restrictions.passthrough_modules
    return runner.restrictions.passthrough_all_modules or any(
        ".".join(parts[:n]) in listed for n in range(1, len(parts) + 1)
    )


def test_the_runner_passes_the_helpers_through_and_keeps_the_workflow_modules_sandboxed() -> None:
    runner = workflow_runner()
    assert set(PASSED_THROUGH) <= runner.restrictions.passthrough_modules
    for module in ("activities", "activities.ledger", "ledger.records", "policy.complaint", "policy.models"):
        assert passes_through(runner, module), module
    for module in sorted(WORKFLOW_MODULES):
        assert not passes_through(runner, module), f"{module} is a workflow's module: it must stay sandboxed"
    assert not runner.restrictions.passthrough_all_modules
    assert not passes_through(runner, "workflows")  # which would pass every workflow module through


def test_every_workflows_module_is_a_workflow_or_a_helper_passed_through() -> None:
    """A new helper module under workflows/ goes into `PASSED_THROUGH` (or becomes a workflow's module)."""
    modules = {f"workflows.{m.name}" for m in pkgutil.iter_modules(workflows.__path__)}
    helpers = modules - WORKFLOW_MODULES
    assert helpers <= set(PASSED_THROUGH), sorted(helpers - set(PASSED_THROUGH))
    assert modules >= WORKFLOW_MODULES


async def test_build_worker_runs_the_workflows_in_that_runner_with_the_deployed_cache(
    env: WorkflowEnvironment, ledger: Ledger, keyring: VaultKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REFUND_DESK_WORKFLOW_CACHE", raising=False)
    worker = build_worker(env.client, ledger, keyring, "tq-cache", **TemporalSettings().worker_options())
    config = worker.config()
    assert config.get("max_cached_workflows") == DEFAULT_WORKFLOW_CACHE
    runner = config.get("workflow_runner")
    assert isinstance(runner, SandboxedWorkflowRunner)
    assert runner.restrictions == workflow_runner().restrictions


SEEN: list[tuple[str, dict[str, types.ModuleType], dict[str, types.ModuleType]]] = []
"""What `ProbeRunner` saw in each sandbox: the workflow's module, the sandbox's modules once the workflow
module was imported, and each of `PASSED_THROUGH` as the sandbox imports it."""


class ProbeRunner(UnsandboxedWorkflowRunner):
    """The runner the sandbox runs a workflow with, inside the sandbox (this module is passed through to it,
    so `SEEN` is the test's): notes the sandbox's `sys.modules` as the workflow is created, then imports each
    passed-through module in the sandbox, as a workflow module importing it without
    `workflow.unsafe.imports_passed_through()` would."""

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        modules = sys.modules.copy()
        imported: dict[str, types.ModuleType] = {}
        for name in PASSED_THROUGH:
            __import__(name)
            imported[name] = sys.modules[name]
        SEEN.append((det.defn.cls.__module__, modules, imported))
        return super().create_instance(det)


def own_modules(workflow_module: str, modules: dict[str, types.ModuleType]) -> set[str]:
    """The sandbox's modules that are not the worker's: imported again for this workflow. The standard
    library comes through as the SDK's restricted proxies of the worker's modules, and `__main__` is a blank
    module of the sandbox's own; neither is counted."""
    own = set()
    for name, module in modules.items():
        if module is sys.modules.get(name) or name == "__main__":
            continue
        if name.partition(".")[0] in sys.stdlib_module_names and type(module).__name__ == "RestrictedModule":
            continue
        own.add(name)
    return own


async def test_a_workflows_sandbox_imports_nothing_of_its_own_but_its_module() -> None:
    """Replays one recorded history of each workflow in `workflow_runner()`'s sandbox: each sandbox imports
    the workflow's module (and its package) for itself, and takes every other module from the worker; each
    of `PASSED_THROUGH` imported in it is the worker's module. Undo the passthrough and the last fails; a
    helper a workflow module imports outside `imports_passed_through()` fails the first."""
    base = workflow_runner()
    probe = SandboxedWorkflowRunner(
        restrictions=base.restrictions.with_passthrough_modules(__name__), runner_class=ProbeRunner
    )
    replayer = Replayer(
        workflows=list(WORKFLOWS), data_converter=encrypting_converter(PAYLOAD_KEYS), workflow_runner=probe
    )
    SEEN.clear()
    for name in ("defect_refunded_by_default_after_access", "claim_withdrawn", "activation_completed"):
        await replayer.replay_workflow(load(HISTORIES / f"{name}.json"))
    assert {module for module, _, _ in SEEN} == WORKFLOW_MODULES
    for workflow_module, modules, imported in SEEN:
        assert own_modules(workflow_module, modules) == {"workflows", workflow_module}
        for name, module in imported.items():
            assert module is sys.modules[name], f"{name} was imported again in {workflow_module}'s sandbox"
