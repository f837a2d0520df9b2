"""The audit writer process (``python -m gateway.audit_writer STORE TIMEOUT``).

Chaining records (encoding, hashing) is Python work; done in a thread of the gateway it
holds the GIL against the event loop and cost about a quarter of verification throughput.
In a process of its own it costs the gateway one pipe write per group of records.

Frames of :mod:`hsm.frames` on stdin/stdout:

- child → parent at start: ``["ready"]``, or ``["error", message]`` and exit;
- parent → child: ``[id, "append", [event, ...]]`` (an event is the fields of
  :class:`verify.audit.AuditEvent` in order), ``[id, "head"]`` or ``[id, "probe"]``;
- child → parent: ``[id, "ok", value]`` (the last ``seq``; ``[seq, hash]`` or ``None``;
  ``None``) or ``[id, "error", message]``. A message never quotes a record.
"""

from __future__ import annotations

import signal
import sqlite3
import sys
import threading
import time
from typing import Any, BinaryIO

from gateway.audit import append_rows, open_store
from hsm import frames


def _fields(fields: list[Any]) -> list[Any]:
    """An event's fields as sent, checked for shape (a bad frame fails its group)."""
    action, client, role, purpose, code, result, request, at, detail = fields
    return [action, client, role, purpose, code, result, request, float(at), dict(detail)]


def _serve(conn: sqlite3.Connection, stdin: BinaryIO, stdout: BinaryIO) -> None:
    while (message := frames.read_frame(stdin)) is not None:
        call_id, operation = message[0], message[1]
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if operation == "append":
                    value: Any = append_rows(conn, [_fields(e) for e in message[2]])
                elif operation == "head":
                    row = conn.execute(
                        "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"
                    ).fetchone()
                    value = None if row is None else [int(row[0]), bytes(row[1])]
                else:
                    value = None
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            reply = [call_id, "ok", value]
        except (sqlite3.Error, ValueError, TypeError, KeyError, IndexError) as exc:
            reply = [call_id, "error", type(exc).__name__ + ": " + str(exc)[:200]]
        frames.write_frame(stdout, reply)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when this ends
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # stray prints must not corrupt the frames
    try:
        store = open_store_with_timeout(args[0], float(args[1]))
    except (sqlite3.Error, OSError, IndexError, ValueError) as exc:
        frames.write_frame(stdout, ["error", type(exc).__name__])
        return 2
    checkpoints = threading.Thread(
        target=_checkpoint_forever, args=(args[0],), name="audit-checkpoints", daemon=True
    )
    checkpoints.start()
    frames.write_frame(stdout, ["ready"])
    try:
        _serve(store, stdin, stdout)
    except frames.ProtocolError as exc:
        # a truncated frame: the parent died mid-write; anything else is a bug of ours
        print(f"audit writer: {exc}", file=sys.stderr)
        return 4
    except BrokenPipeError:
        return 0  # the parent went away
    finally:
        store.close()
    return 0


CHECKPOINT_SECONDS = 1.0
WAL_RESTART_BYTES = 64 * 1024 * 1024
_PAGE_BYTES = 4096  # SQLite's default page size, which the audit store keeps


def _checkpoint_forever(path: str) -> None:
    """Copy the WAL into the store beside the writer, never inside its commits.

    SQLite's automatic checkpoint runs in the committing connection and fsyncs there:
    every few thousand records one group waited tens of milliseconds for it, and every
    request in that group with it. A passive checkpoint from this thread copies what it
    can without blocking the writer. Under steady writes a passive checkpoint never
    catches up with the end of the WAL, so the WAL would only grow: past
    :data:`WAL_RESTART_BYTES` a RESTART checkpoint waits for the writer once and lets the
    next commit start the WAL from the beginning (a short pause every ~200,000 records).
    """
    from pathlib import Path

    from verify.sqlite import connect

    conn: sqlite3.Connection | None = None
    while True:
        time.sleep(CHECKPOINT_SECONDS)
        try:
            if conn is None:
                conn = connect(Path(path), synchronous="NORMAL")
            # (busy, frames in the WAL since it last started over, frames copied back);
            # the file's size says nothing: a restarted WAL is reused, not shrunk.
            _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if frames * _PAGE_BYTES > WAL_RESTART_BYTES:
                conn.execute("PRAGMA wal_checkpoint(RESTART)")
        except (sqlite3.Error, OSError) as exc:
            # The next round retries; the writer is unaffected meanwhile.
            print(f"audit checkpoint failed: {type(exc).__name__}", file=sys.stderr)
            if conn is not None:
                conn.close()
                conn = None


def open_store_with_timeout(path: str, timeout: float) -> sqlite3.Connection:
    from pathlib import Path

    from verify.sqlite import connect

    open_store(Path(path)).close()
    # See gateway.audit: NORMAL (WAL) keeps a killed gateway from losing records without
    # an fsync per group; a lock held past ``timeout`` fails the write (and the request).
    conn = connect(Path(path), busy_timeout=timeout, synchronous="NORMAL")
    conn.execute("PRAGMA wal_autocheckpoint = 0")  # see _checkpoint_forever
    return conn


if __name__ == "__main__":
    sys.exit(main())
