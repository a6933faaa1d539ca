"""The worker accepts only what the desk sealed.

Anyone who reaches the Temporal frontend can start a workflow or send an update with a plain JSON payload
naming any actor. The desk's own inputs (a workflow's start, its updates and signals) are encrypted with
the payload keys and bound to the workflow they are for (`starter.desk.codec`); only the desk's processes
hold the keys, so the envelope itself is the proof that the desk authenticated the actor inside. The
worker's codec therefore refuses, for a workflow's inputs, anything that is not sealed for that workflow
with a key on the ring: a plaintext payload, one sealed for another workflow (a captured payload replayed
elsewhere), one that does not open.

A refused input must not wedge the complaint (a workflow task that fails again and again). So the codec
does not raise: it logs the refusal and hands the payload converter a payload of its own encoding, which
the converter turns into a non-retryable `ApplicationError`. The SDK then rejects an update before its
validator (nothing is recorded), drops a signal (and logs it), and fails a workflow whose very start was
not sealed before it does anything. What the worker decodes for itself (activity arguments and results)
is not an input and is left to the ordinary codec: a key missing there is an operator's mistake that must
stop the workflow task until it is fixed, not fail the complaint.

Complaints started by a release that did not seal inputs this way replay those inputs on every workflow
task; `REFUND_DESK_ACCEPT_UNSEALED_UNTIL` lets such inputs through until an instant, so that they can run to
their end after an upgrade.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.contrib.pydantic import PydanticPayloadConverter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    EncodingPayloadConverter,
    WorkflowSerializationContext,
)
from temporalio.exceptions import ApplicationError

from ledger.keyring import Keyring
from starter.desk.codec import ENCODING, EncryptionCodec, PayloadUndecodable

log = logging.getLogger("refund_desk.sealed")

UNSEALED = "binary/unsealed"
"""The encoding the worker's codec gives a refused input: no converter but the refusing one reads it."""
UNSEALED_INPUT = "unsealed_input"
"""The error type a refused input becomes (an update's rejection, a failed start)."""


NOT_ENCRYPTED = "it is not encrypted"
NOT_BOUND = "it is not sealed for a workflow"
OLDER_RELEASES = frozenset({NOT_ENCRYPTED, NOT_BOUND})
"""What an older release's inputs look like: plaintext (before encryption), or encrypted unbound (before
inputs were sealed per workflow). Only these are let through during the upgrade's grace period."""


class RefusingPayloadConverter(EncodingPayloadConverter):
    """Reads a refused input as the refusal it is."""

    @property
    def encoding(self) -> str:
        return UNSEALED

    def to_payload(self, value: Any) -> Payload | None:
        return None  # never chosen to encode a value

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        reason = payload.data.decode(errors="replace")
        raise ApplicationError(
            f"refused: the input was not sealed by the desk for this workflow ({reason})",
            type=UNSEALED_INPUT,
            non_retryable=True,
        )


class SealedInputsPayloadConverter(PydanticPayloadConverter):
    """The project's pydantic converter, plus the one that turns a refused input into its refusal."""

    def __init__(self) -> None:
        super().__init__()
        self._set_converters(RefusingPayloadConverter(), *self.converters.values())


class SealedInputsCodec(EncryptionCodec):
    """The worker's codec: a workflow's inputs must be sealed for that workflow; everything else as the
    desk's codec does it."""

    def __init__(self, keyring: Keyring, accept_unsealed_until: datetime | None = None) -> None:
        super().__init__(keyring)
        self.accept_unsealed_until = accept_unsealed_until

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        if not isinstance(self.context, WorkflowSerializationContext):
            return await super().decode(payloads)
        return [self._input(payload, self.context.workflow_id) for payload in payloads]

    def _input(self, payload: Payload, workflow_id: str) -> Payload:
        """The input in clear if the desk sealed it for `workflow_id`, else the refusal the converter
        reads (or, during an upgrade's grace period, an older release's input as it is)."""
        why = self._unsealed_because(payload, workflow_id)
        if why is None or (why in OLDER_RELEASES and self._in_grace()):
            return self.decrypt(payload)
        log.warning("refused an input to workflow %s: %s", workflow_id, why)
        return Payload(metadata={"encoding": UNSEALED.encode()}, data=why.encode())

    def _unsealed_because(self, payload: Payload, workflow_id: str) -> str | None:
        if payload.metadata.get("encoding") != ENCODING:
            return NOT_ENCRYPTED
        sealed_for = self.sealed_for(payload)
        if sealed_for is None:
            return NOT_BOUND
        if sealed_for != workflow_id:
            return "it was sealed for another workflow"
        try:
            self.decrypt(payload)
        except PayloadUndecodable:
            return "it does not open with the current keys"
        return None

    def _in_grace(self) -> bool:
        return self.accept_unsealed_until is not None and datetime.now(UTC) < self.accept_unsealed_until


def sealed_inputs_converter(keyring: Keyring, accept_unsealed_until: datetime | None = None) -> DataConverter:
    """The worker's data converter: the desk's, refusing a workflow's unsealed inputs."""
    return DataConverter(
        payload_converter_class=SealedInputsPayloadConverter,
        payload_codec=SealedInputsCodec(keyring, accept_unsealed_until),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def worker_client(client: Client, accept_unsealed_until: datetime | None = None) -> Client:
    """`client` with the worker's converter, on the same connection, for a `Worker` to run on. The keys are
    the desk codec's own, so the worker and the desk always hold the same ones."""
    codec = client.data_converter.payload_codec
    if not isinstance(codec, EncryptionCodec):
        raise TypeError("the worker needs a client whose payload codec is the desk's EncryptionCodec")
    config = client.config()
    config["data_converter"] = sealed_inputs_converter(codec.keyring, accept_unsealed_until)
    return Client(**config)
