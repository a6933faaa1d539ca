"""Hostile input over real HTTP: each request is answered with a 4xx in docs/api.md's error body, and the
ledger is exactly as it was (every table, every row, compared before and after), and no workflow was started.

The API is the `api` fixture's: uvicorn on a loopback port, the real desk, a worker on the time-skipping
Temporal server and a real SQLite ledger. Writes that trail an accepted request (audit events, notices) are
awaited before the "before" snapshot is taken, so a difference can only come from the hostile request.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from temporalio.service import RPCError, RPCStatusCode

from ledger.repository import Ledger
from ledger.schema import Base
from policy.evidence import MAX_FILE_BYTES, MAX_FILES
from policy.ids import complaint_workflow_id
from policy.models import ComplaintKind
from starter.api.limits import SMALL_BODY_BYTES
from starter.api.schemas.common import MAX_BODY_BYTES
from tests.conftest import Api
from tests.evidence_files import PNG
from tests.factories import CLAIM
from tests.test_api import approved_complaint, error_of, file_complaint, new_customer, order_body

Json = dict[str, Any]
Snapshot = dict[str, list[tuple[Any, ...]]]

NUMBER = {"sku": "vn-uk-whatsapp", "kind": "virtual_number", "name": "UK number for WhatsApp"}


async def snapshot(ledger: Ledger) -> Snapshot:
    """Every row of every ledger table, in primary-key order: what "the ledger is unchanged" compares."""
    rows: Snapshot = {}
    async with ledger.engine.connect() as conn:
        for name, table in Base.metadata.tables.items():
            query = select(table).order_by(*table.primary_key.columns)
            rows[name] = [tuple(row) for row in (await conn.execute(query)).all()]
    return rows


async def settled(ledger: Ledger) -> Snapshot:
    """The ledger once the writes trailing earlier requests have landed: two reads 200 ms apart agree."""
    previous = await snapshot(ledger)
    for _ in range(50):
        await asyncio.sleep(0.2)
        current = await snapshot(ledger)
        if current == previous:
            return current
        previous = current
    raise AssertionError("the ledger kept changing")


def refused(response: httpx.Response, status: int, code: str, field: str | None = None) -> Json:
    """The contract's error body with `code`; for a validation error, `field` among its fields."""
    error = error_of(response, status)
    assert error["code"] == code, error
    if field is not None:
        assert field in [f["field"] for f in error["fields"]], error
    return error


async def no_workflow(api: Api, order_id: str, kind: ComplaintKind) -> None:
    """No complaint workflow was ever started for the order and kind (its id is fixed by R15)."""
    handle = api.desk.client.get_workflow_handle(complaint_workflow_id(order_id, kind))
    with pytest.raises(RPCError) as raised:
        await handle.describe()
    assert raised.value.status is RPCStatusCode.NOT_FOUND


async def number_order(api: Api, customer_id: str) -> Json:
    body = order_body(customer_id, amount="0.75", product=NUMBER, placed_at=(await _now(api)).isoformat())
    response = await api.backend().post("/v1/orders", json=body)
    assert response.status_code == 201, response.text
    order: Json = response.json()
    return order


async def _now(api: Api) -> datetime:
    return await api.desk.now()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def evidence(data: bytes = PNG, content_type: str = "image/png", name: str = "screen.png") -> Json:
    return {"name": name, "content_type": content_type, "data_base64": b64(data)}


# ------------------------------------------------------------------------------------------------ orders

