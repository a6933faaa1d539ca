"""How to reach Temporal and how the API checks tokens (API.md "Running"): read by the worker, the API and
the CLI alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_JWT_SECRET_BYTES = 32
"""HS256 with a shorter key is guessable (RFC 7518 3.2 asks for at least the hash size)."""


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


class ApiSettings(BaseSettings):
    """The HS256 secret that signs and checks every bearer token, and the shop's currency."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    jwt_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("REFUND_DESK_JWT_SECRET", "jwt_secret")
    )
    jwt_secret_file: Path = Field(
        default=Path(".data/jwt.secret"),
        validation_alias=AliasChoices("REFUND_DESK_JWT_SECRET_FILE", "jwt_secret_file"),
        description="Read when REFUND_DESK_JWT_SECRET is unset; `make run` creates it on first start.",
    )

    currency: str = Field(
        default="USD",
        pattern=r"^[A-Z]{3}$",
        validation_alias=AliasChoices("REFUND_DESK_CURRENCY", "currency"),
        description="The balance's currency for a customer with no entries, unless the request names one.",
    )

    codec_cors_origins: str = Field(
        default="http://localhost:8233,http://127.0.0.1:8233",
        validation_alias=AliasChoices("REFUND_DESK_CODEC_CORS_ORIGINS", "codec_cors_origins"),
        description="Comma-separated web origins (the Temporal UI's) that may call /codec from a browser.",
    )

    def codec_origins(self) -> list[str]:
        return [origin.strip() for origin in self.codec_cors_origins.split(",") if origin.strip()]

    def secret(self) -> str:
        """The secret, from the environment or else the file; refuses a missing or short one."""
        if self.jwt_secret is not None:
            value = self.jwt_secret.get_secret_value()
        elif self.jwt_secret_file.is_file():
            value = self.jwt_secret_file.read_text().strip()
        else:
            raise SettingsError(f"no JWT secret: set REFUND_DESK_JWT_SECRET or create {self.jwt_secret_file}")
        if len(value.encode()) < MIN_JWT_SECRET_BYTES:
            raise SettingsError(f"the JWT secret must be at least {MIN_JWT_SECRET_BYTES} bytes long")
        return value
