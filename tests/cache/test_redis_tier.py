"""The Redis tier against a real server: commands, bad values, invalidation messages."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import msgpack
import pytest
from redis.asyncio import Redis

from sealgate.bench.redis_server import RedisServer
from sealgate.cache.codec import encode_status
from sealgate.cache.redis_tier import RedisTier
from sealgate.verify.registry import Status
from tests.cache.checks import concurrent_gets_get_their_own
from tests.cache.samples import status_for
from tests.cache.test_golden_bytes import VECTORS, status_of
from tests.waiting import eventually


@pytest.fixture
async def raw(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


@pytest.fixture(params=[True, False], ids=["coalesced", "per-request"])
async def any_tier(
    request: pytest.FixtureRequest, redis_server: RedisServer, namespace: str
) -> AsyncIterator[RedisTier]:
    tier = RedisTier(redis_server.url, namespace=namespace, coalesce=request.param)
    await tier.start()
    yield tier
    await tier.close()


async def test_put_get_delete(any_tier: RedisTier) -> None:
    status = status_for("CODE1")
    assert await any_tier.get("CODE1") is None
    await any_tier.put("CODE1", status)
    assert await any_tier.get("CODE1") == status
    assert await any_tier.get("CODE2") is None
    assert await any_tier.delete(["CODE1", "CODE2"]) is True
    assert await any_tier.get("CODE1") is None
    assert await any_tier.delete([]) is True
    assert any_tier.available


@pytest.mark.parametrize("coalesce", [True, False], ids=["coalesced", "per-request"])
async def test_concurrent_gets_each_get_their_own(
    coalesce: bool, redis_server: RedisServer, namespace: str
) -> None:
    # Generous timeouts: 500 gets queue for 64 connections, and on a busy machine the
    # default 0.25 s would turn some into misses (by design), which is not what this
    # test is about: no get may receive another's answer.
    tier = RedisTier(
        redis_server.url,
        namespace=namespace,
        coalesce=coalesce,
        pool_timeout=10.0,
        socket_timeout=10.0,
    )
    await tier.start()
    try:
        await concurrent_gets_get_their_own(tier)
    finally:
        await tier.close()


async def test_keys_and_ttl(tier: RedisTier, raw: Redis, namespace: str) -> None:
    await tier.put("CODE1", status_for("CODE1"))
    key = f"{namespace}:p:CODE1"
    assert await raw.get(key) == encode_status(status_for("CODE1"))
    assert 3590 <= await raw.ttl(key) <= 3600


async def test_overwrite_replaces(tier: RedisTier) -> None:
    await tier.put("CODE1", status_for("CODE1"))
    revoked = status_for("CODE1", status=Status.REVOKED, version=2)
    await tier.put("CODE1", revoked)
    assert await tier.get("CODE1") == revoked


async def test_malformed_value_is_a_miss(
    tier: RedisTier, raw: Redis, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    await raw.set(f"{namespace}:p:BAD", b"\x93\x01\x02")
    await raw.set(f"{namespace}:p:OLD", msgpack.packb([0, "OLD"]))
    await raw.rpush(f"{namespace}:p:LIST", b"x")  # wrong type: MGET/GET → nil/WRONGTYPE
    with caplog.at_level(logging.WARNING, logger="sealgate.cache.redis_tier"):
        assert await tier.get("BAD") is None
        assert await tier.get("OLD") is None
        assert await tier.get("LIST") is None
    assert tier.malformed_values == 2
    assert len(caplog.records) == 1  # logged once, without the value
    assert "\\x93" not in caplog.text
    assert tier.available


@pytest.mark.parametrize("other", ["format-3", "format-1"])
async def test_a_value_of_another_format_is_a_miss_until_overwritten(
    tier: RedisTier, raw: Redis, namespace: str, other: str
) -> None:
    """Mid-upgrade, a newer gateway wrote a value this one cannot read, or an older one
    wrote a value that cannot say whether its proof is endorsed: a registry read, then
    this gateway's own copy, never an error or a wrong answer."""
    written = next(v for v in VECTORS["rejected"] if v["name"] == other)
    status = status_of(next(v for v in VECTORS["round_trip"] if v["name"] == "valid")["status"])
    await raw.set(f"{namespace}:p:{status.code}", bytes.fromhex(written["hex"]))
    assert await tier.get(status.code) is None
    assert tier.malformed_values == 1
    await tier.put(status.code, status)
    assert await tier.get(status.code) == status
    assert tier.malformed_values == 1


