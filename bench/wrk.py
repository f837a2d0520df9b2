"""The load generator of the capacity harness: wrk (C, epoll) driven by ``wrk/load.lua``.

wrk spends a few µs of CPU per request, so on a small machine it leaves the service
under test most of the machine; a Python generator would not.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sealgate.errors import Error

SCRIPT = Path(__file__).parent / "wrk" / "load.lua"


class WrkFailed(Error, RuntimeError):
    """wrk is missing, failed, or printed no result."""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    errors: int  # connect/read/write/timeouts and answers with status >= 400
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise WrkFailed("wrk is not installed: `make capacity` installs it (apt-get install wrk)")
    return path


def run_wrk(
    url: str,
    paths: Path,
    *,
    seconds: float,
    connections: int,
    rate: float = 0.0,
    body: Path | None = None,
    headers: Mapping[str, str] | None = None,
    threads: int = 1,
    start: int = 0,
) -> WrkResult:
    """Send the requests of ``paths`` (cycling) to ``url`` for ``seconds``.

    ``rate`` > 0 paces the requests on a fixed schedule (requests per second in all);
    otherwise each connection sends its next request as soon as the last is answered.
    ``start`` is the line of ``paths`` to begin at.
    """
    argv = [
        wrk_path(),
        f"-t{threads}",
        f"-c{max(connections, threads)}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(SCRIPT),
    ]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    argv += [url, "--", str(paths), f"{rate / threads:.3f}", str(body) if body else "-", str(start)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if done.returncode != 0 or line is None:
        raise WrkFailed(f"wrk failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    data = json.loads(line.removeprefix("WRKJSON "))
    errors = sum(int(v) for v in data["errors"].values())
    latency = data["latency_us"]
    return WrkResult(
        requests=int(data["requests"]),
        seconds=int(data["duration_us"]) / 1e6,
        errors=errors,
        p50_ms=latency["p50"] / 1000,
        p90_ms=latency["p90"] / 1000,
        p99_ms=latency["p99"] / 1000,
        max_ms=latency["max"] / 1000,
    )
