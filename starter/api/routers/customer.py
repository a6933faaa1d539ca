"""The customer's actions on their own complaint: answer an access request (R9, R10), choose the remedy
(R12), withdraw (R14). Another customer's complaint is not found, as if it did not exist. An access answer
or a withdrawal with `Prefer: respond-async` is a report instead (`starter.api.respond_async`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request, Response

from policy.reports import ReportedAction
from starter.api.dependencies import Customer, Desk, OwnComplaintId
from starter.api.errors import ON_COMPLAINT
from starter.api.respond_async import ACCEPTED, RespondAsync, report
from starter.api.schemas.actions import AccessIn, RemedyIn, WithdrawIn
from starter.api.schemas.complaints import ComplaintOut

router = APIRouter(prefix="/v1/complaints/{complaint_id}", tags=["customer"], responses=ON_COMPLAINT)


@router.post("/access", response_model=ComplaintOut, responses=ACCEPTED)
async def answer_access(
    complaint_id: OwnComplaintId,
    body: AccessIn,
    request: Request,
    desk: Desk,
    principal: Customer,
    respond_async: RespondAsync,
) -> ComplaintOut | Response:
    """R9/R10: grant access with credentials (sealed before they leave the API) or refuse it. With `Prefer:
    respond-async` (a hosting panel reporting the decision), 202 at once, even while no worker runs."""
    if respond_async:
        action = ReportedAction.ACCESS_GRANTED if body.grant else ReportedAction.ACCESS_REFUSED
        return await report(desk, request, principal, complaint_id, action, credentials=body.credentials)
    if body.credentials is not None:
        state = await desk.grant_access(complaint_id, principal.actor, body.credentials)
    else:
        state = await desk.refuse_access(complaint_id, principal.actor)
    return ComplaintOut.of(state)


@router.post("/remedy", response_model=ComplaintOut)
async def choose_remedy(
    complaint_id: OwnComplaintId, body: RemedyIn, desk: Desk, principal: Customer
) -> ComplaintOut:
    """R12: refund or replacement, any time until the remedy is issued."""
    return ComplaintOut.of(await desk.choose_remedy(complaint_id, principal.actor, body.choice))


@router.post("/withdraw", response_model=ComplaintOut, responses=ACCEPTED)
async def withdraw(
    complaint_id: OwnComplaintId,
    request: Request,
    desk: Desk,
    principal: Customer,
    respond_async: RespondAsync,
    body: Annotated[WithdrawIn | None, Body()] = None,
) -> ComplaintOut | Response:
    """R14: withdraw the complaint before it is resolved. The body is optional. With `Prefer:
    respond-async`, 202 at once, even while no worker runs."""
    note = "" if body is None else body.note
    if respond_async:
        return await report(desk, request, principal, complaint_id, ReportedAction.WITHDRAWN, note=note)
    return ComplaintOut.of(await desk.withdraw(complaint_id, principal.actor, note))
