"""The audit trail's store and its writer in the gateway.

Every sealing, status change, verification and document download is recorded (client,
role, purpose, code, result, time, request id; never a holder's identity number) before
its answer leaves: if the record cannot be written the answer is a 503 instead (fail
closed). Records are written by a process of their own (:mod:`gateway.audit_writer`):
concurrent requests' records go as one frame and one commit, and the chaining work
stays off the gateway's event loop and its GIL.

Several worker processes append to one store: each write reads the chain's head inside
its own ``BEGIN IMMEDIATE`` transaction, so the chain stays a single line.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiohttp import web

from hsm import frames
from hsm.errors import HsmError
from hsm.service import SigningService
from verify.audit import (
    GENESIS,
    AuditEvent,
    AuditRecord,
    SignedHead,
    chain,
    chain_fields,
    checkpoint_digest,
)
from verify.sqlite import connect, insert_rows

log = logging.getLogger("sealgate.audit")

AUDIT_KEY_LABEL = "sealgate-audit-1"
CHECKPOINT_SECONDS = 10.0
WRITE_TIMEOUT = 5.0
PROBE_SECONDS = 1.0
START_TIMEOUT = 15.0
MAX_GROUP = 5000
# Groups with the writer at once. With one, under closed-loop load the requests split
# into two halves, one with the writer and one with the clients, and the worker idled
# 9-13 % of the time; with four it idled 6-10 % and answered 3-22 % more (five
# back-to-back pairs, 2026-12-01), the writer spending a little more per record.
MAX_APPENDS_IN_FLIGHT = 4
_PROJECT_ROOT = Path(__file__).resolve().parent.parent

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


class AuditNote:
    """What a handler adds to its request's audit record (see ``gateway.app``)."""

    __slots__ = ("codes", "detail", "purpose")

    def __init__(self) -> None:
        self.codes: list[str] | None = None  # the codes a sealing produced
        self.detail: dict[str, Any] = {}
        self.purpose: str | None = None  # as checked; else read from the query


AUDIT_NOTE = web.RequestKey("audit_note", AuditNote)


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


def append_rows(conn: sqlite3.Connection, rows: list[list[Any]]) -> int:
    """:func:`append` for events given as their fields (the writer's hot path); returns
    the last ``seq``. Call inside a write transaction."""
    row = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    last_seq, prev_hash = (0, GENESIS) if row is None else (int(row[0]), bytes(row[1]))
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
            json.dumps(fields[8], ensure_ascii=False, sort_keys=True) if fields[8] else "{}",
            prev,
            digest,
        )
        for seq, prev, digest, fields in chain_fields(prev_hash, last_seq + 1, rows)
    ]
    insert_rows(conn, "audit", _COLUMNS, stored)
    return stored[-1][0] if stored else last_seq


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


class _GroupFuture(asyncio.Future[Any]):
    """The one future a group of requests waits on for its records' write.

    A waiter that is cancelled must not cancel the write for its neighbours: ``cancel``
    refuses, so a cancelled waiter's task ends when its group is settled (asyncio defers
    the cancellation to then). Cheaper per request than wrapping the wait in ``shield``.
    """

    def cancel(self, msg: Any | None = None) -> bool:
        return False


