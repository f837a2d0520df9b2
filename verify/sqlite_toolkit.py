"""SQLite as this project uses it: the registry's file and the audit store alike.

Connections in WAL mode with the settings durability depends on, one write transaction
shape, multi-row inserts, a checkpointer thread that keeps checkpoints out of commits,
and versioned migrations that run as statements inside one transaction.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

_MAX_ROWS_PER_INSERT = 500


@functools.lru_cache(maxsize=128)
def _insert_rows_statement(table: str, columns: str, count: int) -> str:
    row = f"({', '.join('?' * (columns.count(',') + 1))})"
    # table and columns are constants of this package, never input
    return f"INSERT INTO {table} ({columns}) VALUES {', '.join([row] * count)}"  # noqa: S608


def insert_rows(
    conn: sqlite3.Connection, table: str, columns: str, rows: list[tuple[Any, ...]]
) -> None:
    """Insert the rows in a few multi-row statements of power-of-two sizes.

    One multi-row INSERT is one sqlite3_step: the writer thread gives up and takes back
    the GIL once per statement, not once per row, which the event loop sharing the
    process felt: row by row, batches of 100 sealed ~10% fewer proofs per second. Sizes
    are powers of two (100 rows: 64 + 32 + 4) so that each statement is compiled once and
    then found in the connection's statement cache: one sized to every count was compiled
    afresh whenever the count changed, and compiling its thousands of placeholders cost
    more than the inserts (2.5 against 6.7 µs a row for audit rows in passes of 200-400).
    """
    width = columns.count(",") + 1
    per = max(
        1,
        min(_MAX_ROWS_PER_INSERT, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width),
    )
    largest = 1 << (per.bit_length() - 1)
    start = 0
    while start < len(rows):
        size = min(largest, 1 << ((len(rows) - start).bit_length() - 1))
        chunk = rows[start : start + size]
        conn.execute(
            _insert_rows_statement(table, columns, size),
            list(itertools.chain.from_iterable(chunk)),
        )
        start += size


def connect(
    path: Path, *, readonly: bool = False, busy_timeout: float = 10.0, synchronous: str = "FULL"
) -> sqlite3.Connection:
    """A connection with the settings durability depends on."""
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=busy_timeout
    )
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
    conn.execute("PRAGMA journal_mode = WAL")
    # FULL: a commit is on disk (the WAL fsynced) before COMMIT returns; 201 depends on it.
    conn.execute(f"PRAGMA synchronous = {'NORMAL' if synchronous == 'NORMAL' else 'FULL'}")
    conn.execute("PRAGMA foreign_keys = ON")
    # 64 MiB of pages per connection (default 2 MiB): the code and holder indexes of a
    # million proofs are random-keyed, and every insert and lookup walks them.
    conn.execute("PRAGMA cache_size = -65536")
    if readonly:
        conn.execute("PRAGMA query_only = ON")
    return conn


@contextlib.contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on any error, a failed COMMIT
    included (the connection stays usable)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    try:
        conn.execute("COMMIT")
    except sqlite3.Error:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def migrate(path: Path, migrations: Sequence[Sequence[str]]) -> int:
    """Bring the file's schema up to date; returns the resulting version.

    Migration N is a list of statements that brings ``user_version`` from N to N+1; all
    that are missing run in one transaction. The statements run one by one: a script is
    never split on ";" (a ";" may stand in a literal or a trigger), and ``executescript``
    would commit the transaction first.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path)
    try:
        conn.execute("BEGIN IMMEDIATE")
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        for number in range(version, len(migrations)):
            for statement in migrations[number]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number + 1}")
        conn.execute("COMMIT")
        return len(migrations)
    except BaseException:
        if conn.in_transaction:  # a failed statement may have rolled it back already
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()


# SQLITE_CORRUPT and SQLITE_NOTADB: the file's content is damaged, not the access to it.
# Extended codes (SQLITE_CORRUPT_INDEX, ...) keep the primary code in their low byte.
_CORRUPTION_CODES = frozenset({11, 26})


