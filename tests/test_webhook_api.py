"""The webhook endpoints of docs/api.md over real HTTP: uvicorn on a loopback port, the real desk and a
real SQLite ledger. Only the backend manages endpoints; a URL must be http(s) with a host and not the API
itself; the secret is shown once, on creation and on rotation, and in no other answer; the delivery log
shows each attempt, and a redelivery queues a delivery again. Nothing is mocked: the deliveries the log
reads are rows written to the ledger.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select

from dispatch.events import ALL_TYPES, COMPLAINT_FILED, COMPLAINT_REFUNDED, event_id
from ledger.schema import Base, DeliveryAttemptRow, DeliveryRow, WebhookEventRow
from ledger.webhook_endpoints import WebhookEndpoints
from tests.conftest import Api

Json = dict[str, Any]
HOOK = "https://shop.example.com/hooks/refund-desk"
UNKNOWN = "we_" + "0" * 32


async def create(api: Api, url: str = HOOK, types: list[str] | None = None) -> Json:
    response = await api.backend().post(
        "/v1/webhook-endpoints",
        json={"url": url, "event_types": types or [COMPLAINT_REFUNDED], "description": "orders"},
    )
    assert response.status_code == 201, response.text
    created: Json = response.json()
    return created


def refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code, response.text


def endpoints_of(api: Api) -> WebhookEndpoints:
    return WebhookEndpoints(api.desk.ledger.engine, api.desk.keyring)


def routes(endpoint_id: str, delivery_id: int = 1) -> list[tuple[str, str, Json | None]]:
    base = f"/v1/webhook-endpoints/{endpoint_id}"
    return [
        ("POST", "/v1/webhook-endpoints", {"url": HOOK, "event_types": [ALL_TYPES]}),
        ("GET", "/v1/webhook-endpoints", None),
        ("GET", base, None),
        ("PATCH", base, {"enabled": False}),
        ("POST", f"{base}/rotate-secret", {"overlap_seconds": 60}),
        ("GET", f"{base}/deliveries", None),
        ("POST", f"{base}/deliveries/{delivery_id}/redeliver", None),
        ("DELETE", base, None),
    ]


async def test_only_the_backend_manages_webhook_endpoints(api: Api) -> None:
    endpoint = await create(api)
    for client in (api.support(), api.customer("cust-1")):
        for method, path, body in routes(endpoint["endpoint_id"]):
            response = await client.request(method, path, json=body)
            refused(response, 403, "forbidden")
    for method, path, body in routes(endpoint["endpoint_id"]):
        refused(await api.client().request(method, path, json=body), 401, "unauthorized")
    listed = (await api.backend().get("/v1/webhook-endpoints")).json()["items"]
    assert [e["endpoint_id"] for e in listed] == [endpoint["endpoint_id"]]
    assert listed[0]["enabled"] is True, "nothing the other roles sent changed it"


async def test_the_secret_is_shown_on_creation_once_and_in_no_other_answer(api: Api) -> None:
    backend = api.backend()
    created = await backend.post(
        "/v1/webhook-endpoints",
        json={"url": HOOK, "event_types": [COMPLAINT_FILED, COMPLAINT_REFUNDED, COMPLAINT_FILED]},
    )
    assert created.status_code == 201, created.text
    assert created.headers["cache-control"] == "no-store"
    body = created.json()
    secret = body["secret"]
    assert secret.startswith("whsec_")
    assert body["event_types"] == [COMPLAINT_FILED, COMPLAINT_REFUNDED]
    assert body["enabled"] is True and body["description"] == ""
    assert body["previous_secret_expires_at"] is None
    endpoint_id = body["endpoint_id"]
    assert await endpoints_of(api).signing_secrets(endpoint_id, datetime.now(UTC)) == [secret]

    reads = [
        await backend.get("/v1/webhook-endpoints"),
        await backend.get(f"/v1/webhook-endpoints/{endpoint_id}"),
        await backend.patch(f"/v1/webhook-endpoints/{endpoint_id}", json={}),
        await backend.get(f"/v1/webhook-endpoints/{endpoint_id}/deliveries"),
    ]
    for response in reads:
        assert response.status_code == 200, response.text
        assert secret not in response.text and secret.removeprefix("whsec_") not in response.text
        assert 'secret"' not in response.text.replace("previous_secret_expires_at", "")
    assert set(reads[1].json()) == set(body) - {"secret"}
    assert not await ledger_holds(api, secret.removeprefix("whsec_")), "the ledger holds it only sealed"


async def ledger_holds(api: Api, text: str) -> bool:
    """Whether any row of any table of the ledger holds `text` in clear."""
    async with api.desk.ledger.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in (await conn.execute(select(table))).all():
                if any(text in (v.decode("latin-1") if isinstance(v, bytes) else str(v)) for v in row):
                    return True
    return False


async def test_a_url_must_be_http_with_a_host_and_not_the_api_itself(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFUND_DESK_PUBLIC_URL", "https://refunds.shop.example")
    backend = api.backend()
    port = httpx.URL(api.base_url).port
    assert port is not None

    async def sent(url: str) -> httpx.Response:
        return await backend.post("/v1/webhook-endpoints", json={"url": url, "event_types": [ALL_TYPES]})

    for bad in (
        "ftp://shop.example.com/hook",
        "shop.example.com/hook",
        "http:///hook",
        "https://h:0/x",
        "http://shop.example.com/a b",
        "javascript:alert(1)",
    ):
        refused(await sent(bad), 422, "webhook_url_invalid")
    for own in (
        f"{api.base_url}/hook",
        f"http://localhost:{port}/v1/orders",
        f"https://127.0.0.1:{port}",
        f"http://[::1]:{port}/x",
        f"http://127.1:{port}/x",
        "https://refunds.shop.example/hooks",
        "http://REFUNDS.shop.example:443/hooks",
    ):
        refused(await sent(own), 422, "webhook_url_loops_back")
    refused(
        await backend.post("/v1/webhook-endpoints", json={"url": HOOK, "event_types": ["order.placed"]}),
        422,
        "unknown_event_type",
    )
    refused(
        await backend.post("/v1/webhook-endpoints", json={"url": HOOK, "event_types": []}),
        422,
        "validation_error",
    )
    refused(await sent("x" * 3000), 422, "validation_error")
    lone = "\\ud800"  # JSON's spelling of a lone surrogate, which is no Unicode text
    for raw in (
        f'{{"url": "{HOOK}/{lone}", "event_types": ["*"]}}',
        f'{{"url": "{HOOK}", "event_types": ["*"], "description": "{lone}"}}',
        f'{{"url": "{HOOK}", "event_types": ["{lone}"]}}',
    ):
        as_json = {"content-type": "application/json"}
        refused(
            await backend.post("/v1/webhook-endpoints", content=raw, headers=as_json), 422, "validation_error"
        )
    assert (await backend.get("/v1/webhook-endpoints")).json()["items"] == [], "nothing was stored"
    # another port of this host, or another host, is somebody else
    assert (await sent(f"http://127.0.0.1:{port + 1}/hook")).status_code == 201
    assert (await sent("http://refunds.shop.example:8443/hooks")).status_code == 201


async def test_unknown_ids_are_404(api: Api) -> None:
    backend = api.backend()
    for method, path, body in routes(UNKNOWN)[2:]:
        refused(await backend.request(method, path, json=body), 404, "webhook_endpoint_not_found")
    for weird in ("nope", "we_%00", "%F0%9F%98%80", "x" * 90):
        refused(await backend.get(f"/v1/webhook-endpoints/{weird}"), 404, "webhook_endpoint_not_found")
    endpoint = await create(api)
    base = f"/v1/webhook-endpoints/{endpoint['endpoint_id']}"
    refused(await backend.post(f"{base}/deliveries/12345/redeliver"), 404, "delivery_not_found")
    refused(await backend.post(f"{base}/deliveries/0/redeliver"), 422, "validation_error")
    refused(await backend.post(f"{base}/deliveries/{2**40}/redeliver"), 422, "validation_error")


async def test_patch_enables_disables_and_resubscribes(api: Api) -> None:
    backend = api.backend()
    endpoint = await create(api)
    path = f"/v1/webhook-endpoints/{endpoint['endpoint_id']}"
    off = await backend.patch(path, json={"enabled": False})
    assert off.status_code == 200 and off.json()["enabled"] is False
    assert await endpoints_of(api).subscribed(COMPLAINT_REFUNDED) == []
    retyped = await backend.patch(path, json={"event_types": [ALL_TYPES], "enabled": True})
    assert retyped.status_code == 200
    assert (retyped.json()["event_types"], retyped.json()["enabled"]) == ([ALL_TYPES], True)
    assert await endpoints_of(api).subscribed(COMPLAINT_FILED) == [endpoint["endpoint_id"]]
    refused(
        await backend.patch(path, json={"event_types": ["nope"], "enabled": False}), 422, "unknown_event_type"
    )
    refused(await backend.patch(path, json={"url": "https://elsewhere.example"}), 422, "validation_error")
    after = (await backend.get(path)).json()
    assert (after["event_types"], after["enabled"]) == ([ALL_TYPES], True), "a refused patch changed nothing"


async def test_rotating_shows_the_new_secret_once_and_the_old_one_signs_through_the_overlap(api: Api) -> None:
    backend = api.backend()
    endpoint = await create(api)
    old = endpoint["secret"]
    path = f"/v1/webhook-endpoints/{endpoint['endpoint_id']}"
    before = datetime.now(UTC)
    rotated = await backend.post(f"{path}/rotate-secret")
    assert rotated.status_code == 200, rotated.text
    assert rotated.headers["cache-control"] == "no-store"
    new = rotated.json()["secret"]
    assert new.startswith("whsec_") and new != old
    expires = datetime.fromisoformat(rotated.json()["previous_secret_expires_at"])
    assert before + timedelta(days=1) <= expires <= datetime.now(UTC) + timedelta(days=1)
    store = endpoints_of(api)
    assert await store.signing_secrets(endpoint["endpoint_id"], datetime.now(UTC)) == [new, old]
    assert await store.signing_secrets(endpoint["endpoint_id"], expires) == [new]
    read = await backend.get(path)
    assert new not in read.text and old not in read.text
    assert read.json()["previous_secret_expires_at"] == rotated.json()["previous_secret_expires_at"]

    at_once = await backend.post(f"{path}/rotate-secret", json={"overlap_seconds": 0})
    assert at_once.status_code == 200 and at_once.json()["previous_secret_expires_at"] is None
    assert await store.signing_secrets(endpoint["endpoint_id"], datetime.now(UTC)) == [
        at_once.json()["secret"]
    ]
    for overlap in (-1, 7 * 86400 + 1, "1h"):
        refused(
            await backend.post(f"{path}/rotate-secret", json={"overlap_seconds": overlap}),
            422,
            "validation_error",
        )


async def test_an_idempotency_key_is_refused_where_the_answer_holds_a_secret(api: Api) -> None:
    backend = api.backend()
    key = {"Idempotency-Key": str(uuid.uuid4())}
    body = {"url": HOOK, "event_types": [ALL_TYPES]}
    for _ in range(2):
        refused(
            await backend.post("/v1/webhook-endpoints", json=body, headers=key),
            422,
            "idempotency_key_not_accepted",
        )
    assert (await backend.get("/v1/webhook-endpoints")).json()["items"] == []
    endpoint = await create(api)
    rotate = f"/v1/webhook-endpoints/{endpoint['endpoint_id']}/rotate-secret"
    refused(
        await backend.post(rotate, headers={"Idempotency-Key": str(uuid.uuid4())}),
        422,
        "idempotency_key_not_accepted",
    )
    assert await endpoints_of(api).signing_secrets(endpoint["endpoint_id"], datetime.now(UTC)) == [
        endpoint["secret"]
    ]


async def test_delete_is_204_and_then_the_endpoint_is_gone(api: Api) -> None:
    backend = api.backend()
    endpoint = await create(api)
    path = f"/v1/webhook-endpoints/{endpoint['endpoint_id']}"
    deleted = await backend.delete(path)
    assert deleted.status_code == 204 and deleted.content == b""
    refused(await backend.get(path), 404, "webhook_endpoint_not_found")
    refused(await backend.delete(path), 404, "webhook_endpoint_not_found")
    assert await endpoints_of(api).signing_secrets(endpoint["endpoint_id"], datetime.now(UTC)) == []


# ------------------------------------------------------------------------------------ the delivery log


async def delivery(
    api: Api, endpoint_id: str, *, seq: int, attempts: list[tuple[int | None, int, str | None, str]]
) -> int:
    """A webhook event and its delivery to the endpoint, with `attempts` (status, latency, error, outcome),
    written to the ledger as the dispatcher writes them; returns the delivery's id."""
    now = datetime.now(UTC)
    event = event_id("ord-1.major_defect.00000000", seq, endpoint_id)
    async with api.desk.ledger.engine.begin() as conn:
        event_row_id = await conn.scalar(
            insert(WebhookEventRow)
            .returning(WebhookEventRow.id)
            .values(
                event_id=event,
                type=COMPLAINT_REFUNDED,
                occurred_at=now,
                sequence_key="ord-1.major_defect.00000000",
                data_json=json.dumps({"amount": "49.90"}),
                created_at=now,
            )
        )
        delivery_id = await conn.scalar(
            insert(DeliveryRow)
            .returning(DeliveryRow.id)
            .values(
                delivery_key=f"webhook:{endpoint_id}:{event}",
                channel="webhook",
                destination=endpoint_id,
                message_id=event,
                source_id=event_row_id,
                sequence_key="ord-1.major_defect.00000000",
                status=attempts[-1][3] if attempts else "pending",
                attempts=len(attempts),
                next_attempt_at=now,
                expires_at=now + timedelta(days=3),
                lease_owner="dispatcher-1",
                lease_until=now + timedelta(minutes=1),
                created_at=now,
                finished_at=now if attempts else None,
            )
        )
        assert delivery_id is not None
        for n, (status, latency, error, outcome) in enumerate(attempts):
            await conn.execute(
                insert(DeliveryAttemptRow).values(
                    delivery_id=delivery_id,
                    attempted_at=now + timedelta(seconds=n),
                    outcome=outcome,
                    status_code=status,
                    latency_ms=latency,
                    error=error,
                )
            )
    return int(delivery_id)


