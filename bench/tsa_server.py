"""A real ``sealgate tsa serve`` for tests, ``make run`` and the capacity harness.

Its token, key and certificates are made in ``directory`` on first start (about a second);
a second start reuses them.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
from pathlib import Path

from sealgate.bench.processes import free_port, service

__all__ = ["TsaServer"]


class TsaServer:
    """One development TSA on 127.0.0.1, its home in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port: int | None = None
        self._stack: contextlib.ExitStack | None = None
        self._pid: int | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the TSA was never started")
        return f"http://127.0.0.1:{self.port}/"

    @property
    def root_path(self) -> Path:
        """The TSA's root certificate (PEM): what verifiers trust for its timestamps."""
        return self.directory / "tsa-root.pem"

    @property
    def pid(self) -> int | None:
        return self._pid

    def start(self) -> None:
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        if self.port is None:
            self.port = free_port()
        stack = contextlib.ExitStack()
        argv = [sys.executable, "-m", "sealgate.gateway.cli", "tsa", "serve"]
        argv += ["--home", str(self.directory), "--port", str(self.port)]
        process = stack.enter_context(
            service(argv, port=self.port, log=self.directory.parent / "tsa.log")
        )
        self._pid = process.pid
        self._stack = stack

    def trusted_by(self, home: Path) -> None:
        """Make the gateway home ``home`` trust this TSA's timestamps (its tsa-roots.pem)."""
        shutil.copyfile(self.root_path, home / "tsa-roots.pem")

    def stop(self) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None
            self._pid = None

    def __enter__(self) -> TsaServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
