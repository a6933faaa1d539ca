"""The codec server (Temporal's remote codec protocol): `POST /codec/decode` and `/codec/encode`.

The Temporal CLI (`--codec-endpoint http://API/codec --codec-auth "Bearer $SUPPORT_TOKEN"`) and the web UI
send a history's encrypted payloads here and show what comes back. Only support may ask: a decoded history
holds customers' descriptions and amounts. The keys are the API's own client's (`starter.codec`), so
there is one keyring per deployment and nothing to configure twice.
"""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator
from temporalio.api.common.v1 import Payload

from policy.models import Role
from starter.auth import Principal, allow
from starter.codec import EncryptionCodec, PayloadUndecodable
from starter.errors import ApiError, documented
from starter.schemas import decode_base64

MAX_PAYLOADS = 1_000
"""One history page's worth; the UI and the CLI send a single event's payloads at a time."""


def _standard_base64(value: str) -> str:
    decode_base64(value)
    return value


class PayloadJson(BaseModel):
    """A payload as protobuf's JSON mapping writes it: metadata values and data in base64."""

    model_config = ConfigDict(extra="forbid")

    metadata: dict[str, str] = Field(default_factory=dict, max_length=32)
    data: str = ""

    @field_validator("metadata")
    @classmethod
    def _metadata_is_base64(cls, value: dict[str, str]) -> dict[str, str]:
        return {key: _standard_base64(item) for key, item in value.items()}

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
    model_config = ConfigDict(extra="forbid")

    payloads: list[PayloadJson] = Field(max_length=MAX_PAYLOADS)


Support = Annotated[Principal, Depends(allow(Role.SUPPORT))]

router = APIRouter(prefix="/codec", tags=["codec"], responses=documented(401, 403, 422, 503))


def _codec(request: Request) -> EncryptionCodec:
    codec = request.app.state.desk.client.data_converter.payload_codec
    if not isinstance(codec, EncryptionCodec):
        raise ApiError(503, "codec_unavailable", "this API's Temporal client does not encrypt payloads")
    return codec


Codec = Annotated[EncryptionCodec, Depends(_codec)]


@router.post("/decode", summary="Decrypt payloads for the Temporal UI and CLI (support)")
async def decode(body: Payloads, codec: Codec, _: Support) -> Payloads:
    try:
        decoded = await codec.decode([item.to_payload() for item in body.payloads])
    except PayloadUndecodable as exc:
        raise ApiError(422, "payload_undecodable", f"a payload does not decrypt: {exc}") from None
    return Payloads(payloads=[PayloadJson.of(payload) for payload in decoded])


@router.post("/encode", summary="Encrypt payloads, as the worker would (support)")
async def encode(body: Payloads, codec: Codec, _: Support) -> Payloads:
    encoded = await codec.encode([item.to_payload() for item in body.payloads])
    return Payloads(payloads=[PayloadJson.of(payload) for payload in encoded])
