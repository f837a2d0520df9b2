"""A real small filesystem to fill: a tmpfs, else a loop-mounted ext2 image (both need
root), else the test is skipped saying why; and a filler that keeps it full."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _run(*command: str) -> str | None:
    """``None`` on success, else why not."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    except OSError as exc:
        return f"{command[0]}: {exc.strerror}"
    return None if done.returncode == 0 else (done.stderr.strip() or f"exit {done.returncode}")


@contextmanager
def small_filesystem(directory: Path, megabytes: int) -> Iterator[str]:
    """``directory`` as the mount point of a filesystem of ``megabytes``; yields its kind."""
    directory.mkdir(parents=True, exist_ok=True)
    kind = "tmpfs"
    failed = _run(
        "mount", "-t", "tmpfs", "-o", f"size={megabytes}m,mode=0700", "tmpfs", str(directory)
    )
    if failed is not None:
        image = directory.with_name(directory.name + ".img")
        kind = "ext2 on a loop device"
        why_not = (
            _run("truncate", "-s", f"{megabytes}M", str(image))
            or _run("mkfs.ext2", "-q", "-F", "-m", "0", str(image))
            or _run("mount", "-o", "loop", str(image), str(directory))
        )
        if why_not is not None:
            pytest.skip(
                f"no small filesystem can be mounted here (tmpfs: {failed}; loop: {why_not})"
            )
    try:
        yield kind
    finally:
        if _run("umount", str(directory)) is not None:
            _run("umount", "-l", str(directory))  # a process still holds a file there


class Filler:
    """Takes every free byte of a filesystem and keeps taking what is freed (SQLite
    truncating a WAL, a journal removed), until :meth:`free` gives it all back."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "filler"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._task: asyncio.Task[None] | None = None

    def take(self) -> int:
        """Write until the disk is full; the bytes taken."""
        taken = 0
        for size in (1 << 20, 1 << 12, 1 << 9):
            block = b"\0" * size
            while True:
                try:
                    written = os.write(self._fd, block)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
                taken += written
                if written < size:
                    break
        return taken

    def fill(self) -> None:
        """Full now, and kept full from here on."""
        self.take()

        async def keep_full() -> None:
            while True:
                await asyncio.sleep(0.02)
                self.take()

        self._task = asyncio.get_running_loop().create_task(keep_full())

    async def free(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        os.close(self._fd)
        self.path.unlink()
