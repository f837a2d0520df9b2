"""What a capacity run is asked to do (``sealgate bench capacity``'s options)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Options:
    out: Path
    population: int = 1_000_000
    seconds: float = 3.0  # each measured window
    rounds: int = 3  # gateway windows per figure, each between two of its floor's
    warmup: float = 2.0
    zipf_warmup: float = 12.0  # the popular codes reach Redis and the worker's own tier
    connections: int = 64
    zipf: float = 1.0
    batch: int = 100
    sweep_seconds: float = 3.0
    locust_seconds: int = 0  # 0: no locust run
    locust_users: int = 32
    database_url: str | None = None  # None: SQLite in the harness's home
    # the automated 30-minute tier of verification requests (bench/request_round.py):
    # seconds of rounds, 0 to skip
    requests_seconds: float = 0.0
    request_concurrency: int = 32
    peers: bool = False  # also measure the peers (FastAPI dict and Redis, pyHanko) beside it
    timestamps: bool = False  # also seal with and without a TSA's timestamps, alternating
