"""Duplicates and races, each ending with exactly one outcome (docs/policy.md R15, R16; R11 against R12).

A shop's clients retry, customers double-click, and a deployment runs several API processes: the same
request can arrive twice at once, and a person's action can land in the very instant a durable timer fires.
Every test here sends such a pair (two identical POSTs through `asyncio.gather`, an action against the
deadline on the time-skipping server's clock, or the same POST to two `refund-desk serve` processes) and
then proves that exactly one thing happened: one answer that made the change and one that either repeats
the resulting state or says why not (`invalid_state`, `complaint_already_open`), one final status, one
resolution, at most one refund and one replacement in the ledger, the balance equal to the refund, and the
action once in the audit trail.

Nothing is mocked: uvicorn over real HTTP, the real desk and worker on `temporal-test-server`, a migrated
SQLite ledger; the multi-process tests run the installed console script against the same server and ledger.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from ledger.repository import Ledger
from ledger.vault import VaultKeyring
from policy.complaint import ComplaintState
from policy.ids import activation_workflow_id, complaint_workflow_id, workflow_id_of
from policy.models import ComplaintKind, ComplaintStatus, RemedyChoice, Role
from starter.api.auth import mint_token
from starter.desk import ComplaintDesk
from tests.conftest import JWT_SECRET, Api
from tests.factories import DESCRIPTION, PAYLOAD_KEYS, SECRET
from tests.test_api import approved_complaint, error_of, file_complaint, new_customer, order_body, place_order
from tests.test_api_numbers import (
    PRICE,
    activation_body,
    place_number_order,
    start_activation,
)
from tests.test_end_to_end import wait_healthy
from workflows.common import ComplaintWorkflow

Json = dict[str, Any]
ROOT = Path(__file__).resolve().parent.parent
CREDENTIALS: Json = {"host": "shop.example.net", "username": "deploy", "secret": SECRET}


# ----------------------------------------------------------------------------------------------- helpers


async def at_once(*requests: Awaitable[httpx.Response]) -> list[httpx.Response]:
    """Send the requests concurrently (each on its own client, so on its own connection)."""
    return list(await asyncio.gather(*requests))


def one_each(responses: list[httpx.Response], won: int, lost: int) -> tuple[httpx.Response, httpx.Response]:
    """The response with status `won` and the one with `lost`, after checking there is exactly one of each."""
    assert sorted(r.status_code for r in responses) == sorted([won, lost]), [r.text for r in responses]
    winner = next(r for r in responses if r.status_code == won)
    loser = next(r for r in responses if r.status_code == lost)
    return winner, loser


async def counts(ledger: Ledger) -> dict[str, int]:
    """Rows per ledger table: each test has a ledger of its own, so these are the test's rows."""
    return await ledger.table_counts()


async def one_outcome(
    api: Api, complaint_id: str, status: str, *, refund: str | None = None, replaced: bool = False
) -> Json:
    """Wait for the complaint's end, then prove it has exactly one: the status and the resolution agree,
    the ledger holds one refund (of `refund`) or none and one replacement or none (never both), the
    customer's balance is exactly the refund, and the ledger's trail is the workflow's. Returns the
    complaint as the API shows it."""
    assert not (refund and replaced), "the test itself asks for both"
    final = await api.desk.outcome(complaint_id)
    shown: Json = (await api.support().get(f"/v1/complaints/{complaint_id}")).json()
    assert shown["status"] == final.status.value == status, shown
    assert shown["resolution"]["outcome"] == status

    ledger = api.desk.ledger
    refunds = await ledger.refunds_for("complaint", complaint_id)
    replacements = await ledger.replacements_for(complaint_id)
    totals = await counts(ledger)
    assert len(refunds) == totals["refunds"] == totals["balance_entries"] == (0 if refund is None else 1)
    assert len(replacements) == totals["replacements"] == (1 if replaced else 0)
    if refund is None:
        assert shown["resolution"]["refund"] is None
    else:
        assert shown["resolution"]["refund"]["amount"] == refund
        assert str(refunds[0].amount.amount) == refund
    assert (shown["resolution"]["replacement"] is not None) is replaced

    owner = shown["customer_id"]
    balance = (await api.backend().get(f"/v1/customers/{owner}/balance")).json()
    assert balance["balance"] == (refund or "0.00"), balance
    assert [e["amount"] for e in balance["entries"]] == ([] if refund is None else [refund])
    assert await ledger.complaint_events(complaint_id) == final.events, "the ledger's trail is the workflow's"
    return shown


