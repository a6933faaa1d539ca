"""Complaints: filed by the backend or the customer, listed and read by all three roles (a customer: only
their own); their evidence opened by support and by the customer who filed it (R6)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from policy.models import ComplaintKind, ComplaintStatus, Identifier, Role
from starter.api.auth import Principal, allow
from starter.api.dependencies import Anyone, AnyoneOrLink, BackendOrCustomer, Desk
from starter.api.errors import AUTH_ERRORS, ApiError, documented
from starter.api.schemas.complaints import (
    ComplaintId,
    ComplaintIn,
    ComplaintOut,
    ComplaintPage,
    ComplaintSummary,
    decode_cursor,
    encode_cursor,
)
from starter.api.schemas.support_doors import EVIDENCE_FILE, NO_STORE, EvidenceRef, attachment
from starter.telemetry.log_context import bind_complaint

router = APIRouter(prefix="/v1/complaints", tags=["complaints"])

SupportOrCustomer = Annotated[Principal, Depends(allow(Role.SUPPORT, Role.CUSTOMER))]


@router.post(
    "",
    status_code=201,
    response_model=ComplaintOut,
    responses=documented(*AUTH_ERRORS, 404, 409, 422, 503),
)
async def file_complaint(body: ComplaintIn, desk: Desk, principal: BackendOrCustomer) -> ComplaintOut:
    """File a complaint about an order (a customer: only their own) after the intake rules (R3-R6,
    R15) and start its workflow. A refusal stores nothing, not even the evidence."""
    evidence = [e.to_file() for e in body.evidence]
    state = await desk.file_complaint(body.order_id, body.kind, body.description, principal.actor, evidence)
    bind_complaint(state.complaint_id)  # the request's access line names the complaint it filed
    return ComplaintOut.of(state)


@router.get("", response_model=ComplaintPage, responses=documented(*AUTH_ERRORS, 422, 503))
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
        status=status, kind=kind, customer_id=customer_id, order_id=order_id, limit=limit + 1, after=after
    )
    page = found[:limit]
    more = len(found) > limit
    return ComplaintPage(
        items=[ComplaintSummary.of(state) for state in page],
        next_cursor=encode_cursor(page[-1]) if more else None,
    )


@router.get("/{complaint_id}", response_model=ComplaintOut, responses=documented(*AUTH_ERRORS, 404, 503))
async def get_complaint(complaint_id: ComplaintId, desk: Desk, principal: AnyoneOrLink) -> ComplaintOut:
    """The complaint as it stands, with its events; a customer sees only their own. The link in a
    customer's email opens it with its token in the query string (`?token=`)."""
    return ComplaintOut.of(await desk.get_for(complaint_id, principal.actor))


@router.get(
    "/{complaint_id}/evidence/{ref}",
    response_class=Response,
    responses={**EVIDENCE_FILE, **documented(*AUTH_ERRORS, 404, 409, 503)},
)
async def open_evidence(
    complaint_id: ComplaintId, ref: EvidenceRef, desk: Desk, principal: SupportOrCustomer
) -> Response:
    """R6: an evidence file's bytes, for support and for the customer who filed the complaint (another
    customer: 404). Served only as filed, its bytes checked against the SHA-256 recorded then (409
    `evidence_damaged` otherwise, and nothing is served), always as a download, never sniffed or cached."""
    found = await desk.open_evidence(complaint_id, ref, principal.actor)
    headers = {
        "Content-Disposition": attachment(found.name),
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": NO_STORE,
    }
    return Response(found.data, media_type=found.content_type, headers=headers)
