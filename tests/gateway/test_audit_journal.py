"""The audit journal (``sealgate.gateway.audit_journal``) and the writer's chaining of it
(``sealgate.gateway.audit_writer``): real files, real locks, a real SQLite store."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sealgate.gateway import audit_journal
from sealgate.gateway.audit import AuditLog
from sealgate.gateway.audit_journal import (
    Journal,
    journal_directory,
    journal_files,
    read_groups,
    try_lock,
)
from sealgate.gateway.audit_store import open_store, read_records
from sealgate.gateway.audit_writer import Follower, chain_pass, finish_orphans
from sealgate.hsm import frames
from sealgate.verify.audit import verify_trail


def row(n: int) -> list[Any]:
    return ["verify", "client-1", "verifier", "demo", f"CODE{n}", "200", f"r{n}", 1.0 + n, {}]


def codes(store: Path) -> list[str | None]:
    return [record.event.code for record in read_records(store)]


def followed_journal(store: sqlite3.Connection, directory: Path) -> tuple[Journal, Follower]:
    """A worker's journal, and a writer's follower of it."""
    journal = Journal(directory)
    return journal, Follower(store, directory / journal.name)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    conn = open_store(tmp_path / "audit.db")
    yield conn
    conn.close()


def test_the_journal_lives_beside_its_store(tmp_path: Path) -> None:
    assert journal_directory(tmp_path / "audit.db") == tmp_path / "audit-journal"


def test_a_journal_is_locked_while_its_worker_writes_and_free_once_closed(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path / "j")
    [path] = journal_files(tmp_path / "j")
    assert path.name == journal.name
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert not try_lock(fd)  # a writer looking for orphans leaves it alone
        journal.close()
        assert try_lock(fd)
    finally:
        os.close(fd)
    assert not list((tmp_path / "j").glob(".*"))  # no temporary file left behind


def test_whole_frames_are_read_and_a_torn_one_is_left(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j")
    journal.append(frames.pack([row(1)]))
    journal.append(frames.pack([row(2), row(3)]))
    path = tmp_path / "j" / journal.name
    whole = path.stat().st_size
    with path.open("ab") as torn:
        torn.write(frames.pack([row(4)])[:-3])  # as a crash of the machine could leave
    fd = os.open(path, os.O_RDONLY)
    try:
        groups, end = read_groups(fd, 0)
        assert [[r[4] for r in group] for group in groups] == [["CODE1"], ["CODE2", "CODE3"]]
        assert end == whole
        assert read_groups(fd, end) == ([], end)
        big, _ = read_groups(fd, 0, limit=10)  # a frame larger than one read
        assert len(big) == 1
    finally:
        os.close(fd)


def test_bytes_that_are_not_frames_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.jnl"
    path.write_bytes(b"\x00\x00\x00\x03\xc1\xc1\xc1")  # 0xc1 is never valid msgpack
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(frames.ProtocolError):
            read_groups(fd, 0)
    finally:
        os.close(fd)


def test_each_record_is_chained_once_whoever_chains(tmp_path: Path) -> None:
    """Two writers (two connections) chain the same file in turns: the offset each reads
    inside its own transaction keeps every record to one chaining."""
    journal = Journal(tmp_path / "audit-journal")
    path = tmp_path / "audit-journal" / journal.name
    first, second = open_store(tmp_path / "audit.db"), open_store(tmp_path / "audit.db")
    fd = os.open(path, os.O_RDONLY)
    try:
        for n in range(6):
            journal.append(frames.pack([row(n)]))
            conn = first if n % 2 else second
            assert chain_pass(conn, path, fd, final=False)[2] == 1
            assert chain_pass(first, path, fd, final=False)[2] == 0
        journal.close()
        offset, done, records = chain_pass(second, path, fd, final=True)
        assert (offset, done, records) == (path.stat().st_size, True, 0)
    finally:
        os.close(fd)
        first.close()
        second.close()
    assert codes(tmp_path / "audit.db") == [f"CODE{n}" for n in range(6)]


def test_the_writer_follows_its_worker_across_files(
    tmp_path: Path, store: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_journal, "ROTATE_BYTES", 300)
    directory = tmp_path / "audit-journal"
    journal, follower = followed_journal(store, directory)
    for n in range(40):
        journal.append(frames.pack([row(n)]))
        if n % 7 == 0:
            follower.chain()
    assert journal.n > 3  # rotated several times
    assert follower.chain()
    assert follower.n == journal.n
    assert [p.name for p in journal_files(directory)] == [journal.name]  # finished ones go
    assert codes(tmp_path / "audit.db") == [f"CODE{n}" for n in range(40)]
    journal.close()
    follower.close()  # the worker is gone: its last file is finished too
    assert journal_files(directory) == []
    assert len(codes(tmp_path / "audit.db")) == 40


def test_journals_of_gone_workers_are_finished_and_live_ones_left(
    tmp_path: Path, store: sqlite3.Connection, capfd: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "audit-journal"
    gone, live = Journal(directory), Journal(directory)
    gone.append(frames.pack([row(1), row(2)]))
    live.append(frames.pack([row(3)]))
    gone.close()  # as the kernel does for a killed worker
    with (directory / gone.name).open("ab") as torn:
        torn.write(b"\x00\x00\x01\x00partial")
    finish_orphans(store, directory)
    assert codes(tmp_path / "audit.db") == ["CODE1", "CODE2"]
    assert [p.name for p in journal_files(directory)] == [live.name]
    assert "11 torn bytes" in capfd.readouterr().err
    finish_orphans(store, directory)  # again: nothing doubled
    assert codes(tmp_path / "audit.db") == ["CODE1", "CODE2"]
    live.close()


async def test_a_killed_gateways_journal_is_chained_by_the_next_writer(tmp_path: Path) -> None:
    """A worker and its writer both killed (a whole process group): the records it
    answered are in its journal, and the next gateway's writer chains them first."""
    path = tmp_path / "audit.db"
    dead = Journal(journal_directory(path))
    dead.append(frames.pack([row(1), row(2)]))
    dead.close()
    log = AuditLog(path, head_path=tmp_path / "head.json", signing=None)
    await log.start()
    try:
        await log.record_rows([row(3)])
        await log.flush()
        assert codes(path) == ["CODE1", "CODE2", "CODE3"]
        assert verify_trail(read_records(path), b"").records == 3  # one chain
    finally:
        await log.close()
    assert journal_files(journal_directory(path)) == []  # a clean stop leaves none