def types_of(complaint: Json) -> list[str]:
    """The audit trail's event types, in order, as the API shows them."""
    return [e["type"] for e in complaint["events"]]


async def settled(ledger: Ledger, complaint_id: str) -> None:
    """The filing's own writes (its `filed` event, support's notice) land just after the API answers."""
    for _ in range(500):
        if any(m.template == "complaint_filed" for m in await ledger.outbox(complaint_id=complaint_id)):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"complaint {complaint_id} never notified support of its filing")


def moment(value: str) -> datetime:
    """An API time, which the contract says is ISO-8601 UTC."""
    assert value.endswith("Z"), value
    return datetime.fromisoformat(value)


# ---------------------------------------------------------------------- 1. the same request twice at once


async def test_the_same_order_posted_twice_at_once_is_one_201_one_200_and_one_row(api: Api) -> None:
    """docs/api.md: the same order again is a 200 and no duplicate; at once, the ledger's key decides which is
    the 201."""
    body = order_body(new_customer(), amount="19.90")
    created, repeated = one_each(
        await at_once(
            api.backend().post("/v1/orders", json=body), api.backend().post("/v1/orders", json=body)
        ),
        201,
        200,
    )
    assert repeated.json() == created.json(), "the repeat answers with the order as recorded"
    assert created.json()["amount"] == "19.90"
    assert (await counts(api.desk.ledger))["orders"] == 1


async def test_r15_the_same_complaint_filed_twice_at_once_is_one_201_and_one_409(api: Api) -> None:
    """Both filings pass intake (nothing is open yet when they are checked); the workflow id per order and
    kind lets only one start, and the other is `complaint_already_open`, having written nothing."""
    owner = new_customer()
    order = await place_order(api, owner)
    body = {"order_id": order["order_id"], "kind": "major_defect", "description": DESCRIPTION}

    filed, refused = one_each(
        await at_once(
            api.customer(owner).post("/v1/complaints", json=body),
            api.customer(owner).post("/v1/complaints", json=body),
        ),
        201,
        409,
    )
    error = error_of(refused, 409)
    assert error["code"] == "complaint_already_open"
    assert error["message"] == f"order {order['order_id']} already has an open major_defect complaint"
    complaint_id = filed.json()["complaint_id"]
    assert filed.json()["status"] == "under_review"

    await settled(api.desk.ledger, complaint_id)
    listed = (await api.backend().get("/v1/complaints", params={"order_id": order["order_id"]})).json()
    assert [c["complaint_id"] for c in listed["items"]] == [complaint_id]
    totals = await counts(api.desk.ledger)
    assert totals["complaints"] == 1
    assert totals["complaint_events"] == 1, "one `filed` event, from the one workflow"
    assert [m.template for m in await api.desk.ledger.outbox()] == ["complaint_filed"]
    handle = api.desk.client.get_workflow_handle(
        complaint_workflow_id(order["order_id"], ComplaintKind.MAJOR_DEFECT)
    )
    assert (await handle.describe()).status is WorkflowExecutionStatus.RUNNING
    assert (await api.desk.get(complaint_id)).complaint_id == complaint_id, "the running one is the 201's"


async def test_r8_the_same_approval_twice_at_once_is_one_200_and_one_409_invalid_state(api: Api) -> None:
    """The second approval's validator runs after the first handler has made the deficiency `rectifying`,
    which allows no review: the repeat is refused, not applied twice."""
    complaint = await file_complaint(api, amount="30.00")
    url = f"/v1/complaints/{complaint['complaint_id']}/review"
    body = {"decision": "approve", "note": "reproduced"}

    approved, refused = one_each(
        await at_once(api.support().post(url, json=body), api.support().post(url, json=body)), 200, 409
    )
    assert approved.json()["status"] == "rectifying"
    error = error_of(refused, 409)
    assert error == {"code": "invalid_state", "message": "cannot review while the complaint is rectifying"}

    final = await one_outcome(api, complaint["complaint_id"], "refunded", refund="30.00")
    assert types_of(final).count("deficiency_approved") == 1


async def chosen_twice(api: Api, amount: str) -> tuple[str, list[httpx.Response]]:
    """An approved complaint whose owner sends the same remedy choice (a refund) twice at once."""
    complaint = await approved_complaint(api, amount=amount)
    complaint_id, owner = complaint["complaint_id"], complaint["customer_id"]
    url = f"/v1/complaints/{complaint_id}/remedy"
    responses = await at_once(
        api.customer(owner).post(url, json={"choice": "refund"}),
        api.customer(owner).post(url, json={"choice": "refund"}),
    )
    return complaint_id, responses


