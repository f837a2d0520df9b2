"""Two gateway instances on one PostgreSQL and one Redis (city scale, docs/design.md §3.3).

Each instance has a home of its own (its own audit trail, config and token directory);
they share the database, the cache and what every instance must hold alike: the
secrets (code, holder and document keys) and the keys in the HSM. Here the second home
is a copy of the first, as a second machine provisioned from the same secrets and
attached to the same (replicated) HSM would be.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path

import aiohttp
import psycopg
import pytest

from sealgate.bench.redis_server import RedisServer
from sealgate.gateway.config_file import load_settings
from sealgate.gateway.provision import init_home
from sealgate.verify.directory import Role
from sealgate.verify.holders import HolderKeys
from tests.gateway.conftest import proof_request
from tests.gateway.serving import free_port, serving
from tests.gateway.test_shared_limits_http import statuses_until_429
from tests.postgres_server import PostgresServer

BOUND = 1.0  # docs/design.md §4.5: a status change shows everywhere within 1 s of its 200
SEALGATE = [sys.executable, "-m", "sealgate.gateway.cli"]


class Instances:
    def __init__(self, homes: list[Path], urls: list[str], tokens: dict[Role, str], seal: str):
        self.homes = homes
        self.urls = urls
        self.tokens = tokens
        self.seal = seal

    def auth(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


@asynccontextmanager
async def two_instances(
    tmp_path: Path,
    postgres_server: PostgresServer,
    redis_server: RedisServer | None,
    workers: int = 1,
    settings: dict[str, str] | None = None,
) -> AsyncIterator[tuple[Instances, aiohttp.ClientSession, str]]:
    database = postgres_server.create_database("instances")
    first = tmp_path / "gateway-a"
    _, credentials = init_home(first, demo=True, database_url=database)
    assert credentials is not None
    second = tmp_path / "gateway-b"
    shutil.copytree(first, second)
    # the second instance starts a trail of its own (same audit key: the same HSM)
    for trail in [*second.glob("audit.db*"), second / "audit-head.json"]:
        trail.unlink(missing_ok=True)
    tokens = {client.role: token for client, token in credentials.clients}
    ports = [free_port(), free_port()]
    env = {} if redis_server is None else {"SEALGATE_REDIS_URL": redis_server.url}
    env.update(settings or {})
    with ExitStack() as processes:
        for home, port in zip((first, second), ports, strict=True):
            processes.enter_context(serving(home, port, workers, env=env))
        instances = Instances(
            [first, second],
            [f"http://127.0.0.1:{port}" for port in ports],
            tokens,
            credentials.seals[0].seal_id,
        )
        async with aiohttp.ClientSession() as session:
            yield instances, session, database


async def status_on(session: aiohttp.ClientSession, base: str, gw: Instances, code: str) -> str:
    async with session.get(
        f"{base}/v1/verify/{code}?purpose=demo", headers=gw.auth(Role.VERIFIER)
    ) as r:
        assert r.status == 200, await r.text()
        status: str = (await r.json())["status"]
        return status


@pytest.mark.slow
async def test_proofs_statuses_and_idempotency_hold_across_instances(
    tmp_path: Path, postgres_server: PostgresServer, redis_server: RedisServer
) -> None:
    async with two_instances(tmp_path, postgres_server, redis_server) as (gw, session, db):
        a, b = gw.urls

        # sealed on one, verified on the other (and its document served there)
        async with session.post(
            f"{a}/v1/certificates", json=proof_request(gw.seal), headers=gw.auth(Role.SIGNER)
        ) as r:
            assert r.status == 201, await r.text()
            code = (await r.json())["code"]
        assert await status_on(session, b, gw, code) == "valid"
        assert await status_on(session, a, gw, code) == "valid"

        # a change on either is seen on the other within the bound
        for writer, reader, status in ((a, b, "pledged"), (b, a, "valid"), (a, b, "revoked")):
            async with session.post(
                f"{writer}/v1/certificates/{code}/status",
                json={"status": status, "reason": "cross-instance test"},
                headers=gw.auth(Role.ISSUER),
            ) as r:
                assert r.status == 200, await r.text()
                answered = time.monotonic()
            while await status_on(session, reader, gw, code) != status:
                assert time.monotonic() - answered <= BOUND, f"{status} not seen on {reader}"
                await asyncio.sleep(0.01)

        # one Idempotency-Key sent to both at once, then retried on each: one proof
        key = str(uuid.uuid4())
        headers = {**gw.auth(Role.SIGNER), "Idempotency-Key": key}
        body = proof_request(gw.seal, content={"用途": "跨实例幂等"})

        async def post(base: str) -> tuple[int, str, bool]:
            async with session.post(f"{base}/v1/certificates", json=body, headers=headers) as r:
                answer = await r.json()
                replayed = r.headers.get("Idempotent-Replayed") == "true"
                return r.status, answer.get("code", ""), replayed

        first = await asyncio.gather(post(a), post(b), post(a), post(b))
        again = [await post(b), await post(a)]
        assert {status for status, _, _ in first + again} == {201}
        assert len({code for _, code, _ in first + again}) == 1
        assert all(replayed for _, _, replayed in again)
        with psycopg.connect(db) as conn:
            stored = conn.execute(
                "SELECT count(*) FROM proofs WHERE code = %s", (first[0][1].replace("-", ""),)
            ).fetchone()
            # kept as the keyed hash both instances make of it (their holder-key is one)
            secret = load_settings(gw.homes[0]).read_secret("holder-key")
            hashed = HolderKeys(secret).keyed_hash("idempotency-key", key.encode()).hex()
            keys = conn.execute(
                "SELECT count(*) FROM idempotency_keys WHERE key = %s", (hashed,)
            ).fetchone()
            verbatim = conn.execute(
                "SELECT count(*) FROM idempotency_keys WHERE key = %s", (key,)
            ).fetchone()
        assert stored is not None and stored[0] == 1
        assert keys is not None and keys[0] == 1
        assert verbatim == (0,)

    # each instance kept a trail of its own, and each verifies (both were stopped cleanly)
    for home in gw.homes:
        result = subprocess.run(
            [*SEALGATE, "--home", str(home), "audit", "verify"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("OK"), result.stdout


@pytest.mark.processes
async def test_failed_lookups_are_limited_once_for_every_worker_of_every_instance(
    tmp_path: Path, postgres_server: PostgresServer, redis_server: RedisServer
) -> None:
    """Two instances of two workers each on one Redis: a client's guesses, spread over
    all four processes (a new connection each), meet one limit of 100 failures in all,
    not 100 per process (docs/design.md §8)."""
    async with two_instances(tmp_path, postgres_server, redis_server, workers=2) as (
        gw,
        _,
        _,
    ):
        statuses = await statuses_until_429(gw.urls, gw.auth(Role.VERIFIER), seed=11, most=150)
        assert statuses.count(404) == 100
        assert statuses[-1] == 429


@pytest.mark.processes
async def test_without_redis_two_instances_meet_one_limit_in_their_database(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    """No Redis: the PostgreSQL both instances share counts each failure once, on its
    own clock (docs/design.md §8)."""
    async with two_instances(tmp_path, postgres_server, None) as (gw, _, database):
        statuses = await statuses_until_429(gw.urls, gw.auth(Role.VERIFIER), seed=12, most=150)
        assert statuses[:-1] == [404] * 100
        assert statuses[-1] == 429
        with psycopg.connect(database) as conn:
            stored = conn.execute("SELECT level, refused FROM lookup_failures").fetchall()
        assert stored == [(100.0, 1)]  # one row, full, for the one client that guessed


@pytest.mark.slow
async def test_a_provisioning_change_reaches_the_other_instance_at_once(
    tmp_path: Path, postgres_server: PostgresServer, redis_server: RedisServer
) -> None:
    """An admin's change on one instance, announced on Redis, is in force on the other
    right after: its token cache and catalog live an hour here, so nothing else could
    bring it there within the test (docs/design.md §6.2)."""
    remembered = {"SEALGATE_TOKEN_CACHE": "3600", "SEALGATE_CATALOG_REFRESH": "3600"}
    async with two_instances(tmp_path, postgres_server, redis_server, settings=remembered) as (
        gw,
        session,
        _,
    ):
        a, b = gw.urls
        admin = {**gw.auth(Role.ADMIN), "X-Operator": "ops-7"}
        grants = {"name": "branch 3", "role": "verifier", "purposes": ["demo"]}
        async with session.post(f"{a}/v1/admin/clients", json=grants, headers=admin) as r:
            assert r.status == 201, await r.text()
            client = await r.json()
        auth = {"Authorization": f"Bearer {client['token']}"}

        async def answers(method: str, url: str, headers: dict[str, str], status: int) -> None:
            deadline = time.monotonic() + 10.0  # an hour's cache is the alternative
            while True:
                body = proof_request(gw.seal) if method == "POST" else None
                async with session.request(method, url, json=body, headers=headers) as r:
                    if r.status == status:
                        return
                assert time.monotonic() < deadline, f"{url} still answers {r.status}"
                await asyncio.sleep(0.01)

        await answers("GET", f"{b}/v1/subscriptions", auth, 200)  # b remembers it
        async with session.delete(
            f"{a}/v1/admin/clients/{client['client_id']}", headers=admin
        ) as r:
            assert r.status == 204
        await answers("GET", f"{b}/v1/subscriptions", auth, 401)

        sealing = (f"{b}/v1/certificates", gw.auth(Role.SIGNER))
        await answers("POST", *sealing, 201)  # b's catalog is loaded, the seal in use
        async with session.post(f"{a}/v1/admin/seals/{gw.seal}/suspend", headers=admin) as r:
            assert r.status == 200
        await answers("POST", *sealing, 403)
        async with session.post(f"{a}/v1/admin/seals/{gw.seal}/resume", headers=admin) as r:
            assert r.status == 200
        await answers("POST", *sealing, 201)
