"""The audit trail in the running gateway: what is recorded, `sealgate audit verify`, and
refusal when the trail cannot be written."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from sealgate.gateway.app import create_app
from sealgate.gateway.audit_journal import journal_directory
from sealgate.gateway.dispatch import answer_remembered_verifications
from sealgate.gateway.handlers.verify import NONE_FOUND
from sealgate.gateway.keys import AUDIT
from sealgate.gateway.logs import AccessLogger
from sealgate.gateway.middleware import NOT_GRANTED
from sealgate.verify.code import NOT_A_CODE
from sealgate.verify.directory import Role
from tests.gateway.conftest import Demo, proof_request
from tests.gateway.test_authorization import count, sealed_code
from tests.waiting import eventually

SEALGATE = [sys.executable, "-m", "sealgate.gateway.cli"]
HOLDER_ID = "430902198502020019"


def audit_verify(demo: Demo, trail: Path | None = None) -> subprocess.CompletedProcess[str]:
    extra = ["--trail", str(trail)] if trail else []
    return subprocess.run(
        [*SEALGATE, "--home", str(demo.home), "audit", "verify", *extra],
        capture_output=True,
        text=True,
        check=False,
    )


def rows(path: Path, where: str = "1") -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        query = f"SELECT seq, action, client, role, purpose, code, result, detail FROM audit WHERE {where} ORDER BY seq"  # noqa: S608,E501
        return conn.execute(query).fetchall()
    finally:
        conn.close()


@pytest.mark.processes
async def test_requests_are_recorded_and_the_trail_verifies(
    demo: Demo, gateway_client: Any
) -> None:
    app = create_app(demo.settings)
    api: TestClient[Any, Any] = await gateway_client(app)
    trail = demo.settings.audit_path
    start = max((r[0] for r in rows(trail)), default=0)
    holder = {"kind": "person", "id": HOLDER_ID, "name": "赵六"}
    r = await api.post(
        "/v1/certificates",
        json=proof_request(demo.proof_seal, holder=holder),
        headers={**demo.auth(Role.SIGNER), "X-Request-Id": "seal-1"},
    )
    code = (await r.json())["code"]
    verifier = demo.auth(Role.VERIFIER)
    assert (await api.get(f"/v1/verify/{code}?purpose=demo", headers=verifier)).status == 200
    assert (
        await api.get("/v1/verify/430900-ZDXE31-DD2417-Z7GDVP?purpose=demo", headers=verifier)
    ).status == 404
    assert (
        await api.get(f"/v1/certificates/{code}/document?purpose=demo", headers=verifier)
    ).status == 200
    assert (
        await api.get(
            "/v1/proofs",
            params={"holder_id": HOLDER_ID, "type": "无犯罪记录证明", "purpose": "demo"},
            headers=verifier,
        )
    ).status == 200
    r = await api.post(
        f"/v1/certificates/{code}/status",
        json={"status": "pledged", "reason": "x"},
        headers=demo.auth(Role.ISSUER),
    )
    assert r.status == 200
    await app[AUDIT].checkpoint()

    recorded = rows(trail, f"seq > {start}")
    actions = [(r[1], r[6]) for r in recorded]
    assert actions[:8] == [
        ("seal", "intent"),  # written ahead of the registry write (docs/design.md §4.4)
        ("seal", "201"),
        ("verify", "200"),
        ("verify", "404"),
        ("document", "200"),
        ("proofs", "200"),
        ("status", "intent"),
        ("status", "200"),
    ]
    assert actions[-1] == ("checkpoint", "signed")
    intent, seal, verify = recorded[0], recorded[1], recorded[2]
    assert intent[5] == seal[5] == code and seal[3] == "signer"
    assert verify[4] == "demo" and verify[3] == "verifier" and verify[5] == code
    assert '"status": "pledged"' in recorded[6][7] and '"status": "pledged"' in recorded[7][7]
    raw = (
        trail.read_bytes() + Path(str(trail) + "-wal").read_bytes()
        if Path(str(trail) + "-wal").exists()
        else trail.read_bytes()
    )
    assert HOLDER_ID.encode() not in raw

    result = audit_verify(demo)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK")


async def test_an_identity_number_typed_as_a_code_is_kept_nowhere(
    demo: Demo, aiohttp_client: Any, caplog: pytest.LogCaptureFixture, monkeypatch: Any
) -> None:
    """A clerk types the holder's identity number into the code's place: the requests
    are recorded (as not a code), and the number is in neither the trail nor the log."""
    monkeypatch.setenv("SEALGATE_ACCESS_LOG", "all")
    # before any connection: aiohttp decides whether to log when a connection opens
    caplog.set_level(logging.INFO)
    app = create_app(demo.settings)
    server = TestServer(app)
    await server.start_server(access_log_class=AccessLogger)  # as `sealgate serve` logs
    api: TestClient[Any, Any] = await aiohttp_client(server)
    assert server.runner is not None and server.runner.server is not None
    answer_remembered_verifications(server.runner.server, app)  # and answers
    trail = demo.settings.audit_path
    start = max((r[0] for r in rows(trail)), default=0)
    verifier, issuer = demo.auth(Role.VERIFIER), demo.auth(Role.ISSUER)
    code = await sealed_code(api, demo)
    for path, headers in (
        (f"/v1/verify/{HOLDER_ID}?purpose=demo", verifier),
        (f"/v1/certificates/{HOLDER_ID}/document?purpose=demo", verifier),
        (f"/v1/certificates/{HOLDER_ID}/status", issuer),
        (f"/v1/verify/{code}?purpose=demo", verifier),
        (f"/v1/verify/{code}?purpose=demo", verifier),  # answered before the router
        (f"/v1/verify/{code}?purpose=demo", verifier),
        ("/v1/verify/a%00b?purpose=demo", verifier),
        (f"/v1/certificates/{HOLDER_ID}", verifier),  # no such route
    ):
        assert (await api.get(path, headers=headers)).status in (200, 404)
    await app[AUDIT].checkpoint()

    recorded = [(r[1], r[5]) for r in rows(trail, f"seq > {start}")]
    assert recorded[2:9] == [  # after the sealing's intent and outcome
        ("verify", NOT_A_CODE),
        ("document", NOT_A_CODE),
        ("status-history", NOT_A_CODE),
        *[("verify", code)] * 3,  # a code is kept as typed
        ("verify", NOT_A_CODE),
    ]
    stored = b"".join(
        f.read_bytes()
        for f in [*trail.parent.glob(trail.name + "*"), *journal_directory(trail).iterdir()]
    )
    assert HOLDER_ID.encode() not in stored
    assert HOLDER_ID not in caplog.text
    assert "/v1/verify/{code}" in caplog.text and f"/v1/verify/{code}" in caplog.text
    assert "\x00" not in caplog.text
    assert '"GET (no route)" 404' in caplog.text
    assert caplog.text.count(f'"GET /v1/verify/{code}" 200') == 3
    assert "Traceback" not in caplog.text


async def test_an_identity_number_typed_as_a_purpose_or_type_is_kept_nowhere(
    demo: Demo, gateway_client: Any
) -> None:
    app = create_app(demo.settings)
    api: TestClient[Any, Any] = await gateway_client(app)
    trail = demo.settings.audit_path
    start = max((r[0] for r in rows(trail)), default=0)
    verifier = demo.auth(Role.VERIFIER)
    holder = {"kind": "person", "id": HOLDER_ID, "name": "赵六"}
    r = await api.post(
        "/v1/certificates",
        json=proof_request(demo.proof_seal, holder=holder),
        headers=demo.auth(Role.SIGNER),
    )
    code = (await r.json())["code"]
    for path, params, status in (
        (f"/v1/verify/{code}", {"purpose": HOLDER_ID}, 403),
        (f"/v1/certificates/{code}/document", {"purpose": HOLDER_ID}, 403),
        ("/v1/proofs", {"holder_id": HOLDER_ID, "type": "x", "purpose": HOLDER_ID}, 403),
        ("/v1/proofs", {"holder_id": HOLDER_ID, "type": HOLDER_ID, "purpose": "demo"}, 200),
        ("/v1/proofs", {"holder_id": HOLDER_ID, "type": "无犯罪记录证明", "purpose": "demo"}, 200),
    ):
        r = await api.get(path, params=params, headers=verifier)
        assert r.status == status
        assert HOLDER_ID not in await r.text()  # nor echoed in the refusal
    await app[AUDIT].checkpoint()

    # after the sealing's intent and outcome
    recorded = [(r[1], r[4], r[7]) for r in rows(trail, f"seq > {start}")][2:7]
    assert [(action, purpose) for action, purpose, _ in recorded] == [
        ("verify", NOT_GRANTED),
        ("document", NOT_GRANTED),
        ("proofs", NOT_GRANTED),
        ("proofs", "demo"),
        ("proofs", "demo"),
    ]
    assert f'"type": "{NONE_FOUND}"' in recorded[3][2]
    assert '"type": "无犯罪记录证明"' in recorded[4][2]  # a type that named proofs is kept
    stored = b"".join(
        f.read_bytes()
        for f in [*trail.parent.glob(trail.name + "*"), *journal_directory(trail).iterdir()]
    )
    assert HOLDER_ID.encode() not in stored


TAMPER = {
    "deleted": ("DELETE FROM audit WHERE seq = {k}", 0),
    "altered": ("UPDATE audit SET result = '200' WHERE seq = {k}", 0),
    "truncated field": ("UPDATE audit SET code = substr(code, 1, 5) WHERE seq = {k}", 0),
    "reordered": (
        "UPDATE audit SET seq = -1 WHERE seq = {k}; "
        "UPDATE audit SET seq = {k} WHERE seq = {k} + 1; "
        "UPDATE audit SET seq = {k} + 1 WHERE seq = -1",
        0,
    ),
    "cut off": ("DELETE FROM audit WHERE seq >= {k}", 0),
}


@pytest.mark.processes
@pytest.mark.parametrize("kind", list(TAMPER))
async def test_audit_verify_names_the_first_bad_record(
    demo: Demo, gateway_client: Any, tmp_path: Path, kind: str
) -> None:
    app = create_app(demo.settings)
    api: TestClient[Any, Any] = await gateway_client(app)
    for _ in range(5):
        await api.get(
            "/v1/verify/430900-ZDXE31-DD2417-Z7GDVP?purpose=demo", headers=demo.auth(Role.VERIFIER)
        )
    head = await app[AUDIT].checkpoint()
    assert head is not None
    copy = tmp_path / "audit.db"
    source = sqlite3.connect(demo.settings.audit_path)
    target = sqlite3.connect(copy)
    source.backup(target)
    source.close()
    k = head.seq - 3  # a record the signed head vouches for, with records after it
    target.executescript(TAMPER[kind][0].format(k=k))
    target.commit()
    target.close()
    result = audit_verify(demo, copy)
    assert result.returncode == 1
    assert result.stderr.startswith(f"BROKEN: record {k}:"), result.stderr
    assert audit_verify(demo).returncode == 0  # the real trail is untouched


@pytest.mark.processes
async def test_a_cut_off_trail_without_its_signed_head_is_broken(
    demo: Demo, gateway_client: Any, tmp_path: Path
) -> None:
    app = create_app(demo.settings)
    api: TestClient[Any, Any] = await gateway_client(app)
    for _ in range(2):  # two checkpoints: the cut below leaves the first
        await api.get(
            "/v1/verify/430900-ZDXE31-DD2417-Z7GDVP?purpose=demo",
            headers=demo.auth(Role.VERIFIER),
        )
        head = await app[AUDIT].checkpoint()
        assert head is not None
    copy = tmp_path / "audit.db"
    source, target = sqlite3.connect(demo.settings.audit_path), sqlite3.connect(copy)
    source.backup(target)
    source.close()
    target.execute("DELETE FROM audit WHERE seq >= ?", (head.seq,))  # the end cut off
    target.commit()
    target.close()

    def check(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                *SEALGATE,
                "--home",
                str(demo.home),
                "audit",
                "verify",
                "--trail",
                str(copy),
                "--head",
                str(tmp_path / "deleted-head.json"),
                *extra,
            ],
            capture_output=True,
            text=True,
            check=False,
        )

    refused = check()
    assert refused.returncode == 1
    assert refused.stderr.startswith("BROKEN: the signed head") and "missing" in refused.stderr
    asked = check("--no-head")  # what is there is intact; the end cannot be vouched for
    assert asked.returncode == 0 and asked.stdout.startswith("OK")
    assert "warning: no signed head" in asked.stderr


@contextlib.contextmanager
def audit_store_locked(path: Path) -> Iterator[None]:
    """Another connection holds the audit store's write lock: the gateway's writes time out."""
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        locked.set()
        release.wait(30)
        conn.execute("ROLLBACK")
        conn.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    locked.wait(10)
    try:
        yield
    finally:
        release.set()
        holder.join()


@pytest.mark.processes
async def test_requests_are_refused_while_the_trail_cannot_be_written(
    demo: Demo, gateway_client: Any
) -> None:
    """While the store is locked, answers leave as their records wait in the journal, but
    only until those have waited LAG_LIMIT; then requests are refused, changes before
    anything is done. Every answer that left has its record in the trail afterwards."""
    app = create_app(demo.settings)
    api: TestClient[Any, Any] = await gateway_client(app)
    code = await sealed_code(api, demo)
    verifier = demo.auth(Role.VERIFIER)

    answered: list[str] = []
    with audit_store_locked(demo.settings.audit_path):
        for n in range(100):
            request_id = f"while-locked-{n}"
            r = await api.get(
                f"/v1/verify/{code}?purpose=demo", headers={**verifier, "X-Request-Id": request_id}
            )
            if r.status != 200:
                break
            answered.append(request_id)
            await asyncio.sleep(0.05)
        assert r.status == 503
        assert (await r.json())["code"] == "audit-unavailable"
        assert r.headers["Retry-After"]
        assert answered  # the first records waited in the journal, not the answers
        refused = request_id
        assert not app[AUDIT].healthy
        ready = await api.get("/readyz")  # a balancer stops sending audited work here
        assert ready.status == 503
        assert (await ready.json())["checks"]["audit"] == "refusing: the audit writer is behind"
        before = await count(demo)
        r = await api.post(
            "/v1/certificates", json=proof_request(demo.proof_seal), headers=demo.auth(Role.SIGNER)
        )
        assert r.status == 503  # refused before any sealing: nothing unaudited
        r = await api.post(
            f"/v1/certificates/{code}/status",
            json={"status": "revoked", "reason": "x"},
            headers=demo.auth(Role.ISSUER),
        )
        assert r.status == 503
        assert await count(demo) == before

    async def answered_again() -> Any:
        r = await api.get(f"/v1/verify/{code}?purpose=demo", headers=verifier)
        return r if r.status == 200 else None

    # the writer chains the journal once the lock goes, and recovers
    r = await eventually(answered_again, timeout=10, interval=0.2, what="answers again")
    assert (await r.json())["status"] == "valid"  # the refused revocation did not happen
    ready = await api.get("/readyz")
    assert ready.status == 200 and (await ready.json())["checks"]["audit"] == "ok"
    await app[AUDIT].flush()
    stored = {row[0] for row in _request_ids(demo.settings.audit_path)}
    assert set(answered) <= stored
    assert refused not in stored
    assert audit_verify(demo).returncode == 0


def _request_ids(path: Path) -> list[tuple[str]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT request FROM audit ORDER BY seq").fetchall()
    finally:
        conn.close()


@pytest.mark.processes
def test_rotation_and_provisioning_are_audited(demo: Demo) -> None:
    result = subprocess.run(
        [*SEALGATE, "--home", str(demo.home), "seal", "rotate", demo.verification_seal],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    intent, last, published_intent, published = rows(demo.settings.audit_path)[-4:]
    assert (intent[1], intent[6]) == ("seal-rotate", "intent")  # before the directory's change
    assert last[1] == "seal-rotate" and last[3] == "operator" and last[6] == "ok"
    assert demo.verification_seal in intent[7] and demo.verification_seal in last[7]
    # then the next trust document, which lists the rotation
    assert (published_intent[1], published_intent[6]) == ("trust-publish", "intent")
    assert (published[1], published[6]) == ("trust-publish", "ok")
    assert audit_verify(demo).returncode == 0


@pytest.mark.processes
async def test_a_killed_audit_writer_is_replaced_and_no_answered_record_is_lost(
    demo: Demo, gateway_client: Any
) -> None:
    import os
    import signal

    app = create_app(demo.settings)
    api: TestClient[Any, Any] = await gateway_client(app)
    code = await sealed_code(api, demo)
    verifier = demo.auth(Role.VERIFIER)

    async def check(request_id: str) -> tuple[str, int]:
        response = await api.get(
            f"/v1/verify/{code}?purpose=demo", headers={**verifier, "X-Request-Id": request_id}
        )
        return request_id, response.status

    writer = app[AUDIT]._writer
    assert writer is not None
    load = [asyncio.create_task(check(f"load-{n}")) for n in range(200)]
    await asyncio.sleep(0.01)
    os.kill(writer.pid, signal.SIGKILL)
    statuses = dict(await asyncio.gather(*load))
    assert set(statuses.values()) <= {200, 503}, set(statuses.values())
    await eventually(  # the duties loop starts another writer
        lambda: app[AUDIT]._writer not in (None, writer), timeout=10, what="a writer again"
    )
    replaced = app[AUDIT]._writer
    assert replaced is not None and replaced.pid != writer.pid
    assert (await check("after"))[1] == 200
    await app[AUDIT].checkpoint()
    stored = [row[0] for row in _request_ids(demo.settings.audit_path)]
    answered = [request_id for request_id, status in statuses.items() if status == 200]
    assert len(answered) > 0
    assert set(answered) <= set(stored)
    loaded = [request_id for request_id in stored if request_id.startswith("load-")]
    assert len(loaded) == len(set(loaded))  # chained once, though two writers read the file
    assert audit_verify(demo).returncode == 0


async def test_the_duties_outlive_a_failed_checkpoint_and_replace_a_killed_writer(
    demo: Demo, gateway_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Out of file descriptors (a connection flood) while writing the signed head: the
    duties loop must go on, for it is what starts a writer again."""
    import errno
    import os
    import signal

    import sealgate.gateway.audit

    writes = 0
    write_head = sealgate.gateway.audit.write_head

    def failing_once(path: Path, head: Any) -> None:
        nonlocal writes
        writes += 1
        if writes == 1:
            raise OSError(errno.EMFILE, "Too many open files")
        write_head(path, head)

    monkeypatch.setattr(sealgate.gateway.audit, "write_head", failing_once)
    app = create_app(demo.settings)
    api: TestClient[Any, Any] = await gateway_client(app)
    audit = app[AUDIT]
    audit._checkpoint_seconds = 0.2  # a checkpoint due as soon as there is a record
    code = await sealed_code(api, demo)
    await eventually(lambda: writes >= 1, timeout=5, what="a checkpoint")
    writer = audit._writer
    assert writer is not None
    os.kill(writer.pid, signal.SIGKILL)
    await eventually(
        lambda: audit._writer not in (None, writer), timeout=10, what="a writer started again"
    )
    verifier = demo.auth(Role.VERIFIER)
    assert (await api.get(f"/v1/verify/{code}?purpose=demo", headers=verifier)).status == 200
    # and the checkpoints go on, the head file written again
    await eventually(lambda: writes >= 2, timeout=5, what="a second checkpoint")


