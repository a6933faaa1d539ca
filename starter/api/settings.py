"""How the API checks tokens and which currency a balance defaults to (docs/settings.md)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.paths import data_dir
from starter.desk.settings import SettingsError

MIN_JWT_SECRET_BYTES = 32
"""HS256 with a shorter key is guessable (RFC 7518 3.2 asks for at least the hash size)."""


class ApiSettings(BaseSettings):
    """The HS256 secret that signs and checks every bearer token, and the shop's currency."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    jwt_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("REFUND_DESK_JWT_SECRET", "jwt_secret")
    )
    jwt_secret_file: Path = Field(
        default_factory=lambda: data_dir() / "jwt.secret",
        validation_alias=AliasChoices("REFUND_DESK_JWT_SECRET_FILE", "jwt_secret_file"),
        description="Read when REFUND_DESK_JWT_SECRET is unset; `make run` creates it on first start.",
    )

    currency: str = Field(
        default="USD",
        pattern=r"^[A-Z]{3}$",
        validation_alias=AliasChoices("REFUND_DESK_CURRENCY", "currency"),
        description="The balance's currency for a customer with no entries, unless the request names one.",
    )

    codec_cors_origins: str = Field(
        default="http://localhost:8233,http://127.0.0.1:8233",
        validation_alias=AliasChoices("REFUND_DESK_CODEC_CORS_ORIGINS", "codec_cors_origins"),
        description="Comma-separated web origins (the Temporal UI's) that may call /codec from a browser.",
    )

    def codec_origins(self) -> list[str]:
        return [origin.strip() for origin in self.codec_cors_origins.split(",") if origin.strip()]

    def secret(self) -> str:
        """The secret, from the environment or else the file; refuses a missing or short one."""
        if self.jwt_secret is not None:
            value, source = self.jwt_secret.get_secret_value(), "REFUND_DESK_JWT_SECRET"
        elif self.jwt_secret_file.is_file():
            value, source = self.jwt_secret_file.read_text().strip(), str(self.jwt_secret_file)
        else:
            raise SettingsError(f"no JWT secret: set REFUND_DESK_JWT_SECRET or create {self.jwt_secret_file}")
        if len(value.encode()) < MIN_JWT_SECRET_BYTES:
            raise SettingsError(
                f"the JWT secret in {source} is {len(value.encode())} bytes; it must be at least "
                f"{MIN_JWT_SECRET_BYTES} (`python -c 'import secrets; print(secrets.token_urlsafe(48))'` "
                "makes one)"
            )
        return value
