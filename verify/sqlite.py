"""The embedded registry: one SQLite file in WAL mode, synchronous=FULL.

Writes go through one writer thread that commits whatever has queued up as one
transaction (group commit): one fsync serves many concurrent sealings, and each request
runs in its own savepoint so one conflicting request never fails its neighbours. The WAL
is copied back into the file by a :class:`Checkpointer` thread, never inside a commit.
Reads run on a small pool of threads with their own connections, off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import itertools
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sealgate.verify.at_rest import DocumentCipher
from sealgate.verify.directory import (
    AlreadyExists,
    Client,
    Directory,
    DirectoryUnavailable,
    KeyState,
    NotFound,
    Role,
    Seal,
    SealKey,
    SealKind,
    token_digest,
)
from sealgate.verify.lifecycle import InvalidSupersession, check_transition
from sealgate.verify.registry import (
    CodeTaken,
    IdempotencyConflict,
    IdempotentRequest,
    IdempotentResult,
    ProofNotFound,
    ProofRecord,
    ProofStatus,
    Registry,
    RegistryUnavailable,
    Status,
    StatusChange,
    StatusChangeRequest,
    WrongOffice,
)

T = TypeVar("T")

logger = logging.getLogger(__name__)

# Versioned schema: entry N brings user_version from N to N+1. Append, never edit.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE proofs (
        code TEXT PRIMARY KEY,
        seal_id TEXT NOT NULL,
        unit_name TEXT NOT NULL,
        unit_code TEXT NOT NULL,
        type TEXT NOT NULL,
        holder_kind TEXT NOT NULL,
        holder_name_masked TEXT NOT NULL,
        holder_id_masked TEXT NOT NULL,
        holder_key BLOB NOT NULL,
        valid_from TEXT NOT NULL,
        valid_until TEXT,
        expires_at REAL,
        issued_at REAL NOT NULL,
        status TEXT NOT NULL,
        status_changed_at REAL NOT NULL,
        superseded_by TEXT,
        signer_client TEXT NOT NULL,
        document BLOB NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX proofs_holder ON proofs (holder_key, type);
    CREATE TABLE idempotency_keys (
        client_id TEXT NOT NULL,
        key TEXT NOT NULL,
        request_digest BLOB NOT NULL,
        codes TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (client_id, key)
    ) WITHOUT ROWID;
    CREATE TABLE seals (
        seal_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        unit_name TEXT NOT NULL,
        unit_code TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE seal_keys (
        seal_id TEXT NOT NULL REFERENCES seals (seal_id),
        version INTEGER NOT NULL,
        key_label TEXT NOT NULL UNIQUE,
        certificate BLOB NOT NULL,
        state TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (seal_id, version)
    );
    CREATE TABLE clients (
        client_id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        office TEXT,
        token_digest BLOB NOT NULL UNIQUE,
        created_at REAL NOT NULL
    );
    CREATE TABLE client_seals (
        client_id TEXT NOT NULL REFERENCES clients (client_id),
        seal_id TEXT NOT NULL REFERENCES seals (seal_id),
        PRIMARY KEY (client_id, seal_id)
    );
    CREATE TABLE roots (
        fingerprint BLOB PRIMARY KEY,
        certificate BLOB NOT NULL,
        key_label TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE client_purposes (
        client_id TEXT NOT NULL REFERENCES clients (client_id),
        purpose TEXT NOT NULL,
        PRIMARY KEY (client_id, purpose)
    );
    """,
    """
    ALTER TABLE proofs ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE status_history (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        code TEXT NOT NULL,
        from_status TEXT NOT NULL,
        to_status TEXT NOT NULL,
        reason TEXT NOT NULL,
        superseded_by TEXT,
        client_id TEXT NOT NULL,
        changed_at REAL NOT NULL
    );
    CREATE INDEX status_history_code ON status_history (code, seq);
    """,
    # 3: proofs in a rowid table. WITHOUT ROWID keeps whole rows in the code's B-tree; with
    # a sealed document (~1.5 KB) in each row, random codes split pages at every insert
    # (measured ≈ 230 µs per proof at 20 k proofs). Rows now append in issue order and the
    # code's index holds only codes.
    """
    CREATE TABLE proofs_v3 (
        code TEXT NOT NULL UNIQUE,
        seal_id TEXT NOT NULL,
        unit_name TEXT NOT NULL,
        unit_code TEXT NOT NULL,
        type TEXT NOT NULL,
        holder_kind TEXT NOT NULL,
        holder_name_masked TEXT NOT NULL,
        holder_id_masked TEXT NOT NULL,
        holder_key BLOB NOT NULL,
        valid_from TEXT NOT NULL,
        valid_until TEXT,
        expires_at REAL,
        issued_at REAL NOT NULL,
        status TEXT NOT NULL,
        status_changed_at REAL NOT NULL,
        superseded_by TEXT,
        signer_client TEXT NOT NULL,
        document BLOB NOT NULL,
        version INTEGER NOT NULL DEFAULT 0
    );
    INSERT INTO proofs_v3 (
        code, seal_id, unit_name, unit_code, type, holder_kind, holder_name_masked,
        holder_id_masked, holder_key, valid_from, valid_until, expires_at, issued_at, status,
        status_changed_at, superseded_by, signer_client, document, version
    ) SELECT
        code, seal_id, unit_name, unit_code, type, holder_kind, holder_name_masked,
        holder_id_masked, holder_key, valid_from, valid_until, expires_at, issued_at, status,
        status_changed_at, superseded_by, signer_client, document, version
    FROM proofs ORDER BY issued_at;
    DROP TABLE proofs;
    ALTER TABLE proofs_v3 RENAME TO proofs;
    CREATE INDEX proofs_holder ON proofs (holder_key, type);
    """,
)