async def test_a_cancelled_request_leaves_its_group_and_its_record_standing(
    tmp_path: Path,
) -> None:
    from sealgate.gateway.audit import AuditLog

    log = AuditLog(tmp_path / "audit.db", head_path=tmp_path / "head.json", signing=None)
    await log.start()
    try:

        def row(n: int) -> list[Any]:
            return ["verify", "client-1", "verifier", "demo", f"CODE{n}", "200", f"r{n}", 1.0, {}]

        # the same turn of the loop: one group, one future
        first = asyncio.create_task(log.record_rows([row(1)]))
        second = asyncio.create_task(log.record_rows([row(2)]))
        await asyncio.sleep(0)
        first.cancel()
        await second  # the neighbour's write is not cancelled with it
        with pytest.raises(asyncio.CancelledError):
            await first
        await log.flush()
        assert [r[5] for r in rows(tmp_path / "audit.db")] == ["CODE1", "CODE2"]
        assert log.groups_written == 1
    finally:
        await log.close()


async def test_records_are_answered_from_the_journal_while_the_store_waits(
    tmp_path: Path,
) -> None:
    """The records of one turn of the loop go as one journal write, and their waits end
    with it, not with the store (locked here by another holder); the writer chains them
    once it can, in order."""
    from sealgate.gateway.audit import AuditLog

    path = tmp_path / "audit.db"
    log = AuditLog(path, head_path=tmp_path / "head.json", signing=None)
    await log.start()
    try:

        def row(n: int) -> list[Any]:
            return ["verify", "client-1", "verifier", "demo", f"CODE{n}", "200", f"r{n}", 1.0, {}]

        with audit_store_locked(path):
            await asyncio.gather(*(log.record_rows([row(n)]) for n in range(200)))
            assert log.groups_written == 1
            for n in range(200, 210):  # one record per turn: one write each
                await log.record_rows([row(n)])
            assert log.groups_written == 11
            assert rows(path) == []
            assert log.healthy
        await log.flush()
        assert [r[5] for r in rows(path)] == [f"CODE{n}" for n in range(210)]
        assert log.records_written == 210
    finally:
        await log.close()


