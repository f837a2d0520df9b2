"""The capacity harness: floors and the gateway measured in one run, as ratios (docs/design.md §9).

``sealgate bench capacity`` (or ``make capacity``) runs, on this machine:

1. a home with a demo office (``sealgate init --demo``) and a population of real sealed
   proofs, seeded through the bulk path (kept in the output directory for the next run);
2. the gateway, one worker, Redis as its shared cache: verification of one cached code;
   verification over the Zipf mix of the population; sealing in batches and one at a time;
   verification at offered loads from 10 % to 120 % of its peak (the plots); optionally
   the locust mix of all endpoints and, with ``peers``, the peers a user would pick
   instead (:mod:`sealgate.bench.peers`), each in windows alternating with the gateway's;
   with ``timestamps``, sealing with a development TSA's timestamps against sealing
   without, in windows alternating between two gateways (:mod:`~sealgate.bench.timestamp_figures`);
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

This module runs the phases in order; each has a module of its own: the options
(:mod:`~sealgate.bench.options`), the output directory, home and gateway
(:mod:`~sealgate.bench.workspace`), what goes into Redis (:mod:`~sealgate.bench.redis_keys`),
alternating windows and their ratios (:mod:`~sealgate.bench.windows`), the floors'
(:mod:`~sealgate.bench.floor_windows`), verification's (:mod:`~sealgate.bench.verify_windows`),
the offered-load sweep (:mod:`~sealgate.bench.sweep`), sealing
(:mod:`~sealgate.bench.sealing_figures`), the peers' (:mod:`~sealgate.bench.peer_windows`),
the results (:mod:`~sealgate.bench.results`) and what they mean
(:mod:`~sealgate.bench.findings`).
"""

from __future__ import annotations

import datetime as dt
import signal
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

from sealgate.bench.findings import derive
from sealgate.bench.floor_windows import redis_get_floor, trivial_floor
from sealgate.bench.options import Options
from sealgate.bench.peer_windows import GatewayWindows, peer_figures
from sealgate.bench.population import Credentials
from sealgate.bench.redis_keys import fill_floor_keys, flush_floor_keys, warm_shared_cache
from sealgate.bench.redis_server import RedisServer
from sealgate.bench.request_round import provision_round_clients, request_round
from sealgate.bench.results import Report, machine
from sealgate.bench.sealing_figures import sealing_figures
from sealgate.bench.sweep import sweep
from sealgate.bench.timestamp_figures import timestamp_figures
from sealgate.bench.verify_windows import (
    ZipfPaths,
    verify_windows,
    write_one_path,
    write_zipf_paths,
)
from sealgate.bench.windows import paired
from sealgate.bench.workspace import Workspace, sealgate_argv, step

# the harness's entry: what `sealgate bench capacity` runs, with what
__all__ = ["Harness", "Options", "run_capacity"]


class Harness:
    """One capacity run: its workspace, and the report its phases fill."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.workspace = Workspace(options)
        self.report = Report(
            started=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            machine=machine(),
            population=0,
            options={k: str(v) for k, v in asdict(options).items()},
        )

    def run(self) -> Report:
        workspace = self.workspace
        workspace.out.mkdir(parents=True, exist_ok=True)
        workspace.logs.mkdir(exist_ok=True)
        credentials = workspace.prepare_home()
        redis = RedisServer(workspace.out / "redis")
        redis.start()
        try:
            codes = workspace.seed(credentials, redis.url)
            self.report.population = len(codes)
            zipf = write_zipf_paths(workspace.out, codes, self.options)
            step("warming Redis with every proof's status (a gateway after hours of traffic)")
            warmed = warm_shared_cache(workspace.home, redis.url)
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
            self.gateway_figures(credentials, redis, codes, zipf)
            if self.options.timestamps:
                timestamp_figures(workspace, self.report, redis.url, credentials.auth("signer"))
        finally:
            redis.stop()
        self.derive()
        return self.report

    def gateway_figures(
        self, credentials: Credentials, redis: RedisServer, codes: list[str], zipf: ZipfPaths
    ) -> None:
        options = self.options
        report = self.report
        workspace = self.workspace
        verifier = credentials.auth("verifier")
        one = write_one_path(workspace.out, codes[0])
        rounds = options.rounds
        # The gateway stays up, idle, while each floor's window runs beside it.
        with workspace.gateway(redis.url) as (url, pid):
            cached = verify_windows(pid, url, one, options, verifier, options.warmup)
            step(f"gateway: verification of one cached code ({rounds} rounds with the floor)")
            with trivial_floor(workspace, one) as trivial:
                verify_cached = paired(
                    report,
                    rounds,
                    ("trivial", "trivial handler", trivial),
                    ("verify_cached", "verify, cached code", cached),
                )
            # right after the figure its offered loads are fractions of: this host's speed
            # drifts 20-30 % within minutes, and "half the rate" must mean half of now's
            peak = statistics.median(verify_cached.runs)

            step("gateway: verification at offered loads (paced)")
            sweep(report, pid, url, one, options, peak, verifier)

            fill_floor_keys(redis, codes)
            mix = verify_windows(
                pid, url, zipf.path, options, verifier, options.zipf_warmup, zipf.start
            )
            step(f"gateway: verification over the Zipf mix (s={options.zipf}) of the population")
            with redis_get_floor(workspace, redis, zipf.path) as redis_get:
                paired(
                    report,
                    rounds,
                    ("redis_get", "one-Redis-GET handler", redis_get),
                    ("verify_mix", "verify, Zipf mix", mix),
                )
            flush_floor_keys(redis)

            sealing = sealing_figures(workspace, report, pid, url, credentials)

            if options.requests_seconds > 0:
                step(f"gateway: requests answered by a system, {options.requests_seconds:g} s")
                clients = provision_round_clients(
                    sealgate_argv(), workspace.home, credentials.verification_seal
                )
                request_round(
                    report,
                    pid,
                    url,
                    clients,
                    seconds=options.requests_seconds,
                    concurrency=options.request_concurrency,
                )

            if options.peers:
                beside = GatewayWindows(one, cached, zipf.path, mix, sealing)
                peer_figures(workspace, report, credentials, redis, beside)

            if options.locust_seconds > 0:
                self._locust(url)

    def _locust(self, url: str) -> None:
        step(f"locust: the citywide mix, {self.options.locust_seconds} s")
        try:
            from sealgate.bench.load import format_table, run_locust
        except ImportError as exc:  # pragma: no cover - the bench extra is missing
            self.report.notes.append(f"locust mix not run: {exc}")
            return
        result = run_locust(
            url,
            self.workspace.credentials_file,
            self.workspace.codes_file,
            users=self.options.locust_users,
            spawn_rate=self.options.locust_users,
            seconds=self.options.locust_seconds,
            out_dir=self.workspace.out / "locust",
            zipf=self.options.zipf,
        )
        self.report.locust = format_table(result)
        print(self.report.locust, file=sys.stderr)

    def derive(self) -> None:
        """The report's ratios and machines, from what was measured."""
        derive(self.report, self.options.peers)


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
