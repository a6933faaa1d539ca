"""The customer's actions on their own complaint: answer an access request (R9, R10), choose the remedy
(R12), withdraw (R14). Another customer's complaint is not found, as if it did not exist."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from starter.api.dependencies import Customer, Desk, OwnComplaintId
from starter.api.errors import ON_COMPLAINT
from starter.api.schemas.actions import AccessIn, RemedyIn, WithdrawIn
from starter.api.schemas.complaints import ComplaintOut

router = APIRouter(prefix="/v1/complaints/{complaint_id}", tags=["customer"], responses=ON_COMPLAINT)


@router.post("/access", response_model=ComplaintOut)
async def answer_access(
    complaint_id: OwnComplaintId, body: AccessIn, desk: Desk, principal: Customer
) -> ComplaintOut:
    """R9/R10: grant access with credentials (sealed before they leave the API) or refuse it."""
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


@router.post("/withdraw", response_model=ComplaintOut)
async def withdraw(
    complaint_id: OwnComplaintId,
    desk: Desk,
    principal: Customer,
    body: Annotated[WithdrawIn | None, Body()] = None,
) -> ComplaintOut:
    """R14: withdraw the complaint before it is resolved. The body is optional."""
    note = "" if body is None else body.note
    return ComplaintOut.of(await desk.withdraw(complaint_id, principal.actor, note))
