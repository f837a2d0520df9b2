"""What only the PostgreSQL backend has: migrations, its pool's failures and recovery,
and the durability setting of its sessions. The shared contract is in
``test_registry_contract.py`` and ``test_directory_contract.py``."""

from __future__ import annotations

import asyncio
import os
import socket
import threading

import psycopg
import pytest

from sealgate.verify.at_rest import DocumentCipher
from sealgate.verify.directory import DirectoryUnavailable
from sealgate.verify.postgres import (
    MIGRATIONS,
    PostgresDirectory,
    PostgresRegistry,
    SchemaOutdated,
    migrate,
    redacted,
    schema_version,
)
from sealgate.verify.registry import RegistryCorrupted, RegistryUnavailable
from tests.postgres_server import PostgresServer
from tests.verify.test_lifecycle import proof


def _closed_port_url(password: str = "") -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    auth = f"sealgate:{password}@" if password else "sealgate@"
    return f"postgresql://{auth}127.0.0.1:{port}/sealgate"


def test_migrations_apply_once_and_record_their_versions(postgres_url: str) -> None:
    assert schema_version(postgres_url) == 0
    assert migrate(postgres_url) == len(MIGRATIONS)
    assert migrate(postgres_url) == len(MIGRATIONS)  # again: nothing to do
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute("SELECT version, description FROM schema_migrations").fetchall()
    assert [r[0] for r in rows] == list(range(1, len(MIGRATIONS) + 1))
    assert schema_version(postgres_url) == len(MIGRATIONS)


def test_concurrent_migrations_wait_for_each_other(postgres_url: str) -> None:
    results: list[int | BaseException] = []

    def run() -> None:
        try:
            results.append(migrate(postgres_url))
        except BaseException as exc:  # collected and asserted below
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [len(MIGRATIONS)] * 4


async def test_an_unmigrated_database_is_refused_with_the_command_to_run(
    postgres_url: str,
) -> None:
    registry = PostgresRegistry(postgres_url, DocumentCipher(os.urandom(32)))
    with pytest.raises(SchemaOutdated, match="sealgate db migrate"):
        await registry.ping()
    await registry.close()
    directory = PostgresDirectory(postgres_url)
    with pytest.raises(DirectoryUnavailable, match="sealgate db migrate"):
        directory.seals()
    directory.close()


async def test_an_unreachable_server_is_unavailability_not_a_crash() -> None:
    url = _closed_port_url()
    registry = PostgresRegistry(url, DocumentCipher(os.urandom(32)), connect_timeout=1)
    with pytest.raises(RegistryUnavailable) as raised:
        await registry.ping()
    assert raised.value.__cause__ is not None  # chained to the driver's error
    with pytest.raises(RegistryUnavailable):
        await registry.register([proof("A")])
    with pytest.raises(RegistryUnavailable):
        await registry.get_status("A")
    await registry.close()
    directory = PostgresDirectory(url, connect_timeout=1)
    with pytest.raises(DirectoryUnavailable):
        directory.client_by_token("sgt_x")
    directory.close()


def test_messages_never_show_the_password() -> None:
    url = _closed_port_url(password="s3cret-pw")
    assert "s3cret-pw" not in redacted(url)
    assert "***" in redacted(url)
    with pytest.raises(RegistryUnavailable) as raised:
        migrate(url, connect_timeout=1)
    assert "s3cret-pw" not in str(raised.value)
    assert "127.0.0.1" in str(raised.value)


async def test_the_registry_recovers_when_its_connections_are_cut(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    """A failover or restart drops every session: calls fail as unavailable (503), then
    work again on new connections, without restarting the gateway."""
    migrate(postgres_url)
    registry = PostgresRegistry(postgres_url, DocumentCipher(os.urandom(32)), max_connections=4)
    await registry.register([proof("A")])
    await asyncio.gather(*(registry.get_status("A") for _ in range(8)))  # fill the pool
    postgres_server.terminate_connections(postgres_url)
    failures = 0
    for i in range(20):
        try:
            await registry.register([proof(f"B{i}")])
            assert await registry.get_status(f"B{i}") is not None
            break
        except RegistryUnavailable:
            failures += 1
    else:
        pytest.fail("the registry did not recover")
    assert failures <= 4  # at most one per pooled connection
    await registry.ping()
    assert await registry.count() == 2
    await registry.close()


async def test_sessions_commit_durably_even_where_the_database_says_otherwise(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    migrate(postgres_url)
    name = postgres_url.rsplit("/", 1)[1]
    with psycopg.connect(postgres_server.url(), autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    registry = PostgresRegistry(postgres_url, DocumentCipher(os.urandom(32)))
    for _ in range(2):  # and still after the pool's reset between uses
        async with registry._connection("test") as conn:
            assert await conn.fetchval("SHOW synchronous_commit") == "on"
    await registry.close()


async def test_damaged_data_is_corruption_with_the_server_s_message(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL's data_corrupted (SQLSTATE XX001), raised by the server itself in the
    path of every read of the proofs, with the message it gives for a page it cannot
    read. (Damaging a relation's file under the shared server would take the other
    tests' databases with it.)"""
    migrate(postgres_url)
    registry = PostgresRegistry(postgres_url, DocumentCipher(os.urandom(32)))
    try:
        await registry.register([proof("A")])
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(
                "CREATE FUNCTION damaged(code text) RETURNS boolean LANGUAGE plpgsql AS $$"
                " BEGIN RAISE EXCEPTION 'invalid page in block 7 of relation base/16384/16397'"
                " USING ERRCODE = 'XX001'; END $$"
            )
            conn.execute("ALTER TABLE proofs RENAME TO proofs_stored")
            conn.execute("CREATE VIEW proofs AS SELECT * FROM proofs_stored WHERE damaged(code)")
        assert registry.corruption is None
        with pytest.raises(RegistryCorrupted) as raised:
            await registry.get_status("A")
        assert "invalid page in block 7" in str(raised.value)
        assert registry.corruption is not None and "SQLSTATE XX001" in registry.corruption
        assert "invalid page in block 7 of relation base/16384/16397" in caplog.text
        await registry.ping()  # it answers: corrupted is not unreachable
    finally:
        await registry.close()
