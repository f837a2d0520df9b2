"""The audit trail's store: the SQLite file of chained records, read and written.

The gateway's workers never write it themselves: the audit writer process
(:mod:`sealgate.gateway.audit_writer`) chains their journals into it, and the one-shot
commands (:mod:`sealgate.gateway.cli`) append and read it directly. The client a worker
uses, which supervises its writer, is :mod:`sealgate.gateway.audit`.

Several writers append to one store: each write reads the chain's head inside its own
``BEGIN IMMEDIATE`` transaction, so the chain stays a single line.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sealgate.gateway.audit_journal import journal_directory, journal_files, require_room
from sealgate.verify.audit import (
    GENESIS,
    AuditError,
    AuditEvent,
    AuditRecord,
    SignedHead,
    chain,
    chain_fields,
    detail_json,
    parse_detail,
)
from sealgate.verify.sqlite_toolkit import connect, insert_rows, write_transaction

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    action TEXT NOT NULL,
    client TEXT NOT NULL,
    role TEXT NOT NULL,
    purpose TEXT,
    code TEXT,
    result TEXT NOT NULL,
    request TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_journal (
    name TEXT PRIMARY KEY,
    offset INTEGER NOT NULL,
    done_at REAL
);
CREATE TABLE IF NOT EXISTS audit_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at REAL NOT NULL
)
"""
_COLUMNS = (
    "seq, at_ms, action, client, role, purpose, code, result, request, detail, prev_hash, hash"
)


# PRAGMA user_version: 1 = details stored as the exact text hashed (before: re-written
# by json.dumps with spaces, and parsed back to be hashed, duplicate keys and all).
_STORE_VERSION = 1


def open_store(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path)
    conn.executescript(_SCHEMA)
    if conn.execute("PRAGMA user_version").fetchone()[0] < _STORE_VERSION:
        _store_exact_details(conn)
    return conn


def _store_exact_details(conn: sqlite3.Connection) -> None:
    """Version 0 → 1: each detail re-written as the text its hash covered (the canonical
    form of what it parses to). A detail with a key twice is left as it is, and fails
    verification: which of its values the hash covered cannot be told."""
    with write_transaction(conn):
        if conn.execute("PRAGMA user_version").fetchone()[0] >= _STORE_VERSION:
            return  # another process did it meanwhile
        for seq, stored in conn.execute("SELECT seq, detail FROM audit").fetchall():
            try:
                exact = detail_json(json.loads(stored, object_pairs_hook=_no_duplicates))
            except (ValueError, TypeError):
                continue
            if exact != stored:
                conn.execute("UPDATE audit SET detail = ? WHERE seq = ?", (exact, seq))
        conn.execute(f"PRAGMA user_version = {_STORE_VERSION}")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len({key for key, _ in pairs}) != len(pairs):
        raise ValueError("a duplicated key")
    return dict(pairs)


def probe_store(conn: sqlite3.Connection, path: Path) -> None:
    """Whether the store takes a write now: a real one (an empty transaction writes
    nothing, and would pass on a full disk), with room for more after it."""
    require_room(path.parent)
    with write_transaction(conn):
        conn.execute(
            "INSERT INTO audit_probe (id, at) VALUES (1, ?) "
            "ON CONFLICT (id) DO UPDATE SET at = excluded.at",
            (time.time(),),
        )


def stored_head(conn: sqlite3.Connection) -> tuple[int, bytes] | None:
    """The last record's ``(seq, hash)``; ``None`` for an empty trail."""
    row = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    return None if row is None else (int(row[0]), bytes(row[1]))


def append(conn: sqlite3.Connection, events: list[AuditEvent]) -> list[AuditRecord]:
    """Chain ``events`` after the stored head; call inside a write transaction."""
    last_seq, prev_hash = stored_head(conn) or (0, GENESIS)
    records = chain(prev_hash, last_seq + 1, events)
    insert_rows(
        conn,
        "audit",
        _COLUMNS,
        [
            (
                r.seq,
                round(r.event.at * 1000),
                r.event.action,
                r.event.client_id,
                r.event.role,
                r.event.purpose,
                r.event.code,
                r.event.result,
                r.event.request_id,
                detail_json(r.event.detail),
                r.prev_hash,
                r.hash,
            )
            for r in records
        ],
    )
    return records


def append_rows(conn: sqlite3.Connection, rows: list[list[Any]]) -> int:
    """:func:`append` for events given as their fields (the writer's hot path); returns
    the last ``seq``. Call inside a write transaction."""
    last_seq, prev_hash = stored_head(conn) or (0, GENESIS)
    stored = [
        (
            seq,
            round(fields[7] * 1000),
            fields[0],
            fields[1],
            fields[2],
            fields[3],
            fields[4],
            fields[5],
            fields[6],
            detail,  # the very text hashed: stored as it is, never written again
            prev,
            digest,
        )
        for seq, prev, digest, fields, detail in chain_fields(prev_hash, last_seq + 1, rows)
    ]
    insert_rows(conn, "audit", _COLUMNS, stored)
    return stored[-1][0] if stored else last_seq


def append_now(path: Path, events: list[AuditEvent]) -> list[AuditRecord]:
    """Append from a one-shot process (the CLI), in a transaction of its own."""
    conn = open_store(path)
    try:
        with write_transaction(conn):
            return append(conn, events)
    finally:
        conn.close()


def read_records(path: Path) -> Iterator[AuditRecord]:
    """Every stored record in ``seq`` order, as stored (for verification: its detail's
    stored text goes with it, and is what is hashed)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        for row in conn.execute(f"SELECT {_COLUMNS} FROM audit ORDER BY seq"):  # noqa: S608
            stored = row[9] if isinstance(row[9], str) else repr(row[9])
            try:
                detail = parse_detail(stored)
            except AuditError:
                detail = {}  # verification names what is wrong with it
            event = AuditEvent(
                action=row[2],
                client_id=row[3],
                role=row[4],
                purpose=row[5],
                code=row[6],
                result=row[7],
                request_id=row[8],
                at=row[1] / 1000,
                detail=detail,
            )
            yield AuditRecord(int(row[0]), event, bytes(row[10]), bytes(row[11]), stored)
    finally:
        conn.close()


def unchained_journal_bytes(path: Path) -> int:
    """How many bytes of the store's journals no writer has chained into it yet."""
    files = journal_files(journal_directory(path))
    if not files:
        return 0
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        try:
            chained = dict(
                conn.execute("SELECT name, offset FROM audit_journal WHERE done_at IS NULL")
            )
        except sqlite3.OperationalError:  # a store from before the journal
            chained = {}
    finally:
        conn.close()
    total = 0
    for file in files:
        with contextlib.suppress(FileNotFoundError):
            total += max(0, file.stat().st_size - int(chained.get(file.name, 0)))
    return total


def write_head(path: Path, head: SignedHead) -> None:
    """Replace the signed head atomically (a reader sees the old one or the new one)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_bytes(head.to_json())
    os.replace(temporary, path)
