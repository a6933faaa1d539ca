"""The chaos run's scenarios: one per path of the policy, each with the outcome it must reach.

Windows are set per scenario through its `PolicySnapshot` (each complaint and activation keeps its own for
life). A window the driver must beat (report the SMS, fix the defect, answer the access request) is long, so
that a dead worker or a restarting server cannot make the driver late and change the outcome; a window
whose expiry is the point of the scenario (no SMS, no remedy chosen, no answer, no review) is short, so the
timers really fire under chaos and the run stays quick.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from pydantic import SecretStr

from bench.driver import Driver, Expectation, Scenario
from policy import refusals
from policy.activation import ActivationState
from policy.complaint import ComplaintState, Review
from policy.credentials import ServerCredentials
from policy.evidence import EvidenceFile
from policy.models import (
    ActivationStatus,
    Actor,
    ClaimRejection,
    ComplaintKind,
    ComplaintStatus,
    DefectRejection,
    ProductKind,
    RejectionReason,
    RemedyChoice,
    ReviewDecision,
    Role,
)
from policy.reports import ReportedAction
from policy.settings import PolicySnapshot

BACKEND = Actor(role=Role.BACKEND, id="chaos-shop")
SUPPORT = Actor(role=Role.SUPPORT, id="chaos-support")
DEFECT = "The licensing module answers HTTP 500 on every request since the last update; logs attached."
CLAIM = "The number never received the WhatsApp code, though I asked for it three times in twenty minutes."
INVALID = "WhatsApp refuses this number as invalid on the 2FA screen; the screenshot shows the refusal."
SK = ComplaintStatus
A = ActivationStatus


def tiny_png() -> bytes:
    """A real 1x1 PNG (signature, IHDR, IDAT, IEND with their CRCs): the screenshot R6 asks for."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


SCREENSHOT = EvidenceFile(name="2fa-refused.png", content_type="image/png", data=tiny_png())


@dataclass(frozen=True)
class Windows:
    """`short`: a timer the scenario waits for; `long`: one the driver must beat whatever the chaos.

    With `profiles`, every path files under one of three policies (`PROFILES`) instead of one of its own:
    an API process files under its environment's policy, so a run over HTTP needs API processes for each
    policy its paths file under, and three are enough. "short" has every window short that some path waits
    out, except the access window, and the history bound the continuing path needs: no path that files
    under it must beat one of those windows (a remedy chosen before the deadline makes the remedy window
    moot; an activation knows only its SMS wait, a claim only its review window). "access" has only the
    access window short: the unanswered request, which must be made before any other deadline."""

    short: timedelta
    long: timedelta
    profiles: bool = False

    def policy(self, **short: bool) -> PolicySnapshot:
        """Every window long except those named, which are short (the reminder comes halfway); with
        `profiles`, the profile that has those windows short."""
        if self.profiles:
            return self.profile(_profile_of(short))
        return self._policy(set(name for name, on in short.items() if on))

    def _policy(self, short: set[str], **other: int) -> PolicySnapshot:
        values: dict[str, object] = {name: self.short if name in short else self.long for name in WINDOWS}
        values["review_reminder_before"] = self.short / 2
        return PolicySnapshot.model_validate({**values, **other})

    def profile(self, name: str) -> PolicySnapshot:
        """One of `PROFILES` at this run's windows."""
        if name == "short":
            short = set(WINDOWS) - {"access_response_window"}
            return self._policy(short, history_events_per_run=HISTORY_BOUND)
        if name == "access":
            return self._policy({"access_response_window"})
        return self._policy(set())


WINDOWS = ("sms_wait", "rectify_window", "access_response_window", "remedy_choice_window", "review_window")
PROFILES = ("long", "short", "access")
"""The policies a run with `Windows.profiles` files under (`Windows`' docstring)."""


def _profile_of(short: dict[str, bool]) -> str:
    if short.get("access_response_window"):
        return "access"
    return "short" if any(short.values()) else "long"


Drive = Callable[[Driver, Scenario, Windows], Awaitable[None]]


