"""The HTTP API of API.md: a thin FastAPI layer over `starter.client.ComplaintDesk`.

Each route checks who is calling, translates the body into the policy's models, makes one desk call and
translates the result back. Every complaint action is a Temporal update, so what a route returns is the
complaint as the workflow holds it right after the action, and a refused action changes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated

from fastapi import Body, Depends, FastAPI, Query, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

from policy.complaint import Review, review_reason_refusal
from policy.models import (
    ComplaintKind,
    ComplaintStatus,
    Identifier,
    Role,
)
from starter import codec_api
from starter.auth import Principal, allow
from starter.client import ComplaintDesk, open_desk
from starter.errors import ApiError, documented, install
from starter.schemas import (
    AccessIn,
    AccessRequestIn,
    ActivationId,
    ActivationIn,
    ActivationOut,
    BalanceOut,
    ComplaintId,
    ComplaintIn,
    ComplaintOut,
    ComplaintPage,
    ComplaintSummary,
    FixIn,
    Health,
    OrderIn,
    OrderOut,
    RemedyIn,
    ReplacementIn,
    ReviewIn,
    SmsIn,
    WithdrawIn,
    decode_cursor,
    encode_cursor,
)
from starter.settings import ApiSettings

HEALTH_TIMEOUT = timedelta(seconds=3)

Backend = Annotated[Principal, Depends(allow(Role.BACKEND))]
Support = Annotated[Principal, Depends(allow(Role.SUPPORT))]
Customer = Annotated[Principal, Depends(allow(Role.CUSTOMER))]
BackendOrCustomer = Annotated[Principal, Depends(allow(Role.BACKEND, Role.CUSTOMER))]
Anyone = Annotated[Principal, Depends(allow(Role.BACKEND, Role.SUPPORT, Role.CUSTOMER))]


def _desk(request: Request) -> ComplaintDesk:
    desk: ComplaintDesk = request.app.state.desk
    return desk


Desk = Annotated[ComplaintDesk, Depends(_desk)]

AUTH_ERRORS = (401, 403)
ON_COMPLAINT = documented(*AUTH_ERRORS, 404, 409, 422, 503)
ORDER_RESPONSES = {
    200: {"model": OrderOut, "description": "Already recorded with this very body: nothing changed."},
    **documented(*AUTH_ERRORS, 409, 422),
}


def create_app(desk: ComplaintDesk | None = None, settings: ApiSettings | None = None) -> FastAPI:
    """The API over `desk`, or over one opened from the environment for the app's lifetime."""
    settings = settings or ApiSettings()
    jwt_secret = settings.secret()  # fail at start, not at the first request

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if desk is not None:
            app.state.desk = desk
            yield
            return
        async with open_desk() as opened:
            app.state.desk = opened
            yield

    app = FastAPI(
        title="Refund Desk",
        version="1",
        summary="A shop's return policy run as Temporal workflows: orders, complaints, refunds.",
        lifespan=lifespan,
    )
    app.state.jwt_secret = jwt_secret
    app.state.currency = settings.currency
    install(app)
    _routes(app)
    app.include_router(codec_api.router)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.codec_origins(),
        allow_methods=["POST"],
        allow_headers=["Authorization", "Content-Type", "X-Namespace"],
    )
    return app


