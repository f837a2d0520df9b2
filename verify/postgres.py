"""The city-scale registry and directory: one PostgreSQL database shared by every gateway.

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

:class:`PostgresDirectory` uses psycopg 3, synchronously: the :class:`Directory`
interface is blocking by design (the CLI calls it directly, the gateway through
``asyncio.to_thread`` for rare, cached reads), and a blocking driver serves it as it is,
where asyncpg would need an event loop of its own in every calling thread. The
migrations use the same driver, since ``sealgate db migrate`` and ``sealgate init`` are
blocking commands. Both drivers read the usual libpq settings (``PGPASSWORD``,
``~/.pgpass``, ``sslmode`` in the URL), so no password needs to be written in a URL.

Driver errors are translated where they enter: asyncpg's and psycopg's exceptions never
leave this module; failures of the store become :class:`RegistryUnavailable` (or
:class:`DirectoryUnavailable`), constraint violations the domain's conflicts. Messages
name the failure's class and SQLSTATE, never the values involved.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psycopg
import psycopg.errors

from sealgate.errors import ConfigError
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
    RegistryError,
    RegistryUnavailable,
    Status,
    StatusChange,
    StatusChangeRequest,
    WrongOffice,
)

# The row layout is the SQLite registry's, column for column, so the two backends share
# one mapping between records and rows.
from sealgate.verify.sqlite import (
    _HISTORY_COLUMNS,
    _PROOF_COLUMNS,
    _STATUS_COLUMNS,
    _change_from_row,
    _proof_from_row,
    _proof_row,
    _status_from_row,
)

SCHEMES = ("postgresql", "postgres")

# Versioned schema: migration N (1-based) is recorded in schema_migrations when applied.
# Append, never edit: a database that has N applied never runs it again.
MIGRATIONS: tuple[tuple[str, str], ...] = (
    (
        "registry, change log and directory",
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
            holder_key BYTEA NOT NULL,
            valid_from TEXT NOT NULL,
            valid_until TEXT,
            expires_at DOUBLE PRECISION,
            issued_at DOUBLE PRECISION NOT NULL,
            status TEXT NOT NULL,
            status_changed_at DOUBLE PRECISION NOT NULL,
            superseded_by TEXT,
            signer_client TEXT NOT NULL,
            document BYTEA NOT NULL,
            version INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX proofs_holder ON proofs (holder_key, type);
        CREATE TABLE idempotency_keys (
            client_id TEXT NOT NULL,
            key TEXT NOT NULL,
            request_digest BYTEA NOT NULL,
            codes TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (client_id, key)
        );
        -- seq comes from an identity sequence with the default CACHE 1: a session-level
        -- cache would hand out numbers out of order across sessions, which the change
        -- log's ordering (see the registry) must not have.
        CREATE TABLE status_history (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            code TEXT NOT NULL REFERENCES proofs (code),
            from_status TEXT NOT NULL,
            to_status TEXT NOT NULL,
            reason TEXT NOT NULL,
            superseded_by TEXT,
            client_id TEXT NOT NULL,
            changed_at DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX status_history_code ON status_history (code, seq);
        CREATE TABLE seals (
            seal_id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            unit_name TEXT NOT NULL,
            unit_code TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL
        );
        CREATE TABLE seal_keys (
            seal_id TEXT NOT NULL REFERENCES seals (seal_id),
            version INTEGER NOT NULL,
            key_label TEXT NOT NULL UNIQUE,
            certificate BYTEA NOT NULL,
            state TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (seal_id, version)
        );
        CREATE TABLE clients (
            client_id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            role TEXT NOT NULL,
            office TEXT,
            token_digest BYTEA NOT NULL UNIQUE,
            created_at DOUBLE PRECISION NOT NULL
        );
        CREATE TABLE client_seals (
            client_id TEXT NOT NULL REFERENCES clients (client_id),
            seal_id TEXT NOT NULL REFERENCES seals (seal_id),
            PRIMARY KEY (client_id, seal_id)
        );
        CREATE TABLE client_purposes (
            client_id TEXT NOT NULL REFERENCES clients (client_id),
            purpose TEXT NOT NULL,
            PRIMARY KEY (client_id, purpose)
        );
        CREATE TABLE roots (
            fingerprint BYTEA PRIMARY KEY,
            certificate BYTEA NOT NULL,
            key_label TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL
        );
        """,
    ),
)

# Any fixed number works; it only has to be the same in every sealgate that migrates.
_MIGRATION_LOCK = 0x5EA19A7E

