"""Failed-lookup limits shared by every process of a city (docs/design.md §8): in Redis,
or in the registry's database (SQLite, PostgreSQL) when there is no Redis.

Each FailedLookupLimiter here stands for one gateway process: its own local buckets and
its own connection to the store (a Redis tier with its pool and breaker, or a registry
of its own with its writer thread or pool), all on one real redis-server, one SQLite
file or one PostgreSQL database. Every test runs on the three stores.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from sealgate.bench.redis_server import RedisServer
from sealgate.cache.redis_tier import RedisTier
from sealgate.gateway.problems import Problem, unknown_code
from sealgate.gateway.shared_limits import DatabaseFailures, RedisFailures, SharedFailures
from sealgate.gateway.throttle import FailedLookupLimiter, Throttled, limited_lookup
from sealgate.verify.at_rest import DocumentCipher
from sealgate.verify.directory import LookupLimit
from sealgate.verify.postgres import PostgresRegistry
from sealgate.verify.postgres import migrate as migrate_postgres
from sealgate.verify.sqlite import SqliteRegistry
from tests.postgres_server import PostgresServer

STORES = [pytest.param("redis", marks=pytest.mark.processes), "sqlite", "postgres"]


class Store:
    """One shared store; :meth:`connect` gives a process's way to it."""

    def __init__(self, kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        self.kind = kind
        self.namespace = f"limits-{uuid.uuid4().hex}"
        self.path = tmp_path / "registry.db"
        self.url = ""
        if kind == "redis":
            self.url = request.getfixturevalue("redis_server").url
        elif kind == "postgres":
            self.url = request.getfixturevalue("postgres_url")
            migrate_postgres(self.url)

    async def connect(self, stack: AsyncExitStack) -> SharedFailures:
        if self.kind == "redis":
            tier = RedisTier(self.url, namespace=self.namespace)
            await tier.start()
            stack.push_async_callback(tier.close)
            return RedisFailures(tier, self.namespace)
        cipher = DocumentCipher(os.urandom(32))
        registry = (
            SqliteRegistry(self.path, cipher)
            if self.kind == "sqlite"
            else PostgresRegistry(self.url, cipher)
        )
        stack.push_async_callback(registry.close)
        return DatabaseFailures(registry)


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    return Store(request.param, request, tmp_path)


@asynccontextmanager
async def sharing(store: Store, **options: Any) -> AsyncIterator[list[FailedLookupLimiter]]:
    """Three processes' limiters sharing one store."""
    async with AsyncExitStack() as stack:
        limiters = []
        for _ in range(3):
            shared = await store.connect(stack)
            limiters.append(FailedLookupLimiter(shared=shared, **options))
        yield limiters


# 100 failures that drain over a day, not 10 minutes: however slowly a loaded machine
# runs a test, nothing it counts has drained by the time it looks.
PATIENT = 100 / 86_400


@pytest.fixture
async def processes(store: Store) -> AsyncIterator[list[FailedLookupLimiter]]:
    async with sharing(store, drain_per_second=PATIENT) as limiters:
        yield limiters


def spread(limiters: list[FailedLookupLimiter]) -> Iterator[FailedLookupLimiter]:
    while True:
        yield from limiters


async def failures_before_refusal(
    limiters: list[FailedLookupLimiter], client: str, limit: LookupLimit | None = None
) -> int:
    """Failed lookups of ``client`` spread over the processes until one is refused."""
    for n, limiter in enumerate(spread(limiters)):
        try:
            limiter.admit(client, limit)
            await limiter.failed_everywhere(client, limit)
        except Throttled as exc:
            assert exc.scope == "client"
            return n
        assert n < 1000, "never refused"
    raise AssertionError("unreachable")


async def test_a_client_is_refused_after_100_failures_in_all_processes_together(
    processes: list[FailedLookupLimiter],
) -> None:
    assert await failures_before_refusal(processes, "bank-a") == 100
    # every process refuses it from then on, those that learnt it without asking
    for limiter in processes:
        with pytest.raises(Throttled):
            limiter.admit("bank-a")
            await limiter.failed_everywhere("bank-a")
    # another client has its own budget
    processes[0].admit("bank-b")
    await processes[0].failed_everywhere("bank-b")


async def test_a_clients_own_limit_holds_across_processes(
    processes: list[FailedLookupLimiter],
) -> None:
    assert await failures_before_refusal(processes, "branch", LookupLimit(7, 60.0)) == 7


async def test_the_global_budget_is_the_citys_not_each_processes(store: Store) -> None:
    """A burst of 50 for the city (refilled too slowly to matter here): distinct clients,
    each within its own limit, spread over three processes are refused at the 51st, not
    at 3 x 50."""
    refused_at = None
    async with sharing(
        store, drain_per_second=PATIENT, global_burst=50, global_per_second=0.001
    ) as processes:
        for n, limiter in zip(range(200), spread(processes), strict=False):
            try:
                await limiter.failed_everywhere(f"guesser-{n}")
            except Throttled as exc:
                assert exc.scope == "global"
                refused_at = n
                break
    assert refused_at == 50


async def test_mistyped_codes_weigh_a_tenth(processes: list[FailedLookupLimiter]) -> None:
    limiter = processes[0]

    async def typo() -> None:
        raise unknown_code(mistyped=True)

    async def guess() -> None:
        raise unknown_code()

    for _ in range(20):
        with pytest.raises(Problem):
            await limited_lookup(limiter, "teller", typo, floor_seconds=0)
    assert limiter.failures("teller") == pytest.approx(2.0, abs=0.01)
    with pytest.raises(Problem):
        await limited_lookup(limiter, "teller", guess, floor_seconds=0)
    assert limiter.failures("teller") == pytest.approx(3.0, abs=0.01)
    # and the shared bucket agrees: another process knows the same level
    await processes[1].failed_everywhere("teller", weight=0.1)
    assert processes[1].failures("teller") == pytest.approx(3.1, abs=0.01)


async def test_without_redis_each_process_still_limits(own_redis_server: RedisServer) -> None:
    """Fail closed: with Redis gone the local buckets hold, per process."""
    tier = RedisTier(own_redis_server.url, namespace="down")
    await tier.start()
    try:
        limiter = FailedLookupLimiter(shared=RedisFailures(tier, "down"), drain_per_second=PATIENT)
        await limiter.failed_everywhere("bank")
        own_redis_server.kill()
        assert await failures_before_refusal([limiter], "bank") == 99
    finally:
        await tier.close()


async def test_without_its_database_each_process_still_limits(tmp_path: Path) -> None:
    """Fail closed: with the registry's database gone (its writer stopped) the local
    buckets hold, per process."""
    registry = SqliteRegistry(tmp_path / "registry.db", DocumentCipher(os.urandom(32)))
    limiter = FailedLookupLimiter(shared=DatabaseFailures(registry), drain_per_second=PATIENT)
    await limiter.failed_everywhere("bank")
    await registry.close()
    assert await failures_before_refusal([limiter], "bank") == 99


@pytest.mark.processes
async def test_without_its_postgresql_each_process_still_limits(
    postgres_server: PostgresServer,
) -> None:
    """The database dropped under a running registry (its sessions ended): the local
    buckets hold, per process, and each failure costs no more than the breaker allows."""
    url = postgres_server.create_database()
    migrate_postgres(url)
    registry = PostgresRegistry(url, DocumentCipher(os.urandom(32)))
    try:
        limiter = FailedLookupLimiter(shared=DatabaseFailures(registry), drain_per_second=PATIENT)
        await limiter.failed_everywhere("bank")
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(postgres_server.url(), autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        assert await failures_before_refusal([limiter], "bank") == 99
    finally:
        await registry.close()
