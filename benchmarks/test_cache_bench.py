"""The Redis cache tier: codec, and a cached status read beside the raw redis-py floor.

Async calls run on one long-lived loop; every round does 100 gets (sequential, or 100-way
concurrent via asyncio.gather), so divide the times by 100 for one get. The floor is a
raw ``redis.asyncio`` GET of the same key on the same server in the same run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture
from redis.asyncio import BlockingConnectionPool, Redis

from sealgate.bench.redis_server import RedisServer
from sealgate.cache.codec import decode_status, encode_status
from sealgate.cache.redis_tier import RedisTier
from tests.cache.samples import BASE

PER_ROUND = 100
CODE = BASE.code
NAMESPACE = "bench"
KEY = f"{NAMESPACE}:p:{CODE}"


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(Path(tmp_path_factory.mktemp("bench-redis")))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module", params=[True, False], ids=["coalesced", "per-request"])
def tier(
    request: pytest.FixtureRequest, loop: asyncio.AbstractEventLoop, server: RedisServer
) -> Iterator[RedisTier]:
    tier = RedisTier(server.url, namespace=NAMESPACE, coalesce=request.param)
    loop.run_until_complete(tier.start())
    loop.run_until_complete(tier.put(CODE, BASE))
    yield tier
    loop.run_until_complete(tier.close())


@pytest.fixture(scope="module")
def raw(loop: asyncio.AbstractEventLoop, server: RedisServer) -> Iterator[Redis]:
    client = Redis.from_pool(BlockingConnectionPool.from_url(server.url, max_connections=64))
    loop.run_until_complete(client.set(KEY, encode_status(BASE)))
    yield client
    loop.run_until_complete(client.aclose())


def _sequential(get: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        for _ in range(PER_ROUND):
            assert await get() is not None

    return run


def _concurrent(get: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        results = await asyncio.gather(*(get() for _ in range(PER_ROUND)))
        assert None not in results

    return run


def test_codec_encode(benchmark: BenchmarkFixture) -> None:
    assert benchmark(encode_status, BASE)


def test_codec_decode(benchmark: BenchmarkFixture) -> None:
    data = encode_status(BASE)
    assert benchmark(decode_status, data) == BASE


def test_tier_get_x100_sequential(
    benchmark: BenchmarkFixture, loop: asyncio.AbstractEventLoop, tier: RedisTier
) -> None:
    run = _sequential(lambda: tier.get(CODE))
    benchmark(lambda: loop.run_until_complete(run()))


def test_tier_get_x100_concurrent(
    benchmark: BenchmarkFixture, loop: asyncio.AbstractEventLoop, tier: RedisTier
) -> None:
    run = _concurrent(lambda: tier.get(CODE))
    benchmark(lambda: loop.run_until_complete(run()))


def test_floor_raw_get_x100_sequential(
    benchmark: BenchmarkFixture, loop: asyncio.AbstractEventLoop, raw: Redis
) -> None:
    run = _sequential(lambda: raw.get(KEY))
    benchmark(lambda: loop.run_until_complete(run()))


def test_floor_raw_get_x100_concurrent(
    benchmark: BenchmarkFixture, loop: asyncio.AbstractEventLoop, raw: Redis
) -> None:
    run = _concurrent(lambda: raw.get(KEY))
    benchmark(lambda: loop.run_until_complete(run()))


def test_floor_raw_get_decode_x100_concurrent(
    benchmark: BenchmarkFixture, loop: asyncio.AbstractEventLoop, raw: Redis
) -> None:
    async def get() -> object:
        data = await raw.get(KEY)
        return decode_status(data) if isinstance(data, bytes) else None

    run = _concurrent(get)
    benchmark(lambda: loop.run_until_complete(run()))
