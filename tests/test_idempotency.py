"""Idempotency keys (docs/api.md "Idempotency"): the store on SQLite and PostgreSQL, then the API over real
HTTP, where a retry with the same key gets the first response back and runs nothing again.

The store's clock is a test's own, so time to live and leases pass without waiting.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from alembic import command
from sqlalchemy import Connection, inspect, select
from sqlalchemy.exc import OperationalError
from temporalio.testing import WorkflowEnvironment

from ledger.idempotency import (
    Claimed,
    IdempotencyKeyRow,
    IdempotencyStore,
    InProgress,
    KeyedRequest,
    Mismatch,
    Replay,
    StoredResponse,
)
from ledger.migrate import alembic_config, upgrade
from ledger.repository import Ledger
from ledger.vault import VaultKeyring
from policy.models import ComplaintStatus, Order
from starter.api.app import create_app
from starter.api.settings import ApiSettings
from starter.desk import ComplaintDesk
from tests.conftest import JWT_SECRET, Api, in_ledger, served
from tests.factories import DESCRIPTION, customer, software_order
from tests.test_api import error_of, new_customer, order_body, place_order
from tests.test_ledger import schema_diff
from worker import build_worker

Json = dict[str, Any]

ORDER = KeyedRequest(method="POST", path="/v1/orders", request_hash="a" * 64)
CREATED = StoredResponse(201, "application/json", None, b'{"order_id": "ord-1"}')


class Clock:
    """A clock a test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> None:
        self.now += by


def store_of(ledger: Ledger, clock: Clock, ttl: timedelta = timedelta(days=1)) -> IdempotencyStore:
    return IdempotencyStore(ledger.engine, ttl, lease=timedelta(minutes=2), clock=clock)


async def keys_in(ledger: Ledger) -> int:
    return (await ledger.table_counts(["idempotency_keys"]))["idempotency_keys"]


# ------------------------------------------------------------------------------------------- the store


async def test_a_claimed_key_is_in_progress_then_replays_its_response(any_ledger: Ledger) -> None:
    store = store_of(any_ledger, Clock())

    claim = await store.claim("backend:shop", "k-1", ORDER)
    assert isinstance(claim, Claimed)
    assert await store.claim("backend:shop", "k-1", ORDER) == InProgress()

    assert await store.complete("backend:shop", "k-1", claim.attempt, CREATED)
    assert await store.claim("backend:shop", "k-1", ORDER) == Replay(CREATED)
    assert await store.claim("backend:shop", "k-1", ORDER) == Replay(CREATED), "a replay keeps the row"
    assert await keys_in(any_ledger) == 1


async def test_a_key_sent_with_another_request_is_a_mismatch_even_while_in_progress(
    any_ledger: Ledger,
) -> None:
    store = store_of(any_ledger, Clock())
    claim = await store.claim("backend:shop", "k-1", ORDER)
    assert isinstance(claim, Claimed)

    other_body = KeyedRequest("POST", "/v1/orders", "b" * 64)
    other_path = KeyedRequest("POST", "/v1/activations", ORDER.request_hash)
    assert await store.claim("backend:shop", "k-1", other_body) == Mismatch(ORDER)
    assert await store.complete("backend:shop", "k-1", claim.attempt, CREATED)
    assert await store.claim("backend:shop", "k-1", other_body) == Mismatch(ORDER)
    assert await store.claim("backend:shop", "k-1", other_path) == Mismatch(ORDER)


async def test_a_key_is_claimed_per_caller(any_ledger: Ledger) -> None:
    store = store_of(any_ledger, Clock())
    mine = await store.claim("backend:shop", "k-1", ORDER)
    assert isinstance(mine, Claimed)
    await store.complete("backend:shop", "k-1", mine.attempt, CREATED)

    assert isinstance(await store.claim("backend:other-shop", "k-1", ORDER), Claimed)
    assert isinstance(await store.claim("customer:shop", "k-1", ORDER), Claimed), "role is part of the caller"
    assert await keys_in(any_ledger) == 3