async def test_the_delivery_log_shows_each_attempt_newest_delivery_first_in_pages(api: Api) -> None:
    backend = api.backend()
    endpoint = await create(api)
    other = await create(api, url=HOOK + "/other")
    first = await delivery(
        api,
        endpoint["endpoint_id"],
        seq=1,
        attempts=[
            (500, 120, "HTTP 500", "pending"),
            (None, 10000, "no answer within 10 s", "pending"),
            (200, 85, None, "sent"),
        ],
    )
    second = await delivery(api, endpoint["endpoint_id"], seq=2, attempts=[])
    await delivery(api, other["endpoint_id"], seq=3, attempts=[(200, 5, None, "sent")])
    path = f"/v1/webhook-endpoints/{endpoint['endpoint_id']}/deliveries"

    page = (await backend.get(path)).json()
    assert [d["delivery_id"] for d in page["items"]] == [second, first] and page["next_cursor"] is None
    sent = page["items"][1]
    assert sent["status"] == "sent" and sent["event_type"] == COMPLAINT_REFUNDED
    assert sent["event_id"].startswith("evt_")
    assert [(a["status_code"], a["latency_ms"], a["error"], a["outcome"]) for a in sent["attempts"]] == [
        (500, 120, "HTTP 500", "pending"),
        (None, 10000, "no answer within 10 s", "pending"),
        (200, 85, None, "sent"),
    ]
    assert page["items"][0]["attempts"] == [] and page["items"][0]["status"] == "pending"

    one = (await backend.get(path, params={"limit": 1})).json()
    assert [d["delivery_id"] for d in one["items"]] == [second] and one["next_cursor"]
    rest = (await backend.get(path, params={"limit": 1, "cursor": one["next_cursor"]})).json()
    assert [d["delivery_id"] for d in rest["items"]] == [first] and rest["next_cursor"] is None
    for bad in ("nope", "d0", "d99999999999", "d-1", "d\uff11"):  # the last: a full-width digit one
        refused(await backend.get(path, params={"cursor": bad}), 422, "invalid_cursor")
    refused(await backend.get(path, params={"limit": 0}), 422, "validation_error")


