"""The capacity harness: floors and the gateway measured in one run, as ratios (docs/design.md §9).

``sealgate bench capacity`` (or ``make capacity``) runs, on this machine:

1. a home with a demo office (``sealgate init --demo``) and a population of real sealed
   proofs, seeded through the bulk path (kept in the output directory for the next run);
2. the gateway, one worker, Redis as its shared cache: verification of one cached code;
   verification over the Zipf mix of the population; sealing in batches and one at a time;
   verification at offered loads from 10 % to 120 % of its peak (the plots); optionally
   the locust mix of all endpoints and, with ``peers``, the peers a user would pick
   instead (:mod:`sealgate.bench.peers`), each in windows alternating with the gateway's;
3. the floors: an aiohttp + uvloop trivial handler; the same with one Redis GET per
   request; the raw python-pkcs11 sign rate of the seal key. Each floor and the gateway
   figure compared with it alternate in short windows, floor first and last (floor,
   gateway, floor, ... over ``rounds`` rounds; whichever is not measured stays up, idle).
   Each gateway window is compared with the mean of the floor windows either side of it,
   and the ratio reported is the median of those pairs: a shared host's speed drifts by
   tens of percent within a minute (its steal time with it, also reported), and only
   windows seconds apart see the same host;

and writes ``report.md``, ``results.json`` and PNG plots. Throughput is measured with wrk
(closed loop: each connection sends its next request when the last is answered) and, for
the offered-load sweep, with wrk paced on a fixed schedule.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sealgate.bench.floors import REDIS_PREFIX
from sealgate.bench.population import Credentials, ZipfSampler, proof_request, read_codes
from sealgate.bench.processes import (
    cpu_by_part,
    free_port,
    host_steal_ticks,
    ordered_parts,
    service,
)
from sealgate.bench.redis_server import RedisServer
from sealgate.bench.seeding import Progress, seed
from sealgate.bench.wrk import WrkResult, run_wrk
from sealgate.verify.registry import ProofStatus

# What a 25 M-person city needs (docs/design.md §9).
CITY_NEEDS = {
    "verifications/s at peak": ("verify_mix", 50_000),
    "verifications/s in a burst": ("verify_mix", 150_000),
    "seals/s online": ("seal_single", 200),
    "seals/s for a one-night re-issue": ("seal_batch", 3_500),
}
# Sealing's cost ratio (DESIGN §6): a proof is one CMS SignedData, one HSM signature.
SIGNATURES_PER_PROOF = 1
SEAL_COST_TARGET = 2.5
TARGET_UTILISATION = 0.7  # plan machines to run at most this busy
HALF = 0.5  # the offered load whose p99 is judged (docs/design.md §9)
SWEEP = (0.1, 0.25, HALF, 0.75, 0.9, 1.0, 1.2)


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
    peers: bool = False  # also measure the peers (FastAPI dict and Redis, pyHanko) beside it


@dataclass
class Measurement:
    name: str
    what: str
    rate: float  # requests (or signatures, or seals) per second
    cpu_us: float | None  # CPU-µs per unit, the service's whole process tree
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: int = 0
    unit: str = "req/s"
    runs: list[float] = field(default_factory=list)  # each window's rate, in order
    cpu_runs: list[float] = field(default_factory=list)  # each window's CPU-µs per unit
    # a gateway figure's windows, each against the mean of the floor windows either side:
    # by rate, and by CPU-µs per unit (the figure's cost over its floor's)
    pair_ratios: list[float] = field(default_factory=list)
    cost_ratios: list[float] = field(default_factory=list)
    steal: float | None = None  # the host's steal share of CPU time over the windows
    cpu_parts: dict[str, float] = field(default_factory=dict)  # cpu_us by part (processes)


@dataclass(frozen=True)
class Window:
    """One measured window: a wrk run against a service, or a run of the sign floor."""

    rate: float
    cpu_us: float
    count: int  # requests (signatures for the sign floor)
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: int = 0
    steal: float | None = None
    cpu_parts: dict[str, float] = field(default_factory=dict)  # cpu_us by part


def combined(name: str, what: str, windows: list[Window], unit: str = "req/s") -> Measurement:
    """Windows as one measurement: the mean rate, CPU-µs over all of their requests, the
    median p50 and the worst p99."""
    count = sum(w.count for w in windows)
    cpu_us = sum(w.cpu_us * w.count for w in windows) / count if count else math.inf
    p50s = [w.p50_ms for w in windows if w.p50_ms is not None]
    p99s = [w.p99_ms for w in windows if w.p99_ms is not None]
    steals = [w.steal for w in windows if w.steal is not None]
    parts: dict[str, float] = {}
    for w in windows if count else []:  # no request answered: no CPU to share out
        for part, us in w.cpu_parts.items():
            parts[part] = parts.get(part, 0.0) + us * w.count / count
    return Measurement(
        name,
        what,
        statistics.fmean(w.rate for w in windows),
        cpu_us,
        statistics.median(p50s) if p50s else None,
        max(p99s) if p99s else None,
        sum(w.errors for w in windows),
        unit,
        [w.rate for w in windows],
        [w.cpu_us for w in windows],
        steal=statistics.fmean(steals) if steals else None,
        cpu_parts=parts,
    )


def alternate(
    floor: Callable[[], Window], figure: Callable[[int], Window], rounds: int
) -> tuple[list[Window], list[Window], list[float]]:
    """Floor, figure, floor, ... for ``rounds`` figure windows; returns the floor's
    windows, the figure's, and each figure window's ratio to the floor windows around it."""
    floors = [floor()]
    figures = []
    for index in range(rounds):
        figures.append(figure(index))
        floors.append(floor())
    return floors, figures, window_ratios(figures, floors, lambda w: w.rate)


def window_ratios(
    figures: list[Window], floors: list[Window], value: Callable[[Window], float]
) -> list[float]:
    """Each figure window's ``value`` over the mean of the floor windows either side of it
    (``floors`` has one window more than ``figures``)."""
    ratios = []
    for g, a, b in zip(figures, floors, floors[1:], strict=False):
        around = (value(a) + value(b)) / 2
        ratios.append(value(g) / around if around > 0 else 0.0)
    return ratios


@dataclass
class Report:
    started: str
    machine: str
    population: int
    options: dict[str, Any]
    measurements: dict[str, Measurement] = field(default_factory=dict)
    ratios: list[dict[str, Any]] = field(default_factory=list)
    peer_ratios: list[dict[str, Any]] = field(default_factory=list)  # gateway ÷ peer
    sweep: list[dict[str, Any]] = field(default_factory=list)
    machines: list[dict[str, Any]] = field(default_factory=list)
    locust: str | None = None
    notes: list[str] = field(default_factory=list)

    def add(self, measurement: Measurement) -> None:
        self.measurements[measurement.name] = measurement
        m = measurement
        latency = f", p50 {m.p50_ms:.2f} ms, p99 {m.p99_ms:.2f} ms" if m.p99_ms is not None else ""
        cpu = f", {m.cpu_us:.0f} CPU-µs each" if m.cpu_us is not None else ""
        errors = f", {m.errors} errors" if m.errors else ""
        runs = f" (windows {', '.join(f'{r:,.0f}' for r in m.runs)})" if len(m.runs) > 1 else ""
        pairs = ", ".join(f"{r:.2f}" for r in m.pair_ratios)
        ratios = f"; to its floor, window by window: {pairs}" if pairs else ""
        print(
            f"  {m.what}: {m.rate:,.0f} {m.unit}{runs}{cpu}{latency}{errors}{ratios}",
            file=sys.stderr,
        )
        if len(m.cpu_parts) > 1:
            parts = ", ".join(f"{part} {us:.0f}" for part, us in ordered_parts(m.cpu_parts))
            print(f"    CPU-µs each by part: {parts}", file=sys.stderr)


def _step(text: str) -> None:
    print(f"== {text}", file=sys.stderr, flush=True)


def _sealgate() -> list[str]:
    return [sys.executable, "-m", "sealgate.gateway.cli"]


def measure(
    pid: int,
    url: str,
    paths: Path,
    options: Options,
    *,
    connections: int | None = None,
    rate: float = 0.0,
    seconds: float | None = None,
    body: Path | None = None,
    headers: dict[str, str] | None = None,
    warmup: float | None = None,
    start: int = 0,
    per: int = 1,
) -> tuple[WrkResult, Window]:
    """One wrk run after a warm-up: wrk's result, and the window it makes with ``per``
    units (seals) a request: their rate, CPU-µs each of ``pid``'s tree in all and by
    part, and the host's steal share of CPU time during the run."""
    conns = connections or options.connections
    warm = options.warmup if warmup is None else warmup
    if warm > 0:
        run_wrk(url, paths, seconds=warm, connections=conns, rate=rate, body=body, headers=headers)
    steal_before = host_steal_ticks()
    before = cpu_by_part(pid)
    result = run_wrk(
        url,
        paths,
        seconds=seconds or options.seconds,
        connections=conns,
        rate=rate,
        body=body,
        headers=headers,
        start=start,
    )
    after = cpu_by_part(pid)
    steal = _steal_share(steal_before, host_steal_ticks())
    units = result.requests * per
    parts = {
        part: (spent - before.get(part, 0.0)) / units * 1e6 if units else math.inf
        for part, spent in after.items()
    }
    window = Window(
        result.rate * per,
        sum(parts.values()) if units else math.inf,
        units,
        result.p50_ms,
        result.p99_ms,
        result.errors,
        steal,
        parts,
    )
    return result, window


