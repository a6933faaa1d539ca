"""How workflows call activities: timeouts and retries in one place."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.common import RetryPolicy

from policy import refusals

NON_RETRYABLE = [refusals.INVALID_CREDENTIALS, refusals.ALREADY_REFUNDED]
"""Policy violations: retrying cannot make them succeed."""

LEDGER_CALL: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=1),
        non_retryable_error_types=NON_RETRYABLE,
    ),
}
"""A ledger write: quick, idempotent, retried until the database is back (money must not be dropped)."""
