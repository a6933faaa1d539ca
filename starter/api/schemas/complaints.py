"""A complaint as it is filed (with its evidence, R6), as it is shown, and the list's pages."""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Path
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from policy.complaint import ComplaintState
from policy.evidence import MAX_FILE_BYTES, MAX_FILES, EvidenceFile
from policy.models import (
    ComplaintKind,
    ComplaintStatus,
    EvidenceRef,
    Identifier,
    RejectionReason,
    RemedyChoice,
    ReviewDecision,
)
from starter.api.schemas.common import (
    AmountOut,
    Body,
    FreeText,
    Name,
    Out,
    OutT,
    RefundOut,
    ReplacementOut,
    UtcTime,
    decode_base64,
)

ComplaintId = Annotated[
    str,
    Path(
        max_length=200,
        description="As the API gave it: `{order_id}.{kind}.{suffix}`.",
        examples=["ord-1001.major_defect.9f86d081"],
    ),
]
"""A complaint id in a path. The bound keeps a hostile id from reaching Temporal, which refuses workflow
ids longer than it allows with an error that is not "not found"."""


ContentType = Annotated[
    str, StringConstraints(max_length=100, pattern=r"^[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*$")
]


class EvidenceIn(Body):
    """An attachment (R6): PNG, JPEG, GIF, WebP, PDF or plain text, at most 5 MiB, base64-encoded. The desk
    checks the whole file against its type and keeps its name as a safe base name (`policy.evidence`)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"name": "screenshot.png", "content_type": "image/png", "data_base64": "iVBORw0KGgo="}
            ]
        },
    )

    name: Name = Field(min_length=1, max_length=255)
    content_type: ContentType
    data_base64: str = Field(min_length=1, max_length=(MAX_FILE_BYTES * 4) // 3 + 4)

    @field_validator("data_base64")
    @classmethod
    def _decodes(cls, value: str) -> str:
        if len(decode_base64(value)) > MAX_FILE_BYTES:
            raise ValueError(f"a file may weigh {MAX_FILE_BYTES // (1024 * 1024)} MiB at most")
        return value

    def to_file(self) -> EvidenceFile:
        return EvidenceFile(
            name=self.name, content_type=self.content_type, data=base64.b64decode(self.data_base64)
        )


class ComplaintIn(Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "order_id": "ord-1001",
                    "kind": "major_defect",
                    "description": "The plugin returns HTTP 500 on every page since 2.3; logs attached.",
                }
            ]
        },
    )

    order_id: Identifier
    kind: ComplaintKind
    description: FreeText = Field(min_length=1, max_length=20_000)
    evidence: list[EvidenceIn] = Field(
        default_factory=list, max_length=MAX_FILES, description="Required for `invalid_number` (R6)."
    )


class ResolutionOut(Out):
    outcome: ComplaintStatus
    reason_code: str | None
    refund: RefundOut | None = None
    replacement: ReplacementOut | None = None


class EventOut(Out):
    at: UtcTime
    actor: str
    type: str
    detail: dict[str, Any]
    seq: int


class AccessRequestOut(Out):
    """The latest access request (R9/R10). Credentials never appear: only whether access was granted."""

    scope: str
    reason: str
    requested_at: UtcTime
    answer_due: UtcTime
    answered_at: UtcTime | None
    granted: bool | None


class ReviewOut(Out):
    decision: ReviewDecision
    reason_code: RejectionReason | None
    note: str
    by: str
    at: UtcTime


class EvidenceOut(Out):
    """What was attached (R6): the reference support opens it by, never the bytes."""

    ref: str
    name: str
    content_type: str
    size: int
    sha256: str

    @classmethod
    def of(cls, evidence: EvidenceRef) -> EvidenceOut:
        return cls.model_validate(evidence, from_attributes=True)


def _copied(shape: type[OutT], source: BaseModel | None) -> OutT | None:
    """The fields of `shape` read off `source`: for records whose shape the API shows as they are."""
    return None if source is None else shape.model_validate(source, from_attributes=True)


class ComplaintSummary(Out):
    """A complaint without its events: what lists return."""

    complaint_id: str
    order_id: str
    customer_id: str
    kind: ComplaintKind
    status: ComplaintStatus
    description: str
    created_at: UtcTime
    deadline: UtcTime | None
    remedy_choice: RemedyChoice | None
    resolution: ResolutionOut | None
    # additions to docs/api.md
    amount: AmountOut
    currency: str
    review: ReviewOut | None
    access_request: AccessRequestOut | None
    escalated_at: UtcTime | None
    remedy_choice_due: UtcTime | None
    replacement_offer: ReplacementOut | None
    evidence: list[EvidenceOut]

    @classmethod
    def fields_of(cls, state: ComplaintState) -> dict[str, Any]:
        resolution = state.resolution
        return {
            "complaint_id": state.complaint_id,
            "order_id": state.order.order_id,
            "customer_id": state.customer_id,
            "kind": state.kind,
            "status": state.status,
            "description": state.description,
            "created_at": state.created_at,
            "deadline": state.deadline,
            "remedy_choice": state.remedy_choice,
            "resolution": None
            if resolution is None
            else ResolutionOut(
                outcome=resolution.outcome,
                reason_code=resolution.reason_code,
                refund=RefundOut.of(resolution.refund),
                replacement=None
                if resolution.replacement is None
                else ReplacementOut.of(resolution.replacement),
            ),
            "amount": state.order.price.amount,
            "currency": state.order.price.currency,
            "review": _copied(ReviewOut, state.review),
            "access_request": _copied(AccessRequestOut, state.access),
            "escalated_at": state.escalated_at,
            "remedy_choice_due": state.remedy_choice_due,
            "replacement_offer": None
            if state.replacement_offer is None
            else ReplacementOut.of(state.replacement_offer),
            "evidence": [EvidenceOut.of(e) for e in state.evidence],
        }

    @classmethod
    def of(cls, state: ComplaintState) -> ComplaintSummary:
        return cls(**cls.fields_of(state))


class ComplaintOut(ComplaintSummary):
    """docs/api.md's complaint: the summary plus its audit trail (R16)."""

    events: list[EventOut]

    @classmethod
    def of(cls, state: ComplaintState) -> ComplaintOut:
        events = [
            EventOut(at=e.at, actor=e.actor, type=e.type, detail=e.detail, seq=e.seq) for e in state.events
        ]
        return cls(**cls.fields_of(state), events=events)


