"""The virtual-number half of docs/api.md over real HTTP: activations (R1, R2), the claims about a number
(R5, R6) with their intake refusals (R3, R4, R15, the product's kind, an order refunded already), their
review, and their evidence.

As in `tests/test_api.py` nothing is mocked: uvicorn on a loopback port, the real desk, a worker on the
time-skipping Temporal server and a SQLite ledger. `env.sleep()` skips server time exactly, so "one second
before the SMS wait ends" is one second before it. Every refusal is checked for its status, its code and
for having written nothing (the ledger's row counts before and after).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from policy.activation import ActivationState
from policy.evidence import MAX_FILE_BYTES
from policy.ids import activation_workflow_id, workflow_id_of
from policy.models import Role
from tests.conftest import Api
from tests.evidence_files import PNG, png_of
from tests.factories import CLAIM, POLICY, history_text
from tests.test_api import counts, error_of, filing_settled, new_customer, order_body, place_order

Json = dict[str, Any]

NUMBER = {"sku": "vn-uk-whatsapp", "kind": "virtual_number", "name": "UK number"}
PRICE = "0.75"
PHONE = "+447700900123"
SERVICE = "whatsapp"
SMS_WAIT = POLICY.sms_wait
REVIEW_WINDOW = POLICY.review_window
CLAIM_WINDOW = POLICY.claim_window

ACTIVATION_FIELDS = {"activation_id", "order_id", "status", "expires_at", "refund"}
"""docs/api.md's activation; the API may add fields, never drop these."""


# ----------------------------------------------------------------------------------------------- helpers


async def place_number_order(api: Api, customer_id: str | None = None, **changes: Any) -> Json:
    """A virtual number the backend sold to `customer_id` (a new customer by default) for `PRICE` EUR."""
    body = order_body(customer_id or new_customer(), PRICE, product=NUMBER, **changes)
    response = await api.backend().post("/v1/orders", json=body)
    assert response.status_code == 201, response.text
    order: Json = response.json()
    return order


def activation_body(order_id: str, phone_number: str = PHONE, service: str = SERVICE) -> Json:
    return {"order_id": order_id, "phone_number": phone_number, "service": service}


async def start_activation(api: Api, order_id: str) -> Json:
    """The order's number, waiting for its SMS; returns the 201 body once the ledger holds the activation."""
    response = await api.backend().post("/v1/activations", json=activation_body(order_id))
    assert response.status_code == 201, response.text
    await activation_projected(api, order_id)
    activation: Json = response.json()
    return activation


async def activation_projected(api: Api, order_id: str) -> None:
    """The workflow projects its state into the ledger just after it starts; wait for that first write."""
    for _ in range(500):
        if await api.desk.ledger.activation_of_order(order_id) is not None:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the activation of order {order_id} never reached the ledger")


async def activation_ended(api: Api, order_id: str) -> ActivationState:
    """Wait (in real time) for an activation whose wait is over to finish its writes and end."""
    handle = api.desk.client.get_workflow_handle(
        activation_workflow_id(order_id), result_type=ActivationState
    )
    result: ActivationState = await handle.result()
    return result


async def sms(api: Api, activation_id: str, text: str) -> httpx.Response:
    return await api.backend().post(f"/v1/activations/{activation_id}/sms", json={"text": text})


def evidence(data: bytes = PNG, content_type: str = "image/png", name: str = "2fa-screen.png") -> Json:
    return {"name": name, "content_type": content_type, "data_base64": base64.b64encode(data).decode()}


async def claim(
    api: Api,
    order: Json,
    kind: str,
    *,
    description: str = CLAIM,
    attachments: Sequence[Json] = (),
    client: httpx.AsyncClient | None = None,
) -> httpx.Response:
    """File a claim about `order`, by its customer unless another client is given."""
    client = client or api.customer(order["customer_id"])
    body = {
        "order_id": order["order_id"],
        "kind": kind,
        "description": description,
        "evidence": list(attachments),
    }
    return await client.post("/v1/complaints", json=body)


async def filed(api: Api, order: Json, kind: str, **options: Any) -> Json:
    """A claim that passed intake, once its own writes (the filing's event and notice) have landed."""
    response = await claim(api, order, kind, **options)
    assert response.status_code == 201, response.text
    complaint: Json = response.json()
    await filing_settled(api, complaint["complaint_id"])
    return complaint


async def balance(api: Api, customer_id: str) -> Json:
    response = await api.customer(customer_id).get(f"/v1/customers/{customer_id}/balance")
    assert response.status_code == 200, response.text
    body: Json = response.json()
    return body


