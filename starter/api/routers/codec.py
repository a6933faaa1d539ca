"""The codec server (Temporal's remote codec protocol): `POST /codec/decode`.

There is no `/codec/encode`: the worker accepts a workflow's inputs only when sealed with the payload keys
(`starter.desk.sealed`), and an endpoint that sealed whatever a support token sent would let it forge one.

The Temporal CLI (`--codec-endpoint http://API/codec --codec-auth "Bearer $SUPPORT_TOKEN"`) and the web UI
send a history's encrypted payloads here and show what comes back. Only support may ask: a decoded history
holds customers' descriptions and amounts. The CLI sends a support token; the web UI, configured to include
credentials, sends the codec pass its browser got at console sign-in (`starter.api.cors` turns a live pass
from the UI's origin into the support caller the gate and `Support` judge). The keys are the API's own
client's (`starter.desk.codec`), so there is one keyring per deployment and nothing to configure twice.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from starter.api.dependencies import Support
from starter.api.errors import ApiError, documented
from starter.api.schemas.codec import PayloadJson, Payloads
from starter.desk.codec import EncryptionCodec, PayloadUndecodable

router = APIRouter(prefix="/codec", tags=["codec"], responses=documented(401, 403, 422, 503))


async def _codec(request: Request) -> EncryptionCodec:
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
