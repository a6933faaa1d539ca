"""The gate's pure parts on their own: the JSON shape read from a body's bytes (`starter.api.limits`) and the
per-caller token bucket (`starter.api.ratelimit`), with a clock of the test's own. Over HTTP they are in
tests/test_gate.py."""

from __future__ import annotations

import json

import pytest

from starter.api import ratelimit
from starter.api.limits import MAX_JSON_DEPTH, MAX_JSON_VALUES, json_shape_refusal
from starter.api.ratelimit import RateLimiter


@pytest.mark.parametrize(
    ("body", "refusal"),
    [
        (json.dumps({"description": "[" * 100 + '"\\"' + "{" * 100}).encode(), None),
        (b'{"order_id": ', None),
        (b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH, None),
        (b"[{" * 8 + b"[]" + b"}]" * 8, "nests deeper than 16 levels"),
        (b"[" + b"1," * (MAX_JSON_VALUES - 1) + b"1]", None),
        (b"[" + b"1," * MAX_JSON_VALUES + b"1]", f"holds more than {MAX_JSON_VALUES} values"),
    ],
    ids=["brackets-in-text", "not-json", "16-deep", "17-deep-mixed", "50000-values", "50001-values"],
)
def test_the_json_shape_is_read_from_the_bytes_without_counting_text(
    body: bytes, refusal: str | None
) -> None:
    """Brackets and quotes inside strings are text, not structure; what is not JSON at all is left to the
    parser, which says so."""
    assert json_shape_refusal(body) == refusal


def test_the_bucket_refills_at_its_rate_up_to_its_burst_and_forgets_full_buckets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [0.0]
    limiter = RateLimiter(rate=2, burst=3, clock=lambda: now[0])
    shop = ("backend", "shop")
    assert [limiter.wait(shop) for _ in range(4)] == [0, 0, 0, 0.5]
    now[0] = 0.5
    assert [limiter.wait(shop), limiter.wait(shop)] == [0, 0.5]
    assert limiter.wait(("backend", "another-shop")) == 0, "a bucket per caller"
    now[0] = 100
    assert [limiter.wait(shop) for _ in range(4)] == [0, 0, 0, 0.5], "never more than the burst"
    assert RateLimiter(rate=0, burst=1).wait(shop) == 0, "a rate of 0 is no limit"

    monkeypatch.setattr(ratelimit, "MAX_CALLERS", 2)
    now[0] = 200  # both buckets full again: the same as new ones
    limiter.wait(("customer", "c1"))
    assert len(limiter._buckets) == 1