async def test_redeliver_queues_the_delivery_again_due_now_for_the_retry_period(api: Api) -> None:
    backend = api.backend()
    endpoint = await create(api)
    other = await create(api, url=HOOK + "/other")
    failed = await delivery(api, endpoint["endpoint_id"], seq=1, attempts=[(500, 40, "HTTP 500", "failed")])
    theirs = await delivery(api, other["endpoint_id"], seq=2, attempts=[(500, 40, "HTTP 500", "failed")])
    base = f"/v1/webhook-endpoints/{endpoint['endpoint_id']}"

    before = datetime.now(UTC)
    answer = await backend.post(f"{base}/deliveries/{failed}/redeliver")
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert (body["delivery_id"], body["status"], body["finished_at"]) == (failed, "pending", None)
    assert len(body["attempts"]) == 1, "the log keeps the attempts made before"
    due = datetime.fromisoformat(body["next_attempt_at"])
    assert before <= due <= datetime.now(UTC)
    assert datetime.fromisoformat(body["expires_at"]) == due + timedelta(days=3)
    async with api.desk.ledger.engine.connect() as conn:
        row = (await conn.execute(select(DeliveryRow).where(DeliveryRow.id == failed))).one()
    assert (row.status, row.attempts, row.lease_owner, row.lease_until) == ("pending", 0, None, None)
    assert row.message_id == body["event_id"], "sent again with the same webhook-id"

    refused(await backend.post(f"{base}/deliveries/{theirs}/redeliver"), 404, "delivery_not_found")
    async with api.desk.ledger.engine.connect() as conn:
        untouched = (
            await conn.execute(select(DeliveryRow.status).where(DeliveryRow.id == theirs))
        ).scalar_one()
    assert untouched == "failed"
