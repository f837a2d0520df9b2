"""Audit before effect in the running gateway: a change's intent is journaled before it
is made; a journal that refuses a write (here: the journal's descriptor pointed at
/dev/full, a device every write to fails with ENOSPC) means the change is not made, the
answer is a true 503, and the trail is failing until a probe writes again; a change
made whose outcome record then fails is answered as made, its intent standing for it.

The same with a real full filesystem and real processes: ``test_audit_faults.py``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from sealgate.gateway.app import create_app
from sealgate.gateway.audit import AuditLog
from sealgate.gateway.keys import AUDIT, REGISTRY
from sealgate.verify.directory import Role
from tests.gateway.conftest import Demo, proof_request
from tests.gateway.test_audit import SEALGATE, audit_verify
from tests.gateway.test_authorization import count, sealed_code
from tests.gateway.test_cli import with_operator
from tests.waiting import eventually


@contextmanager
def journal_on_dev_full(log: AuditLog) -> Iterator[None]:
    """Every write to ``log``'s journal fails with ENOSPC until the block ends."""
    journal = log._journal
    assert journal is not None
    kept = os.dup(journal._fd)
    full = os.open("/dev/full", os.O_WRONLY)
    os.dup2(full, journal._fd)
    os.close(full)
    try:
        yield
    finally:
        os.dup2(kept, journal._fd)
        os.close(kept)


def trail(demo: Demo, request_id: str) -> list[tuple[str, str | None, str]]:
    conn = sqlite3.connect(demo.settings.audit_path)
    try:
        return conn.execute(
            "SELECT action, code, result FROM audit WHERE request = ? ORDER BY seq", (request_id,)
        ).fetchall()
    finally:
        conn.close()


async def test_a_change_is_journaled_ahead_then_answered(demo: Demo, gateway_client: Any) -> None:
    app = create_app(demo.settings)
    api: TestClient[Any, Any] = await gateway_client(app)
    batch = {"items": [proof_request(demo.proof_seal, content={"n": n}) for n in range(3)]}
    r = await api.post(
        "/v1/certificates",
        json=batch,
        headers=demo.auth(Role.SIGNER),
    )
    assert r.status == 201
    batch_id = r.headers["X-Request-Id"]  # the gateway's own id
    codes = [item["code"] for item in (await r.json())["items"]]
    r = await api.post(
        f"/v1/certificates/{codes[0]}/status",
        json={"status": "revoked", "reason": "x"},
        headers=demo.auth(Role.ISSUER),
    )
    assert r.status == 200
    revoke_id = r.headers["X-Request-Id"]
    await app[AUDIT].flush()
    # the intents first, one per code, then the outcome under the same request id
    assert trail(demo, batch_id) == [
        *(("seal", code, "intent") for code in codes),
        *(("seal", code, "201") for code in codes),
    ]
    assert trail(demo, revoke_id) == [
        ("status", codes[0], "intent"),
        ("status", codes[0], "200"),
    ]
    await app[AUDIT].checkpoint()  # a trail with no checkpoint is BROKEN: nothing signs it
    assert audit_verify(demo).returncode == 0


async def test_a_journal_that_refuses_a_write_stops_changes_until_a_probe_writes(
    demo: Demo, gateway_client: Any
) -> None:
    app = create_app(demo.settings)
    api: TestClient[Any, Any] = await gateway_client(app)
    code = await sealed_code(api, demo)
    log = app[AUDIT]
    signer, issuer = demo.auth(Role.SIGNER), demo.auth(Role.ISSUER)
    before = await count(demo)
    with journal_on_dev_full(log):
        r = await api.post(
            "/v1/certificates",
            json=proof_request(demo.proof_seal),
            headers=signer,
        )
        refused = r.headers["X-Request-Id"]
        # the intent could not be written: nothing sealed, and the 503 says so
        assert r.status == 503
        assert (await r.json())["code"] == "audit-unavailable"
        assert await count(demo) == before
        # marked failing at once: /readyz says so before any probe ran
        ready = await api.get("/readyz")
        assert ready.status == 503
        assert (await ready.json())["checks"]["audit"] == (
            "refusing: the audit journal cannot be written (No space left on device)"
        )
        # and the next change is refused up front
        r = await api.post(
            f"/v1/certificates/{code}/status",
            json={"status": "revoked", "reason": "x"},
            headers=issuer,
        )
        assert r.status == 503 and (await r.json())["code"] == "audit-unavailable"
        await log.probe()  # the probe fails too while the device refuses writes
        assert not log.healthy
    # written again: refused until a probe (each second) writes, then served
    assert not log.healthy

    async def ready() -> bool:
        return (await api.get("/readyz")).status == 200

    await eventually(ready, timeout=10, interval=0.1, what="ready after a probe")
    r = await api.get(f"/v1/verify/{code}?purpose=demo", headers=demo.auth(Role.VERIFIER))
    assert (await r.json())["status"] == "valid"  # the refused revocation was not made
    r = await api.post("/v1/certificates", json=proof_request(demo.proof_seal), headers=signer)
    assert r.status == 201
    await log.flush()
    assert trail(demo, refused) == []  # refused, not made: nothing to record
    await log.checkpoint()
    assert audit_verify(demo).returncode == 0


