"""The ledger's database going away: every API route that needs it answers 503 `ledger_unavailable` at
once (never a 500, never a hang), `/healthz` says which part is down, and the API serves again by itself
once the database is back. On a real PostgreSQL cluster that the test stops and starts."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from ledger.vault import VaultKeyring
from policy.models import Role
from starter.api.app import create_app
from starter.api.settings import ApiSettings
from tests.conftest import JWT_SECRET, Api, TimeSkippingDesk, migrated_ledger, served
from tests.factories import DESCRIPTION
from tests.postgres import Cluster, stoppable_cluster
from tests.test_api import file_complaint, order_body
from worker import build_worker


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with stoppable_cluster() as running:
        yield running


@pytest.fixture
async def pg_api(env: WorkflowEnvironment, cluster: Cluster, keyring: VaultKeyring) -> AsyncIterator[Api]:
    """The API over real HTTP, its desk's ledger on the stoppable cluster."""
    name = f"ledger_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(cluster.url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    ledger = await migrated_ledger(cluster.url.rsplit("/", 1)[0] + f"/{name}")
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"
    async with build_worker(env.client, ledger, keyring, task_queue):
        desk = TimeSkippingDesk(client=env.client, ledger=ledger, keyring=keyring, task_queue=task_queue)
        async with served(create_app(desk, ApiSettings(jwt_secret=JWT_SECRET))) as base_url:
            api = Api(base_url=base_url, secret=JWT_SECRET, desk=desk)
            try:
                yield api
            finally:
                await api.close()
    await ledger.close()


def requests(complaint: dict[str, str], order_id: str) -> list[tuple[Role, str, str, object]]:
    """One request per route that reads or writes the ledger, each valid apart from the ledger being gone."""
    cid, customer_id = complaint["complaint_id"], complaint["customer_id"]
    on = f"/v1/complaints/{cid}"
    return [
        (Role.BACKEND, "POST", "/v1/orders", order_body(customer_id)),
        (Role.BACKEND, "GET", f"/v1/orders/{order_id}", None),
        (
            Role.BACKEND,
            "POST",
            "/v1/activations",
            {"order_id": order_id, "phone_number": "+447700900123", "service": "whatsapp"},
        ),
        (Role.BACKEND, "GET", f"/v1/activations/act_{order_id}", None),
        (Role.BACKEND, "POST", f"/v1/activations/act_{order_id}/cancel", None),
        (
            Role.CUSTOMER,
            "POST",
            "/v1/complaints",
            {"order_id": order_id, "kind": "major_defect", "description": DESCRIPTION},
        ),
        (Role.SUPPORT, "GET", "/v1/complaints", None),
        (Role.SUPPORT, "GET", on, None),
        (Role.SUPPORT, "POST", f"{on}/review", {"decision": "approve", "note": ""}),
        (Role.SUPPORT, "POST", f"{on}/access-request", {"scope": "ssh", "reason": "to read the logs"}),
        (Role.SUPPORT, "POST", f"{on}/fix", {"note": ""}),
        (Role.SUPPORT, "POST", f"{on}/replacement", {"sku": "x", "name": "X", "value": "50.00"}),
        (Role.CUSTOMER, "POST", f"{on}/access", {"grant": False}),
        (Role.CUSTOMER, "POST", f"{on}/remedy", {"choice": "refund"}),
        (Role.CUSTOMER, "POST", f"{on}/withdraw", None),
        (Role.CUSTOMER, "GET", f"/v1/customers/{customer_id}/balance", None),
    ]


async def test_every_route_answers_503_ledger_unavailable_and_recovers(pg_api: Api, cluster: Cluster) -> None:
    complaint = await file_complaint(pg_api)
    subs = {Role.BACKEND: "shop", Role.SUPPORT: "alice", Role.CUSTOMER: complaint["customer_id"]}
    await asyncio.to_thread(cluster.stop)
    try:
        for role, method, path, body in requests(complaint, complaint["order_id"]):
            client = pg_api.as_(role, subs[role])
            response = await client.request(method, path, json=body)
            assert response.status_code == 503, (method, path, response.text)
            assert response.json()["error"]["code"] == "ledger_unavailable", (method, path, response.text)
        health = await pg_api.client().get("/healthz")
        assert health.status_code == 503 and health.json()["ledger"] == "unavailable"
    finally:
        await asyncio.to_thread(cluster.start)
    back = await read_again(pg_api.support(), f"/v1/complaints/{complaint['complaint_id']}")
    assert back.json()["status"] == "under_review"
    assert (await pg_api.client().get("/healthz")).status_code == 200


async def read_again(client: httpx.AsyncClient, path: str, seconds: float = 20) -> httpx.Response:
    """The pool's connections died with the server; the first reads after it is back may still meet one."""
    for _ in range(int(seconds / 0.2)):
        response = await client.get(path)
        if response.status_code == 200:
            return response
        await asyncio.sleep(0.2)
    raise AssertionError(f"{path} never answered 200 again: {response.status_code} {response.text}")
