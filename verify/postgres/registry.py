"""The city-scale registry: one PostgreSQL database shared by every gateway.

:class:`PostgresRegistry` runs on asyncpg (the serving path is asynchronous) with a pool
of explicit size and timeouts. It keeps the embedded registry's rules:

- **Durable on return.** ``register`` and ``change_status`` return only after COMMIT,
  with ``synchronous_commit`` at least ``on`` (where the database says ``off``, the
  pool's sessions start with it ``on``),
  so a 201 or a 200 is never answered for a write a crash could lose.
- **Group commit.** Concurrent registrations queue for one writer task, which commits
  everything queued as one transaction, each registration in its own savepoint: one
  COMMIT (one WAL flush) serves many sealings, and a conflicting registration fails only
  its own caller.
- **Lifecycle in the transaction.** A status change locks the proof's row
  (``SELECT ... FOR UPDATE``) and checks the transition inside the transaction that
  writes it, so two racing issuers cannot both leave the same state.
- **A change log that never skips.** See :data:`_CHANGE_LOG_ORDER` below.
- **Documents encrypted at rest** with the home's :class:`~sealgate.verify.at_rest.DocumentCipher`;
  holders appear only masked and as a keyed hash, as in SQLite.

The directory (:mod:`.directory`) and the migrations (:mod:`.schema`) use psycopg 3,
synchronously. Both drivers read the usual libpq settings (``PGPASSWORD``,
``~/.pgpass``, ``sslmode`` in the URL), so no password needs to be written in a URL.

Driver errors are translated where they enter: asyncpg's and psycopg's exceptions never
leave this package; failures of the store become :class:`RegistryUnavailable` (or
:class:`DirectoryUnavailable`), constraint violations the domain's conflicts. Messages
name the failure's class and SQLSTATE, never the values involved; damaged data
(SQLSTATE XX001, XX002) becomes :class:`RegistryCorrupted`, with the server's message,
which names a block and a relation, never a row's values.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from sealgate.errors import ConfigError
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
from sealgate.verify.integrity import CorruptionWatch
from sealgate.verify.lookup_failures import BucketLevels, FailureCharge, FailureLedger
from sealgate.verify.postgres import requests as request_sql
from sealgate.verify.postgres.lookup_failures import COUNT_FAILURE
from sealgate.verify.postgres.notices import PostgresNotices
from sealgate.verify.postgres.schema import (
    ACQUIRE_TIMEOUT,
    COMMAND_TIMEOUT,
    CONNECT_TIMEOUT,
    IDLE_LIFETIME,
    MAX_CONNECTIONS,
    MIGRATIONS,
    MIN_CONNECTIONS,
    applied_version_async,
    failure,
    is_postgres_url,
    outdated,
    redacted,
)
from sealgate.verify.registry import (
    CodeTaken,
    IdempotencyConflict,
    IdempotentRequest,
    IdempotentResult,
    ProofNotFound,
    ProofRecord,
    ProofStatus,
    Registry,
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

_SQL = rows.RegistryQueries.written_with(lambda n: f"${n}")
_CONSENTS = ConsentQueries.written_with(lambda n: f"${n}")
_UPDATE_STATUS = f"{_SQL.update_status} RETURNING {rows.STATUS_COLUMNS}"

# _CHANGE_LOG_ORDER. Every gateway polls ``changes_since(last_seen_seq)`` to drop stale
# copies, so a change that a poll skips stays stale in that gateway's cache. A sequence
# hands out numbers when a row is inserted but the row becomes visible when its
# transaction commits, and commits do not come in number order: a poller could see seq
# 8 committed while seq 7 is still in flight, move its cursor to 8, and never see 7.
#
# So change-log writers take this table lock before anything else in their transaction:
# EXCLUSIVE mode conflicts with itself and with the row locks of inserts, but not with
# the ACCESS SHARE of readers. Seq numbers are therefore drawn, and committed, by one
# transaction at a time, and PostgreSQL releases a transaction's locks only after its
# commit is visible; every seq that will ever commit below a visible one is visible
# too, and a cursor can safely jump to the largest seq it saw. Serialising status
# changes this way costs one commit at a time for them alone; they are rare next to
# registrations and lookups, which never take the lock. Taking the lock first also
# orders the row locks below it, so racing changes never deadlock.
_CHANGE_LOG_ORDER = "LOCK TABLE status_history IN EXCLUSIVE MODE"

# What means "the store failed" rather than "this request conflicts".
# data_corrupted, index_corrupted: PostgreSQL found pages it cannot read as they should
# be; no retry mends them (sealgate.verify.integrity).
_CORRUPTION_STATES = frozenset({"XX001", "XX002"})

_STORE_FAILURES: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    # a connection left mid-operation by a server that died ("cannot switch to state")
    asyncpg.exceptions.InternalClientError,
    OSError,
    TimeoutError,
)


@dataclass(slots=True)
class _Registration:
    rows: list[tuple[Any, ...]]
    idempotency: IdempotentRequest | None
    codes: str
    at: float
    future: asyncio.Future[None]
    error: BaseException | None = field(default=None)


class _GroupCommitter:
    """One task that commits every queued registration in one transaction.

    While one group commits, new registrations queue up and form the next group, so the
    number of commits follows the database's speed rather than the request rate.
    """

    MAX_GROUP = 512  # registrations in one transaction
    MAX_GROUP_ROWS = 4096  # proofs in one transaction (a batch counts for its size)

    def __init__(self, registry: PostgresRegistry) -> None:
        self._registry = registry
        self._queue: asyncio.Queue[_Registration | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def alive(self) -> bool:
        return not self._closed and (self._task is None or not self._task.done())

    def submit(self, job: _Registration) -> None:
        if not self.alive:
            raise RegistryUnavailable("the registry writer has stopped")
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="registry-group-commit")
        self._queue.put_nowait(job)

    async def close(self) -> None:
        """Commit what is queued, then stop."""
        self._closed = True
        if self._task is not None and not self._task.done():
            self._queue.put_nowait(None)
            await self._task

    async def _run(self) -> None:
        group: list[_Registration] = []
        try:
            stop = False
            while not stop:
                first = await self._queue.get()
                if first is None:
                    return
                group, stop = gather_group(
                    first,
                    self._queue.get_nowait,
                    asyncio.QueueEmpty,
                    max_jobs=self.MAX_GROUP,
                    weight=lambda job: len(job.rows),  # a batch counts for its size
                    max_weight=self.MAX_GROUP_ROWS,
                )
                await self._commit(group)
        finally:
            # Whatever ended the task (cancelled with the loop, most likely), nobody may
            # wait forever: a group cut off mid-commit has an unknown outcome, and
            # whatever is still queued was never tried.
            self._closed = True
            stopped = RegistryUnavailable("the registry writer has stopped")
            while not self._queue.empty():
                queued = self._queue.get_nowait()
                if queued is not None:
                    group.append(queued)
            for job in group:
                if not job.future.done():
                    job.future.set_exception(stopped)

    async def _commit(self, group: list[_Registration]) -> None:
        try:
            async with self._registry._connection("registration") as conn, conn.transaction():
                for job in group:
                    job.error = None
                    try:
                        async with conn.transaction():  # a savepoint: this job alone
                            await _insert_registration(conn, job)
                    except _STORE_FAILURES:
                        raise  # the store failed: the whole group fails below
                    except Exception as exc:
                        # This registration alone is refused (a taken code, a reused
                        # key, or a bug in it); its neighbours in the group still commit.
                        job.error = exc
        except Exception as exc:
            # Nothing of the group was committed, whatever the jobs had reached.
            outcome = (
                exc
                if isinstance(exc, RegistryError)
                else RegistryUnavailable(failure("registration", exc))
            )
            for job in group:
                job.error = outcome
        for job in group:
            if job.future.done():  # the caller was cancelled; the write stands regardless
                continue
            if job.error is None:
                job.future.set_result(None)
            else:
                job.future.set_exception(job.error)


async def _insert_registration(conn: Any, job: _Registration) -> None:
    if job.idempotency is not None:
        try:
            await conn.execute(
                _SQL.insert_idempotency,
                job.idempotency.client_id,
                job.idempotency.key,
                job.idempotency.request_digest,
                job.codes,
                job.at,
            )
        except asyncpg.UniqueViolationError as exc:
            raise IdempotencyConflict("idempotency key already used") from exc
    try:
        await conn.executemany(_SQL.insert_proof, job.rows)
    except asyncpg.UniqueViolationError as exc:
        raise CodeTaken("verification code already registered") from exc


class PostgresRegistry(Registry, RequestBook, FailureLedger, PostgresNotices):
    """:class:`Registry` on PostgreSQL; see the module docstring.

    The pool opens on first use, so a gateway starts (and reports not ready) while the
    database is away, and recovers without a restart when it returns.
    """

    def __init__(
        self,
        url: str,
        cipher: DocumentCipher,
        *,
        min_connections: int = MIN_CONNECTIONS,
        max_connections: int = MAX_CONNECTIONS,
        connect_timeout: float = CONNECT_TIMEOUT,
        acquire_timeout: float = ACQUIRE_TIMEOUT,
        command_timeout: float = COMMAND_TIMEOUT,
    ) -> None:
        if not is_postgres_url(url):
            raise ConfigError("a PostgreSQL registry needs a postgresql:// URL")
        self._url = url
        self._cipher = cipher
        self._min = min_connections
        self._max = max_connections
        self._connect_timeout = connect_timeout
        self._acquire_timeout = acquire_timeout
        self._command_timeout = command_timeout
        self._pool: Any = None
        self._opening = asyncio.Lock()
        self._writer = _GroupCommitter(self)
        self._integrity = CorruptionWatch("the PostgreSQL registry")
        self._closed = False

    def __repr__(self) -> str:
        return f"PostgresRegistry({redacted(self._url)!r})"

    async def _open_pool(self) -> Any:
        if self._closed:
            raise RegistryUnavailable("the registry is closed")
        if self._pool is not None:
            return self._pool
        async with self._opening:
            if self._pool is None:
                self._pool = await self._create_pool()
        return self._pool

    async def _create_pool(self) -> Any:
        try:
            probe = await asyncpg.connect(self._url, timeout=self._connect_timeout)
            try:
                found = await applied_version_async(probe)
                durable = await probe.fetchval("SHOW synchronous_commit") != "off"
            finally:
                await probe.close()
        except _STORE_FAILURES as exc:
            raise RegistryUnavailable(failure("connecting to the registry", exc)) from exc
        # A newer schema is accepted: migrations only add, so the gateways of the previous
        # release keep running while the next one is rolled out.
        if found < len(MIGRATIONS):
            raise outdated(found)
        # COMMIT must wait for the WAL flush: a 201 depends on it. Where the database or
        # role says synchronous_commit = off, the pool's sessions start with it on (as a
        # startup setting, which the pool's RESET ALL between uses keeps). Stronger
        # settings (remote_write, remote_apply with synchronous standbys) are left alone.
        settings = {} if durable else {"synchronous_commit": "on"}
        try:
            return await asyncpg.create_pool(
                self._url,
                min_size=self._min,
                max_size=self._max,
                timeout=self._connect_timeout,
                command_timeout=self._command_timeout,
                max_inactive_connection_lifetime=IDLE_LIFETIME,
                server_settings=settings,
            )
        except _STORE_FAILURES as exc:
            raise RegistryUnavailable(failure("connecting to the registry", exc)) from exc

    @contextlib.asynccontextmanager
    async def _connection(self, what: str) -> AsyncIterator[Any]:
        """A pooled connection; the driver's failures come out as RegistryUnavailable."""
        pool = await self._open_pool()
        try:
            async with pool.acquire(timeout=self._acquire_timeout) as conn:
                yield conn
        except _STORE_FAILURES as exc:
            if (state := getattr(exc, "sqlstate", None)) in _CORRUPTION_STATES:
                # The server's own message (which block of which relation), never values.
                raise self._integrity.noticed(
                    f"registry {what}", f"{exc} (SQLSTATE {state})"
                ) from exc
            raise RegistryUnavailable(failure(f"registry {what}", exc)) from exc

    async def register(
        self, proofs: list[ProofRecord], idempotency: IdempotentRequest | None = None
    ) -> None:
        job = _Registration(
            rows=[rows.proof_row(p, self._cipher) for p in proofs],
            idempotency=idempotency,
            codes=",".join(p.code for p in proofs),
            at=time.time(),
            future=asyncio.get_running_loop().create_future(),
        )
        self._writer.submit(job)
        # Shielded: once queued the write happens; a cancelled caller must not leave the
        # future unobserved nor believe it was not written.
        await asyncio.shield(job.future)

    async def get(self, code: str) -> ProofRecord | None:
        async with self._connection("read") as conn:
            row = await conn.fetchrow(_SQL.select_proof, code)
        return None if row is None else rows.proof_from_row(tuple(row), self._cipher)

    async def get_status(self, code: str) -> ProofStatus | None:
        async with self._connection("read") as conn:
            row = await conn.fetchrow(_SQL.select_status, code)
        return None if row is None else rows.status_from_row(tuple(row))

    async def change_status(self, change: StatusChangeRequest) -> ProofStatus:
        # Shielded like register: a caller cancelled mid-COMMIT must not leave the change
        # half-known; it completes (or fails) as a whole either way.
        return await asyncio.shield(self._change_status(change))

    async def _change_status(self, change: StatusChangeRequest) -> ProofStatus:
        async with self._connection("status change") as conn, conn.transaction():
            await conn.execute(_CHANGE_LOG_ORDER)
            row = await conn.fetchrow(_SQL.select_status + " FOR UPDATE", change.code)
            successor = None
            if change.superseded_by is not None:
                found = await conn.fetchrow(_SQL.successor, change.superseded_by, change.code)
                successor = rows.successor_from_row(None if found is None else tuple(found))
            current = check_status_change(
                change, None if row is None else rows.status_from_row(tuple(row)), successor
            )
            updated = await conn.fetchrow(_UPDATE_STATUS, *rows.status_update_row(change))
            await conn.execute(_SQL.insert_change, *rows.change_row(current, change))
        return rows.status_from_row(tuple(updated))

    async def history(self, code: str) -> list[StatusChange]:
        async with self._connection("read") as conn:
            found = await conn.fetch(_SQL.history, code)
        return [rows.change_from_row(tuple(r)) for r in found]

    async def changes_since(self, seq: int, limit: int = 1000) -> list[StatusChange]:
        async with self._connection("read") as conn:
            found = await conn.fetch(_SQL.changes_since, seq, limit)
        return [rows.change_from_row(tuple(r)) for r in found]

    async def last_change(self) -> int:
        async with self._connection("read") as conn:
            return int(await conn.fetchval("SELECT coalesce(max(seq), 0) FROM status_history"))

    async def find_by_holder(self, holder_key: bytes, type: str) -> list[ProofStatus]:
        async with self._connection("read") as conn:
            found = await conn.fetch(_SQL.find_by_holder, holder_key, type, Status.VALID.value)
        return [rows.status_from_row(tuple(r)) for r in found]

    async def proofs_of_holder(self, holder_key: bytes) -> list[ProofStatus]:
        async with self._connection("read") as conn:
            found = await conn.fetch(_SQL.holder_proofs, holder_key)
        return [rows.status_from_row(tuple(r)) for r in found]

    async def status_slot(self, code: str) -> int:
        async with self._connection("read") as conn:
            known = await conn.fetchval(_SQL.slot_of, code)
        if known is not None:
            return int(known)
        self._integrity.refuse_writes()
        async with self._connection("status slot") as conn, conn.transaction():
            await conn.execute(_SQL.give_slot, code)
            given = await conn.fetchval(_SQL.slot_of, code)
        if given is None:
            raise ProofNotFound("no proof has that code")
        return int(given)

    async def slots_since(self, index: int, limit: int = 10_000) -> list[tuple[int, Status]]:
        async with self._connection("read") as conn:
            found = await conn.fetch(_SQL.slots_since, index, limit)
        return [(int(i), Status(s)) for i, s in found]

    async def slots_of(self, codes: list[str]) -> dict[str, int]:
        async with self._connection("read") as conn:
            found = await conn.fetch(
                "SELECT code, idx FROM status_slots WHERE code = ANY($1::text[])", codes
            )
        return {str(c): int(i) for c, i in found}

    async def add_consent(self, consent: Consent) -> None:
        self._integrity.refuse_writes()
        async with self._connection("consent") as conn:
            await conn.execute(_CONSENTS.insert, *consent_row(consent))

    async def use_consent(self, consent_id: str, now: float) -> Consent:
        self._integrity.refuse_writes()
        async with self._connection("consent") as conn, conn.transaction():
            found = await conn.fetchrow(_CONSENTS.select + " FOR UPDATE", consent_id)
            before = None if found is None else consent_from_row(tuple(found))
            if await conn.execute(_CONSENTS.use, consent_id, now) != "UPDATE 1" or not before:
                raise why_not_usable(before, now)
        return before

    async def consents_of(self, holder_key: bytes) -> list[Consent]:
        async with self._connection("read") as conn:
            found = await conn.fetch(_CONSENTS.of_holder, holder_key)
        return [consent_from_row(tuple(r)) for r in found]

    async def revoke_consent(self, consent_id: str, holder_key: bytes, now: float) -> None:
        self._integrity.refuse_writes()
        async with self._connection("consent") as conn:
            done = await conn.execute(_CONSENTS.revoke, now, consent_id, holder_key)
        if done != "UPDATE 1":
            raise ConsentNotFound("the holder has no such consent in force")

    async def idempotent_result(self, client_id: str, key: str) -> IdempotentResult | None:
        async with self._connection("read") as conn:
            row = await conn.fetchrow(_SQL.idempotent_result, client_id, key)
        if row is None:
            return None
        return IdempotentResult(bytes(row[0]), tuple(str(row[1]).split(",")))

    async def count(self) -> int:
        async with self._connection("read") as conn:
            return int(await conn.fetchval("SELECT count(*) FROM proofs"))

    async def count_failure(self, charge: FailureCharge) -> BucketLevels:
        async with self._connection("failed lookup") as conn:
            level, refused, empty = await conn.fetchrow(
                COUNT_FAILURE,
                charge.client_id,
                charge.weight,
                charge.capacity,
                charge.drain_per_second,
                charge.global_burst,
                charge.global_per_second,
            )
        return BucketLevels(float(level), bool(refused), bool(empty))

    async def create_request(self, request: VerificationRequest, operator: str) -> None:
        event = registered(request, operator)
        await asyncio.shield(
            self._write("request", lambda c: request_sql.create(c, request, event))
        )

    async def change_request(
        self,
        step: Transition,
        deadlines: Deadlines,
        proofs: list[ProofRecord] | None = None,
    ) -> VerificationRequest:
        answer = proofs or []
        result: VerificationRequest = await asyncio.shield(
            self._write(
                "request change",
                lambda c: request_sql.change(c, step, deadlines, answer, self._cipher),
            )
        )
        return result

    async def _write(self, what: str, work: Any) -> Any:
        async with self._connection(what) as conn:
            return await work(conn)

    async def get_request(
        self, request_id: str
    ) -> tuple[VerificationRequest, list[RequestEvent]] | None:
        async with self._connection("read") as conn:
            return await request_sql.get(conn, request_id)

    async def list_requests(self, query: RequestQuery) -> list[VerificationRequest]:
        async with self._connection("read") as conn:
            return await request_sql.listing(conn, query)

    async def overdue_unannounced(self, now: float, limit: int) -> list[VerificationRequest]:
        async with self._connection("read") as conn:
            return await request_sql.overdue_unannounced(conn, now, limit)

    async def mark_announced(self, request_id: str, at: float) -> None:
        async with self._connection("write") as conn:
            await conn.execute(request_sql.SQL.mark_announced, at, request_id)

    async def count_overdue(self, now: float) -> int:
        async with self._connection("read") as conn:
            return int(await conn.fetchval(request_sql.SQL.count_overdue, now))

    @property
    def corruption(self) -> str | None:
        return self._integrity.corruption

    async def ping(self) -> None:
        if not self._writer.alive:
            raise RegistryUnavailable("the registry writer has stopped")
        async with self._connection("ping") as conn:
            await conn.fetchval("SELECT 1")

    async def close(self) -> None:
        if self._closed:
            return
        await self._writer.close()
        self._closed = True
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                async with asyncio.timeout(self._command_timeout):
                    await pool.close()
            except Exception:  # closing failed or hung: drop the connections regardless
                pool.terminate()
