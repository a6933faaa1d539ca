"""The outbox for support: every notice's delivery, failed ones included, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ledger.notices import Notices
from starter.api.dependencies import Desk, Support
from starter.api.errors import AUTH_ERRORS, ApiError, documented
from starter.api.schemas.notices import DeliveryStatus, NoticeOut, NoticePage
from starter.api.schemas.webhooks import decode_delivery_cursor, encode_delivery_cursor

router = APIRouter(prefix="/v1/notices", tags=["notices"])


@router.get("", response_model=NoticePage, responses=documented(*AUTH_ERRORS, 422, 503))
async def list_notices(
    desk: Desk,
    _: Support,
    status: DeliveryStatus | None = None,
    complaint_id: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
) -> NoticePage:
    """Deliveries of notices (emails and webhooks), newest first: `status=failed` lists those given up on
    after `REFUND_DESK_DELIVERY_RETRY_FOR`, `complaint_id` one complaint's."""
    try:
        before = None if cursor is None else decode_delivery_cursor(cursor)
    except ValueError as err:
        raise ApiError(422, "invalid_cursor", str(err)) from None
    found = await Notices(desk.ledger.engine).deliveries(
        status=status, about=complaint_id, limit=limit + 1, before_id=before
    )
    page = found[:limit]
    return NoticePage(
        items=[NoticeOut.of(delivery) for delivery in page],
        next_cursor=encode_delivery_cursor(page[-1].delivery_id) if len(found) > limit else None,
    )
