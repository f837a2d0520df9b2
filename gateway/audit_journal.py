"""The audit journal: each worker's append-only file of records on their way to the store.

A worker writes the records of one turn of its event loop as one frame (:mod:`sealgate.hsm.frames`:
a length, then msgpack of the records' fields) with one ``write()`` to a file of its own,
and answers once that returns: the same durability as a commit of the store with
``synchronous=NORMAL`` (the page cache; a killed process loses nothing). Its audit
writer chains the frames into the store and keeps how far it got in the store, in the
same transaction, so each record is chained exactly once, whoever chains it.

Waiting for the writer's round trip instead had the worker idle under load and its
answers wait behind the writer's commits: with the journal, paced at 4,500 verifications
a second the p99 fell from 9.6-22 ms to 4.4-4.6 ms, and the writer's CPU a record by
half (docs/capacity.md, 2026-12-01).

Files are named ``<lineage>-<n>.jnl``: a lineage is one worker's life, ``n`` counts its
files. The worker holds an exclusive ``flock`` on the file it writes; it moves to ``n+1``
once a file passes :data:`ROTATE_BYTES`, and only after its last write to ``n``. So a
file whose successor exists, or whose lock can be taken (its worker is gone), is final.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import secrets
from pathlib import Path
from typing import Any

from sealgate.hsm import frames

log = logging.getLogger("sealgate.audit")

ROTATE_BYTES = 32 * 1024 * 1024
READ_BYTES = 8 * 1024 * 1024  # read per chaining pass at most (a group is < 1 MB)
# Room a probe asks for before it calls the trail writable again. A full disk often
# still takes a few bytes (the last page of a file has room): an empty write alone would
# call it mended, and the next group would fail again. A group is < 1 MB.
PROBE_FREE_BYTES = 1024 * 1024
_NAME = re.compile(r"^(?P<lineage>[0-9a-z]+-[0-9a-f]{8})-(?P<n>[0-9]{8})\.jnl$")


def journal_directory(store: Path) -> Path:
    """Where the journals of ``store`` live (``audit.db`` → ``audit-journal/``)."""
    return store.with_name(f"{store.stem}-journal")


def file_name(lineage: str, n: int) -> str:
    return f"{lineage}-{n:08d}.jnl"


def parse_name(name: str) -> tuple[str, int]:
    """``(lineage, n)`` of a journal file's name; ``ValueError`` for anything else."""
    match = _NAME.match(name)
    if match is None:
        raise ValueError(f"not a journal file name: {name!r}")
    return match["lineage"], int(match["n"])


def journal_files(directory: Path) -> list[Path]:
    """The journal files in ``directory``, each lineage's in order."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if _NAME.match(p.name))


def free_bytes(directory: Path) -> int:
    """Bytes an unprivileged writer may still add on ``directory``'s filesystem."""
    stats = os.statvfs(directory)
    return stats.f_bavail * stats.f_frsize


def require_room(directory: Path) -> None:
    """Raise ``OSError(ENOSPC)`` unless :data:`PROBE_FREE_BYTES` are free there."""
    free = free_bytes(directory)
    if free < PROBE_FREE_BYTES:
        raise OSError(errno.ENOSPC, f"{free} bytes free, {PROBE_FREE_BYTES} wanted")


def try_lock(fd: int) -> bool:
    """Take the exclusive lock on a journal file: only possible once its writer is gone."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class Journal:
    """The file a worker appends its audit frames to (one per worker, locked for its life).

    Raises ``OSError`` when a frame cannot be written whole; a partial frame is cut off
    again, so the file only ever holds whole frames followed by, after a crash of the
    machine, at most a torn last one.
    """

    def __init__(self, directory: Path) -> None:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.directory = directory
        self.lineage = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._fd = self._create(1)
        self.n = 1
        self.offset = 0
        self._rotate_at = ROTATE_BYTES

    @property
    def name(self) -> str:
        return file_name(self.lineage, self.n)

    def _create(self, n: int) -> int:
        # Locked before it appears under its name: a writer looking for files whose
        # worker is gone must never take a new one for an orphan.
        final = self.directory / file_name(self.lineage, n)
        temporary = self.directory / f".{final.name}.new"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        try:
            if not try_lock(fd):
                raise OSError(f"cannot lock the new audit journal {final}")
            os.rename(temporary, final)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise
        return fd

    def append(self, frame: bytes) -> None:
        """Write ``frame`` whole (to the page cache; see :meth:`sync_handle`)."""
        if self._fd < 0:
            raise OSError("the audit journal is closed")
        try:
            written = os.write(self._fd, frame)
        except OSError:
            self._cut_back()
            raise
        if written != len(frame):
            self._cut_back()
            raise OSError(f"short write to the audit journal ({written} of {len(frame)} bytes)")
        self.offset += written
        if self.offset >= self._rotate_at:
            self._rotate()

    def sync_handle(self) -> int:
        """A descriptor of the current file to ``fdatasync`` off the event loop: a
        duplicate, so that a rotation closing the journal's own cannot pull it away (the
        caller closes it).

        For frames holding the intent of a change (see :mod:`sealgate.gateway.audit`):
        the registry's commit is on the disk (SQLite's ``synchronous=FULL``, PostgreSQL's
        fsync), and its audit record must be no less durable, a power cut included.
        Other records stay in the page cache.
        """
        if self._fd < 0:
            raise OSError("the audit journal is closed")
        return os.dup(self._fd)

    def _cut_back(self) -> None:
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, self.offset)

    def _rotate(self) -> None:
        try:
            fd = self._create(self.n + 1)
        except OSError as exc:
            # Keep writing to this file; try again a little further on.
            log.warning("audit journal not rotated (%s)", type(exc).__name__)
            self._rotate_at = self.offset + ROTATE_BYTES // 4
            return
        os.close(self._fd)  # the old file is final from here on
        self._fd, self.n, self.offset = fd, self.n + 1, 0
        self._rotate_at = ROTATE_BYTES

    def close(self) -> None:
        """Close (and unlock) the file: the writer may finish it from here."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def read_groups(fd: int, offset: int, limit: int = READ_BYTES) -> tuple[list[Any], int]:
    """The whole frames from ``offset`` on (at most about ``limit`` bytes of them) and
    the offset after the last; an incomplete frame at the end is left for later.

    Raises :class:`sealgate.hsm.frames.ProtocolError` for bytes that are not a frame.
    """
    data = os.pread(fd, limit, offset)
    groups, used = frames.split(data)
    if not groups and len(data) == limit:  # one frame larger than a read
        whole = frames.HEADER.size + frames.frame_length(data[: frames.HEADER.size])
        groups, used = frames.split(os.pread(fd, whole, offset))
    return groups, offset + used
