"""Status lookups through the tiers (sealgate.cache.lookup): what one verification's lookup costs
when the in-process tier has it, when Redis has it, and when only the registry does.

Each round does 100 lookups of distinct codes on one long-lived loop; divide by 100. The
floors sit beside them in the same run: a dict read for the in-process tier, a raw
redis-py GET (bench/test_cache_bench.py) for Redis, the registry read for a miss.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from sealgate.bench.redis_server import RedisServer
from sealgate.cache.local import LocalTier
from sealgate.cache.lookup import CachedLookup
from sealgate.cache.redis_tier import RedisTier
from sealgate.verify.at_rest import DocumentCipher
from sealgate.verify.sqlite import SqliteRegistry
from tests.verify.test_lifecycle import proof

PER_ROUND = 100
CODES = [f"430900BENCH{i:013d}" for i in range(PER_ROUND)]


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def registry(
    loop: asyncio.AbstractEventLoop, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SqliteRegistry]:
    path = Path(tmp_path_factory.mktemp("bench-registry")) / "registry.db"
    registry = SqliteRegistry(path, DocumentCipher(os.urandom(32)))
    loop.run_until_complete(registry.register([proof(code) for code in CODES]))
    yield registry
    loop.run_until_complete(registry.close())


@pytest.fixture(scope="module")
def shared(
    loop: asyncio.AbstractEventLoop, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RedisTier]:
    server = RedisServer(Path(tmp_path_factory.mktemp("bench-lookup-redis")))
    server.start()
    tier = RedisTier(server.url, namespace="bench-lookup")
    loop.run_until_complete(tier.start())
    yield tier
    loop.run_until_complete(tier.close())
    server.stop()


def run_round(loop: asyncio.AbstractEventLoop, lookup: CachedLookup, concurrent: bool) -> None:
    async def sequential() -> None:
        for code in CODES:
            assert await lookup.get_status(code) is not None

    async def together() -> None:
        results = await asyncio.gather(*(lookup.get_status(code) for code in CODES))
        assert all(r is not None for r in results)

    loop.run_until_complete(together() if concurrent else sequential())


def test_floor_dict_read(benchmark: BenchmarkFixture) -> None:
    table = dict.fromkeys(CODES, 1)
    benchmark(lambda: [table[c] for c in CODES])


def test_lookup_in_process_hit(
    benchmark: BenchmarkFixture, loop: asyncio.AbstractEventLoop, registry: SqliteRegistry
) -> None:
    lookup = CachedLookup(registry, LocalTier())
    run_round(loop, lookup, concurrent=False)  # fill
    benchmark(run_round, loop, lookup, False)


@pytest.mark.parametrize("concurrent", [False, True], ids=["sequential", "concurrent"])
def test_lookup_redis_hit(
    benchmark: BenchmarkFixture,
    loop: asyncio.AbstractEventLoop,
    registry: SqliteRegistry,
    shared: RedisTier,
    concurrent: bool,
) -> None:
    # An in-process tier whose copies are never served: every lookup goes to Redis.
    lookup = CachedLookup(registry, LocalTier(max_age=-1.0), shared)
    run_round(loop, lookup, concurrent=False)  # Redis filled from the registry
    benchmark(run_round, loop, lookup, concurrent)


@pytest.mark.parametrize("concurrent", [False, True], ids=["sequential", "concurrent"])
def test_lookup_registry_miss(
    benchmark: BenchmarkFixture,
    loop: asyncio.AbstractEventLoop,
    registry: SqliteRegistry,
    concurrent: bool,
) -> None:
    lookup = CachedLookup(registry, LocalTier(max_age=-1.0))
    benchmark(run_round, loop, lookup, concurrent)
