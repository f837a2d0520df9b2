"""Failed-lookup limits (per client, global, bounded memory) and the failure timing floor."""

from __future__ import annotations

import math
import time

import pytest

from sealgate.gateway.problems import Problem, unknown_code
from sealgate.gateway.throttle import (
    FailedLookupLimiter,
    Throttled,
    answer_no_sooner_than,
    limited_lookup,
    retry_after_header,
    too_many_failed_lookups,
)

DRAIN = 100 / 600  # the default: 100 failures per 10 minutes


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def limiter(clock: FakeClock, **options: float) -> FailedLookupLimiter:
    return FailedLookupLimiter(clock=clock, **options)  # type: ignore[arg-type]


def fail(limits: FailedLookupLimiter, client: str, times: int) -> None:
    for _ in range(times):
        limits.admit(client)
        limits.failed(client)


def test_the_101st_lookup_after_100_failures_is_refused_before_the_check() -> None:
    clock = FakeClock()
    limits = limiter(clock)
    fail(limits, "bank-a", 100)
    with pytest.raises(Throttled) as caught:
        limits.admit("bank-a")
    assert caught.value.scope == "client"
    # One failure drains in 600 / 100 = 6 s.
    assert caught.value.retry_after == pytest.approx(1 / DRAIN)
    assert retry_after_header(caught.value.retry_after) == "6"


def test_99_failures_leave_room_for_one_more() -> None:
    clock = FakeClock()
    limits = limiter(clock)
    fail(limits, "bank-a", 99)
    limits.admit("bank-a")  # the 100th attempt is still allowed
    limits.failed("bank-a")
    with pytest.raises(Throttled):
        limits.admit("bank-a")


def test_successes_in_between_do_not_reset_the_bucket() -> None:
    clock = FakeClock()
    limits = limiter(clock)
    for _ in range(100):
        limits.admit("bank-a")  # a lookup of a valid code: admitted, nothing recorded
        limits.admit("bank-a")
        limits.failed("bank-a")
    assert limits.failures("bank-a") == pytest.approx(100)
    with pytest.raises(Throttled):
        limits.admit("bank-a")  # not even a known-good code gets through now


def test_draining_readmits_one_failure_at_a_time_and_then_all() -> None:
    clock = FakeClock()
    limits = limiter(clock)
    fail(limits, "bank-a", 100)
    clock.advance(5.0)
    with pytest.raises(Throttled) as caught:
        limits.admit("bank-a")
    assert caught.value.retry_after == pytest.approx(1.0)
    clock.advance(1.0)
    limits.admit("bank-a")
    limits.failed("bank-a")
    with pytest.raises(Throttled):
        limits.admit("bank-a")  # one drained, one spent: full again
    clock.advance(600.0)
    assert limits.failures("bank-a") == 0.0
    fail(limits, "bank-a", 100)  # a fully drained bucket allows 100 again


def test_retry_after_is_whole_seconds_rounded_up_and_at_least_one() -> None:
    clock = FakeClock()
    limits = limiter(clock)
    fail(limits, "bank-a", 100)
    clock.advance(5.9)
    with pytest.raises(Throttled) as caught:
        limits.admit("bank-a")
    assert caught.value.retry_after == pytest.approx(0.1)
    assert retry_after_header(caught.value.retry_after) == "1"
    assert retry_after_header(5.2) == "6"
    assert retry_after_header(0.0) == "1"


def test_one_clients_failures_do_not_throttle_another() -> None:
    clock = FakeClock()
    limits = limiter(clock)
    fail(limits, "enumerator", 100)
    with pytest.raises(Throttled):
        limits.admit("enumerator")
    limits.admit("bank-b")
    fail(limits, "bank-b", 100)


def test_the_global_bucket_throttles_failures_across_clients_and_refills() -> None:
    clock = FakeClock()
    limits = limiter(clock, global_burst=50, global_per_second=10.0)
    for index in range(50):
        fail(limits, f"client-{index}", 1)  # 50 clients, one failure each: all within limits
    limits.admit("client-50")  # admitted: no client limit reached
    with pytest.raises(Throttled) as caught:
        limits.failed("client-50")
    assert caught.value.scope == "global"
    assert caught.value.retry_after == pytest.approx(0.1)
    assert limits.failures("client-50") == pytest.approx(1)  # counted all the same
    limits.admit("client-0")  # by default, lookups are still admitted (hits answer 200)
    clock.advance(0.1)  # one token back
    limits.failed("client-51")
    with pytest.raises(Throttled):
        limits.failed("client-52")
    clock.advance(10.0)  # fully refilled (capped at the burst)
    fail(limits, "client-60", 50)
    with pytest.raises(Throttled) as caught:
        limits.failed("client-61")
    assert caught.value.scope == "global"


def test_global_brownout_refuses_recent_failers_but_serves_clean_clients() -> None:
    clock = FakeClock()
    limits = FailedLookupLimiter(
        global_burst=5, global_per_second=1.0, global_brownout=True, clock=clock
    )
    fail(limits, "enumerator", 5)
    with pytest.raises(Throttled) as caught:
        limits.admit("enumerator")
    assert caught.value.scope == "global"
    limits.admit("clean-bank")  # no recent failure: served
    clock.advance(1.0)
    limits.admit("enumerator")  # a token is back