async def test_records_past_a_rotation_reach_the_store_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_journal, "ROTATE_BYTES", 2000)
    path = tmp_path / "audit.db"
    log = AuditLog(path, head_path=tmp_path / "head.json", signing=None)
    await log.start()
    try:
        for n in range(300):
            await log.record_rows([row(n)])
        await log.flush()
        assert codes(path) == [f"CODE{n}" for n in range(300)]
        assert len(journal_files(journal_directory(path))) == 1
    finally:
        await log.close()


async def test_a_record_the_journal_cannot_take_is_refused_and_cut_off_whole(
    tmp_path: Path,
) -> None:
    """A full disk, played by a file-size limit: the group's waiters are refused, the
    journal is cut back to its last whole frame, the log refuses records up front from
    the first failure, and writing goes on once a probe finds room."""
    import resource
    import signal

    from sealgate.gateway.audit import AuditUnavailable

    path = tmp_path / "audit.db"
    log = AuditLog(path, head_path=tmp_path / "head.json", signing=None)
    await log.start()
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        await log.record_rows([row(1)])
        [journal] = journal_files(journal_directory(path))
        whole = journal.stat().st_size
        resource.setrlimit(resource.RLIMIT_FSIZE, (whole + 10, limits[1]))
        try:
            with pytest.raises(AuditUnavailable):
                await log.record_rows([row(2)])  # 10 of its bytes fit: a short write
            assert (log.refusal or "").startswith("the audit journal cannot be written")
            with pytest.raises(AuditUnavailable):
                await log.record_rows([row(3)])  # refused up front: the trail is failing
            resource.setrlimit(resource.RLIMIT_FSIZE, (whole, limits[1]))
            await log.probe()  # not a byte fits: still failing
            assert not log.healthy
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        assert journal.stat().st_size == whole
        with pytest.raises(AuditUnavailable):
            await log.record_rows([row(4)])  # room again, but no probe has seen it yet
        await log.probe()
        assert log.healthy
        await log.record_rows([row(5)])
        await log.flush()
        assert codes(path) == ["CODE1", "CODE5"]
    finally:
        signal.signal(signal.SIGXFSZ, previous)
        await log.close()


def test_a_file_another_writer_finished_is_skipped(
    tmp_path: Path, store: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files a worker rotated away from are final: another writer starting meanwhile may
    finish and remove them before this worker's writer gets there."""
    monkeypatch.setattr(audit_journal, "ROTATE_BYTES", 100)
    directory = tmp_path / "audit-journal"
    journal, follower = followed_journal(store, directory)
    for n in range(6):
        journal.append(frames.pack([row(n)]))
    assert journal.n >= 3
    other = open_store(tmp_path / "audit.db")
    try:
        finish_orphans(other, directory)  # files 1 .. n-1: their lock is free
    finally:
        other.close()
    assert [p.name for p in journal_files(directory)] == [journal.name]
    follower.chain()
    assert follower.n == journal.n
    assert codes(tmp_path / "audit.db") == [f"CODE{n}" for n in range(6)]
    journal.close()
    follower.close()