class ComplaintPage(Out):
    items: list[ComplaintSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")


def encode_cursor(state: ComplaintState) -> str:
    raw = json.dumps([state.created_at.isoformat(), state.complaint_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


COMPLAINT_ID = re.compile(
    r"[A-Za-z0-9_-]{1,64}\.(?:" + "|".join(kind.value for kind in ComplaintKind) + r")\.[0-9a-f]{8}"
)
"""A complaint id as `policy.ids.new_complaint_id` makes them, and so the only id a cursor carries."""


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The position after which the next page starts; `ValueError` for anything not made by `encode`.

    The id goes into the ledger's query, so it must be one the desk made: JSON can carry text that is not
    Unicode (a lone surrogate such as `"\\ud800"`, which no database driver can encode) or a NUL (which
    PostgreSQL text cannot hold)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, complaint_id = json.loads(raw)
        at = datetime.fromisoformat(created_at)
        if not isinstance(complaint_id, str) or not COMPLAINT_ID.fullmatch(complaint_id) or at.tzinfo is None:
            raise ValueError("not a cursor this API made")
        at = at.astimezone(UTC)  # 9999-12-31T23:59:59-12:00 overflows here, not in the ledger's query
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError, OverflowError):
        raise ValueError("not a cursor this API made") from None
    return at, complaint_id
