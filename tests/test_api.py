"""The HTTP contract of docs/api.md, over real HTTP: uvicorn on a loopback port, the real desk, a worker on
the time-skipping Temporal server and a real SQLite ledger. Nothing is mocked.

Five-day windows pass in milliseconds: `api.desk.outcome()` waits on the workflow's result, which lets the
test server skip time; the test then reads the outcome back through the API like any client would.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from temporalio.testing import WorkflowEnvironment

from ledger.repository import Ledger
from ledger.vault import VaultKeyring
from policy.models import ComplaintStatus, Role
from starter.api.app import create_app
from starter.api.auth import mint_token
from starter.api.settings import ApiSettings
from starter.desk import ComplaintDesk
from tests.conftest import JWT_SECRET, Api, in_ledger, served
from tests.factories import DESCRIPTION, SECRET, customer, software_order
from worker import build_worker

Json = dict[str, Any]


def order_body(customer_id: str, amount: str = "50.00", **changes: Any) -> Json:
    body: Json = {
        "order_id": f"ord-{uuid.uuid4().hex[:10]}",
        "customer_id": customer_id,
        "product": {"sku": "plugin-seo-pro", "kind": "software", "name": "SEO Pro plugin"},
        "amount": amount,
        "currency": "EUR",
        "placed_at": datetime.now(UTC).isoformat(),
    }
    body.update(changes)
    return body


def new_customer() -> str:
    return f"cust-{uuid.uuid4().hex[:8]}"


async def place_order(api: Api, customer_id: str, amount: str = "50.00") -> Json:
    response = await api.backend().post("/v1/orders", json=order_body(customer_id, amount))
    assert response.status_code == 201, response.text
    order: Json = response.json()
    return order


async def file_complaint(api: Api, customer_id: str | None = None, amount: str = "50.00") -> Json:
    """A customer's major-defect complaint about a fresh order of theirs."""
    customer_id = customer_id or new_customer()
    order = await place_order(api, customer_id, amount)
    response = await api.customer(customer_id).post(
        "/v1/complaints",
        json={"order_id": order["order_id"], "kind": "major_defect", "description": DESCRIPTION},
    )
    assert response.status_code == 201, response.text
    complaint: Json = response.json()
    return complaint


async def approved_complaint(api: Api, amount: str = "50.00") -> Json:
    """A complaint support has approved: the deficiency is being rectified (R8)."""
    complaint = await file_complaint(api, amount=amount)
    approved = await api.support().post(
        f"/v1/complaints/{complaint['complaint_id']}/review", json={"decision": "approve", "note": ""}
    )
    assert approved.json()["status"] == "rectifying", approved.text
    result: Json = approved.json()
    return result