@dataclass(frozen=True)
class Path:
    """A path of the policy: how to drive it and how it must end."""

    name: str
    rules: str
    product: ProductKind
    expect: Expectation
    drive: Drive


# ------------------------------------------------------------------------------------------ helpers


def _customer(s: Scenario) -> Actor:
    return Actor(role=Role.CUSTOMER, id=s.order.customer_id)


def _complaint_reader(d: Driver, complaint_id: str) -> Callable[[], Awaitable[ComplaintState]]:
    return lambda: d.desk.get(complaint_id)


async def _review(
    d: Driver, s: Scenario, cid: str, decision: ReviewDecision, reason: RejectionReason | None
) -> None:
    review = Review(actor=SUPPORT, decision=decision, reason_code=reason, note="chaos run")
    await d.act(
        s,
        f"review {decision.value}",
        lambda: d.desk.review(cid, review),
        _complaint_reader(d, cid),
        lambda c: c.review is not None and c.review.decision is decision,
    )


async def _choose(d: Driver, s: Scenario, cid: str, choice: RemedyChoice) -> None:
    await d.act(
        s,
        f"choose {choice.value}",
        lambda: d.desk.choose_remedy(cid, _customer(s), choice),
        _complaint_reader(d, cid),
        lambda c: c.remedy_choice is choice,
    )


async def _withdraw(d: Driver, s: Scenario, cid: str) -> None:
    await d.act(
        s,
        "withdraw",
        lambda: d.desk.withdraw(cid, _customer(s), "solved it myself"),
        _complaint_reader(d, cid),
        lambda c: c.status is SK.WITHDRAWN,
        report=_reporter(d, s, cid, ReportedAction.WITHDRAWN, note="solved it myself"),
    )


async def _mark_fixed(d: Driver, s: Scenario, cid: str) -> None:
    await d.act(
        s,
        "mark fixed",
        lambda: d.desk.mark_fixed(cid, SUPPORT, "patched"),
        _complaint_reader(d, cid),
        lambda c: c.status is SK.RECTIFIED,
        report=_reporter(d, s, cid, ReportedAction.FIXED, actor=SUPPORT, note="patched"),
    )


def _reporter(
    d: Driver,
    s: Scenario,
    cid: str,
    action: ReportedAction,
    *,
    actor: Actor | None = None,
    note: str = "",
    credentials: ServerCredentials | None = None,
) -> Callable[[str], Awaitable[str]]:
    """The step as a system reports it (`Driver.act` decides when), as `actor` (default: the customer)."""
    by = actor or _customer(s)
    return lambda report_id: d.desk.report(
        cid, by, action, note=note, credentials=credentials, report_id=report_id
    )


async def _request_access(d: Driver, s: Scenario, cid: str) -> None:
    await d.act(
        s,
        "request access",
        lambda: d.desk.request_access(cid, SUPPORT, "ssh to the web host", "to reproduce the crash"),
        _complaint_reader(d, cid),
        lambda c: c.access is not None,
    )


async def _escalated(d: Driver, s: Scenario, cid: str) -> None:
    """R13: nobody reviews; wait for the deadline to escalate it."""
    await d.wait_until(s, "escalation", _complaint_reader(d, cid), lambda c: c.status is SK.ESCALATED)


async def _finish_complaint(d: Driver, s: Scenario) -> None:
    final = await d.complaint_outcome(s)
    check_complaint(s, final)


async def _file_defect(d: Driver, s: Scenario, policy: PolicySnapshot) -> str:
    await d.place(s)
    return await d.file(s, d.desk_for(policy), ComplaintKind.MAJOR_DEFECT, DEFECT, _customer(s))


async def _file_claim(d: Driver, s: Scenario, policy: PolicySnapshot, kind: ComplaintKind) -> str:
    await d.place(s)
    if kind is ComplaintKind.INVALID_NUMBER:
        return await d.file(s, d.desk_for(policy), kind, INVALID, _customer(s), [SCREENSHOT])
    return await d.file(s, d.desk_for(policy), kind, CLAIM, _customer(s))


