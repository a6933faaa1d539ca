"""`/healthz`: whether the API, the ledger and Temporal all answer."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from fastapi import APIRouter, Response
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

from starter.api.dependencies import Desk
from starter.api.schemas.common import Health

HEALTH_TIMEOUT = timedelta(seconds=3)

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": Health, "description": "The ledger or Temporal does not answer."}},
)
async def healthz(desk: Desk, response: Response) -> Health:
    """200 when the API, the ledger and Temporal all answer."""

    async def check_ledger() -> str:
        await asyncio.wait_for(desk.ledger.ping(), HEALTH_TIMEOUT.total_seconds())
        return "ok"

    async def check_temporal() -> str:
        await desk.client.workflow_service.get_system_info(GetSystemInfoRequest(), timeout=HEALTH_TIMEOUT)
        return "ok"

    ledger, temporal = await asyncio.gather(check_ledger(), check_temporal(), return_exceptions=True)
    health = Health(
        status="ok" if ledger == temporal == "ok" else "unavailable",
        ledger=ledger if isinstance(ledger, str) else "unavailable",
        temporal=temporal if isinstance(temporal, str) else "unavailable",
    )
    if health.status != "ok":
        response.status_code = 503
    return health
