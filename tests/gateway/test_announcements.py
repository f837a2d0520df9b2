"""Provisioning changes announced on Redis, against a served gateway of two workers on a
real redis-server: a removed client refused and a suspended seal refused by every worker
right after the change, made over HTTP or on the command line, and, with Redis down,
the change still made and the bound as before (docs/design.md §6.2).

Each worker remembers tokens and its seal catalog for an hour here (``token_cache``,
``catalog_refresh``), so only the announcement can bring a change to the worker that did
not make it within a test's time: without it these tests fail.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from sealgate.bench.redis_cluster import RedisClusterServer
from sealgate.bench.redis_server import RedisServer, RedisServerMissing
from sealgate.cache.redis_tier import directory_channel, redis_tier_for
from sealgate.client import Client
from sealgate.gateway import administration
from sealgate.gateway.announcements import announce_now
from sealgate.gateway.cli import main as sealgate
from sealgate.gateway.provision import init_home
from sealgate.hsm.softhsm import softhsm_available
from sealgate.verify.directory import Role
from tests.gateway.conftest import Demo, proof_request
from tests.gateway.serving import free_port, serving
from tests.gateway.test_admin import fresh, worker_of
from tests.waiting import eventually

pytestmark = pytest.mark.processes

REMEMBERED = 3600  # seconds: a worker's token cache and catalog refresh in these tests
# Far less than REMEMBERED, far more than a message takes: the bound on waiting for one.
HEARD_WITHIN = 10.0
STAFF = {"X-Operator": "ops-7"}
LISTING = "/v1/subscriptions"  # any authenticated read that costs no failed lookup


@dataclass
class Served:
    demo: Demo
    url: str
    redis: RedisServer

    def admin(self) -> Client:
        return Client(self.url, self.demo.token(Role.ADMIN), tls=False)

    def admin_headers(self) -> dict[str, str]:
        return {**self.demo.auth(Role.ADMIN), **STAFF}

    def cli(self, *args: str) -> int:
        return sealgate(["--home", str(self.demo.home), *args])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    if not softhsm_available():
        pytest.fail("SoftHSM2 is required: run the suite with `make test`")
    base = tmp_path_factory.mktemp("announce")
    server = RedisServer(base / "redis")  # its own: a test stops it
    try:
        server.start()
    except RedisServerMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    settings, credentials = init_home(base / "home", demo=True)
    assert credentials is not None
    demo = Demo(settings, credentials)
    assert sealgate(["--home", str(demo.home), "matter", "add", "a",
                     "--name", "a", "--operator", "ops-1"]) == 0  # fmt: skip
    env = {
        "SEALGATE_REDIS_URL": server.url,
        "SEALGATE_TOKEN_CACHE": str(REMEMBERED),
        "SEALGATE_CATALOG_REFRESH": str(REMEMBERED),
    }
    port = free_port()
    try:
        with serving(settings.home, port, workers=2, env=env, log=base / "gateway.log"):
            yield Served(demo, f"http://127.0.0.1:{port}", server)
    finally:
        server.stop()


@pytest.fixture
def cli_redis(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line run in this process with the gateway's Redis."""
    monkeypatch.setenv("SEALGATE_REDIS_URL", served.redis.url)


def new_verifier(served: Served, name: str) -> tuple[str, dict[str, str]]:
    with served.admin() as admin:
        client = admin.add_client(name=name, role="verifier", purposes=["a"], operator="ops-7")
    return client.client_id, {"Authorization": f"Bearer {client.token}"}


def warmed(served: Served, http: httpx.Client, auth: dict[str, str]) -> set[str]:
    """Both workers remember the client as valid (for an hour, here)."""
    workers: set[str] = set()
    for _ in range(200):
        answer = http.get(served.url + LISTING, headers=auth)
        assert answer.status_code == 200
        workers.add(worker_of(answer))
        if len(workers) == 2:
            return workers
    raise AssertionError("the kernel never gave a connection to the second worker")