async def test_r12_the_same_remedy_chosen_twice_at_once_is_two_200s_and_one_refund(api: Api) -> None:
    """A choice may be made, and changed, until the remedy is issued (R12): the code takes a repeated choice
    as a choice, not as a state it cannot be made in, so both answers are 200 with the choice, and the
    remedy at the deadline is one refund."""
    complaint_id, responses = await chosen_twice(api, "44.00")
    assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
    assert {r.json()["remedy_choice"] for r in responses} == {"refund"}
    assert {r.json()["status"] for r in responses} == {"rectifying"}

    final = await one_outcome(api, complaint_id, "refunded", refund="44.00")
    assert "remedy_choice_requested" not in types_of(final), "chosen before the deadline"
    assert types_of(final).count("refunded") == 1


async def test_r16_the_same_remedy_chosen_twice_at_once_is_recorded_once(api: Api) -> None:
    """R16 records each state change once whatever duplicate requests happen: the same choice twice is one
    change, so one `remedy_chosen` event, and both answers show the same resulting state."""
    complaint_id, responses = await chosen_twice(api, "44.00")
    assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
    first, second = (r.json() for r in responses)
    assert types_of(first) == types_of(second), "the same resulting state"
    final = await one_outcome(api, complaint_id, "refunded", refund="44.00")
    assert types_of(final).count("remedy_chosen") == 1, types_of(final)


async def test_r14_the_same_withdrawal_twice_at_once_is_one_200_and_one_409_invalid_state(api: Api) -> None:
    """The first withdrawal closes the complaint before it awaits anything, so the second finds it final."""
    complaint = await file_complaint(api)
    complaint_id, owner = complaint["complaint_id"], complaint["customer_id"]
    url = f"/v1/complaints/{complaint_id}/withdraw"

    withdrawn, refused = one_each(
        await at_once(api.customer(owner).post(url), api.customer(owner).post(url)), 200, 409
    )
    assert withdrawn.json()["status"] == "withdrawn"
    assert error_of(refused, 409) == {
        "code": "invalid_state",
        "message": "the complaint is already withdrawn; nothing can change it",
    }
    final = await one_outcome(api, complaint_id, "withdrawn")
    assert types_of(final).count("withdrawn") == 1


async def test_r11_the_same_fix_twice_at_once_is_one_200_and_one_409_invalid_state(api: Api) -> None:
    """The first fix closes the complaint `rectified` before it awaits anything; the second finds it final."""
    complaint = await approved_complaint(api)
    url = f"/v1/complaints/{complaint['complaint_id']}/fix"
    body = {"note": "patched in 2.3.1"}

    fixed, refused = one_each(
        await at_once(api.support().post(url, json=body), api.support().post(url, json=body)), 200, 409
    )
    assert fixed.json()["status"] == "rectified"
    assert error_of(refused, 409) == {
        "code": "invalid_state",
        "message": "the complaint is already rectified; nothing can change it",
    }
    final = await one_outcome(api, complaint["complaint_id"], "rectified")
    assert types_of(final).count("rectified") == 1


async def access_asked(api: Api, env: WorkflowEnvironment, count: int) -> list[Json]:
    """`count` approved complaints whose customers support asked for server access a day ago."""
    complaints = [await approved_complaint(api) for _ in range(count)]
    for complaint in complaints:
        asked = await api.support().post(
            f"/v1/complaints/{complaint['complaint_id']}/access-request",
            json={"scope": "ssh to the web host", "reason": "reproduce the crash"},
        )
        assert asked.json()["status"] == "awaiting_access", asked.text
    await env.sleep(timedelta(days=1))
    return complaints


def grant(api: Api, complaint: Json) -> Awaitable[httpx.Response]:
    """The customer grants the access support asked for (a fresh client, so a connection of its own)."""
    return api.customer(complaint["customer_id"]).post(
        f"/v1/complaints/{complaint['complaint_id']}/access",
        json={"grant": True, "credentials": CREDENTIALS},
    )


