"""Support's actions on a complaint: review (R5, R6, R8), request server access (R9), reveal the credentials
the customer granted (R9), mark the defect fixed (R11), offer a replacement (R12). Each is one update on the
complaint's workflow; a fix with `Prefer: respond-async` is a report instead (`starter.api.respond_async`)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from policy.complaint import Review, review_reason_refusal
from policy.reports import ReportedAction
from starter.api.dependencies import Desk, Support
from starter.api.errors import ON_COMPLAINT, ApiError
from starter.api.idempotency import HEADER
from starter.api.respond_async import ACCEPTED, RespondAsync, report
from starter.api.schemas.actions import AccessRequestIn, FixIn, ReplacementIn, ReviewIn
from starter.api.schemas.complaints import ComplaintId, ComplaintOut
from starter.api.schemas.support_doors import NO_STORE, RevealedCredentialsOut

router = APIRouter(prefix="/v1/complaints/{complaint_id}", tags=["support"], responses=ON_COMPLAINT)


@router.post("/review", response_model=ComplaintOut)
async def review(complaint_id: ComplaintId, body: ReviewIn, desk: Desk, principal: Support) -> ComplaintOut:
    """R8: approve the deficiency, or reject it with one of the R8 reason codes; R5/R6: approve the
    claim (a full refund) or reject it with one of its reason codes."""
    refusal = review_reason_refusal(body.decision, body.reason_code)
    if refusal is not None:
        raise refusal
    decision = Review(
        actor=principal.actor, decision=body.decision, reason_code=body.reason_code, note=body.note
    )
    return ComplaintOut.of(await desk.review(complaint_id, decision))


@router.post("/access-request", response_model=ComplaintOut)
async def request_access(
    complaint_id: ComplaintId, body: AccessRequestIn, desk: Desk, principal: Support
) -> ComplaintOut:
    """R9: ask the customer for temporary access to their server; R10 pauses the clock meanwhile."""
    state = await desk.request_access(complaint_id, principal.actor, body.scope, body.reason)
    return ComplaintOut.of(state)


@router.post("/credentials/reveal", response_model=RevealedCredentialsOut)
async def reveal_credentials(
    complaint_id: ComplaintId, request: Request, response: Response, desk: Desk, principal: Support
) -> RevealedCredentialsOut:
    """R9: the server credentials the customer granted, while the complaint is open and access granted.
    Each reveal is first recorded in the audit trail (`credentials_revealed`, with who and when), and the
    vault opened only then. The secret is in this answer alone: never cached, and an `Idempotency-Key` is
    refused (422 `idempotency_key_not_accepted`), since a kept answer would hold it in the ledger."""
    if HEADER in request.headers:
        raise ApiError(
            422,
            "idempotency_key_not_accepted",
            f"this answer holds a secret, which is never kept: send it without an {HEADER} (a reveal "
            "whose answer was lost can simply be asked again, and is recorded again)",
        )
    revealed = await desk.reveal_granted_credentials(complaint_id, principal.actor)
    response.headers["Cache-Control"] = NO_STORE
    return RevealedCredentialsOut.of(revealed)


@router.post("/fix", response_model=ComplaintOut, responses=ACCEPTED)
async def mark_fixed(
    complaint_id: ComplaintId,
    body: FixIn,
    request: Request,
    desk: Desk,
    principal: Support,
    respond_async: RespondAsync,
) -> ComplaintOut | Response:
    """R11: the defect is rectified before the deadline; the complaint ends with no refund. With `Prefer:
    respond-async` (a deployment pipeline reporting the fix), 202 at once, even while no worker runs."""
    if respond_async:
        return await report(desk, request, principal, complaint_id, ReportedAction.FIXED, note=body.note)
    return ComplaintOut.of(await desk.mark_fixed(complaint_id, principal.actor, body.note))


@router.post("/replacement", response_model=ComplaintOut)
async def offer_replacement(
    complaint_id: ComplaintId, body: ReplacementIn, desk: Desk, principal: Support
) -> ComplaintOut:
    """R12: offer another product of around the same value (within the policy's tolerance)."""
    offer = await desk.replacement_offer(complaint_id, body.sku, body.name, body.value, body.currency)
    return ComplaintOut.of(await desk.offer_replacement(complaint_id, principal.actor, offer))
