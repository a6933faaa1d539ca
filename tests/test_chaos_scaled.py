"""The chaos run in its scaled shape (`python -m bench.chaos --scaled`), small: the ledger on a throwaway
PostgreSQL cluster, three `python worker.py` on one task queue, and six API processes (`refund-desk serve`,
two for each policy the scenarios file under) that the driver talks to over HTTP with an idempotency key on
every POST; a random worker and a random API process SIGKILLed over and over, and the dev server once.

The run's own checks are the assertions: nothing lost, no violation (money at most once per order and as
each scenario expects, balances, audit trails, every notice delivered, every history replayed), and the
chaos it claims to have made counted.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from bench.http_answers import ApiUnavailable, UnexpectedAnswer, activation_state, body_of, complaint_state
from bench.scenarios import HISTORY_BOUND, PATH_BY_NAME, PROFILES, Windows
from policy.activation import ActivationState, CancelReason
from policy.complaint import AccessState, ComplaintState, ReviewRecord
from policy.models import (
    ActivationStatus,
    ComplaintKind,
    ComplaintStatus,
    Money,
    RefundRecord,
    RemedyChoice,
    ReplacementOffer,
    ReviewDecision,
)
from policy.refusals import PolicyRefusal
from starter.api.schemas.activations import ActivationOut
from starter.api.schemas.complaints import ComplaintOut
from starter.desk.errors import ComplaintNotFound, ComplaintUnresponsive
from tests.factories import DESCRIPTION, POLICY, customer, number_order, software_order

ROOT = Path(__file__).resolve().parent.parent
SMALL_SCALED = [
    "--scaled",
    *("--complaints", "50", "--seed", "11", "--timeout", "600", "--queries-per-second", "5"),
    *("--kill-every", "6..10", "--min-kills", "2", "--api-kill-every", "5..10", "--min-api-kills", "2"),
]
"""Fifty scenarios (every path two or three times); a worker kill every 6-10 s and an API kill every
5-10 s, at least two of each; the one server restart. The drive's budget is generous (600 s, the run takes
about a minute on a quiet machine) so that a busy machine slows the run rather than failing it."""


async def test_r16_a_small_scaled_chaos_run_over_http_loses_nothing_and_moves_money_at_most_once(
    tmp_path: Path,
) -> None:
    """R16 with several workers and API processes sharing one PostgreSQL ledger: whatever process dies,
    a retried request (the same idempotency key, another process) acts at most once."""
    workdir = tmp_path / "chaos"
    command = [sys.executable, "-m", "bench.chaos", *SMALL_SCALED, "--workdir", str(workdir)]
    run = await asyncio.to_thread(
        subprocess.run, command, cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    summary = json.loads((workdir / "chaos.json").read_text())

    assert summary["violations"] == [], run.stdout[-4000:]
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert summary["started"] == summary["finished"] == summary["scenarios"] == 50
    assert summary["lost"] == 0 and not summary["timed_out"]
    assert summary["deployment"] == {
        "ledger": "postgresql",
        "workers": 3,
        "api_processes": 6,
        "api_policies": list(PROFILES),
    }
    assert summary["worker_kills"] >= 2 and summary["api_kills"] >= 2 and summary["server_restarts"] == 1
    assert summary["worker_exits_by_itself"] == [] and summary["api_exits_by_itself"] == []
    assert summary["api_starts"] == 6 + summary["api_kills"]
    for name, figures in summary["by_kind"].items():
        assert figures["count"] >= 2 and figures["as_expected"] == figures["count"], (name, figures)
    expected = summary["by_kind"].items()
    assert summary["refunds"] == sum(f["count"] for n, f in expected if PATH_BY_NAME[n].expect.refund)
    assert summary["replacements"] == sum(
        f["count"] for n, f in expected if PATH_BY_NAME[n].expect.replacement_sku
    )
    assert summary["max_refunds_per_order"] == summary["max_refunds_per_complaint_or_activation"] == 1
    assert summary["max_replacements_per_complaint"] == 1
    assert summary["unreplayable"] == 0
    assert summary["histories_replayed"] == summary["started"] + summary["runs_continued_as_new"]
    assert summary["notices"]["emails_sent"] > 0 and summary["notices"]["webhooks_sent"] > 0
    assert summary["reports"]["sent"] > 0, summary["reports"]  # sent with Prefer: respond-async, 202
    assert "202" in summary["http"]["by_status"], summary["http"]
    http = summary["http"]
    assert http["requests"] > 50 * 3 and "500" not in http["by_status"], http
    assert "deployment       ledger postgresql, 3 workers, 6 API processes" in run.stdout
    assert "api kills        " in run.stdout and "violations       0" in run.stdout


def test_the_scaled_run_files_every_path_under_one_of_three_policies() -> None:
    """An API process files under its environment's policy, so the scaled run has processes for three:
    every path's policy is one of them, and the continuing path's bound is the short profile's."""
    windows = Windows(short=timedelta(seconds=4), long=timedelta(seconds=300), profiles=True)
    profiles = {windows.profile(name) for name in PROFILES}
    continuing = windows.policy(rectify_window=True).model_copy(
        update={"history_events_per_run": HISTORY_BOUND}
    )

    assert len(profiles) == 3
    assert continuing == windows.profile("short")
    assert windows.policy(access_response_window=True) == windows.profile("access")
    assert windows.profile("access").rectify_window == timedelta(seconds=300)
    assert windows.policy() == windows.profile("long")


