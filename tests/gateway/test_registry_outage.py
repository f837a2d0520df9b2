"""A hung and a stopped PostgreSQL under a gateway (docs/design.md §11), for real: the
suite's PostgreSQL server SIGSTOPped under load, then SIGCONTed; and stopped cleanly
with Redis holding copies.

No timed assertion: every request must get an answer before the request deadline plus a
margin the test measures on the same load while the database is healthy, and the
figures (requests, answers by status, longest wait, p99) are printed for the record.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import json
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from aiohttp.test_utils import TestClient

from sealgate.bench.redis_server import RedisServer
from sealgate.gateway.app import create_app
from sealgate.gateway.provision import init_home
from sealgate.verify.directory import Role
from tests.gateway.conftest import Demo, GatewayClient, proof_request
from tests.postgres_server import PostgresServer
from tests.waiting import eventually

pytestmark = [pytest.mark.processes, pytest.mark.slow]
Client = TestClient[Any, Any]

DEADLINE = 2.0  # the city's request_deadline in these tests
HANG = 3 * DEADLINE + 2.0  # long enough for the first wave, the breaker, and auth expiry


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL of this test's own: it is paused and stopped, which the shared one
    must never be."""
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        if server.running:
            server.resume()  # a failed test must not leave it stopped for the stop below
        server.stop()


def demo_on(server: PostgresServer, tmp_path: Any, **settings: Any) -> Demo:
    url = server.create_database("outage")
    home_settings, credentials = init_home(tmp_path / "home", demo=True, database_url=url)
    assert credentials is not None
    return Demo(dataclasses.replace(home_settings, **settings), credentials)


@dataclasses.dataclass(frozen=True)
class Answer:
    kind: str
    status: int
    wait: float
    body: dict[str, Any]
    headers: dict[str, str]


async def ask(api: Client, kind: str, method: str, path: str, **kwargs: Any) -> Answer:
    started = time.monotonic()
    async with api.request(method, path, **kwargs) as response:
        raw = await response.read()
        wait = time.monotonic() - started
        body = json.loads(raw) if raw else {}
        return Answer(kind, response.status, wait, body, dict(response.headers))


async def seal(api: Client, demo: Demo, n: int) -> str:
    answer = await ask(
        api, "seal", "POST", "/v1/certificates",
        json=proof_request(demo.proof_seal, content={"n": n}), headers=demo.auth(Role.SIGNER),
    )  # fmt: skip
    assert answer.status == 201, answer.body
    return str(answer.body["code"])


def p99(waits: list[float]) -> float:
    ordered = sorted(waits)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def summary(name: str, answers: list[Answer]) -> str:
    by_kind: dict[str, list[Answer]] = {}
    for a in answers:
        by_kind.setdefault(a.kind, []).append(a)
    parts = [f"{name}: {len(answers)} requests"]
    for kind, group in sorted(by_kind.items()):
        statuses = dict(sorted(Counter(a.status for a in group).items()))
        waits = [a.wait for a in group]
        parts.append(
            f"{kind}: {len(group)} sent, by status {statuses}, "
            f"longest {max(waits):.3f} s, p99 {p99(waits):.3f} s"
        )
    return "\n  ".join(parts)


def as_of_seconds(answer: Answer) -> float:
    text = answer.body["status_as_of"]
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def load(
    api: Client, demo: Demo, known: list[str], unseen: list[str], seconds: float
) -> list[Answer]:
    """Eight clients for ``seconds``: six verify known codes (the popular ones, cached),
    one verifies codes this gateway never saw and reads a history (the registry's), one
    seals (a write)."""
    verifier, issuer = demo.auth(Role.VERIFIER), demo.auth(Role.ISSUER)
    answers: list[Answer] = []
    until = time.monotonic() + seconds

    async def client(i: int) -> None:
        n = 0
        while time.monotonic() < until:
            n += 1
            if i < 6:
                code = known[(i + n) % len(known)]
                answers.append(
                    await ask(api, "verify-known", "GET", f"/v1/verify/{code}?purpose=demo",
                              headers=verifier)
                )  # fmt: skip
            elif i == 6 and n % 2:
                code = unseen[n % len(unseen)]
                answers.append(
                    await ask(api, "verify-unseen", "GET", f"/v1/verify/{code}?purpose=demo",
                              headers=verifier)
                )  # fmt: skip
            elif i == 6:
                code = known[n % len(known)]
                answers.append(
                    await ask(api, "history", "GET", f"/v1/certificates/{code}/status",
                              headers=issuer)
                )  # fmt: skip
            else:
                body = proof_request(demo.proof_seal, content={"load": n})
                answers.append(
                    await ask(api, "seal", "POST", "/v1/certificates", json=body,
                              headers=demo.auth(Role.SIGNER))
                )  # fmt: skip

    await asyncio.gather(*(client(i) for i in range(8)))
    return answers


def registered(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM proofs").fetchone()
    assert row is not None
    return int(row[0])


async def test_a_hung_postgresql_answers_within_the_deadline_and_recovers_by_itself(
    own_postgres: PostgresServer,
    tmp_path: Any,
    gateway_client: GatewayClient,
) -> None:
    # Tokens remembered for 1 s instead of 10, so the hang outlasts them: authentication
    # must then go on from memory too.
    demo = demo_on(
        own_postgres, tmp_path, request_deadline=DEADLINE, outage_freshness=60.0, token_cache=1.0
    )
    api = await gateway_client(create_app(demo.settings))
    known = [await seal(api, demo, n) for n in range(12)]
    # Codes this gateway has not read before each phase: the healthy load caches its own.
    unseen_healthy = [await seal(api, demo, 100 + n) for n in range(4)]
    unseen = [await seal(api, demo, 200 + n) for n in range(4)]
    for code in known:  # now in this worker's copies
        checked = await ask(api, "v", "GET", f"/v1/verify/{code}?purpose=demo",
                            headers=demo.auth(Role.VERIFIER))  # fmt: skip
        assert checked.status == 200

    healthy = await load(api, demo, known, unseen_healthy, 1.0)
    assert {a.status for a in healthy} <= {200, 201}, summary("healthy", healthy)
    margin = max(1.0, 3 * max(a.wait for a in healthy))
    print("\n" + summary("healthy", healthy))
    before = registered(demo.settings.database_url)

    own_postgres.pause()
    paused_at = time.time()  # after: no poll that began later can have succeeded
    try:
        hung = await load(api, demo, known, unseen, HANG)
        readiness = await ask(api, "readyz", "GET", "/readyz")
    finally:
        own_postgres.resume()
    print("\n" + summary(f"PostgreSQL SIGSTOPped for {HANG:.0f} s", hung))

    reads = [a for a in hung if a.kind != "seal"]
    longest = max(a.wait for a in reads)
    print(f"  reads: longest {longest:.3f} s, p99 {p99([a.wait for a in reads]):.3f} s; "
          f"deadline {DEADLINE} s + margin {margin:.3f} s")  # fmt: skip
    assert longest <= DEADLINE + margin
    # Cached verifications keep answering 200 through the hang, saying how fresh once
    # the copies have lapsed: no fresher than the last poll before the pause.
    known_answers = [a for a in hung if a.kind == "verify-known"]
    assert {a.status for a in known_answers} == {200}
    stale = [a for a in known_answers if "status_as_of" in a.body]
    assert stale, "no answer said how fresh it was"
    assert all(as_of_seconds(a) <= paused_at for a in stale)
    assert all(a.body["status"] == "valid" for a in known_answers)
    # What needs the registry is refused, fast once the breaker is open, and says so.
    for a in hung:
        if a.kind in ("verify-unseen", "history"):
            assert a.status == 503, a.body
            assert a.body["code"] == "registry-unavailable"
            assert a.headers["Retry-After"] == "1"
    fast = [a for a in hung if a.kind == "verify-unseen" and a.wait < DEADLINE / 2]
    assert fast, "the breaker never failed fast"
    # A write is 201 or a 503 (a write begun before the breaker opened waits for its
    # outcome: the backend's own bound, reported above, not cut off by the deadline).
    assert {a.status for a in hung if a.kind == "seal"} <= {201, 503}
    # Readiness says the registry is failed fast, and is not ready.
    assert readiness.status == 503
    assert "the registry" in readiness.body["checks"]["breakers"]

    # Recovered without a restart: the registry answers, the breakers close.
    verifier = demo.auth(Role.VERIFIER)

    async def unseen_verifies() -> bool:
        a = await ask(api, "v", "GET", f"/v1/verify/{unseen[0]}?purpose=demo", headers=verifier)
        return a.status == 200 and "status_as_of" not in a.body

    await eventually(unseen_verifies, timeout=30, what="verification from the registry")

    async def ready() -> bool:
        a = await ask(api, "r", "GET", "/readyz")
        return a.status == 200 and a.body["checks"]["breakers"] == "closed"

    await eventually(ready, timeout=30, what="readiness with the breakers closed")
    after = await seal(api, demo, 999)
    assert after
    # No proof answered 201 is missing (registered ≥ before + every 201 since).
    acknowledged = sum(a.status == 201 for a in hung) + 1
    found = registered(demo.settings.database_url)
    print(f"  reconciliation: {before} before, {acknowledged} answered 201 since, "
          f"{found} registered")  # fmt: skip
    assert found >= before + acknowledged


async def test_a_stopped_postgresql_leaves_codes_in_redis_verifying_within_the_bound(
    own_postgres: PostgresServer,
    own_redis_server: RedisServer,
    tmp_path: Any,
    gateway_client: GatewayClient,
) -> None:
    bound = 4.0
    demo = demo_on(own_postgres, tmp_path, redis_url=own_redis_server.url, outage_freshness=bound)
    verifier = demo.auth(Role.VERIFIER)
    first = await gateway_client(create_app(demo.settings))
    codes = [await seal(first, demo, n) for n in range(6)]
    for code in codes:  # read from the registry by the first gateway: copies in Redis
        a = await ask(first, "v", "GET", f"/v1/verify/{code}?purpose=demo", headers=verifier)
        assert a.status == 200
    other = await seal(first, demo, 100)
    # A second gateway, which has none of them in its own memory; its client is known.
    second = await gateway_client(create_app(demo.settings))
    a = await ask(second, "v", "GET", f"/v1/verify/{other}?purpose=demo", headers=verifier)
    assert a.status == 200

    own_postgres.stop()
    stopped_at = time.time()  # after: a poll may succeed until the server is gone
    answers: list[Answer] = []

    async def all_refused() -> bool:
        """One round over the codes; true once each is refused (the bound has passed)."""
        round_ = [
            await ask(second, "verify-redis", "GET", f"/v1/verify/{c}?purpose=demo",
                      headers=verifier)
            for c in codes
        ]  # fmt: skip
        answers.extend(round_)
        return all(r.status == 503 for r in round_)

    await eventually(all_refused, timeout=bound + 30, interval=0.1, what="the bound passing")
    print("\n" + summary(f"PostgreSQL stopped, Redis up, bound {bound} s", answers))
    statuses = [a.status for a in answers]
    assert set(statuses) <= {200, 503}
    first_refusal = statuses.index(503)
    assert 200 not in statuses[first_refusal:], "a copy answered again past the bound"
    served = answers[:first_refusal]
    assert {a.body["code"] for a in served} == set(codes), "every code in Redis verified"
    assert all(a.body["status"] == "valid" for a in served)
    stale = [a for a in served if "status_as_of" in a.body]
    assert stale and all(as_of_seconds(a) <= stopped_at for a in stale)
    refused = answers[first_refusal:]
    assert all(a.body["code"] == "registry-unavailable" for a in refused)
    print(f"  longest wait {max(a.wait for a in answers):.3f} s")
