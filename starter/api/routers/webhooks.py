"""Webhook endpoints: the backend registers where the desk's events go, reads each endpoint's delivery log,
and sends a delivery again. The signing secret is in two answers only, creating and rotating, and those
two refuse an `Idempotency-Key`: a kept answer would hold the secret in the ledger in clear and show it
again."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from starter.api.dependencies import Backend, Dispatch, WebhookDesk
from starter.api.errors import AUTH_ERRORS, ApiError, documented
from starter.api.idempotency import HEADER
from starter.api.schemas.webhooks import (
    MAX_DELIVERY_ID,
    DeliveryOut,
    DeliveryPage,
    RotatedSecret,
    RotateSecretIn,
    WebhookEndpointCreated,
    WebhookEndpointIn,
    WebhookEndpointList,
    WebhookEndpointOut,
    WebhookEndpointPatch,
    decode_delivery_cursor,
    encode_delivery_cursor,
)
from starter.desk.webhooks import (
    DeliveryNotFound,
    UnknownEventType,
    WebhookEndpointNotFound,
    WebhookUrlInvalid,
    WebhookUrlLoopsBack,
)

router = APIRouter(prefix="/v1/webhook-endpoints", tags=["webhooks"])

EndpointId = Annotated[str, Path(description="As the API gave it: `we_...`.", examples=["we_" + "0" * 32])]
DeliveryId = Annotated[int, Path(ge=1, le=MAX_DELIVERY_ID, description="From the endpoint's delivery log.")]

NO_STORE = {"Cache-Control": "no-store"}
"""On the answers that carry a secret: no cache between the API and the backend keeps one."""


@contextmanager
def _answered() -> Iterator[None]:
    """The desk's webhook errors as the contract's: 404 for an unknown id, 422 for a refused value."""
    try:
        yield
    except WebhookEndpointNotFound as err:
        raise ApiError(404, "webhook_endpoint_not_found", f"no webhook endpoint {err}") from None
    except DeliveryNotFound as err:
        raise ApiError(404, "delivery_not_found", f"no delivery {err} to this endpoint") from None
    except UnknownEventType as err:
        raise ApiError(422, "unknown_event_type", f"{err}: see docs/api.md#webhooks") from None
    except WebhookUrlInvalid as err:
        raise ApiError(422, "webhook_url_invalid", str(err)) from None
    except WebhookUrlLoopsBack as err:
        raise ApiError(422, "webhook_url_loops_back", str(err)) from None


def _refuse_a_key(request: Request) -> None:
    if HEADER in request.headers:
        raise ApiError(
            422,
            "idempotency_key_not_accepted",
            f"this answer holds a secret shown once, which is never kept: send it without an {HEADER} "
            "(and read the endpoints to see whether a request whose answer was lost took effect)",
        )


def _own_urls(request: Request, settings: Dispatch) -> list[str]:
    """The addresses this API answers on: as the caller named it, as it is published, and the socket it
    listens on (which a caller's `Host` header cannot change)."""
    own = [str(request.base_url), settings.public_url]
    server = request.scope.get("server")
    if server and server[1]:
        host = f"[{server[0]}]" if ":" in server[0] else server[0]
        own.append(f"http://{host}:{server[1]}")
    return own


@router.post(
    "",
    status_code=201,
    response_model=WebhookEndpointCreated,
    responses=documented(*AUTH_ERRORS, 422, 503),
)
async def create_webhook_endpoint(
    body: WebhookEndpointIn,
    request: Request,
    response: Response,
    webhooks: WebhookDesk,
    settings: Dispatch,
    _: Backend,
) -> WebhookEndpointCreated:
    """Register an endpoint, enabled, for the event types given (`*`: all). The answer holds its signing
    secret, which is shown this once; an `Idempotency-Key` is refused here (422
    `idempotency_key_not_accepted`)."""
    _refuse_a_key(request)
    with _answered():
        endpoint, secret = await webhooks.create_webhook_endpoint(
            body.url, body.event_types, body.description, own_urls=_own_urls(request, settings)
        )
    response.headers.update(NO_STORE)
    return WebhookEndpointCreated.made(endpoint, secret)


@router.get("", response_model=WebhookEndpointList, responses=documented(*AUTH_ERRORS, 503))
async def list_webhook_endpoints(webhooks: WebhookDesk, _: Backend) -> WebhookEndpointList:
    """Every endpoint, oldest first, without secrets."""
    return WebhookEndpointList(items=[WebhookEndpointOut.of(e) for e in await webhooks.webhook_endpoints()])


@router.get(
    "/{endpoint_id}", response_model=WebhookEndpointOut, responses=documented(*AUTH_ERRORS, 404, 422, 503)
)
async def get_webhook_endpoint(
    endpoint_id: EndpointId, webhooks: WebhookDesk, _: Backend
) -> WebhookEndpointOut:
    with _answered():
        return WebhookEndpointOut.of(await webhooks.webhook_endpoint(endpoint_id))


@router.patch(
    "/{endpoint_id}", response_model=WebhookEndpointOut, responses=documented(*AUTH_ERRORS, 404, 422, 503)
)
async def update_webhook_endpoint(
    endpoint_id: EndpointId, body: WebhookEndpointPatch, webhooks: WebhookDesk, _: Backend
) -> WebhookEndpointOut:
    """Enable or disable the endpoint, or change its event types; what the body leaves out stays."""
    with _answered():
        endpoint = await webhooks.update_webhook_endpoint(
            endpoint_id, enabled=body.enabled, event_types=body.event_types
        )
    return WebhookEndpointOut.of(endpoint)


@router.post(
    "/{endpoint_id}/rotate-secret",
    response_model=RotatedSecret,
    responses=documented(*AUTH_ERRORS, 404, 422, 503),
)
async def rotate_webhook_secret(
    endpoint_id: EndpointId,
    request: Request,
    response: Response,
    webhooks: WebhookDesk,
    _: Backend,
    body: RotateSecretIn | None = None,
) -> RotatedSecret:
    """A new signing secret, shown this once. The one it replaces still signs, beside it, for
    `overlap_seconds` (a day unless given); an `Idempotency-Key` is refused here, as on creation."""
    _refuse_a_key(request)
    overlap = timedelta(seconds=(body or RotateSecretIn()).overlap_seconds)
    with _answered():
        endpoint, secret = await webhooks.rotate_webhook_secret(endpoint_id, overlap)
    response.headers.update(NO_STORE)
    return RotatedSecret(
        endpoint_id=endpoint.endpoint_id,
        secret=secret,
        previous_secret_expires_at=endpoint.previous_secret_expires_at,
    )


@router.delete(
    "/{endpoint_id}",
    status_code=204,
    response_class=Response,
    responses=documented(*AUTH_ERRORS, 404, 422, 503),
)
async def delete_webhook_endpoint(endpoint_id: EndpointId, webhooks: WebhookDesk, _: Backend) -> Response:
    """Delete the endpoint and its secrets; deliveries still pending to it are not sent."""
    with _answered():
        await webhooks.delete_webhook_endpoint(endpoint_id)
    return Response(status_code=204)


@router.get(
    "/{endpoint_id}/deliveries",
    response_model=DeliveryPage,
    responses=documented(*AUTH_ERRORS, 404, 422, 503),
)
async def list_webhook_deliveries(
    endpoint_id: EndpointId,
    webhooks: WebhookDesk,
    _: Backend,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
) -> DeliveryPage:
    """The endpoint's delivery log, newest first: each delivery's event and every attempt at it."""
    try:
        before = None if cursor is None else decode_delivery_cursor(cursor)
    except ValueError as err:
        raise ApiError(422, "invalid_cursor", str(err)) from None
    with _answered():
        found = await webhooks.webhook_deliveries(endpoint_id, limit=limit + 1, before_id=before)
    page = found[:limit]
    more = len(found) > limit
    return DeliveryPage(
        items=[DeliveryOut.of(delivery) for delivery in page],
        next_cursor=encode_delivery_cursor(page[-1].delivery_id) if more else None,
    )


@router.post(
    "/{endpoint_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=DeliveryOut,
    responses=documented(*AUTH_ERRORS, 404, 422, 503),
)
async def redeliver_webhook(
    endpoint_id: EndpointId, delivery_id: DeliveryId, webhooks: WebhookDesk, settings: Dispatch, _: Backend
) -> DeliveryOut:
    """Send a delivery again, whatever became of it: pending, due now, retried for
    `REFUND_DESK_DELIVERY_RETRY_FOR`, with the same `webhook-id` (a receiver that has it drops it)."""
    with _answered():
        delivery = await webhooks.redeliver_webhook(
            endpoint_id, delivery_id, retry_for=settings.delivery_retry_for
        )
    return DeliveryOut.of(delivery)