# ------------------------------------------------------------------------------------- activations


async def activation_sms_received(d: Driver, s: Scenario, w: Windows) -> None:
    """R1: the SMS comes within the wait: completed, not refundable; and a claim then is refused (R5)."""
    await d.place(s)
    desk = d.desk_for(w.policy())
    aid = await d.start_activation(s, desk, BACKEND)
    text = f"WhatsApp code {s.index:06d}"
    await d.act(
        s,
        "receive sms",
        lambda: desk.receive_sms(aid, BACKEND, text),
        lambda: desk.get_activation(aid, BACKEND),
        lambda a: a.status is A.COMPLETED and a.sms_text == text,
    )
    check_activation(s, await d.activation_outcome(s))
    await d.expect_refusal(
        s,
        "an SMS claim on a completed number",
        lambda: desk.file(s.order, ComplaintKind.SMS_NOT_RECEIVED, CLAIM, _customer(s)),
        refusals.ACTIVATION_COMPLETED,
    )


async def activation_no_sms(d: Driver, s: Scenario, w: Windows) -> None:
    """R2: the wait runs out: canceled and refunded automatically; a claim then has nothing to refund."""
    await d.place(s)
    desk = d.desk_for(w.policy(sms_wait=True))
    await d.start_activation(s, desk, BACKEND)
    check_activation(s, await d.activation_outcome(s))
    await d.expect_refusal(
        s,
        "an SMS claim on a refunded number",
        lambda: desk.file(s.order, ComplaintKind.SMS_NOT_RECEIVED, CLAIM, _customer(s)),
        refusals.ALREADY_REFUNDED,
    )


async def activation_canceled(d: Driver, s: Scenario, w: Windows) -> None:
    """R2: the customer cancels before an SMS came: refunded once; a late SMS is refused."""
    await d.place(s)
    desk = d.desk_for(w.policy())
    aid = await d.start_activation(s, desk, BACKEND)
    customer = _customer(s)
    await d.act(
        s,
        "cancel",
        lambda: desk.cancel_activation(aid, customer),
        lambda: desk.get_activation(aid, BACKEND),
        lambda a: a.cancel_requested_by == customer,
    )
    check_activation(s, await d.activation_outcome(s))
    await d.expect_refusal(
        s,
        "a late SMS",
        lambda: desk.receive_sms(aid, BACKEND, "too late"),
        refusals.INVALID_STATE,
    )


# ----------------------------------------------------------------------------------------- claims


def _claim_decided(kind: ComplaintKind, decision: ReviewDecision, reason: RejectionReason | None) -> Drive:
    async def drive(d: Driver, s: Scenario, w: Windows) -> None:
        cid = await _file_claim(d, s, w.policy(), kind)
        await _review(d, s, cid, decision, reason)
        await _finish_complaint(d, s)

    return drive


async def claim_withdrawn(d: Driver, s: Scenario, w: Windows) -> None:
    cid = await _file_claim(d, s, w.policy(), ComplaintKind.SMS_NOT_RECEIVED)
    await _withdraw(d, s, cid)
    await _finish_complaint(d, s)


async def claim_escalated_then_approved(d: Driver, s: Scenario, w: Windows) -> None:
    cid = await _file_claim(d, s, w.policy(review_window=True), ComplaintKind.INVALID_NUMBER)
    await _escalated(d, s, cid)
    await _review(d, s, cid, ReviewDecision.APPROVE, None)
    await _finish_complaint(d, s)


# ---------------------------------------------------------------------------------------- defects


async def defect_rejected(d: Driver, s: Scenario, w: Windows) -> None:
    cid = await _file_defect(d, s, w.policy())
    reason = list(DefectRejection)[s.index % len(DefectRejection)]
    await _review(d, s, cid, ReviewDecision.REJECT, reason)
    await _finish_complaint(d, s)


async def defect_fixed(d: Driver, s: Scenario, w: Windows) -> None:
    cid = await _file_defect(d, s, w.policy())
    await _review(d, s, cid, ReviewDecision.APPROVE, None)
    await _mark_fixed(d, s, cid)
    await _finish_complaint(d, s)