def at(value: str) -> datetime:
    assert value.endswith("Z"), f"{value} is not ISO-8601 UTC"
    return datetime.fromisoformat(value)


# ------------------------------------------------------------------------------ POST /v1/activations


async def test_start_activation_answers_201_waiting_for_sms_with_its_expiry(api: Api) -> None:
    order = await place_number_order(api)
    response = await api.backend().post("/v1/activations", json=activation_body(order["order_id"]))

    assert response.status_code == 201, response.text
    activation = response.json()
    assert set(activation) >= ACTIVATION_FIELDS, activation
    assert activation["status"] == "waiting_for_sms"
    assert activation["order_id"] == order["order_id"]
    assert activation["activation_id"]
    assert activation["refund"] is None
    assert activation["phone_number"] == PHONE
    assert activation["service"] == SERVICE
    assert activation["customer_id"] == order["customer_id"]
    assert activation["sms"] is None
    assert at(activation["expires_at"]) == at(activation["started_at"]) + SMS_WAIT, "R1: sms_wait"


async def test_start_activation_again_with_the_same_body_is_200_and_one_activation(api: Api) -> None:
    order = await place_number_order(api)
    first = await start_activation(api, order["order_id"])

    again = await api.backend().post("/v1/activations", json=activation_body(order["order_id"]))

    assert again.status_code == 200, again.text
    assert again.json() == first
    assert (await counts(api.desk.ledger))["activations"] == 1


async def test_start_activation_refusals_are_their_codes_and_write_nothing(api: Api) -> None:
    order = await place_number_order(api)
    first = await start_activation(api, order["order_id"])
    software = await place_order(api, new_customer())
    before = await counts(api.desk.ledger)
    backend = api.backend()

    for other in (
        activation_body(order["order_id"], phone_number="+447700900999"),
        activation_body(order["order_id"], service="telegram"),
    ):
        conflict = await backend.post("/v1/activations", json=other)
        assert error_of(conflict, 409)["code"] == "activation_conflict", other
    unknown = await backend.post("/v1/activations", json=activation_body("no-such-order"))
    assert error_of(unknown, 404)["code"] == "order_not_found"
    not_a_number = await backend.post("/v1/activations", json=activation_body(software["order_id"]))
    assert error_of(not_a_number, 422)["code"] == "kind_not_for_product"

    assert await counts(api.desk.ledger) == before
    shown = await backend.get(f"/v1/activations/{first['activation_id']}")
    assert shown.json()["phone_number"] == PHONE and shown.json()["service"] == SERVICE
    software_view = await backend.get(f"/v1/orders/{software['order_id']}")
    assert software_view.json()["activation"] is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"phone_number": "12345"}, "body.phone_number"),
        ({"phone_number": "+0123"}, "body.phone_number"),
        ({"phone_number": "+44 7700 900123"}, "body.phone_number"),
        ({"service": "whats app"}, "body.service"),
        ({"service": ""}, "body.service"),
        ({"service": "-whatsapp"}, "body.service"),
        ({"order_id": "has.dots"}, "body.order_id"),
        ({"surprise": True}, "body.surprise"),
    ],
)
async def test_start_activation_refuses_a_malformed_body_with_its_field(
    api: Api, change: Json, field: str
) -> None:
    order = await place_number_order(api)
    before = await counts(api.desk.ledger)

    response = await api.backend().post(
        "/v1/activations", json={**activation_body(order["order_id"]), **change}
    )

    error = error_of(response, 422)
    assert error["code"] == "validation_error"
    assert field in [f["field"] for f in error["fields"]], error
    assert await counts(api.desk.ledger) == before
    assert (await api.backend().get(f"/v1/orders/{order['order_id']}")).json()["activation"] is None


# -------------------------------------------------------------------------- POST /v1/activations/{id}/sms


async def test_r1_sms_one_second_before_the_wait_ends_completes_it_over_http(
    api: Api, env: WorkflowEnvironment
) -> None:
    order = await place_number_order(api)
    activation = await start_activation(api, order["order_id"])
    activation_id = activation["activation_id"]

    await env.sleep(SMS_WAIT - timedelta(seconds=1))
    response = await sms(api, activation_id, "Your WhatsApp code: 123-456")

    assert response.status_code == 200, response.text
    completed = response.json()
    assert completed["status"] == "completed"
    assert completed["sms"]["text"] == "Your WhatsApp code: 123-456"
    waited = at(completed["sms"]["received_at"]) - at(completed["started_at"])
    assert SMS_WAIT - timedelta(seconds=1) <= waited < SMS_WAIT, waited
    assert completed["refund"] is None

    await env.sleep(timedelta(minutes=2))
    later = await api.customer(order["customer_id"]).get(f"/v1/activations/{activation_id}")
    assert later.json()["status"] == "completed" and later.json()["refund"] is None, "R1: not refundable"
    assert (await balance(api, order["customer_id"]))["entries"] == []
    assert (await counts(api.desk.ledger))["refunds"] == 0