def error_of(response: httpx.Response, status: int) -> Json:
    """The contract's error body, after checking the status; returns the `error` object."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error: Json = body["error"]
    assert error["code"] and error["message"], error
    return error


async def counts(ledger: Ledger) -> dict[str, int]:
    return await ledger.table_counts()


# ------------------------------------------------------------------------------------------------ orders


async def test_post_order_is_idempotent_and_a_different_body_conflicts(api: Api) -> None:
    backend = api.backend()
    body = order_body(new_customer(), amount="12.5")

    first = await backend.post("/v1/orders", json=body)
    assert first.status_code == 201, first.text
    assert first.json()["amount"] == "12.50", "money is a decimal string with its cents"
    again = await backend.post("/v1/orders", json=body)
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert (await counts(api.desk.ledger))["orders"] == 1

    changed = await backend.post("/v1/orders", json={**body, "amount": "13.00"})
    assert error_of(changed, 409)["code"] == "order_conflict"
    order = await backend.get(f"/v1/orders/{body['order_id']}")
    assert order.json()["amount"] == "12.50", "the conflicting body changed nothing"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": 12.5}, "body.amount"),
        ({"amount": "-1.00"}, "body.amount"),
        ({"amount": "1.00001"}, "body.amount"),
        ({"currency": "euro"}, "body.currency"),
        ({"placed_at": "2026-11-20T10:00:00"}, "body.placed_at"),
        ({"placed_at": (datetime.now(UTC) + timedelta(days=2)).isoformat()}, "body.placed_at"),
        ({"order_id": "has.dots"}, "body.order_id"),
        ({"product": {"sku": "x", "kind": "hardware", "name": "X"}}, "body.product.kind"),
        ({"surprise": True}, "body.surprise"),
    ],
)
async def test_post_order_refuses_bad_input_with_fields_and_writes_nothing(
    api: Api, change: Json, field: str
) -> None:
    response = await api.backend().post("/v1/orders", json=order_body(new_customer(), **change))
    error = error_of(response, 422)
    assert error["code"] == "validation_error"
    assert field in [f["field"] for f in error["fields"]], error
    assert (await counts(api.desk.ledger))["orders"] == 0


async def test_get_order_shows_its_complaints_to_the_backend_and_the_owner_only(api: Api) -> None:
    complaint = await file_complaint(api)
    order_id, owner = complaint["order_id"], complaint["customer_id"]
    await in_ledger(api.desk.ledger, complaint["complaint_id"])  # the order lists the ledger's complaints

    for client in (api.backend(), api.customer(owner)):
        response = await client.get(f"/v1/orders/{order_id}")
        assert response.status_code == 200, response.text
        order = response.json()
        assert order["customer_id"] == owner
        assert [c["complaint_id"] for c in order["complaints"]] == [complaint["complaint_id"]]
        assert order["activation"] is None

    assert error_of(await api.customer("someone-else").get(f"/v1/orders/{order_id}"), 404)["code"] == (
        "order_not_found"
    )
    assert error_of(await api.support().get(f"/v1/orders/{order_id}"), 403)["code"] == "forbidden"
    assert error_of(await api.backend().get("/v1/orders/no-such-order"), 404)["code"] == "order_not_found"


# ------------------------------------------------------------------------------------ whole complaints


async def test_defect_complaint_is_reviewed_and_refunded_at_the_deadline(api: Api) -> None:
    """R7, R8, R12 through the contract: filed, approved, not fixed, refunded in full at the deadline."""
    complaint = await file_complaint(api, amount="49.90")
    complaint_id = complaint["complaint_id"]
    assert complaint["status"] == "under_review"
    assert complaint["kind"] == "major_defect"
    assert complaint["description"] == DESCRIPTION
    created = datetime.fromisoformat(complaint["created_at"])
    assert datetime.fromisoformat(complaint["deadline"]) == created + timedelta(days=5)
    assert complaint["resolution"] is None
    assert [e["type"] for e in complaint["events"]][:1] == ["filed"]

    reviewed = await api.support().post(
        f"/v1/complaints/{complaint_id}/review", json={"decision": "approve", "note": "reproduced"}
    )
    assert reviewed.status_code == 200, reviewed.text
    assert reviewed.json()["status"] == "rectifying", "the response is the complaint after the action"

    await api.desk.outcome(complaint_id)
    final = (await api.support().get(f"/v1/complaints/{complaint_id}")).json()
    assert final["status"] == "refunded"
    assert final["resolution"]["outcome"] == "refunded"
    assert final["resolution"]["refund"]["amount"] == "49.90"
    assert final["resolution"]["refund"]["currency"] == "EUR"
    assert final["resolution"]["replacement"] is None
    types = [e["type"] for e in final["events"]]
    assert types[0] == "filed" and "refunded" in types
    assert all(e["at"].endswith("Z") for e in final["events"]), "times are ISO-8601 UTC"

    balance = await api.customer(complaint["customer_id"]).get(
        f"/v1/customers/{complaint['customer_id']}/balance"
    )
    assert balance.status_code == 200, balance.text
    assert balance.json()["balance"] == "49.90"
    assert balance.json()["currency"] == "EUR"
    assert [e["amount"] for e in balance.json()["entries"]] == ["49.90"]


async def test_customer_chooses_a_replacement_support_offered(api: Api) -> None:
    complaint = await approved_complaint(api, amount="50.00")
    complaint_id, owner = complaint["complaint_id"], complaint["customer_id"]
    support = api.support()

    too_cheap = await support.post(
        f"/v1/complaints/{complaint_id}/replacement",
        json={"sku": "plugin-lite", "name": "SEO Lite", "value": "40.00"},
    )
    assert error_of(too_cheap, 422)["code"] == "replacement_out_of_tolerance"
    offered = await support.post(
        f"/v1/complaints/{complaint_id}/replacement",
        json={"sku": "plugin-seo-max", "name": "SEO Max plugin", "value": "54.00"},
    )
    assert offered.status_code == 200, offered.text
    assert offered.json()["replacement_offer"]["sku"] == "plugin-seo-max"

    chosen = await api.customer(owner).post(
        f"/v1/complaints/{complaint_id}/remedy", json={"choice": "replacement"}
    )
    assert chosen.status_code == 200, chosen.text
    assert chosen.json()["remedy_choice"] == "replacement"

    await api.desk.outcome(complaint_id)
    final = (await api.customer(owner).get(f"/v1/complaints/{complaint_id}")).json()
    assert final["status"] == "replaced"
    assert final["resolution"]["replacement"] == {
        "sku": "plugin-seo-max",
        "name": "SEO Max plugin",
        "value": "54.00",
        "currency": "EUR",
    }
    assert final["resolution"]["refund"] is None
    assert (await api.backend().get(f"/v1/customers/{owner}/balance")).json()["balance"] == "0.00"


async def test_support_fixes_the_defect_before_the_deadline(api: Api) -> None:
    complaint = await approved_complaint(api)
    complaint_id = complaint["complaint_id"]
    support = api.support()
    fixed = await support.post(f"/v1/complaints/{complaint_id}/fix", json={"note": "patched in 2.3.1"})
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["status"] == "rectified"
    assert fixed.json()["resolution"] == {
        "outcome": "rectified",
        "reason_code": None,
        "refund": None,
        "replacement": None,
    }


async def test_rejection_needs_an_r8_reason_code(api: Api) -> None:
    complaint = await file_complaint(api)
    url = f"/v1/complaints/{complaint['complaint_id']}/review"
    support = api.support()

    missing = await support.post(url, json={"decision": "reject", "note": "works for me"})
    assert error_of(missing, 422)["code"] == "reason_code_required"
    unknown = await support.post(url, json={"decision": "reject", "reason_code": "bad_vibes", "note": ""})
    assert error_of(unknown, 422)["code"] == "validation_error"
    still = await support.get(f"/v1/complaints/{complaint['complaint_id']}")
    assert still.json()["status"] == "under_review", "a refused review changes nothing"
    assert len(still.json()["events"]) == len(complaint["events"])

    rejected = await support.post(
        url, json={"decision": "reject", "reason_code": "user_api_misuse", "note": "wrong endpoint"}
    )
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"
    assert rejected.json()["resolution"]["reason_code"] == "user_api_misuse"


async def test_access_granted_and_the_credentials_never_come_back(api: Api) -> None:
    """R9/R10: support asks, the customer grants; the secret is in no response, only sealed in the vault."""
    complaint = await file_complaint(api)
    complaint_id, owner = complaint["complaint_id"], complaint["customer_id"]
    asked = await api.support().post(
        f"/v1/complaints/{complaint_id}/access-request",
        json={"scope": "ssh to the web host", "reason": "reproduce the crash"},
    )
    assert asked.status_code == 200, asked.text
    assert asked.json()["status"] == "awaiting_access"
    assert asked.json()["access_request"]["granted"] is None

    granted = await api.customer(owner).post(
        f"/v1/complaints/{complaint_id}/access",
        json={
            "grant": True,
            "credentials": {"host": "shop.example.net", "username": "deploy", "secret": SECRET},
        },
    )
    assert granted.status_code == 200, granted.text
    assert granted.json()["status"] == "under_review"
    assert granted.json()["access_request"]["granted"] is True
    for client in (api.support(), api.customer(owner), api.backend()):
        shown = await client.get(f"/v1/complaints/{complaint_id}")
        assert SECRET not in shown.text
    assert SECRET not in granted.text
    assert (await counts(api.desk.ledger))["vault_secrets"] == 1


async def test_access_refused_ends_the_complaint_without_refund(api: Api) -> None:
    complaint = await file_complaint(api)
    complaint_id, owner = complaint["complaint_id"], complaint["customer_id"]
    await api.support().post(
        f"/v1/complaints/{complaint_id}/access-request", json={"scope": "ssh", "reason": "reproduce"}
    )
    with_credentials = await api.customer(owner).post(
        f"/v1/complaints/{complaint_id}/access",
        json={"grant": False, "credentials": {"host": "h", "username": "u", "secret": "s"}},
    )
    assert error_of(with_credentials, 422)["code"] == "validation_error"

    refused = await api.customer(owner).post(f"/v1/complaints/{complaint_id}/access", json={"grant": False})
    assert refused.status_code == 200, refused.text
    assert refused.json()["status"] == "access_refused"
    assert refused.json()["resolution"]["reason_code"] == "access_refused"
    assert (await counts(api.desk.ledger))["refunds"] == 0


async def test_withdraw_belongs_to_the_owner_and_ends_every_action(api: Api) -> None:
    complaint = await file_complaint(api)
    complaint_id, owner = complaint["complaint_id"], complaint["customer_id"]
    url = f"/v1/complaints/{complaint_id}/withdraw"

    assert error_of(await api.customer("intruder").post(url), 404)["code"] == "complaint_not_found"
    assert error_of(await api.support().post(url), 403)["code"] == "forbidden"
    withdrawn = await api.customer(owner).post(url)
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["status"] == "withdrawn"

    again = await api.customer(owner).post(url, json={"note": "twice"})
    assert error_of(again, 409)["code"] == "invalid_state"
    review = await api.support().post(
        f"/v1/complaints/{complaint_id}/review", json={"decision": "approve", "note": ""}
    )
    assert error_of(review, 409)["code"] == "invalid_state"


# ------------------------------------------------------------------------------------------ the errors


async def test_second_open_complaint_on_an_order_is_409_complaint_already_open(api: Api) -> None:
    complaint = await file_complaint(api)
    again = await api.backend().post(
        "/v1/complaints",
        json={"order_id": complaint["order_id"], "kind": "major_defect", "description": DESCRIPTION},
    )
    assert error_of(again, 409)["code"] == "complaint_already_open"
    listed = await api.backend().get("/v1/complaints", params={"order_id": complaint["order_id"]})
    assert len(listed.json()["items"]) == 1


async def test_action_the_state_does_not_allow_is_409_invalid_state(api: Api) -> None:
    complaint = await approved_complaint(api)
    complaint_id = complaint["complaint_id"]
    support = api.support()
    twice = await support.post(f"/v1/complaints/{complaint_id}/review", json={"decision": "approve"})
    error = error_of(twice, 409)
    assert error["code"] == "invalid_state"
    assert "rectifying" in error["message"]
    not_asked = await api.customer(complaint["customer_id"]).post(
        f"/v1/complaints/{complaint_id}/access", json={"grant": False}
    )
    assert error_of(not_asked, 409)["code"] == "invalid_state"


async def test_complaints_about_unknown_or_foreign_orders_are_404(api: Api) -> None:
    mine = await place_order(api, new_customer())
    body = {"order_id": mine["order_id"], "kind": "major_defect", "description": DESCRIPTION}
    foreign = await api.customer("someone-else").post("/v1/complaints", json=body)
    assert error_of(foreign, 404)["code"] == "order_not_found"
    unknown = await api.backend().post("/v1/complaints", json={**body, "order_id": "nope"})
    assert error_of(unknown, 404)["code"] == "order_not_found"
    assert (await counts(api.desk.ledger))["complaints"] == 0


async def test_complaint_intake_refusals_are_422_with_their_code(api: Api) -> None:
    order = await place_order(api, new_customer())
    backend = api.backend()
    for kind in ("sms_not_received", "invalid_number"):
        response = await backend.post(
            "/v1/complaints", json={"order_id": order["order_id"], "kind": kind, "description": DESCRIPTION}
        )
        assert error_of(response, 422)["code"] == "kind_not_for_product"
    evidence = [
        {"name": "shot.png", "content_type": "image/png", "data_base64": base64.b64encode(b"x").decode()}
    ]
    with_evidence = await backend.post(
        "/v1/complaints",
        json={
            "order_id": order["order_id"],
            "kind": "major_defect",
            "description": DESCRIPTION,
            "evidence": evidence,
        },
    )
    assert error_of(with_evidence, 422)["code"] == "evidence_rejected", "b'x' is not a PNG"
    bad_base64 = await backend.post(
        "/v1/complaints",
        json={
            "order_id": order["order_id"],
            "kind": "invalid_number",
            "description": DESCRIPTION,
            "evidence": [{**evidence[0], "data_base64": "not base64!"}],
        },
    )
    assert "body.evidence.0.data_base64" in [f["field"] for f in error_of(bad_base64, 422)["fields"]]
    assert (await counts(api.desk.ledger))["complaints"] == 0


async def test_unknown_and_foreign_complaints_are_404(api: Api) -> None:
    complaint = await file_complaint(api)
    for complaint_id in ("nope", "a.b.c", f"{complaint['order_id']}.major_defect.00000000"):
        response = await api.support().get(f"/v1/complaints/{complaint_id}")
        assert error_of(response, 404)["code"] == "complaint_not_found"
        action = await api.support().post(f"/v1/complaints/{complaint_id}/fix", json={"note": ""})
        assert error_of(action, 404)["code"] == "complaint_not_found"
    foreign = await api.customer("someone-else").get(f"/v1/complaints/{complaint['complaint_id']}")
    assert error_of(foreign, 404)["code"] == "complaint_not_found"


async def test_unknown_route_and_method_use_the_error_body(api: Api) -> None:
    assert error_of(await api.backend().get("/v1/nothing-here"), 404)["code"] == "not_found"
    assert error_of(await api.backend().delete("/v1/orders"), 405)["code"] == "method_not_allowed"
    malformed = await api.backend().post(
        "/v1/orders", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert error_of(malformed, 422)["code"] == "validation_error"


# ------------------------------------------------------------------------------------------------- auth


def _claims(**claims: Any) -> Json:
    """A good backend token's claims, but for `claims`."""
    now = datetime.now(UTC)
    base: Json = {
        "sub": "shop",
        "role": "backend",
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "iss": "refund-desk",
        "aud": "refund-desk-api",
    }
    return {**base, **claims}


