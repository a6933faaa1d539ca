"""Policy windows and limits (docs/policy.md "Settings").

`PolicySettings` reads the environment once, where a complaint is filed; `PolicySnapshot` is the frozen copy
that travels in the workflow input, so a later change of settings never changes a running complaint.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _seconds_or_iso(value: Any) -> Any:
    """Environment variables arrive as text: "90" means 90 seconds, anything else is left to pydantic."""
    if isinstance(value, str):
        try:
            return timedelta(seconds=float(value))
        except (ValueError, OverflowError):
            return value
    return value


Duration = Annotated[timedelta, BeforeValidator(_seconds_or_iso), Field(gt=timedelta(0))]


class PolicySnapshot(BaseModel):
    """The policy values in force when a complaint was filed. Durations accept ISO-8601 or seconds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    claim_window: Duration = timedelta(days=5)
    rectify_window: Duration = timedelta(days=5)
    sms_wait: Duration = timedelta(minutes=20)
    access_response_window: Duration = timedelta(days=5)
    remedy_choice_window: Duration = timedelta(days=3)
    review_reminder_before: Duration = timedelta(days=1)
    review_window: Duration = timedelta(days=5)
    """How long support has to review a claim (R5, R6) before it is escalated, as R13 does for defects."""
    replacement_value_tolerance: Decimal = Field(default=Decimal("0.10"), ge=0, le=1)
    min_description_chars: int = Field(default=40, ge=0)
    max_remedy_changes: int = Field(default=5, ge=0)
    """How often a customer may change their remedy choice once made (R12): each change is an event in
    the complaint's history, which must stay bounded."""
    history_events_per_run: int = Field(default=1_000, ge=100)
    """Not a rule of the shop but a bound on the machinery: how many events one run of a complaint's
    workflow may hold before it continues as new with its state carried over. Taken at filing like the
    rest, so every replay of a complaint makes the same choice whatever the worker's environment says."""


class PolicySettings(BaseSettings, PolicySnapshot):
    """`REFUND_DESK_RECTIFY_WINDOW=PT30S` and friends: the environment's view of the policy."""

    model_config = SettingsConfigDict(env_prefix="REFUND_DESK_", frozen=True, extra="ignore")

    def snapshot(self) -> PolicySnapshot:
        return PolicySnapshot.model_validate(self.model_dump())
