"""CPU by part, read from /proc of a real process tree shaped like a gateway's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sealgate.bench.processes import REGISTRY_THREADS, WORKER, cpu_by_part, ordered_parts
from tests.waiting import until

pytestmark = pytest.mark.processes

ROOT = Path(__file__).resolve().parents[2]

# A worker that burns CPU in its main thread and in a thread named like the registry's,
# with two children known by their command lines: a signing process and an audit writer.
BURN = "import time\nend = time.monotonic() + 30\nwhile time.monotonic() < end: pass\n"
WORKER_CODE = f"""
import subprocess, sys, threading, time
from sealgate.verify.sqlite_toolkit import name_native_thread

def registry():
    name_native_thread("registry-writer")
    {BURN.replace(chr(10), chr(10) + "    ")}
threading.Thread(target=registry, daemon=True).start()
children = [
    subprocess.Popen([sys.executable, "-c", {BURN!r}, "sealgate.hsm.worker"]),
    subprocess.Popen([sys.executable, "-c", {BURN!r}, "sealgate.gateway.audit_writer"]),
]
print("ready", flush=True)
{BURN}
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads Linux's /proc")
def test_cpu_is_told_apart_by_process_and_registry_thread() -> None:
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER_CODE], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert worker.stdout is not None and worker.stdout.readline() == "ready\n"
        every_part = {WORKER, REGISTRY_THREADS, "signing process", "audit writer"}

        def each_part_burnt_some() -> dict[str, float]:
            parts = cpu_by_part(worker.pid)
            busy = set(parts) == every_part and all(s > 0.05 for s in parts.values())
            return parts if busy else {}

        # four busy threads on however many cores: each gets a real share in time
        parts = until(each_part_burnt_some, timeout=20, interval=0.1, what="CPU in every part")
        names = [part for part, _ in ordered_parts(parts)]
        assert names == [WORKER, REGISTRY_THREADS, "signing process", "audit writer"]
    finally:
        subprocess.run(["pkill", "-P", str(worker.pid)], check=False)
        worker.kill()
        worker.wait()


def test_a_process_that_is_gone_counts_nothing() -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert cpu_by_part(gone.pid) == {}
