"""How to reach Temporal (docs/settings.md): read by the worker, the API and the CLI alike."""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SettingsError(Exception):
    """A setting is missing or unusable; the message says which and how to fix it."""


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
        default=0,
        ge=0,
        validation_alias=AliasChoices("REFUND_DESK_WORKFLOW_CACHE", "workflow_cache"),
        description="Workflows a worker keeps in memory between tasks (Temporal's sticky cache). 0: none.",
    )
    """Off by default, as the chaos run taught: a worker resuming a cached complaint after a stalled activity
    now and then saw a stale `workflow.now()` and wrote a history that no later worker could replay (about
    one small chaos run in three; none in 6 small and 1 full run without the cache). Without the cache each
    task replays the complaint's history, a few dozen events, and takes its clock from it."""
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
