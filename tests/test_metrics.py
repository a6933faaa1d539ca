"""Metrics in Prometheus' format (docs/metrics.md), scraped over real HTTP.

The API's `/metrics`: complaints filed, reviewed, escalated, refunded and replaced through the API on the
time-skipping server, their notices sent to a real SMTP sink and to a webhook receiver that never answers,
and the figures read before and after (requests by route template, the latency histogram, open complaints,
escalations, refunds and replacements by currency, notices by channel and state, the dispatcher's lag).
The ledger's aggregate queries on SQLite and PostgreSQL. The worker's Temporal SDK endpoint: `worker.run`
with REFUND_DESK_WORKER_METRICS_ADDRESS on a free port, against the real dev server."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.testing import WorkflowEnvironment

from dispatch.dispatcher import Dispatcher
from dispatch.events import ALL_TYPES, WebhookEvent
from dispatch.mail_sink import MailSink, list_mail
from dispatch.settings import DispatchSettings
from ledger.deliveries import FAILED, UNDELIVERABLE, Attempt, Deliveries, add_webhook_event
from ledger.metrics import LedgerMetrics, MoneyMoved
from ledger.repository import Ledger
from ledger.vault import VaultKeyring
from ledger.webhook_endpoints import WebhookEndpoints
from policy.models import ComplaintKind, ComplaintStatus
from starter.desk import ComplaintDesk
from tests.conftest import Api, in_ledger, serving
from tests.factories import DESCRIPTION, software_order
from tests.test_api import new_customer, order_body
from tests.test_ledger import complaint, file, refund_issue, replacement_issue, step

S = ComplaintStatus


@dataclass(frozen=True)
class Scrape:
    """One scrape's samples, by name and labels."""

    text: str
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]

    @classmethod
    def parse(cls, text: str) -> Scrape:
        samples = {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }
        return cls(text, samples)

    def value(self, name: str, **labels: str) -> float:
        """The sample's value; 0 when the scrape has no such sample (nothing counted yet)."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def names(self) -> set[str]:
        return {name for name, _ in self.samples}


async def scrape(base_url: str) -> Scrape:
    """GET /metrics as Prometheus does: no token, no cookie."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version="), response.headers
    return Scrape.parse(response.text)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# ------------------------------------------------------------------------------------ the API's /metrics


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[MailSink]:
    with MailSink(port=0, folder=tmp_path / "mail") as running:
        yield running


async def filed(api: Api, amount: str = "50.00", currency: str = "EUR") -> str:
    """A major-defect complaint the shop's backend files on a fresh order; its id."""
    backend = api.backend()
    order = await backend.post("/v1/orders", json=order_body(new_customer(), amount, currency=currency))
    assert order.status_code == 201, order.text
    body = {"order_id": order.json()["order_id"], "kind": "major_defect", "description": DESCRIPTION}
    response = await backend.post("/v1/complaints", json=body)
    assert response.status_code == 201, response.text
    complaint_id: str = response.json()["complaint_id"]
    return complaint_id


async def reviewed(api: Api, complaint_id: str, decision: dict[str, str]) -> str:
    response = await api.support().post(f"/v1/complaints/{complaint_id}/review", json=decision)
    assert response.status_code == 200, response.text
    status: str = response.json()["status"]
    return status


APPROVE = {"decision": "approve", "note": "reproduced"}
REJECT = {"decision": "reject", "reason_code": "not_a_defect", "note": "works as designed"}


