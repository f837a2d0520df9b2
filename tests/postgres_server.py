"""A real PostgreSQL server for tests: ``initdb`` in a temp dir, ``postgres`` on a free port.

PostgreSQL refuses to run as root, so when the suite runs as root the data directory is
handed to the ``postgres`` system user (the Debian package creates it) and the server
runs as that user. The directory is made with :func:`tempfile.mkdtemp` rather than under
pytest's temp root, which is private to the user running the suite.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

from sealgate.bench.processes import free_port

START_TIMEOUT = 30.0
SUPERUSER = "postgres"


class PostgresServerMissing(RuntimeError):
    """``initdb``/``postgres`` are not installed."""


def find_bindir() -> Path:
    """The newest ``/usr/lib/postgresql/*/bin`` (Debian), else where ``initdb`` is on PATH."""

    def major(initdb: str) -> int:
        name = Path(initdb).parent.parent.name
        return int(name) if name.isdigit() else 0

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=major)
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    if found is not None:
        return Path(found).resolve().parent
    raise PostgresServerMissing(
        "PostgreSQL is not installed (no initdb); the registry tests need a real one: "
        "install it (`make test` does, via scripts/system-packages.sh)"
    )


class PostgresServer:
    """One throwaway PostgreSQL cluster on 127.0.0.1, trust authentication, no persistence
    beyond the run."""

    def __init__(self) -> None:
        self.port: int | None = None
        self.directory: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._user: str | None = None  # run initdb/postgres as this user (when root)
        self._counter = 0

    def url(self, database: str = "postgres") -> str:
        if self.port is None:
            raise RuntimeError("postgres was never started")
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        bindir = find_bindir()
        self.directory = Path(tempfile.mkdtemp(prefix="sealgate-pg-"))
        data = self.directory / "data"
        if os.geteuid() == 0:
            self._user = "postgres"
            try:
                account = pwd.getpwnam(self._user)
            except KeyError:
                raise PostgresServerMissing(
                    "running as root needs the 'postgres' system user (the Debian "
                    "postgresql package creates it)"
                ) from None
            os.chown(self.directory, account.pw_uid, account.pw_gid)
        log = self.directory / "postgres.log"
        subprocess.run(
            [
                str(bindir / "initdb"),
                "--pgdata",
                str(data),
                "--username",
                SUPERUSER,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--no-sync",  # a throwaway cluster: no need to fsync its creation
            ],
            check=True,
            capture_output=True,
            user=self._user,
        )
        self.port = free_port()
        with log.open("ab") as out:
            self._process = subprocess.Popen(
                [
                    str(bindir / "postgres"),
                    "-D",
                    str(data),
                    "-p",
                    str(self.port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    f"unix_socket_directories={self.directory}",
                    "-c",
                    "max_connections=200",
                    # fsync stays on: the registry's "durable on return" is exercised on
                    # the real path. Only what tests never rely on is cut.
                    "-c",
                    "shared_buffers=32MB",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                user=self._user,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with psycopg.connect(self.url(), connect_timeout=1):
                    return
            except psycopg.OperationalError:
                pass
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"postgres exited with {self._process.returncode}: "
                    f"{log.read_text(errors='replace')[-2000:]}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"postgres did not accept connections on port {self.port}")
            time.sleep(0.05)

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; returns its URL. Tests share the server, not databases."""
        self._counter += 1
        name = f"{prefix}_{os.getpid()}_{self._counter}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def terminate_connections(self, database_url: str) -> None:
        """Cut every session to that database, as a server restart or failover would."""
        name = database_url.rsplit("/", 1)[1]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )

    def processes(self) -> list[int]:
        """The postmaster's pid, then its children's (the backends, the checkpointer...)."""
        if self._process is None:
            raise RuntimeError("postgres is not running")
        root = self._process.pid
        children = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # gone meanwhile
                continue
            # pid (comm) state ppid ...: comm may hold spaces, so split after its ')'
            if int(stat.rsplit(")", 1)[1].split()[1]) == root:
                children.append(int(entry.name))
        return [root, *children]

    def pause(self) -> None:
        """SIGSTOP the whole server: connections stay open and nothing answers (a hung
        database, as a frozen VM or a stalled disk would leave it)."""
        root, *_ = self.processes()
        os.kill(root, signal.SIGSTOP)  # the postmaster first: it forks no new backend
        # then its children as they are now (listed after it stopped: none escapes); a
        # backend that ended meanwhile is no longer there to stop
        for pid in self.processes()[1:]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        for pid in reversed(self.processes()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def stop(self) -> None:
        if self._process is not None:
            # SIGINT: fast shutdown (SIGTERM would wait for every client to leave)
            self._process.send_signal(signal.SIGINT)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self.directory is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(self.directory)
            self.directory = None