def refused_by_every_worker(
    served: Served, http: httpx.Client, auth: dict[str, str], workers: set[str]
) -> None:
    refused_by: set[str] = set()
    deadline = time.monotonic() + HEARD_WITHIN
    while refused_by != workers and time.monotonic() < deadline:
        answer = http.get(served.url + LISTING, headers=auth)
        if answer.status_code == 401:
            refused_by.add(worker_of(answer))
        else:
            assert answer.status_code == 200
            assert worker_of(answer) not in refused_by  # once refused, never served again
    assert refused_by == workers


def sealing(served: Served, http: httpx.Client) -> httpx.Response:
    seal = served.demo.proof_seal
    return http.post(
        f"{served.url}/v1/certificates",
        json=proof_request(seal),
        headers=served.demo.auth(Role.SIGNER),
    )


def every_worker_answers(served: Served, http: httpx.Client, status: int) -> None:
    """Sealing answers ``status`` on both workers, and never the other way once it has."""
    answered: set[str] = set()
    deadline = time.monotonic() + HEARD_WITHIN
    while len(answered) < 2 and time.monotonic() < deadline:
        answer = sealing(served, http)
        if answer.status_code == status:
            answered.add(worker_of(answer))
        else:
            assert answer.status_code in (201, 403)
            assert worker_of(answer) not in answered
    assert len(answered) == 2


def test_a_client_removed_over_http_is_refused_by_every_worker_at_once(served: Served) -> None:
    client_id, auth = new_verifier(served, "lost laptop")
    with fresh() as http:
        workers = warmed(served, http, auth)
        removal = http.delete(
            f"{served.url}/v1/admin/clients/{client_id}", headers=served.admin_headers()
        )
        assert removal.status_code == 204
        refused_by_every_worker(served, http, auth, workers)


def test_a_seal_suspended_over_http_seals_nothing_on_any_worker_at_once(served: Served) -> None:
    seal = served.demo.proof_seal
    with fresh() as http:
        every_worker_answers(served, http, 201)  # both have loaded their catalog
        with served.admin() as admin:
            admin.suspend_seal(seal, operator="ops-7")
            every_worker_answers(served, http, 403)
            admin.resume_seal(seal, operator="ops-7")
        every_worker_answers(served, http, 201)


