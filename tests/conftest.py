"""Shared fixtures. Keep this small: one fixture per resource, documented."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from sealgate.bench.redis_cluster import RedisClusterServer
from sealgate.bench.redis_server import RedisServer, RedisServerMissing
from sealgate.bench.tsa_server import TsaServer
from sealgate.hsm.keystore import KeystoreConfig
from sealgate.hsm.softhsm import SOFTHSM2_MODULE, create_softhsm_token, softhsm_available
from tests.postgres_server import PostgresServer, PostgresServerMissing

# The registry on each backend (SQLite, PostgreSQL): ``backend`` and ``registry``.
pytest_plugins = ["tests.verify.backends"]

# Fixtures that start a server process; a test using one, or on the PostgreSQL backend,
# is marked ``processes`` here, so it leaves `make test-fast` without a mark by hand.
SERVER_FIXTURES = frozenset(
    {
        "redis_server",
        "own_redis_server",
        "redis_cluster",
        "own_redis_cluster",
        "postgres_server",
        "postgres_url",
        "tsa_server",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        on_postgres = callspec is not None and "postgres" in callspec.params.values()
        if fixtures & SERVER_FIXTURES or on_postgres:
            item.add_marker(pytest.mark.processes)


SOFTHSM_TOKEN_LABEL = "sealgate-test"
SOFTHSM_PIN = "4711-test-pin"
SOFTHSM_SO_PIN = "0815-test-so-pin"


@pytest.fixture(scope="session")
def softhsm_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeystoreConfig]:
    """A fresh SoftHSM2 token for the whole run, as a ``pkcs11`` KeystoreConfig.

    The token is shared: tests must use unique key labels.
    """
    if not softhsm_available():
        pytest.skip(f"SoftHSM2 is not installed (module {SOFTHSM2_MODULE}, softhsm2-util)")
    directory = tmp_path_factory.mktemp("softhsm")
    conf = create_softhsm_token(directory, SOFTHSM_TOKEN_LABEL, SOFTHSM_PIN, SOFTHSM_SO_PIN)
    yield KeystoreConfig(
        backend="pkcs11",
        module=SOFTHSM2_MODULE,
        token_label=SOFTHSM_TOKEN_LABEL,
        pin=SOFTHSM_PIN,
        softhsm2_conf=str(conf),
    )


@pytest.fixture
def soft_keystore_config(tmp_path: Path) -> KeystoreConfig:
    """A development-only file keystore in a fresh directory."""
    return KeystoreConfig(backend="soft", directory=tmp_path / "soft-keys")


_Redis = TypeVar("_Redis", RedisServer, RedisClusterServer)


def _started(server: _Redis) -> _Redis:
    """``server`` started, or the test failed with why (redis-server missing)."""
    try:
        server.start()
    except RedisServerMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    return server


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server for the whole run. Tests share it: use a unique namespace
    (the ``tier`` fixture does), and never kill it (use ``own_redis_server``)."""
    server = _started(RedisServer(tmp_path_factory.mktemp("redis")))
    yield server
    server.stop()


@pytest.fixture
def own_redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server for one test alone, which it may kill and restart."""
    server = _started(RedisServer(tmp_path / "redis"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterServer]:
    """One real three-node Redis Cluster for the whole run, started on first use. Tests
    share it: use a unique namespace, and never kill a node (use ``own_redis_cluster``)."""
    cluster = _started(RedisClusterServer(tmp_path_factory.mktemp("redis-cluster")))
    yield cluster
    cluster.stop()


@pytest.fixture
def own_redis_cluster(tmp_path: Path) -> Iterator[RedisClusterServer]:
    """A three-node Redis Cluster for one test alone, which it may kill nodes of."""
    cluster = _started(RedisClusterServer(tmp_path / "redis-cluster"))
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL for the whole run, started on first use. Tests share the
    server, never a database: take a fresh one with ``postgres_url``."""
    server = PostgresServer()
    try:
        server.start()
    except PostgresServerMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of a new, empty database on the shared server (no schema yet)."""
    return postgres_server.create_database()


@pytest.fixture(scope="session")
def tsa_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TsaServer]:
    """One real development TSA (`sealgate tsa serve`, its key in its own SoftHSM2 token)
    for the whole run, started on first use; a home trusts it with ``trusted_by``. Never
    stop it in a test: point a gateway at a closed port to play a TSA that is down."""
    if not softhsm_available():
        pytest.fail("SoftHSM2 is required: run the suite with `make test`")
    server = TsaServer(tmp_path_factory.mktemp("tsa") / "home")
    server.start()
    yield server
    server.stop()
