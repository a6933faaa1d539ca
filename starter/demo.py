"""Drive one defect complaint through `starter/client.py` against a running `make run`.

`python -m starter.demo [approve|reject|fix|replacement]`: records an order, files a major-defect complaint
under the environment's policy settings, acts as support (and the customer), and waits for the outcome.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from datetime import UTC, datetime
from decimal import Decimal

from ledger.repository import Ledger
from ledger.settings import LedgerSettings
from policy.complaint import Review
from policy.models import (
    Actor,
    DefectRejection,
    Money,
    Order,
    Product,
    ProductKind,
    RemedyChoice,
    ReviewDecision,
    Role,
)
from policy.settings import PolicySettings
from starter.client import ComplaintDesk, connect
from starter.settings import TemporalSettings

SUPPORT = Actor(role=Role.SUPPORT, id="demo-support")


async def demo(path: str) -> None:
    ledger_settings = LedgerSettings()
    temporal = TemporalSettings()
    ledger = Ledger.connect(ledger_settings.database_url)
    desk = ComplaintDesk(await connect(temporal), ledger, ledger_settings.keyring(), temporal.task_queue)
    order = Order(
        order_id=f"demo-{uuid.uuid4().hex[:8]}",
        customer_id="demo-customer",
        product=Product(sku="plugin-seo-pro", kind=ProductKind.SOFTWARE, name="SEO Pro plugin"),
        price=Money(amount=Decimal("49.90"), currency="EUR"),
        placed_at=datetime.now(UTC),
    )
    customer = Actor(role=Role.CUSTOMER, id=order.customer_id)
    try:
        await ledger.record_order(order)
        policy = PolicySettings().snapshot()
        description = "The plugin returns HTTP 500 on every page since version 2.3; logs attached."
        state = await desk.file_defect_complaint(order, description, customer, policy)
        print(f"filed {state.complaint_id}: {state.status.value}, deadline {state.deadline}")
        if path == "reject":
            review = Review(
                actor=SUPPORT, decision=ReviewDecision.REJECT, reason_code=DefectRejection.NOT_A_DEFECT
            )
            state = await desk.review(state.complaint_id, review)
        else:
            state = await desk.review(
                state.complaint_id, Review(actor=SUPPORT, decision=ReviewDecision.APPROVE)
            )
            if path == "fix":
                state = await desk.mark_fixed(state.complaint_id, SUPPORT, note="patched")
            elif path == "replacement":
                state = await desk.choose_remedy(state.complaint_id, customer, RemedyChoice.REPLACEMENT)
        print(f"now {state.status.value}; waiting for the outcome (deadline {state.deadline})")
        final = await desk.outcome(state.complaint_id)
        print(
            f"outcome: {final.status.value} {final.resolution.model_dump_json() if final.resolution else ''}"
        )
        for event in final.events:
            print(f"  {event.seq:>2} {event.at:%H:%M:%S} {event.actor:<28} {event.type}")
        balance = await ledger.balance(order.customer_id)
        print(f"balance of {order.customer_id}: {balance.totals}")
    finally:
        await ledger.close()


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else "approve"
    if path not in {"approve", "reject", "fix", "replacement"}:
        sys.exit("usage: python -m starter.demo [approve|reject|fix|replacement]")
    asyncio.run(demo(path))


if __name__ == "__main__":
    main()