def _forged(**claims: Any) -> str:
    return jwt.encode(_claims(**claims), JWT_SECRET, algorithm="HS256")


def _without(name: str) -> Json:
    return {key: value for key, value in _claims().items() if key != name}


def _unsigned(**claims: Any) -> str:
    """An `alg: none` token: no signature at all."""

    def part(data: Json) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


@pytest.mark.parametrize(
    ("authorization", "why"),
    [
        (None, "no header"),
        ("Basic dXNlcjpwYXNz", "not a bearer token"),
        ("Bearer not-a-jwt", "garbage"),
        (f"Bearer {_forged(exp=datetime.now(UTC) - timedelta(seconds=1))}", "expired"),
        (f"Bearer {jwt.encode(_claims(), 'x' * 40)}", "wrong key"),
        (f"Bearer {_unsigned(**_claims(iat=int(time.time()), exp=int(time.time()) + 300))}", "alg none"),
        (f"Bearer {jwt.encode(_without('exp'), JWT_SECRET, 'HS256')}", "no exp"),
        (f"Bearer {jwt.encode(_without('iat'), JWT_SECRET, 'HS256')}", "no iat"),
        (f"Bearer {_forged(exp=10**30)}", "an exp of 10^30"),
        (f"Bearer {_forged(role='admin')}", "unknown role"),
        (f"Bearer {_forged(role='system')}", "the desk's own role"),
        (f"Bearer {_forged(sub='../etc')}", "a sub that is not an id"),
    ],
)
async def test_a_missing_or_bad_token_is_401(api: Api, authorization: str | None, why: str) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await api.client(headers).post("/v1/orders", json=order_body(new_customer()))
    assert error_of(response, 401)["code"] == "unauthorized", why
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert (await counts(api.desk.ledger))["orders"] == 0


