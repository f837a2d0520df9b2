"""Runs the README's walkthrough (its fenced blocks marked ``<!-- walkthrough ... -->``)
as a reader would, both ways: after `make run` (port 8080, home `.sealgate`), and with a
home of one's own (`~/sealgate-demo`, port 8081).

Run in a network namespace of its own (``unshare -n``, by tests/test_readme.py), so the
README's fixed ports are free whatever else runs on the machine, and with ``HOME`` set to
a temporary directory, so ``~/sealgate-demo`` is the run's own. Prints one JSON object:
for each way, the walkthrough's exit status, stdout and stderr.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
_BLOCK = re.compile(r"<!-- walkthrough(?P<name>: [^>]*)? -->\n```sh\n(?P<body>.*?)\n```", re.S)
_EXPORT = re.compile(r"`(export SEALGATE_HOME=[^`]*)`")


def blocks(text: str) -> dict[str, str]:
    """The marked blocks by name (``""`` for the walkthrough itself)."""
    return {(m["name"] or "").removeprefix(": "): m["body"] for m in _BLOCK.finditer(text)}


def export_line(text: str) -> str:
    """The ``export`` the README tells readers of the second way to type first."""
    match = _EXPORT.search(text)
    if match is None:
        raise SystemExit("the README names no `export SEALGATE_HOME=…` for its own-home way")
    return match[1]


def loopback_up() -> None:
    """A new network namespace's ``lo`` is down: bring it up (SIOCSIFFLAGS, IFF_UP)."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sh14x", b"lo", 0)
        flags = struct.unpack("16sh14x", fcntl.ioctl(s, siocgifflags, request))[1]
        fcntl.ioctl(s, siocsifflags, struct.pack("16sh14x", b"lo", flags | iff_up))


def wait_for(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the gateway exited ({process.returncode}): {log.read_text()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}: {log.read_text()}")


@contextlib.contextmanager
def background(command: str, cwd: Path, env: dict[str, str], port: int) -> Iterator[None]:
    """A command a reader leaves running in its own shell, until the port listens."""
    log = cwd / f"server-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["bash", "-c", command], cwd=cwd, env=env, stdout=out, stderr=out,
            start_new_session=True,
        )  # fmt: skip
    try:
        wait_for(port, process, log)
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def checkout(directory: Path) -> Path:
    """A reader's working directory: the repository's venv and examples, nothing else."""
    directory.mkdir(parents=True)
    for name in (".venv", "examples"):
        (directory / name).symlink_to(ROOT / name)
    return directory


def walk(script: str, cwd: Path, env: dict[str, str]) -> dict[str, object]:
    run = subprocess.run(
        ["bash", "-e", "-c", script], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    return {"returncode": run.returncode, "stdout": run.stdout, "stderr": run.stderr}


def main(work: Path) -> None:
    loopback_up()
    text = README.read_text("utf-8")
    found = blocks(text)
    walkthrough, own_home = found[""], found["own home"]
    env = {k: v for k, v in os.environ.items() if k not in ("SEALGATE_HOME", "GATEWAY")}
    results: dict[str, object] = {}

    # 1. after `make run` (in the repository, its home given as a reader's .sealgate)
    reader = checkout(work / "make-run")
    make = f"make -C {ROOT} run SEALGATE_HOME={reader / '.sealgate'}"
    with background(make, reader, env, 8080):
        results["make run"] = walk(walkthrough, reader, env)

    # 2. a home of one's own, by hand, on another port
    reader = checkout(work / "own-home")
    home_env = {**env, "HOME": str(work / "user")}
    (work / "user").mkdir()
    *setup, serve = own_home.strip().splitlines()
    subprocess.run(["bash", "-e", "-c", "\n".join(setup)], cwd=reader, env=home_env, check=True)
    with background(serve, reader, home_env, 8081):
        script = export_line(text) + "\n" + walkthrough
        results["own home"] = walk(script, reader, home_env)
    print(json.dumps(results))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
