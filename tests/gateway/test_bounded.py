"""Bounded waits on the registry and directory, and answers from copies through their
outage (docs/design.md §11): the guard, the lookup's lapsed copies, the authenticator's
remembered clients, the settings. The real hung and stopped PostgreSQL is in
test_registry_outage.py."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from sealgate.cache.feed import TRUST_WINDOW, ChangeFeed
from sealgate.cache.local import LocalTier
from sealgate.cache.lookup import CachedLookup, Found
from sealgate.gateway.auth import Authenticator
from sealgate.gateway.bounded import (
    FAILURES_TO_OPEN,
    DependencyGuard,
    end_request_deadline,
    request_deadline,
)
from sealgate.gateway.config_file import load_settings, write_config
from sealgate.gateway.home import HomeError
from sealgate.gateway.problems import Problem
from sealgate.verify.at_rest import DocumentCipher
from sealgate.verify.directory import Client, DirectoryUnavailable, Role
from sealgate.verify.registry import ProofStatus, RegistryUnavailable, StatusChange
from sealgate.verify.sqlite import SqliteDirectory, SqliteRegistry, migrate
from tests.verify.test_lifecycle import proof
from tests.waiting import eventually


class Hang:
    """A dependency that answers only when told to (a stopped server, in miniature)."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()

    async def __call__(self) -> str:
        self.calls += 1
        await self.release.wait()
        return "answered"


def guard(**kwargs: float) -> DependencyGuard:
    return DependencyGuard(
        "the registry", RegistryUnavailable, RegistryUnavailable, open_seconds=60, **kwargs
    )


async def test_a_hung_call_is_answered_at_the_deadline_then_the_breaker_fails_fast() -> None:
    registry = guard()
    hang = Hang()
    for _ in range(FAILURES_TO_OPEN):
        deadline = request_deadline(0.05)  # a request each
        try:
            with pytest.raises(RegistryUnavailable, match="did not answer within the deadline"):
                await registry.call(hang)
        finally:
            end_request_deadline(deadline)
    assert hang.calls == FAILURES_TO_OPEN
    assert not registry.available
    assert registry.abandoned == FAILURES_TO_OPEN  # left running, not cancelled
    # Open: refused without calling, however long the request may wait.
    with pytest.raises(RegistryUnavailable, match="failing fast"):
        await registry.call(hang)
    assert hang.calls == FAILURES_TO_OPEN
    # The abandoned calls answer after all (the server was resumed): it is back.
    hang.release.set()
    await eventually(lambda: registry.abandoned == 0, what="the abandoned calls ending")
    assert registry.available
    assert await registry.call(hang) == "answered"


async def test_outside_a_request_a_call_gets_the_call_bound() -> None:
    registry = guard(call_bound=0.05)
    with pytest.raises(RegistryUnavailable):
        await registry.call(Hang())
    assert registry.available  # one failure is not an outage


async def test_a_write_waits_for_its_outcome_but_is_refused_while_open() -> None:
    registry = guard()
    hang = Hang()
    deadline = request_deadline(0.01)
    try:
        write = asyncio.create_task(registry.call(hang, write=True))
        await asyncio.sleep(0.05)  # well past the deadline: a write is not cut off
        assert not write.done()
        hang.release.set()
        assert await write == "answered"
    finally:
        end_request_deadline(deadline)

    async def down() -> None:
        raise RegistryUnavailable("connection refused")

    for _ in range(FAILURES_TO_OPEN):
        with pytest.raises(RegistryUnavailable, match="connection refused"):
            await registry.call(down, write=True)
    calls = hang.calls
    with pytest.raises(RegistryUnavailable, match="failing fast"):
        await registry.call(hang, write=True)
    assert hang.calls == calls  # nothing was attempted: the 503 is true


async def test_a_refusal_of_one_call_is_not_an_outage() -> None:
    registry = guard()

    async def conflict() -> None:
        raise ValueError("this request alone")

    for _ in range(FAILURES_TO_OPEN + 1):
        with pytest.raises(ValueError):
            await registry.call(conflict)
    assert registry.available