FUTURE = (datetime.now(UTC) + timedelta(days=1)).isoformat()
"""Far enough ahead to stay in the future however long the suite runs before this test."""


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": "-1.00"}, "body.amount"),
        ({"amount": "0"}, "body.amount"),
        ({"amount": "0.00"}, "body.amount"),
        ({"amount": "-0"}, "body.amount"),
        ({"amount": "NaN"}, "body.amount"),
        ({"amount": "Infinity"}, "body.amount"),
        ({"amount": "-Infinity"}, "body.amount"),
        ({"amount": "sNaN"}, "body.amount"),
        ({"amount": "1E+3"}, "body.amount"),
        ({"amount": "1_000"}, "body.amount"),
        ({"amount": " 12.50"}, "body.amount"),
        ({"amount": "12.34567"}, "body.amount"),
        ({"amount": "1" + "0" * 18}, "body.amount"),
        ({"amount": "9" * 40}, "body.amount"),
        ({"amount": 12.5}, "body.amount"),
        ({"amount": True}, "body.amount"),
        ({"amount": ""}, "body.amount"),
        ({"currency": "XXX"}, "body.currency"),
        ({"currency": "XTS"}, "body.currency"),
        ({"currency": "usd"}, "body.currency"),
        ({"currency": "EURO"}, "body.currency"),
        ({"currency": 978}, "body.currency"),
        ({"placed_at": FUTURE}, "body.placed_at"),
        ({"placed_at": "2026-01-31T10:00:00"}, "body.placed_at"),
        ({"placed_at": "2026-01-31"}, "body.placed_at"),
        ({"placed_at": 1767225600}, "body.placed_at"),
        ({"placed_at": "1767225600"}, "body.placed_at"),
        ({"placed_at": "0001-01-01T00:00:00+14:00"}, "body.placed_at"),
        ({"placed_at": "9999-12-31T23:59:59-12:00"}, "body.placed_at"),
        ({"placed_at": "yesterday"}, "body.placed_at"),
        ({"order_id": "../../etc/passwd"}, "body.order_id"),
        ({"order_id": "x" * 65}, "body.order_id"),
        ({"order_id": ""}, "body.order_id"),
        ({"order_id": 12345}, "body.order_id"),
        ({"customer_id": ["cust-1"]}, "body.customer_id"),
        ({"product": ["software"]}, "body.product"),
        ({"product": "software"}, "body.product"),
        ({"product": {**NUMBER, "name": "UK number\x00"}}, "body.product"),
        ({"product": {**NUMBER, "name": "invoice\u202efdp.exe"}}, "body.product"),
        ({"product": {**NUMBER, "colour": "red"}}, "body.product.colour"),
        ({"product": {**NUMBER, "name": "x" * 201}}, "body.product.name"),
        ({"surprise": True}, "body.surprise"),
        ({"price": {"amount": "1.00", "currency": "EUR"}}, "body.price"),
    ],
)
async def test_hostile_order_is_422_with_its_field_and_writes_nothing(
    api: Api, change: Json, field: str
) -> None:
    """Money only as plain positive decimal strings in a circulating currency, times only as zoned ISO-8601
    not in the future, ids only as ids, no field the model does not name: else 422 and no row."""
    before = await settled(api.desk.ledger)
    response = await api.backend().post("/v1/orders", json=order_body(new_customer()) | change)
    refused(response, 422, "validation_error", field)
    assert await snapshot(api.desk.ledger) == before


