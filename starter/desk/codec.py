"""Payload encryption: whatever the worker, the API or the CLI hands to Temporal leaves as AES-256-GCM
ciphertext, so the server's history (and anyone who can read it) sees no description, amount or name.

The key id travels in each payload's metadata, so a rotated keyring still opens what older keys sealed.
Payloads that are not ours (written before encryption was switched on, or by another client) pass through
`decode` untouched: a running complaint from the previous release keeps working.

Support reads histories in clear through the API's codec endpoint (`/codec/decode`,
`starter.api.routers.codec`), which the Temporal CLI and UI call with a support token.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes, PayloadCodec

from ledger.keyring import NONCE_BYTES, Keyring, KeyringError
from ledger.paths import data_dir

ENCODING = b"binary/encrypted"
"""The `encoding` metadata of an encrypted payload (the name the Temporal samples use)."""
KEY_ID = "encryption-key-id"
"""The metadata entry naming the key that encrypted the payload."""


class PayloadUndecodable(Exception):
    """An encrypted payload does not open: its key is not on the ring, or it was tampered with."""


class PayloadKeyring(Keyring):
    """The payload codec's keys (REFUND_DESK_PAYLOAD_KEYS), separate from the vault's."""


class PayloadKeySettings(BaseSettings):
    """Read by the worker, the API and the CLI alike: all three must hold the same keys."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    payload_keys: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("REFUND_DESK_PAYLOAD_KEYS", "payload_keys"),
        description='"kid:base64key[,kid:base64key...]", current key first; older keys still decrypt.',
    )
    payload_key_file: Path = Field(
        default_factory=lambda: data_dir() / "payload.key",
        validation_alias=AliasChoices("REFUND_DESK_PAYLOAD_KEY_FILE", "payload_key_file"),
        description="Used when REFUND_DESK_PAYLOAD_KEYS is unset: created with a fresh key on first use.",
    )

    def keyring(self) -> PayloadKeyring:
        return PayloadKeyring.configured(self.payload_keys, self.payload_key_file)


class EncryptionCodec(PayloadCodec):
    """Encrypts each payload whole (metadata and data) under the keyring's current key."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(payload) for payload in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        key_id, nonce, ciphertext = self.keyring.encrypt(payload.SerializeToString(), associated=ENCODING)
        return Payload(metadata={"encoding": ENCODING, KEY_ID: key_id.encode()}, data=nonce + ciphertext)

    def decrypt(self, payload: Payload) -> Payload:
        """The payload in clear; one that is not encrypted comes back as it is."""
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        nonce, ciphertext = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            plaintext = self.keyring.decrypt(key_id, nonce, ciphertext, associated=ENCODING)
        except KeyringError as exc:
            raise PayloadUndecodable(str(exc)) from exc
        return Payload.FromString(plaintext)


def encrypting_converter(keyring: Keyring) -> DataConverter:
    """The project's data converter (pydantic models on the wire) with every payload encrypted, failure
    messages included: an error's text can quote what a customer wrote."""
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(keyring),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