def _steal_share(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


class Harness:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.out = options.out
        self.home = self.out / "home"
        self.codes_file = self.out / "codes.txt"
        self.credentials_file = self.out / "credentials.tsv"
        self.logs = self.out / "logs"
        self._zipf_count = 0
        self._zipf_stretches = options.rounds * (2 if options.peers else 1)
        self.report = Report(
            started=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            machine=_machine(),
            population=0,
            options={k: str(v) for k, v in asdict(options).items()},
        )

    # -- set-up ---------------------------------------------------------------------

    def prepare_home(self) -> Credentials:
        if not (self.home / "config.toml").exists():
            _step("creating a demo home (sealgate init --demo)")
            if self.home.exists():
                shutil.rmtree(self.home)
            extra = (
                ["--database-url", self.options.database_url] if self.options.database_url else []
            )
            done = subprocess.run(
                [*_sealgate(), "--home", str(self.home), "init", "--demo", *extra],
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
        self, redis_url: str, workers: int = 1, label: str = "gateway"
    ) -> Iterator[tuple[str, int]]:
        port = free_port()
        argv = [
            *_sealgate(),
            "--home",
            str(self.home),
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ]
        env = {"SEALGATE_REDIS_URL": redis_url, "SEALGATE_LOG_LEVEL": "WARNING"}
        with service(argv, port=port, log=self.logs / f"{label}.log", env=env) as process:
            url = f"http://127.0.0.1:{port}"
            _wait_ready(url)
            yield url, process.pid

    def seed(self, credentials: Credentials, redis_url: str) -> list[str]:
        target = self.options.population
        _step(f"population: {target:,} sealed proofs (bulk path, 2 workers)")
        with self.gateway(redis_url, workers=2, label="seeding") as (url, _):
            asyncio.run(seed(url, credentials, self.codes_file, target))
        codes = read_codes(self.codes_file)
        self.report.population = len(codes)
        return codes

    # -- the run --------------------------------------------------------------------

    def run(self) -> Report:
        self.out.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        credentials = self.prepare_home()
        redis = RedisServer(self.out / "redis")
        redis.start()
        try:
            codes = self.seed(credentials, redis.url)
            zipf_paths = self._zipf_paths(codes, credentials)
            _step("warming Redis with every proof's status (a gateway after hours of traffic)")
            warmed = _warm_shared_cache(self.home, redis.url)
            self.report.notes.append(
                f"Redis held all {warmed:,} statuses before the gateway measurements (as after "
                "hours of traffic); each worker's in-process tier started empty."
            )
            self.report.notes.append(
                f"Each floor and the gateway figure compared with it were measured in "
                f"{self.options.seconds:g}-second windows alternating floor, gateway, floor, "
                f"... ({self.options.rounds} gateway windows); a ratio is the median over the "
                "gateway windows of each one's rate against the mean of the floor windows "
                "either side of it (every window's rate is shown)."
            )
            self.gateway_figures(credentials, redis, codes, zipf_paths)
        finally:
            redis.stop()
        self.derive()
        return self.report

    def _zipf_paths(self, codes: list[str], credentials: Credentials) -> Path:
        """A fixed sequence of Zipf-popular verification paths, long enough not to repeat
        within a measurement."""
        # the second half holds every measured window's own stretch, at up to 25 k req/s
        # (the gateway's windows beside the Redis peer take stretches of their own)
        stretches = self._zipf_stretches
        count = max(200_000, int(2 * stretches * self.options.seconds * 25_000))
        self._zipf_count = count
        sampler = ZipfSampler(codes, s=self.options.zipf, seed=7)
        path = self.out / "zipf-paths.txt"
        with path.open("w", encoding="ascii") as out:
            for code in sampler.stream(count):
                out.write(f"/v1/verify/{code}?purpose=demo\n")
        return path

    @contextmanager
    def trivial_floor(self) -> Iterator[Callable[[], Window]]:
        """The trivial handler, up for the whole figure; yields a window's measurement."""
        _step("floor: aiohttp + uvloop trivial handler")
        port = free_port()
        argv = [sys.executable, "-m", "sealgate.bench.floors", "trivial", "--port", str(port)]
        with service(argv, port=port, log=self.logs / "floor-trivial.log") as process:
            yield self._windows(process.pid, f"http://127.0.0.1:{port}", self.out / "one-path.txt")

    @contextmanager
    def redis_get_floor(
        self, redis: RedisServer, zipf_paths: Path
    ) -> Iterator[Callable[[], Window]]:
        """Needs the floor's keys in Redis (:func:`_fill_floor_keys`)."""
        _step("floor: the trivial handler doing one Redis GET per request (Zipf mix)")
        port = free_port()
        argv = [
            sys.executable,
            "-m",
            "sealgate.bench.floors",
            "redis-get",
            "--port",
            str(port),
            "--redis",
            redis.url,
        ]
        with service(argv, port=port, log=self.logs / "floor-redis-get.log") as process:
            yield self._windows(process.pid, f"http://127.0.0.1:{port}", zipf_paths)

    def _windows(self, pid: int, url: str, paths: Path) -> Callable[[], Window]:
        """Measures a window of a floor service; the first one after a warm-up."""
        warmed = False

        def window() -> Window:
            nonlocal warmed
            warmup = 0.0 if warmed else self.options.warmup
            warmed = True
            return measure(pid, url, paths, self.options, warmup=warmup)[1]

        return window

    def sign_floor(self) -> Window:
        """A window of the raw sign rate: a process of its own, logged in afresh."""
        key_label = _seal_key_label(self.home, self.credentials_file)
        steal_before = host_steal_ticks()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "sealgate.bench.floors",
                "sign",
                "--home",
                str(self.home),
                "--key-label",
                key_label,
                "--seconds",
                str(self.options.seconds),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"the sign floor failed: {done.stderr.strip()[-2000:]}")
        sign = json.loads(done.stdout)
        count = round(sign["rate"] * self.options.seconds)
        steal = _steal_share(steal_before, host_steal_ticks())
        return Window(sign["rate"], sign["cpu_us"], count, steal=steal)

    def paired(
        self,
        floor: tuple[str, str, Callable[[], Window]],
        figure: tuple[str, str, Callable[[int], Window]],
        unit: str = "req/s",
        floor_unit: str = "req/s",
    ) -> Measurement:
        """A gateway figure in windows alternating with its floor's; both go into the
        report, the figure with its ratio to the floor in each pair of windows."""
        floor_name, floor_what, floor_window = floor
        name, what, figure_window = figure
        floors, figures, ratios = alternate(floor_window, figure_window, self.options.rounds)
        self.report.add(combined(floor_name, floor_what, floors, floor_unit))
        measurement = combined(name, what, figures, unit)
        measurement.pair_ratios = ratios
        measurement.cost_ratios = window_ratios(figures, floors, lambda w: w.cpu_us)
        self.report.add(measurement)
        return measurement

    def gateway_figures(
        self, credentials: Credentials, redis: RedisServer, codes: list[str], zipf_paths: Path
    ) -> None:
        options = self.options
        verifier = credentials.auth("verifier")
        signer = credentials.auth("signer")
        one = self.out / "one-path.txt"
        one.write_text(f"/v1/verify/{codes[0]}?purpose=demo\n", encoding="ascii")
        rounds = options.rounds
        # The gateway stays up, idle, while each floor's window runs beside it.
        with self.gateway(redis.url) as (url, pid):

            def cached(index: int) -> Window:
                warmup = options.warmup if index == 0 else 0.0
                return measure(pid, url, one, options, headers=verifier, warmup=warmup)[1]

            _step(f"gateway: verification of one cached code ({rounds} rounds with the floor)")
            with self.trivial_floor() as trivial:
                verify_cached = self.paired(
                    ("trivial", "trivial handler", trivial),
                    ("verify_cached", "verify, cached code", cached),
                )
            # right after the figure its offered loads are fractions of: this host's speed
            # drifts 20-30 % within minutes, and "half the rate" must mean half of now's
            peak = statistics.median(verify_cached.runs)

            _step("gateway: verification at offered loads (paced)")
            for fraction in SWEEP:
                offered = peak * fraction
                # the judged point (p99 at half the rate) in as many windows as a ratio,
                # its latencies their medians: one stall of the guest decides a window's
                # p99, and should not decide the figure unseen
                results = [
                    measure(
                        pid,
                        url,
                        one,
                        options,
                        connections=256,
                        rate=offered,
                        seconds=options.sweep_seconds,
                        headers=verifier,
                        warmup=0.0,
                    )[0]
                    for _ in range(options.rounds if fraction == HALF else 1)
                ]
                point: dict[str, Any] = {
                    "fraction": fraction,
                    "offered": offered,
                    "achieved": statistics.fmean(r.rate for r in results),
                    "p50_ms": statistics.median(r.p50_ms for r in results),
                    "p90_ms": statistics.median(r.p90_ms for r in results),
                    "p99_ms": statistics.median(r.p99_ms for r in results),
                    "errors": float(sum(r.errors for r in results)),
                }
                windows = ""
                if len(results) > 1:
                    point["p99_windows"] = [r.p99_ms for r in results]
                    windows = f" (median of {', '.join(f'{r.p99_ms:.2f}' for r in results)})"
                self.report.sweep.append(point)
                print(
                    f"  offered {offered:,.0f}/s: achieved {point['achieved']:,.0f}/s, "
                    f"p50 {point['p50_ms']:.2f} ms, p99 {point['p99_ms']:.2f} ms{windows}",
                    file=sys.stderr,
                )

            _fill_floor_keys(redis, codes)

            def mix(index: int) -> Window:
                # A longer warm-up first (the popular codes reach Redis and the worker's
                # own tier); each window then takes its own stretch of the sequence's
                # second half, never a replay of the warm-up's or another window's.
                warmup = options.zipf_warmup if index == 0 else 0.0
                stretch = self._zipf_count // (2 * self._zipf_stretches)
                start = self._zipf_count // 2 + index * stretch
                return measure(
                    pid, url, zipf_paths, options, headers=verifier, warmup=warmup, start=start
                )[1]

            _step(f"gateway: verification over the Zipf mix (s={options.zipf}) of the population")
            with self.redis_get_floor(redis, zipf_paths) as redis_get:
                self.paired(
                    ("redis_get", "one-Redis-GET handler", redis_get),
                    ("verify_mix", "verify, Zipf mix", mix),
                )
            _flush_floor_keys(redis)

            batch = self.out / "seal-batch.json"
            batch.write_text(
                json.dumps(
                    {
                        "items": [
                            proof_request(credentials.proof_seal, i) for i in range(options.batch)
                        ]
                    },
                    ensure_ascii=False,
                ),
                encoding="utf-8",
            )
            post = self.out / "post-path.txt"
            post.write_text("/v1/certificates\n", encoding="ascii")
            per_seal = options.batch

            def batches(index: int) -> Window:
                # 16 batches in flight: enough that the worker, its registry writer and the
                # signing process each always have one to work on (at 4 they wait on each
                # other: 3,595 against 4,253 seals/s measured back to back, 2026-12-01).
                return measure(
                    pid,
                    url,
                    post,
                    options,
                    connections=16,
                    body=batch,
                    headers=signer,
                    warmup=1.0 if index == 0 else 0.0,
                    per=per_seal,
                )[1]

            _step(f"gateway: sealing in batches of {per_seal} ({rounds} rounds with the floor)")
            self.paired(
                ("sign", "raw PKCS#11 sign", self.sign_floor),
                ("seal_batch", f"seal, batches of {per_seal}", batches),
                unit="seals/s",
                floor_unit="signs/s",
            )

            _step("gateway: sealing one proof per request")
            single = self.out / "seal-one.json"
            single.write_text(
                json.dumps(proof_request(credentials.proof_seal, 1), ensure_ascii=False),
                encoding="utf-8",
            )
            _, one_each = measure(
                pid, url, post, options, connections=32, body=single, headers=signer, warmup=1.0,
                seconds=options.seconds * 2,
            )  # fmt: skip
            self.report.add(combined("seal_single", "seal, one per request", [one_each], "seals/s"))

            if options.peers:
                self.peer_figures(
                    credentials, redis, zipf_paths, (cached, mix, batches), one, post, batch
                )

            if options.locust_seconds > 0:
                self._locust(url, codes)

    @contextmanager
    def peer(self, kind: str, *args: str) -> Iterator[tuple[int, str]]:
        """A peer server (:mod:`sealgate.bench.peers`) up for the block: its pid and URL."""
        port = free_port()
        argv = [sys.executable, "-m", "sealgate.bench.peers", kind, "--port", str(port), *args]
        with service(argv, port=port, log=self.logs / f"peer-{kind}.log") as process:
            yield process.pid, f"http://127.0.0.1:{port}"

    def peer_figures(
        self,
        credentials: Credentials,
        redis: RedisServer,
        zipf_paths: Path,
        gateway: tuple[Callable[[int], Window], Callable[[int], Window], Callable[[int], Window]],
        one: Path,
        post: Path,
        batch: Path,
    ) -> None:
        """The peers a user would pick instead, each in windows alternating with the
        gateway figure it is compared with, the gateway idle beside each peer window."""
        from sealgate.bench.peers.harness import (
            PYHANKO_BATCHES_PER_WINDOW,
            PYHANKO_CONNECTIONS,
            REDIS_PREFIX,
            batch_seconds,
            stage_statuses,
        )

        cached, mix, batches = gateway
        rounds = self.options.rounds
        statuses = self.out / "peer-statuses.jsonl"
        staged = stage_statuses(registry_statuses(self.home), statuses, redis.url)
        self.report.notes.append(
            f"The peers were measured beside the gateway in windows alternating with its "
            f"own, as the floors are: FastAPI on uvicorn (uvloop, httptools, one process, no "
            f"access log) answering from a dict of the population's {staged:,} statuses and "
            "with one redis.asyncio GET per request; pyHanko's PKCS#11 CMS signer with the "
            "seal's key behind FastAPI, each signed proof stored in SQLite, sent the same "
            "batches as the gateway."
        )
        try:
            _step("peer: FastAPI + uvicorn, a dict lookup (beside the cached verification)")
            with self.peer("dict", "--statuses", str(statuses)) as (pid, url):
                self.paired(
                    ("peer_dict", "peer: FastAPI dict lookup", self._windows(pid, url, one)),
                    ("verify_cached_vs_dict", "verify, cached code (beside the peer)", cached),
                )
            _step("peer: FastAPI + uvicorn, one redis.asyncio GET (beside the Zipf mix)")
            with self.peer("redis", "--redis", redis.url) as (pid, url):
                redis_peer = self._windows(pid, url, zipf_paths)
                self.paired(
                    ("peer_redis", "peer: FastAPI one-Redis-GET", redis_peer),
                    # the Zipf sequence's stretches after the first figure's
                    ("verify_mix_vs_redis", "verify, Zipf mix (beside the peer)",
                     lambda index: mix(rounds + index)),
                )  # fmt: skip
        finally:
            _flush_floor_keys(redis, REDIS_PREFIX)

        _step(
            f"peer: pyHanko PKCS#11 CMS signer + FastAPI + SQLite, batches of {self.options.batch}"
        )
        database = self.out / "peer-pyhanko.sqlite"
        for stale in self.out.glob("peer-pyhanko.sqlite*"):
            stale.unlink()
        args = (
            "--home",
            str(self.home),
            "--seal",
            credentials.proof_seal,
            "--database",
            str(database),
        )
        signer = credentials.auth("signer")
        with self.peer("pyhanko", *args) as (pid, url):
            one_batch = batch_seconds(url, batch.read_bytes(), signer)
            seconds = max(self.options.seconds, PYHANKO_BATCHES_PER_WINDOW * one_batch)
            self.report.notes.append(
                f"The pyHanko peer took {one_batch:.2f} s for a batch alone; it was measured "
                f"with {PYHANKO_CONNECTIONS} connections (one batch signing, the next queued: "
                f"at the gateway's 16 its answers outlast wrk's timeout) in {seconds:.0f}-second "
                "windows."
            )

            def pyhanko(_: int = 0) -> Window:
                return measure(
                    pid, url, post, self.options, connections=PYHANKO_CONNECTIONS, body=batch,
                    headers=signer, warmup=0.0, seconds=seconds, per=self.options.batch,
                )[1]  # fmt: skip

            self.paired(
                ("peer_pyhanko", "peer: pyHanko CMS signer, batches", pyhanko),
                ("seal_batch_vs_pyhanko", "seal, batches (beside the peer)", batches),
                unit="seals/s",
                floor_unit="seals/s",
            )

    def _locust(self, url: str, codes: list[str]) -> None:
        _step(f"locust: the citywide mix, {self.options.locust_seconds} s")
        try:
            from sealgate.bench.load import format_table, run_locust
        except ImportError as exc:  # pragma: no cover - the bench extra is missing
            self.report.notes.append(f"locust mix not run: {exc}")
            return
        result = run_locust(
            url,
            self.credentials_file,
            self.codes_file,
            users=self.options.locust_users,
            spawn_rate=self.options.locust_users,
            seconds=self.options.locust_seconds,
            out_dir=self.out / "locust",
            zipf=self.options.zipf,
        )
        self.report.locust = format_table(result)
        print(self.report.locust, file=sys.stderr)

    # -- what the figures mean ------------------------------------------------------

    def derive(self) -> None:
        m = self.report.measurements
        pairs = [
            ("verify_cached", "trivial", 0.75, "verify of a cached code / trivial handler"),
            ("verify_mix", "redis_get", 1.0, "verify, Zipf mix / one-Redis-GET handler"),
            # on 2 cores bounded by the co-located processes: for information (DESIGN §6)
            ("seal_batch", "sign", None, "sealing in batches / raw PKCS#11 sign rate"),
            ("seal_single", "sign", None, "sealing one per request / raw PKCS#11 sign rate"),
        ]
        for name, floor, target, what in pairs:
            if name in m and floor in m:
                pairs_of = m[name].pair_ratios
                ratio = statistics.median(pairs_of) if pairs_of else m[name].rate / m[floor].rate
                self.report.ratios.append(
                    ratio_row(name, what, ratio, pairs_of, target, m[name], m[floor])
                )
                if name != "seal_batch":
                    continue
                # the cost ratio: CPU-µs per sealed proof over all the gateway's processes
                # against the raw sign's CPU-µs for the signatures a proof needs
                costs = [r / SIGNATURES_PER_PROOF for r in m[name].cost_ratios]
                cost = (
                    statistics.median(costs)
                    if costs
                    else (m[name].cpu_us or math.inf)
                    / ((m[floor].cpu_us or math.inf) * SIGNATURES_PER_PROOF)
                )
                self.report.ratios.append(
                    ratio_row(
                        "seal_cost",
                        "sealing in batches: CPU-µs per proof / raw sign's CPU-µs per signature",
                        cost,
                        costs,
                        SEAL_COST_TARGET,
                        m[name],
                        m[floor],
                        at_most=True,
                    )
                )
        half = min(self.report.sweep, key=lambda p: abs(p["fraction"] - HALF), default=None)
        if half is not None:
            self.report.ratios.append(
                {
                    "what": "p99 at half the cached-verify rate (ms)",
                    "ratio": half["p99_ms"],
                    "pairs": half.get("p99_windows", []),
                    "target": 10.0,
                    "pass": half["p99_ms"] <= 10.0,
                    "name": "p99_half",
                    "at_most": True,
                }
            )
        if self.options.peers:
            from sealgate.bench.peers.harness import peer_ratios

            self.report.peer_ratios = peer_ratios(m)
        cores = os.cpu_count() or 1
        for need, (name, amount) in CITY_NEEDS.items():
            if name not in m or not m[name].cpu_us:
                continue
            cpu_us = m[name].cpu_us or math.inf
            per_core = 1e6 / cpu_us * TARGET_UTILISATION
            self.report.machines.append(
                {
                    "need": need,
                    "amount": amount,
                    "basis": m[name].what,
                    "cpu_us": cpu_us,
                    "per_core": per_core,
                    "machines_like_this": math.ceil(amount / (per_core * cores)),
                    "cores": cores,
                    "machines_16_core": math.ceil(amount / (per_core * 16)),
                }
            )


