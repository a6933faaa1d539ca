"""The webhook endpoint store on SQLite and PostgreSQL alike: managing endpoints, their subscriptions, and
secrets that are sealed at rest, shown once, and rotated with an overlap in which both sign.

Every test that takes `any_ledger` runs twice: once on a SQLite file, once on a throwaway PostgreSQL
database. Nothing is mocked.
"""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from dispatch.events import (
    ACTIVATION_CANCELED,
    ALL_TYPES,
    COMPLAINT_FILED,
    COMPLAINT_REFUNDED,
    EVENT_TYPES,
)
from ledger.repository import Ledger
from ledger.schema import WebhookEndpointRow
from ledger.vault import VaultError, VaultKeyring
from ledger.webhook_endpoints import (
    UnknownEventType,
    WebhookEndpointNotFound,
    WebhookEndpoints,
    event_types_of,
    new_secret,
)

URL = "https://shop.example.com/hooks/refund-desk"


def store(ledger: Ledger, keyring: VaultKeyring) -> WebhookEndpoints:
    return WebhookEndpoints(ledger.engine, keyring)


async def stored_row(ledger: Ledger, endpoint_id: str) -> WebhookEndpointRow:
    query = select(WebhookEndpointRow).where(WebhookEndpointRow.endpoint_id == endpoint_id)
    async with ledger.engine.connect() as conn:
        row = (await conn.execute(query)).one()
    return WebhookEndpointRow(**row._mapping)


def test_a_secret_is_standard_webhooks_whsec_and_32_random_bytes() -> None:
    made = {new_secret() for _ in range(100)}
    assert len(made) == 100
    for secret in made:
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32


def test_a_subscription_is_known_types_once_each_or_everything() -> None:
    assert event_types_of([COMPLAINT_REFUNDED, COMPLAINT_FILED, COMPLAINT_REFUNDED]) == [
        COMPLAINT_FILED,
        COMPLAINT_REFUNDED,
    ]
    assert event_types_of([COMPLAINT_FILED, ALL_TYPES]) == [ALL_TYPES]
    with pytest.raises(UnknownEventType) as refused:
        event_types_of([COMPLAINT_FILED, "complaint.exploded"])
    assert refused.value.event_type == "complaint.exploded"
    with pytest.raises(ValueError):
        event_types_of([])


async def test_an_endpoint_is_created_read_listed_changed_and_deleted(
    any_ledger: Ledger, keyring: VaultKeyring
) -> None:
    endpoints = store(any_ledger, keyring)
    first, secret = await endpoints.create(URL, [COMPLAINT_REFUNDED], "orders service")
    second, _ = await endpoints.create("http://10.0.0.7:9000/in", [ALL_TYPES])
    assert first.endpoint_id.startswith("we_") and len(first.endpoint_id) == 35
    assert secret.startswith("whsec_")
    assert secret not in json.dumps(first.model_dump(mode="json"))
    assert "secret" not in first.model_dump() and "secret_json" not in first.model_dump()
    assert (first.url, first.event_types, first.description, first.enabled) == (
        URL,
        [COMPLAINT_REFUNDED],
        "orders service",
        True,
    )
    assert await endpoints.get(first.endpoint_id) == first
    assert [e.endpoint_id for e in await endpoints.list()] == [first.endpoint_id, second.endpoint_id]
    assert await endpoints.url_of(first.endpoint_id) == URL

    disabled = await endpoints.set_enabled(first.endpoint_id, False)
    assert not disabled.enabled and disabled.updated_at >= first.updated_at
    retyped = await endpoints.set_event_types(first.endpoint_id, [ACTIVATION_CANCELED, COMPLAINT_FILED])
    assert retyped.event_types == [COMPLAINT_FILED, ACTIVATION_CANCELED] and not retyped.enabled
    with pytest.raises(UnknownEventType):
        await endpoints.set_event_types(first.endpoint_id, ["order.placed"])
    assert (await endpoints.get(first.endpoint_id)) == retyped

    await endpoints.delete(first.endpoint_id)
    assert await endpoints.get(first.endpoint_id) is None
    assert await endpoints.url_of(first.endpoint_id) is None
    assert await endpoints.signing_secrets(first.endpoint_id, datetime.now(UTC)) == []
    assert [e.endpoint_id for e in await endpoints.list()] == [second.endpoint_id]


@pytest.mark.parametrize(
    "unknown",
    ["we_" + "0" * 32, "nope", "we_\x00", "\ud800", "x" * 500],
    ids=["well-formed", "other", "nul", "surrogate", "long"],
)
async def test_an_unknown_or_malformed_id_is_not_found_on_every_call(
    ledger: Ledger, keyring: VaultKeyring, unknown: str
) -> None:
    endpoints = store(ledger, keyring)
    assert await endpoints.get(unknown) is None
    assert await endpoints.signing_secrets(unknown, datetime.now(UTC)) == []
    for call in (
        endpoints.set_enabled(unknown, True),
        endpoints.set_event_types(unknown, [ALL_TYPES]),
        endpoints.rotate_secret(unknown, timedelta(hours=1)),
        endpoints.delete(unknown),
    ):
        with pytest.raises(WebhookEndpointNotFound):
            await call


