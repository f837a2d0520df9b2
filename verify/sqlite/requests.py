"""The requests' statements on a SQLite connection (the registry's writer and readers)."""

from __future__ import annotations

import sqlite3

from sealgate.verify import request_rows, rows
from sealgate.verify.at_rest import DocumentCipher
from sealgate.verify.registry import CodeTaken, ProofRecord
from sealgate.verify.requests import (
    Deadlines,
    RequestEvent,
    RequestQuery,
    Transition,
    VerificationRequest,
    decide,
)
from sealgate.verify.sqlite_toolkit import insert_rows

SQL = request_rows.RequestQueries.written_with(lambda _: "?")


def create(conn: sqlite3.Connection, request: VerificationRequest, event: RequestEvent) -> None:
    conn.execute(SQL.insert_request, request_rows.request_row(request))
    conn.execute(SQL.insert_event, request_rows.event_row(event))


def change(
    conn: sqlite3.Connection,
    step: Transition,
    deadlines: Deadlines,
    proofs: list[ProofRecord],
    cipher: DocumentCipher,
) -> VerificationRequest:
    """Decide and write ``step``, with the answer's proofs, inside the writer's savepoint:
    a refusal or a taken code leaves nothing behind."""
    row = conn.execute(SQL.select_request, (step.request_id,)).fetchone()
    current = None if row is None else request_rows.request_from_row(row)
    updated, event = decide(current, step, deadlines)
    conn.execute(SQL.update_request, request_rows.update_row(updated))
    conn.execute(SQL.insert_event, request_rows.event_row(event))
    if proofs:
        try:
            insert_rows(
                conn, "proofs", rows.PROOF_COLUMNS, [rows.proof_row(p, cipher) for p in proofs]
            )
        except sqlite3.IntegrityError as exc:
            raise CodeTaken("verification code already registered") from exc
    return updated


def get(
    conn: sqlite3.Connection, request_id: str
) -> tuple[VerificationRequest, list[RequestEvent]] | None:
    row = conn.execute(SQL.select_request, (request_id,)).fetchone()
    if row is None:
        return None
    events = [request_rows.event_from_row(r) for r in conn.execute(SQL.events, (request_id,))]
    return request_rows.request_from_row(row), events


def listing(conn: sqlite3.Connection, query: RequestQuery) -> list[VerificationRequest]:
    statement, args = SQL.listing(query)
    return [request_rows.request_from_row(r) for r in conn.execute(statement, args)]


def overdue_unannounced(
    conn: sqlite3.Connection, now: float, limit: int
) -> list[VerificationRequest]:
    found = conn.execute(SQL.overdue_unannounced, (now, limit))
    return [request_rows.request_from_row(r) for r in found]


def count_overdue(conn: sqlite3.Connection, now: float) -> int:
    return int(conn.execute(SQL.count_overdue, (now,)).fetchone()[0])
