"""Which complaint a log line is about: the fields every line logged while handling one carries.

A complaint is named twice: by its id (`<order>.<kind>.<hex>`, what the API, the CLI and the ledger call
it) and by its workflow's id (`complaint.<order>.<kind>`, what Temporal calls it; `policy.ids`). The id
gives the workflow id, not the other way round (the random suffix), so each place that knows the id binds
both: the API per request (`starter.api.request_ids`), the dispatcher per delivery, and `ActivityLogContext`
per activity, from the activity's input. An activation is named by `act_<order>` and `activation.<order>`.

The fields go into `structlog.contextvars`, which lives in the current asyncio task: each request, each
activity and each delivery of a batch runs in a task of its own, so what one binds never shows on
another's lines.
"""

from __future__ import annotations

from typing import Any

import structlog
from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from policy.ids import activation_workflow_id, order_id_of_activation, workflow_id_of


def complaint_fields(complaint_id: str) -> dict[str, str]:
    """`complaint_id` and `workflow_id` for a complaint id the desk made; nothing for any other text (a
    hostile path), which is not bound."""
    try:
        return {"complaint_id": complaint_id, "workflow_id": workflow_id_of(complaint_id)}
    except ValueError:
        return {}


def activation_fields(activation_id: str) -> dict[str, str]:
    """`activation_id` and `workflow_id` for an activation id the desk made; else nothing."""
    order_id = order_id_of_activation(activation_id)
    if order_id is None:
        return {}
    return {"activation_id": activation_id, "workflow_id": activation_workflow_id(order_id)}


def subject_fields(subject_id: str) -> dict[str, str]:
    """The fields of a complaint id or an activation id, whichever `subject_id` is (a notice's ordering
    key, `ledger.deliveries`); nothing for anything else (a recipient)."""
    return complaint_fields(subject_id) or activation_fields(subject_id)


def bind_complaint(complaint_id: str) -> None:
    """Bind the complaint's fields for the rest of the current task: the API's filing, which learns the
    id only once the complaint is filed, so that the request's access line names it."""
    structlog.contextvars.bind_contextvars(**complaint_fields(complaint_id))


def _subject_of(argument: Any) -> dict[str, str]:
    """The complaint or activation an activity's input names: its `complaint_id` (the credentials, a
    replacement, a notice), its state's (a transition), its `activation_id` (an activation's state), or a
    refund's source."""
    state = getattr(argument, "state", None)
    for holder in (argument, state):
        for name in ("complaint_id", "activation_id", "source_id"):
            value = getattr(holder, name, None)
            if isinstance(value, str):
                fields = subject_fields(value)
                if fields:
                    return fields
    return {}


class _BindSubject(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        fields = {"workflow_id": info.workflow_id or "", "activity_type": info.activity_type}
        for argument in input.args:
            fields |= _subject_of(argument)
        # Bound for the rest of the activity's task, which the SDK makes for this one activity: its
        # "completing activity as failed" line, logged after this returns, names the complaint too.
        structlog.contextvars.bind_contextvars(**fields)
        return await self.next.execute_activity(input)


class ActivityLogContext(Interceptor):
    """A worker interceptor: every line an activity logs (its own, the ledger's, temporalio's about it)
    carries `workflow_id`, `activity_type` and the complaint's (or activation's) id from its input."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _BindSubject(next)