async def test_a_released_key_is_claimed_again(any_ledger: Ledger) -> None:
    store = store_of(any_ledger, Clock())
    first = await store.claim("backend:shop", "k-1", ORDER)
    assert isinstance(first, Claimed)

    await store.release("backend:shop", "k-1", first.attempt)

    second = await store.claim("backend:shop", "k-1", ORDER)
    assert isinstance(second, Claimed) and second.attempt != first.attempt
    await store.release("backend:shop", "k-1", first.attempt)  # the old attempt's release: nothing
    assert await store.claim("backend:shop", "k-1", ORDER) == InProgress()


async def test_an_attempt_past_its_lease_loses_the_key_to_the_next_request(any_ledger: Ledger) -> None:
    clock = Clock()
    store = store_of(any_ledger, clock)
    crashed = await store.claim("backend:shop", "k-1", ORDER)
    assert isinstance(crashed, Claimed)

    clock.advance(timedelta(minutes=2) - timedelta(microseconds=1))
    assert await store.claim("backend:shop", "k-1", ORDER) == InProgress()
    clock.advance(timedelta(microseconds=1))
    retry = await store.claim("backend:shop", "k-1", ORDER)
    assert isinstance(retry, Claimed)

    assert not await store.complete("backend:shop", "k-1", crashed.attempt, CREATED)
    late = await store.claim("backend:shop", "k-1", ORDER)
    assert late == InProgress(), "the crashed attempt's late completion changed nothing"
    assert await store.complete("backend:shop", "k-1", retry.attempt, CREATED)
    assert await store.claim("backend:shop", "k-1", ORDER) == Replay(CREATED)


async def test_a_completed_key_is_kept_for_its_time_to_live_then_is_new(any_ledger: Ledger) -> None:
    clock = Clock()
    store = store_of(any_ledger, clock, ttl=timedelta(hours=24))
    claim = await store.claim("backend:shop", "k-1", ORDER)
    assert isinstance(claim, Claimed)
    await store.complete("backend:shop", "k-1", claim.attempt, CREATED)

    clock.advance(timedelta(hours=24) - timedelta(microseconds=1))
    assert await store.claim("backend:shop", "k-1", ORDER) == Replay(CREATED)
    clock.advance(timedelta(microseconds=1))
    other_body = KeyedRequest("POST", "/v1/orders", "b" * 64)
    assert isinstance(await store.claim("backend:shop", "k-1", other_body), Claimed), "expired: a new key"
    assert await keys_in(any_ledger) == 1


async def test_an_unfinished_attempt_holds_its_key_for_its_lease_even_past_the_time_to_live(
    any_ledger: Ledger,
) -> None:
    clock = Clock()
    store = store_of(any_ledger, clock, ttl=timedelta(minutes=1))  # the lease is 2 minutes
    assert isinstance(await store.claim("backend:shop", "k-1", ORDER), Claimed)

    clock.advance(timedelta(seconds=90))
    assert await store.purge_expired() == 0
    assert await store.claim("backend:shop", "k-1", ORDER) == InProgress()
    clock.advance(timedelta(seconds=31))
    assert await store.purge_expired() == 1


async def test_the_purge_deletes_expired_keys_only_and_a_batch_at_a_time(any_ledger: Ledger) -> None:
    clock = Clock()
    store = store_of(any_ledger, clock, ttl=timedelta(hours=1))
    for number in range(5):
        claim = await store.claim("backend:shop", f"old-{number}", ORDER)
        assert isinstance(claim, Claimed)
    clock.advance(timedelta(minutes=61))
    fresh = await store.claim("backend:shop", "fresh", ORDER)
    assert isinstance(fresh, Claimed)

    assert await store.purge_expired(limit=3) == 3
    assert await keys_in(any_ledger) == 3
    assert await store.purge_expired(limit=3) == 2
    assert await store.purge_expired(limit=3) == 0
    async with any_ledger.engine.connect() as conn:
        left = (await conn.execute(select(IdempotencyKeyRow.key))).scalars().all()
    assert left == ["fresh"]


async def test_a_claim_purges_expired_keys_on_its_way(any_ledger: Ledger) -> None:
    clock = Clock()
    store = store_of(any_ledger, clock, ttl=timedelta(hours=1))
    assert isinstance(await store.claim("backend:shop", "old", ORDER), Claimed)
    clock.advance(timedelta(hours=2))

    restarted = store_of(any_ledger, clock, ttl=timedelta(hours=1))  # a store purges on its first claim
    assert isinstance(await restarted.claim("backend:shop", "new", ORDER), Claimed)
    async with any_ledger.engine.connect() as conn:
        left = (await conn.execute(select(IdempotencyKeyRow.key))).scalars().all()
    assert left == ["new"]


