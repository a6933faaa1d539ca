"""The asynchronous form of the actions a system reports (docs/api.md "The asynchronous form").

A request to `.../fix`, `.../access` or `.../withdraw` with `Prefer: respond-async` (RFC 7240) is sent to
the complaint as a report (`ComplaintDesk.report`, a Temporal signal) rather than an update: it answers
`202 Accepted` at once, whether or not a worker runs, with `Location` where the complaint is read and
`Preference-Applied: respond-async`. Without the preference the action stays an update, answered with the
complaint once it took effect.

A report carries an id the complaint remembers. With an `Idempotency-Key` the id is derived from the caller,
the complaint, the action and the key, so a system that retries with its key sends the same report even
where the idempotency store does not answer for it (a retry after the key's lease, or on another API in
front of another ledger); without a key each request is a new report.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from policy.credentials import ServerCredentials
from policy.reports import ReportedAction, derived_report_id
from starter.api.auth import Principal
from starter.api.idempotency import HEADER as IDEMPOTENCY_KEY
from starter.api.schemas.common import Out, UtcTime
from starter.desk import ComplaintDesk

RESPOND_ASYNC = "respond-async"
PREFERENCE_APPLIED = "Preference-Applied"

MAX_PREFER_LENGTH = 1024
"""The longest `Prefer` header value read: a longer one is ignored, as RFC 7240 lets a server ignore any
preference (the action then runs as an update)."""
_PREFERENCE = re.compile(r'(?:[^,"]|"(?:[^"\\]|\\.)*")+')
"""One comma-separated preference of a `Prefer` header, quoted strings (which may hold commas) whole."""


def prefers_async(values: Iterable[str]) -> bool:
    """Whether the `Prefer` header values ask for `respond-async`, among any other preferences: each
    preference is a token, case-insensitive, with an optional `=value` and `;parameters` (RFC 7240)."""
    for value in values:
        if len(value) > MAX_PREFER_LENGTH:
            return False  # no client needs this much; the pattern's backtracking would be quadratic
        for preference in _PREFERENCE.findall(value):
            token = re.split(r"[=;]", preference, maxsplit=1)[0]
            if token.strip().lower() == RESPOND_ASYNC:
                return True
    return False


async def _respond_async(
    request: Request,
    prefer: Annotated[
        str | None,
        Header(
            description=(
                "`respond-async` (RFC 7240, among other preferences or alone) sends the action as a "
                "report that needs no running worker, answered 202 with `Location`; without it the action "
                "is answered once it took effect."
            ),
        ),
    ] = None,
) -> bool:
    return prefers_async(request.headers.getlist("prefer"))


RespondAsync = Annotated[bool, Depends(_respond_async)]
"""Whether the request prefers the asynchronous form; declares the `Prefer` header in the OpenAPI document."""


class ReportAccepted(Out):
    """The answer of the asynchronous form: the report is recorded, and the complaint is read at
    `Location` (its audit trail shows the outcome, or `report_refused` with the reason)."""

    complaint_id: str
    report_id: str = Field(description="The report's id: the same for a retry with the same Idempotency-Key.")
    action: ReportedAction
    accepted_at: UtcTime


ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {
        "model": ReportAccepted,
        "description": (
            "With `Prefer: respond-async`: the report is recorded and will be taken by the next worker; "
            "read the complaint at `Location`."
        ),
        "headers": {
            "Location": {"description": "The complaint's address.", "schema": {"type": "string"}},
            PREFERENCE_APPLIED: {"description": "`respond-async`.", "schema": {"type": "string"}},
        },
    }
}
"""The 202 of a route that takes the asynchronous form, for its OpenAPI `responses`."""


async def report(
    desk: ComplaintDesk,
    request: Request,
    principal: Principal,
    complaint_id: str,
    action: ReportedAction,
    *,
    note: str = "",
    credentials: ServerCredentials | None = None,
) -> JSONResponse:
    """Send the report, and answer 202 with where to read the complaint."""
    key = request.headers.get(IDEMPOTENCY_KEY)
    caller = f"{principal.role.value}:{principal.sub}"
    given = None if key is None else derived_report_id(caller, complaint_id, action.value, key)
    report_id = await desk.report(
        complaint_id, principal.actor, action, note=note, credentials=credentials, report_id=given
    )
    body = ReportAccepted(
        complaint_id=complaint_id, report_id=report_id, action=action, accepted_at=await desk.now()
    )
    headers = {"Location": f"/v1/complaints/{complaint_id}", PREFERENCE_APPLIED: RESPOND_ASYNC}
    return JSONResponse(body.model_dump(mode="json"), status_code=202, headers=headers)