# --------------------------------------------------- the API's answers, read back as the driver reads them


def _defect_as_it_stands() -> ComplaintState:
    """A defect with everything the driver's conditions read: a review, a granted access request, a
    remedy chosen and a replacement offered at a price with four decimals (the price times 1.05)."""
    order = software_order(price="12.34")
    now = datetime.now(UTC)
    offer = ReplacementOffer(
        sku="plugin-seo-max",
        name="SEO Max plugin",
        value=Money(amount=order.price.amount * Decimal("1.05"), currency="EUR"),
    )
    return ComplaintState(
        complaint_id=f"{order.order_id}.major_defect.0a1b2c3d",
        kind=ComplaintKind.MAJOR_DEFECT,
        order=order,
        description=DESCRIPTION,
        filed_by=customer(order),
        policy=POLICY,
        status=ComplaintStatus.RECTIFYING,
        created_at=now,
        review=ReviewRecord(decision=ReviewDecision.APPROVE, reason_code=None, note="", by="s:a", at=now),
        access=AccessState(
            number=1,
            scope="ssh",
            reason="to reproduce",
            requested_at=now,
            answer_due=now + timedelta(days=1),
            resume_status=ComplaintStatus.RECTIFYING,
            answered_at=now,
            granted=True,
            credentials_ref="vault-ref",
        ),
        remedy_choice=RemedyChoice.REPLACEMENT,
        replacement_offer=offer,
    )


def test_a_complaint_as_the_api_shows_it_reads_back_as_the_driver_checks_it() -> None:
    state = _defect_as_it_stands()

    back = complaint_state(json.loads(ComplaintOut.of(state).model_dump_json()))

    assert (back.complaint_id, back.status, back.remedy_choice) == (
        state.complaint_id,
        state.status,
        state.remedy_choice,
    )
    assert back.review is not None and back.review.decision is ReviewDecision.APPROVE
    assert back.access is not None and back.access.granted is True and back.access.answered_at is not None
    assert back.replacement_offer == state.replacement_offer  # what the driver's offer step compares
    assert not back.is_final and back.resolution is None


def test_an_activation_canceled_by_its_customer_reads_back_as_asked_by_them() -> None:
    order = number_order()
    now = datetime.now(UTC)
    state = ActivationState(
        activation_id=f"act_{order.order_id}",
        order=order,
        phone_number="+447700900123",
        service="whatsapp",
        started_by="backend:shop",
        started_at=now,
        expires_at=now + timedelta(minutes=20),
        status=ActivationStatus.CANCELED,
        cancel_requested_by=customer(order),
        canceled_at=now,
        cancel_reason=CancelReason.CANCELED_BY_CUSTOMER,
        refund=RefundRecord(amount=order.price, issued_at=now),
    )

    back = activation_state(json.loads(ActivationOut.of(state).model_dump_json()))

    assert back.status is ActivationStatus.CANCELED and back.is_final
    assert back.cancel_requested_by == customer(order)
    assert back.refund is not None and back.refund.amount == order.price


def _answer(status: int, code: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": f"a sentence about {code}"}})


def test_the_apis_errors_are_raised_as_the_desk_raises_them() -> None:
    """A policy's refusal is a refusal the driver explains from the state; a workflow's silence and the
    service away are retried; an answer about the request's form is the run's violation, never a retry."""
    with pytest.raises(PolicyRefusal) as refused:
        body_of(_answer(409, "invalid_state"), "POST /review")
    assert refused.value.code == "invalid_state"
    with pytest.raises(ComplaintUnresponsive):
        body_of(_answer(503, "complaint_unresponsive"), "POST /review")
    with pytest.raises(ApiUnavailable) as away:
        body_of(_answer(503, "temporal_unavailable"), "POST /review")
    assert away.value.transient_name == "ApiUnavailable.temporal_unavailable"
    with pytest.raises(ComplaintNotFound):
        body_of(_answer(404, "complaint_not_found"), "GET /v1/complaints/x")
    for status, code in ((422, "validation_error"), (422, "idempotency_key_reused"), (401, "unauthorized")):
        with pytest.raises(UnexpectedAnswer):
            body_of(_answer(status, code), "POST /review")
