"""The custom search attributes complaints carry, so Temporal's UI and CLI can list them.

`REGISTRATION` is what the server must know before a workflow upserts them (the dev server is started with
these, and the test suite registers them on the time-skipping server).
"""

from __future__ import annotations

from typing import Any

from temporalio.common import SearchAttributeIndexedValueType, SearchAttributeKey, SearchAttributeUpdate

from policy.complaint import ComplaintState
from policy.models import Order

COMPLAINT_STATUS = SearchAttributeKey.for_keyword("ComplaintStatus")
COMPLAINT_KIND = SearchAttributeKey.for_keyword("ComplaintKind")
COMPLAINT_DEADLINE = SearchAttributeKey.for_datetime("ComplaintDeadline")
ORDER_ID = SearchAttributeKey.for_keyword("OrderId")
CUSTOMER_ID = SearchAttributeKey.for_keyword("CustomerId")

ALL_KEYS = (COMPLAINT_STATUS, COMPLAINT_KIND, COMPLAINT_DEADLINE, ORDER_ID, CUSTOMER_ID)

_TYPE_NAMES = {
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.DATETIME: "Datetime",
}

REGISTRATION: dict[str, str] = {key.name: _TYPE_NAMES[key.indexed_value_type] for key in ALL_KEYS}
"""name -> type, as `temporal server start-dev --search-attribute NAME=TYPE` takes them."""


def for_complaint(state: ComplaintState) -> list[SearchAttributeUpdate[Any]]:
    updates: list[SearchAttributeUpdate[Any]] = [
        COMPLAINT_STATUS.value_set(state.status.value),
        COMPLAINT_KIND.value_set(state.kind.value),
        ORDER_ID.value_set(state.order.order_id),
        CUSTOMER_ID.value_set(state.customer_id),
    ]
    if state.deadline is not None:
        updates.append(COMPLAINT_DEADLINE.value_set(state.deadline))
    return updates


def for_order(order: Order) -> list[SearchAttributeUpdate[Any]]:
    """What an activation carries: the order and its customer, to find every workflow about them."""
    return [ORDER_ID.value_set(order.order_id), CUSTOMER_ID.value_set(order.customer_id)]
