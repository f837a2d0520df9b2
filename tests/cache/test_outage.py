"""Redis SIGKILLed under the tier, then restarted: misses meanwhile, recovery by itself."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from sealgate.bench.redis_server import RedisServer
from sealgate.cache.redis_tier import RedisTier
from tests.cache.samples import status_for
from tests.waiting import eventually

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("coalesce", [True, False], ids=["coalesced", "per-request"])
async def test_kill_and_restart(
    own_redis_server: RedisServer, coalesce: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sealgate.cache.redis_tier")
    tier = RedisTier(own_redis_server.url, coalesce=coalesce, breaker_seconds=0.5)
    await tier.start()
    received: list[str] = []
    listener = asyncio.create_task(tier.listen(received.append))
    try:
        status = status_for("CODE1")
        await tier.put("CODE1", status)
        assert await tier.get("CODE1") == status

        async def heard(code: str) -> bool:
            await tier.publish(code)
            return code in received

        await eventually(lambda: heard("BEFORE"))

        own_redis_server.kill()

        # Does not hang and does not raise: 200 gets, sequential and concurrent.
        started = time.monotonic()
        for _ in range(100):
            assert await tier.get("CODE1") is None
        assert all(
            r is None for r in await asyncio.gather(*(tier.get("CODE1") for _ in range(100)))
        )
        assert time.monotonic() - started < 10
        assert tier.available is False
        await tier.put("CODE1", status)  # swallowed
        assert await tier.delete(["CODE1"]) is False
        assert await tier.publish("CODE1") is False

        # Still down after several breaker periods: still one WARNING, not one per try.
        # Each failed probe opens the breaker again, until a new time.
        reopened: set[float | None] = set()

        async def probed_and_failed_three_times() -> bool:
            assert await tier.get("CODE1") is None
            reopened.add(tier._breaker._open_until)
            return len(reopened) > 3

        await eventually(probed_and_failed_three_times, timeout=10)
        down = [r for r in caplog.records if "cache tier unavailable" in r.getMessage()]
        assert len(down) == 1 and down[0].levelno == logging.WARNING

        received.clear()
        own_redis_server.restart()  # same port, empty (no persistence)

        async def works() -> bool:
            await tier.put("CODE1", status)
            return await tier.get("CODE1") == status

        await eventually(works)
        assert tier.available is True
        up = [r for r in caplog.records if "available again" in r.getMessage()]
        assert len(up) == 1 and up[0].levelno == logging.INFO

        # The listener reconnected by itself and said "drop everything", once, first.
        await eventually(lambda: heard("AFTER"))
        assert received[0] == "*"
        assert received.count("*") == 1
    finally:
        listener.cancel()
        with pytest.raises(asyncio.CancelledError):
            await listener
        await tier.close()
    assert all("CODE1" not in r.getMessage() for r in caplog.records)  # no codes logged


async def test_get_fails_fast_while_breaker_is_open(own_redis_server: RedisServer) -> None:
    tier = RedisTier(own_redis_server.url, breaker_seconds=30)
    await tier.start()
    try:
        own_redis_server.kill()
        assert await tier.get("CODE1") is None  # this one finds out
        started = time.monotonic()
        for _ in range(1000):
            assert await tier.get("CODE1") is None
        # Skipped without touching the network; generous bound, not a benchmark.
        assert time.monotonic() - started < 2
    finally:
        await tier.close()