def granted_once_or_refused(responses: list[httpx.Response]) -> None:
    """At least one grant took effect; any other answer is the state's refusal, never another error."""
    assert any(r.status_code == 200 for r in responses), [r.text for r in responses]
    for other in responses:
        if other.status_code != 200:
            assert error_of(other, 409)["code"] == "invalid_state"
        assert SECRET not in other.text


async def test_r9_the_same_access_grant_twice_at_once_files_one_vault_entry_and_one_refund(
    api: Api, env: WorkflowEnvironment
) -> None:
    """Two grants for one access request file the credentials once (the vault's key is per request), and
    the complaint goes on to its one outcome."""
    [complaint] = await access_asked(api, env, 1)
    granted_once_or_refused(await at_once(grant(api, complaint), grant(api, complaint)))

    shown = (await api.support().get(f"/v1/complaints/{complaint['complaint_id']}")).json()
    assert shown["status"] == "rectifying"
    assert shown["access_request"]["granted"] is True
    assert (await counts(api.desk.ledger))["vault_secrets"] == 1
    final = await one_outcome(api, complaint["complaint_id"], "refunded", refund="50.00")
    assert types_of(final).count("refunded") == 1


async def test_r10_the_same_access_grant_twice_at_once_moves_the_deadline_once(
    api: Api, env: WorkflowEnvironment
) -> None:
    """R10 moves the deadline by exactly the time the customer took to answer; a grant sent twice (a retry,
    a double click) is one answer. Three complaints race at once, so one lucky ordering cannot hide a
    double count."""
    complaints = await access_asked(api, env, 3)

    pairs = await asyncio.gather(*(at_once(grant(api, c), grant(api, c)) for c in complaints))

    for complaint, responses in zip(complaints, pairs, strict=True):
        granted_once_or_refused(responses)
        shown = (await api.support().get(f"/v1/complaints/{complaint['complaint_id']}")).json()
        access = shown["access_request"]
        took = moment(access["answered_at"]) - moment(access["requested_at"])
        assert took >= timedelta(days=1)
        assert moment(shown["deadline"]) - moment(complaint["deadline"]) == took, "moved by the delay, once"
        assert types_of(shown).count("access_granted") == 1, types_of(shown)


async def templates_once_there(ledger: Ledger, template: str) -> list[str]:
    """The outbox's templates once `template` is among them (an activation's notice lands just after the
    update's answer, in an activity of its own), or as they are after 10 s."""
    for _ in range(500):
        templates = [m.template for m in await ledger.outbox()]
        if template in templates:
            return templates
        await asyncio.sleep(0.02)
    return templates


async def test_r2_the_same_cancel_twice_at_once_refunds_the_number_once(api: Api) -> None:
    """A repeated cancel is answered with the refund already made (both 200, the same activation)."""
    order = await place_number_order(api)
    activation_id = (await start_activation(api, order["order_id"]))["activation_id"]
    owner = order["customer_id"]
    url = f"/v1/activations/{activation_id}/cancel"

    responses = await at_once(api.customer(owner).post(url), api.backend().post(url))
    assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
    first, second = (r.json() for r in responses)
    assert first == second, "both answer with the one canceled activation"
    assert first["status"] == "canceled"
    assert first["refund"]["amount"] == PRICE
    assert first["cancel_reason"] in ("canceled_by_customer", "canceled_by_backend")

    ledger = api.desk.ledger
    assert len(await ledger.refunds_for("activation", activation_id)) == 1
    totals = await counts(ledger)
    assert totals["refunds"] == totals["balance_entries"] == 1
    balance = (await api.customer(owner).get(f"/v1/customers/{owner}/balance")).json()
    assert balance["balance"] == PRICE
    templates = await templates_once_there(ledger, "activation_canceled")
    assert templates.count("activation_canceled") == 1, templates


async def test_r1_the_same_sms_twice_at_once_completes_the_number_once(api: Api) -> None:
    """The same SMS again is a retry, answered with the completed activation: both 200, one completion."""
    order = await place_number_order(api)
    activation_id = (await start_activation(api, order["order_id"]))["activation_id"]
    url = f"/v1/activations/{activation_id}/sms"
    body = {"text": "Your WhatsApp code: 123-456"}

    responses = await at_once(api.backend().post(url, json=body), api.backend().post(url, json=body))
    assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
    first, second = (r.json() for r in responses)
    assert first == second
    assert first["status"] == "completed" and first["refund"] is None
    assert first["sms"]["text"] == body["text"]

    templates = await templates_once_there(api.desk.ledger, "sms_received")
    assert templates == ["sms_received"], "completed once"
    assert (await counts(api.desk.ledger))["refunds"] == 0, "R1: a completed number is not refunded"