def is_corruption(exc: sqlite3.Error) -> bool:
    """Whether SQLite failed because the database's content is damaged ("database disk
    image is malformed", "file is not a database"): no retry can help, only a restore."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return (code & 0xFF) in _CORRUPTION_CODES
    # Python before 3.11 named no code: the engine's own words, then
    text = str(exc)
    return "malformed" in text or "not a database" in text


def quick_check(path: Path, *, limit: int = 10) -> list[str]:
    """SQLite's ``PRAGMA quick_check`` of the file: its findings, ``[]`` if intact.

    It reads every page (a few seconds a GiB) but skips the check that index entries match
    their rows, which ``integrity_check`` does at many times the cost. A file too damaged
    to be opened is one finding, the engine's message.
    """
    conn: sqlite3.Connection | None = None
    try:
        # Not mode=ro: a WAL file's reader needs its -shm, which a read-only open
        # cannot create when no other connection has the file open (at start).
        conn = sqlite3.connect(path, timeout=10.0)
        rows = conn.execute(f"PRAGMA quick_check({int(limit)})").fetchall()
        # a finding may span lines ("*** in database main ***" above its page): one each
        found = [line for row in rows for line in str(row[0]).splitlines() if line.strip()]
    except sqlite3.Error as exc:
        if not is_corruption(exc):
            raise
        return [str(exc)]
    finally:
        if conn is not None:
            conn.close()
    return [] if found == ["ok"] else found


def name_native_thread(name: str) -> None:
    """Give the calling thread ``name`` in the OS too (``top -H``, ``/proc``, py-spy, the
    capacity harness's CPU by part): Python 3.11 names only its own thread object. Linux
    keeps 15 bytes of it; elsewhere, or if refused, nothing happens."""
    with contextlib.suppress(OSError):
        Path(f"/proc/self/task/{threading.get_native_id()}/comm").write_bytes(name.encode()[:15])


class Checkpointer:
    """Copies a WAL database's log back into its file from a thread of its own.

    SQLite's automatic checkpoint runs in the committing connection, inside COMMIT: with
    the random code and holder indexes of a million proofs, a group of a few hundred
    sealed proofs dirties thousands of pages, and every group paid for copying and
    syncing them before its sealings could be answered (half the writer thread's time,
    measured). Writers that use this set ``wal_autocheckpoint = 0`` and :meth:`poke` it
    after a commit. A passive checkpoint copies what it can without blocking anyone; once
    the whole WAL is copied, the next commit starts it over from the beginning. Should
    steady writes keep it from ever catching up, past ``restart_bytes`` a RESTART
    checkpoint waits for the writer once, at most ``restart_wait`` seconds (it holds off
    new writes meanwhile), and lets the next commit start the WAL over.

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        path: Path,
        *,
        interval: float = 1.0,
        restart_bytes: int = 64 * 1024 * 1024,
        restart_wait: float = 10.0,
        name: str = "checkpoints",
    ) -> None:
        self._path = path
        self._interval = interval
        self._restart_bytes = restart_bytes
        self._restart_wait = restart_wait
        self._wake = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def poke(self) -> None:
        """Checkpoint soon (a commit has just added to the WAL)."""
        self._wake.set()

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._thread.join()

    def __enter__(self) -> Checkpointer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        name_native_thread(self._thread.name)
        conn: sqlite3.Connection | None = None
        page_size = 0
        try:
            while not self._closed:
                self._wake.wait(self._interval)
                self._wake.clear()
                if self._closed:
                    return
                try:
                    if conn is None:
                        conn = connect(
                            self._path, busy_timeout=self._restart_wait, synchronous="NORMAL"
                        )
                        page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
                    self._checkpoint(conn, page_size)
                except (sqlite3.Error, OSError) as exc:
                    # The next round retries; the writers are unaffected meanwhile.
                    logger.warning("checkpoint of %s failed: %s", self._path.name, exc)
                    if conn is not None:
                        conn.close()
                        conn = None
        finally:
            if conn is not None:
                conn.close()

    def _checkpoint(self, conn: sqlite3.Connection, page_size: int) -> None:
        # (busy, frames in the WAL since it last started over, frames copied back); the
        # file's size says nothing: a restarted WAL is reused, not shrunk.
        _, wal_frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if wal_frames * page_size > self._restart_bytes:
            conn.execute("PRAGMA wal_checkpoint(RESTART)")
