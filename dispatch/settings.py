"""How notices leave: the SMTP server, the addresses, the links in customers' emails, and the dispatcher's
pace (environment: `REFUND_DESK_SMTP_URL` or `REFUND_DESK_SMTP_URL_FILE`, `REFUND_DESK_MAIL_FROM`, ...)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.secret_files import secret_files
from policy.settings import Duration


class DispatchSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REFUND_DESK_", extra="ignore", frozen=True)

    smtp_url: SecretStr | None = Field(
        default=None,
        description=(
            "`smtp://[user[:password]@]host[:port][?starttls=true]`, or `smtps://...` for TLS from the "
            "first byte. Unset: emails wait in the outbox (`make run` points it at its local sink)."
        ),
    )
    mail_from: str = Field(
        default="Refund Desk <refunds@localhost>", description="The sender of every email."
    )
    support_email: str = Field(default="support@localhost", description="Where support's notices go.")
    public_url: str = Field(
        default="http://127.0.0.1:8000", description="The API as customers reach it, for the links in emails."
    )
    link_lifetime: Duration = Field(
        default=timedelta(days=7), description="How long the signed link in a customer's email opens it."
    )
    delivery_retry_for: Duration = Field(
        default=timedelta(days=3), description="How long a delivery is retried before it is marked failed."
    )
    dispatch_interval: Duration = Field(
        default=timedelta(seconds=1), description="How often the dispatcher looks for due deliveries."
    )
    dispatch_batch: int = Field(
        default=50, ge=1, le=1000, description="Deliveries one dispatcher claims at once."
    )
    delivery_lease: Duration = Field(
        default=timedelta(seconds=60),
        description="How long a claimed delivery is held; a dispatcher that died frees it after this.",
    )
    webhook_timeout: Duration = Field(
        default=timedelta(seconds=10), description="How long a webhook receiver has to answer."
    )

    _secret_files = secret_files(smtp_url="REFUND_DESK_SMTP_URL")