def _chunks(size: int) -> AsyncIterator[bytes]:
    async def stream() -> AsyncIterator[bytes]:
        yield b'{"order_id": "'
        for _ in range(size // 65536 + 1):
            yield b"x" * 65536
        yield b'"}'

    return stream()


@pytest.mark.parametrize(
    ("content", "content_type", "status", "code"),
    [
        (b'{"order_id": ', "application/json", 422, "validation_error"),
        (b"[]", "application/json", 422, "validation_error"),
        (b"null", "application/json", 422, "validation_error"),
        (b"", "application/json", 422, "validation_error"),
        (b'{"amount": NaN}', "application/json", 422, "validation_error"),
        (b'{"order_id": "\xff\xfe"}', "application/json", 422, "validation_error"),
        (json.dumps(order_body("cust-1")).encode(), "text/plain", 422, "validation_error"),
        (b"order_id=ord-1&customer_id=cust-1", "application/x-www-form-urlencoded", 422, "validation_error"),
        (b"<order id='1'/>", "application/xml", 422, "validation_error"),
        (
            b'{"order_id": "' + b"x" * (MAX_BODY_BYTES + 1) + b'"}',
            "application/json",
            413,
            "payload_too_large",
        ),
    ],
    ids=["truncated", "array", "null", "empty", "nan", "not-utf8", "text", "form", "xml", "over-limit"],
)
async def test_hostile_request_body_is_refused_with_the_error_body(
    api: Api, content: bytes, content_type: str, status: int, code: str
) -> None:
    """Malformed, mistyped or oversized bodies: a 4xx in the contract's shape, never a 400 or 500 of the
    framework's own, and nothing written. A body over the limit is refused before it is read."""
    before = await settled(api.desk.ledger)
    response = await api.backend().post("/v1/orders", content=content, headers={"Content-Type": content_type})
    refused(response, status, code)
    assert await snapshot(api.desk.ledger) == before


@pytest.mark.parametrize(
    ("path", "limit"),
    [("/v1/orders", SMALL_BODY_BYTES), ("/v1/complaints", MAX_BODY_BYTES)],
    ids=["order", "complaint"],
)
async def test_a_chunked_body_over_the_limit_is_413_once_the_limit_is_passed(
    api: Api, path: str, limit: int
) -> None:
    """No Content-Length to refuse up front: the bytes are counted as they come and the read stops at the
    route's limit (64 KiB for an order, about 15 MB for a complaint's evidence), so a client cannot stream an
    unbounded body into memory."""
    before = await settled(api.desk.ledger)
    response = await api.backend().post(
        path, content=_chunks(limit), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    refused(response, 413, "payload_too_large")
    assert await snapshot(api.desk.ledger) == before


# -------------------------------------------------------------------------------------------- complaints

BIG = MAX_FILE_BYTES


@pytest.mark.parametrize(
    ("change", "status", "code", "field"),
    [
        ({"description": "x" * 1_000_000}, 422, "validation_error", "body.description"),
        ({"description": CLAIM + "\x00"}, 422, "validation_error", "body.description"),
        ({"description": CLAIM + "\x1b[2J"}, 422, "validation_error", "body.description"),
        ({"description": 42}, 422, "validation_error", "body.description"),
        ({"description": ["a", "list"]}, 422, "validation_error", "body.description"),
        ({"description": "😀" * 5}, 422, "insufficient_reasons", None),
        ({"kind": "refund_me"}, 422, "validation_error", "body.kind"),
        ({"kind": ["invalid_number"]}, 422, "validation_error", "body.kind"),
        ({"evidence": {"name": "a"}}, 422, "validation_error", "body.evidence"),
        ({"evidence": [evidence() | {"data_base64": "not base64!"}]}, 422, "validation_error", None),
        ({"evidence": [evidence() | {"data_base64": "iVBORw0KGgo"}]}, 422, "validation_error", None),
        ({"evidence": [evidence(b"\x89PNG\r\n\x1a\n" + b"0" * BIG)]}, 422, "validation_error", None),
        (
            {"evidence": [evidence(b"\x89PNG\r\n\x1a\n" + b"0" * (BIG - 8))] * 2 + [evidence()]},
            422,
            "evidence_rejected",
            None,
        ),
        ({"evidence": [evidence()] * (MAX_FILES + 1)}, 422, "validation_error", "body.evidence"),
        (
            {"evidence": [evidence(b"MZ\x90\x00", "application/x-msdownload", "a.exe")]},
            422,
            "evidence_rejected",
            None,
        ),
        ({"evidence": [evidence(b"GIF89a....", "image/png")]}, 422, "evidence_rejected", None),
        ({"evidence": [evidence(b"%PDF-1.7", "image/png")]}, 422, "evidence_rejected", None),
        (
            {"evidence": [evidence(b"text\x00with nul", "text/plain", "log.txt")]},
            422,
            "evidence_rejected",
            None,
        ),
        ({"evidence": [evidence(content_type="../../etc/passwd")]}, 422, "validation_error", None),
        ({"evidence": [evidence(content_type="IMAGE/PNG")]}, 422, "validation_error", None),
        ({"evidence": [evidence(name="shot\x00.png")]}, 422, "validation_error", None),
        ({"evidence": [evidence(name="invoice\u202egnp.exe")]}, 422, "validation_error", None),
        ({"evidence": [evidence(name="")]}, 422, "validation_error", None),
        ({"evidence": [evidence() | {"path": "/etc/passwd"}]}, 422, "validation_error", None),
        ({"status": "refunded"}, 422, "validation_error", "body.status"),
        ({"customer_id": "someone-else"}, 422, "validation_error", "body.customer_id"),
        ({"order_id": "../../etc/passwd"}, 422, "validation_error", "body.order_id"),
        ({"order_id": "x" * 5000}, 422, "validation_error", "body.order_id"),
        ({"order_id": "ord-" + uuid.uuid4().hex[:10]}, 404, "order_not_found", None),
    ],
    ids=lambda value: None if isinstance(value, dict) else str(value)[:24],
)
async def test_hostile_complaint_is_refused_stores_nothing_and_starts_no_workflow(
    api: Api, change: Json, status: int, code: str, field: str | None
) -> None:
    """An invalid-number claim (R6 wants evidence) on the customer's own rented number, made hostile one
    field at a time: refused, no row written (not even the evidence), no workflow started."""
    customer_id = new_customer()
    order = await number_order(api, customer_id)
    body = {
        "order_id": order["order_id"],
        "kind": "invalid_number",
        "description": CLAIM,
        "evidence": [evidence()],
    }
    before = await settled(api.desk.ledger)

    response = await api.customer(customer_id).post("/v1/complaints", json=body | change)

    refused(response, status, code, field)
    assert await snapshot(api.desk.ledger) == before
    await no_workflow(api, order["order_id"], ComplaintKind.INVALID_NUMBER)


async def test_a_lone_surrogate_escaped_in_json_is_422_and_starts_no_workflow(api: Api) -> None:
    """`"\\ud800"` is valid JSON text but no Unicode string: refused, not stored half-decoded."""
    customer_id = new_customer()
    order = await number_order(api, customer_id)
    before = await settled(api.desk.ledger)
    raw = json.dumps({"order_id": order["order_id"], "kind": "invalid_number", "evidence": [evidence()]})
    content = raw[:-1] + ', "description": "' + CLAIM + ' \\ud800 and more"}'
    response = await api.customer(customer_id).post(
        "/v1/complaints", content=content.encode(), headers={"Content-Type": "application/json"}
    )
    refused(response, 422, "validation_error", "body.description")
    assert await snapshot(api.desk.ledger) == before
    await no_workflow(api, order["order_id"], ComplaintKind.INVALID_NUMBER)


@pytest.mark.parametrize(
    "description",
    [
        "Die Nummer hat den WhatsApp-Code nie bekommen 😀🙃 - dreimal angefordert, zwanzig Minuten gewartet.",
        "الرقم لم يستقبل رمز واتساب أبدًا، طلبته ثلاث مرات وانتظرت عشرين دقيقة كاملة دون أي رسالة.",
        "המספר לא קיבל את קוד הוואטסאפ, ביקשתי שלוש פעמים\tוחיכיתי עשרים דקות.\r\nשורה שנייה 👍🏽",  # noqa: RUF001 (Hebrew letters are not look-alikes here)
    ],
    ids=["emoji", "arabic", "hebrew-tabs-lines"],
)
async def test_unicode_descriptions_in_any_script_are_kept_exactly(api: Api, description: str) -> None:
    """The flip side of refusing control characters: emoji, right-to-left scripts, tabs and line breaks
    are what people write, and come back byte for byte."""
    customer_id = new_customer()
    order = await number_order(api, customer_id)
    response = await api.customer(customer_id).post(
        "/v1/complaints",
        json={
            "order_id": order["order_id"],
            "kind": "invalid_number",
            "description": description,
            "evidence": [evidence()],
        },
    )
    assert response.status_code == 201, response.text
    shown = await api.support().get(f"/v1/complaints/{response.json()['complaint_id']}")
    assert shown.json()["description"] == description


# -------------------------------------------------------------------------------------------------- ids

LONG = "x" * 5000


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", f"/v1/complaints/{LONG}", 422),
        ("GET", f"/v1/complaints/{'a' * 300}.major_defect.00000000", 422),
        ("POST", f"/v1/complaints/{'a' * 300}.major_defect.00000000/fix", 422),
        ("GET", "/v1/complaints/..%2F..%2Fetc%2Fpasswd", 404),
        ("GET", "/v1/complaints/%2e%2e", 404),
        ("GET", "/v1/complaints/%00.major_defect.x", 404),
        ("POST", "/v1/complaints/..%2F..%2Fv1%2Forders/withdraw", 404),
        ("GET", f"/v1/activations/act_{LONG}", 422),
        ("POST", f"/v1/activations/act_{LONG}/cancel", 422),
        ("GET", "/v1/activations/act_..%2F..%2Fetc", 404),
        ("POST", "/v1/activations/act_%00/sms", 404),
        ("GET", f"/v1/orders/{LONG}", 422),
        ("GET", "/v1/orders/..%2F..%2Fetc%2Fpasswd", 404),
        ("GET", "/v1/orders/ord%2F..%2F..%2Fhealthz", 404),
        ("GET", "/v1/customers/..%2Fsomeone-else/balance", 404),
        ("GET", f"/v1/complaints?customer_id={LONG}", 422),
        ("GET", "/v1/complaints?order_id=../../etc", 422),
    ],
)
async def test_hostile_ids_are_404_or_422_and_touch_nothing(
    api: Api, method: str, path: str, status: int
) -> None:
    """Path traversal, NUL and 5000-character ids: not found or invalid, before any Temporal call that a
    too-long workflow id would turn into a server error."""
    complaint = await file_complaint(api)
    before = await settled(api.desk.ledger)
    client = api.support() if "/complaints" in path else api.backend()
    body = {"text": "code 123456"} if path.endswith("/sms") else {"note": "x"}
    response = await client.request(method, path, json=body if method == "POST" else None)
    error = error_of(response, status)
    assert error["code"] in {"validation_error", "not_found", "complaint_not_found", "activation_not_found"}
    assert await snapshot(api.desk.ledger) == before
    state = await api.support().get(f"/v1/complaints/{complaint['complaint_id']}")
    assert state.json()["status"] == "under_review"


