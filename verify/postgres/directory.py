"""The directory on the registry's PostgreSQL database, through psycopg 3.

Synchronous: the :class:`~sealgate.verify.directory.Directory` interface is blocking by
design (the CLI calls it directly, the gateway through ``asyncio.to_thread`` for rare,
cached reads), and a blocking driver serves it as it is, where asyncpg would need an
event loop of its own in every calling thread.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import psycopg.errors

from sealgate.errors import ConfigError
from sealgate.verify.directory import DirectoryUnavailable
from sealgate.verify.postgres.schema import (
    COMMAND_TIMEOUT,
    CONNECT_TIMEOUT,
    MIGRATIONS,
    applied_version,
    failure,
    is_postgres_url,
    outdated,
    redacted,
)
from sealgate.verify.sql_directory import SqlDirectory


class PostgresDirectory(SqlDirectory):
    """:class:`Directory` on the registry's database. Blocking; one connection, reopened
    after a failure, shared by the calling threads under a lock (calls are rare and
    short: the gateway caches what it reads)."""

    PARAM = "%s"
    LOCK_FOR_WRITE = " FOR UPDATE"
    CONFLICT = psycopg.errors.IntegrityError

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
            found = applied_version(conn.execute)
            if found < len(MIGRATIONS):
                conn.close()
                raise DirectoryUnavailable(str(outdated(found)))
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
                raise DirectoryUnavailable(failure(f"directory {what}", exc)) from exc