async def filing_settled(api: Api, complaint_id: str) -> None:
    """The filing's own writes (its audit event, support's notice) land just after the API answers; a test
    that compares row counts waits for them first."""
    for _ in range(500):
        outbox = await api.desk.ledger.outbox(complaint_id=complaint_id)
        if any(m.template == "complaint_filed" for m in outbox):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"complaint {complaint_id} never notified support of its filing")


ROLES = (Role.BACKEND, Role.SUPPORT, Role.CUSTOMER)
ENDPOINTS: list[tuple[str, str, set[Role]]] = [
    ("POST", "/v1/orders", {Role.BACKEND}),
    ("GET", "/v1/orders/{order_id}", {Role.BACKEND, Role.CUSTOMER}),
    ("POST", "/v1/complaints", {Role.BACKEND, Role.CUSTOMER}),
    ("GET", "/v1/complaints", set(ROLES)),
    ("GET", "/v1/complaints/{complaint_id}", set(ROLES)),
    ("POST", "/v1/complaints/{complaint_id}/review", {Role.SUPPORT}),
    ("POST", "/v1/complaints/{complaint_id}/access-request", {Role.SUPPORT}),
    ("POST", "/v1/complaints/{complaint_id}/access", {Role.CUSTOMER}),
    ("POST", "/v1/complaints/{complaint_id}/fix", {Role.SUPPORT}),
    ("POST", "/v1/complaints/{complaint_id}/remedy", {Role.CUSTOMER}),
    ("POST", "/v1/complaints/{complaint_id}/replacement", {Role.SUPPORT}),
    ("POST", "/v1/complaints/{complaint_id}/withdraw", {Role.CUSTOMER}),
    ("GET", "/v1/customers/{customer_id}/balance", {Role.BACKEND, Role.CUSTOMER}),
]


