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
import contextlib
import json
import logging
import os
import sqlite3
import struct
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack

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
from verify.sqlite import connect

log = logging.getLogger("sealgate.audit")

AUDIT_KEY_LABEL = "sealgate-audit-1"
CHECKPOINT_SECONDS = 10.0
WRITE_TIMEOUT = 5.0
PROBE_SECONDS = 1.0
START_TIMEOUT = 15.0
MAX_GROUP = 5000
_HEADER = struct.Struct(">I")
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
    """Appends events for the gateway through the audit writer process; one per worker.

    Events of concurrent requests are sent together: while one group is being written,
    the next gathers, so one pipe round trip and one commit serve many requests.
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
        self._queue: list[tuple[str, list[list[Any]], asyncio.Future[Any]]] = []
        self._wakeup = asyncio.Event()
        self._proc: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task[None] | None = None
        self._ids = 0
        self._failing_since: float | None = None
        self._since_checkpoint = 0
        self._closed = False

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
            reply = await asyncio.wait_for(_read_frame(proc.stdout), START_TIMEOUT)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            await _stop(proc)
            raise AuditUnavailable("the audit writer did not start") from exc
        if reply != ["ready"]:
            await _stop(proc)
            raise AuditUnavailable("the audit writer cannot open the store")
        self._proc = proc
        self._pump = asyncio.create_task(self._run_pump(proc), name="audit-pump")

    async def record(self, events: list[AuditEvent]) -> None:
        """Durable on return; raises :class:`AuditUnavailable` otherwise."""
        if self._proc is None:
            raise AuditUnavailable("the audit writer is not running")
        await self._call("append", [_fields(e) for e in events])

    async def _call(self, operation: str, payload: list[list[Any]]) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((operation, payload, future))
        self._wakeup.set()
        # Once queued the record is written whether the caller waits or not: a cancelled
        # caller only cancels its own future, which settling then skips.
        return await future

    def _take(self) -> tuple[str, list[list[Any]], list[asyncio.Future[Any]]]:
        """The next frame: every queued append together, or one other operation."""
        operation, payload, future = self._queue.pop(0)
        if operation != "append":
            return operation, payload, [future]
        events, futures = list(payload), [future]
        while self._queue and self._queue[0][0] == "append" and len(events) < MAX_GROUP:
            _, more, other = self._queue.pop(0)
            events += more
            futures.append(other)
        return "append", events, futures

    async def _run_pump(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        futures: list[asyncio.Future[Any]] = []
        try:
            while True:
                if not self._queue:
                    if self._closed:
                        return
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                operation, payload, futures = self._take()
                self._ids += 1
                frame = (
                    [self._ids, operation, payload]
                    if operation == "append"
                    else [self._ids, operation]
                )
                proc.stdin.write(_pack(frame))
                await proc.stdin.drain()
                reply = await asyncio.wait_for(_read_frame(proc.stdout), WRITE_TIMEOUT + 5)
                if not isinstance(reply, list) or len(reply) != 3 or reply[0] != self._ids:
                    raise AuditUnavailable("the audit writer answered out of turn")
                if reply[1] != "ok":
                    self._failed(AuditUnavailable(str(reply[2])))
                    _settle(
                        futures, error=AuditUnavailable("the audit record could not be written")
                    )
                else:
                    if operation == "append":
                        self._since_checkpoint += len(payload)
                    self._recovered()
                    _settle(futures, value=reply[2])
                futures = []
        except (
            OSError,
            asyncio.IncompleteReadError,
            TimeoutError,
            ValueError,
            AuditUnavailable,
        ) as exc:
            # The writer died or hung: what was in flight and queued is refused, and the
            # next probe starts a new writer.
            self._failed(exc)
            _settle(futures, error=AuditUnavailable("the audit writer failed"))
            queued, self._queue = self._queue, []
            _settle([f for _, _, f in queued], error=AuditUnavailable("the audit writer failed"))
            self._proc = None
            await _stop(proc)

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
            await self._call("probe", [])
        except AuditUnavailable:
            return

    async def checkpoint(self) -> SignedHead | None:
        """Sign the chain's head with the audit key and record the checkpoint."""
        if self._signing is None or self._proc is None:
            return None
        head_row = await self._call("head", [])
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
        self._wakeup.set()
        if self._pump is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._pump, WRITE_TIMEOUT + 5)
        if self._proc is not None:
            await _stop(self._proc)
            self._proc = None


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


def _pack(message: Any) -> bytes:
    data: bytes = msgpack.packb(message, use_bin_type=True)
    return _HEADER.pack(len(data)) + data


async def _read_frame(reader: asyncio.StreamReader) -> Any:
    (length,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
    return msgpack.unpackb(await reader.readexactly(length), raw=False)


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.stdin is not None:
        proc.stdin.close()
    try:
        await asyncio.wait_for(proc.wait(), 5)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


def event_detail(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}
