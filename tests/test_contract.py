"""The contract as a machine reads it: every action the policy names has a handler on its kind's workflow,
every failure has one code and status wherever it is met, the OpenAPI document describes what a client
generator needs (examples, decimal strings, error codes, readable operation ids), `/docs` works without
the internet, and a client generated from `/openapi.json` drives a complaint end to end."""

from __future__ import annotations

import importlib
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.workflow import _Definition

from ledger.repository import OrderConflict
from policy import refusals
from policy.complaint import ACTIONS_OF_KIND
from policy.models import ComplaintKind, Role
from policy.refusals import PolicyRefusal
from starter.api.errors import error_codes
from starter.desk import ComplaintNotFound, ComplaintUnresponsive
from starter.desk.failures import REFUSAL_CODES, TABLE, failure_of
from starter.desk.plumbing import update_name
from tests.conftest import Api
from workflows.defect_complaint import DefectComplaintWorkflow
from workflows.refund_claim import RefundClaimWorkflow

WORKFLOW_OF_KIND: dict[ComplaintKind, type] = {
    ComplaintKind.MAJOR_DEFECT: DefectComplaintWorkflow,
    ComplaintKind.SMS_NOT_RECEIVED: RefundClaimWorkflow,
    ComplaintKind.INVALID_NUMBER: RefundClaimWorkflow,
}


@pytest.mark.parametrize("kind", list(ComplaintKind))
def test_every_action_the_policy_allows_a_kind_has_an_update_on_its_workflow(kind: ComplaintKind) -> None:
    definition = _Definition.must_from_class(WORKFLOW_OF_KIND[kind])
    missing = set(ACTIONS_OF_KIND[kind]) - set(definition.updates)
    assert not missing, f"{kind.value}: the policy allows {missing}, its workflow has no such update"
    assert "state" in definition.queries


def test_an_update_is_called_by_its_handlers_name() -> None:
    assert update_name(DefectComplaintWorkflow.review) == "review"
    assert update_name(RefundClaimWorkflow.withdraw) == "withdraw"
    assert update_name(DefectComplaintWorkflow.answer_access) == "answer_access"


def test_the_failure_table_gives_each_failure_one_code_and_status() -> None:
    conflict = failure_of(PolicyRefusal(refusals.INVALID_STATE, "not now"))
    assert conflict is not None and (conflict.code, conflict.status) == ("invalid_state", 409)
    forbidden = failure_of(PolicyRefusal(refusals.FORBIDDEN_ACTOR, "not you"))
    assert forbidden is not None and forbidden.status == 403
    intake = failure_of(PolicyRefusal(refusals.INSUFFICIENT_REASONS, "too short"))
    assert intake is not None and intake.status == 422
    missing = failure_of(ComplaintNotFound("ord-1.major_defect.00"))
    assert missing is not None and (missing.code, missing.status) == ("complaint_not_found", 404)
    assert missing.message == "no complaint ord-1.major_defect.00"
    silent = failure_of(ComplaintUnresponsive("c"))
    assert silent is not None and (silent.code, silent.status) == ("complaint_unresponsive", 503)
    clash = failure_of(OrderConflict("order ord-1 exists with other contents"))
    assert clash is not None and clash.status == 409 and not clash.usage
    assert failure_of(KeyError("a bug")) is None
    assert all(entry.code.isidentifier() and entry.code.islower() for entry in TABLE)


async def test_openapi_names_operations_and_gives_every_body_an_example(api: Api) -> None:
    spec = (await api.client().get("/openapi.json")).json()
    operations = [op for path in spec["paths"].values() for op in path.values()]
    ids = {op["operationId"] for op in operations}
    assert {"file_complaint", "review", "choose_remedy", "record_order", "get_complaint"} <= ids
    assert all("_v1_" not in op_id and not op_id.endswith(("_post", "_get")) for op_id in ids), ids
    schemas = spec["components"]["schemas"]
    for op in operations:
        body = op.get("requestBody")
        if body is None:
            continue
        ref = body["content"]["application/json"]["schema"]
        name = (ref.get("$ref") or ref["anyOf"][0]["$ref"]).rsplit("/", 1)[-1]
        assert schemas[name].get("examples"), f"{op['operationId']}: {name} has no example"


async def test_openapi_declares_money_a_decimal_string(api: Api) -> None:
    schemas = (await api.client().get("/openapi.json")).json()["components"]["schemas"]
    for model, field in (("OrderIn", "amount"), ("ReplacementIn", "value")):
        amount = schemas[model]["properties"][field]
        assert amount["type"] == "string" and amount["format"] == "decimal", (model, amount)
        assert "12.50" in amount["examples"]


