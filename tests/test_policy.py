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

from policy import rules
from policy.complaint import (
    ACTOR_ROLE,
    ALLOWED,
    DEADLINE_BOUND,
    AccessAnswer,
    Action,
    ComplaintState,
    Review,
    SealedSecret,
    check_action,
)
from policy.models import (
    FINAL_STATUSES,
    Actor,
    AwareDatetime,
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
from tests.factories import DESCRIPTION, POLICY, SUPPORT, customer, software_order

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
    """POLICY.md spelled out, so that a change to `ALLOWED` is a deliberate change of policy."""
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
