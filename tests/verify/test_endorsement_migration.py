"""The migration that keeps a proof's endorsement queryable (SQLite 14, PostgreSQL 11)
fills it for the answers sealed before it, from their requests.

Every request's answer has carried its request's units as the endorsement since requests
began (docs/design.md §12), so the registry can say so for those proofs too; a proof that
answered no request stays without one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from sealgate.verify import sqlite_toolkit
from sealgate.verify.postgres import MIGRATIONS as POSTGRES_MIGRATIONS
from sealgate.verify.postgres import migrate as migrate_postgres
from sealgate.verify.sqlite import MIGRATIONS
from sealgate.verify.sqlite import migrate as migrate_sqlite

_PROOF = (
    "INSERT INTO proofs (code, seal_id, unit_name, unit_code, type, holder_kind,"
    " holder_name_masked, holder_id_masked, holder_key, valid_from, issued_at, status,"
    " status_changed_at, signer_client, document) VALUES ({p}, 'S', 'u', 'O', 't', 'person',"
    " 'n', 'i', {b}, '2026-01-01', 1.0, 'valid', 1.0, 'C', {b})"
)
_REQUEST = (
    "INSERT INTO requests (request_id, mode, tier, state, requester_client,"
    " requester_office, requester_unit, responder_office, responder_unit, proof_type,"
    " holder_kind, holder_name_masked, holder_id_masked, holder_key, matter, case_ref,"
    " registered_at, due_at, provisional, extended, answer_code, version)"
    " VALUES ({p}, 'verify', 'database', {p}, 'C', 'R', '某市人民法院', 'O', '某市公安局',"
    " 't', 'person', 'n', 'i', {b}, 'm', 'c', 1.0, 2.0, 0, 0, {p}, 1)"
)
_READ = "SELECT code, extracting_unit, verifying_unit FROM proofs ORDER BY code"
ENDORSED = [
    ("ANSWER", "某市人民法院", "某市公安局"),
    ("PLAIN", None, None),
    ("UNANSWERED-CODE", None, None),
]


def _populate(execute: Callable[[str, tuple[Any, ...]], object], p: str, b: str) -> None:
    """Proofs of before the migration: one a request's answer, two not (one of them
    beside a request still open)."""
    for code in ("ANSWER", "PLAIN", "UNANSWERED-CODE"):
        execute(_PROOF.format(p=p, b=b), (code,))
    execute(_REQUEST.format(p=p, b=b), ("R1", "answered", "ANSWER"))
    execute(_REQUEST.format(p=p, b=b), ("R2", "accepted", None))


def test_sqlite_fills_the_endorsement_of_answers_sealed_before(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    sqlite_toolkit.migrate(path, MIGRATIONS[:13])  # as a registry file before it
    with contextlib.closing(sqlite_toolkit.connect(path)) as conn:
        _populate(conn.execute, "?", "x'00'")

    assert migrate_sqlite(path) == len(MIGRATIONS)

    with contextlib.closing(sqlite_toolkit.connect(path)) as conn:
        assert conn.execute(_READ).fetchall() == ENDORSED


def test_postgres_fills_the_endorsement_of_answers_sealed_before(postgres_url: str) -> None:
    [number] = [n for n, (about, _) in enumerate(POSTGRES_MIGRATIONS, 1) if "endorsement" in about]
    migrate_postgres(postgres_url)
    with psycopg.connect(postgres_url) as conn:
        # Undo that migration, so the database is as one before it was (the migrator
        # applies every version missing, later ones kept).
        conn.execute("ALTER TABLE proofs DROP COLUMN extracting_unit, DROP COLUMN verifying_unit")
        conn.execute("DELETE FROM schema_migrations WHERE version = %s", (number,))
        _populate(conn.execute, "%s", "'\\x00'::bytea")

    assert migrate_postgres(postgres_url) == len(POSTGRES_MIGRATIONS)

    with psycopg.connect(postgres_url) as conn:
        assert conn.execute(_READ).fetchall() == ENDORSED
