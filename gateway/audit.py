"""The audit trail's store and its writer in the gateway.

Every sealing, status change, verification and document download is recorded (client,
role, purpose, code, result, time, request id; never a holder's identity number) before
its answer leaves: if the record cannot be written the answer is a 503 instead (fail
closed). Records of one event-loop turn go to the store as one write, and concurrent
writes share one commit (the registry's group-commit writer), so auditing every
verification costs one fsync per group, not per request.

Several worker processes append to one store: each write reads the chain's head inside
its own ``BEGIN IMMEDIATE`` transaction, so the chain stays a single line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hsm.errors import HsmError
from hsm.service import SigningService
from verify.audit import (
    GENESIS,
    AuditEvent,
    AuditRecord,
    SignedHead,
    chain,
    checkpoint_digest,
)
from verify.sqlite import GroupCommitWriter, connect

log = logging.getLogger("sealgate.audit")

AUDIT_KEY_LABEL = "sealgate-audit-1"
CHECKPOINT_SECONDS = 10.0
WRITE_TIMEOUT = 5.0
PROBE_SECONDS = 1.0

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
)
"""
_COLUMNS = (
    "seq, at_ms, action, client, role, purpose, code, result, request, detail, prev_hash, hash"
)


class AuditUnavailable(Exception):
    """The audit record could not be written: the request must be refused."""


def open_store(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path)
    conn.execute(_SCHEMA)
    return conn


def append(conn: sqlite3.Connection, events: list[AuditEvent]) -> list[AuditRecord]:
    """Chain ``events`` after the stored head; call inside a write transaction."""
    row = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    last_seq, prev_hash = (0, GENESIS) if row is None else (int(row[0]), bytes(row[1]))
    records = chain(prev_hash, last_seq + 1, events)
    conn.executemany(
        f"INSERT INTO audit ({_COLUMNS}) VALUES ({', '.join('?' * 12)})",  # noqa: S608
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
                json.dumps(r.event.detail, ensure_ascii=False, sort_keys=True)
                if r.event.detail
                else "{}",
                r.prev_hash,
                r.hash,
            )
            for r in records
        ],
    )
    return records


def append_now(path: Path, events: list[AuditEvent]) -> list[AuditRecord]:
    """Append from a one-shot process (the CLI), in a transaction of its own."""
    conn = open_store(path)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            records = append(conn, events)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return records
    finally:
        conn.close()


def read_records(path: Path) -> Iterator[AuditRecord]:
    """Every stored record in ``seq`` order, as stored (for verification)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        for row in conn.execute(f"SELECT {_COLUMNS} FROM audit ORDER BY seq"):  # noqa: S608
            try:
                detail = json.loads(row[9])
            except ValueError:
                detail = {"unreadable": row[9]}
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
            yield AuditRecord(int(row[0]), event, bytes(row[10]), bytes(row[11]))
    finally:
        conn.close()


def write_head(path: Path, head: SignedHead) -> None:
    """Replace the signed head atomically (a reader sees the old one or the new one)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_bytes(head.to_json())
    os.replace(temporary, path)


