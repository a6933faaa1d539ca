"""Small builders for test data: orders, actors, credentials, and a scratch policy."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from google.protobuf import json_format
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowHistory

from policy.credentials import ServerCredentials
from policy.models import Actor, Money, Order, Product, ProductKind, Role
from policy.settings import PolicySnapshot
from starter.desk.codec import EncryptionCodec, PayloadKeyring

SUPPORT = Actor(role=Role.SUPPORT, id="alice")
BACKEND = Actor(role=Role.BACKEND, id="shop")
POLICY = PolicySnapshot()
DESCRIPTION = "The licensing module crashes on every request since the last update; logs attached."
CLAIM = "The number never received the WhatsApp code; I asked for it three times over twenty minutes."
SECRET = "hunter2-correct-horse-battery-staple"
PAYLOAD_KEYS = PayloadKeyring.generate("test-payload")
"""The payload codec's keys for every Temporal client and worker in the tests (and their subprocesses)."""


def software_order(price: str = "50.00", currency: str = "EUR", customer_id: str | None = None) -> Order:
    return Order(
        order_id=f"ord-{uuid.uuid4().hex[:10]}",
        customer_id=customer_id or f"cust-{uuid.uuid4().hex[:8]}",
        product=Product(sku="plugin-seo-pro", kind=ProductKind.SOFTWARE, name="SEO Pro plugin"),
        price=Money(amount=Decimal(price), currency=currency),
        placed_at=datetime.now(UTC),
    )


def number_order(
    price: str = "0.75",
    currency: str = "EUR",
    customer_id: str | None = None,
    placed_at: datetime | None = None,
) -> Order:
    """A virtual number rented to receive one SMS (R1, R2, R5, R6)."""
    return Order(
        order_id=f"ord-{uuid.uuid4().hex[:10]}",
        customer_id=customer_id or f"cust-{uuid.uuid4().hex[:8]}",
        product=Product(sku="vn-uk-whatsapp", kind=ProductKind.VIRTUAL_NUMBER, name="UK number for WhatsApp"),
        price=Money(amount=Decimal(price), currency=currency),
        placed_at=placed_at or datetime.now(UTC),
    )


def customer(order: Order) -> Actor:
    return Actor(role=Role.CUSTOMER, id=order.customer_id)


def credentials() -> ServerCredentials:
    return ServerCredentials(host="shop.example.net", username="deploy", secret=SecretStr(SECRET))


def raw_payloads(history: WorkflowHistory, *, data_only: bool = False) -> list[dict[str, Any]]:
    """Every payload in the history as the server returns it (protobuf JSON: base64 metadata and data).

    `data_only` leaves out the two kinds Temporal must read itself and so never encrypts: search attributes
    (ids, status, kind, deadline: what lists filter on) and the SDK's patch markers (a patch's name)."""
    found: list[dict[str, Any]] = []

    def walk(node: Any, server_reads: bool) -> None:
        if isinstance(node, dict):
            if "data" in node and "metadata" in node and not (data_only and server_reads):
                found.append({"metadata": node["metadata"], "data": node["data"]})
            for key, value in node.items():
                walk(value, server_reads or key in ("searchAttributes", "patch-data"))
        elif isinstance(node, list):
            for value in node:
                walk(value, server_reads)

    walk(json.loads(history.to_json()), False)
    return found


def history_text(history: WorkflowHistory) -> str:
    """The history with every payload decrypted (with PAYLOAD_KEYS) and decoded: its JSON carries payloads
    encrypted and in base64, so a secret could sit in `to_json()` unseen by a plain substring search. Search
    this instead: it is what anyone holding the payload keys (support, through the codec endpoint) sees."""
    codec = EncryptionCodec(PAYLOAD_KEYS)
    decrypted = (codec.decrypt(json_format.ParseDict(raw, Payload())) for raw in raw_payloads(history))
    return "\n".join(payload.data.decode("utf-8", errors="replace") for payload in decrypted)
