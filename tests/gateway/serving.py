"""Real `sealgate serve` processes for tests: started on a free port, stopped for sure."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sealgate.bench.processes import free_port

__all__ = ["child_pid", "free_port", "listens", "serving", "wait_until_serving"]

SEALGATE = [sys.executable, "-m", "sealgate.gateway.cli"]


def wait_until_serving(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"sealgate serve exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("sealgate serve did not start listening")


def listens(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds a TCP socket listening on ``port`` (Linux's /proc):
    with SO_REUSEPORT a connection says nothing of which worker took it."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # LISTEN
                    inodes.add(f"socket:[{inode}]")
    try:
        descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:  # gone
        return False
    for fd in descriptors:
        with contextlib.suppress(OSError):
            if os.readlink(fd) in inodes:
                return True
    return False


@contextmanager
def serving(
    home: Path,
    port: int,
    workers: int = 1,
    env: dict[str, str] | None = None,
    log: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """`sealgate serve` in its own session; ``env`` adds variables (SEALGATE_REDIS_URL),
    ``log`` keeps its stderr (else it is dropped)."""
    with contextlib.ExitStack() as files:
        stderr = files.enter_context(log.open("wb")) if log is not None else subprocess.DEVNULL
        command = [*SEALGATE, "--home", str(home), "serve", "--port", str(port)]
        process = subprocess.Popen(
            [*command, "--workers", str(workers)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    try:
        wait_until_serving(port, process)
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def child_pid(session: int, module: str) -> int | None:
    """The one process of the gateway's session running ``python -m module``."""
    out = subprocess.run(
        ["pgrep", "-s", str(session), "-f", module],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    return int(out[0]) if len(out) == 1 else None