async def test_a_forged_cursor_out_of_datetime_range_is_422(api: Api) -> None:
    """A cursor is opaque but only base64 JSON: one whose time overflows when made UTC is refused as not
    the API's, not a 500 from the ledger's query."""
    forged = base64.urlsafe_b64encode(json.dumps(["9999-12-31T23:59:59-12:00", "x"]).encode()).decode()
    response = await api.support().get("/v1/complaints", params={"cursor": forged})
    refused(response, 422, "invalid_cursor")


# --------------------------------------------------------------------------------------- support actions


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"value": "-54.00"}, "validation_error", "body.value"),
        ({"value": "0"}, "validation_error", "body.value"),
        ({"value": "NaN"}, "validation_error", "body.value"),
        ({"value": 54.0}, "validation_error", "body.value"),
        ({"value": "5.4E+1"}, "validation_error", "body.value"),
        ({"value": "54.000001"}, "validation_error", "body.value"),
        ({"value": "9" * 30}, "validation_error", "body.value"),
        ({"value": "500.00"}, "replacement_out_of_tolerance", None),
        ({"value": "40.00"}, "replacement_out_of_tolerance", None),
        ({"currency": "USD"}, "replacement_out_of_tolerance", None),
        ({"currency": "XXX"}, "validation_error", "body.currency"),
        ({"currency": "eur"}, "validation_error", "body.currency"),
        ({"sku": "../plugin"}, "validation_error", "body.sku"),
        ({"sku": "x" * 65}, "validation_error", "body.sku"),
        ({"name": ""}, "validation_error", "body.name"),
        ({"name": "SEO Max\x00"}, "validation_error", "body.name"),
        ({"name": "x" * 201}, "validation_error", "body.name"),
        ({"name": {"en": "SEO Max"}}, "validation_error", "body.name"),
        ({"issued": True}, "validation_error", "body.issued"),
    ],
)
async def test_replacement_offer_with_a_bad_value_is_refused_and_changes_nothing(
    api: Api, change: Json, code: str, field: str | None
) -> None:
    """R12's offer, on an approved complaint about a 50.00 EUR order: a value out of shape or out of the
    tolerance is refused, nothing is recorded and no offer appears on the complaint."""
    complaint = await approved_complaint(api, amount="50.00")
    complaint_id = complaint["complaint_id"]
    before = await settled(api.desk.ledger)
    offer = {"sku": "plugin-seo-max", "name": "SEO Max plugin", "value": "54.00"}

    response = await api.support().post(f"/v1/complaints/{complaint_id}/replacement", json=offer | change)

    refused(response, 422, code, field)
    assert await snapshot(api.desk.ledger) == before
    state = (await api.support().get(f"/v1/complaints/{complaint_id}")).json()
    assert state["replacement_offer"] is None
    assert state["status"] == "rectifying"