CONNECT_TIMEOUT = 5.0  # seconds to open a connection
ACQUIRE_TIMEOUT = 5.0  # seconds to wait for a free pooled connection
COMMAND_TIMEOUT = 10.0  # seconds for one statement
MIN_CONNECTIONS = 1
MAX_CONNECTIONS = 10  # per gateway process; size the server's max_connections to match
IDLE_LIFETIME = 300.0  # a pooled connection idle this long is closed

_INSERT_PROOF = (
    f"INSERT INTO proofs ({_PROOF_COLUMNS})"  # noqa: S608 - constant column list
    f" VALUES ({', '.join(f'${i}' for i in range(1, 19))})"
)
_SELECT_PROOF = f"SELECT {_PROOF_COLUMNS} FROM proofs WHERE code = $1"  # noqa: S608
_SELECT_STATUS = f"SELECT {_STATUS_COLUMNS} FROM proofs WHERE code = $1"  # noqa: S608
_UPDATE_STATUS = (
    "UPDATE proofs SET status = $1, status_changed_at = $2, superseded_by = $3,"  # noqa: S608
    f" version = version + 1 WHERE code = $4 RETURNING {_STATUS_COLUMNS}"
)

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
_STORE_FAILURES: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    # a connection left mid-operation by a server that died ("cannot switch to state")
    asyncpg.exceptions.InternalClientError,
    OSError,
    TimeoutError,
)


def is_postgres_url(url: str) -> bool:
    return urlsplit(url).scheme.lower() in SCHEMES


