"""The floors' windows (the servers are :mod:`sealgate.bench.floors`): an aiohttp + uvloop
trivial handler, the same with one Redis GET a request, and the raw PKCS#11 sign rate."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sealgate.bench.processes import free_port, host_steal_ticks, service
from sealgate.bench.redis_server import RedisServer
from sealgate.bench.windows import Window, service_windows, steal_share
from sealgate.bench.workspace import Workspace, step


@contextmanager
def trivial_floor(workspace: Workspace, paths: Path) -> Iterator[Callable[[], Window]]:
    """The trivial handler, up for the whole figure; yields a window's measurement."""
    step("floor: aiohttp + uvloop trivial handler")
    port = free_port()
    argv = [sys.executable, "-m", "sealgate.bench.floors", "trivial", "--port", str(port)]
    with service(argv, port=port, log=workspace.logs / "floor-trivial.log") as process:
        url = f"http://127.0.0.1:{port}"
        yield service_windows(process.pid, url, paths, workspace.options)


@contextmanager
def redis_get_floor(
    workspace: Workspace, redis: RedisServer, zipf_paths: Path
) -> Iterator[Callable[[], Window]]:
    """Needs the floor's keys in Redis (:func:`sealgate.bench.redis_keys.fill_floor_keys`)."""
    step("floor: the trivial handler doing one Redis GET per request (Zipf mix)")
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
    with service(argv, port=port, log=workspace.logs / "floor-redis-get.log") as process:
        url = f"http://127.0.0.1:{port}"
        yield service_windows(process.pid, url, zipf_paths, workspace.options)


def sign_floor(workspace: Workspace) -> Window:
    """A window of the raw sign rate: a process of its own, logged in afresh."""
    seconds = workspace.options.seconds
    key_label = workspace.seal_key_label()
    steal_before = host_steal_ticks()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sealgate.bench.floors",
            "sign",
            "--home",
            str(workspace.home),
            "--key-label",
            key_label,
            "--seconds",
            str(seconds),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the sign floor failed: {done.stderr.strip()[-2000:]}")
    sign = json.loads(done.stdout)
    count = round(sign["rate"] * seconds)
    steal = steal_share(steal_before, host_steal_ticks())
    return Window(sign["rate"], sign["cpu_us"], count, steal=steal)