def ratio_row(
    name: str,
    what: str,
    ratio: float,
    pairs: list[float],
    target: float | None,
    *measured: Measurement,
    at_most: bool = False,
) -> dict[str, Any]:
    """A row of the ratio tables; ``at_most``: the target is an upper bound (a cost)."""
    # an error answer (a 503, a 4xx) is fast and proves nothing: it fails
    errors = sum(x.errors for x in measured)
    if target is None:
        verdict = None
    else:
        verdict = (ratio <= target if at_most else ratio >= target) and not errors
    return {
        "name": name,
        "what": what + (f" ({errors} errors)" if errors else ""),
        "ratio": ratio,
        "pairs": pairs,
        "target": target,
        "at_most": at_most,
        "pass": verdict,
    }


def _wait_ready(url: str, timeout: float = 60.0) -> None:
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


def _seal_key_label(home: Path, credentials_file: Path) -> str:
    from sealgate.gateway.home import load_settings

    directory = load_settings(home).open_directory()
    try:
        seal = directory.seal(Credentials.read(credentials_file).proof_seal)
        return seal.active_key.key_label
    finally:
        directory.close()


def registry_statuses(
    home: Path, what: str = "reading the registry"
) -> Iterator[list[ProofStatus]]:
    """Every registered proof's status, read straight from the home's registry, in batches."""
    from sealgate.gateway.home import load_settings
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


