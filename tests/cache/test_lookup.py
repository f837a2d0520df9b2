"""Shared copies made before a status change are never served, however they survived:
a delete that failed while Redis was down, a process started since, a Redis restored from
a snapshot. On both registries (SQLite, a real PostgreSQL) and a real redis-server."""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
import redis

from sealgate.bench.redis_server import RedisServer
from sealgate.cache import feed
from sealgate.cache.feed import ChangeFeed
from sealgate.cache.local import LocalTier
from sealgate.cache.lookup import CLOCK_MARGIN, CachedLookup
from sealgate.cache.redis_tier import RedisTier
from sealgate.verify.registry import Registry, Status, StatusChange
from tests.verify.backends import Backend, change
from tests.verify.test_lifecycle import proof

TTL = 3600

Process = Callable[[], AbstractAsyncContextManager[tuple[CachedLookup, RedisTier]]]


def process_on(registry: Registry, url: str, namespace: str) -> Process:
    """What a gateway process holds: its own tiers and change feed, started afresh."""

    @asynccontextmanager
    async def process() -> AsyncIterator[tuple[CachedLookup, RedisTier]]:
        shared = RedisTier(url, namespace=namespace, ttl_seconds=TTL)
        await shared.start()
        try:
            lookup = CachedLookup(registry, LocalTier(), shared)
            await ChangeFeed(registry, lookup).start()
            yield lookup, shared
        finally:
            await shared.close()

    return process


async def status_of(lookup: CachedLookup, code: str) -> Status:
    found = await lookup.get_status(code)
    assert found is not None
    return found.status


async def test_a_process_started_after_a_change_does_not_serve_the_copy_from_before(
    registry: Registry, redis_server: RedisServer, namespace: str
) -> None:
    """The change's delete never reached Redis (it was down, or the changer died)."""
    process = process_on(registry, redis_server.url, namespace)
    await registry.register([proof("A", expires_at=2e9)])
    async with process() as (lookup, shared):
        assert await status_of(lookup, "A") is Status.VALID
    await registry.change_status(change("A", Status.REVOKED))
    async with process() as (lookup, shared):
        stale = await shared.get("A")
        assert stale is not None and stale.status is Status.VALID  # still there
        assert await status_of(lookup, "A") is Status.REVOKED
        fresh = await shared.get("A")  # replaced by the row just read
        assert fresh is not None and (fresh.status, fresh.version) == (Status.REVOKED, 1)

        # From now on a copy as new as that row is taken, an older one is not.
        await shared.put("A", dataclasses.replace(fresh, unit_name="from Redis"))
        lookup.local.invalidate(["A"])
        taken = await lookup.get_status("A")
        assert taken is not None and taken.unit_name == "from Redis"
        await shared.put("A", stale)
        lookup.local.invalidate(["A"])
        assert await status_of(lookup, "A") is Status.REVOKED


async def test_a_copy_brought_back_by_a_snapshot_is_not_served(
    registry: Registry, own_redis_server: RedisServer, namespace: str
) -> None:
    process = process_on(registry, own_redis_server.url, namespace)
    client = redis.Redis.from_url(own_redis_server.url)
    try:
        await registry.register([proof("A", expires_at=2e9), proof("B", expires_at=2e9)])
        async with process() as (lookup, shared):
            assert await status_of(lookup, "A") is Status.VALID
            assert await status_of(lookup, "B") is Status.VALID
            client.save()  # the snapshot Redis takes by itself, now with both copies
            await registry.change_status(change("A", Status.REVOKED))
            await lookup.invalidate(["A"], announce=True)  # what the changing gateway does
            assert await shared.get("A") is None  # the delete worked
            own_redis_server.kill()
            own_redis_server.restart()  # loads the snapshot
            assert client.exists(f"{namespace}:p:A") == 1, "the snapshot brought A back"
            assert await status_of(lookup, "A") is Status.REVOKED
            assert await status_of(lookup, "B") is Status.VALID
        async with process() as (lookup, shared):
            assert await status_of(lookup, "A") is Status.REVOKED
            copy = await shared.get("B")  # an unchanged proof is still served from Redis
            assert copy is not None and copy.status is Status.VALID
    finally:
        client.close()


