"""Traces (starter.telemetry.traces): one trace per HTTP request, from the API's span through the Temporal
update into the workflow's handler, its activity and the ledger's SQL, and no secret in any span.

Real parts only: the dev server, a worker built by `build_worker` on a client made by the desk's own
`connect`, the ledger made by `Ledger.connect`, the API made by `create_app`, served over HTTP. Spans go
to an in-memory exporter, the one thing `start` is given instead of an OTLP endpoint.

OpenTelemetry's global tracer provider can be set once per process, and the interceptor's workflow side
reads it, so this module starts tracing once and turns it off again after its last test; the test that
wants it off from the start runs in a fresh interpreter.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from temporalio.testing import WorkflowEnvironment

from ledger.repository import Ledger
from ledger.vault import VaultKeyring
from policy.models import Role
from starter.desk import ComplaintDesk, connect
from starter.desk.settings import TemporalSettings
from starter.telemetry import traces
from tests.conftest import Api, serving
from tests.factories import DESCRIPTION
from worker import build_worker

EXPORTER = InMemorySpanExporter()
EMAIL = "ada.lovelace@example.com"
EMAIL_SHAPE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+\.[A-Za-z0-9.-]+")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module", autouse=True)
def tracing() -> Iterator[traces.Tracing]:
    """Tracing on for this module's tests, exporting to `EXPORTER`; off again after them, so the rest of
    a suite run connects, serves and writes untraced."""
    started = traces.start("refund-desk-test", processor=SimpleSpanProcessor(EXPORTER))
    assert started is not None
    assert trace.get_tracer_provider() is started.provider, "another provider was set in this process"
    yield started
    traces.stop()


@pytest.fixture
async def traced_api(
    dev_server: WorkflowEnvironment, ledger: Ledger, keyring: VaultKeyring
) -> AsyncIterator[Api]:
    """The API over real HTTP on a desk whose client `connect` made, with a worker on that client."""
    address = dev_server.client.service_client.config.target_host
    client = await connect(TemporalSettings(address=address, namespace=dev_server.client.namespace))
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"
    async with build_worker(client, ledger, keyring, task_queue):
        desk = ComplaintDesk(client=client, ledger=ledger, keyring=keyring, task_queue=task_queue)
        async with serving(desk) as api:
            yield api


async def settled(seconds: float = 1.0, limit: float = 20.0) -> list[ReadableSpan]:
    """Every span finished so far, once none has finished for `seconds` (the worker's last spans of a
    request end a moment after its response)."""
    seen = -1
    waited = 0.0
    while waited < limit:
        spans = EXPORTER.get_finished_spans()
        if len(spans) == seen:
            return list(spans)
        seen = len(spans)
        await asyncio.sleep(seconds)
        waited += seconds
    raise AssertionError("spans kept coming")


def texts_of(spans: Sequence[ReadableSpan]) -> Iterator[str]:
    """Every text a span carries: its name, its status, its attributes' and its events' values."""
    for span in spans:
        yield span.name
        yield span.status.description or ""
        for value in (span.attributes or {}).values():
            yield str(value)
        for event in span.events:
            yield event.name
            for value in (event.attributes or {}).values():
                yield str(value)


def one(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    found = [span for span in spans if span.name == name]
    assert len(found) == 1, (name, sorted(span.name for span in spans))
    return found[0]


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


async def test_an_approval_over_http_is_one_trace_from_the_request_to_the_ledger(traced_api: Api) -> None:
    backend, support = traced_api.backend(), traced_api.support()
    customer_id = f"cust-{uuid.uuid4().hex[:8]}"
    order = {
        "order_id": f"ord-{uuid.uuid4().hex[:10]}",
        "customer_id": customer_id,
        "product": {"sku": "plugin-seo-pro", "kind": "software", "name": "SEO Pro plugin"},
        "amount": "50.00",
        "currency": "EUR",
        "placed_at": datetime.now(UTC).isoformat(),
        "customer_email": EMAIL,
    }
    assert (await backend.post("/v1/orders", json=order)).status_code == 201
    filed = await backend.post(
        "/v1/complaints",
        json={"order_id": order["order_id"], "kind": "major_defect", "description": DESCRIPTION},
    )
    assert filed.status_code == 201, filed.text
    complaint_id = filed.json()["complaint_id"]
    workflow_id = f"complaint.{order['order_id']}.major_defect"
    before = await settled()
    EXPORTER.clear()

    approved = await support.post(
        f"/v1/complaints/{complaint_id}/review", json={"decision": "approve", "note": "reproduced"}
    )
    assert approved.json()["status"] == "rectifying", approved.text
    spans = await settled()

    assert len({span.context.trace_id for span in spans if span.context is not None}) == 1, sorted(
        (span.name, span.context.trace_id if span.context else 0) for span in spans
    )
    http = one(spans, "POST /v1/complaints/{complaint_id}/review")
    assert http.kind is SpanKind.SERVER and http.parent is None
    update = one(spans, "StartWorkflowUpdate:review")
    handler = one(spans, "HandleUpdate:review")
    start_activity = one(spans, "StartActivity:record_transition")
    activity = one(spans, "RunActivity:record_transition")
    assert parent_of(update) == span_id(http)
    assert parent_of(handler) == span_id(update)
    assert parent_of(start_activity) == span_id(handler)
    assert parent_of(activity) == span_id(start_activity)
    ledger_writes = [span for span in spans if parent_of(span) == span_id(activity)]
    statements = [str((span.attributes or {}).get("db.statement", "")) for span in ledger_writes]
    assert any(statement.startswith("INSERT INTO complaint_events") for statement in statements), statements
    assert all(span.kind is SpanKind.CLIENT for span in ledger_writes)
    assert activity.attributes and activity.attributes["temporalWorkflowID"] == workflow_id

    everything = [*before, *spans]
    sql = [
        str((span.attributes or {})["db.statement"])
        for span in everything
        if "db.statement" in (span.attributes or {})
    ]
    assert sql and not [statement for statement in sql if complaint_id in statement], "a bound value in SQL"
    tokens = [client.headers["Authorization"].removeprefix("Bearer ") for client in (backend, support)]
    texts = list(texts_of(everything))
    assert not [text for text in texts if DESCRIPTION in text or "reproduced" in text]
    assert not [text for text in texts if EMAIL_SHAPE.search(text)]
    assert not [text for text in texts if any(token in text for token in tokens) or "Bearer" in text]


async def test_a_query_strings_values_never_reach_a_span_and_probes_are_not_traced(traced_api: Api) -> None:
    token = traced_api.token(Role.CUSTOMER, "cust-tracing")
    EXPORTER.clear()
    customer = traced_api.client()
    await customer.get("/v1/complaints", params={"token": token, "status": "open"})
    assert (await customer.get("/healthz")).status_code == 200
    spans = await settled(0.3)

    http = one(spans, "GET /v1/complaints")
    assert http.attributes is not None
    assert str(http.attributes["http.url"]).endswith("/v1/complaints?token=REDACTED&status=REDACTED")
    assert not [text for text in texts_of(spans) if token in text or token[:20] in text]
    assert not [span for span in spans if "healthz" in span.name], "a probe traced"


def test_query_values_are_hidden_and_names_kept() -> None:
    assert traces.hidden_query("/c?token=abc.def&x=1") == "/c?token=REDACTED&x=REDACTED"
    assert traces.hidden_query("http://h:1/c?token=a%40b") == "http://h:1/c?token=REDACTED"
    assert traces.hidden_query("token=abc&empty=", whole_query=True) == "token=REDACTED&empty=REDACTED"
    assert traces.hidden_query("/c") == "/c"


def test_endpoints_are_read_as_opentelemetry_specifies() -> None:
    assert traces.TraceSettings(endpoint=None, traces_endpoint=None).traces_url() is None
    assert traces.TraceSettings(endpoint="http://c:4318/").traces_url() == "http://c:4318/v1/traces"
    both = traces.TraceSettings(endpoint="http://c:4318", traces_endpoint="http://t:4318/custom")
    assert both.traces_url() == "http://t:4318/custom"
    assert traces.TraceSettings(endpoint="http://c:4318", sdk_disabled=True).traces_url() is None


OFF = textwrap.dedent(
    """
    import json, os
    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        del os.environ[name]
    from opentelemetry import trace
    from starter.telemetry import traces
    from starter.api.app import create_app
    from starter.api.settings import ApiSettings

    started = traces.start(traces.API)
    app = create_app(settings=ApiSettings(jwt_secret="x" * 40))
    print(json.dumps({
        "started": started is not None,
        "interceptors": len(traces.client_interceptors()),
        "app_instrumented": bool(getattr(app, "_is_instrumented_by_opentelemetry", False)),
        "provider": type(trace.get_tracer_provider()).__name__,
    }))
    """
)


def test_with_no_endpoint_nothing_is_set_up() -> None:
    """In a fresh process with no OTEL_* variable: no provider, no interceptor, the app not instrumented."""
    done = subprocess.run(
        [sys.executable, "-c", OFF], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {
        "started": False,
        "interceptors": 0,
        "app_instrumented": False,
        "provider": "ProxyTracerProvider",
    }, done.stderr
