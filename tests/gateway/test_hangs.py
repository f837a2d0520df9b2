"""Hung children of a real `sealgate serve`: its signing process and its audit writer
stopped with SIGSTOP (alive, silent) under load, over real HTTP.

Each test prints what it saw per fault (requests sent, answers by status, longest client
wait, how soon the fault was seen); run with ``-s`` to read it. What is asserted are
statuses, headers, log lines, audit records and recovery; the one comparison of times is
between two batches, against a margin measured in the same run.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import os
import re
import signal
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sealgate.gateway.audit import AuditLog
from sealgate.verify.directory import Role
from tests.gateway.conftest import Demo, proof_request
from tests.gateway.serving import child_pid, free_port, serving
from tests.gateway.test_audit import audit_verify
from tests.waiting import eventually

pytestmark = [pytest.mark.slow, pytest.mark.processes]


async def running_child(session: int, module: str) -> int:
    """:func:`child_pid`, once there is one."""
    pid = await eventually(lambda: child_pid(session, module), timeout=20, what=module)
    assert pid is not None
    return pid


def logged_at(log: Path, pattern: str) -> float | None:
    """When (epoch seconds) the gateway first logged a line matching ``pattern``."""
    for line in log.read_text(errors="replace").splitlines():
        if re.search(pattern, line):
            stamp = dt.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
            return stamp.timestamp()  # logging's asctime is local time, as is this
    return None


def lost_lines(log: Path, name: str) -> int:
    """How many of the gateway's ``name`` processes it logged as lost."""
    return len(re.findall(rf"{name} \d+ lost:", log.read_text(errors="replace")))


@dataclass
class Tally:
    """What clients saw during one fault."""

    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    longest_wait: float = 0.0
    answers: list[tuple[float, float, int]] = field(default_factory=list)  # sent, got, status
    missing_retry_after: int = 0

    def add(self, sent: float, status: int, headers: Any) -> None:
        got = time.monotonic()
        self.statuses[status] += 1
        self.longest_wait = max(self.longest_wait, got - sent)
        self.answers.append((sent, got, status))
        if status == 503 and "Retry-After" not in headers:
            self.missing_retry_after += 1

    def summary(self) -> str:
        by_status = ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items()))
        return (
            f"sent {sum(self.statuses.values())}, answers {{{by_status}}}, "
            f"longest wait {self.longest_wait:.3f} s"
        )


def batch_body(demo: Demo, size: int, tag: str) -> dict[str, Any]:
    items = [proof_request(demo.proof_seal, content={"tag": tag, "n": n}) for n in range(size)]
    return {"items": items} if size > 1 else items[0]


async def seal(
    session: aiohttp.ClientSession, url: str, demo: Demo, size: int, tag: str
) -> tuple[int, float, str | None]:
    """One sealing of ``size`` proofs: its status, the client's wait, its Retry-After."""
    body = batch_body(demo, size, tag)
    sent = time.monotonic()
    async with session.post(f"{url}/v1/certificates", json=body) as r:
        await r.read()
        return r.status, time.monotonic() - sent, r.headers.get("Retry-After")


async def sealing_works(session: aiohttp.ClientSession, url: str, demo: Demo) -> bool:
    return (await seal(session, url, demo, 1, "recovery"))[0] == 201