async def test_of_many_simultaneous_claims_of_one_key_exactly_one_wins(any_ledger: Ledger) -> None:
    stores = [store_of(any_ledger, Clock()) for _ in range(8)]  # as if from eight API processes

    claims = await asyncio.gather(*(store.claim("backend:shop", "k-1", ORDER) for store in stores))

    assert sum(isinstance(claim, Claimed) for claim in claims) == 1, claims
    assert all(isinstance(claim, Claimed | InProgress) for claim in claims), claims


# ------------------------------------------------------------------------------------------ migration


async def test_migration_0004_creates_the_table_as_the_model_says_and_drops_it(any_ledger: Ledger) -> None:
    assert await schema_diff(any_ledger) == []

    def tables(conn: Connection) -> set[str]:
        return set(inspect(conn).get_table_names())

    def downgrade(conn: Connection) -> None:
        command.downgrade(alembic_config(conn), "0003")

    async with any_ledger.engine.begin() as conn:
        await conn.run_sync(downgrade)
        assert "idempotency_keys" not in await conn.run_sync(tables)
    await upgrade(any_ledger.engine)
    async with any_ledger.engine.connect() as conn:
        assert "idempotency_keys" in await conn.run_sync(tables)
    assert await schema_diff(any_ledger) == []


# -------------------------------------------------------------------------------------------- the API


def keyed(key: str | None = None) -> dict[str, str]:
    return {"Idempotency-Key": key or str(uuid.uuid4())}


def replayed(response: httpx.Response) -> bool:
    return bool(response.headers.get("Idempotent-Replayed") == "true")


@asynccontextmanager
async def api_on(desk: ComplaintDesk) -> AsyncIterator[Api]:
    """The API on `desk`, built after the test has set the environment it wants."""
    async with served(create_app(desk, ApiSettings(jwt_secret=JWT_SECRET))) as base_url:
        api = Api(base_url=base_url, secret=JWT_SECRET, desk=desk)
        try:
            yield api
        finally:
            await api.close()


async def test_the_same_key_and_body_again_answers_the_first_response_and_runs_nothing(api: Api) -> None:
    backend, key, body = api.backend(), keyed(), order_body(new_customer())

    first = await backend.post("/v1/orders", json=body, headers=key)
    again = await backend.post("/v1/orders", json=body, headers=key)

    assert first.status_code == 201 and not replayed(first), first.text
    assert again.status_code == 201, "run again, the order would be 200 (recorded already)"
    assert replayed(again) and again.content == first.content
    assert again.headers["content-type"] == first.headers["content-type"]
    unkeyed = await backend.post("/v1/orders", json=body)
    assert unkeyed.status_code == 200 and not replayed(unkeyed), "without the key the request runs"
    assert (await api.desk.ledger.table_counts(["orders"]))["orders"] == 1


async def test_a_complaint_filed_twice_with_one_key_is_filed_once(api: Api) -> None:
    customer_id = new_customer()
    order = await place_order(api, customer_id)
    filing = {"order_id": order["order_id"], "kind": "major_defect", "description": DESCRIPTION}
    client, key = api.customer(customer_id), keyed()

    first = await client.post("/v1/complaints", json=filing, headers=key)
    again = await client.post("/v1/complaints", json=filing, headers=key)

    assert first.status_code == 201, first.text
    assert again.status_code == 201, "run again, the filing would be 409 complaint_already_open"
    assert replayed(again) and again.json() == first.json()
    await in_ledger(api.desk.ledger, first.json()["complaint_id"])
    assert (await api.desk.ledger.table_counts(["complaints"]))["complaints"] == 1


async def test_the_same_key_with_another_request_is_422_and_changes_nothing(api: Api) -> None:
    backend, key, body = api.backend(), keyed(), order_body(new_customer())
    assert (await backend.post("/v1/orders", json=body, headers=key)).status_code == 201
    before = await api.desk.ledger.table_counts()

    other_order = order_body(new_customer())
    another_body = await backend.post("/v1/orders", json=other_order, headers=key)
    activation = {"order_id": body["order_id"], "phone_number": "+447700900123", "service": "whatsapp"}
    another_path = await backend.post("/v1/activations", json=activation, headers=key)

    assert error_of(another_body, 422)["code"] == "idempotency_key_reused"
    assert error_of(another_path, 422)["code"] == "idempotency_key_reused"
    assert (await backend.get(f"/v1/orders/{other_order['order_id']}")).status_code == 404
    assert await api.desk.ledger.table_counts() == before