class AuditLog:
    """Appends events for the gateway; owned by the app, one per worker process."""

    def __init__(
        self,
        path: Path,
        *,
        head_path: Path,
        signing: SigningService | None,
        key_label: str = AUDIT_KEY_LABEL,
        checkpoint_seconds: float = CHECKPOINT_SECONDS,
    ) -> None:
        open_store(path).close()
        # A request waits for its record: a store that stays locked this long is a failed
        # store, and the request is refused rather than held. synchronous=NORMAL (WAL): a
        # commit is in the OS before the answer leaves, so a killed process loses no
        # record; only an OS crash can lose the newest ones, which the signed head then
        # shows as a truncation. FULL would hold the write lock through an fsync per
        # group, and with several workers on one trail, writers would starve each other.
        self._writer = GroupCommitWriter(path, busy_timeout=WRITE_TIMEOUT, synchronous="NORMAL")
        self._head_path = head_path
        self._signing = signing
        self._key_label = key_label
        self._checkpoint_seconds = checkpoint_seconds
        self._pending: list[tuple[list[AuditEvent], asyncio.Future[None]]] = []
        self._flush_scheduled = False
        self._failing_since: float | None = None
        self._since_checkpoint = 0

    @property
    def healthy(self) -> bool:
        return self._failing_since is None and self._writer.alive

    async def record(self, events: list[AuditEvent]) -> None:
        """Durable on return; raises :class:`AuditUnavailable` otherwise."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append((events, future))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        # Shielded: once queued the record is written, whether the caller waits or not.
        await asyncio.shield(future)

    def _flush(self) -> None:
        self._flush_scheduled = False
        batch, self._pending = self._pending, []
        events = [event for group, _ in batch for event in group]
        try:
            written = self._writer.submit(lambda conn: append(conn, events))
        except Exception as exc:
            self._fail(batch, exc)
            return

        def settle(done: asyncio.Future[list[AuditRecord]]) -> None:
            error = done.exception()
            if error is not None:
                self._fail(batch, error)
                return
            if self._failing_since is not None:
                log.info("audit trail writable again")
                self._failing_since = None
            self._since_checkpoint += len(events)
            for _, future in batch:
                if not future.done():
                    future.set_result(None)

        written.add_done_callback(settle)

    def _fail(
        self, batch: list[tuple[list[AuditEvent], asyncio.Future[None]]], error: BaseException
    ) -> None:
        if self._failing_since is None:
            log.error(
                "audit trail cannot be written (%s): refusing audited requests",
                type(error).__name__,
            )
            self._failing_since = time.monotonic()
        for _, future in batch:
            if not future.done():
                future.set_exception(AuditUnavailable("the audit record could not be written"))

    async def checkpoint(self) -> SignedHead | None:
        """Sign the chain's head with the audit key and record the checkpoint."""
        if self._signing is None:
            return None
        head_row = await self._writer.submit(
            lambda conn: conn.execute(
                "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"
            ).fetchone()
        )
        if head_row is None:
            return None
        seq, head_hash = int(head_row[0]), bytes(head_row[1])
        signature = await self._signing.sign_digest(
            self._key_label, checkpoint_digest(seq, head_hash)
        )
        head = SignedHead(seq, head_hash, signature, self._key_label)
        await self.record([head.checkpoint_event(time.time())])
        self._since_checkpoint = 0
        await asyncio.to_thread(write_head, self._head_path, head)
        return head

    async def probe(self) -> None:
        """Try an empty write; a success makes the log healthy again."""
        try:
            await self._writer.submit(lambda conn: None)
        except Exception:  # still failing: stay refused
            return
        if self._failing_since is not None:
            log.info("audit trail writable again")
            self._failing_since = None

    async def run(self) -> None:
        """Background duties: checkpoints every interval, and probing while failing."""
        last_checkpoint = time.monotonic()
        while True:
            await asyncio.sleep(PROBE_SECONDS)
            if not self.healthy:
                await self.probe()
                continue
            if self._since_checkpoint == 0:
                continue
            if time.monotonic() - last_checkpoint < self._checkpoint_seconds:
                continue
            last_checkpoint = time.monotonic()
            try:
                await self.checkpoint()
            except (HsmError, AuditUnavailable) as exc:
                log.warning("audit checkpoint skipped (%s); retrying later", type(exc).__name__)

    async def close(self) -> None:
        if self._since_checkpoint:
            try:
                await self.checkpoint()
            except (HsmError, AuditUnavailable) as exc:
                log.warning("final audit checkpoint skipped (%s)", type(exc).__name__)
        await asyncio.get_running_loop().run_in_executor(None, self._writer.close)


def event_detail(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}