async def test_the_same_sms_again_is_200_and_a_different_one_is_409(api: Api) -> None:
    order = await place_number_order(api)
    activation_id = (await start_activation(api, order["order_id"]))["activation_id"]
    first = await sms(api, activation_id, "code 4242")
    assert first.status_code == 200, first.text

    again = await sms(api, activation_id, "code 4242")
    assert again.status_code == 200, again.text
    assert again.json()["sms"] == first.json()["sms"]
    before = await counts(api.desk.ledger)
    other = await sms(api, activation_id, "code 9999")

    assert error_of(other, 409)["code"] == "invalid_state"
    empty = await sms(api, activation_id, "")
    assert "body.text" in [f["field"] for f in error_of(empty, 422)["fields"]]
    shown = (await api.backend().get(f"/v1/activations/{activation_id}")).json()
    assert shown["sms"]["text"] == "code 4242"
    assert await counts(api.desk.ledger) == before


async def test_r2_a_late_sms_after_the_automatic_cancel_is_409_and_changes_nothing(
    api: Api, env: WorkflowEnvironment
) -> None:
    order = await place_number_order(api)
    activation_id = (await start_activation(api, order["order_id"]))["activation_id"]
    await env.sleep(SMS_WAIT + timedelta(minutes=1))
    await activation_ended(api, order["order_id"])
    before = await counts(api.desk.ledger)

    late = await sms(api, activation_id, "Your WhatsApp code: 123-456")

    error = error_of(late, 409)
    assert error["code"] == "invalid_state"
    assert "late SMS" in error["message"]
    shown = (await api.customer(order["customer_id"]).get(f"/v1/activations/{activation_id}")).json()
    assert shown["status"] == "canceled"
    assert shown["cancel_reason"] == "no_sms_in_time"
    assert shown["sms"] is None
    assert shown["refund"]["amount"] == PRICE, "R2: the full price, with no claim"
    assert [e["amount"] for e in (await balance(api, order["customer_id"]))["entries"]] == [PRICE]
    assert await counts(api.desk.ledger) == before


# ----------------------------------------------------------------------- POST /v1/activations/{id}/cancel


@pytest.mark.parametrize("who", ["owner", "backend"])
async def test_cancel_before_the_sms_refunds_once_over_http(api: Api, who: str) -> None:
    order = await place_number_order(api)
    activation_id = (await start_activation(api, order["order_id"]))["activation_id"]
    client = api.customer(order["customer_id"]) if who == "owner" else api.backend()

    first = await client.post(f"/v1/activations/{activation_id}/cancel")

    assert first.status_code == 200, first.text
    canceled = first.json()
    assert canceled["status"] == "canceled"
    assert canceled["cancel_reason"] == ("canceled_by_customer" if who == "owner" else "canceled_by_backend")
    refund = canceled["refund"]
    assert set(refund) == {"amount", "currency", "issued_at"}
    assert (refund["amount"], refund["currency"]) == (PRICE, "EUR"), "the order's price, as a string"
    at(refund["issued_at"])
    for _ in range(2):
        repeat = await client.post(f"/v1/activations/{activation_id}/cancel")
        assert repeat.status_code == 200, repeat.text
        assert repeat.json()["refund"] == refund, "a repeat answers with the same refund"
    await activation_ended(api, order["order_id"])
    after_end = await client.post(f"/v1/activations/{activation_id}/cancel")
    assert after_end.status_code == 200 and after_end.json()["refund"] == refund

    credited = await balance(api, order["customer_id"])
    assert credited["balance"] == PRICE and credited["currency"] == "EUR"
    assert [e["amount"] for e in credited["entries"]] == [PRICE], "credited once"
    assert (await counts(api.desk.ledger))["refunds"] == 1