async def test_keys_are_per_caller_and_one_never_answers_for_another(api: Api) -> None:
    key, body = keyed(), order_body(new_customer())
    first = await api.backend("shop").post("/v1/orders", json=body, headers=key)
    assert first.status_code == 201, first.text

    same_body = await api.backend("other-shop").post("/v1/orders", json=body, headers=key)
    other_body = await api.backend("other-shop").post(
        "/v1/orders", json=order_body(new_customer()), headers=keyed("another")
    )
    other_caller_key = await api.backend("third-shop").post(
        "/v1/orders", json=order_body(new_customer()), headers=key
    )

    assert same_body.status_code == 200 and not replayed(same_body), "ran for its own caller: no replay"
    assert other_body.status_code == 201
    assert other_caller_key.status_code == 201 and not replayed(other_caller_key), "not 422: not its key"


async def test_a_client_error_is_kept_and_answered_again(api: Api) -> None:
    """A 4xx is the request's answer too: the retry gets it, even once the order it lacked exists."""
    backend, key = api.backend(), keyed()
    body = order_body(new_customer())
    activation = {"order_id": body["order_id"], "phone_number": "+447700900123", "service": "whatsapp"}

    first = await backend.post("/v1/activations", json=activation, headers=key)
    assert error_of(first, 404)["code"] == "order_not_found"
    assert (await backend.post("/v1/orders", json=body)).status_code == 201
    again = await backend.post("/v1/activations", json=activation, headers=key)

    assert again.status_code == 404 and replayed(again) and again.json() == first.json()


@pytest.mark.parametrize(
    "headers",
    [
        [(b"Idempotency-Key", b"k" * 256)],
        [(b"Idempotency-Key", b"")],
        [(b"Idempotency-Key", b"two words")],
        [(b"Idempotency-Key", b"cl\xe9")],
        [(b"Idempotency-Key", b"one"), (b"Idempotency-Key", b"two")],
    ],
    ids=["too-long", "empty", "space", "not-ascii", "twice"],
)
async def test_a_key_that_is_not_1_to_255_visible_ascii_characters_is_refused(
    api: Api, headers: list[tuple[bytes, bytes]]
) -> None:
    before = await api.desk.ledger.table_counts()
    content = json_bytes(order_body(new_customer()))
    headers.append((b"Content-Type", b"application/json"))
    response = await api.backend().post("/v1/orders", content=content, headers=headers)
    assert error_of(response, 422)["code"] == "idempotency_key_invalid"
    assert await api.desk.ledger.table_counts() == before


async def test_the_longest_key_is_taken(api: Api) -> None:
    key = keyed("".join(chr(c) for c in range(0x21, 0x7F)) * 2 + "k" * 67)
    assert len(key["Idempotency-Key"]) == 255
    body = order_body(new_customer())
    assert (await api.backend().post("/v1/orders", json=body, headers=key)).status_code == 201
    assert replayed(await api.backend().post("/v1/orders", json=body, headers=key))


class HeldDesk(ComplaintDesk):
    """The real desk, whose `record_order` waits for the test's word: a request held in flight."""

    entered: asyncio.Event
    go_on: asyncio.Event

    async def record_order(self, order: Order, *, email: str | None = None) -> tuple[Order, bool]:
        self.entered.set()
        await self.go_on.wait()
        return await super().record_order(order, email=email)


