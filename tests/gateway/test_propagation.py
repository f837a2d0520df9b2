"""A status change shows on every gateway process within 1 s, whatever path tells it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager

import aiohttp
import pytest
import redis

from sealgate.bench.redis_server import RedisServer
from sealgate.cache.codec import decode_status
from sealgate.cache.redis_tier import status_key
from sealgate.verify.directory import Role
from sealgate.verify.registry import Status
from tests.gateway.conftest import Demo, proof_request
from tests.gateway.scraped import value
from tests.gateway.serving import free_port, serving
from tests.waiting import eventually

BOUND = 1.0  # docs/design.md §4.5: no verification shows the old status more than 1 s after the 200


@asynccontextmanager
async def two_gateways(
    demo: Demo, env: dict[str, str] | None = None
) -> AsyncIterator[tuple[str, str, aiohttp.ClientSession]]:
    ports = [free_port(), free_port()]
    with ExitStack() as processes:
        for port in ports:
            processes.enter_context(serving(demo.home, port, env=env))
        async with aiohttp.ClientSession() as session:
            yield f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}", session


async def status_on(session: aiohttp.ClientSession, base: str, demo: Demo, code: str) -> str:
    async with session.get(
        f"{base}/v1/verify/{code}?purpose=demo", headers=demo.auth(Role.VERIFIER)
    ) as r:
        assert r.status == 200, await r.text()
        status: str = (await r.json())["status"]
        return status


async def seal_on(session: aiohttp.ClientSession, base: str, demo: Demo) -> str:
    async with session.post(
        f"{base}/v1/certificates",
        json=proof_request(demo.proof_seal),
        headers=demo.auth(Role.SIGNER),
    ) as r:
        assert r.status == 201
        code: str = (await r.json())["code"]
        return code


async def change_on(
    session: aiohttp.ClientSession, base: str, demo: Demo, code: str, status: str
) -> float:
    async with session.post(
        f"{base}/v1/certificates/{code}/status",
        json={"status": status, "reason": "test"},
        headers=demo.auth(Role.ISSUER),
    ) as r:
        assert r.status == 200, await r.text()
        return time.monotonic()


async def seen_after(
    session: aiohttp.ClientSession, base: str, demo: Demo, code: str, status: str, answered: float
) -> float:
    """How long after the 200 the other gateway first shows ``status`` (polling)."""
    while True:
        if await status_on(session, base, demo, code) == status:
            return time.monotonic() - answered
        if time.monotonic() - answered > 5:
            raise AssertionError(f"{status} never showed on {base}")
        await asyncio.sleep(0.01)


async def exercise(demo: Demo, env: dict[str, str] | None) -> list[float]:
    delays = []
    async with two_gateways(demo, env) as (a, b, session):
        code = await seal_on(session, a, demo)
        for _ in range(3):  # both processes now hold a copy
            assert await status_on(session, a, demo, code) == "valid"
            assert await status_on(session, b, demo, code) == "valid"
        for writer, reader, status in ((a, b, "pledged"), (b, a, "valid"), (a, b, "revoked")):
            answered = await change_on(session, writer, demo, code, status)
            delays.append(await seen_after(session, reader, demo, code, status, answered))
            assert await status_on(session, writer, demo, code) == status
    return delays


@pytest.mark.slow
async def test_changes_reach_the_other_process_through_the_change_feed(demo: Demo) -> None:
    """No Redis: no messages at all; the registry's change log alone keeps the bound."""
    delays = await exercise(demo, None)
    print(f"change feed only: seen after {[round(d, 3) for d in delays]} s")
    assert max(delays) <= BOUND, delays


@pytest.mark.slow
async def test_changes_reach_the_other_process_through_redis(
    demo: Demo, redis_server: RedisServer
) -> None:
    delays = await exercise(demo, {"SEALGATE_REDIS_URL": redis_server.url})
    print(f"with redis: seen after {[round(d, 3) for d in delays]} s")
    assert max(delays) <= BOUND, delays


