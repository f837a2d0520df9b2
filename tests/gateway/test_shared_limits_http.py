"""Failed-lookup limits over HTTP, with two workers on one SQLite registry and no Redis
(docs/design.md §8): the registry's database counts every failure once for both."""

from __future__ import annotations

import aiohttp
import pytest

from sealgate.gateway.provision import Provisioner
from sealgate.verify.directory import LookupLimit, Role
from tests.gateway.conftest import Demo
from tests.gateway.serving import free_port, listens, serving
from tests.gateway.test_checking import random_codes
from tests.gateway.test_processes import started_workers
from tests.waiting import until


def patient_verifier(demo: Demo) -> dict[str, str]:
    """A verifier of its own whose 100 failures drain over a day, not 10 minutes: however
    slowly this machine runs the guesses, none has drained before the 101st."""
    provisioner = Provisioner(demo.settings)
    directory = provisioner.directory()
    try:
        client, token = provisioner.add_client(
            directory, name="a patient bank", role=Role.VERIFIER, purposes=["demo"]
        )
        directory.set_lookup_limit(client.client_id, LookupLimit(100, 86_400.0))
    finally:
        directory.close()
    return {"Authorization": f"Bearer {token}"}


async def statuses_until_429(
    bases: list[str], auth: dict[str, str], seed: int, most: int
) -> list[int]:
    """Guessed codes, each on a new connection (which the kernel gives either worker),
    over ``bases`` in turn, until the first 429."""
    statuses: list[int] = []
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as fresh:
        for n, code in enumerate(random_codes(most, seed=seed)):
            base = bases[n % len(bases)]
            async with fresh.get(f"{base}/v1/verify/{code}?purpose=demo", headers=auth) as r:
                statuses.append(r.status)
            if r.status == 429:
                break
    return statuses


@pytest.mark.slow
@pytest.mark.parametrize("shared", [True, False], ids=["database", "per-process"])
async def test_two_workers_without_redis_meet_one_limit_of_100(demo: Demo, shared: bool) -> None:
    """With the database store: exactly 100 × 404, then 429. Without a shared store
    (here: a Redis that is not there, so each worker keeps to its own buckets, fail
    closed), the same guesses get past 100: what this test would see without it."""
    port = free_port()
    env = {} if shared else {"SEALGATE_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    with serving(demo.home, port, workers=2, env=env) as supervisor:
        workers = started_workers(supervisor.pid, 2)
        until(lambda: all(listens(w, port) for w in workers), timeout=20, what="both bind")
        statuses = await statuses_until_429(
            [f"http://127.0.0.1:{port}"], patient_verifier(demo), seed=23, most=400
        )
    assert statuses[-1] == 429
    assert set(statuses[:-1]) == {404}
    if shared:
        assert statuses.count(404) == 100
    else:
        # each worker its 100: the first 429 comes when one of them has had 101
        assert 100 < statuses.count(404) <= 200