async def test_a_key_whose_first_request_still_runs_is_409_in_use(desk: ComplaintDesk) -> None:
    held = HeldDesk(desk.client, desk.ledger, desk.keyring, desk.task_queue)
    held.entered, held.go_on = asyncio.Event(), asyncio.Event()
    async with api_on(held) as api:
        backend, key, body = api.backend(), keyed(), order_body(new_customer())
        first = asyncio.create_task(backend.post("/v1/orders", json=body, headers=key))
        await asyncio.wait_for(held.entered.wait(), 10)

        meanwhile = await backend.post("/v1/orders", json=body, headers=key)
        other_body = await backend.post("/v1/orders", json=order_body(new_customer()), headers=key)
        held.go_on.set()
        answered = await first
        after = await backend.post("/v1/orders", json=body, headers=key)

    assert error_of(meanwhile, 409)["code"] == "idempotency_key_in_use"
    assert meanwhile.headers["Retry-After"] == "1"
    assert error_of(other_body, 422)["code"] == "idempotency_key_reused"
    assert answered.status_code == 201 and not replayed(answered)
    assert after.status_code == 201 and replayed(after) and after.content == answered.content
    assert (await desk.ledger.table_counts(["orders"]))["orders"] == 1


async def test_simultaneous_requests_with_one_key_run_once(api: Api) -> None:
    backend, key, body = api.backend(), keyed(), order_body(new_customer())

    answers = await asyncio.gather(*(backend.post("/v1/orders", json=body, headers=key) for _ in range(6)))

    ran = [a for a in answers if a.status_code == 201 and not replayed(a)]
    assert len(ran) == 1, [(a.status_code, a.text) for a in answers]
    for answer in answers:
        if answer.status_code == 409:
            assert error_of(answer, 409)["code"] == "idempotency_key_in_use"
        else:
            assert answer.status_code == 201 and answer.content == ran[0].content, answer.text
    assert (await api.desk.ledger.table_counts(["orders"]))["orders"] == 1


class FlakyDesk(ComplaintDesk):
    """The real desk, whose ledger fails the first order it is asked to record, as a dropped connection."""

    failures_left: int

    async def record_order(self, order: Order, *, email: str | None = None) -> tuple[Order, bool]:
        if self.failures_left > 0:
            self.failures_left -= 1
            raise OperationalError("INSERT INTO orders", {}, ConnectionResetError("connection reset"))
        return await super().record_order(order, email=email)


async def test_a_5xx_is_not_kept_and_the_retry_with_the_same_key_runs(desk: ComplaintDesk) -> None:
    flaky = FlakyDesk(desk.client, desk.ledger, desk.keyring, desk.task_queue)
    flaky.failures_left = 1
    async with api_on(flaky) as api:
        backend, key, body = api.backend(), keyed(), order_body(new_customer())
        failed = await backend.post("/v1/orders", json=body, headers=key)
        retried = await backend.post("/v1/orders", json=body, headers=key)
        again = await backend.post("/v1/orders", json=body, headers=key)

    assert error_of(failed, 503)["code"] == "ledger_unavailable"
    assert retried.status_code == 201 and not replayed(retried), retried.text
    assert again.status_code == 201 and replayed(again) and again.content == retried.content
    assert (await desk.ledger.table_counts(["orders"]))["orders"] == 1


async def test_after_a_503_for_want_of_a_worker_the_retry_runs_and_the_review_happens_once(
    env: WorkflowEnvironment, ledger: Ledger, keyring: VaultKeyring
) -> None:
    """No worker: the review waits the desk's patience and is 503, but Temporal keeps the update and
    delivers it once a worker is back (docs/api.md "Errors"). The retry with the same key is not answered
    the 503: it runs, and the workflow itself answers for the review already made."""
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    desk = ComplaintDesk(env.client, ledger, keyring, task_queue=queue, patience=timedelta(seconds=1))
    order = software_order()
    await ledger.record_order(order)
    # No workflow cache: the returning worker must get the complaint's tasks, not a gone worker's queue.
    async with build_worker(env.client, ledger, keyring, queue, max_cached_workflows=0):
        state = await desk.file_defect_complaint(order, DESCRIPTION, customer(order), desk.policy)
        await in_ledger(ledger, state.complaint_id)
    review, key = {"decision": "approve", "note": ""}, keyed()
    path = f"/v1/complaints/{state.complaint_id}/review"
    async with api_on(desk) as api:
        support = api.support()
        unanswered = await support.post(path, json=review, headers=key)
        async with build_worker(env.client, ledger, keyring, queue, max_cached_workflows=0):
            retries = [await support.post(path, json=review, headers=key)]
            while retries[-1].status_code == 503 and len(retries) < 10:
                retries.append(await support.post(path, json=review, headers=key))
            again = await support.post(path, json=review, headers=key)
        await in_ledger(ledger, state.complaint_id, ComplaintStatus.RECTIFYING)

    assert error_of(unanswered, 503)["code"] == "complaint_unresponsive"
    assert not any(replayed(r) for r in retries), "a 503 is never kept"
    retried = retries[-1]
    assert retried.status_code in (200, 409), retried.text
    if retried.status_code == 409:
        assert error_of(retried, 409)["code"] == "invalid_state", "the first review took effect first"
    assert again.status_code == retried.status_code and replayed(again) and again.content == retried.content
    record = await ledger.get_complaint(state.complaint_id)
    assert record is not None
    assert [e.type for e in record.state.events].count("deficiency_approved") == 1


