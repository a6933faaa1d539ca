"""Traces: one trace per request, from the API's HTTP span through Temporal's update into the workflow's
handler, the activities it runs and the ledger's SQL, exported over OTLP/HTTP (docs/tracing.md).

Off unless `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` is set: then `start` sets
nothing up (no tracer provider, no interceptor, no instrumentation), and every other function here returns
at its first line. On, `start` installs a tracer provider for the process, and:

- `client_interceptors()` is what `starter.desk.connect` gives the Temporal client. A `Worker` built on that
  client takes the same interceptor for its workflows and activities (temporalio applies a client's
  interceptors that are also `temporalio.worker.Interceptor`s to every worker on it), so the API's update
  carries the trace in its headers to the workflow, and the workflow's activity call to the activity.
- `instrument_app` traces the FastAPI app's requests (not `/healthz` or `/metrics`), with every query
  parameter's value replaced: a customer's link carries its token in the query.
- `instrument_engine` traces the ledger's SQL (`ledger.repository` calls it for every engine it makes): a
  statement's text is recorded with its placeholders, never its bound values.

The interceptor is temporalio's `OpenTelemetryInterceptor`, not the older `TracingInterceptor`: the older
one parents a workflow's update handler, and every activity the handler runs, on the span that *started*
the workflow (the filing), and only links the update's own span, so an approval's ledger writes would land
in the filing's trace. The newer one parents the handler on the update's span, and the activity on the
handler, which is what one trace per request needs. It asks for the process's global tracer provider to be
its replay-safe one (`create_tracer_provider`): a workflow task replays the complaint's history (the sticky
cache is off), and that provider neither exports a replayed span again nor draws a span id from anything
but the workflow's own deterministic random.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl, urlencode

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from fastapi import FastAPI
    from sqlalchemy.ext.asyncio import AsyncEngine
    from temporalio.client import Interceptor
    from temporalio.contrib.opentelemetry import ReplaySafeTracerProvider

API: Final = "refund-desk-api"
WORKER: Final = "refund-desk-worker"
CLI: Final = "refund-desk-cli"
"""Each process's `service.name` unless `OTEL_SERVICE_NAME` says otherwise."""

NOT_TRACED: Final = r"/healthz(\?|$),/metrics(\?|$)"
"""The paths the API does not trace (comma-separated regular expressions, searched in the request's URL):
probes and scrapes, every few seconds, which would bury the requests."""

QUERY_ATTRIBUTES: Final = ("http.target", "http.url", "url.query", "url.full")
"""The HTTP span's attributes that carry the query string, in either of OpenTelemetry's conventions."""

HIDDEN: Final = "REDACTED"


class TraceSettings(BaseSettings):
    """OpenTelemetry's own variables, so a collector's usual configuration works as it is."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    endpoint: str | None = Field(
        default=None, validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT", "endpoint")
    )
    """The collector's base URL (`http://127.0.0.1:4318`); spans go to its `/v1/traces`."""
    traces_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "traces_endpoint"),
    )
    """The full URL spans are posted to, as it is; wins over `endpoint`."""
    service_name: str | None = Field(
        default=None, validation_alias=AliasChoices("OTEL_SERVICE_NAME", "service_name")
    )
    sdk_disabled: bool = Field(
        default=False, validation_alias=AliasChoices("OTEL_SDK_DISABLED", "sdk_disabled")
    )

    def traces_url(self) -> str | None:
        """Where spans are posted, as OpenTelemetry's exporter specification derives it; None: nowhere."""
        if self.sdk_disabled:
            return None
        if self.traces_endpoint:
            return self.traces_endpoint
        if self.endpoint:
            return self.endpoint.rstrip("/") + "/v1/traces"
        return None


@dataclass(frozen=True)
class Tracing:
    """Tracing as this process set it up: the provider every span of the process goes through."""

    provider: ReplaySafeTracerProvider
    service_name: str


_tracing: Tracing | None = None
"""The process's tracing once `start` set it up. A process has one: OpenTelemetry's global tracer provider
can be set once, and the Temporal interceptor's workflow side reads that global."""


