"""Regression: a caller cancelled mid-command never leaves a reply for the next caller.

The hazard (redis-py CVE-2023-28858/28859): a command cancelled after it was sent but
before its reply was read left the reply on a pooled connection, and the next command on
that connection read it as its own, so one bank could be shown another proof's status.

Arrivals are staggered over a few hundred milliseconds: if all 2,000 callers started in
the same loop pass, every tiny timeout would already have expired when the first
suspension point is reached (the pool wait), and no cancellation would land mid-command.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import Connection

from bench.redis_server import RedisServer
from cache.codec import encode_status
from cache.redis_tier import RedisTier
from tests.cache.samples import status_for

pytestmark = pytest.mark.slow

CODES = [f"430900CANCEL{n:06d}" for n in range(2000)]
EXPECTED = {code: status_for(code, version=n) for n, code in enumerate(CODES)}
ROUNDS = 3
SPREAD = 0.3  # seconds over which a round's callers arrive


@pytest.fixture
async def loaded(redis_server: RedisServer, namespace: str) -> AsyncIterator[str]:
    """The 2,000 codes stored, each with a value of its own."""
    raw = Redis.from_url(redis_server.url)
    await raw.mset({f"{namespace}:p:{c}": encode_status(s) for c, s in EXPECTED.items()})
    yield namespace
    await raw.aclose()


@pytest.fixture
def widened_window(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Put a suspension point between "command sent" and "reply read", outside redis-py's
    own cancel handler in ``read_response``: exactly the window of the CVE. Returns a
    counter of cancellations that landed in it."""
    original = Connection.read_response
    rng = random.Random(7)
    hits = [0]

    async def read_response(self: Connection, *args: Any, **kwargs: Any) -> Any:
        try:
            await asyncio.sleep(rng.uniform(0, 0.002))
        except asyncio.CancelledError:
            hits[0] += 1
            raise
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(Connection, "read_response", read_response)
    return hits


async def _hammer(
    get: Callable[[str], Awaitable[object]], expected: Callable[[str], object], seed: int
) -> tuple[int, int]:
    """Run the rounds; return (answers that were not the caller's own, cancellations)."""
    rng = random.Random(seed)
    wrong = cancelled = 0

    async def one(code: str) -> None:
        nonlocal wrong, cancelled
        await asyncio.sleep(rng.uniform(0, SPREAD))
        roll = rng.random()
        try:
            if roll < 0.15:
                result = await asyncio.wait_for(get(code), timeout=rng.uniform(0, 0.003))
            elif roll < 0.30:
                task = asyncio.ensure_future(get(code))
                await asyncio.sleep(rng.uniform(0, 0.003))
                task.cancel()
                result = await task
            else:
                result = await get(code)
        except (TimeoutError, asyncio.CancelledError):
            cancelled += 1
            return
        # Exactly its own value: never another code's, never a miss (Redis is up).
        if result != expected(code):
            wrong += 1

    for _ in range(ROUNDS):
        await asyncio.gather(*(one(code) for code in CODES))
    return wrong, cancelled


async def _check_tier(tier: RedisTier, seed: int) -> None:
    wrong, cancelled = await _hammer(tier.get, EXPECTED.__getitem__, seed)
    assert wrong == 0
    assert cancelled >= 50  # the test did cancel callers mid-flight
    # Let abandoned commands finish, then check that the pool is whole and clean: with
    # max_connections=2, one leaked connection would show here as misses.
    await asyncio.sleep(0.2)
    results = await asyncio.gather(*(tier.get(c) for c in CODES))
    assert results == [EXPECTED[c] for c in CODES]
    assert tier.foreign_values == 0  # the tier's own check never had to intervene
    assert tier.malformed_values == 0
    assert tier.available


def _tier(url: str, namespace: str, coalesce: bool, max_connections: int) -> RedisTier:
    return RedisTier(
        url,
        namespace=namespace,
        coalesce=coalesce,
        max_connections=max_connections,
        # 2,000 callers on 2 connections queue for a while: wait for the pool rather
        # than turn the queueing itself into misses.
        pool_timeout=10.0,
        # Nor a slow connect or reply of a loaded machine: the production 0.25 s tripped
        # the breaker once in CI (64 connections opened at once), and every answer after
        # it was a miss, which this test counts as wrong. Cancellation is what it tests.
        socket_timeout=10.0,
        socket_connect_timeout=10.0,
    )


@pytest.mark.parametrize("coalesce", [True, False], ids=["coalesced", "per-request"])
@pytest.mark.parametrize("max_connections", [64, 2], ids=["pool64", "pool2"])
async def test_cancelled_gets_never_cross_answers(
    redis_server: RedisServer, loaded: str, coalesce: bool, max_connections: int
) -> None:
    tier = _tier(redis_server.url, loaded, coalesce, max_connections)
    await tier.start()
    try:
        await _check_tier(tier, seed=max_connections * 2 + coalesce)
    finally:
        await tier.close()


@pytest.mark.parametrize("coalesce", [True, False], ids=["coalesced", "per-request"])
@pytest.mark.parametrize("max_connections", [64, 2], ids=["pool64", "pool2"])
async def test_tier_is_safe_even_where_redis_py_is_not(
    redis_server: RedisServer,
    loaded: str,
    widened_window: list[int],
    coalesce: bool,
    max_connections: int,
) -> None:
    """With the CVE window opened outside redis-py's guard, the tier still never crosses
    answers: no caller's cancellation reaches a command at all."""
    tier = _tier(redis_server.url, loaded, coalesce, max_connections)
    await tier.start()
    try:
        await _check_tier(tier, seed=max_connections * 2 + coalesce)
    finally:
        await tier.close()
    assert widened_window[0] == 0


async def test_harness_reproduces_the_hazard_on_unshielded_commands(
    redis_server: RedisServer, loaded: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tests above have teeth: a plain redis-py GET cancelled exactly in the window
    (sent, reply not yet read) hands its reply to the next caller on that connection.
    Deterministic: the cancellation is made once the command is inside the window."""
    original = Connection.read_response
    inside = asyncio.Event()

    async def read_response(self: Connection, *args: Any, **kwargs: Any) -> Any:
        inside.set()
        await asyncio.sleep(0.05)
        return await original(self, *args, **kwargs)

    client = Redis.from_pool(  # one connection: the next command gets the same one
        BlockingConnectionPool.from_url(redis_server.url, max_connections=1, timeout=10)
    )
    first, second = CODES[0], CODES[1]
    try:
        await client.ping()  # connected (handshake read) before the window opens
        monkeypatch.setattr(Connection, "read_response", read_response)
        victim = asyncio.create_task(client.get(f"{loaded}:p:{first}"))
        await inside.wait()
        victim.cancel()
        with pytest.raises(asyncio.CancelledError):
            await victim
        monkeypatch.setattr(Connection, "read_response", original)
        answer = await client.get(f"{loaded}:p:{second}")
    finally:
        await client.aclose()
    assert answer == encode_status(EXPECTED[first])  # the other caller's status