async def test_cancel_after_the_sms_is_409_invalid_state(api: Api) -> None:
    order = await place_number_order(api)
    activation_id = (await start_activation(api, order["order_id"]))["activation_id"]
    assert (await sms(api, activation_id, "code 4242")).status_code == 200
    before = await counts(api.desk.ledger)

    for client in (api.customer(order["customer_id"]), api.backend()):
        refused = await client.post(f"/v1/activations/{activation_id}/cancel")
        error = error_of(refused, 409)
        assert error["code"] == "invalid_state"
        assert "not refundable" in error["message"]

    assert await counts(api.desk.ledger) == before
    assert (await balance(api, order["customer_id"]))["entries"] == []


async def test_another_customer_cannot_cancel_or_see_an_activation(api: Api) -> None:
    order = await place_number_order(api)
    activation_id = (await start_activation(api, order["order_id"]))["activation_id"]
    stranger = api.customer(new_customer())
    before = await counts(api.desk.ledger)

    cancel = await stranger.post(f"/v1/activations/{activation_id}/cancel")
    assert error_of(cancel, 404)["code"] == "activation_not_found"
    seen = await stranger.get(f"/v1/activations/{activation_id}")
    assert error_of(seen, 404)["code"] == "activation_not_found"
    order_view = await stranger.get(f"/v1/orders/{order['order_id']}")
    assert error_of(order_view, 404)["code"] == "order_not_found"

    assert await counts(api.desk.ledger) == before
    shown = await api.backend().get(f"/v1/activations/{activation_id}")
    assert shown.json()["status"] == "waiting_for_sms"


# ------------------------------------------------------------------------------ GET /v1/activations/{id}


async def test_get_activation_shows_api_md_fields_to_the_backend_and_the_owner(api: Api) -> None:
    order = await place_number_order(api)
    started = await start_activation(api, order["order_id"])

    for client in (api.backend(), api.customer(order["customer_id"])):
        response = await client.get(f"/v1/activations/{started['activation_id']}")
        assert response.status_code == 200, response.text
        shown = response.json()
        assert set(shown) >= ACTIVATION_FIELDS
        assert {k: shown[k] for k in ACTIVATION_FIELDS} == {
            "activation_id": started["activation_id"],
            "order_id": order["order_id"],
            "status": "waiting_for_sms",
            "expires_at": started["expires_at"],
            "refund": None,
        }

    forbidden = await api.support().get(f"/v1/activations/{started['activation_id']}")
    assert error_of(forbidden, 403)["code"] == "forbidden"


async def test_unknown_activation_ids_are_404_on_every_activation_endpoint(api: Api) -> None:
    software = await place_order(api, new_customer())
    waiting = await place_number_order(api)  # a number order with no activation yet
    backend = api.backend()
    before = await counts(api.desk.ledger)

    for activation_id in ("nope", "act_", f"act_{software['order_id']}", f"act_{waiting['order_id']}"):
        seen = await backend.get(f"/v1/activations/{activation_id}")
        assert error_of(seen, 404)["code"] == "activation_not_found", activation_id
        text = await sms(api, activation_id, "code 1")
        assert error_of(text, 404)["code"] == "activation_not_found", activation_id
        cancel = await backend.post(f"/v1/activations/{activation_id}/cancel")
        assert error_of(cancel, 404)["code"] == "activation_not_found", activation_id

    assert await counts(api.desk.ledger) == before


async def test_get_order_shows_its_activation_and_every_complaint(api: Api) -> None:
    order = await place_number_order(api)
    order_id, owner = order["order_id"], order["customer_id"]
    empty = (await api.backend().get(f"/v1/orders/{order_id}")).json()
    assert empty["activation"] is None and empty["complaints"] == []

    not_received = await filed(api, order, "sms_not_received")
    invalid = await filed(api, order, "invalid_number", attachments=[evidence()], client=api.backend())
    started = await start_activation(api, order_id)

    activation = (await api.backend().get(f"/v1/activations/{started['activation_id']}")).json()
    for client in (api.backend(), api.customer(owner)):
        shown = (await client.get(f"/v1/orders/{order_id}")).json()
        assert shown["activation"] == activation
        assert sorted(c["complaint_id"] for c in shown["complaints"]) == sorted(
            [not_received["complaint_id"], invalid["complaint_id"]]
        )
        assert {c["kind"] for c in shown["complaints"]} == {"sms_not_received", "invalid_number"}
        assert shown["product"]["kind"] == "virtual_number"


# ------------------------------------------------------------------------------------------ role matrix