def _defect_remedy(choice: RemedyChoice | None, offered: bool = False) -> Drive:
    """R12: the customer's choice (made first, so no chaos can make it late), then approval, then the
    deadline; with no choice, the remedy window runs out too and a full refund is issued."""

    async def drive(d: Driver, s: Scenario, w: Windows) -> None:
        policy = w.policy(rectify_window=True, remedy_choice_window=choice is None)
        cid = await _file_defect(d, s, policy)
        if offered:
            await _offer(d, s, cid, "plugin-seo-max")
        if choice is not None:
            await _choose(d, s, cid, choice)
        await _review(d, s, cid, ReviewDecision.APPROVE, None)
        await _finish_complaint(d, s)

    return drive


CONTINUING_OFFERS = 10
"""Offers in the scenario whose run continues as new: past the bound below, at about a dozen events each."""
HISTORY_BOUND = 100
"""The least `history_events_per_run` the policy allows, so that the run continues a few offers in."""


async def defect_continued_as_new(d: Driver, s: Scenario, w: Windows) -> None:
    """Support offers one replacement after another, so that the run's history reaches its bound and the
    run continues as new amid the chaos; the customer takes the last offer, approved, at the deadline."""
    policy = w.policy(rectify_window=True).model_copy(update={"history_events_per_run": HISTORY_BOUND})
    cid = await _file_defect(d, s, policy)
    for n in range(1, CONTINUING_OFFERS + 1):
        await _offer(d, s, cid, f"plugin-seo-max-{n}")
    await _choose(d, s, cid, RemedyChoice.REPLACEMENT)
    await _review(d, s, cid, ReviewDecision.APPROVE, None)
    await _finish_complaint(d, s)


async def _offer(d: Driver, s: Scenario, cid: str, sku: str) -> None:
    value = s.order.price.amount * Decimal("1.05")
    offer = await d.retry(s, lambda: d.desk.replacement_offer(cid, sku, "SEO Max plugin", value))
    await d.act(
        s,
        "offer replacement",
        lambda: d.desk.offer_replacement(cid, SUPPORT, offer),
        _complaint_reader(d, cid),
        lambda c: c.replacement_offer == offer,
    )


async def defect_access_refused(d: Driver, s: Scenario, w: Windows) -> None:
    cid = await _file_defect(d, s, w.policy())
    await _review(d, s, cid, ReviewDecision.APPROVE, None)
    await _request_access(d, s, cid)
    await d.act(
        s,
        "refuse access",
        lambda: d.desk.refuse_access(cid, _customer(s)),
        _complaint_reader(d, cid),
        lambda c: c.status is SK.ACCESS_REFUSED,
        report=_reporter(d, s, cid, ReportedAction.ACCESS_REFUSED),
    )
    await _finish_complaint(d, s)


async def defect_access_unanswered(d: Driver, s: Scenario, w: Windows) -> None:
    """R10: silence for the access window counts as refusal."""
    cid = await _file_defect(d, s, w.policy(access_response_window=True))
    await _request_access(d, s, cid)
    await _finish_complaint(d, s)


async def defect_access_granted_then_fixed(d: Driver, s: Scenario, w: Windows) -> None:
    cid = await _file_defect(d, s, w.policy())
    await _request_access(d, s, cid)
    credentials = ServerCredentials(
        host="shop.example.net", username="deploy", secret=SecretStr(f"chaos-secret-{s.index}")
    )
    await d.act(
        s,
        "grant access",
        lambda: d.desk.grant_access(cid, _customer(s), credentials),
        _complaint_reader(d, cid),
        lambda c: c.access is not None and c.access.granted is True,
        lambda c: c.access is not None and c.access.answered_at is not None,  # credentials being filed
        report=_reporter(d, s, cid, ReportedAction.ACCESS_GRANTED, credentials=credentials),
    )
    await _review(d, s, cid, ReviewDecision.APPROVE, None)
    await _mark_fixed(d, s, cid)
    await _finish_complaint(d, s)


