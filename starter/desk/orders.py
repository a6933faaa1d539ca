"""Orders and balances: what the ledger alone answers, no workflow involved."""

from __future__ import annotations

from ledger.records import Balance
from policy.models import Actor, Order
from starter.desk.errors import OrderNotFound
from starter.desk.plumbing import DeskCore, may_see


class Orders(DeskCore):
    async def record_order(self, order: Order) -> tuple[Order, bool]:
        """Idempotent: the same order again is (order, False); a different one raises `OrderConflict`."""
        return await self.ledger.record_order(order)

    async def get_order(self, order_id: str, *, seen_by: Actor) -> Order:
        """The order, if `seen_by` may see it: a customer sees only their own (others: not found)."""
        order = await self.ledger.get_order(order_id)
        if order is None or not may_see(seen_by, order.customer_id):
            raise OrderNotFound(order_id)
        return order

    async def balance(self, customer_id: str) -> Balance:
        return await self.ledger.balance(customer_id)