NUMBER_ENDPOINTS: list[tuple[str, str, set[Role]]] = [
    ("POST", "/v1/activations", {Role.BACKEND}),
    ("POST", "/v1/activations/{activation_id}/sms", {Role.BACKEND}),
    ("POST", "/v1/activations/{activation_id}/cancel", {Role.BACKEND, Role.CUSTOMER}),
    ("GET", "/v1/activations/{activation_id}", {Role.BACKEND, Role.CUSTOMER}),
]


async def test_every_activation_endpoint_refuses_the_roles_api_md_does_not_list(api: Api) -> None:
    """403 for a valid token of a role the endpoint's row does not name, with a body that would otherwise
    be acted on; customers use the owner's token, so the 403 is about the role alone."""
    order = await place_number_order(api)
    started = await start_activation(api, order["order_id"])
    other_order = await place_number_order(api, order["customer_id"])
    ids = {"activation_id": started["activation_id"]}
    bodies = {
        "/v1/activations": activation_body(other_order["order_id"]),
        "/v1/activations/{activation_id}/sms": {"text": "code 4242"},
    }
    subs = {Role.BACKEND: "shop", Role.SUPPORT: "alice", Role.CUSTOMER: order["customer_id"]}
    before = await counts(api.desk.ledger)

    checked = 0
    for method, template, allowed in NUMBER_ENDPOINTS:
        for role in {Role.BACKEND, Role.SUPPORT, Role.CUSTOMER} - allowed:
            client = api.as_(role, subs[role])
            response = await client.request(method, template.format(**ids), json=bodies.get(template))
            assert error_of(response, 403)["code"] == "forbidden", (method, template, role)
            checked += 1

    assert checked == 6
    assert await counts(api.desk.ledger) == before
    shown = (await api.backend().get(f"/v1/activations/{started['activation_id']}")).json()
    assert shown["status"] == "waiting_for_sms" and shown["sms"] is None
    other = (await api.backend().get(f"/v1/orders/{other_order['order_id']}")).json()
    assert other["activation"] is None


# ------------------------------------------------------------------------------------ filing a claim


async def test_claims_about_a_number_are_201_under_review_with_a_review_deadline(api: Api) -> None:
    order = await place_number_order(api)

    not_received = await claim(api, order, "sms_not_received")
    invalid = await claim(api, order, "invalid_number", attachments=[evidence()], client=api.backend())

    for response, kind in ((not_received, "sms_not_received"), (invalid, "invalid_number")):
        assert response.status_code == 201, response.text
        complaint = response.json()
        assert complaint["kind"] == kind
        assert complaint["status"] == "under_review"
        assert complaint["order_id"] == order["order_id"]
        assert complaint["customer_id"] == order["customer_id"]
        assert complaint["description"] == CLAIM
        assert complaint["resolution"] is None
        assert (complaint["amount"], complaint["currency"]) == (PRICE, "EUR")
        assert at(complaint["deadline"]) == at(complaint["created_at"]) + REVIEW_WINDOW


async def test_r3_a_claim_after_the_claim_window_is_422_and_writes_nothing(api: Api) -> None:
    placed = datetime.now(UTC) - CLAIM_WINDOW - timedelta(minutes=1)
    late = await place_number_order(api, placed_at=placed.isoformat())
    before = await counts(api.desk.ledger)

    for kind, attachments in (("sms_not_received", []), ("invalid_number", [evidence()])):
        response = await claim(api, late, kind, attachments=attachments)
        error = error_of(response, 422)
        assert error["code"] == "claim_window_expired", kind
        assert "R3" in error["message"]

    assert await counts(api.desk.ledger) == before
    in_time = await place_number_order(
        api, placed_at=(datetime.now(UTC) - CLAIM_WINDOW + timedelta(minutes=1)).isoformat()
    )
    assert (await claim(api, in_time, "sms_not_received")).status_code == 201


async def test_r4_reasons_need_40_meaningful_characters_and_padding_does_not_count(api: Api) -> None:
    order = await place_number_order(api)
    before = await counts(api.desk.ledger)

    for description in (
        "x" * 39,
        "   " + "x" * 39 + " \n\t  ",
        "a" * 19 + "      " + "b" * 19,  # a run of spaces counts as one
        "\n" * 50,
    ):
        response = await claim(api, order, "sms_not_received", description=description)
        assert error_of(response, 422)["code"] == "insufficient_reasons", repr(description)
    assert await counts(api.desk.ledger) == before

    forty = "a" * 20 + "   \n " + "b" * 19
    accepted = await claim(api, order, "sms_not_received", description=forty)
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["description"] == forty