async def defect_withdrawn(d: Driver, s: Scenario, w: Windows) -> None:
    cid = await _file_defect(d, s, w.policy())
    await _review(d, s, cid, ReviewDecision.APPROVE, None)
    await _withdraw(d, s, cid)
    await _finish_complaint(d, s)


async def defect_escalated_then_approved(d: Driver, s: Scenario, w: Windows) -> None:
    """R13: unreviewed at the deadline, escalated; approved late, it goes straight to the remedy (R12)."""
    cid = await _file_defect(d, s, w.policy(rectify_window=True, remedy_choice_window=True))
    await _escalated(d, s, cid)
    await _review(d, s, cid, ReviewDecision.APPROVE, None)
    await _finish_complaint(d, s)


# ------------------------------------------------------------------------------------------ checks


def check_activation(s: Scenario, final: ActivationState) -> None:
    """The activation's end as Temporal returned it, against the scenario's expectation."""
    e = s.expect
    if final.status.value != e.status:
        s.violation(f"activation ended {final.status.value}, expected {e.status}")
    if (final.refund is not None) != e.refund:
        s.violation(f"activation refund {final.refund}, expected {'one' if e.refund else 'none'}")
    elif final.refund is not None and final.refund.amount != s.order.price:
        s.violation(f"activation refunded {final.refund.amount}, the price was {s.order.price}")
    reason = None if final.cancel_reason is None else final.cancel_reason.value
    if reason != e.cancel_reason:
        s.violation(f"activation cancel reason {reason}, expected {e.cancel_reason}")


def check_complaint(s: Scenario, final: ComplaintState) -> None:
    """The complaint's end as Temporal returned it, against the scenario's expectation."""
    e = s.expect
    resolution = final.resolution
    if final.status.value != e.status:
        reason = resolution.reason_code if resolution else None
        s.violation(f"complaint ended {final.status.value} ({reason}), expected {e.status}")
        return
    if resolution is None or resolution.outcome is not final.status:
        s.violation(f"resolution {resolution} does not match the final status {final.status.value}")
        return
    if (resolution.refund is not None) != e.refund:
        s.violation(f"refund {resolution.refund}, expected {'one' if e.refund else 'none'}")
    elif resolution.refund is not None and resolution.refund.amount != s.order.price:
        s.violation(f"refunded {resolution.refund.amount}, the price was {s.order.price}")
    sku = None if resolution.replacement is None else resolution.replacement.sku
    if sku != e.replacement_sku:
        s.violation(f"replacement {sku}, expected {e.replacement_sku}")
    if e.reason_code is not None and resolution.reason_code != e.reason_code:
        s.violation(f"reason {resolution.reason_code}, expected {e.reason_code}")
    if e.escalated and final.escalated_at is None:
        s.violation("never escalated, though nobody reviewed it before the deadline (R13)")
    if e.credentials_filed and (final.access is None or final.access.credentials_ref is None):
        s.violation("granted access but no vault reference in the state (R9)")


# ------------------------------------------------------------------------------------------- paths

SOFT = ProductKind.SOFTWARE
NUMBER = ProductKind.VIRTUAL_NUMBER


def _c(
    status: SK,
    refund: bool = False,
    replacement_sku: str | None = None,
    reason_code: str | None = None,
    escalated: bool = False,
    credentials_filed: bool = False,
) -> Expectation:
    return Expectation(
        entity="complaint",
        status=status.value,
        refund=refund,
        replacement_sku=replacement_sku,
        reason_code=reason_code,
        escalated=escalated,
        credentials_filed=credentials_filed,
    )


