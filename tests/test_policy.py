"""The pure policy: settings, rule arithmetic, the action guards and the models' validators.

No Temporal and no database: every function here is called directly with chosen instants.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, get_args

import pytest
from pydantic import TypeAdapter, ValidationError

from policy import intake, rules
from policy.complaint import (
    ACTIONS_OF_KIND,
    ACTOR_ROLE,
    ALLOWED,
    DEADLINE_BOUND,
    REJECTION_REASONS,
    AccessAnswer,
    Action,
    ComplaintState,
    Review,
    SealedSecret,
    check_action,
    review_reason_refusal,
)
from policy.evidence import EvidenceFile, check_evidence
from policy.models import (
    FINAL_STATUSES,
    ActivationStatus,
    Actor,
    AwareDatetime,
    ClaimRejection,
    ComplaintKind,
    ComplaintStatus,
    DefectRejection,
    Identifier,
    Money,
    Order,
    Product,
    ProductKind,
    RemedyChoice,
    ReviewDecision,
    Role,
    canonical_amount,
)
from policy.refusals import FORBIDDEN_ACTOR, INVALID_STATE, REMEDY_BEING_ISSUED, PolicyRefusal
from policy.settings import PolicySettings, PolicySnapshot
from tests.evidence_files import PNG, real_file
from tests.factories import DESCRIPTION, POLICY, SUPPORT, customer, number_order, software_order

S = ComplaintStatus
NOW = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
ENV_NAMES = [f"REFUND_DESK_{name.upper()}" for name in PolicySnapshot.model_fields]


def eur(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency="EUR")


def state_of(
    status: ComplaintStatus,
    *,
    order: Order | None = None,
    settling: bool = False,
    deadline: datetime | None = None,
) -> ComplaintState:
    order = order or software_order(customer_id="bob")
    return ComplaintState(
        complaint_id=f"{order.order_id}.major_defect.1",
        kind=ComplaintKind.MAJOR_DEFECT,
        order=order,
        description=DESCRIPTION,
        filed_by=customer(order),
        policy=POLICY,
        status=status,
        created_at=NOW - timedelta(days=1),
        deadline=deadline if deadline is not None else NOW + timedelta(days=4),
        settling=settling,
    )


def right_actor(action: Action, state: ComplaintState) -> Actor:
    return SUPPORT if ACTOR_ROLE[action] is Role.SUPPORT else customer(state.order)


def refusal(state: ComplaintState, action: Action, actor: Actor, now: datetime = NOW) -> str:
    with pytest.raises(PolicyRefusal) as caught:
        check_action(state, action, actor, now)
    return caught.value.code


# ----------------------------------------------------------------------------------------- settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_settings_default_to_the_policy(clean_env: pytest.MonkeyPatch) -> None:
    settings = PolicySettings()
    assert settings.snapshot() == PolicySnapshot()
    assert settings.claim_window == timedelta(days=5)
    assert settings.rectify_window == timedelta(days=5)
    assert settings.sms_wait == timedelta(minutes=20)
    assert settings.access_response_window == timedelta(days=5)
    assert settings.remedy_choice_window == timedelta(days=3)
    assert settings.review_reminder_before == timedelta(days=1)
    assert settings.replacement_value_tolerance == Decimal("0.10")
    assert settings.min_description_chars == 40


def test_settings_read_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("REFUND_DESK_CLAIM_WINDOW", "P5D")
    clean_env.setenv("REFUND_DESK_RECTIFY_WINDOW", "PT30S")
    clean_env.setenv("REFUND_DESK_SMS_WAIT", "90")
    clean_env.setenv("REFUND_DESK_ACCESS_RESPONSE_WINDOW", "P1DT2H")
    clean_env.setenv("REFUND_DESK_REMEDY_CHOICE_WINDOW", "1.5")
    clean_env.setenv("REFUND_DESK_REVIEW_REMINDER_BEFORE", "PT10M")
    clean_env.setenv("REFUND_DESK_REPLACEMENT_VALUE_TOLERANCE", "0.25")
    clean_env.setenv("REFUND_DESK_MIN_DESCRIPTION_CHARS", "12")

    settings = PolicySettings()
    expected = PolicySnapshot(
        claim_window=timedelta(days=5),
        rectify_window=timedelta(seconds=30),
        sms_wait=timedelta(seconds=90),
        access_response_window=timedelta(days=1, hours=2),
        remedy_choice_window=timedelta(seconds=1.5),
        review_reminder_before=timedelta(minutes=10),
        replacement_value_tolerance=Decimal("0.25"),
        min_description_chars=12,
    )
    snapshot = settings.snapshot()
    assert type(snapshot) is PolicySnapshot
    assert snapshot == expected
    for name in PolicySnapshot.model_fields:
        assert getattr(snapshot, name) == getattr(settings, name) == getattr(expected, name), name


def test_snapshot_is_frozen_and_outlives_a_change_of_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("REFUND_DESK_RECTIFY_WINDOW", "PT30S")
    snapshot = PolicySettings().snapshot()
    clean_env.setenv("REFUND_DESK_RECTIFY_WINDOW", "P9D")
    assert snapshot.rectify_window == timedelta(seconds=30)
    assert PolicySettings().rectify_window == timedelta(days=9)
    with pytest.raises(ValidationError):
        snapshot.rectify_window = timedelta(days=1)  # type: ignore[misc]
    assert PolicySnapshot.model_validate_json(snapshot.model_dump_json()) == snapshot


@pytest.mark.parametrize("name", [n for n in ENV_NAMES if n.endswith(("_WINDOW", "_WAIT", "_BEFORE"))])
@pytest.mark.parametrize("value", ["0", "-5", "PT0S", "P0D", "-P1D", "soon", ""])
def test_zero_negative_or_unreadable_durations_are_refused(
    clean_env: pytest.MonkeyPatch, name: str, value: str
) -> None:
    clean_env.setenv(name, value)
    with pytest.raises(ValidationError):
        PolicySettings()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REFUND_DESK_REPLACEMENT_VALUE_TOLERANCE", "-0.01"),
        ("REFUND_DESK_REPLACEMENT_VALUE_TOLERANCE", "1.01"),
        ("REFUND_DESK_MIN_DESCRIPTION_CHARS", "-1"),
        ("REFUND_DESK_MIN_DESCRIPTION_CHARS", "many"),
    ],
)
def test_out_of_range_limits_are_refused(clean_env: pytest.MonkeyPatch, name: str, value: str) -> None:
    clean_env.setenv(name, value)
    with pytest.raises(ValidationError):
        PolicySettings()


def test_snapshot_refuses_zero_durations_and_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        PolicySnapshot(rectify_window=timedelta(0))
    with pytest.raises(ValidationError):
        PolicySnapshot.model_validate({"rectify_window": "P1D", "grace": "P1D"})
    assert PolicySnapshot.model_validate({"rectify_window": "120"}).rectify_window == timedelta(minutes=2)


# -------------------------------------------------------------------------------------------- rules


def test_r7_deadline_is_the_rectify_window_from_the_complaint() -> None:
    filed = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert rules.rectification_deadline(filed, POLICY, timedelta(0)) == filed + timedelta(days=5)
    short = PolicySnapshot(rectify_window=timedelta(hours=30))
    assert rules.rectification_deadline(filed, short, timedelta(0)) == filed + timedelta(hours=30)


def test_r10_pause_moves_the_deadline() -> None:
    filed = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    requested = filed + timedelta(days=2)
    answered = requested + timedelta(days=1, hours=3, seconds=7)
    pause = rules.pause_for_access(requested, answered)
    assert pause == timedelta(days=1, hours=3, seconds=7)
    assert rules.rectification_deadline(filed, POLICY, pause) == filed + timedelta(days=6, hours=3, seconds=7)
    # Two access requests add up.
    twice = pause + rules.pause_for_access(answered, answered + timedelta(hours=5))
    assert rules.rectification_deadline(filed, POLICY, twice) == filed + timedelta(days=6, hours=8, seconds=7)


def test_r10_pause_is_never_negative() -> None:
    requested = datetime(2026, 1, 3, tzinfo=UTC)
    assert rules.pause_for_access(requested, requested) == timedelta(0)
    assert rules.pause_for_access(requested, requested - timedelta(seconds=1)) == timedelta(0)
    assert rules.pause_for_access(requested, requested - timedelta(days=3)) == timedelta(0)
    with pytest.raises(ValueError):
        rules.rectification_deadline(requested, POLICY, timedelta(microseconds=-1))


def test_r10_r12_r13_due_times() -> None:
    at = datetime(2026, 2, 10, 8, 0, tzinfo=timezone(timedelta(hours=2)))
    policy = PolicySnapshot(
        access_response_window=timedelta(hours=7),
        review_reminder_before=timedelta(hours=2),
        remedy_choice_window=timedelta(days=2),
    )
    assert rules.access_answer_due(at, policy) == at + timedelta(hours=7)
    assert rules.review_reminder_at(at, policy) == at - timedelta(hours=2)
    assert rules.remedy_choice_due(at, policy) == at + timedelta(days=2)
    assert rules.access_answer_due(at, POLICY) == at + timedelta(days=5)
    assert rules.review_reminder_at(at, POLICY) == at - timedelta(days=1)
    assert rules.remedy_choice_due(at, POLICY) == at + timedelta(days=3)
    assert rules.DEFAULT_REMEDY is RemedyChoice.REFUND


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("50.00", True),
        ("55.00", True),  # exactly 10% above
        ("45.00", True),  # exactly 10% below
        ("55.01", False),  # one cent beyond
        ("44.99", False),
        ("55.0001", False),
        ("44.9999", False),
        ("52.50", True),
        ("0.00", False),
        ("100.00", False),
    ],
)
def test_r12_replacement_tolerance_boundaries(value: str, accepted: bool) -> None:
    assert rules.within_replacement_tolerance(eur("50.00"), eur(value), Decimal("0.10")) is accepted


def test_r12_replacement_in_another_currency_is_refused() -> None:
    price = eur("50.00")
    assert not rules.within_replacement_tolerance(
        price, Money(amount=Decimal("50.00"), currency="USD"), Decimal(1)
    )
    assert rules.within_replacement_tolerance(price, eur("50.00"), Decimal(0))
    assert not rules.within_replacement_tolerance(price, eur("50.0001"), Decimal(0))
    # 10% of 12.3456 is 1.23456: 13.5801 is inside, 13.5802 is not.
    assert rules.within_replacement_tolerance(eur("12.3456"), eur("13.5801"), Decimal("0.1"))
    assert not rules.within_replacement_tolerance(eur("12.3456"), eur("13.5802"), Decimal("0.1"))


def test_r12_full_refund_is_exactly_the_price() -> None:
    order = software_order(price="12.3456", currency="USD")
    refund = rules.full_refund(order)
    assert refund == order.price
    assert refund.amount == Decimal("12.3456")
    assert str(refund.amount) == "12.3456"
    assert refund.currency == "USD"
    again = rules.same_product_again(order)
    assert (again.sku, again.name, again.value) == (order.product.sku, order.product.name, order.price)


# ------------------------------------------------------------------------------------------- guards


def test_the_guard_tables_cover_every_action() -> None:
    actions = set(get_args(Action))
    assert set(ALLOWED) == actions
    assert set(ACTOR_ROLE) == actions
    assert actions >= DEADLINE_BOUND
    for action, statuses in ALLOWED.items():
        assert not statuses & FINAL_STATUSES, f"{action} allowed in a final status"


def test_the_door_table_is_the_policy_as_written() -> None:
    """docs/policy.md spelled out, so that a change to `ALLOWED` is a deliberate change of policy."""
    open_ = {S.UNDER_REVIEW, S.AWAITING_ACCESS, S.RECTIFYING, S.ESCALATED, S.AWAITING_REMEDY_CHOICE}
    assert open_ == set(ComplaintStatus) - FINAL_STATUSES
    assert {action: set(statuses) for action, statuses in ALLOWED.items()} == {
        "review": {S.UNDER_REVIEW, S.ESCALATED},  # R8, R13
        "request_access": {S.UNDER_REVIEW, S.RECTIFYING},  # R9
        "answer_access": {S.AWAITING_ACCESS},  # R9, R10
        "mark_fixed": {S.UNDER_REVIEW, S.RECTIFYING},  # R11
        "offer_replacement": open_,  # R12
        "choose_remedy": open_,  # R12
        "withdraw": open_,  # R14
    }
    assert dict(ACTOR_ROLE) == {
        "review": Role.SUPPORT,
        "request_access": Role.SUPPORT,
        "mark_fixed": Role.SUPPORT,
        "offer_replacement": Role.SUPPORT,
        "answer_access": Role.CUSTOMER,
        "choose_remedy": Role.CUSTOMER,
        "withdraw": Role.CUSTOMER,
    }


def test_every_action_refused_in_a_state_that_does_not_allow_it() -> None:
    checked = 0
    for action, status in itertools.product(ALLOWED, ComplaintStatus):
        state = state_of(status)
        actor = right_actor(action, state)
        if status in ALLOWED[action]:
            check_action(state, action, actor, NOW)
        else:
            assert refusal(state, action, actor) == INVALID_STATE, (action, status)
            checked += 1
    assert checked == sum(len(ComplaintStatus) - len(allowed) for allowed in ALLOWED.values())
    # Final statuses refuse everything, even once settling or past the deadline.
    for action, status in itertools.product(ALLOWED, FINAL_STATUSES):
        state = state_of(status, settling=True, deadline=NOW - timedelta(days=1))
        assert refusal(state, action, right_actor(action, state)) == INVALID_STATE


def test_wrong_role_or_another_customer_is_a_forbidden_actor() -> None:
    for action, status in itertools.product(ALLOWED, ComplaintStatus):
        state = state_of(status)
        for role in Role:
            if role is not ACTOR_ROLE[action]:
                # Even with the customer's own id, the wrong role is refused.
                actor = Actor(role=role, id=state.customer_id)
                assert refusal(state, action, actor) == FORBIDDEN_ACTOR, (action, status, role)
        if ACTOR_ROLE[action] is Role.CUSTOMER:
            stranger = Actor(role=Role.CUSTOMER, id="mallory")
            assert refusal(state, action, stranger) == FORBIDDEN_ACTOR, (action, status)


def test_no_action_while_the_remedy_is_being_issued() -> None:
    for action in ALLOWED:
        for status in ALLOWED[action]:
            state = state_of(status, settling=True)
            assert refusal(state, action, right_actor(action, state)) == REMEDY_BEING_ISSUED, (action, status)


@pytest.mark.parametrize("action", sorted(DEADLINE_BOUND))
@pytest.mark.parametrize("status", [S.UNDER_REVIEW, S.RECTIFYING])
def test_r9_r11_deadline_bound_actions_end_at_the_deadline(action: Action, status: ComplaintStatus) -> None:
    deadline = NOW + timedelta(days=1)
    state = state_of(status, deadline=deadline)
    check_action(state, action, SUPPORT, deadline - timedelta(microseconds=1))
    assert refusal(state, action, SUPPORT, deadline) == INVALID_STATE
    assert refusal(state, action, SUPPORT, deadline + timedelta(seconds=1)) == INVALID_STATE
    # The same instant in another offset is the same deadline.
    assert (
        refusal(state, action, SUPPORT, deadline.astimezone(timezone(timedelta(hours=-5)))) == INVALID_STATE
    )


def test_other_actions_do_not_end_at_the_deadline() -> None:
    late = NOW + timedelta(days=30)
    for action in set(ALLOWED) - DEADLINE_BOUND:
        for status in ALLOWED[action]:
            state = state_of(status, deadline=NOW)
            check_action(state, action, right_actor(action, state), late)
    assert {"request_access", "mark_fixed"} == set(DEADLINE_BOUND)


def test_actions_without_a_deadline_are_not_time_bound() -> None:
    state = state_of(S.UNDER_REVIEW).model_copy(update={"deadline": None})
    for action in sorted(DEADLINE_BOUND):
        check_action(state, action, SUPPORT, NOW + timedelta(days=365))


def test_policy_refusal_carries_its_code() -> None:
    error = PolicyRefusal(INVALID_STATE, "nope")
    assert (error.code, error.message, str(error)) == (INVALID_STATE, "nope", "invalid_state: nope")


# --------------------------------------------------------------------------------------- validators


def test_r8_review_needs_a_reason_code_exactly_when_rejecting() -> None:
    Review(actor=SUPPORT, decision=ReviewDecision.APPROVE)
    for reason in DefectRejection:
        Review(actor=SUPPORT, decision=ReviewDecision.REJECT, reason_code=reason)
    with pytest.raises(ValidationError, match="reason_code"):
        Review(actor=SUPPORT, decision=ReviewDecision.REJECT)
    with pytest.raises(ValidationError, match="reason_code"):
        Review(actor=SUPPORT, decision=ReviewDecision.APPROVE, reason_code=DefectRejection.NOT_A_DEFECT)
    with pytest.raises(ValidationError):
        Review.model_validate({"actor": SUPPORT, "decision": "reject", "reason_code": "too_expensive"})


def test_r9_access_answer_needs_credentials_exactly_when_granting() -> None:
    bob = Actor(role=Role.CUSTOMER, id="bob")
    sealed = SealedSecret(key_id="k1", nonce="bm9uY2U=", ciphertext="Y2lwaGVy")
    AccessAnswer(actor=bob, grant=True, credentials=sealed)
    AccessAnswer(actor=bob, grant=False)
    with pytest.raises(ValidationError, match="credentials"):
        AccessAnswer(actor=bob, grant=True)
    with pytest.raises(ValidationError, match="credentials"):
        AccessAnswer(actor=bob, grant=False, credentials=sealed)


@pytest.mark.parametrize("amount", ["0", "0.0001", "12.3456", "99999999999999.9999"])
def test_money_accepts_exact_non_negative_amounts(amount: str) -> None:
    assert Money(amount=Decimal(amount), currency="EUR").amount == Decimal(amount)


@pytest.mark.parametrize(
    "fields",
    [
        {"amount": Decimal("-0.01"), "currency": "EUR"},
        {"amount": Decimal(-1), "currency": "EUR"},
        {"amount": Decimal("1.23456"), "currency": "EUR"},
        {"amount": Decimal("0.00001"), "currency": "EUR"},
        {"amount": Decimal("1.00"), "currency": "eur"},
        {"amount": Decimal("1.00"), "currency": "EURO"},
        {"amount": Decimal("1.00"), "currency": "EU"},
        {"amount": Decimal("1.00"), "currency": "E1R"},
        {"amount": Decimal("1.00"), "currency": ""},
        {"amount": Decimal("1.00"), "currency": "EUR", "rate": 1},
    ],
)
def test_money_refuses_negative_inexact_or_unknown_currency(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Money(**fields)


def test_money_is_frozen() -> None:
    money = eur("1.00")
    with pytest.raises(ValidationError):
        money.amount = Decimal(2)  # type: ignore[misc]


def test_aware_datetime_refuses_naive_times() -> None:
    adapter: TypeAdapter[datetime] = TypeAdapter(AwareDatetime)
    aware = datetime(2026, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert adapter.validate_python(aware) == aware
    assert adapter.validate_python("2026-01-01T10:00:00Z") == aware
    with pytest.raises(ValidationError, match="time zone"):
        adapter.validate_python(datetime(2026, 1, 1, 12, 0))
    with pytest.raises(ValidationError, match="time zone"):
        adapter.validate_python("2026-01-01T12:00:00")
    with pytest.raises(ValidationError, match="time zone"):
        Order.model_validate({**software_order().model_dump(), "placed_at": datetime(2026, 1, 1)})
    with pytest.raises(ValidationError, match="time zone"):
        ComplaintState.model_validate(
            {**state_of(S.UNDER_REVIEW).model_dump(), "created_at": datetime(2026, 1, 1)}
        )


@pytest.mark.parametrize("good", ["ord-1", "A_b-9", "x" * 64])
def test_identifier_accepts_plain_ids(good: str) -> None:
    assert TypeAdapter(Identifier).validate_python(good) == good


@pytest.mark.parametrize("bad", ["ord.1", ".", "a.b.c", "", "x" * 65, "ord 1", "ord/1", "ördér"])
def test_identifier_refuses_dots_and_other_characters(bad: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(Identifier).validate_python(bad)
    product = Product(sku="plugin", kind=ProductKind.SOFTWARE, name="Plugin")
    with pytest.raises(ValidationError):
        Order(order_id=bad, customer_id="c1", product=product, price=eur("1.00"), placed_at=NOW)
    with pytest.raises(ValidationError):
        Order(order_id="o1", customer_id=bad, product=product, price=eur("1.00"), placed_at=NOW)
    with pytest.raises(ValidationError):
        Product(sku=bad, kind=ProductKind.SOFTWARE, name="Plugin")


def test_absurd_durations_are_a_validation_error_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFUND_DESK_CLAIM_WINDOW", "1e20")
    with pytest.raises(ValidationError):
        PolicySettings()


@pytest.mark.parametrize(
    ("given", "written"),
    [
        ("49.9000", "49.90"),
        ("49.9", "49.90"),
        ("50", "50.00"),
        ("1.2345", "1.2345"),
        ("0", "0.00"),
        ("1E+2", "100.00"),
    ],
)
def test_canonical_amount_keeps_cents_and_only_decimals_that_carry_value(given: str, written: str) -> None:
    canonical = canonical_amount(Decimal(given))
    assert f"{canonical:f}" == written
    assert canonical == Decimal(given), "the value itself never changes"


# ------------------------------------------------------------------------------- intake (R3-R6, kinds)

PLACED = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
CLAIM_TEXT = "The number never received the WhatsApp code; I asked for it three times."


def number(placed_at: datetime = PLACED) -> Order:
    return number_order(placed_at=placed_at)


def intake_code(
    order: Order, kind: ComplaintKind, at: datetime, description: str = CLAIM_TEXT, files: int = 1
) -> str:
    with pytest.raises(PolicyRefusal) as caught:
        intake.check_claim(order, kind, description, files, at, POLICY)
    return caught.value.code


def test_r3_the_claim_window_includes_its_last_instant_and_not_one_microsecond_more() -> None:
    order = number()
    closes = intake.claim_window_closes(order, POLICY)
    assert closes == PLACED + timedelta(days=5)
    for at in (PLACED, closes - timedelta(seconds=1), closes):
        intake.check_claim(order, ComplaintKind.SMS_NOT_RECEIVED, CLAIM_TEXT, 0, at, POLICY)
    for at in (
        closes + timedelta(microseconds=1),
        closes + timedelta(seconds=1),
        closes + timedelta(days=30),
    ):
        assert intake_code(order, ComplaintKind.SMS_NOT_RECEIVED, at) == "claim_window_expired"


def test_r3_the_window_is_the_one_the_policy_snapshot_sets() -> None:
    order = number()
    short = POLICY.model_copy(update={"claim_window": timedelta(hours=1)})
    late = PLACED + timedelta(hours=1, seconds=1)
    intake.check_claim(order, ComplaintKind.SMS_NOT_RECEIVED, CLAIM_TEXT, 0, late, POLICY)
    with pytest.raises(PolicyRefusal) as caught:
        intake.check_claim(order, ComplaintKind.SMS_NOT_RECEIVED, CLAIM_TEXT, 0, late, short)
    assert (
        caught.value.code == "claim_window_expired" and "1:00:00 after it was placed" in caught.value.message
    )


@pytest.mark.parametrize(
    ("description", "accepted"),
    [
        ("x" * 40, True),
        ("x" * 39, False),
        ("  " + "x" * 39 + "   \n", False),
        ("word " * 8, False),  # 40 typed, 39 once the trailing space goes
        ("word  " * 8 + "word", True),  # runs of spaces count once: 44
        ("\n".join(["ab"] * 14), True),  # 14 * 2 letters and 13 single spaces: 41
        (" " * 500, False),
    ],
)
def test_r4_forty_meaningful_characters(description: str, accepted: bool) -> None:
    order = number()
    expected = intake.meaningful_length(description) >= 40
    assert expected is accepted, intake.meaningful_length(description)
    if accepted:
        intake.check_claim(order, ComplaintKind.SMS_NOT_RECEIVED, description, 0, PLACED, POLICY)
    else:
        assert (
            intake_code(order, ComplaintKind.SMS_NOT_RECEIVED, PLACED, description) == "insufficient_reasons"
        )


def test_r4_the_minimum_is_a_setting() -> None:
    lenient = POLICY.model_copy(update={"min_description_chars": 5})
    intake.check_claim(number(), ComplaintKind.SMS_NOT_RECEIVED, "no sms", 0, PLACED, lenient)


def test_r5_what_the_activation_settled_needs_no_claim() -> None:
    check = intake.check_activation_for_claim
    for status in (None, ActivationStatus.CANCELED):
        check(ComplaintKind.SMS_NOT_RECEIVED, status)
    for status in ActivationStatus:
        check(ComplaintKind.INVALID_NUMBER, status)  # R6 is about the number, whatever the SMS did
    with pytest.raises(PolicyRefusal) as completed:
        check(ComplaintKind.SMS_NOT_RECEIVED, ActivationStatus.COMPLETED)
    assert completed.value.code == "activation_completed"
    with pytest.raises(PolicyRefusal) as waiting:
        check(ComplaintKind.SMS_NOT_RECEIVED, ActivationStatus.WAITING_FOR_SMS, PLACED)
    assert waiting.value.code == "activation_pending" and PLACED.isoformat() in waiting.value.message


def test_r6_an_invalid_number_claim_needs_evidence_others_do_not() -> None:
    order = number()
    assert intake_code(order, ComplaintKind.INVALID_NUMBER, PLACED, files=0) == "evidence_required"
    intake.check_claim(order, ComplaintKind.INVALID_NUMBER, CLAIM_TEXT, 1, PLACED, POLICY)
    intake.check_claim(order, ComplaintKind.SMS_NOT_RECEIVED, CLAIM_TEXT, 0, PLACED, POLICY)


def test_each_kind_fits_one_product_and_is_refused_on_the_other() -> None:
    assert intake.PRODUCT_OF_KIND == {
        ComplaintKind.SMS_NOT_RECEIVED: ProductKind.VIRTUAL_NUMBER,
        ComplaintKind.INVALID_NUMBER: ProductKind.VIRTUAL_NUMBER,
        ComplaintKind.MAJOR_DEFECT: ProductKind.SOFTWARE,
    }
    software = software_order().model_copy(update={"placed_at": PLACED})
    for kind in (ComplaintKind.SMS_NOT_RECEIVED, ComplaintKind.INVALID_NUMBER):
        assert intake_code(software, kind, PLACED) == "kind_not_for_product"
    assert intake_code(number(), ComplaintKind.MAJOR_DEFECT, PLACED) == "kind_not_for_product"


def test_the_first_broken_rule_is_the_one_reported() -> None:
    """Kind before window before reasons before evidence: the customer fixes the most basic thing first."""
    late = PLACED + timedelta(days=6)
    software = software_order().model_copy(update={"placed_at": PLACED})
    assert intake_code(software, ComplaintKind.INVALID_NUMBER, late, "short", 0) == "kind_not_for_product"
    assert intake_code(number(), ComplaintKind.INVALID_NUMBER, late, "short", 0) == "claim_window_expired"
    assert intake_code(number(), ComplaintKind.INVALID_NUMBER, PLACED, "short", 0) == "insufficient_reasons"


# ------------------------------------------------------------------------------------------- evidence


@pytest.mark.parametrize(
    "content_type",
    ["image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain"],
)
def test_evidence_of_each_accepted_type_passes(content_type: str) -> None:
    """A real file of each type, as Pillow and pypdf write them (the desk decodes every one whole)."""
    check_evidence([EvidenceFile(name="f", content_type=content_type, data=real_file(content_type))])


@pytest.mark.parametrize(
    ("content_type", "signature"),
    [
        ("image/png", b"\x89PNG\r\n\x1a\n" + bytes(16)),
        ("image/jpeg", b"\xff\xd8\xff\xe0" + bytes(8)),
        ("image/gif", b"GIF89a" + bytes(8)),
        ("image/webp", b"RIFF\x00\x00\x00\x00WEBPVP8 "),
        ("application/pdf", b"%PDF-1.7\n"),
    ],
)
def test_evidence_that_only_begins_as_its_type_is_rejected(content_type: str, signature: bytes) -> None:
    """The first bytes of a type followed by anything else: the check reads the whole file."""
    with pytest.raises(PolicyRefusal, match="content is not") as caught:
        check_evidence([EvidenceFile(name="f", content_type=content_type, data=signature)])
    assert caught.value.code == "evidence_rejected"


@pytest.mark.parametrize(
    ("files", "why"),
    [
        ([EvidenceFile(name="a.png", content_type="image/png", data=b"MZ\x90\x00")], "content is not"),
        ([EvidenceFile(name="a.exe", content_type="application/x-msdownload", data=b"MZ")], "not accepted"),
        ([EvidenceFile(name="a.txt", content_type="text/plain", data=b"\xff\xfe\x00")], "content is not"),
        ([EvidenceFile(name="a.png", content_type="image/png", data=PNG)] * 6, "at most 5"),
        (
            [EvidenceFile(name="a.pdf", content_type="application/pdf", data=b"%PDF-" + bytes(4 << 20))] * 3,
            "MiB",
        ),
    ],
)
def test_evidence_of_the_wrong_type_count_or_size_is_rejected(files: list[EvidenceFile], why: str) -> None:
    with pytest.raises(PolicyRefusal, match=why) as caught:
        check_evidence(files)
    assert caught.value.code == "evidence_rejected"


def test_a_single_file_over_five_mib_is_invalid_input() -> None:
    with pytest.raises(ValidationError):
        EvidenceFile(name="big.pdf", content_type="application/pdf", data=b"%PDF-" + bytes(5 << 20))


# --------------------------------------------------------------------------------- claims under review


def test_r5_r6_each_kind_has_its_own_rejection_reasons() -> None:
    reject = ReviewDecision.REJECT
    for kind, reasons in REJECTION_REASONS.items():
        for reason in reasons:
            assert review_reason_refusal(reject, reason, kind) is None
        others = {*DefectRejection, *ClaimRejection} - set(reasons)
        for reason in others:
            refused = review_reason_refusal(reject, reason, kind)
            assert refused is not None and refused.code == "reason_code_not_allowed", (kind, reason)
    assert ClaimRejection.SMS_DELIVERED in REJECTION_REASONS[ComplaintKind.SMS_NOT_RECEIVED]
    assert ClaimRejection.NUMBER_VALID in REJECTION_REASONS[ComplaintKind.INVALID_NUMBER]
    assert set(REJECTION_REASONS[ComplaintKind.MAJOR_DEFECT]) == set(DefectRejection)


def test_a_claim_takes_only_review_and_withdraw() -> None:
    claim = state_of(S.UNDER_REVIEW).model_copy(update={"kind": ComplaintKind.SMS_NOT_RECEIVED})
    for action in get_args(Action):
        if action in ("review", "withdraw"):
            check_action(claim, action, right_actor(action, claim), NOW)
        else:
            assert refusal(claim, action, right_actor(action, claim)) == INVALID_STATE, action
    assert ACTIONS_OF_KIND[ComplaintKind.MAJOR_DEFECT] == frozenset(get_args(Action))
