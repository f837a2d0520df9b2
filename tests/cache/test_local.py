"""The in-process tier: copies, their limits, and what the garbage collector sees."""

from __future__ import annotations

import gc

from hypothesis import given, settings

from sealgate.cache.local import HOT_ENTRIES, LocalTier
from sealgate.verify.registry import ProofStatus, Status
from tests.cache.samples import status_for, statuses


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@settings(max_examples=40, deadline=None)
@given(statuses)
def test_a_copy_comes_back_equal_as_object_and_from_its_stored_form(status: ProofStatus) -> None:
    tier = LocalTier()
    tier.put(status.code, status, tier.fill_token())
    assert tier.get(status.code) == status  # while it is among the hot objects
    for n in range(HOT_ENTRIES):  # push it out of them: rebuilt from its stored form
        tier.put(f"other-{n}", status_for(f"other-{n}"), tier.fill_token())
    again = tier.get(status.code)
    assert again == status and again.status is status.status


def test_an_invalidated_copy_is_gone_whether_hot_or_not() -> None:
    tier = LocalTier()
    codes = [f"code-{n}" for n in range(HOT_ENTRIES + 10)]
    for code in codes:
        tier.put(code, status_for(code), tier.fill_token())
    assert tier.get(codes[0]) is not None and tier.get(codes[-1]) is not None
    tier.invalidate([codes[0], codes[-1]])
    assert tier.get(codes[0]) is None and tier.get(codes[-1]) is None
    assert tier.get(codes[1]) == status_for(codes[1])
    tier.clear()
    assert tier.get(codes[1]) is None and len(tier) == 0


def test_a_copy_fetched_across_an_invalidation_is_not_kept() -> None:
    tier = LocalTier()
    token = tier.fill_token()
    tier.invalidate(["elsewhere"])
    tier.put("code", status_for("code"), token)
    assert tier.get("code") is None


def test_copies_expire_and_are_not_served_past_the_trust_deadline() -> None:
    clock = Clock()
    tier = LocalTier(max_age=30.0, clock=clock)
    tier.put("code", status_for("code", status=Status.REVOKED), tier.fill_token())
    tier.trust_until(clock.now + 5)
    clock.now += 6
    assert tier.get("code") is None  # kept, but not trusted until the feed moves on
    tier.trust_until(clock.now + 5)
    assert tier.get("code") == status_for("code", status=Status.REVOKED)
    clock.now += 25
    tier.trust_until(clock.now + 5)
    assert tier.get("code") is None  # older than max_age: dropped
    assert len(tier) == 0


def test_the_tier_is_bounded() -> None:
    tier = LocalTier(max_entries=100)
    for n in range(1000):
        tier.put(f"code-{n}", status_for(f"code-{n}"), tier.fill_token())
    assert len(tier) <= 100
    assert tier.get("code-999") == status_for("code-999")


def test_copies_are_not_left_for_the_garbage_collector_to_scan() -> None:
    # Every full collection scans every tracked object: as objects, a full tier made
    # that a ~100 ms pause of the worker.
    tier = LocalTier()
    gc.collect()
    before = len(gc.get_objects())
    for n in range(50_000):
        code = f"code-{n}"
        tier.put(code, status_for(code), tier.fill_token())
    gc.collect()
    grown = len(gc.get_objects()) - before
    assert grown < HOT_ENTRIES + 1000, grown
    assert tier.get("code-7") == status_for("code-7")
