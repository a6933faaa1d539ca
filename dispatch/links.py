"""The link in a customer's email: `{public_url}/my/complaints/{complaint_id}?token=<jwt>`.

Opening it shows the customer's page of the complaint (`starter.web.customer_page`), where they answer what
the policy asks of them. The API takes the same token on `GET /v1/complaints/{complaint_id}?token=`, and as
`Authorization: Bearer` for the customer's actions on it (`.../access`, `.../remedy`, `.../withdraw`). The
token is an ordinary customer token of the API (`starter.api.auth`: HS256, `sub`, `role`, `iat`, `exp`,
`iss`, `aud`) with one more claim, `cid`, the complaint, which restricts it to that complaint: the API
answers 403 `token_scope` anywhere else, and the page shows that complaint alone. So an email forwarded by
mistake, or a link read over a shoulder, opens one complaint and nothing else of the customer's. It lives
`link_lifetime` (`REFUND_DESK_LINK_LIFETIME`, 7 days), since emails are read late, and the API refuses a
link token living longer (docs/api.md "Links in customers' emails").
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import quote

from policy.models import Role
from starter.api.auth import LINK_QUERY, mint_token

CUSTOMER_PAGES = "/my/complaints"
"""Where a customer's complaint page lives (`starter.web.customer_page`)."""


def link_token(
    *,
    secret: str,
    complaint_id: str,
    customer_id: str,
    lifetime: timedelta,
    now: datetime,
    issuer: str,
    audience: str,
) -> str:
    """The signed token of a link: customer `customer_id`, restricted to `complaint_id`, issued at `now`
    (whole seconds, as JWTs count) and living `lifetime`."""
    if now.tzinfo is None:
        raise ValueError("now must carry a zone")
    if lifetime <= timedelta(0):
        raise ValueError("a link's lifetime must be longer than zero")
    return mint_token(
        secret,
        Role.CUSTOMER,
        customer_id,
        lifetime,
        issuer=issuer,
        audience=audience,
        now=now,
        complaint_id=complaint_id,
    )


def customer_link(
    *,
    public_url: str,
    secret: str,
    complaint_id: str,
    customer_id: str,
    lifetime: timedelta,
    now: datetime,
    issuer: str,
    audience: str,
) -> str:
    """`{public_url}/my/complaints/{complaint_id}?token=<jwt>`: the complaint's page, for its customer,
    from the email. `secret`, `issuer` and `audience` are the API's (`ApiSettings`), or the API refuses
    the token."""
    token = link_token(
        secret=secret,
        complaint_id=complaint_id,
        customer_id=customer_id,
        lifetime=lifetime,
        now=now,
        issuer=issuer,
        audience=audience,
    )
    base = public_url.rstrip("/")
    return f"{base}{CUSTOMER_PAGES}/{quote(complaint_id, safe='')}?{LINK_QUERY}={token}"
