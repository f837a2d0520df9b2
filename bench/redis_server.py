"""A real, throwaway ``redis-server`` for tests and the capacity harness.

Start, SIGKILL, restart on the same port, stop.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from sealgate.bench.processes import free_port
from sealgate.errors import Error

START_TIMEOUT = 10.0


class RedisServerMissing(Error, RuntimeError):
    """``redis-server`` is not on PATH."""


def _ping(port: int, timeout: float = 0.2) -> bool:
    """A raw RESP PING, so this helper does not depend on the client under test."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
            conn.sendall(b"*1\r\n$4\r\nPING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One throwaway, non-persistent ``redis-server`` on 127.0.0.1."""

    def __init__(self, directory: Path, extra_args: Sequence[str] = ()) -> None:
        self.directory = directory
        self.extra_args = tuple(extra_args)  # e.g. a cluster node's settings
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log = directory / "redis.log"

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("redis-server was never started")
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisServerMissing(
                "redis-server is not installed (or not on PATH); the cache tests need a "
                "real one: install it (`make test` does, via scripts/system-packages.sh)"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.port is None:
            self.port = free_port()
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    binary,
                    *self.extra_args,
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--dir",
                    str(self.directory),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not _ping(self.port):
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited with {self._process.returncode}: "
                    f"{self._log.read_text(errors='replace')[-2000:]}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not answer PING on port {self.port}")
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL: no shutdown, sockets reset, as in a crash."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def restart(self) -> None:
        """Start again on the same port (after :meth:`kill` or :meth:`stop`)."""
        self.kill()
        self.start()

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