async def test_an_intent_that_does_not_reach_the_disk_stops_the_change(
    demo: Demo, gateway_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The intent is written, but its flush to the disk (run off the event loop) fails
    with EIO: the change is not made, the answer is a true 503, the trail refuses."""
    import errno

    import sealgate.gateway.audit as audit_module

    app = create_app(demo.settings)
    api: TestClient[Any, Any] = await gateway_client(app)
    before = await count(demo)
    flushed: list[int] = []

    def failing_flush(handle: int) -> None:
        flushed.append(handle)
        os.close(handle)
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(audit_module, "_flush", failing_flush)
    r = await api.post(
        "/v1/certificates", json=proof_request(demo.proof_seal), headers=demo.auth(Role.SIGNER)
    )
    assert flushed  # the intent's group was flushed, and that failed
    assert r.status == 503
    assert (await r.json())["code"] == "audit-unavailable"
    assert await count(demo) == before
    assert not app[AUDIT].healthy
    r = await api.get("/readyz")
    assert (await r.json())["checks"]["audit"].startswith("refusing: ")


async def test_a_change_made_whose_outcome_cannot_be_recorded_is_answered_as_made(
    demo: Demo, gateway_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registry commits, then the journal refuses the outcome: the answer is the
    201 (a 503 would have the client seal it again), the intent stands for it."""
    app = create_app(demo.settings)
    api: TestClient[Any, Any] = await gateway_client(app)
    log = app[AUDIT]
    registry = app[REGISTRY]
    register = registry.register
    fault = contextlib.ExitStack()

    async def register_then_fill(*args: Any, **kwargs: Any) -> Any:
        result = await register(*args, **kwargs)
        fault.enter_context(journal_on_dev_full(log))  # committed: now the disk is full
        return result

    monkeypatch.setattr(registry, "register", register_then_fill)
    before = await count(demo)
    with fault:
        r = await api.post(
            "/v1/certificates",
            json=proof_request(demo.proof_seal),
            headers=demo.auth(Role.SIGNER),
        )
        assert r.status == 201
        made = r.headers["X-Request-Id"]
        code = (await r.json())["code"]
        assert await count(demo) == before + 1
        assert not log.healthy  # the failed outcome marked the trail failing
    monkeypatch.undo()

    async def ready() -> bool:
        return (await api.get("/readyz")).status == 200

    await eventually(ready, timeout=10, interval=0.1, what="ready after a probe")
    await log.flush()
    assert trail(demo, made) == [("seal", code, "intent")]
    await log.checkpoint()
    assert audit_verify(demo).returncode == 0


def _cli(demo: Demo, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SEALGATE, "--home", str(demo.home), *with_operator(args)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.mark.processes
def test_provisioning_is_audited_ahead_and_not_made_when_the_trail_refuses(
    demo: Demo, tmp_path: Path
) -> None:
    added = _cli(demo, "client", "add", "--name", "ahead", "--role", "admin")
    assert added.returncode == 0, added.stderr
    client_id = added.stdout.split("\t")[1]
    conn = sqlite3.connect(demo.settings.audit_path)
    try:
        recorded = conn.execute(
            "SELECT action, result, detail FROM audit WHERE detail LIKE ? ORDER BY seq",
            (f"%{client_id}%",),
        ).fetchall()
    finally:
        conn.close()
    assert [(a, r) for a, r, _ in recorded] == [("client-add", "intent"), ("client-add", "ok")]

    # The trail cannot be written (its file is not a database): nothing is changed.
    trail_file = demo.settings.audit_path
    kept = tmp_path / "audit.db.kept"
    os.replace(trail_file, kept)
    trail_file.mkdir()
    try:
        listed = _cli(demo, "client", "list").stdout
        refused = _cli(demo, "client", "add", "--name", "unaudited", "--role", "admin")
        assert refused.returncode == 1
        assert "nothing changed" in refused.stderr
        assert _cli(demo, "client", "list").stdout == listed
        seals = _cli(demo, "seal", "list").stdout
        refused = _cli(
            demo,
            "seal",
            "create",
            "--unit-name",
            "x",
            "--unit-code",
            "11430900006151330B",
            "--kind",
            "proof",
            "--root-pin-file",
            str(demo.root_pin_file),
        )
        assert refused.returncode == 1 and "nothing changed" in refused.stderr
        assert _cli(demo, "seal", "list").stdout == seals
    finally:
        trail_file.rmdir()
        os.replace(kept, trail_file)
    assert audit_verify(demo).returncode == 0