# ----------------------------------------------------------------------- 2. the remedy against the timer


@pytest.mark.parametrize("offset", [-1, 0, 1], ids=["1s-before", "at", "1s-after"])
async def test_r12_remedy_chosen_as_the_deadline_fires_ends_replaced_once(
    api: Api, env: WorkflowEnvironment, offset: int
) -> None:
    """The customer asks for a replacement `offset` seconds from the rectification deadline (server clock)
    while the server skips two seconds (`env.sleep` unlocks time skipping for exactly that long), so the
    deadline's timer fires while the choice is on its way. R12 lets the choice stand before the deadline and
    through the days-long remedy-choice window after it: whichever of the two the workflow sees first, the
    one outcome is the replacement, issued once, and no refund."""
    complaint = await approved_complaint(api, amount="50.00")
    complaint_id, owner = complaint["complaint_id"], complaint["customer_id"]
    deadline = moment(complaint["deadline"])
    await env.sleep(deadline + timedelta(seconds=offset) - await api.desk.now())

    chosen, _ = await asyncio.gather(
        api.customer(owner).post(f"/v1/complaints/{complaint_id}/remedy", json={"choice": "replacement"}),
        env.sleep(timedelta(seconds=2)),
    )

    assert chosen.status_code == 200, chosen.text
    assert chosen.json()["remedy_choice"] == "replacement"
    final = await one_outcome(api, complaint_id, "replaced", replaced=True)
    assert final["resolution"]["replacement"] == {
        "sku": "plugin-seo-pro",
        "name": "SEO Pro plugin",
        "value": "50.00",
        "currency": "EUR",
    }, "R12: the same product again"
    types = types_of(final)
    assert types.count("remedy_chosen") == 1 and types.count("replaced") == 1
    assert "remedy_defaulted" not in types and "refunded" not in types
    if "remedy_choice_requested" in types:
        assert types.index("remedy_choice_requested") < types.index("remedy_chosen"), "chosen in the window"
    chosen_at = moment(final["events"][types.index("remedy_chosen")]["at"])
    assert deadline + timedelta(seconds=offset) <= chosen_at < deadline + api.desk.policy.remedy_choice_window


@asynccontextmanager
async def ledger_busy(ledger: Ledger) -> AsyncIterator[None]:
    """Another writer holds the SQLite ledger's write lock for the block: every write waits (the ledger's
    busy timeout is 30 s) while reads go on. A workflow's `record_transition` stalls mid-step, holding the
    workflow in the instant between deciding something and recording it, which is where a request that
    arrives in production at the wrong millisecond finds it. The lock is taken off the event loop, so the
    worker in this process keeps running meanwhile."""
    database = ledger.engine.url.database
    assert database is not None
    holder = sqlite3.connect(database, timeout=30, isolation_level=None, check_same_thread=False)
    try:
        await asyncio.to_thread(holder.execute, "BEGIN IMMEDIATE")
        yield
    finally:
        await asyncio.to_thread(holder.rollback)
        holder.close()


async def until(check: Callable[[], Awaitable[bool]], what: str, seconds: float = 10) -> None:
    """Poll `check` in real time: what the worker does lands a little after the request that caused it."""
    for _ in range(int(seconds / 0.02)):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


async def deciding_the_default_refund(api: Api, env: WorkflowEnvironment, complaint: Json) -> Json:
    """An approved complaint carried to the end of its remedy-choice window with no choice made, and held
    (by a busy ledger, entered by the caller) in the instant after the workflow decided the default refund
    and before it issued it. Returns the complaint as it stood in the window."""
    complaint_id = complaint["complaint_id"]
    await env.sleep(moment(complaint["deadline"]) + timedelta(hours=1) - await api.desk.now())

    async def asked() -> bool:
        outbox = await api.desk.ledger.outbox(complaint_id=complaint_id)
        return "choose_remedy" in [m.template for m in outbox]

    await until(asked, "the customer was asked to choose a remedy")
    waiting: Json = (await api.support().get(f"/v1/complaints/{complaint_id}")).json()
    assert waiting["status"] == "awaiting_remedy_choice"
    due = moment(waiting["remedy_choice_due"])
    await env.sleep(due - timedelta(seconds=1) - await api.desk.now())
    return waiting


async def live_state(api: Api, complaint_id: str) -> ComplaintState:
    """The workflow's own state, by query: the ledger's projection lags behind it while the ledger is busy."""
    handle = api.desk.client.get_workflow_handle(workflow_id_of(complaint_id))
    state: ComplaintState = await handle.query(ComplaintWorkflow.state)
    return state


async def hold_the_default(api: Api, env: WorkflowEnvironment, complaint_id: str) -> None:
    """Inside `ledger_busy`: let the window's timer fire and wait until the workflow has decided the default
    (its `remedy_defaulted` event is in its state, the write that records it is waiting for the ledger)."""
    await env.sleep(timedelta(seconds=2))

    async def decided() -> bool:
        return (await live_state(api, complaint_id)).events[-1].type == "remedy_defaulted"

    await until(decided, "the workflow decided the default refund")


async def sent_while_held(
    api: Api, complaint_id: str, request: Awaitable[httpx.Response], landed: Callable[[ComplaintState], bool]
) -> asyncio.Task[httpx.Response]:
    """Send `request` while the ledger is busy; returns once it was answered (refused) or the workflow took
    it (`landed`), so that the caller can let the ledger go."""
    task = asyncio.ensure_future(request)

    async def answered_or_taken() -> bool:
        return task.done() or landed(await live_state(api, complaint_id))

    await until(answered_or_taken, "the request was answered or taken")
    return task


async def test_r12_a_choice_while_the_default_refund_is_being_decided_is_refused(
    api: Api, env: WorkflowEnvironment
) -> None:
    """R12: no choice within the window means a full refund. A choice that reaches the workflow once the
    window has run out and the default is decided is too late: refused (409), and the refund follows."""
    complaint = await approved_complaint(api, amount="50.00")
    complaint_id, owner = complaint["complaint_id"], complaint["customer_id"]
    await deciding_the_default_refund(api, env, complaint)

    async with ledger_busy(api.desk.ledger):
        await hold_the_default(api, env, complaint_id)
        choose = api.customer(owner).post(
            f"/v1/complaints/{complaint_id}/remedy", json={"choice": "replacement"}
        )
        task = await sent_while_held(
            api, complaint_id, choose, lambda s: s.remedy_choice is RemedyChoice.REPLACEMENT
        )
    chosen = await task

    assert error_of(chosen, 409)["code"] == "remedy_being_issued"
    final = await one_outcome(api, complaint_id, "refunded", refund="50.00")
    types = types_of(final)
    assert "remedy_chosen" not in types, "a refused choice changes nothing"
    assert types.count("remedy_defaulted") == 1 and types.count("refunded") == 1


async def test_r14_a_withdrawal_while_the_default_refund_is_being_decided_ends_with_one_outcome(
    api: Api, env: WorkflowEnvironment
) -> None:
    """R14 allows a withdrawal until the complaint is resolved, R12 issues the default refund when the window
    runs out. Once the default is decided the complaint is being resolved: the withdrawal is refused (409)
    and the refund follows, rather than a `withdrawn` answer with a refund paid after it."""
    complaint = await approved_complaint(api, amount="50.00")
    complaint_id, owner = complaint["complaint_id"], complaint["customer_id"]
    await deciding_the_default_refund(api, env, complaint)

    async with ledger_busy(api.desk.ledger):
        await hold_the_default(api, env, complaint_id)
        withdraw = api.customer(owner).post(f"/v1/complaints/{complaint_id}/withdraw")
        task = await sent_while_held(
            api, complaint_id, withdraw, lambda s: s.status is ComplaintStatus.WITHDRAWN
        )
    answer = await task

    assert error_of(answer, 409)["code"] == "remedy_being_issued", "the refund is decided: too late"
    final = await one_outcome(api, complaint_id, "refunded", refund="50.00")
    assert "withdrawn" not in types_of(final)


# ---------------------------------------------------------------------------- 3. a fix against the deadline


async def test_r11_a_fix_one_second_before_the_deadline_rectifies_without_refund(
    api: Api, env: WorkflowEnvironment
) -> None:
    """R11 holds to the last second: a fix a second before the deadline ends the complaint `rectified`, and
    the deadline's timer, firing a second later, finds nothing left to remedy."""
    complaint = await approved_complaint(api)
    complaint_id = complaint["complaint_id"]
    deadline = moment(complaint["deadline"])
    await env.sleep(deadline - timedelta(seconds=1) - await api.desk.now())

    fixed = await api.support().post(f"/v1/complaints/{complaint_id}/fix", json={"note": "patched"})

    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["status"] == "rectified"
    final = await one_outcome(api, complaint_id, "rectified")
    rectified = final["events"][types_of(final).index("rectified")]
    assert deadline - timedelta(seconds=1) <= moment(rectified["at"]) < deadline
    assert "remedy_choice_requested" not in types_of(final)