_PROOF_COLUMNS = (
    "code, seal_id, unit_name, unit_code, type, holder_kind, holder_name_masked,"
    " holder_id_masked, holder_key, valid_from, valid_until, expires_at, issued_at,"
    " status, status_changed_at, superseded_by, signer_client, document"
)
# Built from the constant column list above, never from input.
_SELECT_PROOF = f"SELECT {_PROOF_COLUMNS} FROM proofs WHERE code = ?"  # noqa: S608
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


_STATUS_COLUMNS = (
    "code, seal_id, unit_name, unit_code, type, holder_kind, holder_name_masked,"
    " holder_id_masked, valid_from, valid_until, expires_at, issued_at, status,"
    " status_changed_at, superseded_by, version"
)
_SELECT_STATUS = f"SELECT {_STATUS_COLUMNS} FROM proofs WHERE code = ?"  # noqa: S608
_HISTORY_COLUMNS = "seq, code, from_status, to_status, reason, superseded_by, client_id, changed_at"


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


def migrate(path: Path) -> int:
    """Bring the schema up to date; returns the resulting version."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path)
    try:
        conn.execute("BEGIN IMMEDIATE")
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        for number in range(version, len(MIGRATIONS)):
            for statement in _statements(MIGRATIONS[number]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number + 1}")
        conn.execute("COMMIT")
        return len(MIGRATIONS)
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()


def _statements(script: str) -> Iterator[str]:
    # executescript() would commit our transaction; run the statements one by one instead.
    for statement in script.split(";"):
        if statement.strip():
            yield statement


def _proof_row(proof: ProofRecord, cipher: DocumentCipher) -> tuple[Any, ...]:
    return (
        proof.code,
        proof.seal_id,
        proof.unit_name,
        proof.unit_code,
        proof.type,
        proof.holder_kind,
        proof.holder_name_masked,
        proof.holder_id_masked,
        proof.holder_key,
        proof.valid_from,
        proof.valid_until,
        proof.expires_at,
        proof.issued_at,
        proof.status.value,
        proof.status_changed_at,
        proof.superseded_by,
        proof.signer_client,
        cipher.encrypt(proof.code, proof.document),
    )


def _proof_from_row(row: tuple[Any, ...], cipher: DocumentCipher) -> ProofRecord:
    return ProofRecord(
        code=row[0],
        seal_id=row[1],
        unit_name=row[2],
        unit_code=row[3],
        type=row[4],
        holder_kind=row[5],
        holder_name_masked=row[6],
        holder_id_masked=row[7],
        holder_key=bytes(row[8]),
        valid_from=row[9],
        valid_until=row[10],
        expires_at=row[11],
        issued_at=row[12],
        status=Status(row[13]),
        status_changed_at=row[14],
        superseded_by=row[15],
        signer_client=row[16],
        document=cipher.decrypt(row[0], bytes(row[17])),
    )


def _status_from_row(row: tuple[Any, ...]) -> ProofStatus:
    return ProofStatus(
        code=row[0],
        seal_id=row[1],
        unit_name=row[2],
        unit_code=row[3],
        type=row[4],
        holder_kind=row[5],
        holder_name_masked=row[6],
        holder_id_masked=row[7],
        valid_from=row[8],
        valid_until=row[9],
        expires_at=row[10],
        issued_at=row[11],
        status=Status(row[12]),
        status_changed_at=row[13],
        superseded_by=row[14],
        version=row[15],
    )


def _change_from_row(row: tuple[Any, ...]) -> StatusChange:
    return StatusChange(
        seq=row[0],
        code=row[1],
        from_status=Status(row[2]),
        to_status=Status(row[3]),
        reason=row[4],
        superseded_by=row[5],
        client_id=row[6],
        changed_at=row[7],
    )


def _apply_status_change(conn: sqlite3.Connection, change: StatusChangeRequest) -> ProofStatus:
    row = conn.execute(_SELECT_STATUS, (change.code,)).fetchone()
    if row is None:
        raise ProofNotFound("no proof has that code")
    current = _status_from_row(row)
    if current.unit_code != change.office:
        raise WrongOffice("the proof was issued by another office")
    expired = current.expires_at is not None and change.at >= current.expires_at
    check_transition(
        current.status, change.status, expired=expired, superseded_by=change.superseded_by
    )
    if change.superseded_by is not None:
        _check_supersession(conn, change.code, change.superseded_by, change.at)
    conn.execute(
        "UPDATE proofs SET status = ?, status_changed_at = ?, superseded_by = ?,"
        " version = version + 1 WHERE code = ?",
        (change.status.value, change.at, change.superseded_by, change.code),
    )
    conn.execute(
        "INSERT INTO status_history (code, from_status, to_status, reason, superseded_by,"
        " client_id, changed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            change.code,
            current.status.value,
            change.status.value,
            change.reason,
            change.superseded_by,
            change.client_id,
            change.at,
        ),
    )
    return _status_from_row(conn.execute(_SELECT_STATUS, (change.code,)).fetchone())


def _check_supersession(conn: sqlite3.Connection, code: str, newer: str, now: float) -> None:
    if newer == code:
        raise InvalidSupersession("a proof cannot supersede itself")
    rows = conn.execute(
        "SELECT p.holder_key = o.holder_key AND p.type = o.type, n_status, n_expires,"
        " n_issued > o.issued_at FROM (SELECT holder_key, type, status AS n_status,"
        " expires_at AS n_expires, issued_at AS n_issued FROM proofs WHERE code = ?) p,"
        " (SELECT holder_key, type, issued_at FROM proofs WHERE code = ?) o",
        (newer, code),
    ).fetchall()
    if not rows:
        raise InvalidSupersession("superseded_by names no registered proof")
    same_holder_and_type, status, expires_at, is_newer = rows[0]
    if not same_holder_and_type:
        raise InvalidSupersession("superseded_by is a proof of another holder or type")
    if status != Status.VALID.value or (expires_at is not None and now >= expires_at):
        raise InvalidSupersession("superseded_by is not a valid proof")
    if not is_newer:
        raise InvalidSupersession("superseded_by is not newer than the proof it replaces")


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


@dataclass(slots=True)
class _WriteJob:
    work: Callable[[sqlite3.Connection], Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    result: Any = field(default=None)
    error: BaseException | None = field(default=None)


class GroupCommitWriter:
    """One thread, one connection; commits every queued job in one transaction."""

    MAX_GROUP = 512

    def __init__(
        self, path: Path, *, busy_timeout: float = 10.0, synchronous: str = "FULL"
    ) -> None:
        self._conn = connect(path, busy_timeout=busy_timeout, synchronous=synchronous)
        self._conn.execute("PRAGMA wal_autocheckpoint = 0")  # see Checkpointer
        # Each job's savepoint journals the old content of every page it touches: with a
        # million proofs, three random index pages a proof. Past 64 KiB SQLite spills
        # that journal to a file in /var/tmp, two write() calls a page (a third of the
        # writer's syscalls under batch sealing), and a group fails if no temporary
        # directory is writable. In memory it stays at most one job's pages (~12 MB for
        # a batch of 1,000): released with the job's savepoint.
        self._conn.execute("PRAGMA temp_store = MEMORY")
        # A RESTART holds off this writer while it waits: never for long.
        self._checkpointer = Checkpointer(path, restart_wait=0.2, name="registry-checkpoints")
        self._jobs: queue.SimpleQueue[_WriteJob | None] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="registry-writer", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return not self._closed and self._thread.is_alive()

    def submit(self, work: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        if not self.alive:
            raise RegistryUnavailable("the registry writer has stopped")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put(_WriteJob(work, loop, future))
        return future

    def close(self) -> None:
        self._closed = True
        self._jobs.put(None)
        self._thread.join()
        self._checkpointer.close()
        self._conn.close()

    def _run(self) -> None:
        name_native_thread(self._thread.name)
        try:
            self._serve()
        finally:
            # Whatever ended the thread, nobody may wait forever on a job it never ran.
            self._closed = True
            stopped = RegistryUnavailable("the registry writer has stopped")
            while True:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    job.error = stopped
                    _notify(job)

    def _serve(self) -> None:
        while True:
            first = self._jobs.get()
            if first is None:
                return
            group = [first]
            stop = False
            while len(group) < self.MAX_GROUP:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                group.append(job)
            self._commit(group)
            if stop:
                return

    def _commit(self, group: list[_WriteJob]) -> None:
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job in group:
                conn.execute("SAVEPOINT job")
                try:
                    job.result = job.work(conn)
                except sqlite3.Error as exc:
                    if not isinstance(exc, sqlite3.IntegrityError):
                        raise  # the store itself failed: the whole group fails below
                    conn.execute("ROLLBACK TO job")
                    job.error = exc
                except Exception as exc:
                    # This request alone is refused (a conflict, a lifecycle rule, or a
                    # bug in the job); its neighbours in the group still commit.
                    conn.execute("ROLLBACK TO job")
                    job.error = exc
                conn.execute("RELEASE job")
            conn.execute("COMMIT")
            self._checkpointer.poke()
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            failure = RegistryUnavailable(f"registry write failed: {exc}")
            for job in group:
                job.error = failure
        for job in group:
            _notify(job)


def _notify(job: _WriteJob) -> None:
    with contextlib.suppress(RuntimeError):  # the caller's loop is closed: nobody waits
        job.loop.call_soon_threadsafe(_settle, job.future, job.result, job.error)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the caller was cancelled; the write stands regardless
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


class SqliteRegistry(Registry):
    """:class:`Registry` on a SQLite file; see the module docstring."""

    def __init__(self, path: Path, cipher: DocumentCipher, *, readers: int = 2) -> None:
        migrate(path)
        self._path = path
        self._cipher = cipher
        self._writer = GroupCommitWriter(path)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._readers = ThreadPoolExecutor(
            readers,
            thread_name_prefix="registry-reader",
            initializer=name_native_thread,
            initargs=("registry-reader",),
        )

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self._path, readonly=True)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    async def _read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        def run() -> T:
            try:
                return query(self._reader())
            except sqlite3.Error as exc:
                raise RegistryUnavailable(f"registry read failed: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(self._readers, run)

    async def register(
        self, proofs: list[ProofRecord], idempotency: IdempotentRequest | None = None
    ) -> None:
        rows = [_proof_row(p, self._cipher) for p in proofs]
        codes = ",".join(p.code for p in proofs)
        now = time.time()

        def work(conn: sqlite3.Connection) -> None:
            if idempotency is not None:
                try:
                    conn.execute(
                        "INSERT INTO idempotency_keys VALUES (?, ?, ?, ?, ?)",
                        (
                            idempotency.client_id,
                            idempotency.key,
                            idempotency.request_digest,
                            codes,
                            now,
                        ),
                    )
                except sqlite3.IntegrityError as exc:
                    raise IdempotencyConflict("idempotency key already used") from exc
            try:
                insert_rows(conn, "proofs", _PROOF_COLUMNS, rows)
            except sqlite3.IntegrityError as exc:
                raise CodeTaken("verification code already registered") from exc

        # Shielded: once queued the write happens; a cancelled caller must not leave the
        # future unobserved nor believe it was not written.
        await asyncio.shield(self._writer.submit(work))

    async def get(self, code: str) -> ProofRecord | None:
        def query(conn: sqlite3.Connection) -> ProofRecord | None:
            row = conn.execute(_SELECT_PROOF, (code,)).fetchone()
            return None if row is None else _proof_from_row(row, self._cipher)

        return await self._read(query)

    async def get_status(self, code: str) -> ProofStatus | None:
        def query(conn: sqlite3.Connection) -> ProofStatus | None:
            row = conn.execute(_SELECT_STATUS, (code,)).fetchone()
            return None if row is None else _status_from_row(row)

        return await self._read(query)

    async def change_status(self, change: StatusChangeRequest) -> ProofStatus:
        result: ProofStatus = await asyncio.shield(
            self._writer.submit(lambda conn: _apply_status_change(conn, change))
        )
        return result

    async def history(self, code: str) -> list[StatusChange]:
        def query(conn: sqlite3.Connection) -> list[StatusChange]:
            rows = conn.execute(
                f"SELECT {_HISTORY_COLUMNS} FROM status_history WHERE code = ? ORDER BY seq",  # noqa: S608
                (code,),
            ).fetchall()
            return [_change_from_row(r) for r in rows]

        return await self._read(query)

    async def changes_since(self, seq: int, limit: int = 1000) -> list[StatusChange]:
        def query(conn: sqlite3.Connection) -> list[StatusChange]:
            rows = conn.execute(
                f"SELECT {_HISTORY_COLUMNS} FROM status_history WHERE seq > ?"  # noqa: S608
                " ORDER BY seq LIMIT ?",
                (seq, limit),
            ).fetchall()
            return [_change_from_row(r) for r in rows]

        return await self._read(query)

    async def last_change(self) -> int:
        def query(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT max(seq) FROM status_history").fetchone()
            return int(row[0] or 0)

        return await self._read(query)

    async def find_by_holder(self, holder_key: bytes, type: str) -> list[ProofStatus]:
        def query(conn: sqlite3.Connection) -> list[ProofStatus]:
            rows = conn.execute(
                f"SELECT {_STATUS_COLUMNS} FROM proofs"  # noqa: S608
                " WHERE holder_key = ? AND type = ? AND status = ? ORDER BY issued_at DESC",
                (holder_key, type, Status.VALID.value),
            ).fetchall()
            return [_status_from_row(r) for r in rows]

        return await self._read(query)

    async def idempotent_result(self, client_id: str, key: str) -> IdempotentResult | None:
        def query(conn: sqlite3.Connection) -> IdempotentResult | None:
            row = conn.execute(
                "SELECT request_digest, codes FROM idempotency_keys"
                " WHERE client_id = ? AND key = ?",
                (client_id, key),
            ).fetchone()
            if row is None:
                return None
            return IdempotentResult(bytes(row[0]), tuple(row[1].split(",")))

        return await self._read(query)

    async def count(self) -> int:
        return await self._read(
            lambda c: int(c.execute("SELECT count(*) FROM proofs").fetchone()[0])
        )

    async def ping(self) -> None:
        if not self._writer.alive:
            raise RegistryUnavailable("the registry writer has stopped")
        await self._read(lambda c: c.execute("SELECT 1").fetchone())

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._writer.close)
        self._readers.shutdown(wait=True)
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()


@contextlib.contextmanager
def _directory_errors() -> Iterator[None]:
    """The store's failures (locked, unreadable, full) as :class:`DirectoryUnavailable`;
    a constraint violation is left to the caller, who knows which conflict it means."""
    try:
        yield
    except sqlite3.IntegrityError:
        raise
    except sqlite3.Error as exc:
        raise DirectoryUnavailable(f"the directory's store failed: {exc}") from exc


class SqliteDirectory(Directory):
    """:class:`Directory` on the registry's SQLite file. Blocking; one connection."""

    def __init__(self, path: Path) -> None:
        with _directory_errors():
            migrate(path)
            self._conn = connect(path)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._conn.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with _directory_errors(), self._lock, write_transaction(self._conn) as conn:
            yield conn

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with _directory_errors(), self._lock:
            yield self._conn

    def add_seal(self, seal: Seal) -> None:
        try:
            with self._transaction() as conn:
                conn.execute(
                    "INSERT INTO seals VALUES (?, ?, ?, ?, ?)",
                    (
                        seal.seal_id,
                        seal.kind.value,
                        seal.unit_name,
                        seal.unit_code,
                        seal.created_at,
                    ),
                )
                for key in seal.keys:
                    self._insert_key(conn, key)
        except sqlite3.IntegrityError as exc:
            raise AlreadyExists(f"seal {seal.seal_id} already exists") from exc

    @staticmethod
    def _insert_key(conn: sqlite3.Connection, key: SealKey) -> None:
        conn.execute(
            "INSERT INTO seal_keys VALUES (?, ?, ?, ?, ?, ?)",
            (
                key.seal_id,
                key.version,
                key.key_label,
                key.certificate,
                key.state.value,
                key.created_at,
            ),
        )

    def add_seal_key(self, key: SealKey) -> None:
        try:
            with self._transaction() as conn:
                if (
                    conn.execute("SELECT 1 FROM seals WHERE seal_id = ?", (key.seal_id,)).fetchone()
                    is None
                ):
                    raise NotFound(f"no seal {key.seal_id}")
                conn.execute(
                    "UPDATE seal_keys SET state = ? WHERE seal_id = ? AND version < ?",
                    (KeyState.RETIRED.value, key.seal_id, key.version),
                )
                self._insert_key(conn, key)
        except sqlite3.IntegrityError as exc:
            raise AlreadyExists(f"seal {key.seal_id} already has version {key.version}") from exc

    def _seals(self, where: str, args: tuple[Any, ...]) -> list[Seal]:
        with self._reading() as conn:
            seal_rows = conn.execute(
                f"SELECT seal_id, kind, unit_name, unit_code, created_at FROM seals {where}"  # noqa: S608
                " ORDER BY seal_id",
                args,
            ).fetchall()
            key_rows = conn.execute(
                "SELECT seal_id, version, key_label, certificate, state, created_at"
                " FROM seal_keys ORDER BY seal_id, version"
            ).fetchall()
        keys: dict[str, list[SealKey]] = {}
        for r in key_rows:
            keys.setdefault(r[0], []).append(
                SealKey(r[0], r[1], r[2], bytes(r[3]), KeyState(r[4]), r[5])
            )
        return [
            Seal(r[0], SealKind(r[1]), r[2], r[3], r[4], tuple(keys.get(r[0], ())))
            for r in seal_rows
        ]

    def seal(self, seal_id: str) -> Seal:
        found = self._seals("WHERE seal_id = ?", (seal_id,))
        if not found:
            raise NotFound(f"no seal {seal_id}")
        return found[0]

    def seals(self) -> list[Seal]:
        return self._seals("", ())

    def add_root(self, certificate: bytes, key_label: str) -> None:
        fingerprint = hashlib.sha256(certificate).digest()
        try:
            with self._transaction() as conn:
                conn.execute(
                    "INSERT INTO roots VALUES (?, ?, ?, ?)",
                    (fingerprint, certificate, key_label, time.time()),
                )
        except sqlite3.IntegrityError as exc:
            raise AlreadyExists("that root certificate is already trusted") from exc

    def roots(self) -> list[tuple[bytes, str]]:
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT certificate, key_label FROM roots ORDER BY created_at"
            ).fetchall()
        return [(bytes(r[0]), r[1]) for r in rows]

    def add_client(self, client: Client, token: str) -> None:
        try:
            with self._transaction() as conn:
                conn.execute(
                    "INSERT INTO clients VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        client.client_id,
                        client.name,
                        client.role.value,
                        client.office,
                        token_digest(token),
                        client.created_at,
                    ),
                )
                conn.executemany(
                    "INSERT INTO client_seals VALUES (?, ?)",
                    [(client.client_id, s) for s in sorted(client.seals)],
                )
                conn.executemany(
                    "INSERT INTO client_purposes VALUES (?, ?)",
                    [(client.client_id, p) for p in sorted(client.purposes)],
                )
        except sqlite3.IntegrityError as exc:
            raise AlreadyExists(
                f"client {client.client_id} already exists or names an unknown seal"
            ) from exc

    def remove_client(self, client_id: str) -> None:
        with self._transaction() as conn:
            conn.execute("DELETE FROM client_seals WHERE client_id = ?", (client_id,))
            conn.execute("DELETE FROM client_purposes WHERE client_id = ?", (client_id,))
            if conn.execute("DELETE FROM clients WHERE client_id = ?", (client_id,)).rowcount == 0:
                raise NotFound(f"no client {client_id}")

    def _clients(self, where: str, args: tuple[Any, ...]) -> list[Client]:
        with self._reading() as conn:
            rows = conn.execute(
                f"SELECT client_id, name, role, office, created_at FROM clients {where}"  # noqa: S608
                " ORDER BY client_id",
                args,
            ).fetchall()
            result = []
            for r in rows:
                seals = frozenset(
                    s
                    for (s,) in conn.execute(
                        "SELECT seal_id FROM client_seals WHERE client_id = ?", (r[0],)
                    )
                )
                purposes = frozenset(
                    p
                    for (p,) in conn.execute(
                        "SELECT purpose FROM client_purposes WHERE client_id = ?", (r[0],)
                    )
                )
                result.append(Client(r[0], r[1], Role(r[2]), r[3], seals, purposes, r[4]))
        return result

    def client_by_token(self, token: str) -> Client | None:
        found = self._clients("WHERE token_digest = ?", (token_digest(token),))
        return found[0] if found else None

    def clients(self) -> list[Client]:
        return self._clients("", ())
