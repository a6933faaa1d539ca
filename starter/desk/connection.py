"""A Temporal client as every part of the desk needs it: the project's data converter, every payload
encrypted, and the complaints' search attributes known to the server."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode

from starter.desk.codec import PayloadKeySettings, encrypting_converter
from starter.desk.settings import TemporalSettings
from starter.telemetry import traces
from workflows import search_attributes


async def connect(settings: TemporalSettings | None = None, *, runtime: Runtime | None = None) -> Client:
    """A Temporal client speaking the project's data converter (pydantic models on the wire), every payload
    encrypted with the payload keys (REFUND_DESK_PAYLOAD_KEYS, else `.data/payload.key`). `runtime`: the
    SDK runtime the client and its workers report metrics to (`starter.telemetry.runtime`); None: the
    SDK's default."""
    settings = settings or TemporalSettings()
    converter = encrypting_converter(PayloadKeySettings().keyring())
    return await Client.connect(
        settings.address,
        data_converter=converter,
        runtime=runtime,
        # Where tracing is on: each call's trace carried into the workflow, and by a worker on this
        # client into the activities (starter.telemetry.traces).
        interceptors=traces.client_interceptors(),
        **settings.connection_options(),  # namespace, TLS and the API key (docs/temporal-cloud.md)
    )


async def register_search_attributes(client: Client) -> None:
    """Tell the server about the complaints' search attributes (idempotent: known ones are skipped)."""
    known: set[str] = set()
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        known = set(listed.custom_attributes)
    except RPCError as err:  # the time-skipping test server cannot list, only add
        if err.status is not RPCStatusCode.UNIMPLEMENTED:
            raise
    missing = {
        key.name: IndexedValueType.ValueType(key.indexed_value_type.value)
        for key in search_attributes.ALL_KEYS
        if key.name not in known
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )
