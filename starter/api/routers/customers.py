"""A customer's balance: what the ledger credited them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from policy.models import Identifier, Role
from starter.api.dependencies import BackendOrCustomer, Desk
from starter.api.errors import AUTH_ERRORS, ApiError, documented
from starter.api.schemas.balance import BalanceOut

router = APIRouter(prefix="/v1/customers", tags=["orders"])


@router.get(
    "/{customer_id}/balance", response_model=BalanceOut, responses=documented(*AUTH_ERRORS, 404, 422, 503)
)
async def balance(
    customer_id: Identifier,
    request: Request,
    desk: Desk,
    principal: BackendOrCustomer,
    currency: Annotated[str | None, Query(pattern=r"^[A-Z]{3}$")] = None,
) -> BalanceOut:
    """What the ledger holds for the customer: refunds credited (R2, R5, R6, R12), oldest first."""
    if principal.role is Role.CUSTOMER and principal.sub != customer_id:
        raise ApiError(404, "customer_not_found", f"no customer {customer_id}")
    found = await desk.balance(customer_id)
    return BalanceOut.of(found, currency, request.app.state.currency)
