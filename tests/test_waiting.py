"""The wait helpers fail at their deadline and hand back the value that ended the wait."""

from __future__ import annotations

import itertools

import pytest

from tests.waiting import eventually, until


async def test_eventually_returns_the_first_truthy_value_of_a_plain_or_async_condition() -> None:
    counter = itertools.count()
    assert await eventually(lambda: next(counter) >= 3 and "ready", interval=0) == "ready"

    async def answer() -> int:
        return next(counter)

    assert await eventually(answer, interval=0) >= 4


async def test_eventually_fails_at_its_deadline_saying_what() -> None:
    with pytest.raises(AssertionError, match=r"the door did not hold within 0\.05 s"):
        await eventually(lambda: False, timeout=0.05, interval=0.01, what="the door")


def test_until_blocks_until_the_condition_or_fails() -> None:
    counter = itertools.count()
    assert until(lambda: next(counter) == 2, interval=0) is True
    with pytest.raises(AssertionError, match="last: 0"):
        until(lambda: 0, timeout=0.05, interval=0.01)
