"""The two backends' schemas describe the same tables.

Each schema is read back from a freshly migrated store, SQLite's through its PRAGMAs,
PostgreSQL's (a real server, the suite's fixture) through information_schema and the
catalog, normalised to one description, and the two compared: columns with their types
and nullability, primary keys, unique constraints, foreign keys and plain indexes.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from sealgate.verify import sqlite_toolkit
from sealgate.verify.postgres import migrate as migrate_postgres
from sealgate.verify.sqlite import MIGRATIONS
from sealgate.verify.sqlite import migrate as migrate_sqlite

# The column types either dialect spells, by what they hold.
_TYPES = {
    "TEXT": "text",
    "BLOB": "bytes",
    "BYTEA": "bytes",
    "REAL": "float",
    "DOUBLE PRECISION": "float",
    "INTEGER": "integer",
    "BIGINT": "integer",
}

# SQLite keeps proofs in a rowid table on purpose (its migration 3: rows append in issue
# order): there the code is a NOT NULL UNIQUE key, where PostgreSQL makes it the primary
# key. Both say "one proof a code, never null"; the description counts it as the key.
_ROWID_TABLES = {"proofs": ("code",)}

Key = tuple[str, ...]
ForeignKey = tuple[Key, str, Key]  # columns, referenced table, referenced columns


@dataclass
class Table:
    columns: dict[str, tuple[str, bool]] = field(default_factory=dict)  # type, NOT NULL
    primary_key: Key = ()
    unique: set[Key] = field(default_factory=set)
    foreign_keys: set[ForeignKey] = field(default_factory=set)
    indexes: set[tuple[str, Key]] = field(default_factory=set)  # name, columns

    def normalised(self) -> Table:
        """A primary key's columns are NOT NULL whatever the DDL says: SQLite's rowid
        tables let a declared key hold NULL only through a documented legacy quirk."""
        columns = {
            name: (kind, not_null or name in self.primary_key)
            for name, (kind, not_null) in self.columns.items()
        }
        return Table(columns, self.primary_key, self.unique, self.foreign_keys, self.indexes)


def _type(declared: str) -> str:
    return _TYPES.get(declared.upper(), declared)


def sqlite_schema(path: Path) -> dict[str, Table]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        names = [
            n
            for (n,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
                " AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        tables: dict[str, Table] = {}
        for name in names:
            table = tables[name] = Table()
            key: dict[int, str] = {}
            for _, column, declared, not_null, _, pk in conn.execute(
                "SELECT * FROM pragma_table_info(?)", (name,)
            ):
                table.columns[column] = (_type(declared), bool(not_null))
                if pk:
                    key[pk] = column
            table.primary_key = tuple(key[n] for n in sorted(key))
            for _, index, unique, origin, _ in conn.execute(
                "SELECT * FROM pragma_index_list(?)", (name,)
            ):
                columns = tuple(
                    c
                    for (_, _, c) in conn.execute(
                        "SELECT * FROM pragma_index_info(?) ORDER BY seqno", (index,)
                    )
                )
                if origin == "pk":
                    continue  # the primary key's own index (WITHOUT ROWID, non-integer keys)
                if unique:
                    table.unique.add(columns)
                else:
                    table.indexes.add((index, columns))
            foreign: dict[int, tuple[str, list[str], list[str]]] = {}
            for fk_id, _, parent, child_column, parent_column, *_ in conn.execute(
                "SELECT * FROM pragma_foreign_key_list(?) ORDER BY id, seq", (name,)
            ):
                entry = foreign.setdefault(fk_id, (parent, [], []))
                entry[1].append(child_column)
                entry[2].append(parent_column)
            table.foreign_keys = {(tuple(c), p, tuple(pc)) for p, c, pc in foreign.values()}
            if name in _ROWID_TABLES and not table.primary_key:
                table.primary_key = _ROWID_TABLES[name]
                table.unique.discard(table.primary_key)
    return tables


def postgres_schema(url: str) -> dict[str, Table]:
    with psycopg.connect(url) as conn:
        tables: dict[str, Table] = defaultdict(Table)
        for name, column, kind, nullable in conn.execute(
            "SELECT c.table_name, c.column_name, c.data_type, c.is_nullable"
            " FROM information_schema.columns c JOIN information_schema.tables t"
            " ON t.table_schema = c.table_schema AND t.table_name = c.table_name"
            " WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'"
            " AND c.table_name <> 'schema_migrations'"
        ):
            tables[name].columns[column] = (_type(kind), nullable == "NO")
        keys: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        for name, constraint, kind, column in conn.execute(
            "SELECT tc.table_name, tc.constraint_name, tc.constraint_type, k.column_name"
            " FROM information_schema.table_constraints tc"
            " JOIN information_schema.key_column_usage k"
            " ON k.constraint_schema = tc.constraint_schema"
            " AND k.constraint_name = tc.constraint_name"
            " WHERE tc.table_schema = 'public'"
            " AND tc.constraint_type IN ('PRIMARY KEY', 'UNIQUE')"
            " ORDER BY tc.table_name, tc.constraint_name, k.ordinal_position"
        ):
            keys[(name, constraint, kind)].append(column)
        for (name, _, kind), columns in keys.items():
            if name not in tables:
                continue  # schema_migrations
            if kind == "PRIMARY KEY":
                tables[name].primary_key = tuple(columns)
            else:
                tables[name].unique.add(tuple(columns))
        foreign: dict[tuple[str, str], tuple[str, list[str], list[str]]] = {}
        for name, constraint, column, parent, parent_column in conn.execute(
            "SELECT k.table_name, k.constraint_name, k.column_name, r.table_name, r.column_name"
            " FROM information_schema.referential_constraints rc"
            " JOIN information_schema.key_column_usage k"
            " ON k.constraint_schema = rc.constraint_schema"
            " AND k.constraint_name = rc.constraint_name"
            " JOIN information_schema.key_column_usage r"
            " ON r.constraint_schema = rc.unique_constraint_schema"
            " AND r.constraint_name = rc.unique_constraint_name"
            " AND r.ordinal_position = k.position_in_unique_constraint"
            " WHERE rc.constraint_schema = 'public'"
            " ORDER BY k.table_name, k.constraint_name, k.ordinal_position"
        ):
            entry = foreign.setdefault((name, constraint), (parent, [], []))
            entry[1].append(column)
            entry[2].append(parent_column)
        for (name, _), (parent, columns, parent_columns) in foreign.items():
            tables[name].foreign_keys.add((tuple(columns), parent, tuple(parent_columns)))
        for name, index, columns in conn.execute(
            "SELECT t.relname, i.relname, array_agg(a.attname::text ORDER BY k.n)"
            " FROM pg_index x"
            " JOIN pg_class i ON i.oid = x.indexrelid"
            " JOIN pg_class t ON t.oid = x.indrelid"
            " JOIN pg_namespace ns ON ns.oid = t.relnamespace"
            " CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, n)"
            " JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum"
            " WHERE ns.nspname = 'public' AND NOT x.indisunique"
            " GROUP BY t.relname, i.relname"
        ):
            tables[name].indexes.add((index, tuple(columns)))
    return dict(tables)


def _described(tables: dict[str, Table]) -> dict[str, Table]:
    return {name: table.normalised() for name, table in sorted(tables.items())}


def test_the_sqlite_and_postgres_schemas_describe_the_same_tables(
    tmp_path: Path, postgres_url: str
) -> None:
    migrate_sqlite(tmp_path / "registry.db")
    migrate_postgres(postgres_url)

    sqlite_tables = _described(sqlite_schema(tmp_path / "registry.db"))
    postgres_tables = _described(postgres_schema(postgres_url))

    assert sorted(sqlite_tables) == sorted(postgres_tables)
    for name, table in sqlite_tables.items():
        assert table == postgres_tables[name], name
    # The description is not empty: it saw what the registry relies on.
    assert postgres_tables["status_history"].foreign_keys == {(("code",), "proofs", ("code",))}
    assert ("token_digest",) in postgres_tables["clients"].unique
    assert postgres_tables["proofs"].indexes == {("proofs_holder", ("holder_key", "type"))}


def test_a_registry_from_before_the_history_key_keeps_its_history(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    sqlite_toolkit.migrate(path, MIGRATIONS[:3])  # as a registry file of 2026-11 was
    with contextlib.closing(sqlite_toolkit.connect(path)) as conn:
        conn.execute(
            "INSERT INTO proofs (code, seal_id, unit_name, unit_code, type, holder_kind,"
            " holder_name_masked, holder_id_masked, holder_key, valid_from, issued_at,"
            " status, status_changed_at, signer_client, document)"
            " VALUES ('P1', 'S', 'u', 'O', 't', 'person', 'n', 'i', x'00', '2026-01-01',"
            " 1.0, 'valid', 1.0, 'C', x'00')"
        )
        for to_status in ("pledged", "valid"):
            conn.execute(
                "INSERT INTO status_history (code, from_status, to_status, reason,"
                " client_id, changed_at) VALUES ('P1', 'valid', ?, 'r', 'C', 2.0)",
                (to_status,),
            )

    assert migrate_sqlite(path) == len(MIGRATIONS)

    with contextlib.closing(sqlite_toolkit.connect(path)) as conn:
        history = conn.execute("SELECT seq, to_status FROM status_history ORDER BY seq")
        assert history.fetchall() == [(1, "pledged"), (2, "valid")]
        conn.execute(
            "INSERT INTO status_history (code, from_status, to_status, reason,"
            " client_id, changed_at) VALUES ('P1', 'valid', 'revoked', 'r', 'C', 3.0)"
        )
        assert conn.execute("SELECT max(seq) FROM status_history").fetchone() == (3,)
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
            conn.execute(
                "INSERT INTO status_history (code, from_status, to_status, reason,"
                " client_id, changed_at) VALUES ('NO-SUCH', 'valid', 'revoked', 'r', 'C', 3.0)"
            )
