"""The process model of ``sealgate serve``.

``--workers N`` starts N worker processes that each bind the same port with
SO_REUSEPORT (the kernel spreads connections), each with its own event loop (uvloop),
registry connections and signing process. Workers are started with the ``spawn``
method: a fresh interpreter, so nothing (PKCS#11 state above all) crosses a fork. The
supervisor restarts a worker that dies and stops them all on SIGTERM or SIGINT.

The workers' metrics are kept in prometheus_client's multiprocess mode, in a directory
the supervisor makes for the run and removes after it (why: :mod:`sealgate.gateway.metrics`).
Workers are not :mod:`sealgate.hsm.child` children: they speak no frames and are
supervised by a blocking loop, not an event loop; ``multiprocessing`` starts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import multiprocessing
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
from multiprocessing.process import BaseProcess

from aiohttp import web
from prometheus_client.multiprocess import mark_process_dead

from sealgate.errors import Error
from sealgate.gateway.app import create_app
from sealgate.gateway.dispatch import answer_remembered_verifications
from sealgate.gateway.home import Settings, write_secret
from sealgate.gateway.logs import AccessLogger, configure_logging
from sealgate.gateway.metrics import MULTIPROCESS_ENV
from sealgate.gateway.problems import answer_protocol_errors_as_problems

log = logging.getLogger("sealgate.server")

RESTART_BACKOFF = 1.0
# An idle connection, or one that has not sent a whole request, is closed after this
# (nginx's default); aiohttp's own is an hour, and idle sockets add up to the fd limit.
KEEPALIVE_SECONDS = 75.0
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# A worker that dies this soon after starting failed to start (port taken, bad home);
# after this many such failures in a row the supervisor gives up instead of looping.
FAST_FAILURE_SECONDS = 5.0
MAX_FAST_FAILURES = 5


class ServeError(Error):
    """The gateway could not be kept running."""


async def _serve(settings: Settings, host: str, port: int, reuse_port: bool) -> None:
    app = create_app(settings)
    runner = web.AppRunner(
        app,
        access_log_class=AccessLogger,
        handle_signals=False,
        keepalive_timeout=KEEPALIVE_SECONDS,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await runner.setup()
        assert runner.server is not None  # set up
        answer_remembered_verifications(runner.server, app)
        answer_protocol_errors_as_problems(runner.server)
        site = web.TCPSite(runner, host, port, reuse_port=reuse_port, backlog=1024)
        await site.start()
        log.info("worker listening on http://%s:%d", host, port)
        tune_gc()
        await stop.wait()
    finally:
        await runner.cleanup()


def tune_gc() -> None:
    """Keep the cyclic collector off the objects of start-up, and collect less often.

    A worker holds a large, long-lived heap (libraries, caches) and allocates many small
    short-lived objects per request; with the default thresholds the collector keeps
    rescanning the heap. Frozen objects are never scanned; gen0 runs every 20,000
    allocations instead of 700. Measured: about 8 % more verifications per second.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 100)


def raise_file_limit() -> None:
    """Take the hard limit on open files as the soft one: every connection is a file, and
    a distribution's soft default (1,024) is a few seconds of a citywide peak."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def die_with_parent() -> None:
    """Ask Linux for SIGTERM when the supervisor dies, however it dies: a worker left
    behind by a SIGKILLed supervisor kept serving the port beside the next one's."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() == 1:  # it died before the request took hold
        os.kill(os.getpid(), signal.SIGTERM)


def run_worker(settings: Settings, host: str, port: int, reuse_port: bool) -> None:
    configure_logging()
    raise_file_limit()
    if multiprocessing.parent_process() is not None:  # started by the supervisor
        die_with_parent()
    import uvloop

    uvloop.run(_serve(settings, host, port, reuse_port))


def serve(settings: Settings, host: str, port: int, workers: int) -> None:
    if settings.database_kind == "sqlite":
        from sealgate.verify.sqlite.registry import refuse_if_corrupted

        # A damaged file is refused before anything serves from it.
        refuse_if_corrupted(settings.sqlite_path)
        # Once, before the workers: each would otherwise run a long migration (a rebuilt
        # table of a million proofs) while the others time out on its lock and exit.
        # PostgreSQL is migrated by the operator (`sealgate db migrate`), never here.
        settings.migrate_database()
    if not (settings.secrets_dir / "webhook-key").exists():
        # A home made before webhooks existed: its key, once, before the workers (it signs
        # change notices and overdue announcements, and every instance must hold the same).
        write_secret(settings.home, "webhook-key")
        log.warning(
            "generated %s: copy it to the home of every other instance of this city",
            settings.secrets_dir / "webhook-key",
        )
    if workers <= 1:
        run_worker(settings, host, port, reuse_port=False)
        return
    configure_logging()
    # One directory per run: the workers' values, summed at each scrape. Named in the
    # environment before any worker starts (prometheus_client reads it on import).
    metrics_dir = tempfile.mkdtemp(prefix="sealgate-metrics-")
    os.environ[MULTIPROCESS_ENV] = metrics_dir
    try:
        _supervise(settings, host, port, workers, metrics_dir)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _supervise(settings: Settings, host: str, port: int, workers: int, metrics_dir: str) -> None:
    context = multiprocessing.get_context("spawn")
    stopping = False

    started: dict[int, float] = {}
    fast_failures = 0

    def start(index: int) -> BaseProcess:
        process = context.Process(
            target=run_worker, args=(settings, host, port, True), name=f"sealgate-worker-{index}"
        )
        process.start()
        started[index] = time.monotonic()
        return process

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    processes = [start(i) for i in range(workers)]
    log.info("supervising %d workers on http://%s:%d", workers, host, port)
    try:
        while not stopping:
            time.sleep(0.2)
            for index, process in enumerate(processes):
                if not process.is_alive() and not stopping:
                    if time.monotonic() - started[index] < FAST_FAILURE_SECONDS:
                        fast_failures += 1
                    else:
                        fast_failures = 0
                    if fast_failures >= MAX_FAST_FAILURES:
                        raise ServeError(
                            f"workers keep failing at start (last exit code "
                            f"{process.exitcode}); see the log above"
                        )
                    log.warning("worker %d exited with %s; restarting", index, process.exitcode)
                    if process.pid is not None:  # its gauges go; its counters stay in the sums
                        mark_process_dead(process.pid, metrics_dir)  # type: ignore[no-untyped-call]
                    time.sleep(RESTART_BACKOFF)
                    processes[index] = start(index)
    finally:
        for process in processes:
            if process.is_alive() and process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
        sys.stdout.flush()