@pytest.mark.usefixtures("cli_redis")
def test_a_cli_change_is_announced_too(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    client_id, auth = new_verifier(served, "branch 12")
    with fresh() as http:
        workers = warmed(served, http, auth)
        assert served.cli("client", "remove", client_id, "--operator", "ops-7") == 0
        refused_by_every_worker(served, http, auth, workers)
        seal = served.demo.proof_seal
        assert served.cli("seal", "suspend", seal, "--operator", "ops-7") == 0
        every_worker_answers(served, http, 403)
        assert served.cli("seal", "resume", seal, "--operator", "ops-7") == 0
        every_worker_answers(served, http, 201)
    assert "not announced" not in capsys.readouterr().err


@pytest.mark.usefixtures("cli_redis")
def test_a_matter_added_on_the_command_line_is_read_by_every_worker_at_once(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    """Seals' keys and the matters live in each worker's catalog: a change the command
    line makes to them (here a matter that reads content) is announced too."""
    with fresh() as http:
        sealed = sealing(served, http)
        assert sealed.status_code == 201
        code = sealed.json()["code"]
        assert served.cli("matter", "add", "reads", "--name", "读取内容",
                          "--content", "无犯罪记录证明", "--operator", "ops-7") == 0  # fmt: skip
        with served.admin() as admin:
            client = admin.add_client(
                name="reader", role="verifier", purposes=["reads"], operator="ops-7"
            )
        auth = {"Authorization": f"Bearer {client.token}"}
        read_by: set[str] = set()
        deadline = time.monotonic() + HEARD_WITHIN
        while len(read_by) < 2 and time.monotonic() < deadline:
            answer = http.get(
                f"{served.url}/v1/verify/{code}",
                params={"purpose": "reads", "fields": "content"},
                headers=auth,
            )
            if answer.status_code == 200:
                assert answer.json()["content"]
                read_by.add(worker_of(answer))
            else:  # the catalog without the matter: refused, not a leak
                assert answer.json()["code"] == "content-not-granted"
                assert worker_of(answer) not in read_by
        assert len(read_by) == 2
    assert "not announced" not in capsys.readouterr().err


def test_a_message_is_only_a_hint_to_read_again(served: Served) -> None:
    """Whoever can publish on Redis can make the workers read the directory again, and
    nothing more: a message naming a client or a seal grants nothing and removes nothing."""
    client_id, auth = new_verifier(served, "kept")
    with fresh() as http, redis.Redis.from_url(served.redis.url) as conn:
        workers = warmed(served, http, auth)
        for message in (f"client:{client_id}", "*", "seals", '{"role": "admin"}', "client:"):
            conn.publish(directory_channel(), message)
        for _ in range(20):
            answer = http.get(served.url + LISTING, headers=auth)
            assert answer.status_code == 200  # read again: still the verifier it was
            admin_route = http.get(served.url + "/v1/admin/clients", headers=auth)
            assert admin_route.status_code == 403
        every_worker_answers(served, http, 201)  # the seal is in use as before
        assert workers == warmed(served, http, auth)


@pytest.mark.usefixtures("cli_redis")
def test_with_redis_down_the_change_is_made_and_the_bound_holds(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    client_id, auth = new_verifier(served, "through an outage")
    other_id, other_auth = new_verifier(served, "removed on the command line")
    with fresh() as http:
        workers = warmed(served, http, auth)
        assert warmed(served, http, other_auth) == workers
        served.redis.kill()
        try:
            removal = http.delete(
                f"{served.url}/v1/admin/clients/{client_id}", headers=served.admin_headers()
            )
            assert removal.status_code == 204
            remover = worker_of(removal)
            assert served.cli("client", "remove", other_id, "--operator", "ops-7") == 0
            assert "not announced on Redis" in capsys.readouterr().err
            with served.admin() as admin:
                assert not {client_id, other_id} & {c.client_id for c in admin.clients()}
            # The worker that made the change refuses the token; the other one serves it
            # as it remembers it, for its token cache's lifetime (an hour, here).
            answered: dict[str, int] = {}
            for _ in range(200):
                answer = http.get(served.url + LISTING, headers=auth)
                answered[worker_of(answer)] = answer.status_code
                if len(answered) == 2:
                    break
            (other,) = workers - {remover}
            assert answered == {remover: 401, other: 200}
        finally:
            served.redis.restart()
        # Back on Redis, each listener read everything again: messages may have been lost.
        refused_by_every_worker(served, http, auth, workers)
        refused_by_every_worker(served, http, other_auth, workers)


def test_the_bounds_are_settings(tmp_path: Path) -> None:
    """config.toml's token_cache and catalog_refresh, checked as every duration is."""
    from sealgate.gateway.config_file import load_settings
    from sealgate.gateway.home import HomeError

    settings, _ = init_home(tmp_path / "home", demo=True)
    assert (settings.token_cache, settings.catalog_refresh) == (10.0, 5.0)
    config = settings.home / "config.toml"
    config.write_text(config.read_text() + "token_cache = 60\ncatalog_refresh = 30\n")
    assert (load_settings(settings.home).token_cache,
            load_settings(settings.home).catalog_refresh) == (60.0, 30.0)  # fmt: skip
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SEALGATE_CATALOG_REFRESH", "0.1")
        with pytest.raises(HomeError, match="catalog_refresh"):
            load_settings(settings.home)


async def test_the_command_line_announces_on_a_cluster_too(
    redis_cluster: RedisClusterServer,
) -> None:
    """A cluster's PUBLISH reaches the subscribers of every node: the command line
    publishes on the first node it reaches, the workers listen on any."""
    tier = redis_tier_for(redis_cluster.url)
    await tier.start()
    heard: list[str] = []
    listener = asyncio.create_task(tier.listen(lambda code: None, heard.append))
    change = administration.remove_client("CL0000ANNOUNCED")
    try:

        async def announced() -> bool:
            await asyncio.to_thread(announce_now, redis_cluster.url, change.action, change.subject)
            return "client:CL0000ANNOUNCED" in heard

        await eventually(announced, timeout=10, interval=0.05, what="the announcement heard")
    finally:
        listener.cancel()
        with pytest.raises(asyncio.CancelledError):
            await listener
        await tier.close()
