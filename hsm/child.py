"""A child interpreter on two pipes: started, spoken to in frames, watched and stopped.

The signing process (:mod:`sealgate.hsm.service`) and the audit writer
(:mod:`sealgate.gateway.audit`) are both ``python -m <module>`` children that speak
:mod:`sealgate.hsm.frames` on stdin/stdout and end when their stdin closes. Their start,
their loss and their end were written twice and drifted apart (a cancelled start left the
audit writer running); here they are written once:

- :func:`start_child` starts one, sends it its first frame if any, and waits for its
  first answer; a child that fails to start, or whose starter is cancelled, is stopped
  before the error (or the cancellation) goes on;
- :meth:`Child.stop` closes its stdin (its clean exit), then kills it, each wait bounded,
  so closing never hangs on a child that will not die;
- :meth:`Child.report_lost` says, in one form for both, that a child was lost and why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sealgate.errors import Error
from sealgate.hsm import frames

__all__ = ["Child", "ChildFailed", "describe_exit", "start_child"]

log = logging.getLogger("sealgate.child")

_PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: How long a child whose stdin is closed may take to finish before it is killed.
STOP_GRACE = 5.0
#: How long a killed child may take to be reaped before close gives up waiting on it.
KILL_WAIT = 5.0
# What a start may raise when the child dies, hangs or talks nonsense.
_START_FAILURES = (
    TimeoutError,
    OSError,
    asyncio.IncompleteReadError,
    ValueError,
    frames.ProtocolError,
)


class ChildFailed(Error):
    """A child process did not start (or answered its start with nonsense)."""


def describe_exit(returncode: int | None) -> str:
    """How a child ended, for a log line: its exit code, or the signal that killed it."""
    if returncode is None:
        return "still running"
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-returncode).name}"
        return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


class Child:
    """One running child process and its two pipes."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self.proc = proc
        self.name = name  # "signing process", "audit writer": for log lines
        self._stdin = proc.stdin
        self._stdout = proc.stdout
        self._reported = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    @property
    def writable(self) -> bool:
        """Whether a frame can still be sent (its stdin is not closed or closing)."""
        return not self._stdin.is_closing()

    def send(self, obj: Any) -> None:
        """Queue one frame on the child's stdin (see :meth:`drain`)."""
        self._stdin.write(frames.pack(obj))

    async def drain(self) -> None:
        await self._stdin.drain()

    async def read(self) -> Any:
        """The child's next frame; ``asyncio.IncompleteReadError`` once its stdout ends."""
        return await frames.read_frame_async(self._stdout)

    async def wait(self) -> int:
        """Wait for the child to end; its exit code."""
        return await self.proc.wait()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()

    def report_lost(self, reason: str) -> None:
        """Log, once per child, that it is lost and why."""
        if not self._reported:
            self._reported = True
            log.warning("%s %d lost: %s", self.name, self.pid, reason)

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """End the child: close its stdin and let it finish for ``grace`` seconds, then
        kill it. Returns within ``grace`` + :data:`KILL_WAIT` seconds in any case."""
        self._stdin.close()
        try:
            async with asyncio.timeout(grace):
                await self.proc.wait()
            return
        except TimeoutError:
            self.kill()
        try:
            async with asyncio.timeout(KILL_WAIT):
                await self.proc.wait()
        except TimeoutError:  # stuck in the kernel (a hung device): leave it, say so
            log.error("%s %d did not end when killed", self.name, self.pid)


async def start_child(
    module: str,
    args: Sequence[str] = (),
    *,
    name: str,
    timeout: float,
    hello: Any | None = None,
) -> tuple[Child, Any]:
    """Start ``python -m module args``, send ``hello`` (if any) as its first frame, and
    return the child with its first answer, read within ``timeout`` seconds.

    Raises :class:`ChildFailed` if it cannot be started or does not answer; the child is
    stopped first. A caller cancelled meanwhile (a readiness probe's timeout) stops it too:
    a half-started child must not outlive its starter.
    """
    env = dict(os.environ)
    # The child imports sealgate from the same tree as this process, installed or not.
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(_PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
    )
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            module,
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
    except OSError as exc:
        raise ChildFailed(f"cannot start the {name}: {exc}") from exc
    child = Child(proc, name)
    try:
        async with asyncio.timeout(timeout):
            if hello is not None:
                child.send(hello)
                await child.drain()
            reply = await child.read()
    except asyncio.CancelledError:
        await asyncio.shield(child.stop())
        raise
    except _START_FAILURES as exc:
        await child.stop()
        raise ChildFailed(
            f"the {name} did not start ({type(exc).__name__}, {describe_exit(child.returncode)})"
        ) from exc
    return child, reply