async def test_r12_a_fix_one_second_after_the_deadline_is_409_and_the_refund_follows(
    api: Api, env: WorkflowEnvironment
) -> None:
    """Past the deadline R11 no longer applies: the fix is refused and changes nothing, and R12 runs on to
    the remedy-choice window and then the default full refund. The validator's sentence depends on whether
    the workflow had already handled its deadline timer when the fix came (the status has moved on) or not
    (the deadline check itself); both are `invalid_state`, and both are spelled out here."""
    complaint = await approved_complaint(api, amount="25.00")
    complaint_id = complaint["complaint_id"]
    deadline = moment(complaint["deadline"])
    await env.sleep(deadline + timedelta(seconds=1) - await api.desk.now())

    late = await api.support().post(f"/v1/complaints/{complaint_id}/fix", json={"note": "patched late"})

    error = error_of(late, 409)
    assert error["code"] == "invalid_state"
    assert error["message"] in (
        "cannot mark fixed while the complaint is awaiting_remedy_choice",
        f"the rectification deadline ({deadline.isoformat()}) has passed; cannot mark fixed",
    ), error
    waiting = (await api.support().get(f"/v1/complaints/{complaint_id}")).json()
    assert waiting["status"] == "awaiting_remedy_choice"

    final = await one_outcome(api, complaint_id, "refunded", refund="25.00")
    types = types_of(final)
    assert "rectified" not in types, "the refused fix left no trace"
    assert types.index("remedy_choice_requested") < types.index("remedy_defaulted") < types.index("refunded")


# ------------------------------------------------------------------ 4. two API processes, one complaint


def free_port() -> int:
    """A loopback port nobody listens on right now, for a process to bind."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Processes:
    """Two `refund-desk serve` processes over one Temporal server and one ledger."""

    urls: list[str]
    tokens: dict[Role, str]

    def client(self, index: int, role: Role) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.urls[index], timeout=30, headers={"Authorization": f"Bearer {self.tokens[role]}"}
        )

    async def to_both(self, role: Role, path: str, body: Json) -> list[httpx.Response]:
        """The same POST to both processes at once."""
        async with self.client(0, role) as first, self.client(1, role) as second:
            return await at_once(first.post(path, json=body), second.post(path, json=body))


def process_environment(
    env: WorkflowEnvironment, desk: ComplaintDesk, keyring: VaultKeyring
) -> dict[str, str]:
    """What the API needs, through the environment only: the test server, the test's ledger, the desk's task
    queue (its worker runs in this process), the JWT secret, the vault keys, and the payload keys that the
    test server's client and worker encrypt with (a process with other keys could not read a workflow)."""
    environment = {
        **os.environ,
        "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": env.client.namespace,
        "DATABASE_URL": desk.ledger.engine.url.render_as_string(hide_password=False),
        "REFUND_DESK_TASK_QUEUE": desk.task_queue,
        "REFUND_DESK_JWT_SECRET": JWT_SECRET,
        "REFUND_DESK_VAULT_KEYS": keyring.spec(),
        "REFUND_DESK_PAYLOAD_KEYS": PAYLOAD_KEYS.spec(),
    }
    return environment


