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

from sealgate.bench.redis_server import RedisServer
from sealgate.cache.codec import encode_status
from sealgate.cache.redis_tier import RedisTier
from tests.cache.samples import status_for
from tests.waiting import eventually

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
    # Once the abandoned commands have finished, the pool must be whole and clean: with
    # max_connections=2, one leaked connection would show here as misses.
    await eventually(lambda: not tier._tasks, timeout=10, what="abandoned commands end")
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


async def _cross_answer(
    url: str, namespace: str, monkeypatch: pytest.MonkeyPatch, widen: bool
) -> object:
    """Cancel a plain redis-py command while its reply is still to come, then GET a code on
    the same (only) connection; return what that GET answered.

    The cancelled command is a BLPOP on an empty list, so its reply exists only once the
    test pushes to the list, which it does after the GET is on the wire: the reply is never
    already waiting when the next caller takes the connection (redis-py's pool would see
    it and reconnect), whatever the machine's load. ``widen`` puts the suspension point of
    the CVE outside redis-py's own guard, as redis-py before 4.3.6, 4.4.4 and 4.5.4
    (CVE-2023-28858/28859) effectively had it."""
    original_read = Connection.read_response
    original_send = Connection.send_packed_command
    reading, sent = asyncio.Event(), asyncio.Event()

    async def read_response(self: Connection, *args: Any, **kwargs: Any) -> Any:
        reading.set()
        if widen:
            await asyncio.sleep(3600)  # cancelled here, outside redis-py's guard
        return await original_read(self, *args, **kwargs)

    async def send_packed_command(self: Connection, *args: Any, **kwargs: Any) -> None:
        await original_send(self, *args, **kwargs)
        sent.set()

    client = Redis.from_pool(  # one connection: the next command gets the same one
        BlockingConnectionPool.from_url(url, max_connections=1, timeout=10)
    )
    pusher = Redis.from_url(url)
    queue = f"{namespace}:hazard-queue"
    try:
        await client.ping()  # connected (handshake read) before the window opens
        await pusher.ping()
        monkeypatch.setattr(Connection, "read_response", read_response)
        victim = asyncio.create_task(client.blpop([queue], timeout=30))
        await reading.wait()
        await asyncio.sleep(0)
        victim.cancel()
        with pytest.raises(asyncio.CancelledError):
            await victim
        monkeypatch.setattr(Connection, "read_response", original_read)
        monkeypatch.setattr(Connection, "send_packed_command", send_packed_command)
        second = asyncio.create_task(client.get(f"{namespace}:p:{CODES[1]}"))
        await sent.wait()  # the GET is on the wire, behind the BLPOP if that is still there
        monkeypatch.setattr(Connection, "send_packed_command", original_send)
        await pusher.rpush(queue, b"the BLPOP's reply")
        answer: object = await asyncio.wait_for(second, timeout=10)
    finally:
        await client.aclose()
        await pusher.delete(queue)
        await pusher.aclose()
    return answer


async def test_harness_reproduces_the_hazard_on_unshielded_commands(
    redis_server: RedisServer, loaded: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tests above have teeth: with the window widened as in the CVE's versions, a
    plain redis-py command cancelled before its reply came hands that reply to the next
    caller on the connection (a GET answered with another command's data)."""
    answer = await _cross_answer(redis_server.url, loaded, monkeypatch, widen=True)
    assert answer == [f"{loaded}:hazard-queue".encode(), b"the BLPOP's reply"]


async def test_pinned_redis_py_has_no_hazard_in_its_own_window(
    redis_server: RedisServer, loaded: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pinned redis-py (8.x; fixed since 4.3.6/4.4.4/4.5.4) disconnects a connection
    whose command a cancellation interrupts in ``read_response``, so the next caller gets
    its own answer. The tier's shielding stays anyway: it also keeps a cancellation away
    from the pool's release, which redis-py guards only since 8.2."""
    answer = await _cross_answer(redis_server.url, loaded, monkeypatch, widen=False)
    assert answer == encode_status(EXPECTED[CODES[1]])  # its own
