"""Payloads as Temporal's remote codec protocol carries them (protobuf's JSON mapping)."""

from __future__ import annotations

import base64

from pydantic import BaseModel, ConfigDict, Field, field_validator
from temporalio.api.common.v1 import Payload

from starter.api.schemas.common import decode_base64

MAX_PAYLOADS = 1_000
"""One history page's worth; the UI and the CLI send a single event's payloads at a time."""


def _standard_base64(value: str) -> str:
    decode_base64(value)
    return value


def _text_key(key: str) -> str:
    """A metadata key is a protobuf string, which is UTF-8; JSON can still spell a lone surrogate
    (`"\\ud800"`), which is no Unicode text and cannot be encoded into one."""
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("a metadata key must be Unicode text (it holds a lone surrogate)") from None
    return key


class PayloadJson(BaseModel):
    """A payload as protobuf's JSON mapping writes it: metadata values and data in base64."""

    model_config = ConfigDict(extra="forbid")

    metadata: dict[str, str] = Field(default_factory=dict, max_length=32)
    data: str = ""

    @field_validator("metadata")
    @classmethod
    def _metadata_is_text_to_base64(cls, value: dict[str, str]) -> dict[str, str]:
        return {_text_key(key): _standard_base64(item) for key, item in value.items()}

    @field_validator("data")
    @classmethod
    def _data_is_base64(cls, value: str) -> str:
        return _standard_base64(value)

    def to_payload(self) -> Payload:
        return Payload(
            metadata={key: base64.b64decode(item) for key, item in self.metadata.items()},
            data=base64.b64decode(self.data),
        )

    @classmethod
    def of(cls, payload: Payload) -> PayloadJson:
        return cls(
            metadata={key: base64.b64encode(item).decode() for key, item in payload.metadata.items()},
            data=base64.b64encode(payload.data).decode(),
        )


class Payloads(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "payloads": [
                        {
                            "metadata": {"encoding": "YmluYXJ5L2VuY3J5cHRlZA==", "encryption-key-id": "cDE="},
                            "data": "AAAA",
                        }
                    ]
                }
            ]
        },
    )

    payloads: list[PayloadJson] = Field(max_length=MAX_PAYLOADS)