class AuditLog:
    """Appends events for the gateway through the audit writer process; one per worker.

    The records of the requests handled in one turn of the event loop go as one frame
    (one pipe write, one commit), sent at the end of that turn while fewer than
    :data:`MAX_APPENDS_IN_FLIGHT` are with the writer (else as soon as one is answered):
    the writer answers frames in order, and a reader task settles each group's one
    future as its answer comes. So a request waits for its own group's write only.
    """

    def __init__(
        self,
        path: Path,
        *,
        head_path: Path,
        signing: SigningService | None,
        key_label: str = AUDIT_KEY_LABEL,
        checkpoint_seconds: float = CHECKPOINT_SECONDS,
    ) -> None:
        self._path = path
        self._head_path = head_path
        self._signing = signing
        self._key_label = key_label
        self._checkpoint_seconds = checkpoint_seconds
        # the group gathering (until the loop's turn ends, or while the writer holds
        # MAX_APPENDS_IN_FLIGHT groups, until one is answered): its rows and one future
        self._gathering: tuple[list[list[Any]], asyncio.Future[Any]] | None = None
        self._flush_scheduled = False
        # sent frames awaiting their answer, in order: (id, operation, rows, future, sent at)
        self._in_flight: collections.deque[tuple[int, str, int, asyncio.Future[Any], float]] = (
            collections.deque()
        )
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._ids = 0
        self._failing_since: float | None = None
        self._since_checkpoint = 0
        self._closed = False
        self.groups_written = 0  # for metrics: records per group show how well writes share
        self.records_written = 0

    @property
    def healthy(self) -> bool:
        return self._failing_since is None and self._proc is not None

    async def start(self) -> None:
        """Start the writer process; a failure leaves the log refusing until a probe works."""
        try:
            await self._spawn()
        except AuditUnavailable as exc:
            self._failed(exc)

    async def _spawn(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(_PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway.audit_writer",
            str(self._path),
            str(WRITE_TIMEOUT),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        assert proc.stdout is not None
        try:
            async with asyncio.timeout(START_TIMEOUT):
                reply = await frames.read_frame_async(proc.stdout)
        except (
            TimeoutError,
            OSError,
            asyncio.IncompleteReadError,
            ValueError,
            frames.ProtocolError,
        ) as exc:
            await frames.stop_child(proc)
            raise AuditUnavailable("the audit writer did not start") from exc
        if reply != ["ready"]:
            await frames.stop_child(proc)
            raise AuditUnavailable("the audit writer cannot open the store")
        self._proc = proc
        self._reader = asyncio.create_task(self._read_replies(proc), name="audit-replies")
        self._watchdog = asyncio.create_task(self._watch(proc), name="audit-watchdog")

    async def record(self, events: list[AuditEvent]) -> None:
        """Durable on return; raises :class:`AuditUnavailable` otherwise."""
        await self.record_rows([_fields(e) for e in events])

    async def record_rows(self, rows: list[list[Any]]) -> None:
        """:meth:`record` for events given as their fields in :class:`AuditEvent` order.

        Rows join the gathering group and wait on its one future: per request, auditing
        costs an append and a wait. A group goes to the writer at the end of the loop's
        turn, or, while the writer holds :data:`MAX_APPENDS_IN_FLIGHT` groups, as soon as
        one is answered: under load the groups grow instead of the frames multiplying
        (each frame costs the worker a write, a reply to read and a wake-up, and the
        writer a transaction).
        """
        if self._proc is None:
            raise AuditUnavailable("the audit writer is not running")
        group = self._gathering
        if group is None or len(group[0]) >= MAX_GROUP:
            if group is not None:
                self._send_gathered()  # a full group goes at once
            group = self._gathering = ([], _GroupFuture())
            if not self._flush_scheduled:
                self._flush_scheduled = True
                asyncio.get_running_loop().call_soon(self._flush)
        group[0].extend(rows)
        await group[1]

    def _flush(self) -> None:
        """The end of a loop turn: send the gathered group unless the writer holds
        :data:`MAX_APPENDS_IN_FLIGHT` (the next answer sends it)."""
        self._flush_scheduled = False
        if self._appends_in_flight < MAX_APPENDS_IN_FLIGHT:
            self._send_gathered()

    @property
    def _appends_in_flight(self) -> int:
        """Append frames the writer has not answered (a few at most: a short scan)."""
        return sum(1 for entry in self._in_flight if entry[1] == "append")

    def _send_gathered(self) -> None:
        group, self._gathering = self._gathering, None
        if group is not None:
            self._send("append", group[0], group[1])

    def _send(self, operation: str, payload: list[list[Any]], future: asyncio.Future[Any]) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdin.is_closing():
            # a dying writer: the reply reader sees its end and fails what is in flight
            _settle([future], error=AuditUnavailable("the audit writer is not running"))
            return
        self._ids += 1
        frame = [self._ids, operation, payload] if operation == "append" else [self._ids, operation]
        proc.stdin.write(frames.pack(frame))
        self._in_flight.append((self._ids, operation, len(payload), future, time.monotonic()))

    async def _call(self, operation: str) -> Any:
        if self._proc is None:
            raise AuditUnavailable("the audit writer is not running")
        self._send_gathered()  # what gathered before goes first
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._send(operation, [], future)
        try:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for returns the result
            # and drops a cancellation that arrives as the reply does, so a task
            # cancelled at shutdown (the duties loop) went on forever.
            async with asyncio.timeout(WRITE_TIMEOUT + 5):
                return await future
        except TimeoutError:
            raise AuditUnavailable(f"the audit writer did not answer {operation!r}") from None

    async def _watch(self, proc: asyncio.subprocess.Process) -> None:
        """Kill a writer that stopped answering; its reply reader then fails what was in
        flight. A task of its own: nothing that waits on the writer can delay it."""
        while self._proc is proc and proc.returncode is None:
            await asyncio.sleep(PROBE_SECONDS / 2)
            if self._overdue():
                log.error("the audit writer stopped answering; killing it")
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                return

    async def _read_replies(self, proc: asyncio.subprocess.Process) -> None:
        """Settle each sent frame's future as the writer answers it, in order.

        Always reading, so a writer that dies is noticed at once even when idle; a writer
        that hangs is killed by :meth:`run` (see :meth:`_overdue`), which ends this too.
        """
        assert proc.stdout is not None
        in_flight = self._in_flight
        try:
            while True:
                try:
                    reply = await frames.read_frame_async(proc.stdout)
                except asyncio.IncompleteReadError:
                    if self._closed and not in_flight:
                        return  # stopped on purpose
                    raise
                if not in_flight:
                    raise AuditUnavailable("the audit writer answered a frame never sent")
                call_id, operation, rows, future, _ = in_flight[0]
                if not isinstance(reply, list) or len(reply) != 3 or reply[0] != call_id:
                    raise AuditUnavailable("the audit writer answered out of turn")
                in_flight.popleft()
                if operation == "append":
                    self._send_gathered()  # what gathered while the writer was full
                if reply[1] != "ok":
                    self._failed(AuditUnavailable(str(reply[2])))
                    _settle([future], error=AuditUnavailable("the audit record was not written"))
                    continue
                if operation == "append":
                    self._since_checkpoint += rows
                    self.groups_written += 1
                    self.records_written += rows
                self._recovered()
                _settle([future], value=reply[2])
        except Exception as exc:
            # The writer died or misbehaved (or this reader has a bug): what was sent or
            # is gathering is refused, and the next probe starts a new writer.
            if not isinstance(
                exc,
                (
                    OSError,
                    asyncio.IncompleteReadError,
                    ValueError,
                    frames.ProtocolError,
                    AuditUnavailable,
                ),
            ):
                log.error("audit reply reader failed", exc_info=exc)
            self._failed(exc)
            if self._proc is proc:
                self._proc = None
            failed = [future for _, _, _, future, _ in in_flight]
            in_flight.clear()
            if self._gathering is not None:
                failed.append(self._gathering[1])
                self._gathering = None
            _settle(failed, error=AuditUnavailable("the audit writer failed"))
            await frames.stop_child(proc)

    def _overdue(self) -> bool:
        """Whether the oldest unanswered frame has waited past the write timeout."""
        return bool(self._in_flight) and (
            time.monotonic() - self._in_flight[0][4] > WRITE_TIMEOUT + 5
        )

    def _failed(self, error: BaseException) -> None:
        if self._failing_since is None:
            log.error(
                "audit trail cannot be written (%s): refusing audited requests",
                type(error).__name__,
            )
            self._failing_since = time.monotonic()

    def _recovered(self) -> None:
        if self._failing_since is not None:
            log.info("audit trail writable again")
            self._failing_since = None

    async def probe(self) -> None:
        """Try an empty write (starting a writer if none runs); success makes it healthy."""
        try:
            if self._proc is None:
                await self._spawn()
            await self._call("probe")
        except AuditUnavailable:
            return

    async def checkpoint(self) -> SignedHead | None:
        """Sign the chain's head with the audit key and record the checkpoint."""
        if self._signing is None or self._proc is None:
            return None
        head_row = await self._call("head")
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
        if self._since_checkpoint and self.healthy:
            try:
                await self.checkpoint()
            except (HsmError, AuditUnavailable) as exc:
                log.warning("final audit checkpoint skipped (%s)", type(exc).__name__)
        self._closed = True
        self._send_gathered()
        deadline = time.monotonic() + WRITE_TIMEOUT + 5
        while self._in_flight and self._proc is not None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        proc, self._proc = self._proc, None
        if proc is not None:
            await frames.stop_child(proc)
        if self._reader is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await self._reader
        if self._watchdog is not None:
            self._watchdog.cancel()
            await asyncio.gather(self._watchdog, return_exceptions=True)


def _fields(event: AuditEvent) -> list[Any]:
    return [
        event.action,
        event.client_id,
        event.role,
        event.purpose,
        event.code,
        event.result,
        event.request_id,
        event.at,
        event.detail,
    ]


def _settle(
    futures: list[asyncio.Future[Any]], *, value: Any = None, error: BaseException | None = None
) -> None:
    for future in futures:
        if future.done():
            continue
        if error is None:
            future.set_result(value)
        else:
            future.set_exception(error)
            future.exception()  # retrieved: a group whose waiters all left is not an error


def event_detail(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}