PATHS: tuple[Path, ...] = (
    Path(
        "activation_sms_received",
        "R1 R5",
        NUMBER,
        Expectation(entity="activation", status=A.COMPLETED.value, refund=False),
        activation_sms_received,
    ),
    Path(
        "activation_no_sms",
        "R2 R16",
        NUMBER,
        Expectation(
            entity="activation", status=A.CANCELED.value, refund=True, cancel_reason="no_sms_in_time"
        ),
        activation_no_sms,
    ),
    Path(
        "activation_canceled",
        "R2",
        NUMBER,
        Expectation(
            entity="activation", status=A.CANCELED.value, refund=True, cancel_reason="canceled_by_customer"
        ),
        activation_canceled,
    ),
    Path(
        "claim_sms_approved",
        "R5",
        NUMBER,
        _c(SK.REFUNDED, refund=True),
        _claim_decided(ComplaintKind.SMS_NOT_RECEIVED, ReviewDecision.APPROVE, None),
    ),
    Path(
        "claim_sms_rejected",
        "R5",
        NUMBER,
        _c(SK.REJECTED, reason_code=ClaimRejection.SMS_DELIVERED.value),
        _claim_decided(ComplaintKind.SMS_NOT_RECEIVED, ReviewDecision.REJECT, ClaimRejection.SMS_DELIVERED),
    ),
    Path(
        "claim_invalid_approved",
        "R6",
        NUMBER,
        _c(SK.REFUNDED, refund=True),
        _claim_decided(ComplaintKind.INVALID_NUMBER, ReviewDecision.APPROVE, None),
    ),
    Path(
        "claim_invalid_rejected",
        "R6",
        NUMBER,
        _c(SK.REJECTED, reason_code=ClaimRejection.NUMBER_VALID.value),
        _claim_decided(ComplaintKind.INVALID_NUMBER, ReviewDecision.REJECT, ClaimRejection.NUMBER_VALID),
    ),
    Path("claim_withdrawn", "R14", NUMBER, _c(SK.WITHDRAWN), claim_withdrawn),
    Path(
        "claim_escalated_approved",
        "R6 R13",
        NUMBER,
        _c(SK.REFUNDED, refund=True, escalated=True),
        claim_escalated_then_approved,
    ),
    Path("defect_rejected", "R8", SOFT, _c(SK.REJECTED), defect_rejected),
    Path("defect_fixed", "R11", SOFT, _c(SK.RECTIFIED), defect_fixed),
    Path(
        "defect_refund_chosen", "R12", SOFT, _c(SK.REFUNDED, refund=True), _defect_remedy(RemedyChoice.REFUND)
    ),
    Path(
        "defect_replacement_chosen",
        "R12",
        SOFT,
        _c(SK.REPLACED, replacement_sku="plugin-seo-pro"),
        _defect_remedy(RemedyChoice.REPLACEMENT),
    ),
    Path(
        "defect_offered_replacement",
        "R12",
        SOFT,
        _c(SK.REPLACED, replacement_sku="plugin-seo-max"),
        _defect_remedy(RemedyChoice.REPLACEMENT, offered=True),
    ),
    Path("defect_no_choice_refund", "R12", SOFT, _c(SK.REFUNDED, refund=True), _defect_remedy(None)),
    Path(
        "defect_continued_as_new",
        "R12",
        SOFT,
        _c(SK.REPLACED, replacement_sku=f"plugin-seo-max-{CONTINUING_OFFERS}"),
        defect_continued_as_new,
    ),
    Path(
        "defect_access_refused",
        "R9",
        SOFT,
        _c(SK.ACCESS_REFUSED, reason_code="access_refused"),
        defect_access_refused,
    ),
    Path(
        "defect_access_unanswered",
        "R10",
        SOFT,
        _c(SK.ACCESS_REFUSED, reason_code="access_not_answered"),
        defect_access_unanswered,
    ),
    Path(
        "defect_access_granted_fixed",
        "R9 R10 R11",
        SOFT,
        _c(SK.RECTIFIED, credentials_filed=True),
        defect_access_granted_then_fixed,
    ),
    Path("defect_withdrawn", "R14", SOFT, _c(SK.WITHDRAWN), defect_withdrawn),
    Path(
        "defect_escalated_approved",
        "R13 R12",
        SOFT,
        _c(SK.REFUNDED, refund=True, escalated=True),
        defect_escalated_then_approved,
    ),
)

PATH_BY_NAME = {path.name: path for path in PATHS}