async def seal_stopped(
    session: aiohttp.ClientSession, url: str, demo: Demo, session_pid: int, size: int
) -> tuple[int, float, str | None]:
    """A batch of ``size`` sent to a stopped signing process (the batch it is sent, with
    nothing else in flight), then sealing recovered: the batch's answer."""
    pid = await running_child(session_pid, "sealgate.hsm.worker")
    os.kill(pid, signal.SIGSTOP)
    try:
        answer = await seal(session, url, demo, size, f"stopped-{size}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
    await eventually(
        lambda: sealing_works(session, url, demo), timeout=30, interval=0.2, what="sealing again"
    )
    assert child_pid(session_pid, "sealgate.hsm.worker") not in (None, pid)
    return answer


async def test_a_stopped_signing_process_fails_a_batch_of_1000_as_soon_as_one_of_10(
    demo: Demo, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serving(demo.home, port, log=tmp_path / "serve.log") as process:
        async with aiohttp.ClientSession(headers=demo.auth(Role.SIGNER)) as session:
            assert (await seal(session, url, demo, 10, "warm"))[0] == 201
            # The margin: what a batch of 1,000 costs when nothing is wrong (parsing,
            # preparing, signing, registering, answering), measured here and now.
            status, healthy_1000, _ = await seal(session, url, demo, 1000, "healthy")
            assert status == 201
            small = await seal_stopped(session, url, demo, process.pid, 10)
            large = await seal_stopped(session, url, demo, process.pid, 1000)
    print(
        f"\nstopped signer: batch of 10 -> {small[0]} after {small[1]:.3f} s; batch of 1000 "
        f"-> {large[0]} after {large[1]:.3f} s; a healthy batch of 1000: {healthy_1000:.3f} s"
    )
    for status, _, retry_after in (small, large):
        assert status == 503
        assert retry_after is not None and int(retry_after) >= 1
    # A limit that grows with the batch (3 s + 20 ms a signature: 23 s for 1,000, 3.2 s
    # for 10) fails this by some 20 s; one bound on silence, whatever the size, passes it
    # with the seconds of slack a loaded host needs (a shared CI machine).
    assert large[1] <= small[1] + healthy_1000 + 5.0


async def test_a_signing_process_stopped_under_sealing_load_is_replaced_in_about_a_second(
    demo: Demo, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    load, verifications, batches = Tally(), Tally(), Tally()
    readiness: list[tuple[float, bool, str]] = []  # got at, ready, the hsm check
    with serving(demo.home, port, log=log) as process:
        signer = demo.auth(Role.SIGNER)
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{url}/v1/certificates", json=proof_request(demo.proof_seal), headers=signer
            ) as r:
                assert r.status == 201
                code = (await r.json())["code"]
            pid = await running_child(process.pid, "sealgate.hsm.worker")
            done = asyncio.Event()

            async def sealer(worker: int) -> None:
                n = 0
                while not done.is_set():
                    body = proof_request(demo.proof_seal, content={"w": worker, "n": n})
                    n += 1
                    sent = time.monotonic()
                    async with session.post(
                        f"{url}/v1/certificates", json=body, headers=signer
                    ) as r:
                        await r.read()
                        load.add(sent, r.status, r.headers)

            async def verifier() -> None:
                while not done.is_set():
                    sent = time.monotonic()
                    async with session.get(
                        f"{url}/v1/verify/{code}?purpose=demo", headers=demo.auth(Role.VERIFIER)
                    ) as r:
                        await r.read()
                        verifications.add(sent, r.status, r.headers)

            async def ready_poller() -> None:
                while not done.is_set():
                    async with session.get(f"{url}/readyz") as r:
                        body = await r.json()
                        readiness.append((time.monotonic(), body["ready"], body["checks"]["hsm"]))
                    await asyncio.sleep(0.05)

            tasks = [asyncio.create_task(sealer(w)) for w in range(8)]
            tasks += [asyncio.create_task(verifier()), asyncio.create_task(ready_poller())]
            try:
                await eventually(lambda: load.statuses[201] >= 50, timeout=30)
                stopped_wall, stopped = time.time(), time.monotonic()
                os.kill(pid, signal.SIGSTOP)

                async def send_batch(size: int) -> None:
                    body = batch_body(demo, size, f"under-load-{size}")
                    sent = time.monotonic()
                    async with session.post(
                        f"{url}/v1/certificates", json=body, headers=signer
                    ) as r:
                        await r.read()
                        batches.add(sent, r.status, r.headers)

                # a batch of 1,000 and one of 10 sent into the fault, beside the load
                await asyncio.gather(send_batch(1000), send_batch(10))

                def recovered() -> bool:
                    return any(s == 201 and t > stopped for t, _, s in load.answers) and any(
                        ready and t > stopped for t, ready, _ in readiness[-3:]
                    )

                await eventually(recovered, timeout=30, what="sealing and readiness again")
            finally:
                done.set()
                await asyncio.gather(*tasks, return_exceptions=True)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
            replacement = child_pid(process.pid, "sealgate.hsm.worker")
    lost_at = logged_at(log, rf"signing process {pid} lost: silent for")
    unready = [t for t, ready, hsm in readiness if t > stopped and not ready and hsm != "ok"]
    refused = [got for _, got, status in load.answers if got > stopped and status == 503]
    print(
        f"\nsigner stopped under load: sealing {load.summary()}; batches {batches.summary()} "
        f"(waits {', '.join(f'{got - sent:.3f}' for sent, got, _ in batches.answers)} s); "
        f"verification {verifications.summary()}; logged "
        f"{(lost_at or 0) - stopped_wall:.3f} s after the stop; readyz hsm not ok "
        f"{(unready[0] if unready else 0) - stopped:.3f} s after; first 503 "
        f"{(refused[0] if refused else 0) - stopped:.3f} s after"
    )
    assert lost_at is not None, "the hung signing process was not logged"
    # 8 sealers and a verifier on the machine's cores: a busy child is not a hung one
    assert all(status == 201 for _, got, status in load.answers if got < stopped)
    assert lost_lines(log, "signing process") == 1
    assert unready, "readyz did not say the signing process was unavailable"
    assert replacement not in (None, pid)
    assert set(load.statuses) <= {201, 503}
    assert refused
    # sent into the fault, they queue behind the load's batch and fail with it, unless
    # (a slow machine) preparing them outlasts the fault: then they are sealed
    assert sum(batches.statuses.values()) == 2 and set(batches.statuses) <= {201, 503}
    assert load.missing_retry_after == batches.missing_retry_after == 0
    # verification does not need the signer
    assert set(verifications.statuses) == {200}


async def test_a_stopped_audit_writer_is_replaced_in_about_a_second(
    demo: Demo, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    tally = Tally()
    answered: list[str] = []  # request ids answered 200
    readiness: list[tuple[float, bool]] = []
    with serving(demo.home, port, log=log) as process:
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{url}/v1/certificates",
                json=proof_request(demo.proof_seal),
                headers=demo.auth(Role.SIGNER),
            ) as r:
                assert r.status == 201
                code = (await r.json())["code"]
            writer = await running_child(process.pid, "sealgate.gateway.audit_writer")
            done = asyncio.Event()

            async def verifier(worker: int) -> None:
                n = 0
                while not done.is_set():
                    request_id = f"hang-{worker}-{n}"
                    n += 1
                    sent = time.monotonic()
                    async with session.get(
                        f"{url}/v1/verify/{code}?purpose=demo",
                        headers={**demo.auth(Role.VERIFIER), "X-Request-Id": request_id},
                    ) as r:
                        await r.read()
                        tally.add(sent, r.status, r.headers)
                        if r.status == 200:
                            answered.append(request_id)

            async def ready_poller() -> None:
                while not done.is_set():
                    async with session.get(f"{url}/readyz") as r:
                        readiness.append((time.monotonic(), (await r.json())["ready"]))
                    await asyncio.sleep(0.05)

            tasks = [asyncio.create_task(verifier(w)) for w in range(8)]
            tasks.append(asyncio.create_task(ready_poller()))
            try:
                await eventually(lambda: tally.statuses[200] >= 200, timeout=30)
                stopped_wall, stopped = time.time(), time.monotonic()
                os.kill(writer, signal.SIGSTOP)

                def recovered() -> bool:
                    replaced = child_pid(process.pid, "sealgate.gateway.audit_writer")
                    return replaced not in (None, writer) and any(
                        s == 200 and sent > stopped + 1 for sent, _, s in tally.answers[-20:]
                    )

                await eventually(recovered, timeout=30, what="a new writer and answers again")
            finally:
                done.set()
                await asyncio.gather(*tasks, return_exceptions=True)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(writer, signal.SIGCONT)
    refused = [(sent, got) for sent, got, status in tally.answers if status == 503]
    lost_at = logged_at(log, rf"audit writer {writer} lost: no heartbeat")
    down = refused[-1][1] - refused[0][1] if refused else 0.0
    print(
        f"\naudit writer stopped: verification {tally.summary()}; logged "
        f"{(lost_at or 0) - stopped_wall:.3f} s after the stop; first refusal "
        f"{(refused[0][1] - stopped) if refused else 0:.3f} s after; verification down "
        f"{down:.3f} s (first to last 503); readyz not ready "
        f"{sum(1 for t, ready in readiness if t > stopped and not ready)} times"
    )
    assert lost_at is not None, "the stopped writer was not found by its missing heartbeat"
    assert all(status == 200 for _, got, status in tally.answers if got < stopped)
    assert lost_lines(log, "audit writer") == 1
    assert set(tally.statuses) <= {200, 503}
    assert tally.missing_retry_after == 0
    # every answer given, before, during and after, is in the trail, and the trail holds
    conn = sqlite3.connect(demo.settings.audit_path)
    try:
        stored = {row[0] for row in conn.execute("SELECT request FROM audit")}
    finally:
        conn.close()
    assert set(answered) <= stored
    result = audit_verify(demo)
    assert result.returncode == 0, result.stderr


async def test_an_idle_stopped_writer_is_killed_for_its_missing_heartbeat_and_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No record waits, so nothing but the heartbeat can tell: the writer is found,
    killed, and the next probe starts another that chains what came meanwhile."""
    log = AuditLog(tmp_path / "audit.db", head_path=tmp_path / "head.json", signing=None)
    await log.start()
    try:
        stopped = log._writer
        assert stopped is not None
        os.kill(stopped.pid, signal.SIGSTOP)
        try:
            await asyncio.wait_for(stopped.wait(), 15)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(stopped.pid, signal.SIGCONT)
        assert stopped.returncode == -signal.SIGKILL
        assert any(
            f"audit writer {stopped.pid} lost: no heartbeat" in r.getMessage()
            for r in caplog.records
        )
        await eventually(lambda: log._writer is None, what="the reply reader sees its end")
        row = ["verify", "client-1", "verifier", "demo", "CODE", "200", "r1", 1.0, {}]
        await log.record_rows([row])
        await log.probe()
        await log.flush()
        assert log.healthy
        assert log._writer is not None and log._writer.pid != stopped.pid
    finally:
        await log.close()
    conn = sqlite3.connect(tmp_path / "audit.db")
    try:
        assert conn.execute("SELECT count(*) FROM audit").fetchone() == (1,)
    finally:
        conn.close()
