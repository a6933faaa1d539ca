"""A rented number's activation (R1, R2): the backend starts it and reports its SMS; the backend or the
customer cancels it."""

from __future__ import annotations

from fastapi import APIRouter, Response

from starter.api.dependencies import Backend, BackendOrCustomer, Desk
from starter.api.errors import AUTH_ERRORS, documented
from starter.api.schemas.activations import ActivationId, ActivationIn, ActivationOut, SmsIn

router = APIRouter(prefix="/v1/activations", tags=["activations"])


@router.post(
    "",
    status_code=201,
    response_model=ActivationOut,
    responses={
        200: {"model": ActivationOut, "description": "Already started with this number: nothing changed."},
        **documented(*AUTH_ERRORS, 404, 409, 422, 503),
    },
)
async def start_activation(
    body: ActivationIn, response: Response, desk: Desk, principal: Backend
) -> ActivationOut:
    """Rent the order's number: it waits `sms_wait` for its SMS (R1), else is canceled and refunded
    (R2). Idempotent per order: the same number again is a 200; another number, 409."""
    state, created = await desk.start_activation(
        body.order_id, body.phone_number, body.service, principal.actor
    )
    if not created:
        response.status_code = 200
    return ActivationOut.of(state)


@router.get("/{activation_id}", response_model=ActivationOut, responses=documented(*AUTH_ERRORS, 404, 503))
async def get_activation(
    activation_id: ActivationId, desk: Desk, principal: BackendOrCustomer
) -> ActivationOut:
    """The activation as it stands; a customer sees only their own."""
    return ActivationOut.of(await desk.get_activation(activation_id, principal.actor))


@router.post(
    "/{activation_id}/sms",
    response_model=ActivationOut,
    responses=documented(*AUTH_ERRORS, 404, 409, 422, 503),
)
async def receive_sms(
    activation_id: ActivationId, body: SmsIn, desk: Desk, principal: Backend
) -> ActivationOut:
    """R1: the SMS came; the activation is completed and no longer refundable. The same SMS again is
    answered as it stands; an SMS after the cancel is refused (409 `invalid_state`)."""
    return ActivationOut.of(await desk.receive_sms(activation_id, principal.actor, body.text))


@router.post(
    "/{activation_id}/cancel",
    response_model=ActivationOut,
    responses=documented(*AUTH_ERRORS, 404, 409, 503),
)
async def cancel_activation(
    activation_id: ActivationId, desk: Desk, principal: BackendOrCustomer
) -> ActivationOut:
    """R2: cancel before the SMS came; the full price goes back to the balance, once. After the SMS,
    409 `invalid_state` (R1)."""
    return ActivationOut.of(await desk.cancel_activation(activation_id, principal.actor))
