"""The cluster tier against a real three-node Redis Cluster: keys over every node,
batches split by slot, invalidations across nodes, a node SIGKILLed and back."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from functools import partial

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

from sealgate.bench.redis_cluster import RedisClusterServer
from sealgate.cache.redis_cluster_tier import RedisClusterTier
from sealgate.cache.redis_tier import RedisTier, redis_tier_for, status_key
from tests.cache.checks import concurrent_gets_get_their_own
from tests.cache.samples import status_for
from tests.waiting import eventually

CODES = [f"C{n:04d}" for n in range(120)]


@pytest.fixture
async def nodes(redis_cluster: RedisClusterServer) -> AsyncIterator[list[Redis]]:
    """A plain client on each node: what one node holds, seen from that node alone."""
    clients = [Redis(host="127.0.0.1", port=port) for port in redis_cluster.ports]
    yield clients
    for client in clients:
        await client.aclose()


@pytest.fixture
async def cluster_tier(
    redis_cluster: RedisClusterServer, namespace: str
) -> AsyncIterator[RedisTier]:
    tier = redis_tier_for(redis_cluster.url, namespace=namespace)
    await tier.start()
    yield tier
    await tier.close()


async def keys_on(node: Redis, namespace: str) -> set[bytes]:
    return {key async for key in node.scan_iter(match=f"{namespace}:p:*", count=1000)}


def test_the_url_picks_the_tier(redis_cluster: RedisClusterServer) -> None:
    assert isinstance(redis_tier_for(redis_cluster.url), RedisClusterTier)
    assert type(redis_tier_for("redis://127.0.0.1:6379/0")) is RedisTier
    with pytest.raises(ValueError, match="cluster tier"):
        RedisTier(redis_cluster.url)
    with pytest.raises(ValueError, match="redis\\+cluster://"):
        RedisClusterTier("redis://127.0.0.1:6379/0")


async def test_keys_land_on_every_node_and_read_back(
    cluster_tier: RedisTier, nodes: list[Redis], namespace: str
) -> None:
    for code in CODES:
        await cluster_tier.put(code, status_for(code))
    held = [await keys_on(node, namespace) for node in nodes]
    # No hash tag: the keys spread over the slots, hence over all three primaries.
    assert all(held), [len(keys) for keys in held]
    assert sum(len(keys) for keys in held) == len(CODES)
    assert set().union(*held) == {status_key(code, namespace).encode() for code in CODES}
    # And each node holds exactly the keys of its own slots (as the server computes them).
    for node, keys in zip(nodes, held, strict=True):
        for key in list(keys)[:5]:
            assert await node.execute_command("CLUSTER", "KEYSLOT", key) == key_slot(key)
    for code in CODES:
        assert await cluster_tier.get(code) == status_for(code)
    assert cluster_tier.available


@pytest.mark.parametrize("coalesce", [True, False], ids=["coalesced", "per-request"])
async def test_concurrent_gets_across_slots_each_get_their_own(
    coalesce: bool, redis_cluster: RedisClusterServer, namespace: str
) -> None:
    # Generous timeouts, as in test_redis_tier: this is about answers, not load shedding.
    tier = redis_tier_for(
        redis_cluster.url,
        namespace=namespace,
        coalesce=coalesce,
        pool_timeout=10.0,
        socket_timeout=10.0,
    )
    await tier.start()
    try:
        codes = await concurrent_gets_get_their_own(tier)
        assert len({key_slot(status_key(code, namespace).encode()) for code in codes}) > 400
    finally:
        await tier.close()


async def test_delete_across_slots(
    cluster_tier: RedisTier, nodes: list[Redis], namespace: str
) -> None:
    for code in CODES:
        await cluster_tier.put(code, status_for(code))
    assert await cluster_tier.delete([*CODES, "NEVER-CACHED"]) is True
    assert [await keys_on(node, namespace) for node in nodes] == [set(), set(), set()]
    assert [await cluster_tier.get(code) for code in CODES[:10]] == [None] * 10
    assert await cluster_tier.delete([]) is True


async def test_invalidations_reach_the_listener_from_every_node(
    cluster_tier: RedisTier, nodes: list[Redis], namespace: str
) -> None:
    received: list[str] = []
    channel = f"{namespace}:invalidate"
    listener = asyncio.create_task(cluster_tier.listen(received.append))
    try:

        async def heard() -> bool:
            await cluster_tier.publish("BY-TIER")
            return "BY-TIER" in received

        await eventually(heard)
        # The listener holds one node's subscription; PUBLISH on any node reaches it.
        for n, node in enumerate(nodes):
            await eventually(partial(_heard_from, node, channel, f"ON-NODE-{n}", received))
        assert sorted([await _subscribers(node, channel) for node in nodes]) == [0, 0, 1]
        assert "*" not in received
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)


@pytest.mark.slow
async def test_a_node_killed_and_restarted(
    own_redis_cluster: RedisClusterServer, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Gets become misses at once (no exception, no hang), the breaker opens, the
    listener moves to a live node and says "*", and all comes back after the restart."""
    caplog.set_level(logging.INFO, logger="sealgate.cache.redis_tier")
    cluster = own_redis_cluster
    tier = redis_tier_for(cluster.url, namespace=namespace, breaker_seconds=0.5)
    await tier.start()
    received: list[str] = []
    listener = asyncio.create_task(tier.listen(received.append))
    raw = [Redis(host="127.0.0.1", port=port) for port in cluster.ports]
    channel = f"{namespace}:invalidate"
    try:
        for code in CODES:
            await tier.put(code, status_for(code))
        assert all([await tier.get(code) for code in CODES])

        async def heard(code: str) -> bool:
            await tier.publish(code)
            return code in received

        await eventually(lambda: heard("BEFORE"))
        # Kill the node the listener is subscribed on: the worst case for both paths.
        victim = [await _subscribers(node, channel) for node in raw].index(1)
        survivors = [node for n, node in enumerate(raw) if n != victim]
        cluster.kill(victim)

        started = time.monotonic()
        results = [await tier.get(code) for code in CODES]
        results += await asyncio.gather(*(tier.get(code) for code in CODES))
        assert time.monotonic() - started < 10
        assert None in results  # at least the killed node's keys
        assert tier.available is False
        await tier.put("C0000", status_for("C0000"))  # swallowed
        assert await tier.delete(CODES) is False

        # The listener resubscribed elsewhere and asked for everything to be dropped.
        await eventually(partial(_contains, received, "*"))

        # Once the others declare the cluster down (CLUSTERDOWN): still misses, no error.
        cluster.wait_down()
        # a breaker period over: the next get is a probe
        await eventually(tier._breaker.would_admit, timeout=10)
        assert [await tier.get(code) for code in CODES[:20]] == [None] * 20
        assert tier.available is False
        # PUBLISH is not refused by a failed cluster: the message gets through.
        await eventually(partial(_heard_from, survivors[0], channel, "DURING", received))

        down = [r for r in caplog.records if "cache tier unavailable" in r.getMessage()]
        assert len(down) == 1 and down[0].levelno == logging.WARNING

        cluster.restart(victim)  # same ports, its nodes.conf: it rejoins with its slots
        cluster.wait_ok()

        async def works() -> bool:
            await tier.put("C0001", status_for("C0001"))
            return await tier.get("C0001") == status_for("C0001")

        await eventually(works, timeout=20.0)
        assert tier.available is True
        assert any("available again" in r.getMessage() for r in caplog.records)
        for code in CODES:
            await tier.put(code, status_for(code))
        assert [await tier.get(code) for code in CODES] == [status_for(code) for code in CODES]
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
        await tier.close()
        for node in raw:
            await node.aclose()


async def _contains(received: list[str], code: str) -> bool:
    return code in received


async def _subscribers(node: Redis, channel: str) -> int:
    """How many subscribers ``channel`` has on this node (PUBSUB NUMSUB is per node)."""
    counts = dict(await node.pubsub_numsub(channel))
    return int(counts[channel.encode()])


async def _heard_from(node: Redis, channel: str, code: str, received: list[str]) -> bool:
    await node.publish(channel, code)
    await asyncio.sleep(0.05)
    return code in received
