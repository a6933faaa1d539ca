"""Property-based tests of the pure policy: hypothesis draws the instants, amounts, texts and files.

The example tests in test_policy.py pin the rules at chosen points; these say what must hold for *every*
input, so that a boundary nobody thought to write down (an offset time zone, a price of 0.0001, a tab in a
description, two five-MiB files) is still checked. Each property is stated against an oracle that does not
share the implementation's arithmetic (exact fractions, elapsed UTC time, the rule text), so that a flipped
sign or a `<` for a `<=` in policy/ makes hypothesis find a counterexample.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from typing import get_args

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.dialects import sqlite
from temporalio.contrib.pydantic import pydantic_data_converter

from ledger.records import RefundIssue
from ledger.types import ExactDecimal
from policy import intake, refusals, rules
from policy.activation import (
    ActivationState,
    CancelActivation,
    SmsReceived,
    check_cancel,
    check_sms,
)
from policy.complaint import OPEN_BEFORE_SETTLEMENT, Action, ComplaintState, check_action
from policy.currencies import CURRENCIES
from policy.evidence import (
    ACCEPTED_TYPES,
    MAX_FILE_BYTES,
    MAX_FILES,
    MAX_TOTAL_BYTES,
    EvidenceFile,
    check_evidence,
)
from policy.ids import activation_id_of, order_id_of_activation
from policy.models import (
    FINAL_STATUSES,
    ActivationStatus,
    Actor,
    ComplaintKind,
    ComplaintStatus,
    Identifier,
    Money,
    Order,
    Product,
    ProductKind,
    Role,
    canonical_amount,
)
from policy.refusals import PolicyRefusal
from policy.settings import PolicySettings, PolicySnapshot
from starter.api.schemas.common import format_amount
from tests.evidence_files import SMALLEST_PNG, png_of, real_file, text_of
from tests.factories import DESCRIPTION, POLICY, SUPPORT

S = ComplaintStatus
UNIT = Decimal("0.0001")
"""The smallest amount Money can hold: four decimal places."""
MAX_AMOUNT = Decimal("99999999999999.9999")
"""The largest: 18 digits, four of them decimals."""
MICROSECOND = timedelta(microseconds=1)
"""The smallest step a `datetime` takes."""

# ------------------------------------------------------------------------------------------ strategies

FIXED_OFFSETS = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
"""Offsets as ISO-8601 carries them (`+05:30`), which is what the API, the ledger and Temporal hand over."""

INSTANTS = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=FIXED_OFFSETS
)
WINDOWS = st.timedeltas(min_value=MICROSECOND, max_value=timedelta(days=60))
"""A policy duration: anything from a microsecond (tests shrink windows to seconds) to two months."""

AMOUNTS = (
    st.integers(min_value=0, max_value=4)
    .flatmap(lambda places: st.decimals(min_value=0, max_value=MAX_AMOUNT, places=places))
    .flatmap(lambda amount: st.sampled_from([amount, amount.normalize(), amount.quantize(Decimal("1E-8"))]))
)
"""Every amount Money holds, with zero to four decimals that carry value, written every way a Decimal can
write it: `50.0000`, `5E+1`, `50.00000000`."""

IN_CIRCULATION = sorted(CURRENCIES)
CURRENCY = st.sampled_from(IN_CIRCULATION)
MONEY = st.builds(Money, amount=AMOUNTS, currency=CURRENCY)

WHITESPACE = [c for c in map(chr, range(0x3001)) if c.isspace()]
"""Every character `str.split()` splits on (the last one is U+3000, the ideographic space)."""
SEEN = st.characters(categories=["L", "N", "P", "S"]).filter(lambda c: c not in intake.BLANK_LOOKING)
"""Characters a reader sees, each in a place of its own: letters, numbers, punctuation and symbols, but
not the few that draw as blanks."""
UNSEEN = st.one_of(
    st.characters(categories=["Mn", "Mc", "Me", "Cc", "Cf", "Co", "Cn"]).filter(lambda c: not c.isspace()),
    st.sampled_from(sorted(intake.BLANK_LOOKING)),
)
"""What takes no place of its own: marks (on the character before), controls, format characters (zero-width
spaces and joiners, bidi marks, tags), private use, unassigned, and the blank-looking letters and symbols."""

ROLES_AND_IDS = st.builds(
    Actor, role=st.sampled_from(Role), id=st.sampled_from(["bob", "eve", "shop", "alice"])
)

CONVERTER = pydantic_data_converter.payload_converter
"""The converter the worker and the desk use: what a workflow input or an activity argument goes through."""


def order_of(kind: ProductKind, price: Money, placed_at: datetime, customer_id: str = "bob") -> Order:
    return Order(
        order_id="ord-1",
        customer_id=customer_id,
        product=Product(sku="sku-1", kind=kind, name="A product"),
        price=price,
        placed_at=placed_at,
    )


EPOCH = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
SOFTWARE = order_of(ProductKind.SOFTWARE, Money(amount=Decimal("50.00"), currency="EUR"), EPOCH)
NUMBER = order_of(ProductKind.VIRTUAL_NUMBER, Money(amount=Decimal("0.75"), currency="EUR"), EPOCH)
BOB = Actor(role=Role.CUSTOMER, id="bob")


def defect(
    status: ComplaintStatus, created_at: datetime, deadline: datetime, policy: PolicySnapshot
) -> ComplaintState:
    return ComplaintState(
        complaint_id="ord-1.major_defect.1",
        kind=ComplaintKind.MAJOR_DEFECT,
        order=SOFTWARE,
        description=DESCRIPTION,
        filed_by=BOB,
        policy=policy,
        status=status,
        created_at=created_at,
        deadline=deadline,
    )


def refusal_code(state: ComplaintState, action: Action, actor: Actor, now: datetime) -> str | None:
    """The code `check_action` refuses with, or None when it allows the action."""
    try:
        check_action(state, action, actor, now)
    except PolicyRefusal as refused:
        return refused.code
    return None


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for one example and put the old ones back (hypothesis runs many examples
    in one test, so pytest's function-scoped monkeypatch would leak between them)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


# ----------------------------------------------------------------------------- R7, R10: the deadline


@settings(max_examples=150, deadline=None)
@given(
    filed_at=INSTANTS,
    rectify_window=WINDOWS,
    response_window=WINDOWS,
    requests=st.lists(
        st.tuples(st.floats(min_value=0, max_value=1.5), st.floats(min_value=0, max_value=1), FIXED_OFFSETS),
        max_size=6,
    ),
)
def test_r7_r10_access_requests_the_guard_allows_move_the_deadline_by_exactly_the_time_the_customer_took(
    filed_at: datetime,
    rectify_window: timedelta,
    response_window: timedelta,
    requests: list[tuple[float, float, timezone]],
) -> None:
    """The workflow's own sequence: support asks for access while `check_action` lets it (before the
    deadline), the customer answers within `access_response_window` from wherever they are, and the deadline
    is recomputed from the complaint time and the paused total, as `answer_access` does. Whatever the
    sequence, the company's own working time between filing and the deadline stays exactly `rectify_window`
    (R7), and each answer moves the deadline forward by the elapsed time the customer took (R10)."""
    policy = PolicySnapshot(rectify_window=rectify_window, access_response_window=response_window)
    deadline = rules.rectification_deadline(filed_at, policy, timedelta(0))
    assert deadline.astimezone(UTC) - filed_at.astimezone(UTC) == rectify_window
    paused = timedelta(0)
    customer_time = timedelta(0)
    now = filed_at
    for request_share, answer_share, customer_zone in requests:
        requested_at = now + (deadline - now) * request_share
        state = defect(S.RECTIFYING, filed_at, deadline, policy)
        if requested_at >= deadline:
            assert refusal_code(state, "request_access", SUPPORT, requested_at) == refusals.INVALID_STATE
            continue
        assert refusal_code(state, "request_access", SUPPORT, requested_at) is None
        due = rules.access_answer_due(requested_at, policy)
        answered_at = (requested_at + (due - requested_at) * answer_share).astimezone(customer_zone)
        waiting = state.model_copy(update={"status": S.AWAITING_ACCESS})
        assert refusal_code(waiting, "answer_access", BOB, answered_at) is None
        took = answered_at.astimezone(UTC) - requested_at.astimezone(UTC)

        paused += rules.pause_for_access(requested_at, answered_at)
        moved = rules.rectification_deadline(filed_at, policy, paused)

        assert moved - deadline == took, "R10: the deadline moves by exactly the time the customer took"
        assert moved >= filed_at + rectify_window
        customer_time += took
        deadline, now = moved, answered_at
    assert deadline.astimezone(UTC) - filed_at.astimezone(UTC) - customer_time == rectify_window


@settings(max_examples=150, deadline=None)
@given(
    filed_at=INSTANTS,
    rectify_window=WINDOWS,
    answers=st.lists(
        st.tuples(INSTANTS, st.timedeltas(min_value=timedelta(days=-3), max_value=timedelta(days=10))),
        max_size=6,
    ),
    data=st.data(),
)
def test_r7_r10_no_pause_in_any_order_moves_the_deadline_backwards(
    filed_at: datetime,
    rectify_window: timedelta,
    answers: list[tuple[datetime, timedelta]],
    data: st.DataObject,
) -> None:
    """Pauses in any order and with any timestamps, including an answer stamped before its request (a
    replayed or skewed clock): the deadline never goes back, never comes before `filed_at + rectify_window`,
    moves by exactly the non-negative time between request and answer, and the final deadline is the same
    whatever order the pauses came in (the paused time is a sum)."""
    policy = PolicySnapshot(rectify_window=rectify_window)
    floor = filed_at + rectify_window

    def deadlines(pairs: list[tuple[datetime, timedelta]]) -> datetime:
        paused = timedelta(0)
        deadline = rules.rectification_deadline(filed_at, policy, paused)
        for requested_at, gap in pairs:
            paused += rules.pause_for_access(requested_at, requested_at + gap)
            moved = rules.rectification_deadline(filed_at, policy, paused)
            assert moved >= deadline, "a pause never moves the deadline backwards"
            assert moved >= floor, "R7: never earlier than rectify_window from the complaint"
            assert moved - deadline == max(gap, timedelta(0))
            deadline = moved
        return deadline

    final = deadlines(answers)
    assert final - floor == sum((max(gap, timedelta(0)) for _, gap in answers), timedelta(0))
    assert deadlines(data.draw(st.permutations(answers))) == final
    with pytest.raises(ValueError, match="negative"):
        rules.rectification_deadline(filed_at, policy, -MICROSECOND)


@settings(max_examples=100, deadline=None)
@given(
    created_at=INSTANTS,
    window=WINDOWS,
    action=st.sampled_from(["request_access", "mark_fixed"]),
    status=st.sampled_from([S.UNDER_REVIEW, S.RECTIFYING]),
    before=st.timedeltas(min_value=MICROSECOND, max_value=timedelta(days=30)),
    after=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30)),
)
def test_r9_r11_asking_for_access_and_fixing_end_exactly_at_the_deadline(
    created_at: datetime,
    window: timedelta,
    action: Action,
    status: ComplaintStatus,
    before: timedelta,
    after: timedelta,
) -> None:
    """R9/R11 act on the rectification period: up to one microsecond before the deadline support may
    still ask for access or mark the defect fixed; from the deadline itself on, the remedy (R12) is due."""
    policy = PolicySnapshot(rectify_window=window)
    deadline = rules.rectification_deadline(created_at, policy, timedelta(0))
    state = defect(status, created_at, deadline, policy)
    assert refusal_code(state, action, SUPPORT, deadline - before) is None
    assert refusal_code(state, action, SUPPORT, deadline - MICROSECOND) is None
    assert refusal_code(state, action, SUPPORT, deadline + after) == refusals.INVALID_STATE


@settings(max_examples=100, deadline=None)
@given(
    start=INSTANTS,
    windows=st.lists(WINDOWS, min_size=6, max_size=6),
    zone=FIXED_OFFSETS,
)
def test_r1_r10_r12_r13_every_due_time_is_its_window_of_elapsed_time_from_its_start(
    start: datetime, windows: list[timedelta], zone: timezone
) -> None:
    """Each timer the workflows set is its setting's worth of elapsed time (compared in UTC, whatever
    offset the start carries) after the instant it counts from, or before it for the R13 reminder."""
    sms, access, remedy, reminder, review, rectify = windows
    policy = PolicySnapshot(
        sms_wait=sms,
        access_response_window=access,
        remedy_choice_window=remedy,
        review_reminder_before=reminder,
        review_window=review,
        rectify_window=rectify,
    )
    local = start.astimezone(zone)

    def elapsed(later: datetime) -> timedelta:
        return later.astimezone(UTC) - start.astimezone(UTC)

    assert elapsed(rules.sms_wait_ends(local, policy)) == sms
    assert elapsed(rules.access_answer_due(local, policy)) == access
    assert elapsed(rules.remedy_choice_due(local, policy)) == remedy
    assert elapsed(rules.review_deadline(local, policy)) == review
    assert elapsed(rules.rectification_deadline(local, policy, timedelta(0))) == rectify
    assert elapsed(rules.review_reminder_at(local, policy)) == -reminder


# ------------------------------------------------------------------------------- R2, R5, R6, R12: money


@settings(max_examples=150, deadline=None)
@given(price=MONEY, kind=st.sampled_from(ProductKind), placed_at=INSTANTS)
@example(price=Money(amount=UNIT, currency="EUR"), kind=ProductKind.VIRTUAL_NUMBER, placed_at=EPOCH)
@example(price=Money(amount=MAX_AMOUNT, currency="JPY"), kind=ProductKind.SOFTWARE, placed_at=EPOCH)
@example(price=Money(amount=Decimal("0"), currency="EUR"), kind=ProductKind.SOFTWARE, placed_at=EPOCH)
def test_r2_r5_r6_r12_the_refund_is_the_price_exactly_and_stays_so_on_its_way_to_the_balance(
    price: Money, kind: ProductKind, placed_at: datetime
) -> None:
    """A full refund is the price paid, no more and no less, in the price's currency; and it is still that
    amount after the trip every refund takes: into a Temporal activity argument (`RefundIssue` through the
    pydantic data converter), into the ledger's amount column (SQLite's exact text) and out as the API's
    decimal string. A float anywhere on that path would lose the last digits of a large price."""
    order = order_of(kind, price, placed_at)
    refund = rules.full_refund(order)
    assert refund.currency == price.currency
    assert refund.amount == price.amount and not refund.amount > price.amount

    issue = RefundIssue(
        source_kind="complaint",
        source_id="ord-1.major_defect.1",
        customer_id=order.customer_id,
        order_id=order.order_id,
        amount=refund,
        actor="system:refund-desk",
        at=placed_at,
    )
    [carried] = CONVERTER.from_payloads(CONVERTER.to_payloads([issue]), [RefundIssue])
    assert isinstance(carried, RefundIssue) and carried.amount == price
    column = ExactDecimal()
    dialect = sqlite.dialect()
    stored = column.process_result_value(column.process_bind_param(carried.amount.amount, dialect), dialect)
    assert stored == price.amount
    assert stored is not None and Decimal(format_amount(stored)) == price.amount


def money_allows(amount: Decimal) -> bool:
    """Money's model in words: finite, not negative, below 10^14 (18 digits, 4 of them decimals), and no
    digit that carries value after the fourth decimal place."""
    if not amount.is_finite() or amount < 0 or amount >= 10**14:
        return False
    return amount == amount.quantize(UNIT)


@settings(max_examples=300, deadline=None)
@given(
    amount=st.one_of(
        st.decimals(),
        st.decimals(min_value=-1, max_value=1, places=5),
        st.decimals(min_value=MAX_AMOUNT - 1, max_value=MAX_AMOUNT + 1, places=5),
        AMOUNTS,
    )
)
@example(amount=UNIT)
@example(amount=UNIT / 10)
@example(amount=MAX_AMOUNT)
@example(amount=MAX_AMOUNT + UNIT)
@example(amount=-UNIT)
@example(amount=Decimal("1.00000000"))
@example(amount=Decimal("1E+13"))
@example(amount=Decimal("1E+14"))
@example(amount=Decimal("sNaN"))
def test_r12_money_holds_exactly_the_amounts_its_model_allows_and_keeps_them_unchanged(
    amount: Decimal,
) -> None:
    """The boundaries of Money (what a price, a refund or a replacement value can be): 0.0001 and
    99999999999999.9999 are in, one unit beyond either is out, NaN and infinities are out, trailing zeros
    past the fourth place are harmless; and an accepted amount is the given value, not a rounding of it."""
    try:
        money = Money(amount=amount, currency="EUR")
    except ValidationError:
        assert not money_allows(amount), f"{amount} is a valid amount but Money refused it"
        return
    assert money_allows(amount), f"{amount} is outside Money's model but was accepted"
    assert isinstance(money.amount, Decimal) and money.amount == amount


@settings(max_examples=20, deadline=None)
@given(amount=st.floats(min_value=0, max_value=1e13, allow_nan=False))
@example(amount=12345678901234.5678)
def test_money_never_takes_a_float(amount: float) -> None:
    """Money's docstring: "An exact amount in one currency. Never a float." A float has already lost the
    cents (12345678901234.5678 cannot be a float), so Money must refuse it rather than round it."""
    with pytest.raises(ValidationError):
        Money(amount=amount, currency="EUR")
    with pytest.raises(ValidationError):
        Money.model_validate_json(f'{{"amount": {amount!r}, "currency": "EUR"}}')


@settings(max_examples=200, deadline=None)
@given(amount=AMOUNTS)
@example(amount=Decimal("49.9"))
@example(amount=Decimal("1E+2"))
@example(amount=Decimal("0E-10"))
@example(amount=MAX_AMOUNT)
def test_an_amount_is_written_as_plain_decimals_with_cents_and_reads_back_the_same(amount: Decimal) -> None:
    """What the API, the CLI and the audit trail print: digits, a point, two to four decimals, the extra
    ones only when they carry value; never an exponent; and the text is the same amount."""
    text = f"{canonical_amount(amount):f}"
    whole, point, decimals = text.partition(".")
    assert whole.isdigit() and point == "." and decimals.isdigit(), text
    assert 2 <= len(decimals) <= 4, text
    assert len(decimals) == 2 or not decimals.endswith("0"), text
    assert Decimal(text) == amount


def test_a_zero_amount_is_never_written_with_a_minus_sign() -> None:
    """Negative zero passes Money's `ge=0`, and every text made from it keeps the sign: a Money of
    "-0.00" would be shown as a refund of "-0.00 EUR" by the API, the CLI and the audit trail."""
    for written in ("-0", "-0.00", "-0E-4"):
        money = Money(amount=Decimal(written), currency="EUR")
        assert not f"{canonical_amount(money.amount):f}".startswith("-"), written


# ------------------------------------------------------------------------------- R12: the replacement


@st.composite
def price_and_tolerance(draw: st.DrawFn) -> tuple[Money, Decimal]:
    """A price and a tolerance whose product has at most four decimals, so that `price * (1 ± tolerance)`
    is itself an amount Money can hold: the exact boundary can be offered."""
    price_places = draw(st.integers(min_value=0, max_value=4))
    amount = draw(st.decimals(min_value=0, max_value=MAX_AMOUNT / 2, places=price_places))
    tolerance = draw(st.decimals(min_value=0, max_value=1, places=4 - price_places))
    return Money(amount=amount, currency=draw(CURRENCY)), tolerance


@settings(max_examples=300, deadline=None)
@given(price_and_tolerance())
@example((Money(amount=Decimal("50.00"), currency="EUR"), Decimal("0.10")))
@example((Money(amount=UNIT, currency="EUR"), Decimal("1")))
def test_r12_a_replacement_exactly_at_the_tolerance_is_accepted_and_one_unit_beyond_is_refused(
    drawn: tuple[Money, Decimal],
) -> None:
    """R12 "the same or around the same value": `price * (1 - tolerance)` and `price * (1 + tolerance)` are
    both acceptable, 0.0001 further out on either side is not, and the same amounts in another currency
    never are."""
    price, tolerance = drawn

    def accepts(amount: Decimal, currency: str = price.currency) -> bool:
        return rules.within_replacement_tolerance(price, Money(amount=amount, currency=currency), tolerance)

    highest = price.amount * (1 + tolerance)
    lowest = price.amount * (1 - tolerance)
    assert accepts(highest) and accepts(lowest) and accepts(price.amount)
    assert not accepts(highest + UNIT)
    if lowest >= UNIT:
        assert not accepts(lowest - UNIT)
    other = next(code for code in IN_CIRCULATION if code != price.currency)
    assert not accepts(price.amount, other)
    assert rules.within_replacement_tolerance(
        price, rules.same_product_again(order_of(ProductKind.SOFTWARE, price, EPOCH)).value, tolerance
    ), "R12: the same product again always fits"


@settings(max_examples=300, deadline=None)
@given(
    price=MONEY,
    tolerance=st.decimals(min_value=0, max_value=1, places=10),
    step=st.integers(min_value=-2, max_value=2),
    above=st.booleans(),
)
@example(price=Money(amount=Decimal("0.30"), currency="EUR"), tolerance=Decimal("0.1"), step=0, above=True)
def test_r12_the_tolerance_check_agrees_with_exact_arithmetic_next_to_the_boundary(
    price: Money, tolerance: Decimal, step: int, above: bool
) -> None:
    """For any price and any tolerance a setting could reasonably hold (ten decimals), the offers on the
    0.0001 grid right next to the boundary are judged as exact rational arithmetic judges them."""
    exact_margin = Fraction(price.amount) * Fraction(tolerance)
    grid_margin = Decimal(int(exact_margin / Fraction(UNIT))) * UNIT + step * UNIT
    value = price.amount + grid_margin if above else price.amount - grid_margin
    if not money_allows(value):
        return
    offered = Money(amount=value, currency=price.currency)
    expected = abs(Fraction(value) - Fraction(price.amount)) <= exact_margin
    assert rules.within_replacement_tolerance(price, offered, tolerance) is expected


def test_r12_the_tolerance_check_stays_exact_for_a_tolerance_with_many_digits() -> None:
    """PolicySnapshot takes any Decimal in [0, 1] as the tolerance; with 30 digits, 10% of 10^13 minus a
    hair rounds up to exactly 10^12 and an offer 10^12 above the price (10% exactly) is accepted."""
    policy = PolicySnapshot(replacement_value_tolerance="0.099999999999999999999999999999")
    price = Money(amount=Decimal("10000000000000"), currency="EUR")
    offer = Money(amount=Decimal("11000000000000"), currency="EUR")
    limit = policy.replacement_value_tolerance
    assert abs(Fraction(offer.amount) - Fraction(price.amount)) > Fraction(price.amount) * Fraction(limit)
    assert not rules.within_replacement_tolerance(price, offer, limit)


# ------------------------------------------------------------------------------------ R3, R4: intake

KIND_AND_PRODUCT = st.sampled_from(list(intake.PRODUCT_OF_KIND.items()))


@settings(max_examples=150, deadline=None)
@given(
    placed_at=INSTANTS,
    window=WINDOWS,
    kind_and_product=KIND_AND_PRODUCT,
    filer_zone=FIXED_OFFSETS,
    share=st.floats(min_value=0, max_value=1),
    late_by=st.timedeltas(min_value=MICROSECOND, max_value=timedelta(days=400)),
)
def test_r3_a_claim_is_accepted_up_to_the_last_instant_of_the_window_and_refused_one_microsecond_later(
    placed_at: datetime,
    window: timedelta,
    kind_and_product: tuple[ComplaintKind, ProductKind],
    filer_zone: timezone,
    share: float,
    late_by: timedelta,
) -> None:
    """R3 "within the period of 5 days after the order is placed", in elapsed time, whatever offsets the
    order and the claim carry: any instant of the window, its last instant included, is accepted; the
    window plus any time at all (one microsecond) is `claim_window_expired`."""
    kind, product = kind_and_product
    order = order_of(product, Money(amount=Decimal("1.00"), currency="EUR"), placed_at)
    policy = PolicySnapshot(claim_window=window)
    last = (placed_at + window).astimezone(filer_zone)
    assert last.astimezone(UTC) - placed_at.astimezone(UTC) == window
    for filed_at in (placed_at, placed_at + window * share, last):
        intake.check_claim(order, kind, DESCRIPTION, 1, filed_at.astimezone(filer_zone), policy)
    for filed_at in (last + MICROSECOND, last + late_by):
        with pytest.raises(PolicyRefusal) as refused:
            intake.check_claim(order, kind, DESCRIPTION, 1, filed_at, policy)
        assert refused.value.code == refusals.CLAIM_WINDOW_EXPIRED


@settings(max_examples=200, deadline=None)
@given(
    words=st.lists(st.text(alphabet=SEEN, min_size=1, max_size=12), max_size=12),
    gaps=st.lists(
        st.text(alphabet=st.sampled_from(WHITESPACE), min_size=1, max_size=4), min_size=13, max_size=13
    ),
    padding=st.tuples(
        st.text(alphabet=st.sampled_from(WHITESPACE), max_size=5),
        st.text(alphabet=st.sampled_from(WHITESPACE), max_size=5),
    ),
    hidden=st.lists(st.tuples(st.integers(min_value=0), UNSEEN), max_size=60),
    minimum=st.integers(min_value=0, max_value=120),
    kind_and_product=KIND_AND_PRODUCT,
)
@example(
    words=["x" * 12] * 3 + ["x"],
    gaps=[" "] * 13,
    padding=("", ""),
    hidden=[],
    minimum=40,
    kind_and_product=(ComplaintKind.MAJOR_DEFECT, ProductKind.SOFTWARE),
)
@example(
    words=["a"],
    gaps=[" "] * 13,
    padding=("", ""),
    hidden=[(1, "\u0301")] * 60,
    minimum=40,
    kind_and_product=(ComplaintKind.MAJOR_DEFECT, ProductKind.SOFTWARE),
)
def test_r4_a_description_counts_its_characters_with_each_run_of_whitespace_as_one_and_padding_as_none(
    words: list[str],
    gaps: list[str],
    padding: tuple[str, str],
    hidden: list[tuple[int, str]],
    minimum: int,
    kind_and_product: tuple[ComplaintKind, ProductKind],
) -> None:
    """R4 "detailed reasons" is at least `min_description_chars` characters as a reader sees them: every
    letter, number, punctuation mark and symbol of the words counts (accents, CJK, emoji: one each), a run
    of spaces, tabs, line breaks or Unicode spaces between two words counts once, and leading or trailing
    padding not at all; what takes no place of its own (a mark, a zero-width or control character, a
    blank-looking filler) counts nothing wherever it is put. So neither padding nor invisible characters
    ever lift a short text over the minimum, and exactly the minimum is enough."""
    body = "".join(word + gap for word, gap in zip(words[:-1], gaps, strict=False)) + "".join(words[-1:])
    description = padding[0] + body + padding[1]
    for at, char in hidden:
        cut = at % (len(description) + 1)
        description = description[:cut] + char + description[cut:]
    seen = sum(len(word) for word in words) + max(len(words) - 1, 0)
    assert intake.meaningful_length(description) == seen

    kind, product = kind_and_product
    policy = PolicySnapshot(min_description_chars=minimum)
    order = order_of(product, Money(amount=Decimal("1.00"), currency="EUR"), EPOCH)
    if seen >= minimum:
        intake.check_claim(order, kind, description, 1, EPOCH, policy)
    else:
        with pytest.raises(PolicyRefusal) as refused:
            intake.check_claim(order, kind, description, 1, EPOCH, policy)
        assert refused.value.code == refusals.INSUFFICIENT_REASONS


# -------------------------------------------------------------------------------------- R6: evidence

SIZED = {"image/png": png_of, "text/plain": text_of}
"""The types a file of any size can be made of (a PNG padded with a private chunk, a log); a file of another
type is its real small file, whatever size was drawn."""
REAL = {content_type: real_file(content_type) for content_type in ACCEPTED_TYPES}
REFUSED_TYPES = ["image/svg+xml", "text/html", "application/octet-stream", "application/x-msdownload"]


def evidence(declared: str, actual: str, size: int, number: int = 0) -> EvidenceFile:
    """A file declared as `declared` whose bytes are a whole file of type `actual`, `size` bytes long if
    `actual` can be made that size."""
    data = SIZED[actual](size) if actual in SIZED else REAL[actual]
    return EvidenceFile(name=f"file-{number}", content_type=declared, data=data)


@st.composite
def attachments(draw: st.DrawFn) -> tuple[list[EvidenceFile], bool]:
    """Up to seven files, most of an accepted type with matching bytes, some of a refused type or with
    another type's bytes, sized from a few bytes to the five-MiB maximum, so that two full-size files land
    exactly on the ten-MiB total. Returns the files and whether every one of them is honest."""
    files: list[EvidenceFile] = []
    honest = True
    for number in range(draw(st.integers(min_value=0, max_value=MAX_FILES + 2))):
        declared = draw(st.sampled_from(list(ACCEPTED_TYPES)))
        actual = declared
        lie = draw(st.sampled_from(["none"] * 8 + ["refused type", "other bytes"]))
        if lie == "refused type":
            declared, honest = draw(st.sampled_from(REFUSED_TYPES)), False
        elif lie == "other bytes" and declared != "text/plain":
            actual, honest = draw(st.sampled_from([t for t in REAL if t != declared])), False
        size = draw(
            st.one_of(
                st.integers(min_value=SMALLEST_PNG, max_value=4096),
                st.sampled_from([MAX_FILE_BYTES - 1, MAX_FILE_BYTES]),
            )
        )
        files.append(evidence(declared, actual, size, number))
    return files, honest


@settings(max_examples=60, deadline=None)
@given(attachments())
@example(([evidence("image/png", "image/png", MAX_FILE_BYTES)] * 2, True))
@example(
    ([evidence("image/png", "image/png", MAX_FILE_BYTES), evidence("text/plain", "text/plain", 16)], True)
)
@example(([evidence("application/pdf", "application/pdf", 16)] * MAX_FILES, True))
@example(([evidence("application/pdf", "application/pdf", 16)] * (MAX_FILES + 1), True))
@example(([evidence("image/png", "application/pdf", 16)], False))
@example(([evidence("text/html", "text/plain", 16)], False))
@example(([evidence("image/webp", "image/gif", 16)], False))
def test_r6_evidence_is_accepted_exactly_when_count_total_size_and_every_type_hold(
    drawn: tuple[list[EvidenceFile], bool],
) -> None:
    """At most five files, at most ten MiB together (exactly ten is fine), each an accepted type whose bytes
    are wholly that type: anything else is `evidence_rejected`, whichever limit it breaks first."""
    files, honest = drawn
    within = len(files) <= MAX_FILES and sum(len(f.data) for f in files) <= MAX_TOTAL_BYTES
    if within and honest:
        check_evidence(files)
    else:
        with pytest.raises(PolicyRefusal) as refused:
            check_evidence(files)
        assert refused.value.code == refusals.EVIDENCE_REJECTED


@settings(max_examples=200, deadline=None)
@given(
    line=st.text(min_size=1),
    bad_byte=st.one_of(
        st.integers(min_value=0x80, max_value=0xBF), st.integers(min_value=0xF8, max_value=0xFF)
    ),
    at=st.integers(min_value=0),
)
def test_r6_a_text_file_is_any_utf8_without_nul_bytes(line: str, bad_byte: int, at: int) -> None:
    """A log pasted as text/plain is accepted in any language (any UTF-8 at all) unless it holds a NUL byte
    (then it is a binary in disguise); a stray byte that cannot start a UTF-8 character makes it binary.
    The log starts with its time, as logs do: one that starts as markup is not plain text (see
    `tests/test_attacker_findings.py`)."""
    text = "12:01 " + line
    encoded = text.encode("utf-8")
    if "\x00" in text:
        with pytest.raises(PolicyRefusal):
            check_evidence([EvidenceFile(name="log.txt", content_type="text/plain", data=encoded)])
        return
    check_evidence([EvidenceFile(name="log.txt", content_type="text/plain", data=encoded)])
    cut = len(text[: at % (len(text) + 1)].encode("utf-8"))
    broken = encoded[:cut] + bytes([bad_byte]) + encoded[cut:]
    with pytest.raises(PolicyRefusal) as refused:
        check_evidence([EvidenceFile(name="log.txt", content_type="text/plain", data=broken)])
    assert refused.value.code == refusals.EVIDENCE_REJECTED


# ------------------------------------------------------------------------------------------ settings

DURATION_FIELDS = [
    name for name, field in PolicySnapshot.model_fields.items() if field.annotation is timedelta
]
TIMEDELTA = TypeAdapter(timedelta)
COUNTS = ["min_description_chars", "max_remedy_changes", "history_events_per_run"]
"""The settings that are whole numbers, each with its least value below."""
LEAST_COUNT = {"min_description_chars": 0, "max_remedy_changes": 0, "history_events_per_run": 100}


@settings(max_examples=100, deadline=None)
@given(
    field=st.sampled_from(DURATION_FIELDS),
    seconds=st.integers(min_value=0, max_value=100 * 366 * 86_400),
    micro=st.integers(min_value=0, max_value=999_999),
    whole=st.integers(min_value=1, max_value=86_399_999_999_999),
)
def test_a_duration_in_seconds_from_the_environment_is_read_to_the_microsecond(
    field: str, seconds: int, micro: int, whole: int
) -> None:
    """`REFUND_DESK_RECTIFY_WINDOW=90` is 90 seconds: any whole number of seconds up to the largest
    timedelta, and seconds with six decimals for any duration up to a century, are read exactly."""
    fractional = timedelta(seconds=seconds, microseconds=micro)
    name = f"REFUND_DESK_{field.upper()}"
    with environment({name: str(whole)}):
        assert getattr(PolicySettings(), field) == timedelta(seconds=whole)
    if fractional > timedelta(0):
        with environment({name: f"{seconds}.{micro:06d}"}):
            assert getattr(PolicySettings().snapshot(), field) == fractional


@settings(max_examples=100, deadline=None)
@given(
    field=st.sampled_from(DURATION_FIELDS),
    days=st.integers(min_value=0, max_value=10_000),
    hours=st.integers(min_value=0, max_value=48),
    minutes=st.integers(min_value=0, max_value=120),
    seconds=st.integers(min_value=0, max_value=120),
    micro=st.integers(min_value=0, max_value=999_999),
)
def test_an_iso8601_duration_from_the_environment_is_read_as_written(
    field: str, days: int, hours: int, minutes: int, seconds: int, micro: int
) -> None:
    """`P5D`, `PT30S`, `P1DT36H90M0.5S`: days, hours, minutes and (fractional) seconds add up, overflowing
    components included, to the microsecond."""
    expected = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds, microseconds=micro)
    if expected <= timedelta(0):
        return
    text = f"P{days}DT{hours}H{minutes}M{seconds}.{micro:06d}S"
    with environment({f"REFUND_DESK_{field.upper()}": text}):
        assert getattr(PolicySettings(), field) == expected


@settings(max_examples=100, deadline=None)
@given(
    durations=st.fixed_dictionaries(
        {
            name: st.timedeltas(min_value=MICROSECOND, max_value=timedelta(days=999_999_999))
            for name in DURATION_FIELDS
        }
    ),
    tolerance=st.decimals(min_value=0, max_value=1, places=6),
    minimum=st.integers(min_value=0, max_value=10_000),
    changes=st.integers(min_value=0, max_value=10_000),
    bound=st.integers(min_value=100, max_value=1_000_000),
)
def test_a_policy_snapshot_round_trips_through_the_environment_and_the_workflow_input_unchanged(
    durations: dict[str, timedelta], tolerance: Decimal, minimum: int, changes: int, bound: int
) -> None:
    """Each complaint keeps the policy in force when it was filed: the snapshot travels in the workflow
    input (the pydantic data converter) and comes back identical, and the text pydantic writes for a
    duration (ISO-8601, `P5D`) read back from the environment gives the same duration."""
    snapshot = PolicySnapshot(
        **durations,
        replacement_value_tolerance=tolerance,
        min_description_chars=minimum,
        max_remedy_changes=changes,
        history_events_per_run=bound,
    )
    [carried] = CONVERTER.from_payloads(CONVERTER.to_payloads([snapshot]), [PolicySnapshot])
    assert carried == snapshot
    written = {
        f"REFUND_DESK_{name.upper()}": TIMEDELTA.dump_python(value, mode="json")
        for name, value in durations.items()
    }
    with environment(written):
        assert (
            PolicySettings().snapshot().model_dump(exclude={*COUNTS, "replacement_value_tolerance"})
            == durations
        )


@settings(max_examples=300, deadline=None)
@given(
    field=st.sampled_from([*DURATION_FIELDS, *COUNTS, "replacement_value_tolerance"]),
    text=st.one_of(
        st.text(max_size=20),
        st.from_regex(r"-?[0-9_]{0,14}(\.[0-9]{0,9})?([eE]-?[0-9]{1,3})?", fullmatch=True),
        st.from_regex(
            r"-?P([0-9]{1,12}[YMWD]){0,2}(T([0-9]{1,12}(\.[0-9]{1,9})?[HMS]){0,3})?", fullmatch=True
        ),
        st.sampled_from(["nan", "inf", "-inf", "1e999", "0", "-0", "PT0S", "P0D"]),
    ),
)
def test_a_setting_of_any_text_is_either_a_validation_error_or_a_value_within_its_limits(
    field: str, text: str
) -> None:
    """Whatever an operator types into an environment variable, reading it either fails as a
    ValidationError naming the setting (never an OverflowError or a crash of the worker) or gives a
    value the policy can use: a positive duration, a tolerance in [0, 1], a count no less than its least."""
    try:
        snapshot = PolicySnapshot.model_validate({field: text})
    except ValidationError as error:
        assert error.errors()[0]["loc"] == (field,)
        return
    value = getattr(snapshot, field)
    if field in DURATION_FIELDS:
        assert isinstance(value, timedelta) and value > timedelta(0)
    elif field == "replacement_value_tolerance":
        assert isinstance(value, Decimal) and 0 <= value <= 1
    else:
        assert isinstance(value, int) and value >= LEAST_COUNT[field]


# ------------------------------------------------------------------------------- R1, R2: activations


@settings(max_examples=100, deadline=None)
@given(order_id=st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True), other=st.text(max_size=70))
@example(order_id="a_b", other="act_")
def test_an_activation_id_names_its_order_and_nothing_else(order_id: str, other: str) -> None:
    """One activation per order (R1/R2): the order is read back from its activation id, underscores in
    the order id included, and any id the desk did not make reads back as no order."""
    assert TypeAdapter(Identifier).validate_python(order_id) == order_id
    assert order_id_of_activation(activation_id_of(order_id)) == order_id
    found = order_id_of_activation(other)
    assert found is None or activation_id_of(found) == other


ACTIVATION = ActivationState(
    activation_id="act_ord-1",
    order=NUMBER,
    phone_number="+447700900123",
    service="whatsapp",
    started_by="backend:shop",
    started_at=EPOCH,
    expires_at=EPOCH + POLICY.sms_wait,
)


@settings(max_examples=200, deadline=None)
@given(
    status=st.sampled_from(ActivationStatus),
    cancel_requested=st.booleans(),
    recorded_sms=st.text(min_size=1, max_size=20),
    sms=st.one_of(st.none(), st.text(min_size=1, max_size=20)),
    actor=ROLES_AND_IDS,
)
def test_r1_r2_an_sms_never_completes_a_canceled_number_and_a_completed_one_is_never_canceled(
    status: ActivationStatus, cancel_requested: bool, recorded_sms: str, sms: str | None, actor: Actor
) -> None:
    """R1 and R2 exclude each other whoever asks: once the wait ended without an SMS (canceled, or the
    cancel already under way) no SMS is taken; once the SMS completed it no cancel is, and only that same
    SMS again is answered as a repeat; only the backend reports SMS, and only the backend or the customer
    who ordered may cancel. (`sms=None` resends the recorded text.)"""
    state = ACTIVATION.model_copy(
        update={
            "status": status,
            "cancel_requested_at": EPOCH
            if cancel_requested and status is not ActivationStatus.COMPLETED
            else None,
            "sms_text": recorded_sms if status is ActivationStatus.COMPLETED else None,
        }
    )
    text = recorded_sms if sms is None else sms
    ended_without_sms = status is ActivationStatus.CANCELED or state.cancel_requested_at is not None
    repeat_of_recorded = status is ActivationStatus.COMPLETED and text == recorded_sms

    try:
        repeat = check_sms(state, SmsReceived(actor=actor, text=text))
    except PolicyRefusal as refused:
        if actor.role is not Role.BACKEND:
            assert refused.code == refusals.FORBIDDEN_ACTOR
        else:
            assert refused.code == refusals.INVALID_STATE
            assert ended_without_sms or (status is ActivationStatus.COMPLETED and not repeat_of_recorded)
    else:
        assert actor.role is Role.BACKEND and not ended_without_sms
        assert repeat is repeat_of_recorded

    may_cancel = actor.role is Role.BACKEND or (
        actor.role is Role.CUSTOMER and actor.id == NUMBER.customer_id
    )
    try:
        already = check_cancel(state, CancelActivation(actor=actor))
    except PolicyRefusal:
        assert not may_cancel or status is ActivationStatus.COMPLETED
    else:
        assert may_cancel and status is not ActivationStatus.COMPLETED
        assert already is ended_without_sms


# ------------------------------------------------------------------------------ R14, R16: the guards


CLAIM_STATUSES = [S.UNDER_REVIEW, S.ESCALATED, S.REFUNDED, S.REJECTED, S.WITHDRAWN]
"""The statuses an SMS-not-received or invalid-number claim can be in (docs/policy.md "States")."""
KIND_AND_STATUS = st.sampled_from(ComplaintKind).flatmap(
    lambda kind: st.tuples(
        st.just(kind), st.sampled_from(list(S) if kind is ComplaintKind.MAJOR_DEFECT else CLAIM_STATUSES)
    )
)


def complaint(kind: ComplaintKind, status: ComplaintStatus, settling: bool = False) -> ComplaintState:
    order = SOFTWARE if kind is ComplaintKind.MAJOR_DEFECT else NUMBER
    return defect(status, EPOCH, EPOCH + POLICY.rectify_window, POLICY).model_copy(
        update={"kind": kind, "order": order, "settling": settling}
    )


@settings(max_examples=200, deadline=None)
@given(
    kind_and_status=KIND_AND_STATUS.filter(lambda drawn: drawn[1] in FINAL_STATUSES),
    action=st.sampled_from(get_args(Action)),
    actor=st.one_of(st.sampled_from([BOB, SUPPORT]), ROLES_AND_IDS),
    now=INSTANTS,
)
def test_r16_a_resolved_complaint_refuses_every_action_by_anyone_at_any_time(
    kind_and_status: tuple[ComplaintKind, ComplaintStatus], action: Action, actor: Actor, now: datetime
) -> None:
    """R16 one outcome per complaint: once final, no review, access, fix, offer, choice or withdrawal can
    change it, not even by the right person before the deadline."""
    kind, status = kind_and_status
    assert refusal_code(complaint(kind, status), action, actor, now) is not None


@settings(max_examples=200, deadline=None)
@given(
    kind_and_status=KIND_AND_STATUS,
    actor=st.one_of(st.just(BOB), ROLES_AND_IDS),
    settling=st.booleans(),
    now=INSTANTS,
)
def test_r14_the_customer_may_withdraw_an_open_complaint_at_any_time_until_the_remedy_is_being_issued(
    kind_and_status: tuple[ComplaintKind, ComplaintStatus], actor: Actor, settling: bool, now: datetime
) -> None:
    """R14 "at any time before it is resolved": the customer who placed the order may withdraw from every
    open status of its kind, the rectification deadline long past included, until the remedy is being
    issued; nobody else may, and nobody may withdraw a final one."""
    kind, status = kind_and_status
    code = refusal_code(complaint(kind, status, settling), "withdraw", actor, now)
    owner = actor.role is Role.CUSTOMER and actor.id == BOB.id
    assert (code is None) is (owner and status in OPEN_BEFORE_SETTLEMENT and not settling), code
