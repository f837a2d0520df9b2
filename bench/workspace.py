"""The harness's output directory and what it runs there: the demo home (``sealgate init
--demo``), its seeded population, the gateway under test; and what it reads of the home."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sealgate.bench.options import Options
from sealgate.bench.population import Credentials, read_codes
from sealgate.bench.processes import free_port, service
from sealgate.bench.seeding import Progress, SeedingFailed, seed
from sealgate.verify.registry import ProofStatus


def step(text: str) -> None:
    """Announces a phase of the run."""
    print(f"== {text}", file=sys.stderr, flush=True)


def sealgate_argv() -> list[str]:
    """The ``sealgate`` command of this interpreter."""
    return [sys.executable, "-m", "sealgate.gateway.cli"]


class Workspace:
    """The output directory: the home, its codes and credentials (kept for the next run),
    and the services' logs."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.out = options.out
        self.home = self.out / "home"
        self.codes_file = self.out / "codes.txt"
        self.credentials_file = self.out / "credentials.tsv"
        self.logs = self.out / "logs"

    def prepare_home(self) -> Credentials:
        if not (self.home / "config.toml").exists():
            step("creating a demo home (sealgate init --demo)")
            if self.home.exists():
                shutil.rmtree(self.home)
            extra = (
                ["--database-url", self.options.database_url] if self.options.database_url else []
            )
            done = subprocess.run(
                [*sealgate_argv(), "--home", str(self.home), "init", "--demo", *extra],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(f"sealgate init failed: {done.stderr.strip()}")
            self.credentials_file.write_text(done.stdout, encoding="utf-8")
            self.codes_file.unlink(missing_ok=True)
        return Credentials.read(self.credentials_file)

    @contextmanager
    def gateway(
        self,
        redis_url: str,
        workers: int = 1,
        label: str = "gateway",
        env: Mapping[str, str] | None = None,
    ) -> Iterator[tuple[str, int]]:
        port = free_port()
        argv = [
            *sealgate_argv(),
            "--home",
            str(self.home),
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ]
        settings = {"SEALGATE_REDIS_URL": redis_url, "SEALGATE_LOG_LEVEL": "WARNING", **(env or {})}
        with service(argv, port=port, log=self.logs / f"{label}.log", env=settings) as process:
            url = f"http://127.0.0.1:{port}"
            wait_ready(url)
            yield url, process.pid

    def seed(self, credentials: Credentials, redis_url: str) -> list[str]:
        """The population's codes, sealed through the bulk path up to the option's count."""
        target = self.options.population
        step(f"population: {target:,} sealed proofs (bulk path, 2 workers)")
        with self.gateway(redis_url, workers=2, label="seeding") as (url, _):
            try:
                asyncio.run(seed(url, credentials, self.codes_file, target))
            except SeedingFailed as exc:
                log = self.logs / "seeding.log"
                tail = log.read_text(errors="replace").splitlines()[-20:] if log.exists() else []
                lines = [str(exc), f"the gateway's log ({log}):", *tail]
                raise SeedingFailed("\n".join(lines)) from exc
        return read_codes(self.codes_file)

    def seal_key_label(self) -> str:
        """The label of the proof seal's active key in the home's token."""
        from sealgate.gateway.config_file import load_settings

        directory = load_settings(self.home).open_directory()
        try:
            seal = directory.seal(Credentials.read(self.credentials_file).proof_seal)
            return seal.active_key.key_label
        finally:
            directory.close()


def wait_ready(url: str, timeout: float = 60.0) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=5) as reply:  # noqa: S310
                if reply.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the gateway at {url} did not become ready")
        time.sleep(0.2)


def registry_statuses(
    home: Path, what: str = "reading the registry"
) -> Iterator[list[ProofStatus]]:
    """Every registered proof's status, read straight from the home's registry, in batches."""
    from sealgate.gateway.config_file import load_settings
    from sealgate.verify.rows import STATUS_COLUMNS, status_from_row

    settings = load_settings(home)
    query = f"SELECT {STATUS_COLUMNS} FROM proofs"  # noqa: S608 - constant columns
    if settings.database_kind == "sqlite":
        import sqlite3

        conn: Any = sqlite3.connect(f"file:{settings.sqlite_path}?mode=ro", uri=True)
    else:
        import psycopg

        conn = psycopg.connect(settings.database_url)
    try:
        total = int(conn.execute("SELECT count(*) FROM proofs").fetchone()[0])
        rows = conn.execute(query)
        progress = Progress(total, what)
        count = 0
        while batch := rows.fetchmany(10_000):
            yield [status_from_row(tuple(row)) for row in batch]
            count += len(batch)
            progress.update(count)
        progress.update(count, final=True)
    finally:
        conn.close()
