"""Every state change the shop's backend hears of becomes a webhook event in the transaction that records
it, once, with nothing private in it: a complaint filed, its status changing, access requested, a remedy
chosen, a refund, a replacement, the complaint closed; an activation completed or canceled. The events are
read from the ledger after real workflows ran (no endpoint is needed for an event to be kept)."""

from __future__ import annotations

import json

from sqlalchemy import select

from dispatch import events
from ledger.repository import Ledger
from ledger.schema import WebhookEventRow
from policy.complaint import Review
from policy.models import Money, RemedyChoice, ReplacementOffer, ReviewDecision
from starter.desk import ComplaintDesk
from tests.factories import (
    BACKEND,
    DESCRIPTION,
    POLICY,
    SECRET,
    SUPPORT,
    credentials,
    customer,
    software_order,
)
from tests.record_histories import customer_actor
from tests.test_activation import ended, rent

APPROVE = Review(actor=SUPPORT, decision=ReviewDecision.APPROVE, note="reproduced")


async def webhook_events(ledger: Ledger, about: str) -> list[tuple[str, dict[str, object]]]:
    async with ledger.engine.connect() as conn:
        rows = await conn.execute(
            select(WebhookEventRow.type, WebhookEventRow.data_json)
            .where(WebhookEventRow.sequence_key == about)
            .order_by(WebhookEventRow.id)
        )
    return [(kind, json.loads(data)) for kind, data in rows.all()]


async def test_a_replaced_complaint_tells_each_of_its_changes_once(
    desk: ComplaintDesk, ledger: Ledger
) -> None:
    order = software_order()
    filed = await desk.file_defect_complaint(order, DESCRIPTION, customer(order), POLICY)
    cid, me = filed.complaint_id, customer_actor(order.customer_id)
    await desk.request_access(cid, SUPPORT, scope="ssh", reason="to reproduce")
    await desk.grant_access(cid, me, credentials())
    await desk.review(cid, APPROVE)
    offer = ReplacementOffer(
        sku="plugin-seo-max", name="SEO Max", value=Money(amount=order.price.amount, currency="EUR")
    )
    await desk.offer_replacement(cid, SUPPORT, offer)
    await desk.choose_remedy(cid, me, RemedyChoice.REPLACEMENT)
    final = await desk.outcome(cid)

    told = await webhook_events(ledger, cid)
    kinds = [kind for kind, _ in told]
    for kind in (
        events.COMPLAINT_FILED,
        events.COMPLAINT_ACCESS_REQUESTED,
        events.COMPLAINT_REMEDY_CHOSEN,
        events.COMPLAINT_REPLACED,
        events.COMPLAINT_CLOSED,
    ):
        assert kinds.count(kind) == 1, (kind, kinds)
    assert kinds[0] == events.COMPLAINT_FILED and kinds[-1] == events.COMPLAINT_CLOSED
    changes = [data for kind, data in told if kind == events.COMPLAINT_STATUS_CHANGED]
    first = changes[0]
    assert (first["previous_status"], first["status"]) == ("under_review", "awaiting_access")
    assert changes[-1]["status"] == final.status.value == "replaced"
    closed = told[-1][1]
    assert closed["outcome"] == "replaced" and closed["complaint_id"] == cid
    assert [data["choice"] for kind, data in told if kind == events.COMPLAINT_REMEDY_CHOSEN] == [
        "replacement"
    ]
    text = json.dumps(told)
    assert DESCRIPTION not in text and SECRET not in text and "vault_" not in text


async def test_an_activation_tells_its_end(desk: ComplaintDesk, ledger: Ledger) -> None:
    order, completed = await rent(desk, ledger)
    await desk.receive_sms(completed.activation_id, BACKEND, "Your WhatsApp code: 123-456")
    await ended(desk, completed.activation_id)
    other_order, waiting = await rent(desk, ledger)
    canceled = await ended(desk, waiting.activation_id)  # the SMS wait runs out: canceled, refunded (R2)

    [(kind, data)] = await webhook_events(ledger, completed.activation_id)
    assert kind == events.ACTIVATION_COMPLETED and data["order_id"] == order.order_id
    [(kind, data)] = await webhook_events(ledger, waiting.activation_id)
    assert kind == events.ACTIVATION_CANCELED and data["cancel_reason"] == "no_sms_in_time"
    assert canceled.refund is not None and data["refund"] == canceled.refund.amount.model_dump(mode="json")
    assert other_order.order_id == data["order_id"]
    assert "123-456" not in json.dumps(data)
