"""The registry's two backends side by side, for tests that run on both.

A :class:`Backend` opens a registry and a directory on a fresh store (a SQLite file in
the test's temp dir, or a new database on the suite's PostgreSQL server), runs a
statement on it as an operator's tool would, and can dump every stored value, to check
what is kept at rest. The ``backend`` and ``registry`` fixtures give a test one of each
backend; a module uses them by importing them.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from sealgate.verify.at_rest import DocumentCipher
from sealgate.verify.directory import Directory
from sealgate.verify.postgres import PostgresDirectory, PostgresRegistry
from sealgate.verify.postgres import migrate as migrate_postgres
from sealgate.verify.registry import Registry, Status, StatusChangeRequest
from sealgate.verify.sqlite import SqliteDirectory, SqliteRegistry

BACKENDS = ["sqlite", "postgres"]


@dataclass(frozen=True)
class Backend:
    name: str
    url: str  # sqlite:///PATH or postgresql://...

    @property
    def path(self) -> Path:
        return Path(self.url.removeprefix("sqlite:///"))

    def registry(self, cipher: DocumentCipher) -> Registry:
        if self.name == "sqlite":
            return SqliteRegistry(self.path, cipher)
        return PostgresRegistry(self.url, cipher)

    def directory(self) -> Directory:
        if self.name == "sqlite":
            return SqliteDirectory(self.path)
        return PostgresDirectory(self.url)

    def execute(self, statement: str) -> list[tuple[Any, ...]]:
        """A statement on the store behind the registry; its rows, if it has any."""
        if self.name == "sqlite":
            with contextlib.closing(sqlite3.connect(self.path)) as db, db:
                return db.execute(statement).fetchall()
        with psycopg.connect(self.url) as conn:
            cursor = conn.execute(statement)
            return cursor.fetchall() if cursor.description else []

    def stored_values(self) -> list[object]:
        """Every value in every table, as stored: what a leaked database would show."""
        values: list[object] = []
        if self.name == "sqlite":
            conn = sqlite3.connect(self.path)
            try:
                tables = [
                    t
                    for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                ]
                for table in tables:
                    # names from sqlite_master, not input
                    for row in conn.execute(f'SELECT * FROM "{table}"'):  # noqa: S608
                        values.extend(row)
            finally:
                conn.close()
            return values
        with psycopg.connect(self.url) as conn:
            tables = [
                t
                for (t,) in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                )
            ]
            for table in tables:
                query = sql.SQL("SELECT * FROM {}").format(sql.Identifier(table))
                for row in conn.execute(query):
                    values.extend(row)
        return values


def open_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """The backend named by the test's parameter, on a fresh, migrated store."""
    name: str = request.param
    if name == "sqlite":
        return Backend(name, f"sqlite:///{tmp_path / 'registry.db'}")
    url: str = request.getfixturevalue("postgres_url")
    migrate_postgres(url)
    return Backend(name, url)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return open_backend(request, tmp_path)


@pytest.fixture
async def registry(backend: Backend) -> AsyncIterator[Registry]:
    registry = backend.registry(DocumentCipher(os.urandom(32)))
    yield registry
    await registry.close()


def change(
    code: str,
    status: Status,
    *,
    office: str = "O",
    superseded_by: str | None = None,
    at: float | None = None,
) -> StatusChangeRequest:
    """An issuer's request to change ``code`` to ``status`` (now, unless ``at``)."""
    return StatusChangeRequest(
        code=code,
        office=office,
        status=status,
        reason="测试",
        superseded_by=superseded_by,
        client_id="C-issuer",
        at=time.time() if at is None else at,
    )
