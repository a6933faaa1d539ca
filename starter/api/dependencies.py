"""What routes depend on: the desk, who is calling (by role), and whether a customer may see what they ask
for. Role checks answer 401/403 before a route runs; ownership answers 404, the same as for an id that
does not exist, so a customer cannot learn that another customer's complaint is there.

Every dependency is `async def`, even those that only read the app's state: FastAPI runs a plain `def`
dependency in its thread pool, a thread hop on every request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from dispatch.settings import DispatchSettings
from policy.models import Role
from starter.api.auth import Principal, allow
from starter.api.schemas.complaints import ComplaintId
from starter.desk import ComplaintDesk
from starter.desk.webhooks import Webhooks


async def _desk(request: Request) -> ComplaintDesk:
    desk: ComplaintDesk = request.app.state.desk
    return desk


Desk = Annotated[ComplaintDesk, Depends(_desk)]

Backend = Annotated[Principal, Depends(allow(Role.BACKEND))]
Support = Annotated[Principal, Depends(allow(Role.SUPPORT))]
Customer = Annotated[Principal, Depends(allow(Role.CUSTOMER))]
BackendOrCustomer = Annotated[Principal, Depends(allow(Role.BACKEND, Role.CUSTOMER))]
Anyone = Annotated[Principal, Depends(allow(Role.BACKEND, Role.SUPPORT, Role.CUSTOMER))]
AnyoneOrLink = Annotated[Principal, Depends(allow(Role.BACKEND, Role.SUPPORT, Role.CUSTOMER, by_link=True))]
"""`Anyone`, or a customer's link opened from an email, its token in `?token=` (`starter.api.auth`)."""


async def _customers_own_complaint(complaint_id: ComplaintId, desk: Desk, principal: Customer) -> str:
    """The complaint id, once the calling customer is known to have filed it (else 404 as for no such id)."""
    await desk.ensure_visible(complaint_id, principal.actor)
    return complaint_id


OwnComplaintId = Annotated[str, Depends(_customers_own_complaint)]
"""A complaint id in the path that belongs to the calling customer."""


async def _webhooks(request: Request) -> Webhooks:
    """The desk's webhook calls: the desk itself once it composes `Webhooks`, else one made once per app
    over the desk's ledger and keyring (it needs nothing else)."""
    desk: ComplaintDesk = request.app.state.desk
    if isinstance(desk, Webhooks):
        return desk
    made: Webhooks | None = getattr(request.app.state, "webhooks", None)
    if made is None or made.ledger is not desk.ledger or made.keyring is not desk.keyring:
        made = Webhooks(client=desk.client, ledger=desk.ledger, keyring=desk.keyring)
        request.app.state.webhooks = made
    return made


WebhookDesk = Annotated[Webhooks, Depends(_webhooks)]


async def _dispatch_settings(request: Request) -> DispatchSettings:
    """The dispatcher's settings (the API's public URL, how long a redelivery is retried), read from the
    environment once per app."""
    settings: DispatchSettings | None = getattr(request.app.state, "dispatch_settings", None)
    if settings is None:
        settings = DispatchSettings()
        request.app.state.dispatch_settings = settings
    return settings


Dispatch = Annotated[DispatchSettings, Depends(_dispatch_settings)]
