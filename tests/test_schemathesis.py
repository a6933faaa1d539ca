"""Schemathesis against the served API: every operation of `/openapi.json`, fuzzed over real HTTP with a valid
token of each role, must answer within its own schema and never with a server error.

The API runs as the `api` fixture serves it (uvicorn on a loopback port, the real desk, a worker on the
time-skipping Temporal server, a real SQLite ledger). Schemathesis' client is synchronous (`requests`), so
the fuzzing runs in a thread while the event loop keeps serving. Generation is seeded and bounded (`PROBES`
per operation and role, `EXAMPLES` more for the roles it admits), so a CI run sends the same few hundred
requests every time.

Generated ids mostly miss (404), so one order, complaint and activation are seeded for the customer whose
token is used, and every operation with a path is also called with those real ids: that takes the fuzzed
bodies past the lookup into the workflows' updates.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import Case, CheckContext, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.core.transport import Response
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from policy.models import Role
from tests.conftest import Api
from tests.factories import DESCRIPTION
from tests.test_api import filing_settled, new_customer, order_body

PROBES = 3
"""Cases per operation and role in the first pass, which mostly finds out which roles are refused (403)."""
EXAMPLES = 8
"""More cases per operation for each role the first pass saw get past the role check."""

SUBS = {Role.BACKEND: "shop", Role.SUPPORT: "alice"}
AnyCase = Case[Any]
PATH_PARAMETER = re.compile(r"{(\w+)}")


def documented_503(ctx: CheckContext, response: Response, case: AnyCase) -> bool | None:
    """`not_a_server_error`, except a 503 the operation documents (Temporal or the ledger unreachable, a
    workflow that did not answer): that one is part of the contract, not a crash."""
    if response.status_code == 503 and "503" in case.operation.definition.raw.get("responses", {}):
        return None
    return not_a_server_error(ctx, response, case)


CHECKS = [
    documented_503,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@dataclass
class Report:
    """What the run did and what it found, per operation and role."""

    calls: Counter[tuple[str, Role]] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    admitted: Counter[tuple[str, Role]] = field(default_factory=Counter)
    succeeded: set[str] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)


def _strategy(operation: Any, real_ids: dict[str, str]) -> Any:
    """Positive and negative cases with generated path parameters, and positive ones with the real ids."""
    strategies = [operation.as_strategy(GenerationMode.POSITIVE)]
    names = PATH_PARAMETER.findall(operation.path)
    if names:
        fixed = {name: real_ids[name] for name in names}
        strategies.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=fixed))
    if names or operation.body:
        strategies.append(operation.as_strategy(GenerationMode.NEGATIVE))
    return st.one_of(strategies)


def fuzz(api: Api, real_ids: dict[str, str]) -> Report:
    """Every operation, as every role: call each generated case and run the checks on its response."""
    schema = schemathesis.openapi.from_url(api.base_url + "/openapi.json", timeout=30)
    report = Report()
    tokens = {
        role: api.token(role, real_ids["customer_id"] if role is Role.CUSTOMER else SUBS[role])
        for role in (Role.BACKEND, Role.SUPPORT, Role.CUSTOMER)
    }
    with requests.Session() as session:
        for number, result in enumerate(schema.get_all_operations()):
            assert isinstance(result, Ok), f"the schema has an operation schemathesis cannot read: {result}"
            operation = result.ok()
            cases = _strategy(operation, real_ids)
            for role, token in tokens.items():
                call = _caller(api.base_url, session, role, token, report)
                _run(call, cases, PROBES, seed=number)
                if report.admitted[(operation.label, role)]:
                    _run(call, cases, EXAMPLES, seed=1000 + number)
    return report


def _caller(
    base_url: str, session: requests.Session, role: Role, token: str, report: Report
) -> Callable[[AnyCase], None]:
    """Send a case with `role`'s token, note what came back and run the checks on it."""

    def call(case: AnyCase) -> None:
        response = case.call(
            base_url=base_url, session=session, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        label = case.operation.label
        report.calls[(label, role)] += 1
        report.statuses[response.status_code] += 1
        if response.status_code not in (401, 403):
            report.admitted[(label, role)] += 1
        if response.status_code < 300:
            report.succeeded.add(label)
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as failed:
            report.failures.append(f"{role.value}: {failed}")

    return call


def _run(call: Callable[[AnyCase], None], cases: Any, examples: int, seed: int) -> None:
    """`examples` cases from a fixed seed, not shrunk: a failure is collected, not raised."""
    hypothesis.seed(seed)(
        settings(
            max_examples=examples,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )(given(case=cases)(call))
    )()


async def _seed(api: Api) -> dict[str, str]:
    """A customer with a complaint about a software order and an activation of a rented number, and a
    webhook endpoint of the backend's."""
    customer_id = new_customer()
    backend = api.backend()
    software = order_body(customer_id)
    number = order_body(
        customer_id,
        amount="0.75",
        order_id=f"ord-{uuid.uuid4().hex[:10]}",
        product={"sku": "vn-uk-whatsapp", "kind": "virtual_number", "name": "UK number for WhatsApp"},
        placed_at=(await api.desk.now()).isoformat(),
    )
    for body in (software, number):
        assert (await backend.post("/v1/orders", json=body)).status_code == 201
    activation = await backend.post(
        "/v1/activations",
        json={"order_id": number["order_id"], "phone_number": "+447700900123", "service": "whatsapp"},
    )
    assert activation.status_code == 201, activation.text
    complaint = await api.customer(customer_id).post(
        "/v1/complaints",
        json={"order_id": software["order_id"], "kind": "major_defect", "description": DESCRIPTION},
    )
    assert complaint.status_code == 201, complaint.text
    await filing_settled(api, complaint.json()["complaint_id"])
    endpoint = await backend.post(
        "/v1/webhook-endpoints", json={"url": "https://shop.example.com/hook", "event_types": ["*"]}
    )
    assert endpoint.status_code == 201, endpoint.text
    return {
        "customer_id": customer_id,
        "order_id": software["order_id"],
        "complaint_id": complaint.json()["complaint_id"],
        "activation_id": activation.json()["activation_id"],
        "endpoint_id": endpoint.json()["endpoint_id"],
        "delivery_id": "1",
        "ref": "ev_" + "0" * 32,
    }


async def test_schemathesis_finds_no_server_error_and_no_response_outside_the_schema(api: Api) -> None:
    """A few hundred generated requests, valid and invalid, as each role: every answer is documented for
    its operation, matches the documented body and headers, and none is an undocumented 5xx."""
    real_ids = await _seed(api)

    report = await asyncio.to_thread(fuzz, api, real_ids)

    assert report.failures == [], "\n\n".join(report.failures)
    operations = {label for label, _ in report.calls}
    assert len(operations) >= 19, sorted(operations)
    for label in operations:
        for role in (Role.BACKEND, Role.SUPPORT, Role.CUSTOMER):
            assert report.calls[(label, role)] >= 1, (label, role)
    total = sum(report.calls.values())
    assert 250 <= total <= 700, total
    assert {"GET /v1/orders/{order_id}", "GET /v1/complaints/{complaint_id}", "GET /healthz"} <= (
        report.succeeded
    ), report.succeeded
    health = await api.backend().get("/healthz")
    assert health.status_code == 200, f"the API still answers after the run: {health.text}"