async def test_a_process_recalls_exactly_the_changes_a_live_copy_can_predate(
    registry: Registry,
    backend: Backend,
    redis_server: RedisServer,
    namespace: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Changes spread over the past hours, their times a little out of order (clocks of
    several gateways) and the log with gaps: the ones within TTL + margin are recalled at
    start, the older ones are not, and finding where they start does not read the log."""
    process = process_on(registry, redis_server.url, namespace)
    jitter = random.Random(7)
    now = time.time()
    codes = [f"C{i:03d}" for i in range(240)]
    await registry.register([proof(code, expires_at=2e9) for code in codes])
    ages = {
        code: TTL + CLOCK_MARGIN + 2000 - 10 * i + jitter.uniform(-60, 60)
        for i, code in enumerate(codes)
    }
    for code in codes:
        await registry.change_status(change(code, Status.PLEDGED, at=now - ages[code]))
    backend.execute("DELETE FROM status_history WHERE seq % 7 = 3")  # gaps in the log
    logged = {code for (code,) in backend.execute("SELECT code FROM status_history")}
    monkeypatch.setattr(feed, "RECALL_PAGE", 10)
    queries = 0
    changes_since = registry.changes_since

    async def counted(seq: int, limit: int = 1000) -> list[StatusChange]:
        nonlocal queries
        queries += 1
        return await changes_since(seq, limit)

    monkeypatch.setattr(registry, "changes_since", counted)
    async with process() as (lookup, shared):
        started_with = queries
        for code in codes:  # a copy in Redis that the registry's status tells apart
            current = await registry.get_status(code)
            assert current is not None
            await shared.put(code, dataclasses.replace(current, status=Status.REVOKED))
        served = {code: await status_of(lookup, code) for code in codes}
    recent = {code for code in logged if ages[code] < TTL + CLOCK_MARGIN}
    assert 10 < len(recent) < len(logged) - 100
    assert {c for c, s in served.items() if s is Status.PLEDGED} == recent
    assert {c for c, s in served.items() if s is Status.REVOKED} == set(codes) - recent
    # a binary search (~8 single reads) and the recent stretch's pages, not all 21 pages
    assert started_with <= 8 + len(recent) // 10 + 4, started_with


async def test_past_its_bound_a_process_sets_the_shared_copies_aside_for_a_while(
    registry: Registry, redis_server: RedisServer, namespace: str
) -> None:
    clock = [time.time()]
    shared = RedisTier(redis_server.url, namespace=namespace, ttl_seconds=TTL)
    await shared.start()
    try:
        lookup = CachedLookup(
            registry, LocalTier(max_age=-1.0), shared, clock=lambda: clock[0], max_noted=3
        )
        await registry.register([proof("U", expires_at=2e9)])
        unchanged = await registry.get_status("U")
        assert unchanged is not None
        await shared.put("U", dataclasses.replace(unchanged, unit_name="from Redis"))
        taken = await lookup.get_status("U")
        assert taken is not None and taken.unit_name == "from Redis"

        lookup.forget(["A", "B", "C"])  # noted one by one
        assert (await lookup.get_status("U")).unit_name == "from Redis"  # type: ignore[union-attr]
        lookup.forget(["D"])  # one too many: no copy is taken now, of any code
        assert (await lookup.get_status("U")).unit_name == "u"  # type: ignore[union-attr]

        clock[0] += TTL + CLOCK_MARGIN + 1  # every copy from before the changes is gone
        lookup.forget_expired_changes()
        await shared.put("U", dataclasses.replace(unchanged, unit_name="from Redis"))
        assert (await lookup.get_status("U")).unit_name == "from Redis"  # type: ignore[union-attr]
        lookup.forget(["E", "F", "G"])  # the notes were dropped: room again
        assert (await lookup.get_status("U")).unit_name == "from Redis"  # type: ignore[union-attr]
    finally:
        await shared.close()
