"""The audit writer process (``python -m sealgate.gateway.audit_writer STORE TIMEOUT JOURNAL``).

Chaining records (encoding, hashing) is Python work; done in a thread of the gateway it
holds the GIL against the event loop and cost about a quarter of verification throughput.
In a process of its own, reading the worker's journal (:mod:`sealgate.gateway.audit_journal`), it
costs the gateway one file write per turn of its event loop and no round trip.

It chains the journal ``JOURNAL`` names and its successors, a few milliseconds behind the
worker; at start it first finishes the journals whose workers are gone (including this
worker's older files, if the writer before it died). Frames of :mod:`sealgate.hsm.frames` on
stdin/stdout:

- child → parent at start: ``["ready"]``, or ``["error", message]`` and exit;
- parent → child: ``[id, "drain"]`` (chain what the journal holds now), ``[id, "head"]``
  or ``[id, "probe"]`` (can the store be written?);
- child → parent: ``[id, "ok", value]`` (``None``; ``[seq, hash]`` or ``None``; ``None``)
  or ``[id, "error", message]``; and unasked, with id 0, ``[0, "chained", [n, offset]]``
  when the worker's journal is chained up to file ``n``'s ``offset`` (after progress, or
  after a failure mended), ``[0, "error", message]`` after each pass that failed, and
  ``[0, "alive", None]`` every :data:`HEARTBEAT_SECONDS` from a thread of its own. A
  message never quotes a record.

The heartbeat says the process runs, not that it chains: it goes on while a pass waits
out a locked store (the worker must not take that for a hang), and stops only when the
whole process does (SIGSTOP, a freeze), which the worker then sees within a second
(``sealgate.gateway.audit.HEARTBEAT_LIMIT``) instead of after the 10 s a silent pass
may take.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO

from sealgate.gateway.audit_journal import (
    file_name,
    journal_files,
    parse_name,
    read_groups,
    try_lock,
)
from sealgate.gateway.audit_store import append_rows, open_store, probe_store, stored_head
from sealgate.hsm import frames
from sealgate.verify.sqlite_toolkit import Checkpointer, connect, write_transaction

POLL_BUSY = 0.02  # after a pass that chained something: big enough passes to share a commit
POLL_IDLE = 0.05
RETRY_SECONDS = 0.25  # after a failed pass
HEARTBEAT_SECONDS = 0.2
FORGET_FINISHED_SECONDS = 7 * 24 * 3600
_FAILURES = (sqlite3.Error, OSError, frames.ProtocolError, ValueError, TypeError, KeyError)


def _fields(fields: list[Any]) -> list[Any]:
    """An event's fields as journaled, checked for shape (a bad frame fails its pass)."""
    action, client, role, purpose, code, result, request, at, detail = fields
    return [action, client, role, purpose, code, result, request, float(at), dict(detail)]


def chain_pass(
    conn: sqlite3.Connection, path: Path, fd: int, *, final: bool
) -> tuple[int, bool, int]:
    """One transaction: chain ``path``'s frames from the offset the store holds for it,
    and store the new offset. Returns ``(offset, done, records)``; a file is done when it
    is ``final`` (no more writes will come) and nothing whole is left to chain."""
    with write_transaction(conn):
        row = conn.execute(
            "SELECT offset, done_at FROM audit_journal WHERE name = ?", (path.name,)
        ).fetchone()
        offset, done = (0, False) if row is None else (int(row[0]), row[1] is not None)
        records = 0
        if not done:
            groups, end = read_groups(fd, offset)
            rows = [_fields(fields) for group in groups for fields in group]
            if rows:
                append_rows(conn, rows)
                records = len(rows)
            done = final and not groups
            if done and (torn := os.fstat(fd).st_size - end) > 0:
                print(f"audit writer: {torn} torn bytes at the end of {path.name}", file=sys.stderr)
            if row is None or end != offset or done:
                conn.execute(
                    "INSERT INTO audit_journal (name, offset, done_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET offset = excluded.offset, "
                    "done_at = excluded.done_at",
                    (path.name, end, time.time() if done else None),
                )
            offset = end
    return offset, done, records