def start(
    service_name: str, *, settings: TraceSettings | None = None, processor: SpanProcessor | None = None
) -> Tracing | None:
    """Set up tracing for this process as `service_name` (API, WORKER or CLI; `OTEL_SERVICE_NAME` wins),
    exporting in batches over OTLP/HTTP where the settings name an endpoint; None, with nothing set up,
    where they name none. `processor` replaces the exporter (the tests' in-memory one), endpoint or not.
    A second call returns the first one's tracing: the process is already set up."""
    global _tracing
    if _tracing is not None:
        return _tracing
    settings = settings or TraceSettings()
    if processor is None:
        url = settings.traces_url()
        if url is None:
            return None
        processor = _exporting(url)
    from temporalio.contrib.opentelemetry import create_tracer_provider

    name = settings.service_name or service_name
    provider = create_tracer_provider(resource=Resource.create({SERVICE_NAME: name}))
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    _tracing = Tracing(provider=provider, service_name=name)
    return _tracing


def _exporting(url: str) -> SpanProcessor:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    return BatchSpanProcessor(OTLPSpanExporter(endpoint=url))


def current() -> Tracing | None:
    """This process's tracing, or None where it is off."""
    return _tracing


def flush() -> None:
    """Send the spans still batched. A process that ends with `os._exit` (the CLI) skips the provider's
    own flush at exit, so it calls this first."""
    if _tracing is not None:
        _tracing.provider.force_flush()


def client_interceptors() -> list[Interceptor]:
    """The Temporal client's interceptors: the tracing one where tracing is on, else none."""
    if _tracing is None:
        return []
    from temporalio.contrib.opentelemetry import OpenTelemetryInterceptor

    return [OpenTelemetryInterceptor(add_temporal_spans=True)]


def instrument_app(app: FastAPI) -> None:
    """Trace `app`'s requests where tracing is on: a server span per request (none for `NOT_TRACED`), the
    query's values hidden, no spans per body chunk, and no HTTP metrics (the API's `/metrics` has its own)."""
    if _tracing is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.metrics import NoOpMeterProvider

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=_tracing.provider,
        meter_provider=NoOpMeterProvider(),
        excluded_urls=NOT_TRACED,
        server_request_hook=hide_query_values,
        exclude_spans=["receive", "send"],
    )


def hide_query_values(span: trace.Span, _scope: Mapping[str, Any]) -> None:
    """Replace the value of every query parameter in the span's URL attributes, keeping the names: a
    customer's link carries a token there (`?token=`), and no other parameter is worth the risk. Called
    once the span has its request attributes, before anything else sees it."""
    recorded = getattr(span, "attributes", None)  # the SDK's span; a non-recording one has none
    if not recorded or not span.is_recording():
        return
    for key in QUERY_ATTRIBUTES:
        value = recorded.get(key)
        if isinstance(value, str):
            span.set_attribute(key, hidden_query(value, whole_query=key == "url.query"))


def hidden_query(value: str, *, whole_query: bool = False) -> str:
    """`value` (a URL, a path with its query, or with `whole_query` the query alone) with every
    parameter's value replaced by `HIDDEN`."""
    if whole_query:
        head, query = "", value
    elif "?" in value:
        head, _, query = value.partition("?")
        head += "?"
    else:
        return value
    names = [(name, HIDDEN) for name, _ in parse_qsl(query, keep_blank_values=True)]
    return head + urlencode(names)


def instrument_engine(engine: AsyncEngine) -> None:
    """Trace the SQL `engine` runs where tracing is on: a client span per statement, under whatever span
    is current (an activity's, a request's). Only the engine's events are listened to; nothing of
    SQLAlchemy is patched for the process, so each ledger's engine is traced once, as it is made."""
    if _tracing is None:
        return
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.metrics import NoOpMeterProvider

    connections = (
        NoOpMeterProvider().get_meter(__name__).create_up_down_counter("db.client.connections.usage")
    )
    tracer = _tracing.provider.get_tracer("refund_desk.ledger")
    EngineTracer(tracer, engine.sync_engine, connections)  # type: ignore[no-untyped-call]


def stop() -> None:
    """Flush and shut the provider down, and trace nothing more made in this process: no interceptor for
    a new client, no instrumentation for a new app or engine. OpenTelemetry's global provider cannot be
    set again, so a process that stopped cannot start tracing again (the tests start it once)."""
    global _tracing
    if _tracing is None:
        return
    tracing, _tracing = _tracing, None
    tracing.provider.shutdown()
