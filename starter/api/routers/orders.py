"""Orders: the backend records them; the backend and their customer read them."""

from __future__ import annotations

from fastapi import APIRouter, Response

from policy.models import Identifier
from starter.api.dependencies import Backend, BackendOrCustomer, Desk
from starter.api.errors import AUTH_ERRORS, documented
from starter.api.schemas.orders import OrderIn, OrderOut

router = APIRouter(prefix="/v1/orders", tags=["orders"])


@router.post(
    "",
    status_code=201,
    response_model=OrderOut,
    responses={
        200: {"model": OrderOut, "description": "Already recorded with this very body: nothing changed."},
        **documented(*AUTH_ERRORS, 409, 422, 503),
    },
)
async def record_order(body: OrderIn, response: Response, desk: Desk, _: Backend) -> OrderOut:
    """Record an order. Idempotent: the same body again is a 200; a different body for the id, 409."""
    order, created = await desk.record_order(body.to_order(), email=body.customer_email)
    if not created:
        response.status_code = 200
    return OrderOut.of(order)


@router.get("/{order_id}", response_model=OrderOut, responses=documented(*AUTH_ERRORS, 404, 422, 503))
async def get_order(order_id: Identifier, desk: Desk, principal: BackendOrCustomer) -> OrderOut:
    """The order with its activation and complaints; a customer sees only their own orders."""
    order = await desk.get_order(order_id, seen_by=principal.actor)
    complaints = await desk.list_complaints(order_id=order_id, limit=100)
    return OrderOut.of(order, complaints, await desk.activation_of_order(order_id))