async def test_every_endpoint_refuses_the_roles_api_md_does_not_list(api: Api) -> None:
    """403 for a valid token of a role the endpoint's row does not name, before anything is read or
    written; the owner's own token is used for customers, so the 403 is about the role alone."""
    complaint = await file_complaint(api)
    ids = {
        "order_id": complaint["order_id"],
        "complaint_id": complaint["complaint_id"],
        "customer_id": complaint["customer_id"],
    }
    subs = {Role.BACKEND: "shop", Role.SUPPORT: "alice", Role.CUSTOMER: complaint["customer_id"]}
    await filing_settled(api, complaint["complaint_id"])
    before = await counts(api.desk.ledger)
    checked = 0
    for method, template, allowed in ENDPOINTS:
        for role in set(ROLES) - allowed:
            response = await api.as_(role, subs[role]).request(method, template.format(**ids), json={})
            assert error_of(response, 403)["code"] == "forbidden", (method, template, role)
            checked += 1
    assert checked == 19
    assert await counts(api.desk.ledger) == before
    state = (await api.support().get(f"/v1/complaints/{complaint['complaint_id']}")).json()
    assert state["status"] == "under_review"


async def test_the_backend_acts_on_any_order_a_customer_only_on_their_own_balance(api: Api) -> None:
    complaint = await file_complaint(api)
    owner = complaint["customer_id"]
    assert (await api.backend().get(f"/v1/customers/{owner}/balance")).status_code == 200
    own = await api.customer(owner).get(f"/v1/customers/{owner}/balance")
    assert own.status_code == 200
    assert own.json() == {
        "customer_id": owner,
        "currency": "USD",
        "balance": "0.00",
        "entries": [],
        "balances": {},
    }
    other = await api.customer("someone-else").get(f"/v1/customers/{owner}/balance")
    assert error_of(other, 404)["code"] == "customer_not_found"