async def test_subscribed_lists_the_enabled_endpoints_that_want_the_type(
    any_ledger: Ledger, keyring: VaultKeyring
) -> None:
    endpoints = store(any_ledger, keyring)
    refunds, _ = await endpoints.create(URL, [COMPLAINT_REFUNDED])
    everything, _ = await endpoints.create(URL + "/all", [ALL_TYPES])
    filings, _ = await endpoints.create(URL + "/filed", [COMPLAINT_FILED])
    assert await endpoints.subscribed(COMPLAINT_REFUNDED) == [refunds.endpoint_id, everything.endpoint_id]
    assert await endpoints.subscribed(COMPLAINT_FILED) == [everything.endpoint_id, filings.endpoint_id]
    await endpoints.set_enabled(everything.endpoint_id, False)
    assert await endpoints.subscribed(COMPLAINT_FILED) == [filings.endpoint_id]
    async with any_ledger.engine.begin() as conn:  # inside the caller's own transaction
        assert await endpoints.subscribed(COMPLAINT_REFUNDED, conn=conn) == [refunds.endpoint_id]
    assert await endpoints.subscribed(EVENT_TYPES[-1]) == []


async def test_the_secret_is_sealed_at_rest_and_bound_to_its_endpoint(
    any_ledger: Ledger, keyring: VaultKeyring
) -> None:
    endpoints = store(any_ledger, keyring)
    endpoint, secret = await endpoints.create(URL, [ALL_TYPES])
    other, _ = await endpoints.create(URL, [ALL_TYPES])
    row = await stored_row(any_ledger, endpoint.endpoint_id)
    raw = secret.removeprefix("whsec_")
    for column in (row.secret_json, row.url, row.event_types_json, row.description):
        assert secret not in column and raw not in column
        assert base64.b64decode(raw).hex() not in column
    assert set(json.loads(row.secret_json)) == {"key_id", "nonce", "ciphertext"}
    assert await endpoints.signing_secrets(endpoint.endpoint_id, datetime.now(UTC)) == [secret]

    # the seal opens for its own endpoint only: copied onto another, it does not open there
    async with any_ledger.engine.begin() as conn:
        await conn.execute(
            update(WebhookEndpointRow)
            .where(WebhookEndpointRow.endpoint_id == other.endpoint_id)
            .values(secret_json=row.secret_json)
        )
    with pytest.raises(VaultError) as refused:
        await endpoints.signing_secrets(other.endpoint_id, datetime.now(UTC))
    assert secret not in str(refused.value)
    # and another keyring opens none of them
    with pytest.raises(VaultError):
        await store(any_ledger, VaultKeyring.generate("other")).signing_secrets(
            endpoint.endpoint_id, datetime.now(UTC)
        )


async def test_a_rotation_signs_with_both_secrets_until_the_overlap_ends_then_the_new_one(
    any_ledger: Ledger, keyring: VaultKeyring
) -> None:
    endpoints = store(any_ledger, keyring)
    endpoint, old = await endpoints.create(URL, [ALL_TYPES])
    at = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    new = await endpoints.rotate_secret(endpoint.endpoint_id, timedelta(hours=24), now=at)
    assert new != old and new.startswith("whsec_")
    assert await endpoints.signing_secrets(endpoint.endpoint_id, at) == [new, old]
    last = at + timedelta(hours=24) - timedelta(microseconds=1)
    assert await endpoints.signing_secrets(endpoint.endpoint_id, last) == [new, old]
    assert await endpoints.signing_secrets(endpoint.endpoint_id, at + timedelta(hours=24)) == [new]
    rotated = await endpoints.get(endpoint.endpoint_id)
    assert rotated is not None and rotated.previous_secret_expires_at == at + timedelta(hours=24)
    row = await stored_row(any_ledger, endpoint.endpoint_id)
    assert row.previous_secret_json is not None
    assert old not in row.previous_secret_json and new not in row.secret_json

    # a rotation without overlap drops the replaced secret at once
    newest = await endpoints.rotate_secret(endpoint.endpoint_id, timedelta(0), now=at)
    assert await endpoints.signing_secrets(endpoint.endpoint_id, at) == [newest]
    with pytest.raises(ValueError):
        await endpoints.rotate_secret(endpoint.endpoint_id, timedelta(seconds=-1))


async def test_two_rotations_at_once_each_keep_a_secret_that_was_current(
    any_ledger: Ledger, keyring: VaultKeyring
) -> None:
    endpoints = store(any_ledger, keyring)
    endpoint, first = await endpoints.create(URL, [ALL_TYPES])
    at = datetime.now(UTC)
    made = await asyncio.gather(
        endpoints.rotate_secret(endpoint.endpoint_id, timedelta(hours=1), now=at),
        endpoints.rotate_secret(endpoint.endpoint_id, timedelta(hours=1), now=at),
    )
    current, previous = await endpoints.signing_secrets(endpoint.endpoint_id, at)
    assert current in made
    assert previous == (set(made) - {current}).pop(), "the rotation that lost kept the winner's secret"
    assert first not in (current, previous)
