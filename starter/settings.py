"""How to reach Temporal (API.md "Running"): read by the worker, the API and the CLI alike."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