def finish(conn: sqlite3.Connection, path: Path, fd: int) -> None:
    """Chain a final file to its end and remove it."""
    while not chain_pass(conn, path, fd, final=True)[1]:
        pass
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def finish_orphans(conn: sqlite3.Connection, directory: Path) -> None:
    """Finish every journal whose worker is gone (its lock can be taken), in order; and
    forget files finished long ago (a writer may still hold a removed file open for a
    while, and must find it finished, not new)."""
    for path in journal_files(directory):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue  # finished by another writer meanwhile
        try:
            if try_lock(fd):
                finish(conn, path, fd)
        finally:
            os.close(fd)
    with write_transaction(conn):
        conn.execute(
            "DELETE FROM audit_journal WHERE done_at < ?",
            (time.time() - FORGET_FINISHED_SECONDS,),
        )


class Follower:
    """Chains one worker's journal: its current file, then each successor."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self._directory = path.parent
        self._lineage, self.n = parse_name(path.name)
        self._path = path
        self._fd = os.open(path, os.O_RDONLY)
        self.offset = 0  # as far as this process knows; the store's offset decides

    def chain(self) -> bool:
        """Chain what is new; whether anything was."""
        progressed = False
        while True:
            # The successor is looked for before reading: the worker writes its last
            # frame to a file before it makes the next, so this read sees all of it.
            successor = self._directory / file_name(self._lineage, self.n + 1)
            final = successor.exists()
            if not final and os.fstat(self._fd).st_size <= self.offset:
                return progressed
            self.offset, done, records = chain_pass(self._conn, self._path, self._fd, final=final)
            progressed = progressed or records > 0
            if not done:
                if records == 0:
                    return progressed
                continue
            with contextlib.suppress(FileNotFoundError):
                self._path.unlink()
            self._advance()
            progressed = True

    def _advance(self) -> None:
        """Move to the next file of the lineage. Ones that are gone were finished by
        another writer (only final files are finished, and removed once finished)."""
        while True:
            later = sorted(
                n
                for lineage, n in (parse_name(p.name) for p in journal_files(self._directory))
                if lineage == self._lineage and n > self.n
            )
            if not later:
                raise FileNotFoundError(f"no journal file follows {self._path.name}")
            n = later[0]
            path = self._directory / file_name(self._lineage, n)
            try:
                fd = os.open(path, os.O_RDONLY)
                break
            except FileNotFoundError:
                continue  # finished meanwhile: look again
        os.close(self._fd)
        self._fd, self._path, self.n, self.offset = fd, path, n, 0

    def close(self) -> None:
        """At the worker's end: finish its file if it is closed (its lock can be taken)."""
        try:
            self.chain()
            if try_lock(self._fd):
                finish(self._conn, self._path, self._fd)
        finally:
            os.close(self._fd)