def _warm_shared_cache(home: Path, redis_url: str) -> int:
    """Every registered proof's status in Redis, as the gateway caches it."""
    import redis as redis_py

    from sealgate.cache.codec import encode_status
    from sealgate.cache.redis_tier import status_key

    client = redis_py.Redis.from_url(redis_url)
    count = 0
    try:
        for batch in registry_statuses(home, "warming Redis"):
            pipe = client.pipeline(transaction=False)
            for status in batch:
                pipe.set(status_key(status.code), encode_status(status), ex=3600)
            pipe.execute()
            count += len(batch)
    finally:
        client.close()
    return count


def _fill_floor_keys(redis: RedisServer, codes: list[str]) -> None:
    """The one-GET floor's keys: one value per code, the size of a cached status."""
    import redis as redis_py

    client = redis_py.Redis.from_url(redis.url)
    value = b'{"status":"valid","type":"' + b"x" * 200 + b'"}'
    progress = Progress(len(codes), "floor keys")
    try:
        for start in range(0, len(codes), 10_000):
            pipe = client.pipeline(transaction=False)
            for code in codes[start : start + 10_000]:
                pipe.set(REDIS_PREFIX + code.encode(), value)
            pipe.execute()
            progress.update(min(start + 10_000, len(codes)))
        progress.update(len(codes), final=True)
    finally:
        client.close()


