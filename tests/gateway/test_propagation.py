"""A status change shows on every gateway process within 1 s, whatever path tells it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager

import aiohttp
import pytest

from tests.gateway.conftest import Demo, proof_request
from tests.gateway.serving import free_port, serving
from verify.directory import Role

BOUND = 1.0  # DESIGN: no verification shows the old status more than 1 s after the 200


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