@pytest.mark.parametrize("grant", ["no", "false", 0, None, [False]])
async def test_r9_an_access_answer_must_be_a_json_boolean(api: Api, grant: Any) -> None:
    """R9: a refusal ends the complaint for good, so `"no"` or `0` is refused rather than read as false;
    the request stays open and the clock stays paused."""
    complaint = await file_complaint(api, amount="50.00")
    complaint_id, owner = complaint["complaint_id"], complaint["customer_id"]
    asked = await api.support().post(
        f"/v1/complaints/{complaint_id}/access-request", json={"scope": "ssh", "reason": "to reproduce"}
    )
    assert asked.json()["status"] == "awaiting_access", asked.text
    before = await settled(api.desk.ledger)

    response = await api.customer(owner).post(f"/v1/complaints/{complaint_id}/access", json={"grant": grant})

    refused(response, 422, "validation_error", "body.grant")
    assert await snapshot(api.desk.ledger) == before
    state = (await api.customer(owner).get(f"/v1/complaints/{complaint_id}")).json()
    assert state["status"] == "awaiting_access"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("review", {"decision": "approve", "note": "ok\x00"}, "body.note"),
        ("review", {"decision": "approve", "note": "x" * 5001}, "body.note"),
        ("review", {"decision": "approve!", "note": ""}, "body.decision"),
        ("review", {"decision": "approve", "note": "", "refund": "50.00"}, "body.refund"),
        ("access-request", {"scope": "ssh\x07", "reason": "to reproduce"}, "body.scope"),
        ("access-request", {"scope": "ssh", "reason": ""}, "body.reason"),
        ("fix", {"note": ["fixed"]}, "body.note"),
    ],
)
async def test_support_actions_with_hostile_bodies_are_422_and_change_nothing(
    api: Api, path: str, body: Json, field: str
) -> None:
    complaint = await file_complaint(api)
    complaint_id = complaint["complaint_id"]
    before = await settled(api.desk.ledger)
    response = await api.support().post(f"/v1/complaints/{complaint_id}/{path}", json=body)
    refused(response, 422, "validation_error", field)
    assert await snapshot(api.desk.ledger) == before
    assert (await api.support().get(f"/v1/complaints/{complaint_id}")).json()["status"] == "under_review"


