"""The five tampers an outside review made of the audit trail without the key (issue 28),
each now BROKEN; and the append-only sink that catches what the home alone cannot.

A real gateway writes a trail with checkpoints, pushing its heads to a real Redis; each
test tampers with a copy of the trail and head as an insider holding the home would,
re-hashing what it changed, and runs ``sealgate audit verify`` on it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sqlite3
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis

from sealgate.bench.redis_server import RedisServer
from sealgate.gateway.app import create_app
from sealgate.gateway.audit_sink import STREAM_PREFIX, HeadSink
from sealgate.gateway.keys import AUDIT
from sealgate.verify.audit import GENESIS, AuditEvent, record_hash
from sealgate.verify.directory import Role
from tests.gateway.conftest import Demo, proof_request
from tests.gateway.serving import free_port
from tests.gateway.test_audit import SEALGATE

pytestmark = pytest.mark.processes


@dataclasses.dataclass
class Trail:
    demo: Demo
    sink: str
    store: Path
    head: Path


def verify(trail: Trail, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *SEALGATE,
            "--home",
            str(trail.demo.home),
            "audit",
            "verify",
            "--trail",
            str(trail.store),
            "--head",
            str(trail.head),
            "--max-unsigned-age",
            "100000",
            *options,
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def sql(path: Path, statement: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(statement, args).fetchall()
        conn.commit()
        return rows
    finally:
        conn.close()


def rehash(path: Path) -> None:
    """What an insider without the key does after an edit: every hash made again from the
    first record, so the chain itself holds."""
    conn = sqlite3.connect(path)
    try:
        prev = GENESIS
        rows = conn.execute(
            "SELECT seq, at_ms, action, client, role, purpose, code, result, request, detail"
            " FROM audit ORDER BY seq"
        ).fetchall()
        for new_seq, row in enumerate(rows, start=1):
            event = AuditEvent(*row[2:9], at=row[1] / 1000, detail={})
            digest = record_hash(prev, new_seq, event, row[9])
            conn.execute(
                "UPDATE audit SET seq = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                (-new_seq, prev, digest, row[0]),
            )
            prev = digest
        conn.execute("UPDATE audit SET seq = -seq")
        conn.commit()
    finally:
        conn.close()


@pytest.fixture
async def trail(
    demo: Demo, redis_server: RedisServer, gateway_client: Any, tmp_path: Path
) -> Trail:
    """A copy of a trail of a gateway's requests, status changes among them, and three
    checkpoints, whose heads went to Redis (a database of this module's own)."""
    sink = redis_server.url.rsplit("/", 1)[0] + "/5"
    settings = dataclasses.replace(demo.settings, audit_sink=sink)
    for stream in redis.Redis.from_url(sink).keys(STREAM_PREFIX + "*"):
        redis.Redis.from_url(sink).delete(stream)  # another test's heads
    app = create_app(settings)
    api = await gateway_client(app)
    r = await api.post(
        "/v1/certificates", json=proof_request(demo.proof_seal), headers=demo.auth(Role.SIGNER)
    )
    code = (await r.json())["code"]
    for status in ("pledged", "valid", "pledged"):
        await api.post(
            f"/v1/certificates/{code}/status",
            json={"status": status, "reason": "x"},
            headers=demo.auth(Role.ISSUER),
        )
        await api.get(f"/v1/verify/{code}?purpose=demo", headers=demo.auth(Role.VERIFIER))
        assert await app[AUDIT].checkpoint() is not None
    store, head = tmp_path / "audit.db", tmp_path / "audit-head.json"
    source, target = sqlite3.connect(settings.audit_path), sqlite3.connect(store)
    source.backup(target)
    source.close()
    target.close()
    shutil.copy(settings.audit_head_path, head)
    copy = Trail(dataclasses.replace(demo, settings=settings), sink, store, head)
    intact = verify(copy, "--against", sink)
    assert intact.returncode == 0 and intact.stdout.startswith("OK"), intact.stderr
    return copy


def checkpoints(path: Path) -> list[tuple[int, dict[str, Any]]]:
    rows = sql(path, "SELECT seq, detail FROM audit WHERE action = 'checkpoint' ORDER BY seq")
    return [(seq, json.loads(detail)) for seq, detail in rows]


def test_1_cut_back_to_a_checkpoint_with_a_head_rebuilt_from_its_fields(trail: Trail) -> None:
    cut_at, fields = checkpoints(trail.store)[0]
    sql(trail.store, "DELETE FROM audit WHERE seq > ?", cut_at)
    for version in ({}, {"v": 2}):  # the old head form, and the new one's spelling
        trail.head.write_text(
            json.dumps(
                {
                    **version,
                    "seq": fields["head_seq"],
                    "hash": fields["head_hash"],
                    "signature": fields["signature"],
                    "key": fields["key"],
                }
            )
        )
        found = verify(trail)
        assert found.returncode == 1 and found.stderr.startswith("BROKEN"), found.stderr
    # and even with no head at all, the sink still holds the heads that came after the cut
    trail.head.unlink()
    found = verify(trail, "--no-head", "--against", trail.sink)
    assert found.returncode == 1 and "truncated" in found.stderr, found.stderr


def test_2_every_checkpoint_dropped_the_rest_re_hashed_and_the_head_deleted(
    trail: Trail,
) -> None:
    sql(trail.store, "DELETE FROM audit WHERE action = 'checkpoint'")
    rehash(trail.store)
    trail.head.unlink()
    found = verify(trail)
    assert found.returncode == 1
    assert "no checkpoint" in found.stderr and found.stderr.startswith("BROKEN"), found.stderr
    # told to check what is there, the head's absence still breaks it
    found = verify(trail, "--no-checkpoints")
    assert found.returncode == 1 and "signed head" in found.stderr and "missing" in found.stderr
    found = verify(trail, "--no-checkpoints", "--no-head", "--against", trail.sink)
    assert found.returncode == 1 and "differs from the record a head in the sink" in found.stderr


def test_3_a_missing_head_is_broken_not_a_warning(trail: Trail) -> None:
    trail.head.unlink()
    found = verify(trail)
    assert found.returncode == 1 and "missing" in found.stderr
    passed = verify(trail, "--no-head")  # only when told: then a warning
    assert passed.returncode == 0 and "warning: no signed head" in passed.stderr


def test_4_a_duplicated_key_in_a_detail_is_broken(trail: Trail) -> None:
    [(seq, detail)] = sql(
        trail.store,
        "SELECT seq, detail FROM audit WHERE action = 'status' AND result = '200' LIMIT 1",
    )
    assert detail == '{"status":"pledged"}'
    # json.loads keeps the last value (the hashed one), SQLite's json_extract the first
    doubled = '{"status":"revoked","status":"pledged"}'
    sql(trail.store, "UPDATE audit SET detail = ? WHERE seq = ?", doubled, seq)
    [(read,)] = sql(
        trail.store, "SELECT json_extract(detail, '$.status') FROM audit WHERE seq = ?", seq
    )
    assert read == "revoked"
    found = verify(trail)
    assert found.returncode == 1 and f"BROKEN: record {seq}:" in found.stderr, found.stderr


def test_5_a_client_added_while_no_gateway_ran_cannot_be_deleted_without_trace(
    trail: Trail, tmp_path: Path
) -> None:
    home = trail.demo.home
    before = tmp_path / "head-before.json"
    shutil.copy(trail.demo.settings.audit_head_path, before)
    added = subprocess.run(
        [*SEALGATE, "--home", str(home), "client", "add", "--name", "quiet", "--role", "admin",
         "--operator", "ops-1"],
        capture_output=True, text=True, check=False,
        env={**os.environ, "SEALGATE_AUDIT_SINK": trail.sink},
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    client_id = added.stdout.split("\t")[1]
    settings = trail.demo.settings
    last = sql(
        settings.audit_path, "SELECT seq, action, client FROM audit ORDER BY seq DESC LIMIT 3"
    )
    assert [row[1] for row in last] == ["checkpoint", "client-add", "client-add"]
    assert last[1][2] == "cli:ops-1"
    # the insider's copy: the add's three records gone, the head from before it put back
    store, head = tmp_path / "cut.db", tmp_path / "cut-head.json"
    shutil.copy(settings.audit_path, store)
    shutil.copy(before, head)
    sql(store, "PRAGMA journal_mode = DELETE")
    sql(store, "DELETE FROM audit WHERE seq >= ?", last[2][0])
    assert client_id not in store.read_bytes().decode(errors="replace")
    cut = dataclasses.replace(trail, store=store, head=head)
    found = verify(cut, "--against", trail.sink)
    assert found.returncode == 1 and "truncated" in found.stderr, found.stderr
    # with the head the command wrote, not even the sink is needed
    shutil.copy(settings.audit_head_path, head)
    assert verify(cut).returncode == 1


def test_heads_removed_from_the_sink_are_seen_and_its_user_cannot_remove_them(
    trail: Trail, redis_server: RedisServer
) -> None:
    admin = redis.Redis.from_url(trail.sink)
    password = uuid.uuid4().hex
    admin.execute_command(
        "ACL", "SETUSER", "sealgate-heads", "on", f">{password}", "resetkeys",
        f"~{STREAM_PREFIX}*", "-@all", "+xadd", "+xrange", "+xinfo|stream", "+exists", "+ping",
        "+select",
    )  # fmt: skip
    host_port = trail.sink.split("//", 1)[1]
    limited_url = f"redis://sealgate-heads:{password}@{host_port}"
    [stream] = admin.keys(STREAM_PREFIX + "*")
    limited = redis.Redis.from_url(limited_url)
    first = limited.xrange(stream, count=1)[0][0]
    for command in (("XDEL", stream, first), ("XTRIM", stream, "MAXLEN", 0), ("DEL", stream)):
        with pytest.raises(redis.exceptions.NoPermissionError):
            limited.execute_command(*command)
    assert verify(trail, "--against", limited_url).returncode == 0
    # XADD's own MAXLEN trims (no ACL can forbid that argument): the stream's counters tell
    limited.xadd(stream, {"head": "x"}, maxlen=1, approximate=False)
    found = verify(trail, "--against", limited_url)
    assert found.returncode == 1 and "were removed" in found.stderr, found.stderr
    assert HeadSink(limited_url, stream.decode().removeprefix(STREAM_PREFIX)).url == limited_url


async def test_a_sink_out_of_reach_leaves_the_gateway_serving_and_says_so(
    demo: Demo, gateway_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings = dataclasses.replace(demo.settings, audit_sink=f"redis://127.0.0.1:{free_port()}/0")
    app = create_app(settings)
    api = await gateway_client(app)
    r = await api.get(
        "/v1/verify/430900-ZDXE31-DD2417-Z7GDVP?purpose=demo", headers=demo.auth(Role.VERIFIER)
    )
    assert r.status == 404
    head = await app[AUDIT].checkpoint()
    assert head is not None  # signed and written at home all the same
    assert json.loads(settings.audit_head_path.read_text())["seq"] == head.seq
    assert f"audit head {head.seq} not pushed to the sink" in caplog.text