async def test_r6_an_invalid_number_claim_without_evidence_is_422(api: Api) -> None:
    order = await place_number_order(api)
    before = await counts(api.desk.ledger)

    response = await claim(api, order, "invalid_number")

    error = error_of(response, 422)
    assert error["code"] == "evidence_required"
    assert "R6" in error["message"]
    assert await counts(api.desk.ledger) == before


@pytest.mark.parametrize(
    "attachment",
    [
        pytest.param(evidence(b"GIF89a-not-a-png-at-all"), id="declared-png-but-a-gif"),
        pytest.param(evidence(b"plain words"), id="declared-png-but-text"),
        pytest.param(
            evidence(b"MZ\x90\x00\x03", "application/x-msdownload", "fix.exe"), id="a-windows-program"
        ),
        pytest.param(evidence(b"<svg/>", "image/svg+xml", "shot.svg"), id="an-svg"),
    ],
)
async def test_evidence_that_is_not_what_it_says_is_422_and_nothing_is_stored(
    api: Api, attachment: Json
) -> None:
    order = await place_number_order(api)
    before = await counts(api.desk.ledger)

    response = await claim(api, order, "invalid_number", attachments=[evidence(), attachment])

    assert error_of(response, 422)["code"] == "evidence_rejected", attachment["content_type"]
    assert await counts(api.desk.ledger) == before, "not even the valid file is kept"


@pytest.mark.parametrize(
    ("size", "content_type"),
    [
        pytest.param(MAX_FILE_BYTES + 1, "image/png", id="a-file-one-byte-over-5-MiB"),
        pytest.param(len(PNG), "image/" + "p" * 150, id="a-150-character-content-type"),
    ],
)
async def test_evidence_over_the_limits_is_refused_with_422_not_a_500(
    api: Api, size: int, content_type: str
) -> None:
    """The API's own limits on an attachment must be the policy's: a file they let through and the policy
    refuses is the client's error (422), never an unhandled one (500)."""
    order = await place_number_order(api)
    before = await counts(api.desk.ledger)

    attachment = evidence(png_of(size), content_type)
    response = await claim(api, order, "invalid_number", attachments=[attachment])

    assert response.status_code == 422, (response.status_code, response.text[:300])
    assert error_of(response, 422)["code"] in {"validation_error", "evidence_rejected"}
    assert await counts(api.desk.ledger) == before


async def test_evidence_of_exactly_5_mib_is_accepted(api: Api) -> None:
    order = await place_number_order(api)

    response = await claim(api, order, "invalid_number", attachments=[evidence(png_of(MAX_FILE_BYTES))])

    assert response.status_code == 201, response.text[:300]
    assert [e["size"] for e in response.json()["evidence"]] == [MAX_FILE_BYTES]


async def test_r5_an_sms_claim_after_the_sms_came_is_422_activation_completed(api: Api) -> None:
    order = await place_number_order(api)
    activation_id = (await start_activation(api, order["order_id"]))["activation_id"]
    assert (await sms(api, activation_id, "code 4242")).status_code == 200
    before = await counts(api.desk.ledger)

    response = await claim(api, order, "sms_not_received")

    error = error_of(response, 422)
    assert error["code"] == "activation_completed"
    assert "R5" in error["message"]
    assert await counts(api.desk.ledger) == before


async def test_r2_an_sms_claim_while_the_number_still_waits_is_422_activation_pending(api: Api) -> None:
    order = await place_number_order(api)
    await start_activation(api, order["order_id"])
    before = await counts(api.desk.ledger)

    response = await claim(api, order, "sms_not_received", client=api.backend())

    error = error_of(response, 422)
    assert error["code"] == "activation_pending"
    assert "R2" in error["message"]
    assert await counts(api.desk.ledger) == before


async def test_a_claim_after_the_activation_was_refunded_is_422_already_refunded(api: Api) -> None:
    order = await place_number_order(api)
    activation_id = (await start_activation(api, order["order_id"]))["activation_id"]
    canceled = await api.customer(order["customer_id"]).post(f"/v1/activations/{activation_id}/cancel")
    assert canceled.json()["refund"]["amount"] == PRICE, canceled.text
    await activation_ended(api, order["order_id"])
    before = await counts(api.desk.ledger)

    for kind, attachments in (("sms_not_received", []), ("invalid_number", [evidence()])):
        response = await claim(api, order, kind, attachments=attachments)
        assert error_of(response, 422)["code"] == "already_refunded", kind

    assert await counts(api.desk.ledger) == before
    assert [e["amount"] for e in (await balance(api, order["customer_id"]))["entries"]] == [PRICE]