@pytest.mark.slow
async def test_redis_killed_and_restarted_under_load(
    demo: Demo, own_redis_server: RedisServer
) -> None:
    """Verification answers throughout from the registry, never shows a revoked proof as
    valid past the bound, and caches in Redis again once it is back."""
    env = {"SEALGATE_REDIS_URL": own_redis_server.url}
    async with two_gateways(demo, env) as (a, b, session):
        codes = [await seal_on(session, a, demo) for _ in range(24)]
        for code in codes:
            assert await status_on(session, a, demo, code) == "valid"
            assert await status_on(session, b, demo, code) == "valid"
        revoked_at: dict[str, float] = {}
        observations: list[tuple[float, str, str, int]] = []  # started, code, status, http
        stop = asyncio.Event()

        async def check_forever(base: str, offset: int) -> None:
            n = offset
            while not stop.is_set():
                code = codes[n % len(codes)]
                n += 1
                started = time.monotonic()
                try:
                    async with session.get(
                        f"{base}/v1/verify/{code}?purpose=demo", headers=demo.auth(Role.VERIFIER)
                    ) as r:
                        body = await r.json() if r.status == 200 else {}
                        observations.append((started, code, body.get("status", ""), r.status))
                except aiohttp.ClientError:
                    observations.append((started, code, "", 0))

        async def revoke(code: str) -> None:
            revoked_at[code] = await change_on(session, a, demo, code, "revoked")

        async def checked(count: int, since: float = 0.0) -> None:
            """Until the checkers have answered ``count`` checks begun after ``since``."""

            def done() -> bool:
                return sum(1 for o in observations if o[0] > since) >= count

            await eventually(done, timeout=30, what=f"{count} checks")

        checkers = [
            asyncio.create_task(check_forever(base, i * 5)) for i, base in enumerate((a, b, a, b))
        ]
        await checked(40)
        for code in codes[:4]:
            await revoke(code)
        await checked(40, since=time.monotonic())
        own_redis_server.kill()
        killed = time.monotonic()
        for code in codes[4:8]:
            await checked(20, since=time.monotonic())
            await revoke(code)  # Redis is down: the delete fails, the registry holds
        await checked(60, since=killed)
        own_redis_server.restart()
        restarted = time.monotonic()

        async def both_use_redis_again() -> bool:
            # A proof neither gateway holds a copy of: checking it asks Redis, and once
            # the breaker's period is over that is the probe that closes it again.
            fresh = await seal_on(session, a, demo)
            for base in (a, b):
                assert await status_on(session, base, demo, fresh) == "valid"
            for base in (a, b):
                async with session.get(f"{base}/metrics") as r:
                    if value(await r.text(), "sealgate_cache_redis_available") != 1:
                        return False
            return True

        await eventually(both_use_redis_again, timeout=30, interval=0.2, what="Redis in use")
        for code in codes[8:12]:
            await checked(20, since=time.monotonic())
            await revoke(code)

        cache = redis.Redis.from_url(own_redis_server.url)

        def revocations_checked_past_the_bound_and_cached_again() -> bool:
            late = {
                code
                for started, code, _, _ in observations
                if code in revoked_at and started > revoked_at[code] + BOUND
            }
            return late == set(codes[:12]) and cache.dbsize() > 0

        try:
            await eventually(
                revocations_checked_past_the_bound_and_cached_again,
                timeout=30,
                interval=0.1,
                what="checks past the bound",
            )
        finally:
            cache.close()
        stop.set()
        await asyncio.gather(*checkers)

    http = [o[3] for o in observations]
    assert http.count(200) == len(http), {s: http.count(s) for s in set(http)}
    during = [o for o in observations if killed < o[0] < restarted]
    assert len(during) > 50, "verification kept answering while Redis was down"
    latest_valid = 0.0  # the latest a revoked proof was still shown valid, after the 200
    for started, code, status, _ in observations:
        if code in revoked_at and started > revoked_at[code]:
            if status == "valid":
                latest_valid = max(latest_valid, started - revoked_at[code])
            if started > revoked_at[code] + BOUND:
                assert status == "revoked", f"{code}: {status} long after its revocation"
    print(
        f"redis outage: {len(observations)} checks, {len(during)} while down, all 200; "
        f"latest 'valid' after a revocation: {latest_valid:.3f}s"
    )
    for code in codes[12:]:
        assert {o[2] for o in observations if o[1] == code} == {"valid"}


@pytest.mark.slow
async def test_a_gateway_started_during_a_redis_outage_never_serves_a_stale_copy(
    demo: Demo, own_redis_server: RedisServer
) -> None:
    """Redis dies holding a valid copy (and a snapshot of it); the proof is revoked; the
    gateway restarts before Redis comes back from the snapshot. The new process never
    learnt of the failed delete, yet must answer revoked."""
    env = {"SEALGATE_REDIS_URL": own_redis_server.url}
    port = free_port()
    client = redis.Redis.from_url(own_redis_server.url)
    try:
        async with aiohttp.ClientSession() as session:
            base = f"http://127.0.0.1:{port}"
            with serving(demo.home, port, env=env):
                code = await seal_on(session, base, demo)
                assert await status_on(session, base, demo, code) == "valid"
                assert client.dbsize() > 0
                client.save()  # what a Redis with snapshots on does by itself
                own_redis_server.kill()
                await change_on(session, base, demo, code, "revoked")
            with serving(demo.home, port, env=env):
                own_redis_server.restart()
                key = status_key(code.replace("-", ""))
                assert decode_status(client.get(key)).status is Status.VALID  # brought back
                # Asked first once the breaker that the outage opened has closed again:
                # an answer from the registry would fill the in-process tier instead.
                await asyncio.sleep(1.5)
                seen = {await status_on(session, base, demo, code) for _ in range(5)}
                assert seen == {"revoked"}
                # Redis was in use: the copy read back from the registry replaced it.
                assert decode_status(client.get(key)).status is Status.REVOKED
    finally:
        client.close()
