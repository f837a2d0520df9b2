"""The SQLite registry's group-commit writer: one bad job never stops the others; its
WAL is copied back by the checkpointer thread, not inside its commits."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import random
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from sealgate.verify.at_rest import DocumentCipher
from sealgate.verify.registry import CodeTaken, RegistryCorrupted, RegistryUnavailable
from sealgate.verify.sqlite import SqliteRegistry
from sealgate.verify.sqlite.registry import refuse_if_corrupted
from sealgate.verify.sqlite_toolkit import Checkpointer, connect, insert_rows, migrate
from tests.verify.test_lifecycle import proof
from tests.waiting import eventually, until


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

    async def all_written() -> bool:
        return await registry.count() == 200

    # Every queued write is committed; a cancelled caller only lost its answer.
    await eventually(all_written, timeout=10, what="200 proofs registered")
    await registry.close()


def _deleted_files_open() -> set[str]:
    links = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own descriptor is gone
            links.add(os.readlink(f"/proc/self/fd/{fd}"))
    return {link for link in links if link.endswith("(deleted)")}


async def test_a_jobs_savepoint_journal_never_goes_to_a_temporary_file(tmp_path: Path) -> None:
    # Past 64 KiB SQLite would spill it to /var/tmp: syscalls for every page, and a
    # failed group wherever no temporary directory is writable.
    registry = SqliteRegistry(tmp_path / "r.db", DocumentCipher(os.urandom(32)))
    await registry.register([proof(f"C{i:05d}") for i in range(2_000)])

    def touch_every_page(conn: sqlite3.Connection) -> set[str]:
        conn.execute("UPDATE proofs SET status_changed_at = status_changed_at + 1")
        return _deleted_files_open()

    before = _deleted_files_open()
    assert await registry._writer.submit(touch_every_page) <= before
    await registry.close()


@pytest.mark.parametrize("limit", [3, 7, 12, 25, 32766])
def test_insert_rows_splits_statements_at_the_connections_variable_limit(limit: int) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (a INTEGER, b TEXT, c BLOB)")
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)
    rows = [(n, f"row {n}", bytes([n])) for n in range(23)]
    insert_rows(conn, "t", "a, b, c", rows)
    assert conn.execute("SELECT a, b, c FROM t ORDER BY rowid").fetchall() == rows


def test_insert_rows_reuses_a_few_statement_sizes_whatever_the_counts() -> None:
    # Counts that differ call after call (the audit writer's passes, clients' batches)
    # must not each compile a statement of their own: every size used is a power of two,
    # so a handful of statements serve every count, and the rows still go in in order.
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (a INTEGER, b TEXT)")
    statements: list[str] = []
    conn.set_trace_callback(statements.append)  # each statement run, values filled in

    def rows_in(statement: str) -> int:
        return statement.count("), (") + 1

    written = 0
    for count in [*range(0, 70), 100, 255, 256, 257, 300, 511, 1000]:
        before = len(statements)
        insert_rows(conn, "t", "a, b", [(written + n, f"row {written + n}") for n in range(count)])
        inserts = [s for s in statements[before:] if s.startswith("INSERT")]  # not BEGIN
        sizes = [rows_in(statement) for statement in inserts]
        assert sum(sizes) == count
        assert all(size & (size - 1) == 0 for size in sizes), sizes
        assert len(sizes) <= max(1, count.bit_count()) + count // 512, sizes
        written += count
    assert len({rows_in(s) for s in statements if s.startswith("INSERT")}) <= 10
    rows = conn.execute("SELECT a, b FROM t ORDER BY rowid").fetchall()
    assert rows == [(n, f"row {n}") for n in range(written)]


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads Linux's /proc")
async def test_the_registry_threads_carry_their_names_in_the_os(tmp_path: Path) -> None:
    # what top -H, py-spy and the capacity harness's CPU by part see
    registry = SqliteRegistry(tmp_path / "r.db", DocumentCipher(os.urandom(32)))
    await registry.register([proof("C1")])
    assert await registry.get("C1") is not None  # a reader thread has started

    def names() -> set[str]:
        return {comm.read_text().strip() for comm in Path("/proc/self/task").glob("*/comm")}

    assert {"registry-writer", "registry-checkp", "registry-reader"} <= names()
    await registry.close()


async def test_committed_pages_reach_the_file_soon_after_the_commit(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    # Another test's registry may still be closing: only this one's thread is asked about.
    before = {t for t in threading.enumerate() if t.name == "registry-checkpoints"}
    registry = SqliteRegistry(path, DocumentCipher(os.urandom(32)))
    empty = path.stat().st_size
    # ~150 pages: far below SQLite's own automatic checkpoint (1,000 pages), which would
    # have left them in the WAL; the checkpointer, poked by the commit, copies them.
    await registry.register(
        [dataclasses.replace(proof(f"C{i}"), document=os.urandom(3000)) for i in range(200)]
    )
    until(lambda: path.stat().st_size > empty + 200 * 3000, interval=0.01)
    assert await registry.count() == 200
    ours = {t for t in threading.enumerate() if t.name == "registry-checkpoints"} - before
    assert ours  # the checkpointer ran in a thread of its own
    await registry.close()
    assert not [t for t in ours if t.is_alive()]
    assert not path.with_name("r.db-wal").exists()  # the last close checkpointed the rest


def test_a_checkpoint_that_fails_is_retried(tmp_path: Path) -> None:
    path = tmp_path / "gone" / "x.db"
    with Checkpointer(path, interval=0.01) as checkpointer:
        time.sleep(0.1)  # the directory does not exist: every round fails, none ends it
        path.parent.mkdir()
        conn = connect(path)
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        conn.execute("CREATE TABLE t (b BLOB)")
        with conn:
            conn.executemany("INSERT INTO t VALUES (?)", [(os.urandom(3500),)] * 50)
        checkpointer.poke()
        until(lambda: path.stat().st_size > 50 * 3500, interval=0.01)
    conn.close()


def test_migrations_run_as_whole_statements_in_one_transaction(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    migrations = (
        ("CREATE TABLE notes (body TEXT NOT NULL)", "INSERT INTO notes VALUES ('a; b')"),
        ("INSERT INTO notes VALUES ('c')", "INSERT INTO missing VALUES (1)"),
    )
    with pytest.raises(sqlite3.OperationalError, match="missing"):
        migrate(path, migrations)
    with contextlib.closing(connect(path)) as conn:  # nothing of either was kept
        assert conn.execute("PRAGMA user_version").fetchone() == (0,)
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []

    assert migrate(path, migrations[:1]) == 1
    assert migrate(path, migrations[:1]) == 1  # again: nothing to do
    with contextlib.closing(connect(path)) as conn:
        assert conn.execute("SELECT body FROM notes").fetchall() == [("a; b",)]


async def test_damaged_pages_are_corruption_not_an_outage(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "r.db"
    cipher = DocumentCipher(os.urandom(32))
    registry = SqliteRegistry(path, cipher)
    codes = [f"P{n}" for n in range(3000)]
    await registry.register([proof(code) for code in codes])
    await registry.close()  # the last connection closed: the WAL is in the file
    refuse_if_corrupted(path)  # intact
    size = path.stat().st_size
    with path.open("r+b") as f:  # the middle third, page-aligned, as a failing disk would
        f.seek(size // 3 // 4096 * 4096)
        f.write(random.Random(5).randbytes(size // 3))
    with pytest.raises(RegistryCorrupted, match="restore the registry from a backup"):
        refuse_if_corrupted(path)

    caplog.set_level(logging.ERROR, logger="sealgate.registry")
    registry = SqliteRegistry(path, cipher)
    try:
        assert registry.corruption is None
        found = await asyncio.gather(
            *(registry.get_status(code) for code in codes), return_exceptions=True
        )
        failures = [r for r in found if isinstance(r, BaseException)]
        assert failures and all(isinstance(r, RegistryCorrupted) for r in failures), failures
        assert registry.corruption == "database disk image is malformed"
        assert "r.db is corrupted: database disk image is malformed" in caplog.text
        with pytest.raises(RegistryCorrupted, match="writes refused"):
            await registry.register([proof("NEW")])
        await registry.ping()  # it still answers: corrupted is not unreachable
    finally:
        await registry.close()
