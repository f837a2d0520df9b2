"""The real `sealgate serve` process: killed with SIGKILL, and run with several workers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest

from sealgate.crypto.verification import TrustList, verify_proof
from sealgate.gateway.audit_store import unchained_journal_bytes
from sealgate.gateway.provision import init_home
from sealgate.verify.directory import Role
from tests.gateway.conftest import Demo, proof_request
from tests.gateway.serving import free_port, listens, serving
from tests.gateway.test_audit import audit_verify
from tests.waiting import eventually, until


@pytest.mark.slow
async def test_every_proof_answered_201_survives_sigkill(demo: Demo) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    answered: list[str] = []
    with serving(demo.home, port) as process:
        async with aiohttp.ClientSession(headers=demo.auth(Role.SIGNER)) as session:

            async def seal_forever(worker: int) -> None:
                n = 0
                while True:
                    body = proof_request(demo.proof_seal, content={"w": worker, "n": n})
                    n += 1
                    try:
                        async with session.post(f"{url}/v1/certificates", json=body) as r:
                            if r.status == 201:
                                answered.append((await r.json())["code"])
                                if len(answered) == 40:
                                    # killed the instant the 40th answer has arrived
                                    os.kill(process.pid, signal.SIGKILL)
                    except aiohttp.ClientError:
                        return

            await asyncio.wait_for(
                asyncio.gather(*(seal_forever(i) for i in range(16))), timeout=60
            )
        process.wait(timeout=10)
        assert process.returncode == -signal.SIGKILL
    assert len(answered) >= 40

    registry = demo.settings.open_registry()
    trust = TrustList.from_pem(demo.settings.root_certificate_path.read_bytes())
    try:
        for code in answered:
            record = await registry.get(code.replace("-", ""))
            assert record is not None, f"{code} was answered 201 but is not registered"
            assert verify_proof(record.document, trust).code == code
    finally:
        await registry.close()
    # and no row anywhere in the registry is half-written: every stored proof is whole
    conn = sqlite3.connect(demo.settings.sqlite_path)
    stored = [row[0] for row in conn.execute("SELECT code FROM proofs")]
    conn.close()
    registry = demo.settings.open_registry()
    try:
        for code in stored:
            record = await registry.get(code)
            assert record is not None
            assert verify_proof(record.document, trust).code.replace("-", "") == code
    finally:
        await registry.close()

    # and after a restart the gateway answers for them
    with serving(demo.home, port):
        async with aiohttp.ClientSession(headers=demo.auth(Role.VERIFIER)) as session:
            for code in answered:
                async with session.get(f"{url}/v1/verify/{code}?purpose=demo") as r:
                    assert r.status == 200
                    assert (await r.json())["status"] == "valid"


def children(pid: int) -> list[int]:
    # workers only: not multiprocessing's resource tracker
    out = subprocess.run(
        ["pgrep", "-P", str(pid), "-f", "spawn_main"], capture_output=True, text=True
    ).stdout
    return [int(p) for p in out.split()]


def started_workers(supervisor: int, count: int) -> list[int]:
    """The supervisor's workers, once all ``count`` are up."""
    until(lambda: len(children(supervisor)) >= count, timeout=20, what=f"{count} workers")
    workers = children(supervisor)
    assert len(workers) == count
    return workers


@pytest.mark.slow
async def test_workers_share_one_port_and_are_restarted(demo: Demo) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serving(demo.home, port, workers=2) as supervisor:
        workers = started_workers(supervisor.pid, 2)
        async with aiohttp.ClientSession(headers=demo.auth(Role.SIGNER)) as session:

            async def seal(n: int) -> int:
                body = proof_request(demo.proof_seal, content={"n": n})
                async with session.post(f"{url}/v1/certificates", json=body) as r:
                    return r.status

            statuses = await asyncio.gather(*(seal(n) for n in range(200)))
            assert set(statuses) == {201}

            os.kill(workers[0], signal.SIGKILL)

            def replaced() -> list[int]:
                now = children(supervisor.pid)
                return [] if workers[0] in now else [p for p in now if p != workers[1]]

            [new] = await eventually(replaced, timeout=20, what="a worker started again")
            assert sorted(children(supervisor.pid)) == sorted([workers[1], new])
            # It binds once its app is set up: until then the survivor takes every request.
            await eventually(lambda: listens(new, port), timeout=20, what="the new worker binds")
            statuses = await asyncio.gather(*(seal(n) for n in range(100)))
            assert set(statuses) == {201}