async def test_the_apis_metrics_follow_complaints_money_and_notices(
    api: Api, env: WorkflowEnvironment, ledger: Ledger, keyring: VaultKeyring, sink: MailSink
) -> None:
    """Requests are counted by route template and status (a refused one too), the ledger's figures move
    with what the complaints did, and no complaint id is in any label."""
    # A receiver that never answers: its webhooks fail once their retry period is over.
    endpoints = WebhookEndpoints(ledger.engine, keyring)
    await endpoints.create(f"http://127.0.0.1:{free_port()}/", [ALL_TYPES], "nobody listens")
    before = await scrape(api.base_url)

    refunded = await filed(api, "49.90")
    replaced = await filed(api, "50.00", currency="USD")
    escalated = await filed(api, "20.00")
    rejected = await filed(api, "30.00")
    assert await reviewed(api, refunded, APPROVE) == "rectifying"
    assert await reviewed(api, replaced, APPROVE) == "rectifying"
    assert await reviewed(api, rejected, REJECT) == "rejected"
    offer = {"sku": "plugin-seo-max", "name": "SEO Max plugin", "value": "54.00"}
    support = api.support()
    assert (await support.post(f"/v1/complaints/{replaced}/replacement", json=offer)).status_code == 200
    unknown = await api.client().get(f"/v1/complaints/{refunded}")  # no token: the gate's 401
    assert unknown.status_code == 401
    assert (await api.client().get("/no/such/path")).status_code == 404
    assert (await api.client().get("/assets/web.css")).status_code == 200
    during = await scrape(api.base_url)

    def moved(name: str, **labels: str) -> float:
        return during.value(name, **labels) - before.value(name, **labels)

    assert moved("refund_desk_http_requests_total", route="/v1/complaints", method="POST", status="201") == 4
    assert (
        moved("refund_desk_http_request_duration_seconds_count", route="/v1/complaints", method="POST") == 4
    )
    assert moved("refund_desk_http_request_duration_seconds_sum", route="/v1/complaints", method="POST") > 0
    review = "/v1/complaints/{complaint_id}/review"
    assert moved("refund_desk_http_requests_total", route=review, method="POST", status="200") == 3
    one = "/v1/complaints/{complaint_id}"
    assert moved("refund_desk_http_requests_total", route=one, method="GET", status="401") == 1
    assert moved("refund_desk_http_requests_total", route="unmatched", method="GET", status="404") == 1
    assert moved("refund_desk_http_requests_total", route="/assets", method="GET", status="200") == 1
    defect = ComplaintKind.MAJOR_DEFECT.value
    assert moved("refund_desk_complaints_open", kind=defect, status="rectifying") == 2
    assert moved("refund_desk_complaints_open", kind=defect, status="under_review") == 1
    assert during.value("refund_desk_dispatcher_lag_seconds") > 0, "the notices wait: no dispatcher runs"
    assert during.value("refund_desk_ledger_up") == 1

    replacement = {"choice": "replacement"}
    record = await ledger.get_complaint(replaced)
    assert record is not None
    owner = record.state.customer_id
    chosen = await api.customer(owner).post(f"/v1/complaints/{replaced}/remedy", json=replacement)
    assert chosen.status_code == 200, chosen.text
    await env.sleep(timedelta(days=5, minutes=1))  # every deadline passes: one escalates, two end
    await api.desk.outcome(refunded)
    await api.desk.outcome(replaced)
    await in_ledger(ledger, escalated, S.ESCALATED)
    await in_ledger(ledger, refunded, S.REFUNDED)
    await in_ledger(ledger, replaced, S.REPLACED)

    settings = DispatchSettings(smtp_url=sink.url, support_email="support@shop.test")
    dispatcher = Dispatcher.over(ledger, keyring, settings, None)
    dispatcher.clock = lambda: datetime.now(UTC) + timedelta(days=4)  # past every retry period
    while await dispatcher.dispatch_once():
        pass
    await dispatcher.http.aclose()
    after = await scrape(api.base_url)

    def since(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert since("refund_desk_refunds_total", currency="EUR") == 1
    assert since("refund_desk_refunded_amount_total", currency="EUR") == pytest.approx(49.90)
    assert since("refund_desk_refunds_total", currency="USD") == 0
    assert since("refund_desk_replacements_total", currency="USD") == 1
    assert since("refund_desk_replacement_value_total", currency="USD") == pytest.approx(54.00)
    assert since("refund_desk_escalations_total", kind=defect) == 1
    assert since("refund_desk_complaints_open", kind=defect, status="rectifying") == 0
    assert since("refund_desk_complaints_open", kind=defect, status="escalated") == 1
    assert since("refund_desk_complaints_open", kind=defect, status="under_review") == 0

    statuses = await Deliveries(ledger.engine).counts()
    mails = len(list_mail(sink.folder))
    assert mails > 0 and statuses.get(FAILED, 0) > 0
    assert since("refund_desk_notices_total", channel="email", state="delivered") == mails
    assert since("refund_desk_notices_total", channel="webhook", state="failed") == statuses[FAILED]
    assert since("refund_desk_notices_total", channel="email", state="undeliverable") == statuses.get(
        UNDELIVERABLE, 0
    ), "the customers gave no email address"
    assert after.value("refund_desk_dispatcher_lag_seconds") == 0, "nothing waits any more"

    for complaint_id in (refunded, replaced, escalated, rejected):
        assert complaint_id not in after.text, "a label names a route's template, never its path"
    assert "process_resident_memory_bytes" in after.names()


async def test_metrics_take_no_token_and_are_not_in_the_openapi_document(api: Api) -> None:
    async with httpx.AsyncClient(base_url=api.base_url, timeout=30) as anonymous:
        assert (await anonymous.get("/metrics")).status_code == 200
        openapi = (await anonymous.get("/openapi.json")).json()
    assert "/metrics" not in openapi["paths"]
    assert "/healthz" in openapi["paths"]


async def test_a_ledger_that_does_not_answer_leaves_the_request_figures(desk: ComplaintDesk) -> None:
    """The scrape still answers, with `refund_desk_ledger_up` 0 and this process's request figures."""
    broken = Ledger.connect("postgresql+asyncpg://nobody@127.0.0.1:9/nothing")  # port 9: discard, closed
    sick = ComplaintDesk(desk.client, broken, desk.keyring, desk.task_queue)
    try:
        async with serving(sick) as api:
            assert (await api.client().get("/healthz")).status_code == 503
            answered = await scrape(api.base_url)
    finally:
        await broken.close()
    assert answered.value("refund_desk_ledger_up") == 0
    assert "refund_desk_complaints_open" not in answered.names()
    assert (
        answered.value("refund_desk_http_requests_total", route="/healthz", method="GET", status="503") == 1
    )


# ---------------------------------------------------------------------------- the ledger's figures


NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def webhook(n: int) -> WebhookEvent:
    return WebhookEvent(
        id=f"evt_{n}", type="complaint.status_changed", occurred_at=NOW, data={}, sequence_key=f"c-{n}"
    )


async def test_the_ledgers_figures_on_both_databases(any_ledger: Ledger) -> None:
    """Exact sums by currency (tenths that floats would not add exactly), open complaints by kind and
    status with zero for the rest, escalations kept after a decision, notices by how they ended, the lag."""
    metrics = LedgerMetrics(any_ledger.engine)
    empty = await metrics.read(NOW)
    assert empty.refunds == {} and empty.replacements == {}
    assert set(empty.open_complaints.values()) == {0} and set(empty.escalations.values()) == {0}
    assert empty.dispatcher_lag == timedelta(0)

    orders = [software_order(price) for price in ("0.10", "0.20", "19.99")]
    for order, amount in zip(orders, ("0.10", "0.20", "19.99"), strict=True):
        await any_ledger.issue_refund(refund_issue(order, f"c-{order.order_id}", amount))
    usd = software_order("7.5", currency="USD")
    await any_ledger.issue_replacement(replacement_issue(usd, "c-usd"))

    open_one = await file(any_ledger, complaint(software_order()))
    late = complaint(software_order(), status=S.ESCALATED)
    late = late.model_copy(update={"escalated_at": NOW})
    await file(any_ledger, late)
    decided = late.model_copy(update={"status": S.REJECTED})
    assert await any_ledger.record_transition(f"complaint.{late.complaint_id}", "run-1", step(decided, 2))

    async with any_ledger.engine.begin() as conn:
        for n in range(4):
            await add_webhook_event(
                conn, any_ledger._insert, webhook(n), ("we_a",), now=NOW, retry_for=timedelta(days=3)
            )
    deliveries = Deliveries(any_ledger.engine)
    first, second, third, _ = await deliveries.claim("d", now=NOW, lease=timedelta(minutes=1), limit=4)
    assert await deliveries.record_sent(first, Attempt(5, status_code=200), NOW)
    assert await deliveries.record_retry(second, Attempt(5, status_code=503), NOW + timedelta(days=4))
    assert await deliveries.record_undeliverable(third, "the endpoint was deleted", NOW)

    figures = await metrics.read(NOW + timedelta(seconds=90))
    assert figures.refunds == {"EUR": MoneyMoved(count=3, amount=Decimal("20.29"))}
    assert figures.replacements == {"USD": MoneyMoved(count=1, amount=Decimal("7.5"))}
    defect = ComplaintKind.MAJOR_DEFECT.value
    assert figures.open_complaints[(defect, open_one.status.value)] == 1
    assert figures.open_complaints[(defect, S.ESCALATED.value)] == 0, "rejected since: not open"
    assert sum(figures.open_complaints.values()) == 1
    assert figures.escalations == {kind.value: int(kind.value == defect) for kind in ComplaintKind}
    assert figures.notices[("webhook", "delivered")] == 1
    assert figures.notices[("webhook", "failed")] == 1
    assert figures.notices[("webhook", "undeliverable")] == 1
    assert figures.notices[("email", "delivered")] == 0
    assert figures.dispatcher_lag == timedelta(seconds=90), "the fourth still waits, since NOW"