class Output:
    """Frames to the worker, from the chaining thread and the heartbeat's alike: one
    lock, so that two frames never interleave on the pipe."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def write(self, obj: Any) -> None:
        with self._lock:
            frames.write_frame(self._stream, obj)


def beat(out: Output, stop: threading.Event) -> None:
    """The heartbeat thread: ``[0, "alive", None]`` until ``stop`` or the pipe breaks."""
    while not stop.wait(HEARTBEAT_SECONDS):
        try:
            out.write([0, "alive", None])
        except (OSError, ValueError):  # the worker is gone, or stdout closed at exit
            return


class Writer:
    def __init__(
        self, conn: sqlite3.Connection, store: Path, follower: Follower, out: Output
    ) -> None:
        self._conn = conn
        self._store = store
        self._follower = follower
        self._out = out
        self.failing = False

    def chain(self) -> bool:
        """Chain what is new and tell the worker how far its journal is chained (when
        that moved, or a failure is mended); raises what failed (after telling)."""
        try:
            progressed = self._follower.chain()
            if self.failing and not progressed:
                # Nothing to chain is no proof of mending: a full disk takes no pass
                # at all. Only a real write (with room after it) ends the failure.
                probe_store(self._conn, self._store)
        except _FAILURES as exc:
            # every time: it is also the worker's sign that this writer is not hung
            self._out.write([0, "error", _message(exc)])
            self.failing = True
            raise
        if progressed or self.failing:
            self._out.write([0, "chained", [self._follower.n, self._follower.offset]])
        self.failing = False
        return progressed

    def answer(self, message: Any) -> None:
        call_id, operation = message[0], message[1]
        try:
            self.chain()
            value: Any = None
            if operation == "head":
                head = stored_head(self._conn)
                value = None if head is None else list(head)
            elif operation == "probe":
                probe_store(self._conn, self._store)
            reply = [call_id, "ok", value]
        except _FAILURES as exc:
            reply = [call_id, "error", _message(exc)]
        self._out.write(reply)

    def serve(self, stdin: int) -> None:
        """Until the worker closes stdin: answer its calls, chain its journal."""
        inbox = bytearray()
        wait = 0.0
        while True:
            ready, _, _ = select.select([stdin], [], [], wait)
            if ready:
                data = os.read(stdin, 1 << 16)
                if not data:
                    if inbox:
                        raise frames.ProtocolError("truncated frame")
                    return
                inbox += data
                messages, used = frames.split(inbox)
                del inbox[:used]
                for message in messages:
                    self.answer(message)
            try:
                wait = POLL_BUSY if self.chain() else POLL_IDLE
            except _FAILURES:
                wait = RETRY_SECONDS


def _message(exc: BaseException) -> str:
    return type(exc).__name__ + ": " + str(exc)[:200]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    # The worker decides when this ends, by closing stdin, after its last records: a
    # SIGTERM or Ctrl-C to the whole process group (systemd, a terminal) must not end
    # the writer before them. A worker that dies closes stdin too.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    stdout = Output(sys.stdout.buffer)
    sys.stdout = sys.stderr  # stray prints must not corrupt the frames
    try:
        store = open_store_with_timeout(args[0], float(args[1]))
        follower = Follower(store, Path(args[2]))
    except (sqlite3.Error, OSError, IndexError, ValueError) as exc:
        stdout.write(["error", type(exc).__name__])
        return 2
    # Every second, beside the writer: the store's WAL never waits inside a pass's commit.
    checkpoints = Checkpointer(Path(args[0]), name="audit-checkpoints")
    stdout.write(["ready"])
    stop_beating = threading.Event()
    heartbeat = threading.Thread(
        target=beat, args=(stdout, stop_beating), name="heartbeat", daemon=True
    )
    heartbeat.start()
    writer = Writer(store, Path(args[0]), follower, stdout)
    try:
        finish_orphans(store, Path(args[2]).parent)
    except _FAILURES as exc:
        # Retried by the next writer to start; this worker's own journal goes on.
        print(f"audit writer: journals left unfinished ({_message(exc)})", file=sys.stderr)
    status = 0
    try:
        writer.serve(sys.stdin.fileno())
    except frames.ProtocolError as exc:
        # a truncated frame: the parent died mid-write; anything else is a bug of ours
        print(f"audit writer: {exc}", file=sys.stderr)
        status = 4
    except BrokenPipeError:
        pass  # the parent went away
    try:
        follower.close()  # with the worker gone, its journal is final: finish it
    except _FAILURES as exc:
        print(f"audit writer: journal left for the next writer ({_message(exc)})", file=sys.stderr)
    finally:
        stop_beating.set()
        checkpoints.close()
        store.close()
    return status


def open_store_with_timeout(path: str, timeout: float) -> sqlite3.Connection:
    open_store(Path(path)).close()
    # NORMAL (WAL): as durable as the journal the records come from (the page cache);
    # a lock held past ``timeout`` fails the pass, and the worker refuses requests once
    # its journal is sealgate.gateway.audit.LAG_LIMIT behind.
    conn = connect(Path(path), busy_timeout=timeout, synchronous="NORMAL")
    conn.execute("PRAGMA wal_autocheckpoint = 0")  # see sealgate.verify.sqlite_toolkit.Checkpointer
    return conn


if __name__ == "__main__":
    sys.exit(main())
