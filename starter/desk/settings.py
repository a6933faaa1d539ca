"""How to reach Temporal, where the data lives and which policy is in force (docs/settings.md): read by
the worker, the API and the CLI alike."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import AliasChoices, BeforeValidator, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.service import TLSConfig

from ledger.paths import data_dir
from ledger.secret_files import read_named_file, secret_files
from ledger.settings_error import SettingsError as SettingsError
from policy.settings import PolicySettings, PolicySnapshot
from policy.settings import _seconds_or_iso as seconds_or_iso
from starter.desk.validation import one_line

DEFAULT_WORKFLOW_CACHE = 0
"""`TemporalSettings.workflow_cache` unless REFUND_DESK_WORKFLOW_CACHE says otherwise: off (its docstring)."""

CACHE_WITH_MEMORY_BOUND = 3_000
"""Where to bound the cache for a worker that turns it on: each cached complaint holds about 190 KiB
(`bench.cache_memory`), so 3,000 are about 560 MiB beside a worker's own 150 MiB or so: 722 MiB with 10,000
complaints open and the last 3,000 filed cached (bench 2, 2026-11-30), under 1 GiB however many are open.
All of 10,000 cached would take about 1.9 GiB."""


DEFAULT_SHUTDOWN_GRACE = timedelta(seconds=30)
"""`TemporalSettings.worker_shutdown_grace` unless REFUND_DESK_WORKER_SHUTDOWN_GRACE says otherwise. A
deployment gives the worker's container at least this long between SIGTERM and SIGKILL (compose's
`stop_grace_period`, Kubernetes' `terminationGracePeriodSeconds`), with a few seconds to spare."""

Grace = Annotated[timedelta, BeforeValidator(seconds_or_iso), Field(ge=timedelta(0))]
"""A duration that may be zero: ISO-8601 (`PT30S`) or seconds (`30`), as the other duration settings."""


class TemporalSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    address: str = Field(
        default="localhost:7233", validation_alias=AliasChoices("TEMPORAL_ADDRESS", "address")
    )
    namespace: str = Field(
        default="default", validation_alias=AliasChoices("TEMPORAL_NAMESPACE", "namespace")
    )
    tls: bool | None = Field(
        default=None,
        validation_alias=AliasChoices("TEMPORAL_TLS", "tls"),
        description="TLS to the frontend; unset: on when a client certificate, a CA or an API key is set.",
    )
    tls_cert: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("TEMPORAL_TLS_CERT", "tls_cert"),
        description="The client certificate (PEM) for mTLS, with TEMPORAL_TLS_KEY.",
    )
    tls_key: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("TEMPORAL_TLS_KEY", "tls_key"),
        description="The client certificate's private key (PEM), with TEMPORAL_TLS_CERT.",
    )
    tls_ca: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("TEMPORAL_TLS_CA", "tls_ca"),
        description="The CA (PEM) the server's certificate must chain to; unset: the system's roots.",
    )
    tls_server_name: str | None = Field(
        default=None,
        validation_alias=AliasChoices("TEMPORAL_TLS_SERVER_NAME", "tls_server_name"),
        description="The name the server's certificate carries (and the SNI), if not the address's host.",
    )
    api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("TEMPORAL_API_KEY", "api_key"),
        description="A Temporal Cloud API key, sent as a bearer token; implies TLS.",
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

    worker_shutdown_grace: Grace = Field(
        default=DEFAULT_SHUTDOWN_GRACE,
        validation_alias=AliasChoices("REFUND_DESK_WORKER_SHUTDOWN_GRACE", "worker_shutdown_grace"),
        description="How long a stopping worker lets in-flight activities and deliveries finish.",
    )
    """On SIGTERM the worker stops polling, and the activities it runs and the deliveries its dispatcher is
    sending get this long to finish before they are cancelled (`worker.serve`). A cancelled activity is
    retried by Temporal on another worker, a cancelled delivery sent again once its lease runs out, so
    nothing is lost either way; a grace long enough for a ledger write or a webhook's answer saves the
    retry and the duplicate a receiver would have to deduplicate."""

    _secret_files = secret_files(api_key="TEMPORAL_API_KEY")

    @model_validator(mode="after")
    def tls_consistent(self) -> Self:
        """Refuses half an mTLS pair, TLS material with TEMPORAL_TLS=false, and files that cannot be read,
        each in a sentence (a `SettingsError`), when the settings are read rather than at the first call."""
        if (self.tls_cert is None) != (self.tls_key is None):
            given, missing = (
                ("TEMPORAL_TLS_CERT", "TEMPORAL_TLS_KEY")
                if self.tls_key is None
                else ("TEMPORAL_TLS_KEY", "TEMPORAL_TLS_CERT")
            )
            raise SettingsError(
                f"{given} is set but {missing} is not: a client certificate for mTLS needs its private key "
                "and the key its certificate; set both, or neither"
            )
        material = [
            name
            for name, value in (
                ("TEMPORAL_TLS_CERT", self.tls_cert),
                ("TEMPORAL_TLS_CA", self.tls_ca),
                ("TEMPORAL_TLS_SERVER_NAME", self.tls_server_name),
                ("TEMPORAL_API_KEY", self.api_key),
            )
            if value is not None
        ]
        if self.tls is False and material:
            raise SettingsError(
                f"TEMPORAL_TLS is false but {', '.join(material)} is set, which needs TLS: unset "
                "TEMPORAL_TLS (TLS follows from the others) or set it to true"
            )
        self.tls_config()  # reads the files now: a missing or unreadable one is said before connecting
        return self

    def uses_tls(self) -> bool:
        """Whether the client speaks TLS: TEMPORAL_TLS if set, else whenever there is TLS material or an API
        key (Temporal Cloud's endpoints take nothing else)."""
        if self.tls is not None:
            return self.tls
        return any(
            value is not None for value in (self.tls_cert, self.tls_ca, self.tls_server_name, self.api_key)
        )

    def tls_config(self) -> TLSConfig | None:
        """The SDK's TLS configuration, the PEM files read; None without TLS. Holds the client's private key:
        keep it out of logs (its dataclass repr prints the bytes)."""
        if not self.uses_tls():
            return None
        return TLSConfig(
            server_root_ca_cert=None
            if self.tls_ca is None
            else read_named_file("TEMPORAL_TLS_CA", self.tls_ca),
            domain=self.tls_server_name,
            client_cert=None
            if self.tls_cert is None
            else read_named_file("TEMPORAL_TLS_CERT", self.tls_cert),
            client_private_key=(
                None if self.tls_key is None else read_named_file("TEMPORAL_TLS_KEY", self.tls_key)
            ),
        )

    def connection_options(self) -> dict[str, Any]:
        """`Client.connect`'s options these settings set (the namespace, TLS, the API key), for every client
        of the desk: the worker, the API and the CLI alike (`starter.desk.connect`)."""
        options: dict[str, Any] = {"namespace": self.namespace, "tls": self.tls_config() or False}
        if self.api_key is not None:
            options["api_key"] = self.api_key.get_secret_value()
        return options

    def worker_options(self) -> dict[str, Any]:
        """The `Worker` options these settings set; the SDK's defaults for the ones left unset."""
        options: dict[str, Any] = {
            "max_cached_workflows": self.workflow_cache,
            "graceful_shutdown_timeout": self.worker_shutdown_grace,
        }
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
