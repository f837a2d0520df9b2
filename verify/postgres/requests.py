"""The requests' statements on an asyncpg connection (the PostgreSQL registry's pool)."""

from __future__ import annotations

from typing import Any

import asyncpg

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

SQL = request_rows.RequestQueries.written_with(lambda n: f"${n}")
_INSERT_PROOF = rows.RegistryQueries.written_with(lambda n: f"${n}").insert_proof


async def create(conn: Any, request: VerificationRequest, event: RequestEvent) -> None:
    async with conn.transaction():
        await conn.execute(SQL.insert_request, *request_rows.request_row(request))
        await conn.execute(SQL.insert_event, *request_rows.event_row(event))


async def change(
    conn: Any,
    step: Transition,
    deadlines: Deadlines,
    proofs: list[ProofRecord],
    cipher: DocumentCipher,
) -> VerificationRequest:
    """Decide and write ``step`` with the answer's proofs in one transaction; the
    request's row is locked first, so two racing answers cannot both be taken."""
    async with conn.transaction():
        row = await conn.fetchrow(SQL.select_request + " FOR UPDATE", step.request_id)
        current = None if row is None else request_rows.request_from_row(tuple(row))
        updated, event = decide(current, step, deadlines)
        await conn.execute(SQL.update_request, *request_rows.update_row(updated))
        await conn.execute(SQL.insert_event, *request_rows.event_row(event))
        if proofs:
            try:
                await conn.executemany(_INSERT_PROOF, [rows.proof_row(p, cipher) for p in proofs])
            except asyncpg.UniqueViolationError as exc:
                raise CodeTaken("verification code already registered") from exc
    return updated


async def get(conn: Any, request_id: str) -> tuple[VerificationRequest, list[RequestEvent]] | None:
    row = await conn.fetchrow(SQL.select_request, request_id)
    if row is None:
        return None
    found = await conn.fetch(SQL.events, request_id)
    return request_rows.request_from_row(tuple(row)), [
        request_rows.event_from_row(tuple(r)) for r in found
    ]


async def listing(conn: Any, query: RequestQuery) -> list[VerificationRequest]:
    statement, args = SQL.listing(query)
    return [request_rows.request_from_row(tuple(r)) for r in await conn.fetch(statement, *args)]


async def overdue_unannounced(conn: Any, now: float, limit: int) -> list[VerificationRequest]:
    found = await conn.fetch(SQL.overdue_unannounced, now, limit)
    return [request_rows.request_from_row(tuple(r)) for r in found]
