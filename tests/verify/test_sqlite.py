"""The SQLite registry's group-commit writer: one bad job never stops the others."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import pytest

from tests.verify.test_lifecycle import proof
from verify.at_rest import DocumentCipher
from verify.registry import CodeTaken, RegistryUnavailable
from verify.sqlite import SqliteRegistry, insert_rows


async def test_a_failing_job_is_refused_alone_and_the_writer_lives_on(tmp_path: Path) -> None:
    registry = SqliteRegistry(tmp_path / "r.db", DocumentCipher(os.urandom(32)))
    writer = registry._writer

    def broken(conn: object) -> None:
        raise TypeError("a bug in one job")

    results = await asyncio.gather(
        registry.register([proof("A")]),
        writer.submit(broken),
        registry.register([proof("A")]),  # same code: refused alone
        registry.register([proof("B")]),
        return_exceptions=True,
    )
    assert results[0] is None
    assert isinstance(results[1], TypeError)
    assert isinstance(results[2], CodeTaken)
    assert results[3] is None
    assert writer.alive
    await registry.ping()
    assert await registry.count() == 2
    await registry.close()
    with pytest.raises(RegistryUnavailable):
        writer.submit(broken)


async def test_cancelled_callers_still_get_their_write(tmp_path: Path) -> None:
    registry = SqliteRegistry(tmp_path / "r.db", DocumentCipher(os.urandom(32)))
    tasks = [asyncio.create_task(registry.register([proof(f"P{i}")])) for i in range(200)]
    await asyncio.sleep(0)
    for task in tasks[::3]:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(0.2)
    # Every queued write was committed; a cancelled caller only lost its answer.
    assert await registry.count() == 200
    await registry.close()


@pytest.mark.parametrize("limit", [3, 7, 12, 25, 32766])
def test_insert_rows_splits_statements_at_the_connections_variable_limit(limit: int) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (a INTEGER, b TEXT, c BLOB)")
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)
    rows = [(n, f"row {n}", bytes([n])) for n in range(23)]
    insert_rows(conn, "t", "a, b, c", rows)
    assert conn.execute("SELECT a, b, c FROM t ORDER BY rowid").fetchall() == rows
