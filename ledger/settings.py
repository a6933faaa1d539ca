"""Where the ledger lives and which keys lock its vault (environment: DATABASE_URL, REFUND_DESK_VAULT_*;
each secret also as a file: DATABASE_URL_FILE, REFUND_DESK_VAULT_KEYS_FILE, `ledger.secret_files`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.paths import data_dir
from ledger.secret_files import secret_files
from ledger.vault import VaultKeyring


def default_database_url() -> str:
    """SQLite in the data folder (`ledger.paths.data_dir`), by absolute path, so the CLI started in any
    subfolder of the checkout reads the ledger `make run` writes."""
    return f"sqlite+aiosqlite:///{data_dir() / 'ledger.db'}"


class LedgerSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    database_url: str = Field(
        default_factory=default_database_url,
        validation_alias=AliasChoices("DATABASE_URL", "database_url"),
        repr=False,  # a PostgreSQL URL may hold its password
    )
    vault_keys: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("REFUND_DESK_VAULT_KEYS", "vault_keys"),
        description='"kid:base64key[,kid:base64key...]", current key first; older keys still decrypt.',
    )
    vault_key_file: Path = Field(
        default_factory=lambda: data_dir() / "vault.key",
        validation_alias=AliasChoices("REFUND_DESK_VAULT_KEY_FILE", "vault_key_file"),
        description="Used when REFUND_DESK_VAULT_KEYS is unset: created with a fresh key on first use.",
    )
    """Not REFUND_DESK_VAULT_KEYS_FILE: this file is the development keyring's home, made when missing;
    REFUND_DESK_VAULT_KEYS_FILE names a file holding REFUND_DESK_VAULT_KEYS' value, which must exist."""

    _secret_files = secret_files(database_url="DATABASE_URL", vault_keys="REFUND_DESK_VAULT_KEYS")

    def keyring(self) -> VaultKeyring:
        return VaultKeyring.configured(self.vault_keys, self.vault_key_file)
