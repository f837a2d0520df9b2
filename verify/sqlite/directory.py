"""The directory on the registry's SQLite file."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from sealgate.verify.directory import DirectoryUnavailable
from sealgate.verify.sql_directory import SqlDirectory
from sealgate.verify.sqlite.schema import migrate
from sealgate.verify.sqlite_toolkit import connect, write_transaction


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


class SqliteDirectory(SqlDirectory):
    """:class:`Directory` on the registry's SQLite file. Blocking; one connection."""

    PARAM = "?"
    LOCK_FOR_WRITE = ""  # BEGIN IMMEDIATE holds the file's write lock already
    CONFLICT = sqlite3.IntegrityError

    def __init__(self, path: Path) -> None:
        with _directory_errors():
            migrate(path)
            self._conn = connect(path)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._conn.close()

    @contextlib.contextmanager
    def _transaction(self, what: str) -> Iterator[sqlite3.Connection]:
        if what == "read":  # reads take no write lock; each statement sees the last commit
            with _directory_errors(), self._lock:
                yield self._conn
            return
        with _directory_errors(), self._lock, write_transaction(self._conn) as conn:
            yield conn
