"""The embedded registry: one SQLite file in WAL mode, synchronous=FULL.

Writes go through one writer thread that commits whatever has queued up as one
transaction (group commit): one fsync serves many concurrent sealings, and each request
runs in its own savepoint so one conflicting request never fails its neighbours. The WAL
is copied back into the file by a :class:`~sealgate.verify.sqlite_toolkit.Checkpointer`
thread, never inside a commit. Reads run on a small pool of threads with their own
connections, off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sealgate.verify import rows
from sealgate.verify.at_rest import DocumentCipher
from sealgate.verify.consents import (
    Consent,
    ConsentNotFound,
    ConsentQueries,
    consent_from_row,
    consent_row,
    why_not_usable,
)
from sealgate.verify.group_commit import gather_group
from sealgate.verify.integrity import REMEDY, CorruptionWatch
from sealgate.verify.lookup_failures import BucketLevels, FailureCharge, FailureLedger
from sealgate.verify.registry import (
    CodeTaken,
    IdempotencyConflict,
    IdempotentRequest,
    IdempotentResult,
    ProofNotFound,
    ProofRecord,
    ProofStatus,
    Registry,
    RegistryCorrupted,
    RegistryError,
    RegistryUnavailable,
    Status,
    StatusChange,
    StatusChangeRequest,
)
from sealgate.verify.requests import (
    Deadlines,
    RequestBook,
    RequestEvent,
    RequestQuery,
    Transition,
    VerificationRequest,
    registered,
)
from sealgate.verify.rules import check_status_change
from sealgate.verify.sqlite import lookup_failures
from sealgate.verify.sqlite import requests as request_sql
from sealgate.verify.sqlite.notices import SqliteNotices
from sealgate.verify.sqlite.schema import migrate
from sealgate.verify.sqlite_toolkit import (
    Checkpointer,
    connect,
    insert_rows,
    is_corruption,
    name_native_thread,
    quick_check,
)

T = TypeVar("T")

_SQL = rows.RegistryQueries.written_with(lambda _: "?")
_CONSENTS = ConsentQueries.written_with(lambda _: "?")


def _apply_status_change(conn: sqlite3.Connection, change: StatusChangeRequest) -> ProofStatus:
    row = conn.execute(_SQL.select_status, (change.code,)).fetchone()
    successor = None
    if change.superseded_by is not None:
        successor = rows.successor_from_row(
            conn.execute(_SQL.successor, (change.superseded_by, change.code)).fetchone()
        )
    current = check_status_change(
        change, None if row is None else rows.status_from_row(row), successor
    )
    # Read back rather than UPDATE ... RETURNING, which needs SQLite 3.35 (2021): the
    # registry runs on whatever SQLite the system's Python links.
    conn.execute(_SQL.update_status, rows.status_update_row(change))
    conn.execute(_SQL.insert_change, rows.change_row(current, change))
    return rows.status_from_row(conn.execute(_SQL.select_status, (change.code,)).fetchone())


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
        self,
        path: Path,
        *,
        busy_timeout: float = 10.0,
        synchronous: str = "FULL",
        integrity: CorruptionWatch | None = None,
    ) -> None:
        self._integrity = integrity or CorruptionWatch(path.name)
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
            group, stop = gather_group(
                first, self._jobs.get_nowait, queue.Empty, max_jobs=self.MAX_GROUP
            )
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
            failure = store_failure(self._integrity, "registry write", exc)
            for job in group:
                job.error = failure
        for job in group:
            _notify(job)


def store_failure(integrity: CorruptionWatch, what: str, exc: sqlite3.Error) -> RegistryError:
    """The registry's error for SQLite's ``exc``: damaged data is not an outage."""
    if is_corruption(exc):
        return integrity.noticed(what, str(exc))
    return RegistryUnavailable(f"{what} failed: {exc}")


def refuse_if_corrupted(path: Path) -> None:
    """Raise :class:`RegistryCorrupted` if SQLite's ``quick_check`` finds the file damaged.

    Run once before a gateway serves: a damaged registry would otherwise be found one
    request at a time, each answered as though the registry were merely away.
    """
    if not path.exists():
        return  # a new home: nothing to check yet
    if findings := quick_check(path, limit=3):
        # The engine's words, as they are (the command line prints the message).
        raise RegistryCorrupted(
            f"the registry {path} is corrupted ({'; '.join(findings)}): {REMEDY}"
        )


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


class SqliteRegistry(Registry, RequestBook, FailureLedger, SqliteNotices):
    """:class:`Registry` on a SQLite file; see the module docstring."""

    def __init__(self, path: Path, cipher: DocumentCipher, *, readers: int = 2) -> None:
        self._integrity = CorruptionWatch(path.name, examine=lambda: quick_check(path))
        try:
            migrate(path)
        except sqlite3.Error as exc:
            if is_corruption(exc):
                raise store_failure(self._integrity, "opening the registry", exc) from exc
            raise
        self._path = path
        self._cipher = cipher
        self._writer = GroupCommitWriter(path, integrity=self._integrity)
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
                raise store_failure(self._integrity, "registry read", exc) from exc

        return await asyncio.get_running_loop().run_in_executor(self._readers, run)

    async def _write_job(self, work: Callable[[sqlite3.Connection], T]) -> T:
        self._integrity.refuse_writes()
        # Shielded: once queued the write happens (see register).
        done: T = await asyncio.shield(self._writer.submit(work))
        return done

    async def register(
        self, proofs: list[ProofRecord], idempotency: IdempotentRequest | None = None
    ) -> None:
        self._integrity.refuse_writes()
        proof_rows = [rows.proof_row(p, self._cipher) for p in proofs]
        codes = ",".join(p.code for p in proofs)
        now = time.time()

        def work(conn: sqlite3.Connection) -> None:
            if idempotency is not None:
                try:
                    conn.execute(
                        _SQL.insert_idempotency,
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
                insert_rows(conn, "proofs", rows.PROOF_COLUMNS, proof_rows)
            except sqlite3.IntegrityError as exc:
                raise CodeTaken("verification code already registered") from exc

        # Shielded: once queued the write happens; a cancelled caller must not leave the
        # future unobserved nor believe it was not written.
        await asyncio.shield(self._writer.submit(work))

    async def get(self, code: str) -> ProofRecord | None:
        def query(conn: sqlite3.Connection) -> ProofRecord | None:
            row = conn.execute(_SQL.select_proof, (code,)).fetchone()
            return None if row is None else rows.proof_from_row(row, self._cipher)

        return await self._read(query)

    async def get_status(self, code: str) -> ProofStatus | None:
        def query(conn: sqlite3.Connection) -> ProofStatus | None:
            row = conn.execute(_SQL.select_status, (code,)).fetchone()
            return None if row is None else rows.status_from_row(row)

        return await self._read(query)

    async def change_status(self, change: StatusChangeRequest) -> ProofStatus:
        self._integrity.refuse_writes()
        result: ProofStatus = await asyncio.shield(
            self._writer.submit(lambda conn: _apply_status_change(conn, change))
        )
        return result

    async def history(self, code: str) -> list[StatusChange]:
        return await self._read(
            lambda c: [rows.change_from_row(r) for r in c.execute(_SQL.history, (code,))]
        )

    async def changes_since(self, seq: int, limit: int = 1000) -> list[StatusChange]:
        return await self._read(
            lambda c: [rows.change_from_row(r) for r in c.execute(_SQL.changes_since, (seq, limit))]
        )

    async def last_change(self) -> int:
        def query(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT max(seq) FROM status_history").fetchone()
            return int(row[0] or 0)

        return await self._read(query)

    async def find_by_holder(self, holder_key: bytes, type: str) -> list[ProofStatus]:
        args = (holder_key, type, Status.VALID.value)
        return await self._read(
            lambda c: [rows.status_from_row(r) for r in c.execute(_SQL.find_by_holder, args)]
        )

    async def proofs_of_holder(self, holder_key: bytes) -> list[ProofStatus]:
        return await self._read(
            lambda c: [
                rows.status_from_row(r) for r in c.execute(_SQL.holder_proofs, (holder_key,))
            ]
        )

    async def status_slot(self, code: str) -> int:
        def query(conn: sqlite3.Connection) -> int | None:
            row = conn.execute(_SQL.slot_of, (code,)).fetchone()
            return None if row is None else int(row[0])

        known = await self._read(query)
        if known is not None:
            return known

        def work(conn: sqlite3.Connection) -> int | None:
            conn.execute(_SQL.give_slot, (code,))
            return query(conn)

        self._integrity.refuse_writes()
        given: int | None = await asyncio.shield(self._writer.submit(work))
        if given is None:
            raise ProofNotFound("no proof has that code")
        return given

    async def slots_since(self, index: int, limit: int = 10_000) -> list[tuple[int, Status]]:
        return await self._read(
            lambda c: [(int(i), Status(s)) for i, s in c.execute(_SQL.slots_since, (index, limit))]
        )

    async def slots_of(self, codes: list[str]) -> dict[str, int]:
        def query(conn: sqlite3.Connection) -> dict[str, int]:
            found: dict[str, int] = {}
            for start in range(0, len(codes), 500):
                chunk = codes[start : start + 500]
                marks = ",".join("?" * len(chunk))
                found.update(
                    conn.execute(
                        f"SELECT code, idx FROM status_slots WHERE code IN ({marks})",  # noqa: S608
                        chunk,
                    ).fetchall()
                )
            return found

        return await self._read(query)

    async def add_consent(self, consent: Consent) -> None:
        self._integrity.refuse_writes()
        row = consent_row(consent)
        await asyncio.shield(self._writer.submit(lambda c: c.execute(_CONSENTS.insert, row)))

    async def use_consent(self, consent_id: str, now: float) -> Consent:
        def work(conn: sqlite3.Connection) -> Consent:
            found = conn.execute(_CONSENTS.select, (consent_id,)).fetchone()
            before = None if found is None else consent_from_row(found)
            if conn.execute(_CONSENTS.use, (consent_id, now)).rowcount != 1 or before is None:
                raise why_not_usable(before, now)
            return before

        self._integrity.refuse_writes()
        used: Consent = await asyncio.shield(self._writer.submit(work))
        return used

    async def consents_of(self, holder_key: bytes) -> list[Consent]:
        return await self._read(
            lambda c: [consent_from_row(r) for r in c.execute(_CONSENTS.of_holder, (holder_key,))]
        )

    async def revoke_consent(self, consent_id: str, holder_key: bytes, now: float) -> None:
        def work(conn: sqlite3.Connection) -> None:
            if conn.execute(_CONSENTS.revoke, (now, consent_id, holder_key)).rowcount != 1:
                raise ConsentNotFound("the holder has no such consent in force")

        self._integrity.refuse_writes()
        await asyncio.shield(self._writer.submit(work))

    async def idempotent_result(self, client_id: str, key: str) -> IdempotentResult | None:
        def query(conn: sqlite3.Connection) -> IdempotentResult | None:
            row = conn.execute(_SQL.idempotent_result, (client_id, key)).fetchone()
            if row is None:
                return None
            return IdempotentResult(bytes(row[0]), tuple(row[1].split(",")))

        return await self._read(query)

    async def count(self) -> int:
        return await self._read(
            lambda c: int(c.execute("SELECT count(*) FROM proofs").fetchone()[0])
        )

    async def count_failure(self, charge: FailureCharge) -> BucketLevels:
        # A job of the writer (not a connection of its own): it commits with whatever
        # else is queued, and the writer's checkpoints keep the WAL from growing.
        self._integrity.refuse_writes()
        levels: BucketLevels = await asyncio.shield(
            self._writer.submit(lambda conn: lookup_failures.count_failure(conn, charge))
        )
        return levels

    async def create_request(self, request: VerificationRequest, operator: str) -> None:
        self._integrity.refuse_writes()
        event = registered(request, operator)
        await asyncio.shield(
            self._writer.submit(lambda conn: request_sql.create(conn, request, event))
        )

    async def change_request(
        self,
        step: Transition,
        deadlines: Deadlines,
        proofs: list[ProofRecord] | None = None,
    ) -> VerificationRequest:
        self._integrity.refuse_writes()
        answer = proofs or []
        result: VerificationRequest = await asyncio.shield(
            self._writer.submit(
                lambda conn: request_sql.change(conn, step, deadlines, answer, self._cipher)
            )
        )
        return result

    async def get_request(
        self, request_id: str
    ) -> tuple[VerificationRequest, list[RequestEvent]] | None:
        return await self._read(lambda c: request_sql.get(c, request_id))

    async def list_requests(self, query: RequestQuery) -> list[VerificationRequest]:
        return await self._read(lambda c: request_sql.listing(c, query))

    async def overdue_unannounced(self, now: float, limit: int) -> list[VerificationRequest]:
        return await self._read(lambda c: request_sql.overdue_unannounced(c, now, limit))

    async def mark_announced(self, request_id: str, at: float) -> None:
        args = (at, request_id)
        await asyncio.shield(
            self._writer.submit(lambda conn: conn.execute(request_sql.SQL.mark_announced, args))
        )

    async def count_overdue(self, now: float) -> int:
        return await self._read(lambda c: request_sql.count_overdue(c, now))

    @property
    def corruption(self) -> str | None:
        return self._integrity.corruption

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
