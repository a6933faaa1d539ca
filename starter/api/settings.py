"""How the API checks tokens, how much it takes from one caller and one connection, and which currency a
balance defaults to (docs/settings.md)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, AwareDatetime, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.paths import data_dir
from ledger.secret_files import environ, read_secret_file, secret_from_file
from policy.settings import Duration
from starter.desk.settings import SettingsError

TOKEN_ISSUER = "refund-desk"
TOKEN_AUDIENCE = "refund-desk-api"

MIN_JWT_SECRET_BYTES = 32
"""HS256 with a shorter key is guessable (RFC 7518 3.2 asks for at least the hash size)."""


def _env(name: str, field: str) -> AliasChoices:
    return AliasChoices(f"REFUND_DESK_{name}", field)


class ApiSettings(BaseSettings):
    """The HS256 secret that signs and checks every bearer token and what a token must say, the limits on
    callers and connections, and the shop's currency."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    jwt_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("REFUND_DESK_JWT_SECRET", "jwt_secret")
    )
    jwt_secret_file: Path = Field(
        default_factory=lambda: data_dir() / "jwt.secret",
        validation_alias=AliasChoices("REFUND_DESK_JWT_SECRET_FILE", "jwt_secret_file"),
        description="Read when REFUND_DESK_JWT_SECRET is unset; `make run` creates it on first start.",
    )
    """REFUND_DESK_JWT_SECRET_FILE was a file holding the secret before every other secret had a `_FILE`
    variable (`ledger.secret_files`), and reads the same way; it is read when the secret is needed (the
    worker runs without one), so a missing file is said then, by `secret()`."""

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

    token_issuer: str = Field(
        default=TOKEN_ISSUER,
        min_length=1,
        validation_alias=_env("TOKEN_ISSUER", "token_issuer"),
        description="The `iss` every token must carry, and `refund-desk token` writes.",
    )
    token_audience: str = Field(
        default=TOKEN_AUDIENCE,
        min_length=1,
        validation_alias=_env("TOKEN_AUDIENCE", "token_audience"),
        description="The `aud` every token must carry, and `refund-desk token` writes.",
    )
    token_max_lifetime: Duration = Field(
        default=timedelta(hours=24),
        validation_alias=_env("TOKEN_MAX_LIFETIME", "token_max_lifetime"),
        description="The longest `exp - iat` a token may have; a token minted for longer is refused.",
    )
    tokens_not_before: AwareDatetime | None = Field(
        default=None,
        validation_alias=_env("TOKENS_NOT_BEFORE", "tokens_not_before"),
        description="Tokens issued (`iat`) before this instant are refused: revokes every earlier token.",
    )

    rate_limit: float = Field(
        default=200.0,
        ge=0,
        validation_alias=_env("RATE_LIMIT", "rate_limit"),
        description="Requests per second one caller (a token's role and sub) may sustain; 0 turns it off.",
    )
    rate_burst: int = Field(
        default=400,
        ge=1,
        validation_alias=_env("RATE_BURST", "rate_burst"),
        description="Requests one caller may send at once above the sustained rate.",
    )

    header_timeout: Duration = Field(
        default=timedelta(seconds=10),
        validation_alias=_env("HEADER_TIMEOUT", "header_timeout"),
        description="How long a connection may take to send a request's headers once it starts one.",
    )
    body_timeout: Duration = Field(
        default=timedelta(seconds=30),
        validation_alias=_env("BODY_TIMEOUT", "body_timeout"),
        description="How long a request's whole body may take to arrive once its headers have.",
    )

    @model_validator(mode="before")
    @classmethod
    def one_jwt_secret(cls, data: Any) -> Any:
        """Refuses REFUND_DESK_JWT_SECRET and REFUND_DESK_JWT_SECRET_FILE both set, as for every secret; an
        empty REFUND_DESK_JWT_SECRET beside the file counts as unset, as it does for every secret."""
        secret_from_file("REFUND_DESK_JWT_SECRET", present=True)
        if isinstance(data, dict) and environ("REFUND_DESK_JWT_SECRET_FILE") is not None:
            return {
                key: value for key, value in data.items() if value != "" or key != "REFUND_DESK_JWT_SECRET"
            }
        return data

    def codec_origins(self) -> list[str]:
        return [origin.strip() for origin in self.codec_cors_origins.split(",") if origin.strip()]

    def secret(self) -> str:
        """The secret, from the environment or else the file; refuses a missing or short one."""
        if self.jwt_secret is not None:
            value, source = self.jwt_secret.get_secret_value(), "REFUND_DESK_JWT_SECRET"
        elif self.jwt_secret_file.exists():  # a folder or an unreadable file is said as such
            value = read_secret_file("REFUND_DESK_JWT_SECRET_FILE", self.jwt_secret_file)
            source = str(self.jwt_secret_file)
        else:
            raise SettingsError(f"no JWT secret: set REFUND_DESK_JWT_SECRET or create {self.jwt_secret_file}")
        if len(value.encode()) < MIN_JWT_SECRET_BYTES:
            raise SettingsError(
                f"the JWT secret in {source} is {len(value.encode())} bytes; it must be at least "
                f"{MIN_JWT_SECRET_BYTES} (`python -c 'import secrets; print(secrets.token_urlsafe(48))'` "
                "makes one)"
            )
        return value