def _routes(app: FastAPI) -> None:
    # ------------------------------------------------------------------------------------------ orders

    @app.post(
        "/v1/orders",
        status_code=201,
        response_model=OrderOut,
        tags=["orders"],
        responses=ORDER_RESPONSES,
    )
    async def record_order(body: OrderIn, response: Response, desk: Desk, _: Backend) -> OrderOut:
        """Record an order. Idempotent: the same body again is a 200; a different body for the id, 409."""
        order, created = await desk.record_order(body.to_order())
        if not created:
            response.status_code = 200
        return OrderOut.of(order)

    @app.get(
        "/v1/orders/{order_id}",
        response_model=OrderOut,
        tags=["orders"],
        responses=documented(*AUTH_ERRORS, 404, 422),
    )
    async def get_order(order_id: Identifier, desk: Desk, principal: BackendOrCustomer) -> OrderOut:
        """The order with its activation and complaints; a customer sees only their own orders."""
        order = await desk.get_order(order_id, seen_by=principal.actor)
        complaints = await desk.list_complaints(order_id=order_id, limit=100)
        return OrderOut.of(order, complaints, await desk.activation_of_order(order_id))

    # ------------------------------------------------------------------------------------- activations

    @app.post(
        "/v1/activations",
        status_code=201,
        response_model=ActivationOut,
        tags=["activations"],
        responses={
            200: {
                "model": ActivationOut,
                "description": "Already started with this number: nothing changed.",
            },
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

    @app.get(
        "/v1/activations/{activation_id}",
        response_model=ActivationOut,
        tags=["activations"],
        responses=documented(*AUTH_ERRORS, 404, 503),
    )
    async def get_activation(
        activation_id: ActivationId, desk: Desk, principal: BackendOrCustomer
    ) -> ActivationOut:
        """The activation as it stands; a customer sees only their own."""
        return ActivationOut.of(await desk.get_activation(activation_id, principal.actor))

    @app.post(
        "/v1/activations/{activation_id}/sms",
        response_model=ActivationOut,
        tags=["activations"],
        responses=documented(*AUTH_ERRORS, 404, 409, 422, 503),
    )
    async def receive_sms(
        activation_id: ActivationId, body: SmsIn, desk: Desk, principal: Backend
    ) -> ActivationOut:
        """R1: the SMS came; the activation is completed and no longer refundable. The same SMS again is
        answered as it stands; an SMS after the cancel is refused (409 `invalid_state`)."""
        return ActivationOut.of(await desk.receive_sms(activation_id, principal.actor, body.text))

    @app.post(
        "/v1/activations/{activation_id}/cancel",
        response_model=ActivationOut,
        tags=["activations"],
        responses=documented(*AUTH_ERRORS, 404, 409, 503),
    )
    async def cancel_activation(
        activation_id: ActivationId, desk: Desk, principal: BackendOrCustomer
    ) -> ActivationOut:
        """R2: cancel before the SMS came; the full price goes back to the balance, once. After the SMS,
        409 `invalid_state` (R1)."""
        return ActivationOut.of(await desk.cancel_activation(activation_id, principal.actor))

    # -------------------------------------------------------------------------------------- complaints

    @app.post(
        "/v1/complaints",
        status_code=201,
        response_model=ComplaintOut,
        tags=["complaints"],
        responses=documented(*AUTH_ERRORS, 404, 409, 422, 503),
    )
    async def file_complaint(body: ComplaintIn, desk: Desk, principal: BackendOrCustomer) -> ComplaintOut:
        """File a complaint about an order (a customer: only their own) after the intake rules (R3-R6,
        R15) and start its workflow. A refusal stores nothing, not even the evidence."""
        evidence = [e.to_file() for e in body.evidence]
        state = await desk.file_complaint(
            body.order_id, body.kind, body.description, principal.actor, evidence
        )
        return ComplaintOut.of(state)

    @app.get(
        "/v1/complaints",
        response_model=ComplaintPage,
        tags=["complaints"],
        responses=documented(*AUTH_ERRORS, 422),
    )
    async def list_complaints(
        desk: Desk,
        principal: Anyone,
        status: ComplaintStatus | None = None,
        kind: ComplaintKind | None = None,
        customer_id: Identifier | None = None,
        order_id: Identifier | None = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 50,
        cursor: Annotated[str | None, Query(max_length=500)] = None,
    ) -> ComplaintPage:
        """Newest first, from the ledger's projection. A customer sees only their own complaints."""
        if principal.role is Role.CUSTOMER:
            if customer_id not in (None, principal.sub):
                return ComplaintPage(items=[], next_cursor=None)
            customer_id = principal.sub
        try:
            after = None if cursor is None else decode_cursor(cursor)
        except ValueError as err:
            raise ApiError(422, "invalid_cursor", str(err)) from None
        found = await desk.list_complaints(
            status=status,
            kind=kind,
            customer_id=customer_id,
            order_id=order_id,
            limit=limit + 1,
            after=after,
        )
        page = found[:limit]
        more = len(found) > limit
        return ComplaintPage(
            items=[ComplaintSummary.of(state) for state in page],
            next_cursor=encode_cursor(page[-1]) if more else None,
        )

    @app.get(
        "/v1/complaints/{complaint_id}",
        response_model=ComplaintOut,
        tags=["complaints"],
        responses=documented(*AUTH_ERRORS, 404, 503),
    )
    async def get_complaint(complaint_id: ComplaintId, desk: Desk, principal: Anyone) -> ComplaintOut:
        """The complaint as it stands, with its events; a customer sees only their own."""
        return ComplaintOut.of(await desk.get_for(complaint_id, principal.actor))

    # ------------------------------------------------------------------------------- support's actions

    @app.post(
        "/v1/complaints/{complaint_id}/review",
        response_model=ComplaintOut,
        tags=["support"],
        responses=ON_COMPLAINT,
    )
    async def review(
        complaint_id: ComplaintId, body: ReviewIn, desk: Desk, principal: Support
    ) -> ComplaintOut:
        """R8: approve the deficiency, or reject it with one of the R8 reason codes; R5/R6: approve the
        claim (a full refund) or reject it with one of its reason codes."""
        refusal = review_reason_refusal(body.decision, body.reason_code)
        if refusal is not None:
            raise refusal
        decision = Review(
            actor=principal.actor, decision=body.decision, reason_code=body.reason_code, note=body.note
        )
        return ComplaintOut.of(await desk.review(complaint_id, decision))

    @app.post(
        "/v1/complaints/{complaint_id}/access-request",
        response_model=ComplaintOut,
        tags=["support"],
        responses=ON_COMPLAINT,
    )
    async def request_access(
        complaint_id: ComplaintId, body: AccessRequestIn, desk: Desk, principal: Support
    ) -> ComplaintOut:
        """R9: ask the customer for temporary access to their server; R10 pauses the clock meanwhile."""
        state = await desk.request_access(complaint_id, principal.actor, body.scope, body.reason)
        return ComplaintOut.of(state)

    @app.post(
        "/v1/complaints/{complaint_id}/fix",
        response_model=ComplaintOut,
        tags=["support"],
        responses=ON_COMPLAINT,
    )
    async def mark_fixed(
        complaint_id: ComplaintId, body: FixIn, desk: Desk, principal: Support
    ) -> ComplaintOut:
        """R11: the defect is rectified before the deadline; the complaint ends with no refund."""
        return ComplaintOut.of(await desk.mark_fixed(complaint_id, principal.actor, body.note))

    @app.post(
        "/v1/complaints/{complaint_id}/replacement",
        response_model=ComplaintOut,
        tags=["support"],
        responses=ON_COMPLAINT,
    )
    async def offer_replacement(
        complaint_id: ComplaintId, body: ReplacementIn, desk: Desk, principal: Support
    ) -> ComplaintOut:
        """R12: offer another product of around the same value (within the policy's tolerance)."""
        offer = await desk.replacement_offer(complaint_id, body.sku, body.name, body.value, body.currency)
        return ComplaintOut.of(await desk.offer_replacement(complaint_id, principal.actor, offer))

    # ------------------------------------------------------------------------------ customer's actions

    @app.post(
        "/v1/complaints/{complaint_id}/access",
        response_model=ComplaintOut,
        tags=["customer"],
        responses=ON_COMPLAINT,
    )
    async def answer_access(
        complaint_id: ComplaintId, body: AccessIn, desk: Desk, principal: Customer
    ) -> ComplaintOut:
        """R9/R10: grant access with credentials (sealed before they leave the API) or refuse it."""
        await desk.ensure_visible(complaint_id, principal.actor)  # another's is not found, not forbidden
        if body.credentials is not None:
            state = await desk.grant_access(complaint_id, principal.actor, body.credentials)
        else:
            state = await desk.refuse_access(complaint_id, principal.actor)
        return ComplaintOut.of(state)

    @app.post(
        "/v1/complaints/{complaint_id}/remedy",
        response_model=ComplaintOut,
        tags=["customer"],
        responses=ON_COMPLAINT,
    )
    async def choose_remedy(
        complaint_id: ComplaintId, body: RemedyIn, desk: Desk, principal: Customer
    ) -> ComplaintOut:
        """R12: refund or replacement, any time until the remedy is issued."""
        await desk.ensure_visible(complaint_id, principal.actor)  # another's is not found, not forbidden
        return ComplaintOut.of(await desk.choose_remedy(complaint_id, principal.actor, body.choice))

    @app.post(
        "/v1/complaints/{complaint_id}/withdraw",
        response_model=ComplaintOut,
        tags=["customer"],
        responses=ON_COMPLAINT,
    )
    async def withdraw(
        complaint_id: ComplaintId,
        desk: Desk,
        principal: Customer,
        body: Annotated[WithdrawIn | None, Body()] = None,
    ) -> ComplaintOut:
        """R14: withdraw the complaint before it is resolved. The body is optional."""
        await desk.ensure_visible(complaint_id, principal.actor)  # another's is not found, not forbidden
        note = "" if body is None else body.note
        return ComplaintOut.of(await desk.withdraw(complaint_id, principal.actor, note))

    # ----------------------------------------------------------------------------------------- balance

    @app.get(
        "/v1/customers/{customer_id}/balance",
        response_model=BalanceOut,
        tags=["orders"],
        responses=documented(*AUTH_ERRORS, 404, 422),
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

    # ------------------------------------------------------------------------------------------ health

    @app.get(
        "/healthz",
        response_model=Health,
        tags=["health"],
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