async def test_an_expired_key_is_a_new_key(desk: ComplaintDesk, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFUND_DESK_IDEMPOTENCY_TTL", "PT3S")  # the replay must come within it, busy or not
    async with api_on(desk) as api:
        backend, key, body = api.backend(), keyed(), order_body(new_customer())
        assert (await backend.post("/v1/orders", json=body, headers=key)).status_code == 201
        kept = await backend.post("/v1/orders", json=body, headers=key)
        await asyncio.sleep(3.1)
        expired = await backend.post("/v1/orders", json=body, headers=key)
        other = order_body(new_customer())
        reused_later = await backend.post("/v1/orders", json=other, headers=key)

    assert kept.status_code == 201 and replayed(kept)
    assert expired.status_code == 200 and not replayed(expired), "ran again: the order was there already"
    assert error_of(reused_later, 422)["code"] == "idempotency_key_reused", "the key is the new request's now"
    assert (await desk.ledger.table_counts(["idempotency_keys"]))["idempotency_keys"] == 1


async def test_the_ledger_down_is_503_ledger_unavailable_not_a_bare_500(desk: ComplaintDesk) -> None:
    broken = Ledger.connect("postgresql+asyncpg://nobody@127.0.0.1:9/nothing")  # port 9: discard, closed
    sick = ComplaintDesk(desk.client, broken, desk.keyring, desk.task_queue)
    try:
        async with api_on(sick) as api:
            response = await api.backend().post(
                "/v1/orders", json=order_body(new_customer()), headers=keyed()
            )
    finally:
        await broken.close()
    assert error_of(response, 503)["code"] == "ledger_unavailable"


async def test_the_body_is_kept_as_a_keyed_hash_not_a_plain_one(api: Api) -> None:
    """The body of `.../access` holds credentials: a plain SHA-256 in the ledger could be tested against
    guessed passwords, a hash keyed with a secret outside the ledger cannot."""
    content = json_bytes(order_body(new_customer()))
    headers = {**keyed(), "Content-Type": "application/json"}
    assert (await api.backend().post("/v1/orders", content=content, headers=headers)).status_code == 201
    async with api.desk.ledger.engine.connect() as conn:
        [stored] = (await conn.execute(select(IdempotencyKeyRow.request_hash))).scalars().all()
    assert len(stored) == 64 and stored != hashlib.sha256(content).hexdigest()


def json_bytes(body: Json) -> bytes:
    return httpx.Request("POST", "http://x", json=body).content


async def test_the_codec_ignores_the_key_and_keeps_nothing(api: Api) -> None:
    plain = {"metadata": {"encoding": base64.b64encode(b"json/plain").decode()}, "data": "InRlc3Qi"}
    key = keyed()
    first = await api.support().post("/codec/decode", json={"payloads": [plain]}, headers=key)
    again = await api.support().post("/codec/decode", json={"payloads": [plain]}, headers=key)
    assert first.status_code == again.status_code == 200 and not replayed(again)
    assert first.json() == again.json() == {"payloads": [plain]}, "decoded each time"
    assert (await api.desk.ledger.table_counts(["idempotency_keys"]))["idempotency_keys"] == 0


async def test_the_openapi_document_declares_the_header_on_every_keyed_operation(api: Api) -> None:
    spec = (await api.client().get("/openapi.json")).json()
    declared = {
        (method, path)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if any(p["name"] == "Idempotency-Key" for p in operation.get("parameters", []))
    }
    posts = {("post", path) for path, operations in spec["paths"].items() if "post" in operations}
    assert declared == {(m, p) for m, p in posts if p.startswith("/v1/")}
    assert ("post", "/v1/orders") in declared and ("post", "/codec/decode") not in declared