# ---------------------------------------------------------------------------------------------- balance


async def test_r2_a_balance_larger_than_any_one_order_is_answered_not_a_500(api: Api) -> None:
    """R2 refunds two canceled numbers at the largest price an order may carry: the balance has more
    digits than either, and the API shows it (response amounts are not bounded like request ones)."""
    customer_id = new_customer()
    largest = "99999999999999.9999"
    backend = api.backend()
    for _ in range(2):
        body = order_body(
            customer_id, amount=largest, product=NUMBER, placed_at=(await _now(api)).isoformat()
        )
        assert (await backend.post("/v1/orders", json=body)).status_code == 201
        started = await backend.post(
            "/v1/activations",
            json={"order_id": body["order_id"], "phone_number": "+447700900123", "service": "whatsapp"},
        )
        assert started.status_code == 201, started.text
        canceled = await backend.post(f"/v1/activations/{started.json()['activation_id']}/cancel")
        assert canceled.status_code == 200, canceled.text
    for _ in range(250):
        if len((await api.desk.ledger.balance(customer_id)).entries) == 2:
            break
        await asyncio.sleep(0.02)

    response = await backend.get(f"/v1/customers/{customer_id}/balance")

    assert response.status_code == 200, response.text
    assert response.json()["balance"] == "199999999999999.9998"
    assert [e["amount"] for e in response.json()["entries"]] == [largest, largest]