def redacted(url: str) -> str:
    """The URL with any password replaced, for messages and output."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def _failure(what: str, exc: BaseException) -> str:
    state = getattr(exc, "sqlstate", None)
    return f"{what} failed: {type(exc).__name__}" + (f" (SQLSTATE {state})" if state else "")


class SchemaOutdated(RegistryUnavailable):
    """The database lacks migrations this sealgate needs: run ``sealgate db migrate``."""


# --- migrations ------------------------------------------------------------------------


def migrate(url: str, *, connect_timeout: float = CONNECT_TIMEOUT) -> int:
    """Apply the missing migrations in one transaction; returns the schema version.

    Safe to run again (applied migrations are skipped) and from several machines at once
    (an advisory lock makes the second wait and then find nothing to do).
    """
    try:
        with (
            psycopg.connect(url, autocommit=True, connect_timeout=int(connect_timeout)) as conn,
            conn.transaction(),
        ):
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY,"
                " description TEXT NOT NULL,"
                " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            applied = {v for (v,) in conn.execute("SELECT version FROM schema_migrations")}
            for number, (description, script) in enumerate(MIGRATIONS, start=1):
                if number in applied:
                    continue
                conn.execute(script.encode())  # several statements, no parameters
                conn.execute(
                    "INSERT INTO schema_migrations (version, description) VALUES (%s, %s)",
                    (number, description),
                )
            return max(applied | {len(MIGRATIONS)})
    except psycopg.OperationalError as exc:
        # libpq's message says which host and why (refused, auth failed); never a password.
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise RegistryUnavailable(f"cannot migrate {redacted(url)}: {reason}") from exc
    except psycopg.Error as exc:
        raise RegistryUnavailable(_failure(f"migrating {redacted(url)}", exc)) from exc


def schema_version(url: str, *, connect_timeout: float = CONNECT_TIMEOUT) -> int:
    """The newest migration applied to the database (0 for none)."""
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=int(connect_timeout)) as conn:
            return _applied_version(conn.execute)
    except psycopg.Error as exc:
        raise RegistryUnavailable(_failure(f"reading the schema of {redacted(url)}", exc)) from exc


def _applied_version(execute: Any) -> int:
    row = execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if not row[0]:
        return 0
    return int(execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0])


def _outdated(found: int) -> SchemaOutdated:
    return SchemaOutdated(
        f"the database schema is at version {found}, this sealgate needs {len(MIGRATIONS)}:"
        " run 'sealgate db migrate'"
    )


# --- registry --------------------------------------------------------------------------


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
                group, rows = [first], len(first.rows)
                while len(group) < self.MAX_GROUP and rows < self.MAX_GROUP_ROWS:
                    try:
                        job = self._queue.get_nowait()
                    except asyncio.QueueEmpty:
                        break
                    if job is None:
                        stop = True
                        break
                    group.append(job)
                    rows += len(job.rows)
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
            failure = (
                exc
                if isinstance(exc, RegistryError)
                else RegistryUnavailable(_failure("registration", exc))
            )
            for job in group:
                job.error = failure
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
                "INSERT INTO idempotency_keys (client_id, key, request_digest, codes,"
                " created_at) VALUES ($1, $2, $3, $4, $5)",
                job.idempotency.client_id,
                job.idempotency.key,
                job.idempotency.request_digest,
                job.codes,
                job.at,
            )
        except asyncpg.UniqueViolationError as exc:
            raise IdempotencyConflict("idempotency key already used") from exc
    try:
        await conn.executemany(_INSERT_PROOF, job.rows)
    except asyncpg.UniqueViolationError as exc:
        raise CodeTaken("verification code already registered") from exc


class PostgresRegistry(Registry):
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
                found = await _applied_version_async(probe)
                durable = await probe.fetchval("SHOW synchronous_commit") != "off"
            finally:
                await probe.close()
        except _STORE_FAILURES as exc:
            raise RegistryUnavailable(_failure("connecting to the registry", exc)) from exc
        # A newer schema is accepted: migrations only add, so the gateways of the previous
        # release keep running while the next one is rolled out.
        if found < len(MIGRATIONS):
            raise _outdated(found)
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
            raise RegistryUnavailable(_failure("connecting to the registry", exc)) from exc

    @contextlib.asynccontextmanager
    async def _connection(self, what: str) -> AsyncIterator[Any]:
        """A pooled connection; the driver's failures come out as RegistryUnavailable."""
        pool = await self._open_pool()
        try:
            async with pool.acquire(timeout=self._acquire_timeout) as conn:
                yield conn
        except _STORE_FAILURES as exc:
            raise RegistryUnavailable(_failure(f"registry {what}", exc)) from exc

    async def register(
        self, proofs: list[ProofRecord], idempotency: IdempotentRequest | None = None
    ) -> None:
        job = _Registration(
            rows=[_proof_row(p, self._cipher) for p in proofs],
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
            row = await conn.fetchrow(_SELECT_PROOF, code)
        return None if row is None else _proof_from_row(tuple(row), self._cipher)

    async def get_status(self, code: str) -> ProofStatus | None:
        async with self._connection("read") as conn:
            row = await conn.fetchrow(_SELECT_STATUS, code)
        return None if row is None else _status_from_row(tuple(row))

    async def change_status(self, change: StatusChangeRequest) -> ProofStatus:
        # Shielded like register: a caller cancelled mid-COMMIT must not leave the change
        # half-known; it completes (or fails) as a whole either way.
        return await asyncio.shield(self._change_status(change))

    async def _change_status(self, change: StatusChangeRequest) -> ProofStatus:
        async with self._connection("status change") as conn, conn.transaction():
            await conn.execute(_CHANGE_LOG_ORDER)
            row = await conn.fetchrow(_SELECT_STATUS + " FOR UPDATE", change.code)
            if row is None:
                raise ProofNotFound("no proof has that code")
            current = _status_from_row(tuple(row))
            if current.unit_code != change.office:
                raise WrongOffice("the proof was issued by another office")
            expired = current.expires_at is not None and change.at >= current.expires_at
            check_transition(
                current.status, change.status, expired=expired, superseded_by=change.superseded_by
            )
            if change.superseded_by is not None:
                await _check_supersession(conn, change.code, change.superseded_by, change.at)
            updated = await conn.fetchrow(
                _UPDATE_STATUS,
                change.status.value,
                change.at,
                change.superseded_by,
                change.code,
            )
            await conn.execute(
                "INSERT INTO status_history (code, from_status, to_status, reason,"
                " superseded_by, client_id, changed_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                change.code,
                current.status.value,
                change.status.value,
                change.reason,
                change.superseded_by,
                change.client_id,
                change.at,
            )
        return _status_from_row(tuple(updated))

    async def history(self, code: str) -> list[StatusChange]:
        async with self._connection("read") as conn:
            rows = await conn.fetch(
                f"SELECT {_HISTORY_COLUMNS} FROM status_history WHERE code = $1 ORDER BY seq",  # noqa: S608
                code,
            )
        return [_change_from_row(tuple(r)) for r in rows]

    async def changes_since(self, seq: int, limit: int = 1000) -> list[StatusChange]:
        async with self._connection("read") as conn:
            rows = await conn.fetch(
                f"SELECT {_HISTORY_COLUMNS} FROM status_history WHERE seq > $1"  # noqa: S608
                " ORDER BY seq LIMIT $2",
                seq,
                limit,
            )
        return [_change_from_row(tuple(r)) for r in rows]

    async def last_change(self) -> int:
        async with self._connection("read") as conn:
            return int(await conn.fetchval("SELECT coalesce(max(seq), 0) FROM status_history"))

    async def find_by_holder(self, holder_key: bytes, type: str) -> list[ProofStatus]:
        async with self._connection("read") as conn:
            rows = await conn.fetch(
                f"SELECT {_STATUS_COLUMNS} FROM proofs"  # noqa: S608
                " WHERE holder_key = $1 AND type = $2 AND status = $3 ORDER BY issued_at DESC",
                holder_key,
                type,
                Status.VALID.value,
            )
        return [_status_from_row(tuple(r)) for r in rows]

    async def idempotent_result(self, client_id: str, key: str) -> IdempotentResult | None:
        async with self._connection("read") as conn:
            row = await conn.fetchrow(
                "SELECT request_digest, codes FROM idempotency_keys"
                " WHERE client_id = $1 AND key = $2",
                client_id,
                key,
            )
        if row is None:
            return None
        return IdempotentResult(bytes(row[0]), tuple(str(row[1]).split(",")))

    async def count(self) -> int:
        async with self._connection("read") as conn:
            return int(await conn.fetchval("SELECT count(*) FROM proofs"))

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


async def _applied_version_async(conn: Any) -> int:
    if not await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
        return 0
    return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations"))


async def _check_supersession(conn: Any, code: str, newer: str, now: float) -> None:
    if newer == code:
        raise InvalidSupersession("a proof cannot supersede itself")
    row = await conn.fetchrow(
        "SELECT n.holder_key = o.holder_key AND n.type = o.type, n.status, n.expires_at,"
        " n.issued_at > o.issued_at FROM proofs n, proofs o WHERE n.code = $1 AND o.code = $2",
        newer,
        code,
    )
    if row is None:
        raise InvalidSupersession("superseded_by names no registered proof")
    same_holder_and_type, status, expires_at, is_newer = row
    if not same_holder_and_type:
        raise InvalidSupersession("superseded_by is a proof of another holder or type")
    if status != Status.VALID.value or (expires_at is not None and now >= expires_at):
        raise InvalidSupersession("superseded_by is not a valid proof")
    if not is_newer:
        raise InvalidSupersession("superseded_by is not newer than the proof it replaces")


# --- directory -------------------------------------------------------------------------


class PostgresDirectory(Directory):
    """:class:`Directory` on the registry's database. Blocking; one connection, reopened
    after a failure, shared by the calling threads under a lock (calls are rare and
    short: the gateway caches what it reads)."""

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        command_timeout: float = COMMAND_TIMEOUT,
    ) -> None:
        if not is_postgres_url(url):
            raise ConfigError("a PostgreSQL directory needs a postgresql:// URL")
        self._url = url
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"PostgresDirectory({redacted(self._url)!r})"

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        if self._closed:
            raise DirectoryUnavailable("the directory is closed")
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            if conn is not None:
                conn.close()
            self._conn = None
            conn = psycopg.connect(
                self._url,
                autocommit=True,
                connect_timeout=max(1, int(self._connect_timeout)),
                options=f"-c statement_timeout={int(self._command_timeout * 1000)}",
            )
            found = _applied_version(conn.execute)
            if found < len(MIGRATIONS):
                conn.close()
                raise DirectoryUnavailable(str(_outdated(found)))
            self._conn = conn
        return conn

    @contextlib.contextmanager
    def _transaction(self, what: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        """One transaction on the shared connection; constraint violations pass through
        (each caller names its conflict), every other driver error is unavailability."""
        with self._lock:
            try:
                conn = self._connect()
                with conn.transaction():
                    yield conn
            except psycopg.errors.IntegrityError:
                raise
            except psycopg.Error as exc:
                raise DirectoryUnavailable(_failure(f"directory {what}", exc)) from exc

    def add_seal(self, seal: Seal) -> None:
        try:
            with self._transaction("write") as conn:
                conn.execute(
                    "INSERT INTO seals (seal_id, kind, unit_name, unit_code, created_at)"
                    " VALUES (%s, %s, %s, %s, %s)",
                    (
                        seal.seal_id,
                        seal.kind.value,
                        seal.unit_name,
                        seal.unit_code,
                        seal.created_at,
                    ),
                )
                for key in seal.keys:
                    _insert_key(conn, key)
        except psycopg.errors.IntegrityError as exc:
            raise AlreadyExists(f"seal {seal.seal_id} already exists") from exc

    def add_seal_key(self, key: SealKey) -> None:
        try:
            with self._transaction("write") as conn:
                # The seal's row is locked so two rotations of one seal run one at a time.
                found = conn.execute(
                    "SELECT 1 FROM seals WHERE seal_id = %s FOR UPDATE", (key.seal_id,)
                ).fetchone()
                if found is None:
                    raise NotFound(f"no seal {key.seal_id}")
                conn.execute(
                    "UPDATE seal_keys SET state = %s WHERE seal_id = %s AND version < %s",
                    (KeyState.RETIRED.value, key.seal_id, key.version),
                )
                _insert_key(conn, key)
        except psycopg.errors.IntegrityError as exc:
            raise AlreadyExists(f"seal {key.seal_id} already has version {key.version}") from exc

    def _seals(self, where: str, args: tuple[Any, ...]) -> list[Seal]:
        with self._transaction("read") as conn:
            seal_rows = conn.execute(
                "SELECT seal_id, kind, unit_name, unit_code, created_at FROM seals"  # noqa: S608
                f" {where} ORDER BY seal_id",
                args,
            ).fetchall()
            key_rows = conn.execute(
                "SELECT seal_id, version, key_label, certificate, state, created_at"  # noqa: S608
                f" FROM seal_keys {where} ORDER BY seal_id, version",
                args,
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
        found = self._seals("WHERE seal_id = %s", (seal_id,))
        if not found:
            raise NotFound(f"no seal {seal_id}")
        return found[0]

    def seals(self) -> list[Seal]:
        return self._seals("", ())

    def add_root(self, certificate: bytes, key_label: str) -> None:
        fingerprint = hashlib.sha256(certificate).digest()
        try:
            with self._transaction("write") as conn:
                conn.execute(
                    "INSERT INTO roots (fingerprint, certificate, key_label, created_at)"
                    " VALUES (%s, %s, %s, %s)",
                    (fingerprint, certificate, key_label, time.time()),
                )
        except psycopg.errors.IntegrityError as exc:
            raise AlreadyExists("that root certificate is already trusted") from exc

    def roots(self) -> list[tuple[bytes, str]]:
        with self._transaction("read") as conn:
            rows = conn.execute(
                "SELECT certificate, key_label FROM roots ORDER BY created_at"
            ).fetchall()
        return [(bytes(r[0]), r[1]) for r in rows]

    def add_client(self, client: Client, token: str) -> None:
        try:
            with self._transaction("write") as conn:
                conn.execute(
                    "INSERT INTO clients (client_id, name, role, office, token_digest,"
                    " created_at) VALUES (%s, %s, %s, %s, %s, %s)",
                    (
                        client.client_id,
                        client.name,
                        client.role.value,
                        client.office,
                        token_digest(token),
                        client.created_at,
                    ),
                )
                with conn.cursor() as cursor:
                    cursor.executemany(
                        "INSERT INTO client_seals (client_id, seal_id) VALUES (%s, %s)",
                        [(client.client_id, s) for s in sorted(client.seals)],
                    )
                    cursor.executemany(
                        "INSERT INTO client_purposes (client_id, purpose) VALUES (%s, %s)",
                        [(client.client_id, p) for p in sorted(client.purposes)],
                    )
        except psycopg.errors.IntegrityError as exc:
            raise AlreadyExists(
                f"client {client.client_id} already exists or names an unknown seal"
            ) from exc

    def remove_client(self, client_id: str) -> None:
        with self._transaction("write") as conn:
            conn.execute("DELETE FROM client_seals WHERE client_id = %s", (client_id,))
            conn.execute("DELETE FROM client_purposes WHERE client_id = %s", (client_id,))
            if conn.execute("DELETE FROM clients WHERE client_id = %s", (client_id,)).rowcount == 0:
                raise NotFound(f"no client {client_id}")

    def _clients(self, where: str, args: tuple[Any, ...]) -> list[Client]:
        with self._transaction("read") as conn:
            rows = conn.execute(
                "SELECT c.client_id, c.name, c.role, c.office, c.created_at,"  # noqa: S608
                " ARRAY(SELECT seal_id FROM client_seals s WHERE s.client_id = c.client_id),"
                " ARRAY(SELECT purpose FROM client_purposes p WHERE p.client_id = c.client_id)"
                f" FROM clients c {where} ORDER BY c.client_id",
                args,
            ).fetchall()
        return [
            Client(r[0], r[1], Role(r[2]), r[3], frozenset(r[5]), frozenset(r[6]), r[4])
            for r in rows
        ]

    def client_by_token(self, token: str) -> Client | None:
        found = self._clients("WHERE c.token_digest = %s", (token_digest(token),))
        return found[0] if found else None

    def clients(self) -> list[Client]:
        return self._clients("", ())


def _insert_key(conn: psycopg.Connection[tuple[Any, ...]], key: SealKey) -> None:
    conn.execute(
        "INSERT INTO seal_keys (seal_id, version, key_label, certificate, state, created_at)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (key.seal_id, key.version, key.key_label, key.certificate, key.state.value, key.created_at),
    )
