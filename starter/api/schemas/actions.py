"""The bodies of support's and the customer's actions on a complaint."""

from __future__ import annotations

from pydantic import (
    ConfigDict,
    Field,
    model_validator,
)

from policy.complaint import credentials_go_with_grant
from policy.credentials import ServerCredentials
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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"decision": "approve", "note": "reproduced on 2.3"},
                {
                    "decision": "reject",
                    "reason_code": "user_api_misuse",
                    "note": "the plugin is called with a wrong key",
                },
            ]
        },
    )

    decision: ReviewDecision
    reason_code: RejectionReason | None = Field(
        default=None, description="Required with `reject`: R8's for a defect, R5/R6's for a claim."
    )
    note: FreeText = Field(default="", max_length=5_000)


class AccessRequestIn(Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"scope": "SSH to the web host", "reason": "to read the plugin's error log"}]
        },
    )

    scope: FreeText = Field(min_length=1, max_length=500)
    reason: FreeText = Field(min_length=1, max_length=5_000)


class AccessIn(Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "grant": True,
                    "credentials": {
                        "host": "web1.example.com",
                        "username": "support",
                        "secret": "s3cret-password",
                    },
                },
                {"grant": False},
            ]
        },
    )

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
    model_config = ConfigDict(json_schema_extra={"examples": [{"note": "patched in 2.3.1"}]})

    note: FreeText = Field(default="", max_length=5_000)


class RemedyIn(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"choice": "replacement"}]})

    choice: RemedyChoice


class ReplacementIn(Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"sku": "plugin-seo-max", "name": "SEO Max plugin", "value": "52.00"}]
        },
    )

    sku: Identifier
    name: Name = Field(min_length=1, max_length=200)
    value: Amount = Field(gt=0)
    currency: CurrencyCode | None = Field(default=None, description="Defaults to the order's currency.")


class WithdrawIn(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"note": "it works now"}]})

    note: FreeText = Field(default="", max_length=5_000)
