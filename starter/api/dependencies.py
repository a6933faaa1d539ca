"""What routes depend on: the desk, who is calling (by role), and whether a customer may see what they ask
for. Role checks answer 401/403 before a route runs; ownership answers 404, the same as for an id that
does not exist, so a customer cannot learn that another customer's complaint is there."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from policy.models import Role
from starter.api.auth import Principal, allow
from starter.api.schemas.complaints import ComplaintId
from starter.desk import ComplaintDesk


def _desk(request: Request) -> ComplaintDesk:
    desk: ComplaintDesk = request.app.state.desk
    return desk


Desk = Annotated[ComplaintDesk, Depends(_desk)]

Backend = Annotated[Principal, Depends(allow(Role.BACKEND))]
Support = Annotated[Principal, Depends(allow(Role.SUPPORT))]
Customer = Annotated[Principal, Depends(allow(Role.CUSTOMER))]
BackendOrCustomer = Annotated[Principal, Depends(allow(Role.BACKEND, Role.CUSTOMER))]
Anyone = Annotated[Principal, Depends(allow(Role.BACKEND, Role.SUPPORT, Role.CUSTOMER))]


async def _customers_own_complaint(complaint_id: ComplaintId, desk: Desk, principal: Customer) -> str:
    """The complaint id, once the calling customer is known to have filed it (else 404 as for no such id)."""
    await desk.ensure_visible(complaint_id, principal.actor)
    return complaint_id


OwnComplaintId = Annotated[str, Depends(_customers_own_complaint)]
"""A complaint id in the path that belongs to the calling customer."""
