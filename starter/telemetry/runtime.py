"""The worker's Temporal SDK metrics, served in Prometheus' text format (docs/metrics.md).

The SDK's core measures what only the worker sees: how long workflow and activity tasks wait before a
worker starts them (schedule-to-start) and take to run, how many task slots are free and used, how often
the sticky cache holds the workflow a task is for, and how its pollers fare. It serves them itself, from
its own HTTP listener, once a `Runtime` built with a `PrometheusConfig` exists; every client and worker
made on that runtime reports there. So the worker makes one such runtime before it connects, when
`REFUND_DESK_WORKER_METRICS_ADDRESS` names where to listen.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from starter.desk.settings import SettingsError
from starter.telemetry.logs import temporal_core_logging

METRICS_ADDRESS_ENV = "REFUND_DESK_WORKER_METRICS_ADDRESS"


class RuntimeMetricsSettings(BaseSettings):
    """Where the worker serves the SDK's Prometheus endpoint, if anywhere."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    metrics_address: str | None = Field(
        default=None,
        pattern=r"^\S+:\d{1,5}$",
        validation_alias=AliasChoices(METRICS_ADDRESS_ENV, "metrics_address"),
        description=(
            "host:port where the worker serves the Temporal SDK's metrics (GET /metrics); unset: nowhere."
        ),
    )
    """A loopback address keeps the endpoint on the machine; `0.0.0.0:9000` lets a scraper on another
    host in. The endpoint has no authentication: its figures name task queues and workflow types, never a
    complaint, a customer or a payload."""


def metrics_runtime(settings: RuntimeMetricsSettings | None = None) -> Runtime | None:
    """A runtime whose SDK metrics are served at `settings.metrics_address` (durations in seconds, as
    Prometheus names them), or None when no address is set: the SDK's default runtime then, with no
    endpoint. Its core logs go where the default runtime's do (`starter.telemetry.logs`).

    The SDK binds the address as the runtime is made; a taken or unusable one is a `SettingsError`
    naming the variable, raised before the worker connects."""
    settings = settings or RuntimeMetricsSettings()
    if settings.metrics_address is None:
        return None
    metrics = PrometheusConfig(bind_address=settings.metrics_address, durations_as_seconds=True)
    try:
        return Runtime(telemetry=TelemetryConfig(logging=temporal_core_logging(), metrics=metrics))
    except Exception as error:  # the core reports a bind failure as a plain exception
        raise SettingsError(
            f"{METRICS_ADDRESS_ENV}={settings.metrics_address}: cannot serve metrics there ({error})"
        ) from error
