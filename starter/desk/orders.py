"""Orders and balances: what the ledger alone answers, no workflow involved."""

from __future__ import annotations

from ledger.contacts import Contacts
from ledger.records import Balance
from policy.models import Actor, Order
from starter.desk.errors import OrderNotFound
from starter.desk.plumbing import DeskCore, may_see


class Orders(DeskCore):
    async def record_order(self, order: Order, *, email: str | None = None) -> tuple[Order, bool]:
        """Idempotent: the same order again is (order, False); a different one raises `OrderConflict`.
        `email`, if given, is where the customer's notices go from now on (sealed in the ledger; it never
        enters a workflow)."""
        recorded = await self.ledger.record_order(order)
        if email is not None:
            await Contacts(self.ledger.engine, self.keyring).save(order.customer_id, email)
        return recorded

    async def get_order(self, order_id: str, *, seen_by: Actor) -> Order:
        """The order, if `seen_by` may see it: a customer sees only their own (others: not found)."""
        order = await self.ledger.get_order(order_id)
        if order is None or not may_see(seen_by, order.customer_id):
            raise OrderNotFound(order_id)
        return order

    async def balance(self, customer_id: str) -> Balance:
        return await self.ledger.balance(customer_id)