async def test_a_cancellation_that_meets_the_writers_answer_is_not_lost(tmp_path: Path) -> None:
    """Shutdown cancels the duties loop once; if that lands as the writer's answer does,
    the loop must still end (Python 3.11's wait_for dropped such a cancellation, and the
    gateway's shutdown hung)."""
    from sealgate.gateway.audit import AuditLog

    log = AuditLog(tmp_path / "audit.db", head_path=tmp_path / "head.json", signing=None)
    await log.start()
    try:
        call = asyncio.create_task(log._call("head"))
        await asyncio.sleep(0)  # sent; now waiting for the answer
        answer = log._in_flight[0][2]
        answer.set_result(None)  # the answer arrives ...
        call.cancel()  # ... in the same turn as the cancellation
        with pytest.raises(asyncio.CancelledError):
            await call
    finally:
        await log.close()


@pytest.mark.slow
async def test_a_hung_writer_is_refused_then_killed_and_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import signal

    import sealgate.gateway.audit as audit_module
    from sealgate.gateway.audit import LAG_LIMIT, AuditLog, AuditUnavailable

    monkeypatch.setattr(audit_module, "WRITE_TIMEOUT", 0.5)  # killed 5.5 s behind
    log = AuditLog(tmp_path / "audit.db", head_path=tmp_path / "head.json", signing=None)
    await log.start()
    try:
        row = ["verify", "client-1", "verifier", "demo", "CODE", "200", "r1", 1.0, {}]
        await log.record_rows([row])
        await log.flush()
        hung = log._writer
        assert hung is not None
        os.kill(hung.pid, signal.SIGSTOP)  # alive, but chains nothing
        await log.record_rows([row])  # journaled: the writer is not waited for
        started = asyncio.get_running_loop().time()
        while log.healthy and asyncio.get_running_loop().time() - started < 5:
            await asyncio.sleep(0.05)
        assert asyncio.get_running_loop().time() - started >= LAG_LIMIT * 0.9
        assert not log.healthy
        with pytest.raises(AuditUnavailable):
            await log.record_rows([row])
        # nobody runs the duties loop here: the watchdog alone must end the hung writer
        await asyncio.wait_for(hung.wait(), 15)
        await log.probe()  # a new writer, which chains what the journal holds
        await log.flush()
        assert log.healthy
        await log.record_rows([row])
        await log.flush()
        assert len(rows(tmp_path / "audit.db")) == 3  # the refused record was never written
    finally:
        await log.close()


