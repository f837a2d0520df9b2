"""The peers' windows (``--peers``; the servers are :mod:`sealgate.bench.peers`): each peer
a user would pick instead in windows alternating with the gateway figure it is compared
with, the gateway idle beside each peer window."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sealgate.bench.population import Credentials
from sealgate.bench.processes import free_port, service
from sealgate.bench.redis_keys import flush_floor_keys
from sealgate.bench.redis_server import RedisServer
from sealgate.bench.results import Report
from sealgate.bench.sealing_figures import BatchSealing
from sealgate.bench.windows import Window, measure, paired, service_windows
from sealgate.bench.workspace import Workspace, registry_statuses, step


@dataclass(frozen=True)
class GatewayWindows:
    """The gateway's figures the peers' windows alternate with, and what wrk sends."""

    one: Path  # the cached code's path
    cached: Callable[[int], Window]
    zipf_paths: Path
    mix: Callable[[int], Window]
    sealing: BatchSealing


@contextmanager
def peer(workspace: Workspace, kind: str, *args: str) -> Iterator[tuple[int, str]]:
    """A peer server (:mod:`sealgate.bench.peers`) up for the block: its pid and URL."""
    port = free_port()
    argv = [sys.executable, "-m", "sealgate.bench.peers", kind, "--port", str(port), *args]
    with service(argv, port=port, log=workspace.logs / f"peer-{kind}.log") as process:
        yield process.pid, f"http://127.0.0.1:{port}"


def peer_figures(
    workspace: Workspace,
    report: Report,
    credentials: Credentials,
    redis: RedisServer,
    gateway: GatewayWindows,
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

    options = workspace.options
    rounds = options.rounds
    statuses = workspace.out / "peer-statuses.jsonl"
    staged = stage_statuses(registry_statuses(workspace.home), statuses, redis.url)
    report.notes.append(
        f"The peers were measured beside the gateway in windows alternating with its "
        f"own, as the floors are: FastAPI on uvicorn (uvloop, httptools, one process, no "
        f"access log) answering from a dict of the population's {staged:,} statuses and "
        "with one redis.asyncio GET per request; pyHanko's PKCS#11 CMS signer with the "
        "seal's key behind FastAPI, each signed proof stored in SQLite, sent the same "
        "batches as the gateway."
    )
    try:
        step("peer: FastAPI + uvicorn, a dict lookup (beside the cached verification)")
        with peer(workspace, "dict", "--statuses", str(statuses)) as (pid, url):
            paired(
                report,
                rounds,
                ("peer_dict", "peer: FastAPI dict lookup",
                 service_windows(pid, url, gateway.one, options)),
                ("verify_cached_vs_dict", "verify, cached code (beside the peer)", gateway.cached),
            )  # fmt: skip
        step("peer: FastAPI + uvicorn, one redis.asyncio GET (beside the Zipf mix)")
        with peer(workspace, "redis", "--redis", redis.url) as (pid, url):
            redis_peer = service_windows(pid, url, gateway.zipf_paths, options)
            paired(
                report,
                rounds,
                ("peer_redis", "peer: FastAPI one-Redis-GET", redis_peer),
                # the Zipf sequence's stretches after the first figure's
                ("verify_mix_vs_redis", "verify, Zipf mix (beside the peer)",
                 lambda index: gateway.mix(rounds + index)),
            )  # fmt: skip
    finally:
        flush_floor_keys(redis, REDIS_PREFIX)

    step(f"peer: pyHanko PKCS#11 CMS signer + FastAPI + SQLite, batches of {options.batch}")
    database = workspace.out / "peer-pyhanko.sqlite"
    for stale in workspace.out.glob("peer-pyhanko.sqlite*"):
        stale.unlink()
    args = (
        "--home",
        str(workspace.home),
        "--seal",
        credentials.proof_seal,
        "--database",
        str(database),
    )
    signer = credentials.auth("signer")
    sealing = gateway.sealing
    with peer(workspace, "pyhanko", *args) as (pid, url):
        one_batch = batch_seconds(url, sealing.body.read_bytes(), signer)
        seconds = max(options.seconds, PYHANKO_BATCHES_PER_WINDOW * one_batch)
        report.notes.append(
            f"The pyHanko peer took {one_batch:.2f} s for a batch alone; it was measured "
            f"with {PYHANKO_CONNECTIONS} connections (one batch signing, the next queued: "
            f"at the gateway's 16 its answers outlast wrk's timeout) in {seconds:.0f}-second "
            "windows."
        )

        def pyhanko(_: int = 0) -> Window:
            return measure(
                pid, url, sealing.post, options, connections=PYHANKO_CONNECTIONS,
                body=sealing.body, headers=signer, warmup=0.0, seconds=seconds, per=options.batch,
            )[1]  # fmt: skip

        paired(
            report,
            rounds,
            ("peer_pyhanko", "peer: pyHanko CMS signer, batches", pyhanko),
            ("seal_batch_vs_pyhanko", "seal, batches (beside the peer)", sealing.windows),
            unit="seals/s",
            floor_unit="seals/s",
        )
