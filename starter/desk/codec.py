"""Payload encryption: whatever the worker, the API or the CLI hands to Temporal leaves as AES-256-GCM
ciphertext, so the server's history (and anyone who can read it) sees no description, amount or name.

The key id travels in each payload's metadata, so a rotated keyring still opens what older keys sealed. So
does the id of the workflow a payload travels to or from, which is part of the authenticated data: a
payload sealed for one complaint does not open as another's. Payloads that are not ours pass through this
codec's `decode` untouched (the API and the CLI read what they are given); the worker's codec
(`starter.desk.sealed`) refuses a workflow's inputs unless the desk sealed them for that workflow.

Support reads histories in clear through the API's codec endpoint (`/codec/decode`,
`starter.api.routers.codec`), which the Temporal CLI and UI call with a support token.
"""

from __future__ import annotations

import copy as copy_module
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Self

from pydantic import AliasChoices, AwareDatetime, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    ActivitySerializationContext,
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
    WorkflowSerializationContext,
)

from ledger.keyring import NONCE_BYTES, Keyring, KeyringError
from ledger.paths import data_dir
from ledger.secret_files import secret_files

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
    """Not REFUND_DESK_PAYLOAD_KEYS_FILE: this file is the development keyring's home, made when missing;
    REFUND_DESK_PAYLOAD_KEYS_FILE names a file holding REFUND_DESK_PAYLOAD_KEYS' value, which must exist."""

    accept_unsealed_until: AwareDatetime | None = Field(
        default=None,
        validation_alias=AliasChoices("REFUND_DESK_ACCEPT_UNSEALED_UNTIL", "accept_unsealed_until"),
        description="Until this instant the worker also accepts workflow inputs an older release wrote "
        "(plaintext, or encrypted without a workflow binding); unset: none (starter.desk.sealed).",
    )

    _secret_files = secret_files(payload_keys="REFUND_DESK_PAYLOAD_KEYS")

    def keyring(self) -> PayloadKeyring:
        return PayloadKeyring.configured(self.payload_keys, self.payload_key_file)


WORKFLOW_ID = "encryption-workflow-id"
"""The metadata entry naming the workflow a payload was sealed for; it is part of the authenticated data,
so a payload sealed for one complaint does not open as another's."""


def bound_workflow_id(context: SerializationContext | None) -> str | None:
    """The workflow a payload travels to or from: the workflow's own id for its inputs and results, the
    calling workflow's for an activity's arguments and results; None outside any workflow."""
    if isinstance(context, WorkflowSerializationContext | ActivitySerializationContext):
        return context.workflow_id or None
    return None


def associated_data(workflow_id: str | None) -> bytes:
    return ENCODING if workflow_id is None else ENCODING + b"\x00" + workflow_id.encode()


class EncryptionCodec(PayloadCodec, WithSerializationContext):
    """Encrypts each payload whole (metadata and data) under the keyring's current key, bound to the
    workflow it travels to or from when the SDK says which (`with_context`)."""

    def __init__(self, keyring: Keyring, context: SerializationContext | None = None) -> None:
        self.keyring = keyring
        self.context = context

    def with_context(self, context: SerializationContext) -> Self:
        """This codec, its settings kept, for payloads of `context` (the SDK asks per workflow)."""
        copy = copy_module.copy(self)
        copy.context = context
        return copy

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        workflow_id = bound_workflow_id(self.context)
        return [self.encrypt(payload, workflow_id) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(payload) for payload in payloads]

    def encrypt(self, payload: Payload, workflow_id: str | None = None) -> Payload:
        key_id, nonce, ciphertext = self.keyring.encrypt(
            payload.SerializeToString(), associated=associated_data(workflow_id)
        )
        metadata = {"encoding": ENCODING, KEY_ID: key_id.encode()}
        if workflow_id is not None:
            metadata[WORKFLOW_ID] = workflow_id.encode()
        return Payload(metadata=metadata, data=nonce + ciphertext)

    @staticmethod
    def sealed_for(payload: Payload) -> str | None:
        """The workflow an encrypted payload was sealed for, as its metadata says (checked on opening)."""
        bound = payload.metadata.get(WORKFLOW_ID)
        return None if bound is None else bound.decode(errors="replace")

    def decrypt(self, payload: Payload) -> Payload:
        """The payload in clear; one that is not encrypted comes back as it is. Which workflow it was
        sealed for is read from its metadata (the codec endpoint has no other way to know) and checked
        by the cipher: a changed id does not open."""
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        workflow_id = self.sealed_for(payload)
        nonce, ciphertext = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            plaintext = self.keyring.decrypt(
                key_id, nonce, ciphertext, associated=associated_data(workflow_id)
            )
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