class FailingRegistry(SqliteRegistry):
    """A real SQLite registry whose reads can be made to fail as an unreachable one's do."""

    down = False

    async def get_status(self, code: str) -> ProofStatus | None:
        if self.down:
            raise RegistryUnavailable("registry read failed: unreachable")
        return await super().get_status(code)

    async def changes_since(self, seq: int, limit: int = 1000) -> list[StatusChange]:
        if self.down:
            raise RegistryUnavailable("registry read failed: unreachable")
        return await super().changes_since(seq, limit)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_copies_answer_through_an_outage_within_the_bound_saying_how_fresh(
    tmp_path: Path,
) -> None:
    path = tmp_path / "registry.db"
    migrate(path)
    registry = FailingRegistry(path, DocumentCipher(os.urandom(32)))
    try:
        await registry.register([proof("KNOWN", expires_at=2e9), proof("UNSEEN", expires_at=2e9)])
        clock, wall = Clock(), Clock()
        wall.now = 1_800_000_000.0
        lookup = CachedLookup(registry, LocalTier(clock=clock), outage_freshness=30.0)
        feed = ChangeFeed(registry, lookup, clock=clock, wall=wall)
        await feed.start()
        confirmed = wall.now
        found = await lookup.find("KNOWN")
        assert found.as_of is None and found.status is not None  # current

        registry.down = True
        clock.now += 1
        wall.now += 1
        await feed.poll()  # fails: the copies are confirmed no further
        clock.now += TRUST_WINDOW + 5
        lapsed = await lookup.find("KNOWN")
        assert lapsed == Found(found.status, confirmed)
        assert await lookup.get_status("KNOWN") == found.status
        with pytest.raises(RegistryUnavailable):  # nothing known of it: no answer
            await lookup.find("UNSEEN")

        clock.now += 30  # past the bound since the last confirmation
        with pytest.raises(RegistryUnavailable):
            await lookup.find("KNOWN")

        registry.down = False
        await feed.poll()
        assert await lookup.find("UNSEEN") == Found(await registry.get_status("UNSEEN"))
        assert (await lookup.find("KNOWN")).as_of is None
    finally:
        await registry.close()


async def test_a_bound_of_zero_answers_nothing_from_copies_through_an_outage(
    tmp_path: Path,
) -> None:
    path = tmp_path / "registry.db"
    migrate(path)
    registry = FailingRegistry(path, DocumentCipher(os.urandom(32)))
    try:
        await registry.register([proof("KNOWN", expires_at=2e9)])
        clock = Clock()
        lookup = CachedLookup(registry, LocalTier(clock=clock), outage_freshness=0.0)
        feed = ChangeFeed(registry, lookup, clock=clock)
        await feed.start()
        assert (await lookup.find("KNOWN")).as_of is None
        registry.down = True
        clock.now += TRUST_WINDOW + 0.1
        with pytest.raises(RegistryUnavailable):
            await lookup.find("KNOWN")
    finally:
        await registry.close()


class Directory:
    """The one read the authenticator makes, failing on demand."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.down = False
        self.reads = 0

    async def read(self, token: str) -> Client | None:
        self.reads += 1
        if self.down:
            raise DirectoryUnavailable("directory read: connection refused")
        return self.client if token == "good" else None


async def test_a_remembered_client_is_authenticated_through_a_directory_outage(
    tmp_path: Path,
) -> None:
    client = Client("bank", "银行", Role.VERIFIER, None, frozenset(), frozenset({"p"}), 0.0)
    directory = Directory(client)
    migrate(tmp_path / "registry.db")
    store = SqliteDirectory(tmp_path / "registry.db")  # never read: the reads are `read`
    # lifetime -1: every entry already expired
    auth = Authenticator(store, read=directory.read, outage_freshness=60.0, lifetime=-1.0)

    def request(token: str) -> web.Request:
        return make_mocked_request("GET", "/", headers={"Authorization": f"Bearer {token}"})

    assert await auth.client(request("good")) == client
    directory.down = True
    assert await auth.client(request("good")) == client
    assert directory.reads == 2  # it tried the directory first
    with pytest.raises(DirectoryUnavailable):  # never seen: nothing to go on
        await auth.client(request("other"))

    strict = Authenticator(store, read=directory.read, lifetime=-1.0)
    directory.down = False
    await strict.client(request("good"))
    directory.down = True
    with pytest.raises(DirectoryUnavailable):  # a bound of 0: no answer from memory
        await strict.client(request("good"))
    directory.down = False
    with pytest.raises(Problem):
        await strict.client(request("bad"))
    store.close()


def test_the_deadline_and_the_bound_are_city_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SEALGATE_REQUEST_DEADLINE", raising=False)
    monkeypatch.delenv("SEALGATE_OUTAGE_FRESHNESS", raising=False)
    write_config(tmp_path, {"region": "430900"})
    settings = load_settings(tmp_path)
    assert (settings.request_deadline, settings.outage_freshness) == (3.0, 30.0)
    write_config(tmp_path, {"request_deadline": "1.5", "outage_freshness": "0"})
    settings = load_settings(tmp_path)
    assert (settings.request_deadline, settings.outage_freshness) == (1.5, 0.0)
    monkeypatch.setenv("SEALGATE_OUTAGE_FRESHNESS", "120")
    assert load_settings(tmp_path).outage_freshness == 120.0
    for value in ("soon", "0", "nan", "-1", "inf"):
        write_config(tmp_path, {"request_deadline": value})
        with pytest.raises(HomeError, match="request_deadline"):
            load_settings(tmp_path)