async def test_openapi_lists_the_codes_of_every_error_response(api: Api) -> None:
    spec = (await api.client().get("/openapi.json")).json()
    review = spec["paths"]["/v1/complaints/{complaint_id}/review"]["post"]["responses"]
    for status, expected in (
        ("409", ["complaint_already_open", "invalid_state", "remedy_being_issued"]),
        ("422", ["validation_error", "reason_code_required", "replacement_out_of_tolerance"]),
        ("404", ["complaint_not_found"]),
        ("503", ["complaint_unresponsive", "temporal_unavailable", "ledger_unavailable"]),
    ):
        description = review[status]["description"]
        for code in expected:
            assert f"`{code}`" in description, (status, code)
    listed = {code for status in (403, 409, 422) for code in error_codes(status)}
    assert set(REFUSAL_CODES) <= listed


async def test_docs_work_offline_with_assets_the_app_serves(api: Api) -> None:
    client = api.client()
    for page in ("/docs", "/redoc"):
        html = (await client.get(page)).text
        assets = [part.split('"', 1)[0] for part in html.split('src="')[1:]]
        assets += [part.split('"', 1)[0] for part in html.split('href="')[1:]]
        assert assets, page
        for asset in assets:
            assert not asset.startswith(("http://", "https://", "//")), f"{page} loads {asset} from outside"
            assert (await client.get(asset)).status_code == 200, asset


def generated_client(spec: dict[str, Any], folder: Path) -> Any:
    """The package `openapi-python-client` generates from `spec`, imported from `folder`."""
    spec_file = folder / "openapi.json"
    spec_file.write_text(httpx.Response(200, json=spec).text)
    generator = Path(sys.executable).parent / "openapi-python-client"
    done = subprocess.run(
        [str(generator), "generate", "--path", str(spec_file), "--output-path", str(folder / "client")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(folder / "client"))
    try:
        return importlib.import_module("refund_desk_client")
    finally:
        sys.path.remove(str(folder / "client"))


async def test_a_client_generated_from_openapi_takes_a_complaint_from_filing_to_its_outcome(
    api: Api, tmp_path: Path
) -> None:
    spec = (await api.client().get("/openapi.json")).json()
    package = generated_client(spec, tmp_path)
    models = importlib.import_module("refund_desk_client.models")
    orders = importlib.import_module("refund_desk_client.api.orders.record_order")
    filing = importlib.import_module("refund_desk_client.api.complaints.file_complaint")
    reading = importlib.import_module("refund_desk_client.api.complaints.get_complaint")
    reviewing = importlib.import_module("refund_desk_client.api.support.review")

    def as_(role: Role, sub: str) -> Any:
        return package.AuthenticatedClient(base_url=api.base_url, token=api.token(role, sub))

    backend, support, customer = (
        as_(Role.BACKEND, "shop"),
        as_(Role.SUPPORT, "alice"),
        as_(Role.CUSTOMER, "cust-gen"),
    )
    order = models.OrderIn.from_dict(
        {
            "order_id": f"ord-gen-{tmp_path.name[-8:]}",
            "customer_id": "cust-gen",
            "amount": "49.90",
            "currency": "EUR",
            "product": {"sku": "plugin-seo-pro", "kind": "software", "name": "SEO Pro plugin"},
            "placed_at": datetime.now(UTC).isoformat(),
        }
    )
    recorded = await orders.asyncio_detailed(client=backend, body=order)
    assert recorded.status_code == 201, recorded.content
    complaint = models.ComplaintIn.from_dict(
        {
            "order_id": order.order_id,
            "kind": "major_defect",
            "description": "The plugin returns HTTP 500 on every page since 2.3; logs attached.",
        }
    )
    filed = await filing.asyncio_detailed(client=customer, body=complaint)
    assert filed.status_code == 201, filed.content
    complaint_id = filed.parsed.complaint_id
    decision = models.ReviewIn.from_dict({"decision": "approve", "note": "reproduced"})
    reviewed = await reviewing.asyncio_detailed(complaint_id, client=support, body=decision)
    assert reviewed.status_code == 200, reviewed.content
    assert reviewed.parsed.status.value == "rectifying"
    read = await reading.asyncio(complaint_id, client=customer)
    assert read.status.value == "rectifying" and read.amount == "49.90"
    fixing = importlib.import_module("refund_desk_client.api.support.mark_fixed")
    fix = models.FixIn.from_dict({"note": "patched in 2.3.1"})
    fixed = await fixing.asyncio_detailed(complaint_id, client=support, body=fix)
    assert fixed.status_code == 200, fixed.content
    final = await reading.asyncio(complaint_id, client=customer)
    assert final.status.value == "rectified" and final.resolution.outcome.value == "rectified"
    assert [event.type_ for event in final.events] == ["filed", "deficiency_approved", "rectified"]
