"""One child process started, spoken to, reported and stopped: :mod:`sealgate.hsm.child`,
with real child interpreters."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import time

import pytest

from sealgate.hsm.child import Child, ChildFailed, describe_exit, start_child

PROGRAM = "tests.hsm.child_program"


def running_children(mode: str) -> list[int]:
    out = subprocess.run(
        ["pgrep", "-P", str(os.getpid()), "-f", f"{PROGRAM} {mode}"],
        capture_output=True,
        text=True,
    ).stdout
    return [int(pid) for pid in out.split()]


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True  # ended and reaped
    return False


async def test_a_child_answers_in_frames_and_stops_when_its_stdin_closes() -> None:
    child, reply = await start_child(PROGRAM, ["echo"], name="test child", timeout=30)
    assert reply == ["ready"]
    child.send([1, "hello", b"\x00\xff"])
    await child.drain()
    assert await child.read() == [1, "hello", b"\x00\xff"]
    await child.stop()
    assert child.returncode == 0
    assert not child.writable


@pytest.mark.slow
async def test_a_cancelled_start_stops_the_half_started_child() -> None:
    starting = asyncio.create_task(start_child(PROGRAM, ["silent"], name="test child", timeout=60))
    deadline = time.monotonic() + 20
    while not (pids := running_children("silent")) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    [pid] = pids
    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starting
    # stopping runs shielded, past the cancellation: it kills the child (which ignores
    # its stdin's end) after the grace period
    deadline = time.monotonic() + 20
    while not gone(pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert gone(pid), "the half-started child outlived its starter"


async def test_a_child_that_does_not_answer_in_time_fails_to_start_and_is_killed() -> None:
    with pytest.raises(ChildFailed, match=r"the test child did not start \(TimeoutError"):
        await start_child(PROGRAM, ["silent"], name="test child", timeout=0.5)
    assert running_children("silent") == []


async def test_a_child_that_ignores_its_stdin_closing_is_killed_on_stop() -> None:
    proc = await asyncio.create_subprocess_exec(
        "python3",
        "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    child = Child(proc, "test child")
    await child.stop(grace=0.2)
    assert child.returncode == -signal.SIGKILL


async def test_a_dead_child_is_reported_once_with_how_it_ended(
    caplog: pytest.LogCaptureFixture,
) -> None:
    child, _ = await start_child(PROGRAM, ["echo"], name="test child", timeout=30)
    os.kill(child.pid, signal.SIGKILL)
    returncode = await child.wait()
    with caplog.at_level(logging.WARNING, logger="sealgate.child"):
        child.report_lost(describe_exit(returncode))
        child.report_lost("again")
    assert [r.getMessage() for r in caplog.records] == [
        f"test child {child.pid} lost: killed by SIGKILL"
    ]
    await child.stop()


def test_describe_exit() -> None:
    assert describe_exit(None) == "still running"
    assert describe_exit(0) == "exited with code 0"
    assert describe_exit(3) == "exited with code 3"
    assert describe_exit(-signal.SIGTERM) == "killed by SIGTERM"