async def test_writes_redis_refuses_are_counted_and_logged_sparingly(
    own_redis_server: RedisServer, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    tier = RedisTier(own_redis_server.url, namespace=namespace)
    await tier.start()
    admin = Redis.from_url(own_redis_server.url)
    try:
        # Full, and told to refuse rather than evict: every SET is an OOM error.
        await admin.config_set("maxmemory-policy", "noeviction")
        await admin.config_set("maxmemory", 1)
        with caplog.at_level(logging.WARNING, logger="sealgate.cache.redis_tier"):
            for n in range(12):
                await tier.put(f"CODE{n}", status_for(f"CODE{n}"))
        assert tier.refused_writes == 12
        assert [r.getMessage().split(",")[0] for r in caplog.records] == [
            "Redis refused 1 cache writes so far",
            "Redis refused 10 cache writes so far",
        ]
        assert "OutOfMemoryError" in caplog.text and "maxmemory" in caplog.text
        assert tier.available  # a refusal is an answer, not an outage
        await admin.config_set("maxmemory", 0)
        await tier.put("CODE0", status_for("CODE0"))
        assert await tier.get("CODE0") == status_for("CODE0")
        assert tier.refused_writes == 12
    finally:
        await admin.aclose()
        await tier.close()


async def test_value_of_another_code_is_a_miss(tier: RedisTier, raw: Redis, namespace: str) -> None:
    await raw.set(f"{namespace}:p:CODE2", encode_status(status_for("CODE1")))
    assert await tier.get("CODE2") is None
    assert tier.foreign_values == 1


async def test_wrongtype_on_per_request_get_is_a_miss(
    redis_server: RedisServer, raw: Redis, namespace: str
) -> None:
    tier = RedisTier(redis_server.url, namespace=namespace, coalesce=False)
    await tier.start()
    try:
        await raw.rpush(f"{namespace}:p:LIST", b"x")
        assert await tier.get("LIST") is None
        assert tier.available
    finally:
        await tier.close()


async def test_publish_reaches_listen_within_100_ms(tier: RedisTier) -> None:
    received: asyncio.Queue[tuple[str, float]] = asyncio.Queue()
    listener = asyncio.create_task(
        tier.listen(lambda code: received.put_nowait((code, time.monotonic())))
    )
    try:

        async def subscribed() -> bool:  # that takes a moment: publish until it is heard
            await tier.publish("WARMUP")
            return not received.empty()

        await eventually(subscribed, timeout=5, interval=0.02, what="listen subscribed")
        while not received.empty():
            received.get_nowait()
        for n in range(5):
            sent = time.monotonic()
            assert await tier.publish(f"CODE{n}") is True
            code, at = await asyncio.wait_for(received.get(), 1.0)
            assert code == f"CODE{n}"
            assert at - sent < 0.1
    finally:
        listener.cancel()
        with pytest.raises(asyncio.CancelledError):
            await listener


async def test_listen_survives_a_failing_callback(tier: RedisTier) -> None:
    seen: list[str] = []

    def callback(code: str) -> None:
        seen.append(code)
        if code == "BOOM":
            raise RuntimeError("callback bug")

    listener = asyncio.create_task(tier.listen(callback))
    try:

        async def heard_boom() -> bool:
            await tier.publish("BOOM")
            return "BOOM" in seen

        await eventually(heard_boom, timeout=5, interval=0.02)
        await tier.publish("AFTER")
        await eventually(lambda: "AFTER" in seen, timeout=5, interval=0.01)
    finally:
        listener.cancel()
        with pytest.raises(asyncio.CancelledError):
            await listener


async def test_announcements_are_heard_apart_from_invalidations(tier: RedisTier) -> None:
    """Provisioning announcements (sealgate.gateway.announcements) come on the same
    subscription, to their own callback, never taken for a code."""
    codes: list[str] = []
    announced: list[str] = []
    listener = asyncio.create_task(tier.listen(codes.append, announced.append))
    try:

        async def heard() -> bool:
            await tier.announce("seals")
            return bool(announced)

        await eventually(heard, timeout=5, interval=0.02, what="listen subscribed")
        assert await tier.announce("client:CL123") is True
        assert await tier.publish("CODE1") is True
        await eventually(lambda: "CODE1" in codes, timeout=5, interval=0.01)
        assert "client:CL123" in announced
        assert set(announced) == {"seals", "client:CL123"}
        assert codes == ["CODE1"]
    finally:
        listener.cancel()
        with pytest.raises(asyncio.CancelledError):
            await listener


async def test_unstarted_tier_is_a_harmless_miss() -> None:
    tier = RedisTier("redis://127.0.0.1:1/0")
    assert await tier.get("CODE1") is None
    await tier.put("CODE1", status_for("CODE1"))
    assert await tier.delete(["CODE1"]) is False
    assert await tier.publish("CODE1") is False
    assert await tier.announce("seals") is False
    assert tier.available is False


async def test_start_with_redis_down_does_not_fail(
    own_redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    own_redis_server.kill()
    tier = RedisTier(own_redis_server.url)
    with caplog.at_level(logging.WARNING, logger="sealgate.cache.redis_tier"):
        await tier.start()
    try:
        assert tier.available is False
        assert "unavailable" in caplog.text
        assert await tier.get("CODE1") is None
    finally:
        await tier.close()
