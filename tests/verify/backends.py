"""The registry's two backends side by side, for contract tests that run on both.

A :class:`Backend` opens a registry and a directory on a fresh store (a SQLite file in
the test's temp dir, or a new database on the suite's PostgreSQL server) and can dump
every stored value, to check what is kept at rest.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from verify.at_rest import DocumentCipher
from verify.directory import Directory
from verify.postgres import PostgresDirectory, PostgresRegistry
from verify.postgres import migrate as migrate_postgres
from verify.registry import Registry
from verify.sqlite import SqliteDirectory, SqliteRegistry

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
