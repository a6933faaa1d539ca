"""The ledger: where money, audit and the complaint projection live (SQLAlchemy 2, async).

Exactly-once is enforced here, by unique keys, not by the callers' good behaviour: a refund or replacement
row is unique per complaint (or activation), so any retried or duplicated request gets the existing row.
"""

from ledger import idempotency  # its table joins the schema's metadata wherever the ledger is imported
from ledger.repository import Ledger, OrderConflict

__all__ = ["Ledger", "OrderConflict", "idempotency"]
