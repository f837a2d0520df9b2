"""Run the locust scenarios of bench/locustfile.py headless, bounded in time, and read back
per-endpoint figures.

Locust runs as a subprocess (it monkey-patches the interpreter with gevent), in a session
of its own so that a run past its time is killed whole, workers included. Its exit code
means only "locust itself worked" (``--exit-code-on-error 0``): failed requests are in the
figures, not in the exit code.
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from sealgate.errors import Error

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
PROJECT_ROOT = LOCUSTFILE.parent.parent


class LoadError(Error, RuntimeError):
    """Locust could not run the scenarios, or ran past its time."""


@dataclass(frozen=True)
class EndpointStats:
    """One row of locust_stats.csv; latencies in milliseconds, NaN where locust had none."""

    method: str  # "GET", "POST"; "" for the aggregated row
    name: str  # the route, e.g. "/v1/verify/{code}"; "Aggregated" for all together
    requests: int
    failures: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float

    @property
    def failure_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class Failure:
    """One row of locust_failures.csv: which request failed how, and how often."""

    method: str
    name: str
    error: str
    occurrences: int


@dataclass(frozen=True)
class LoadResult:
    endpoints: list[EndpointStats]
    aggregated: EndpointStats
    failures: list[Failure]
    exceptions: list[str]  # errors raised inside the scenarios themselves (count: message)
    out_dir: Path
    users: int
    seconds: int

    def endpoint(self, name: str, method: str | None = None) -> EndpointStats:
        for row in self.endpoints:
            if row.name == name and (method is None or row.method == method):
                return row
        raise KeyError(f"no {method or ''} {name} in the locust figures".replace("  ", " "))


def run_locust(
    host: str,
    credentials: Path,
    codes: Path,
    *,
    users: int,
    spawn_rate: float,
    seconds: int,
    out_dir: Path,
    zipf: float = 1.0,
    processes: int = 1,
    rate_per_user: float | None = None,
    timeout: float | None = None,
) -> LoadResult:
    """Offer the citywide mix to ``host`` for ``seconds`` and return locust's figures.

    ``rate_per_user`` paces each user (tasks/s); unset, users go flat out. ``timeout``
    bounds the whole run (default: ``seconds`` plus two minutes for start-up, reading
    the population and stopping); past it locust is killed and :class:`LoadError` raised.
    """
    if users < 1 or seconds < 1 or spawn_rate <= 0 or processes < 1:
        raise ValueError("users, seconds, spawn_rate and processes must be positive")
    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = out_dir / "locust"
    for old in out_dir.glob("locust_*.csv"):
        old.unlink()  # figures of an earlier run must not pass for this one's
    command = [
        sys.executable, "-m", "locust",
        "-f", str(LOCUSTFILE),
        "--headless",
        "--host", host,
        "-u", str(users),
        "-r", str(spawn_rate),
        "-t", f"{seconds}s",
        "--csv", str(prefix),
        "--only-summary",
        "--stop-timeout", "5",
        "--exit-code-on-error", "0",
    ]  # fmt: skip
    if processes > 1:
        command += ["--processes", str(processes)]
    env = {
        **os.environ,
        "SEALGATE_BENCH_CREDENTIALS": str(credentials.resolve()),
        "SEALGATE_BENCH_CODES": str(codes.resolve()),
        "SEALGATE_BENCH_ZIPF": repr(zipf),
        # the locustfile imports sealgate.bench.population, wherever locust is started from
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")) if p
        ),
    }
    if rate_per_user is not None:
        env["SEALGATE_BENCH_RATE"] = repr(rate_per_user)
    else:
        env.pop("SEALGATE_BENCH_RATE", None)
    log_path = out_dir / "locust.log"
    limit = timeout if timeout is not None else seconds + 120.0
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=PROJECT_ROOT,
            start_new_session=True,
        )
        try:
            returncode = process.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            _kill_session(process)
            raise LoadError(
                f"locust ran past {limit:.0f} s and was killed\n{_tail(log_path)}"
            ) from None
        except BaseException:
            _kill_session(process)
            raise
    if returncode != 0:
        raise LoadError(f"locust exited with {returncode}\n{_tail(log_path)}")
    stats_path = Path(f"{prefix}_stats.csv")
    if not stats_path.exists():
        raise LoadError(f"locust wrote no {stats_path.name}\n{_tail(log_path)}")
    rows = parse_stats(stats_path)
    aggregated = [r for r in rows if r.name == "Aggregated" and not r.method]
    if len(aggregated) != 1:
        raise LoadError(f"{stats_path} has no aggregated row")
    return LoadResult(
        endpoints=[r for r in rows if r is not aggregated[0]],
        aggregated=aggregated[0],
        failures=parse_failures(Path(f"{prefix}_failures.csv")),
        exceptions=parse_exceptions(Path(f"{prefix}_exceptions.csv")),
        out_dir=out_dir,
        users=users,
        seconds=seconds,
    )


def _kill_session(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _number(value: str) -> float:
    """Locust writes "N/A" (or nothing) for a percentile it has no sample for."""
    try:
        return float(value)
    except ValueError:
        return math.nan


def parse_stats(path: Path) -> list[EndpointStats]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [
            EndpointStats(
                method=row["Type"],
                name=row["Name"],
                requests=int(row["Request Count"]),
                failures=int(row["Failure Count"]),
                rps=_number(row["Requests/s"]),
                p50_ms=_number(row["50%"]),
                p90_ms=_number(row["90%"]),
                p99_ms=_number(row["99%"]),
                p999_ms=_number(row["99.9%"]),
                max_ms=_number(row["Max Response Time"]),
            )
            for row in csv.DictReader(handle)
        ]


def parse_failures(path: Path) -> list[Failure]:
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return [
            Failure(row["Method"], row["Name"], row["Error"], int(row["Occurrences"]))
            for row in csv.DictReader(handle)
        ]


def parse_exceptions(path: Path) -> list[str]:
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return [f"{row['Count']}: {row['Message']}" for row in csv.DictReader(handle)]


def _ms(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def format_table(result: LoadResult) -> str:
    """The figures as a Markdown table, one row per endpoint and the aggregate last."""
    lines = [
        f"{result.users} users, {result.seconds} s",
        "",
        "| endpoint | requests | failures | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in [*result.endpoints, result.aggregated]:
        name = f"{row.method} {row.name}".strip() if row.method else f"**{row.name}**"
        lines.append(
            f"| {name} | {row.requests} | {row.failures} | {row.rps:.1f} | {_ms(row.p50_ms)} "
            f"| {_ms(row.p90_ms)} | {_ms(row.p99_ms)} | {_ms(row.p999_ms)} "
            f"| {_ms(row.max_ms)} |"
        )
    return "\n".join(lines)