# ------------------------------------------------------------------------------------------------ lists


async def test_list_filters_paginates_and_keeps_customers_to_their_own(api: Api) -> None:
    alice, bob = new_customer(), new_customer()
    filed = [await file_complaint(api, alice) for _ in range(3)] + [await file_complaint(api, bob)]
    support = api.support()
    await support.post(
        f"/v1/complaints/{filed[0]['complaint_id']}/review",
        json={"decision": "reject", "reason_code": "not_a_defect", "note": ""},
    )

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: Json = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = (await support.get("/v1/complaints", params=params)).json()
        seen += [c["complaint_id"] for c in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 2
    assert sorted(seen) == sorted(c["complaint_id"] for c in filed), "every complaint once, none twice"
    assert seen[0] == filed[-1]["complaint_id"], "newest first"

    rejected = (await support.get("/v1/complaints", params={"status": "rejected"})).json()["items"]
    assert [c["complaint_id"] for c in rejected] == [filed[0]["complaint_id"]]
    of_alice = (await support.get("/v1/complaints", params={"customer_id": alice})).json()["items"]
    assert {c["customer_id"] for c in of_alice} == {alice} and len(of_alice) == 3

    own = (await api.customer(bob).get("/v1/complaints")).json()["items"]
    assert [c["complaint_id"] for c in own] == [filed[-1]["complaint_id"]]
    snooping = (await api.customer(bob).get("/v1/complaints", params={"customer_id": alice})).json()
    assert snooping == {"items": [], "next_cursor": None}

    bad = await support.get("/v1/complaints", params={"cursor": "garbage"})
    assert error_of(bad, 422)["code"] == "invalid_cursor"
    too_many = await support.get("/v1/complaints", params={"limit": 1000})
    assert error_of(too_many, 422)["code"] == "validation_error"
    wrong_status = await support.get("/v1/complaints", params={"status": "lost"})
    assert error_of(wrong_status, 422)["fields"][0]["field"] == "query.status"


# ------------------------------------------------------------------------------------ health and schema


async def test_healthz_answers_when_the_ledger_and_temporal_do(api: Api) -> None:
    response = await api.client().get("/healthz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "ledger": "ok", "temporal": "ok"}


async def test_healthz_is_503_when_the_ledger_does_not_answer(desk: ComplaintDesk) -> None:
    broken = Ledger.connect("postgresql+asyncpg://nobody@127.0.0.1:9/nothing")  # port 9: discard, closed
    sick = ComplaintDesk(desk.client, broken, desk.keyring, desk.task_queue)
    try:
        async with (
            served(create_app(sick, ApiSettings(jwt_secret=JWT_SECRET))) as base_url,
            httpx.AsyncClient(base_url=base_url) as http,
        ):
            response = await http.get("/healthz")
    finally:
        await broken.close()
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "ledger": "unavailable", "temporal": "ok"}


async def test_openapi_describes_every_endpoint_body_and_error(api: Api) -> None:
    spec = (await api.client().get("/openapi.json")).json()
    paths = spec["paths"]
    for method, template, _ in ENDPOINTS:
        operation = paths[template][method.lower()]
        for status in ("401", "403", "422"):
            if template == "/v1/complaints/{complaint_id}" and status == "422":
                continue
            schema = operation["responses"][status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (template, status)
        if method == "POST" and not template.endswith("/withdraw"):
            assert "requestBody" in operation, template
    assert "/healthz" in paths
    schemas = spec["components"]["schemas"]
    for name in ("OrderIn", "ComplaintIn", "ReviewIn", "AccessIn", "ComplaintOut", "BalanceOut", "ErrorBody"):
        assert name in schemas, name
    assert schemas["ComplaintOut"]["required"][:5] == [
        "complaint_id",
        "order_id",
        "customer_id",
        "kind",
        "status",
    ]
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


async def test_a_complaint_with_no_worker_is_503_not_a_hang(
    env: WorkflowEnvironment, ledger: Ledger, keyring: VaultKeyring
) -> None:
    """Temporal holds a query or an update until a worker answers; the desk's patience turns that into a
    503 the client can act on at once, and nothing is applied meanwhile."""
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    desk = ComplaintDesk(env.client, ledger, keyring, task_queue=queue, patience=timedelta(seconds=1))
    order = software_order()
    await ledger.record_order(order)
    async with build_worker(env.client, ledger, keyring, queue):
        state = await desk.file_defect_complaint(order, DESCRIPTION, customer(order), desk.policy)
        for _ in range(200):  # until its "filed" event is in the ledger
            if await ledger.get_complaint(state.complaint_id) is not None:
                break
            await asyncio.sleep(0.05)
    # the worker is gone
    async with (
        served(create_app(desk, ApiSettings(jwt_secret=JWT_SECRET))) as base_url,
        httpx.AsyncClient(base_url=base_url) as http,
    ):
        support = {"Authorization": f"Bearer {mint_token(JWT_SECRET, Role.SUPPORT, 'alice')}"}
        review = await http.post(
            f"/v1/complaints/{state.complaint_id}/review",
            json={"decision": "approve", "note": ""},
            headers=support,
        )
        assert error_of(review, 503)["code"] == "complaint_unresponsive"
    record = await ledger.get_complaint(state.complaint_id)
    assert record is not None and record.state.status is ComplaintStatus.UNDER_REVIEW
    assert [e.type for e in record.state.events] == ["filed"], "nothing was applied while no worker ran"