def _flush_floor_keys(redis: RedisServer, prefix: bytes = REDIS_PREFIX) -> None:
    """Removes the keys under ``prefix``: the floor's, or a peer's."""
    import redis as redis_py

    client = redis_py.Redis.from_url(redis.url)
    try:
        cursor = 0
        while True:
            cursor, keys = client.scan(cursor, match=prefix + b"*", count=10_000)
            if keys:
                client.unlink(*keys)
            if cursor == 0:
                break
    finally:
        client.close()


def _machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cpu = model or "unknown CPU"
    python = platform.python_version()
    return f"{os.cpu_count()} cores, {platform.machine()}, {cpu}, Python {python}"


def run_capacity(options: Options) -> Path:
    """Run the whole harness; prints the ratio table and returns the report's path."""
    from sealgate.bench.report import ratio_table, write

    started = time.monotonic()

    def stop(signum: int, frame: object) -> None:
        # as SystemExit, so every service's clean-up runs (no orphaned gateway or Redis)
        raise SystemExit(128 + signum)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop)
    report = Harness(options).run()
    path = write(report, options.out)
    print(f"\n{ratio_table(report)}\n", file=sys.stderr)
    if report.peer_ratios:
        print(f"{ratio_table(report, report.peer_ratios)}\n", file=sys.stderr)
    print(f"report: {path} ({time.monotonic() - started:,.0f} s)", file=sys.stderr)
    return path
