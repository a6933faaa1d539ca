"""How to reach Temporal, where the data lives and which policy is in force (docs/settings.md): read by
the worker, the API and the CLI alike."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.paths import data_dir
from policy.settings import PolicySettings, PolicySnapshot
from starter.desk.validation import one_line


class SettingsError(Exception):
    """A setting is missing or unusable; the message says which and how to fix it."""


DEFAULT_WORKFLOW_CACHE = 0
"""`TemporalSettings.workflow_cache` unless REFUND_DESK_WORKFLOW_CACHE says otherwise: off (its docstring)."""

CACHE_WITH_MEMORY_BOUND = 3_000
"""Where to bound the cache for a worker that turns it on: each cached complaint holds about 190 KiB
(`bench.cache_memory`), so 3,000 are about 560 MiB beside a worker's own 150 MiB or so: 722 MiB with 10,000
complaints open and the last 3,000 filed cached (bench 2, 2026-11-30), under 1 GiB however many are open.
All of 10,000 cached would take about 1.9 GiB."""


class TemporalSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    address: str = Field(
        default="localhost:7233", validation_alias=AliasChoices("TEMPORAL_ADDRESS", "address")
    )
    namespace: str = Field(
        default="default", validation_alias=AliasChoices("TEMPORAL_NAMESPACE", "namespace")
    )
    task_queue: str = Field(
        default="refund-desk", validation_alias=AliasChoices("REFUND_DESK_TASK_QUEUE", "task_queue")
    )
    workflow_cache: int = Field(
        default=DEFAULT_WORKFLOW_CACHE,
        ge=0,
        validation_alias=AliasChoices("REFUND_DESK_WORKFLOW_CACHE", "workflow_cache"),
        description=(
            "Workflows a worker keeps in memory between tasks (Temporal's sticky cache), at most; 0: none."
        ),
    )
    """Off by default, and to stay off with temporalio 1.35: a worker answering a query that it picked up
    after new events (a timer fired, an activity completed) while no worker polled runs the workflow on
    those events ahead of their task, and with the cache on keeps that run and sends its commands with the
    next task (docs/upstream/query-clock.md). The workflows no longer decide from that run's stale clock
    (`workflows.clock`, tests/test_query_clock.py), but the full chaos run with the cache on (3,000) and
    random queries still wrote histories no worker could replay in other ways the same defect allows: a
    patch marker (`decide-from-what-woke`, `escalation-before-late-review`) and an update's acceptance
    recorded out of the order a replay makes them. Without the cache each task replays the complaint's
    history and keeps nothing of a query's run.

    A deployment that turns it on should bound it at `CACHE_WITH_MEMORY_BOUND` (docs/performance.md: each
    cached complaint holds about 190 KiB; the helper modules are passed through, `worker.PASSED_THROUGH`):
    the least recently used complaint is evicted, and replayed from its history when it is next needed."""
    max_concurrent_workflow_tasks: int | None = Field(
        default=None,
        gt=0,
        validation_alias=AliasChoices(
            "REFUND_DESK_MAX_CONCURRENT_WORKFLOW_TASKS", "max_concurrent_workflow_tasks"
        ),
        description="Workflow tasks a worker runs at once; unset: the SDK's default (100).",
    )
    max_concurrent_activities: int | None = Field(
        default=None,
        gt=0,
        validation_alias=AliasChoices("REFUND_DESK_MAX_CONCURRENT_ACTIVITIES", "max_concurrent_activities"),
        description="Activities a worker runs at once; unset: the SDK's default (100).",
    )

    def worker_options(self) -> dict[str, Any]:
        """The `Worker` options these settings set; the SDK's defaults for the ones left unset."""
        options: dict[str, Any] = {"max_cached_workflows": self.workflow_cache}
        if self.max_concurrent_workflow_tasks is not None:
            options["max_concurrent_workflow_tasks"] = self.max_concurrent_workflow_tasks
        if self.max_concurrent_activities is not None:
            options["max_concurrent_activities"] = self.max_concurrent_activities
        return options


def policy_file() -> Path:
    """`<data dir>/policy.json`: the policy `make run` started with, for the CLI in another shell."""
    return data_dir() / "policy.json"


def save_policy(snapshot: PolicySnapshot) -> Path:
    """Write `snapshot` to `policy_file()` whole or not at all (a CLI may read it at any moment)."""
    path = policy_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(snapshot.model_dump_json(indent=2) + "\n")
    partial.replace(path)
    return path


def policy_in_force() -> PolicySnapshot:
    """The policy a complaint filed from here gets: each window or limit from its REFUND_DESK_* variable
    where that one is set, else from `<data dir>/policy.json` where that file exists, else the default.

    `make run` writes policy.json from the environment it was started with, so a CLI in another shell files
    complaints under the same windows as the running service without repeating its exports; a variable set
    in the CLI's own shell still wins, one setting at a time. The file outlives `make run`: it is the policy
    of the last start. Raises `SettingsError` if the file is not a policy snapshot."""
    environment = PolicySettings()
    path = policy_file()
    if not path.is_file():
        return environment.snapshot()
    try:
        saved = PolicySnapshot.model_validate_json(path.read_bytes())
    except ValidationError as error:
        raise SettingsError(f"{path}: {one_line(error)}; delete it or fix it") from error
    chosen = environment.model_dump(include=environment.model_fields_set)
    return PolicySnapshot.model_validate({**saved.model_dump(), **chosen})