def test_memory_stays_bounded_with_200000_distinct_clients() -> None:
    clock = FakeClock()
    limits = FailedLookupLimiter(global_burst=1_000_000, clock=clock)
    for index in range(200_000):
        limits.failed(f"client-{index}")
        assert limits.tracked_clients <= 100_000
    # The newest failer is tracked; the limit still holds for it.
    assert limits.failures("client-199999") == pytest.approx(1)


def test_memory_bound_drops_drained_clients_first() -> None:
    clock = FakeClock()
    limits = limiter(clock, max_clients=10)
    fail(limits, "enumerator", 100)  # the oldest entry, and far from drained
    for index in range(9):
        fail(limits, f"bank-{index}", 1)
    clock.advance(10.0)  # the banks' single failures have drained (6 s), not the enumerator's
    limits.failed("newcomer")
    assert limits.tracked_clients == 2
    assert limits.failures("enumerator") == pytest.approx(100 - 10 * DRAIN)  # not forgiven
    assert limits.failures("newcomer") == pytest.approx(1)


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        FailedLookupLimiter(per_client=0)
    with pytest.raises(ValueError):
        FailedLookupLimiter(drain_per_second=0.0)


def test_the_429_problem_carries_retry_after() -> None:
    problem = too_many_failed_lookups(Throttled(5.2, "client"))
    assert problem.status == 429
    assert problem.code == "too-many-failed-lookups"
    assert problem.headers == {"Retry-After": "6"}
    response = problem.response("req-1")
    assert response.status == 429
    assert response.headers["Retry-After"] == "6"
    assert too_many_failed_lookups(Throttled(0.001, "global")).headers["Retry-After"] == "1"


async def test_a_failed_answer_leaves_no_sooner_than_the_floor() -> None:
    started = time.monotonic()
    await answer_no_sooner_than(started, 0.05)
    assert time.monotonic() - started >= 0.05  # a lower bound only: the machine is noisy
    started = time.monotonic() - 0.03  # part of the floor already spent
    await answer_no_sooner_than(started, 0.05)
    assert time.monotonic() - started >= 0.05


def test_a_failed_answer_past_the_floor_does_not_wait() -> None:
    clock = FakeClock()
    waiting = answer_no_sooner_than(clock.now - 0.02, 0.01, clock=clock)
    # Finishing on the first step means it never suspended, i.e. never slept.
    with pytest.raises(StopIteration):
        waiting.send(None)


async def test_limited_lookup_counts_unknown_codes_and_holds_them_to_the_floor() -> None:
    limits = limiter(FakeClock())

    async def unknown() -> str:
        raise unknown_code()

    started = time.monotonic()
    with pytest.raises(Problem) as caught:
        await limited_lookup(limits, "bank-a", unknown, floor_seconds=0.03)
    assert time.monotonic() - started >= 0.03
    assert caught.value.status == 404
    assert caught.value.code == "unknown-code"
    assert limits.failures("bank-a") == pytest.approx(1)


async def test_limited_lookup_refuses_a_full_client_without_looking_up() -> None:
    limits = limiter(FakeClock())
    fail(limits, "bank-a", 100)
    looked_up: list[str] = []

    async def lookup() -> str:
        looked_up.append("called")
        return "status"

    with pytest.raises(Problem) as caught:
        await limited_lookup(limits, "bank-a", lookup, floor_seconds=0)
    assert caught.value.status == 429
    assert caught.value.headers["Retry-After"] == str(math.ceil(1 / DRAIN))
    assert looked_up == []


async def test_limited_lookup_passes_hits_and_other_errors_without_counting() -> None:
    limits = limiter(FakeClock())

    async def hit() -> str:
        return "status"

    async def forbidden() -> str:
        raise Problem(403, "forbidden-role", "no")

    assert await limited_lookup(limits, "bank-a", hit, floor_seconds=0) == "status"
    with pytest.raises(Problem) as caught:
        await limited_lookup(limits, "bank-a", forbidden, floor_seconds=0)
    assert caught.value.status == 403
    assert limits.failures("bank-a") == 0.0
    assert limits.tracked_clients == 0


async def test_limited_lookup_answers_429_for_failures_once_the_global_bucket_is_empty() -> None:
    limits = limiter(FakeClock(), global_burst=1, global_per_second=1.0)

    async def unknown() -> str:
        raise unknown_code()

    async def hit() -> str:
        return "status"

    with pytest.raises(Problem) as caught:
        await limited_lookup(limits, "bank-a", unknown, floor_seconds=0)
    assert caught.value.status == 404
    with pytest.raises(Problem) as caught:
        await limited_lookup(limits, "bank-b", unknown, floor_seconds=0)
    assert caught.value.status == 429
    assert caught.value.headers["Retry-After"] == "1"
    assert await limited_lookup(limits, "bank-b", hit, floor_seconds=0) == "status"
