"""Every side effect of the workflows: ledger writes, the credential vault, notifications.

Activities are thin and idempotent: each one is a single ledger call keyed so that a retry is a no-op.
"""

from activities.ledger import LedgerActivities, StoreCredentials
from activities.options import LEDGER_CALL

__all__ = ["LEDGER_CALL", "LedgerActivities", "StoreCredentials"]
