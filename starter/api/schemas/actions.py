"""The bodies of support's and the customer's actions on a complaint."""

from __future__ import annotations

from pydantic import (
    Field,
    model_validator,
)

from policy.complaint import ServerCredentials, credentials_go_with_grant
from policy.models import (
    CurrencyCode,
    Identifier,
    RejectionReason,
    RemedyChoice,
    ReviewDecision,
)
from starter.api.schemas.common import (
    Amount,
    Body,
    FreeText,
    Name,
)


class ReviewIn(Body):
    decision: ReviewDecision
    reason_code: RejectionReason | None = Field(
        default=None, description="Required with `reject`: R8's for a defect, R5/R6's for a claim."
    )
    note: FreeText = Field(default="", max_length=5_000)


class AccessRequestIn(Body):
    scope: FreeText = Field(min_length=1, max_length=500)
    reason: FreeText = Field(min_length=1, max_length=5_000)


class AccessIn(Body):
    grant: bool = Field(
        strict=True,
        description='JSON `true` or `false`: a refusal ends the complaint (R9), so "no" is not guessed at.',
    )
    credentials: ServerCredentials | None = None

    @model_validator(mode="after")
    def _credentials_go_with_grant(self) -> AccessIn:
        credentials_go_with_grant(self.grant, self.credentials)
        return self


class FixIn(Body):
    note: FreeText = Field(default="", max_length=5_000)


class RemedyIn(Body):
    choice: RemedyChoice


class ReplacementIn(Body):
    sku: Identifier
    name: Name = Field(min_length=1, max_length=200)
    value: Amount = Field(gt=0)
    currency: CurrencyCode | None = Field(default=None, description="Defaults to the order's currency.")


class WithdrawIn(Body):
    note: FreeText = Field(default="", max_length=5_000)
