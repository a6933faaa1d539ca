"""Idempotency keys (docs/api.md "Idempotency"): the store on SQLite and PostgreSQL, then the API over real
HTTP, where a retry with the same key gets the first response back and runs nothing again.

The store's clock is a test's own, so time to live and leases pass without waiting.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import Connection, inspect, select

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
from tests.test_ledger import schema_diff

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


async def test_keys_are_per_caller(any_ledger: Ledger) -> None:
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
