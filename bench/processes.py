"""Processes under measurement: start one on a port, wait for it, read its CPU time.

CPU time is read from ``/proc`` for a process and all its descendants (the gateway's
worker, signing and audit-writer children), so CPU-µs per request counts everything the
service spent, not only the process the load generator talks to; :func:`cpu_by_part`
tells those parts apart.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from sealgate.errors import Error

_TICKS = os.sysconf("SC_CLK_TCK")


class ServiceFailed(Error, RuntimeError):
    """A service under measurement did not start or died."""


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free on 127.0.0.1 now (held together while chosen, so
    the kernel cannot hand out one of them twice)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            probe = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            probe.bind(("127.0.0.1", 0))
            ports.append(int(probe.getsockname()[1]))
        return ports


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


# The parts of a gateway whose CPU the harness reports apart. A child process is known
# by its command line; a thread of the worker by the name it gave itself in the OS
# (sealgate.verify.sqlite_toolkit.name_native_thread). Whatever is neither counts as the worker's.
WORKER = "worker"
REGISTRY_THREADS = "registry threads"
PROCESS_PARTS = (
    (b"sealgate.hsm.worker", "signing process"),
    (b"sealgate.gateway.audit_writer", "audit writer"),
)
#: The TSA that stamps the gateway's proofs: a service of its own, counted beside it.
TSA = "TSA"
_REGISTRY_THREAD_PREFIX = "registry-"


def _cpu_seconds(stat_path: str) -> tuple[str, float] | None:
    """The name and user + system CPU seconds in a ``/proc`` stat file, if it is there."""
    try:
        stat = Path(stat_path).read_text()
    except OSError:
        return None
    name, _, rest = stat[stat.index("(") + 1 :].rpartition(")")
    fields = rest.split()
    return name, (int(fields[11]) + int(fields[12])) / _TICKS


def _part_of(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return WORKER
    return next((part for module, part in PROCESS_PARTS if module in argv), WORKER)


def ordered_parts(parts: Mapping[str, float]) -> list[tuple[str, float]]:
    """``parts`` in a fixed order: the worker, its registry threads, the children, then
    the services beside the gateway (the TSA)."""
    order = [WORKER, REGISTRY_THREADS, *(part for _, part in PROCESS_PARTS), TSA]
    return sorted(parts.items(), key=lambda item: order.index(item[0]))


def cpu_by_part(pid: int) -> dict[str, float]:
    """User + system CPU seconds of ``pid`` and every live descendant, by part: the
    signing process, the audit writer, the worker's registry threads, and the rest (the
    worker: its event loop and other threads). A part with no live process or thread
    is absent."""
    tree = _children()
    parts: dict[str, float] = {}
    pending = [pid]
    while pending:
        current = pending.pop()
        pending.extend(tree.get(current, []))
        process = _cpu_seconds(f"/proc/{current}/stat")
        if process is None:
            continue
        part = _part_of(current)
        seconds = process[1]
        if part == WORKER:
            # the process's own figure includes threads that have ended; the registry's
            # live threads are taken out of it
            try:
                tasks = os.listdir(f"/proc/{current}/task")
            except OSError:
                tasks = []
            for task in tasks:
                thread = _cpu_seconds(f"/proc/{current}/task/{task}/stat")
                if thread is not None and thread[0].startswith(_REGISTRY_THREAD_PREFIX):
                    parts[REGISTRY_THREADS] = parts.get(REGISTRY_THREADS, 0.0) + thread[1]
                    seconds -= thread[1]
        parts[part] = parts.get(part, 0.0) + seconds
    return parts


def host_steal_ticks() -> tuple[int, int] | None:
    """(steal, all) CPU ticks of the host since boot, from ``/proc/stat``: the time a
    virtual machine's CPUs were ready to run but the hypervisor ran someone else."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        ticks = [int(f) for f in fields]
    except (OSError, ValueError):
        return None
    return (ticks[7] if len(ticks) > 7 else 0), sum(ticks)


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise ServiceFailed(f"exited with {process.returncode}:\n{tail}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        if time.monotonic() > deadline:
            raise ServiceFailed(f"nothing listening on port {port} after {timeout:.0f} s")
        time.sleep(0.05)


@contextlib.contextmanager
def service(
    argv: Sequence[str],
    *,
    port: int,
    log: Path,
    env: Mapping[str, str] | None = None,
    ready: float = 60.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` until the block ends; yields once ``port`` accepts connections."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    try:
        wait_for_port(port, process, ready, log)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=20)
        # Whatever the leader did, nothing of its session may outlive the measurement
        # (a worker, a signing or audit-writer child).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