async def test_a_claim_about_the_wrong_kind_of_product_is_422_kind_not_for_product(api: Api) -> None:
    software = await place_order(api, new_customer())
    number = await place_number_order(api)
    before = await counts(api.desk.ledger)

    for order, kind, attachments in (
        (software, "sms_not_received", []),
        (software, "invalid_number", [evidence()]),
        (number, "major_defect", []),
    ):
        response = await claim(api, order, kind, attachments=attachments)
        assert error_of(response, 422)["code"] == "kind_not_for_product", (order["product"], kind)

    assert await counts(api.desk.ledger) == before


async def test_r15_a_second_open_claim_of_a_kind_is_409_while_the_other_kind_is_accepted(api: Api) -> None:
    order = await place_number_order(api)
    first = await filed(api, order, "sms_not_received")
    before = await counts(api.desk.ledger)

    second = await claim(api, order, "sms_not_received", client=api.backend())
    assert error_of(second, 409)["code"] == "complaint_already_open"
    assert await counts(api.desk.ledger) == before

    other_kind = await filed(api, order, "invalid_number", attachments=[evidence()])
    assert other_kind["status"] == "under_review"
    with_both = await counts(api.desk.ledger)
    second_invalid = await claim(api, order, "invalid_number", attachments=[evidence()])
    assert error_of(second_invalid, 409)["code"] == "complaint_already_open"
    assert await counts(api.desk.ledger) == with_both, "the refused claim's evidence is not kept"
    assert with_both["evidence"] == 1

    listed = (await api.backend().get("/v1/complaints", params={"order_id": order["order_id"]})).json()
    assert sorted(c["complaint_id"] for c in listed["items"]) == sorted(
        [first["complaint_id"], other_kind["complaint_id"]]
    )


# ------------------------------------------------------------------------------------- reviewing a claim


async def test_r5_support_approves_an_sms_claim_and_the_price_is_credited_once(api: Api) -> None:
    order = await place_number_order(api)
    complaint = await filed(api, order, "sms_not_received")
    url = f"/v1/complaints/{complaint['complaint_id']}/review"

    approved = await api.support().post(url, json={"decision": "approve", "note": "provider log is empty"})

    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert body["status"] == "refunded"
    assert body["resolution"]["outcome"] == "refunded"
    assert (body["resolution"]["refund"]["amount"], body["resolution"]["refund"]["currency"]) == (
        PRICE,
        "EUR",
    )
    again = await api.support().post(url, json={"decision": "approve", "note": "twice"})
    assert error_of(again, 409)["code"] == "invalid_state"
    credited = await balance(api, order["customer_id"])
    assert credited["balance"] == PRICE
    assert [e["amount"] for e in credited["entries"]] == [PRICE]
    start = await api.backend().post("/v1/activations", json=activation_body(order["order_id"]))
    assert error_of(start, 422)["code"] == "already_refunded", "the price came back already"


async def test_r6_support_rejects_an_invalid_number_claim_as_number_valid_without_refund(api: Api) -> None:
    order = await place_number_order(api)
    complaint = await filed(api, order, "invalid_number", attachments=[evidence()])

    rejected = await api.support().post(
        f"/v1/complaints/{complaint['complaint_id']}/review",
        json={"decision": "reject", "reason_code": "number_valid", "note": "the code was delivered"},
    )

    assert rejected.status_code == 200, rejected.text
    body = rejected.json()
    assert body["status"] == "rejected"
    assert body["resolution"]["outcome"] == "rejected"
    assert body["resolution"]["reason_code"] == "number_valid"
    assert body["resolution"]["refund"] is None
    assert (await balance(api, order["customer_id"]))["entries"] == []
    assert (await counts(api.desk.ledger))["refunds"] == 0


async def test_a_reason_of_another_kind_on_a_claim_is_422_reason_code_not_allowed(api: Api) -> None:
    """A defect's R8 reason, or the other claim kind's reason, does not reject an sms_not_received claim."""
    order = await place_number_order(api)
    complaint = await filed(api, order, "sms_not_received")
    complaint_id = complaint["complaint_id"]
    before = await counts(api.desk.ledger)

    for reason_code in ("user_api_misuse", "third_party_incompatibility", "number_valid"):
        refused = await api.support().post(
            f"/v1/complaints/{complaint_id}/review",
            json={"decision": "reject", "reason_code": reason_code, "note": ""},
        )
        error = error_of(refused, 422)
        assert error["code"] == "reason_code_not_allowed", reason_code
        assert "sms_delivered" in error["message"], "the message names the reasons that fit"
    still = (await api.support().get(f"/v1/complaints/{complaint_id}")).json()
    assert still["status"] == "under_review" and still["review"] is None
    assert await counts(api.desk.ledger) == before