@pytest.mark.slow
def test_workers_stop_when_their_supervisor_is_killed(demo: Demo) -> None:
    port = free_port()
    with serving(demo.home, port, workers=2) as supervisor:
        workers = started_workers(supervisor.pid, 2)
        os.kill(supervisor.pid, signal.SIGKILL)
        try:
            until(
                lambda: not any(_alive(w) for w in workers),
                timeout=20,
                what="the workers end with their supervisor",
            )
        finally:  # serving() cannot stop a group whose leader is gone
            with contextlib.suppress(ProcessLookupError):
                os.killpg(supervisor.pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
async def test_every_answer_is_in_the_trail_after_the_whole_gateway_is_killed(
    demo: Demo,
) -> None:
    """Its audit writer held up, then the gateway, the writer and the signer killed at
    once: the records answered meanwhile wait in the journal, and the next gateway's
    writer chains them into the trail, each once."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    trail = demo.settings.audit_path
    answered: list[str] = []
    with serving(demo.home, port) as process:
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{url}/v1/certificates",
                json=proof_request(demo.proof_seal),
                headers=demo.auth(Role.SIGNER),
            ) as r:
                code = (await r.json())["code"]
            [writer] = [
                int(pid)
                for pid in subprocess.run(
                    ["pgrep", "-s", str(process.pid), "-f", "sealgate.gateway.audit_writer"],
                    capture_output=True,
                    text=True,
                ).stdout.split()
            ]
            os.kill(writer, signal.SIGSTOP)  # chains nothing from here on
            started = time.monotonic()
            while time.monotonic() - started < 0.5:  # within LAG_LIMIT: still answered
                async with session.get(
                    f"{url}/v1/verify/{code}?purpose=demo", headers=demo.auth(Role.VERIFIER)
                ) as r:
                    assert r.status == 200
                    answered.append(r.headers["X-Request-Id"])  # the gateway's own id
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    assert answered
    assert unchained_journal_bytes(trail) > 0

    with serving(demo.home, port):
        await eventually(
            lambda: unchained_journal_bytes(trail) == 0,
            timeout=20,
            what="the next gateway chains the journal",
        )
    conn = sqlite3.connect(trail)
    stored = [row[0] for row in conn.execute("SELECT request FROM audit")]
    conn.close()
    assert sorted(r for r in stored if r in set(answered)) == sorted(answered)
    result = audit_verify(demo)
    assert result.returncode == 0, result.stderr
    assert "wait in the audit journal" not in result.stderr


@pytest.mark.slow
async def test_a_gateway_stopped_by_sigterm_to_its_group_leaves_its_trail_whole(
    demo: Demo,
) -> None:
    """As systemd stops a service (SIGTERM to every process of it): the signing and audit
    processes wait for their worker, which chains its last records and signs a final
    checkpoint over them."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serving(demo.home, port, workers=2) as process:
        async with aiohttp.ClientSession(headers=demo.auth(Role.SIGNER)) as session:
            ids = []
            for n in range(20):
                body = proof_request(demo.proof_seal, content={"n": n})
                async with session.post(f"{url}/v1/certificates", json=body) as r:
                    assert r.status == 201
                    ids.append(r.headers["X-Request-Id"])
        os.killpg(process.pid, signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    # (a worker still starting when the signal came may leave an empty journal behind,
    # its writer killed before it could ignore the signal; the next start removes it)
    assert unchained_journal_bytes(demo.settings.audit_path) == 0
    result = audit_verify(demo)
    assert result.returncode == 0, result.stderr
    assert "wait in the audit journal" not in result.stderr
    conn = sqlite3.connect(demo.settings.audit_path)
    last = conn.execute("SELECT action FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    requests = conn.execute("SELECT request FROM audit WHERE action = 'seal' AND result = '201'")
    sealed = (sum(1 for (request,) in requests if request in ids),)
    conn.close()
    assert last == ("checkpoint",)
    assert sealed == (20,)


@pytest.mark.slow
def test_a_home_made_before_webhooks_gets_its_webhook_key_when_served(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Change notices and overdue announcements are signed with the home's webhook-key; a
    home made before it existed gets one, once, from the supervisor (not one a worker)."""
    home = tmp_path_factory.mktemp("old") / "home"
    init_home(home, demo=True)
    key = home / "secrets" / "webhook-key"
    key.unlink()
    log = home.parent / "serve.log"
    with serving(home, free_port(), workers=2, log=log):
        assert len(key.read_bytes()) >= 32
        assert key.stat().st_mode & 0o077 == 0
    assert "copy it to the home of every other instance" in log.read_text()
