"""How long the browser pages' sessions and sign-in links last (docs/settings.md "Console")."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from policy.settings import Duration


class WebSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REFUND_DESK_", extra="ignore", frozen=True)

    console_session_lifetime: Duration = Field(
        default=timedelta(hours=8),
        description="How long support stays signed in to the console (a working day); sign-out ends it.",
    )
    customer_session_lifetime: Duration = Field(
        default=timedelta(hours=2),
        description="How long a customer's page stays open once its link is opened (within the link's life).",
    )
    sign_in_link_lifetime: Duration = Field(
        default=timedelta(hours=1),
        description="How long a one-time console sign-in link (as `make run` prints) works.",
    )