@pytest.mark.slow
async def test_a_writer_waiting_out_a_locked_store_is_not_taken_for_hung(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long lock on the store (a backup, say): the writer's passes keep failing and it
    says so each time, so it is left to retry, and it chains everything once it can."""
    import sealgate.gateway.audit as audit_module
    from sealgate.gateway.audit import AuditLog

    monkeypatch.setattr(audit_module, "WRITE_TIMEOUT", 0.5)  # hung would mean 5.5 s silent
    path = tmp_path / "audit.db"
    log = AuditLog(path, head_path=tmp_path / "head.json", signing=None)
    await log.start()
    try:
        row = ["verify", "client-1", "verifier", "demo", "CODE", "200", "r1", 1.0, {}]
        writer = log._writer
        assert writer is not None
        with audit_store_locked(path):
            await log.record_rows([row])
            journaled = time.monotonic()
            # Waited for until the watchdog has looked at least once past the silence
            # that gets a writer killed, failing at once if it did kill this one.
            silence_limit = audit_module.WRITE_TIMEOUT + 5 + audit_module.PROBE_SECONDS

            def outlived_the_silence_limit() -> bool:
                assert log._writer is writer and writer.returncode is None, "taken for hung"
                return time.monotonic() - journaled > silence_limit

            await eventually(outlived_the_silence_limit, timeout=silence_limit + 10)
            assert not log.healthy
            assert log._writer is writer and writer.returncode is None
        await log.flush()
        assert log.healthy
        assert len(rows(path)) == 1
    finally:
        await log.close()


@pytest.mark.slow
async def test_a_writer_whose_start_is_cancelled_does_not_outlive_it(tmp_path: Path) -> None:
    """The store locked by another connection: the writer waits on it before its
    "ready". Cancelled then (a shutdown during a probe), the start stops the
    half-started writer instead of leaving it behind."""
    import os
    import signal

    from sealgate.gateway.audit import AuditLog

    store = tmp_path / "audit.db"
    sqlite3.connect(store).close()  # a rollback-journal file: EXCLUSIVE bars readers too
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        conn = sqlite3.connect(store, isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        locked.set()
        release.wait(60)
        conn.execute("ROLLBACK")
        conn.close()

    def writers() -> list[int]:
        out = subprocess.run(
            ["pgrep", "-P", str(os.getpid()), "-f", f"sealgate.gateway.audit_writer {store}"],
            capture_output=True,
            text=True,
        ).stdout
        return [int(pid) for pid in out.split()]

    holder = threading.Thread(target=hold_lock)
    holder.start()
    locked.wait(10)
    log = AuditLog(store, head_path=tmp_path / "head.json", signing=None)
    try:
        starting = asyncio.create_task(log.start())
        for _ in range(200):
            if writers():
                break
            await asyncio.sleep(0.05)
        [writer] = writers()
        # waiting on the lock, not ready; frozen there, it would never end by itself
        os.kill(writer, signal.SIGSTOP)
        assert not starting.done()
        starting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await starting
        for _ in range(400):  # stopped: stdin closed, killed after the grace period
            if not writers():
                break
            await asyncio.sleep(0.05)
        assert writers() == [], f"audit writer {writer} outlived its cancelled start"
    finally:
        for pid in writers():  # left behind by a failure above
            os.kill(pid, signal.SIGKILL)
        release.set()
        holder.join()
        await log.close()


async def test_start_waits_for_a_trail_that_takes_records(tmp_path: Path) -> None:
    """A worker opens its port only once its trail is writable (within START_TIMEOUT):
    started while the journal's directory cannot be made, it keeps trying, and returns
    healthy once it can, instead of taking connections only to refuse them."""
    from sealgate.gateway.audit import AuditLog

    store = tmp_path / "audit.db"
    blocker = tmp_path / "audit-journal"
    blocker.write_text("not a directory")  # the journal cannot be opened
    log = AuditLog(store, head_path=tmp_path / "head.json", signing=None)
    try:
        starting = asyncio.create_task(log.start())
        await asyncio.sleep(0.6)
        assert not starting.done()
        assert not log.healthy
        blocker.unlink()
        await asyncio.wait_for(starting, 15)
        assert log.healthy
        row = ["verify", "client-1", "verifier", "demo", "CODE", "200", "r1", 1.0, {}]
        await log.record_rows([row])
        await log.flush()
        assert [r[5] for r in rows(store)] == ["CODE"]
    finally:
        await log.close()