async def test_a_claim_has_no_access_request_fix_remedy_or_replacement(api: Api) -> None:
    order = await place_number_order(api)
    complaint = await filed(api, order, "invalid_number", attachments=[evidence()])
    url = f"/v1/complaints/{complaint['complaint_id']}"
    support, owner = api.support(), api.customer(order["customer_id"])
    before = await counts(api.desk.ledger)

    for client, action, body in (
        (support, "access-request", {"scope": "ssh", "reason": "reproduce"}),
        (support, "fix", {"note": "fixed"}),
        (support, "replacement", {"sku": "vn-uk-telegram", "name": "UK number", "value": PRICE}),
        (owner, "remedy", {"choice": "refund"}),
        (owner, "access", {"grant": False}),
    ):
        response = await client.post(f"{url}/{action}", json=body)
        assert error_of(response, 409)["code"] == "invalid_state", action

    assert await counts(api.desk.ledger) == before
    assert (await support.get(url)).json()["status"] == "under_review"


async def test_r14_the_owner_withdraws_a_claim(api: Api) -> None:
    order = await place_number_order(api)
    complaint = await filed(api, order, "sms_not_received")
    url = f"/v1/complaints/{complaint['complaint_id']}/withdraw"

    stranger = await api.customer(new_customer()).post(url)
    assert error_of(stranger, 404)["code"] == "complaint_not_found"
    withdrawn = await api.customer(order["customer_id"]).post(url, json={"note": "the code came after all"})

    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["status"] == "withdrawn"
    assert withdrawn.json()["resolution"]["outcome"] == "withdrawn"
    review = await api.support().post(
        f"/v1/complaints/{complaint['complaint_id']}/review", json={"decision": "approve", "note": ""}
    )
    assert error_of(review, 409)["code"] == "invalid_state"
    assert (await balance(api, order["customer_id"]))["entries"] == []


# -------------------------------------------------------------------------------------------- evidence


async def test_r6_evidence_is_kept_in_the_ledger_and_never_echoed_or_put_in_history(api: Api) -> None:
    order = await place_number_order(api)
    marker = uuid.uuid4().hex
    screenshot = PNG + marker.encode()
    attachment = evidence(screenshot)
    data_base64 = attachment["data_base64"]

    response = await claim(api, order, "invalid_number", attachments=[attachment], client=api.backend())

    assert response.status_code == 201, response.text
    complaint = response.json()
    complaint_id = complaint["complaint_id"]
    await filing_settled(api, complaint_id)
    [kept] = complaint["evidence"]
    assert {k: kept[k] for k in ("name", "content_type", "size", "sha256")} == {
        "name": "2fa-screen.png",
        "content_type": "image/png",
        "size": len(screenshot),
        "sha256": hashlib.sha256(screenshot).hexdigest(),
    }
    assert kept["ref"]
    shown = (await api.customer(order["customer_id"]).get(f"/v1/complaints/{complaint_id}")).json()
    assert shown["evidence"] == [kept]

    bodies = [response.text]
    for client in (api.support(), api.backend(), api.customer(order["customer_id"])):
        bodies.append((await client.get(f"/v1/complaints/{complaint_id}")).text)
        bodies.append((await client.get("/v1/complaints", params={"order_id": order["order_id"]})).text)
    bodies.append((await api.backend().get(f"/v1/orders/{order['order_id']}")).text)
    assert all(complaint_id in body for body in bodies)
    assert not [body for body in bodies if data_base64 in body], "the bytes are never echoed"

    history = await api.desk.client.get_workflow_handle(workflow_id_of(complaint_id)).fetch_history()
    decoded = history_text(history)
    assert kept["ref"] in decoded, "the history holds the reference (the search can find things)"
    for text in (history.to_json(), decoded):
        assert data_base64 not in text
        assert marker not in text, "nor the bytes in any other encoding"

    stored = await api.desk.ledger.evidence_data(kept["ref"])
    assert stored is not None
    owner_of, file = stored
    assert owner_of == complaint_id
    assert (file.name, file.content_type, file.data) == ("2fa-screen.png", "image/png", screenshot)