@contextmanager
def serving(environment: dict[str, str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`refund-desk serve` as a deployment runs it; killed when the block ends, whatever happened."""
    script = Path(sys.executable).parent / "refund-desk"
    command = [str(script), "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    with log.open("ab") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=out, stderr=out)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


async def healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Wait for `/healthz` to answer 200 (the API, the ledger and Temporal up); fail early if it died."""
    async with httpx.AsyncClient(base_url=url, timeout=5) as http:
        await wait_healthy(http, process, log)


@pytest.fixture
async def two_apis(
    env: WorkflowEnvironment, desk: ComplaintDesk, keyring: VaultKeyring, tmp_path: Path
) -> AsyncIterator[Processes]:
    """Two API processes on the test's time-skipping server and SQLite ledger, healthy before the test."""
    environment = process_environment(env, desk, keyring)
    ports = [free_port(), free_port()]
    log = tmp_path / "api.log"
    with serving(environment, ports[0], log) as first, serving(environment, ports[1], log) as second:
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        await asyncio.gather(healthy(urls[0], first, log), healthy(urls[1], second, log))
        yield Processes(
            urls=urls,
            tokens={
                Role.BACKEND: mint_token(JWT_SECRET, Role.BACKEND, "shop"),
                Role.SUPPORT: mint_token(JWT_SECRET, Role.SUPPORT, "alice"),
            },
        )


ROUNDS = 3


async def test_r15_two_api_processes_filing_the_same_complaint_at_once_start_one_workflow(
    two_apis: Processes, desk: ComplaintDesk
) -> None:
    """Each process checks intake on its own and both start the workflow; Temporal's id-conflict policy
    lets one start and the other answers `complaint_already_open`, round after round."""
    ledger = desk.ledger
    winners: list[str] = []
    for round_no in range(ROUNDS):
        order = order_body(new_customer(), amount="15.00")
        async with two_apis.client(round_no % 2, Role.BACKEND) as backend:
            placed = await backend.post("/v1/orders", json=order)
        assert placed.status_code == 201, placed.text
        body = {"order_id": order["order_id"], "kind": "major_defect", "description": DESCRIPTION}

        filed, refused = one_each(await two_apis.to_both(Role.BACKEND, "/v1/complaints", body), 201, 409)

        assert error_of(refused, 409)["code"] == "complaint_already_open"
        complaint_id = filed.json()["complaint_id"]
        winners.append(complaint_id)
        await settled(ledger, complaint_id)
        handle = desk.client.get_workflow_handle(workflow_id_of(complaint_id))
        assert (await handle.describe()).status is WorkflowExecutionStatus.RUNNING
        assert (await desk.get(complaint_id)).complaint_id == complaint_id, "the one running is the 201's"
        listed = await ledger.list_complaints(order_id=order["order_id"])
        assert [r.state.complaint_id for r in listed] == [complaint_id]
        assert [e.type for e in await ledger.complaint_events(complaint_id)] == ["filed"]

    totals = await counts(ledger)
    assert totals["complaints"] == totals["complaint_events"] == ROUNDS, "one row and one `filed` per round"
    assert [m.complaint_id for m in await ledger.outbox()] == winners, "support is told once per complaint"


async def test_two_api_processes_recording_the_same_order_at_once_keep_one_row(
    two_apis: Processes, desk: ComplaintDesk
) -> None:
    """Two processes share no memory, only the ledger: its primary key makes one insert the 201."""
    for _ in range(ROUNDS):
        body = order_body(new_customer(), amount="9.99")
        created, repeated = one_each(await two_apis.to_both(Role.BACKEND, "/v1/orders", body), 201, 200)
        assert repeated.json() == created.json()
        assert await desk.ledger.get_order(body["order_id"]) is not None
    assert (await counts(desk.ledger))["orders"] == ROUNDS


async def test_two_api_processes_starting_the_same_activation_at_once_start_one_workflow(
    two_apis: Processes, desk: ComplaintDesk
) -> None:
    """Neither process finds the activation in the ledger, both start its workflow, and the one that loses
    the start answers 200 with the activation the other started."""
    ledger = desk.ledger
    for round_no in range(ROUNDS):
        order = order_body(
            new_customer(),
            PRICE,
            product={"sku": "vn-uk-whatsapp", "kind": "virtual_number", "name": "UK number"},
        )
        async with two_apis.client(round_no % 2, Role.BACKEND) as backend:
            assert (await backend.post("/v1/orders", json=order)).status_code == 201

        started, repeated = one_each(
            await two_apis.to_both(Role.BACKEND, "/v1/activations", activation_body(order["order_id"])),
            201,
            200,
        )

        assert repeated.json() == started.json(), "both answer with the one activation"
        assert started.json()["status"] == "waiting_for_sms"
        for _ in range(500):
            if await ledger.activation_of_order(order["order_id"]) is not None:
                break
            await asyncio.sleep(0.02)
        record = await ledger.activation_of_order(order["order_id"])
        assert record is not None and record.state.activation_id == started.json()["activation_id"]
        handle = desk.client.get_workflow_handle(activation_workflow_id(order["order_id"]))
        described = await handle.describe()
        assert described.status is WorkflowExecutionStatus.RUNNING
        assert described.run_id == record.run_id, "the ledger projects the one run"
    assert (await counts(ledger))["activations"] == ROUNDS
