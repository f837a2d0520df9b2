"""A corrupted registry said as such: 4 MiB of a served gateway's registry.db overwritten.

The damage is not an outage: the requests that touch it answer 503 `registry-corrupted`
without `Retry-After`, `/readyz` says "corrupted" with the engine's message, the log
carries that message, writes stop, and `sealgate serve` refuses the file at start.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from sealgate.gateway.app import create_app
from sealgate.gateway.home import Settings
from sealgate.gateway.provision import DemoCredentials, init_home
from sealgate.verify.directory import Role
from sealgate.verify.sqlite.registry import refuse_if_corrupted
from sealgate.verify.sqlite_toolkit import quick_check
from tests.gateway.conftest import GatewayClient, proof_request
from tests.gateway.serving import free_port
from tests.waiting import until

SEALGATE = [sys.executable, "-m", "sealgate.gateway.cli"]
DAMAGE = 4 * 1024 * 1024
BATCH = 1000
HOLDER = {"kind": "person", "id": "11010519491231002X", "name": "张三"}


@pytest.fixture
def own_home(tmp_path: Path) -> tuple[Settings, DemoCredentials]:
    """A home of its own: this test damages its registry."""
    settings, credentials = init_home(tmp_path / "home", demo=True)
    assert credentials is not None
    return settings, credentials


def headers(credentials: DemoCredentials, role: Role) -> dict[str, str]:
    token = next(t for c, t in credentials.clients if c.role is role)
    return {"Authorization": f"Bearer {token}"}


async def seal_until(
    api: TestClient[Any, Any], credentials: DemoCredentials, registry: Path, size: int
) -> list[str]:
    """Seal batches of real proofs until the registry file is ``size`` bytes or more."""
    seal = credentials.seals[0].seal_id
    signer = headers(credentials, Role.SIGNER)
    codes: list[str] = []
    while registry.stat().st_size < size:
        items = [
            proof_request(seal, holder=HOLDER, content={"结论": "未发现犯罪记录", "序号": n})
            for n in range(len(codes), len(codes) + BATCH)
        ]
        r = await api.post("/v1/certificates", json={"items": items}, headers=signer)
        assert r.status == 201, await r.text()
        codes += [item["code"] for item in (await r.json())["items"]]
        # the WAL copied back into the file, so that its size is the proofs'
        checkpoint(registry)
    return codes


def checkpoint(registry: Path) -> None:
    """Copy the WAL into the file and empty it: afterwards every page is read from the
    file, the one this test damages (a page still in the WAL would be read from there)."""
    conn = sqlite3.connect(registry, timeout=10)
    try:
        # busy while the gateway's own checkpointer thread is at it: again until done
        until(
            lambda: conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0,
            what="the WAL emptied into the file",
        )
    finally:
        conn.close()


def overwrite_the_middle(path: Path, length: int) -> None:
    """``length`` random bytes over the middle of the file, in place (same inode: the
    gateway's open connections read them), on page boundaries, as a failing disk would."""
    size = path.stat().st_size
    assert size > 2 * length, "the registry must span more than the damage"
    start = (size // 2 - length // 2) // 4096 * 4096
    with path.open("r+b") as f:
        f.seek(start)
        f.write(random.Random(24).randbytes(length))
        f.flush()
        os.fsync(f.fileno())


@pytest.mark.processes
async def test_a_corrupted_registry_is_answered_reported_and_refused_as_corrupted(
    own_home: tuple[Settings, DemoCredentials],
    gateway_client: GatewayClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings, credentials = own_home
    registry = settings.sqlite_path
    app = create_app(settings)
    api: TestClient[Any, Any] = await gateway_client(app)
    codes = await seal_until(api, credentials, registry, 3 * DAMAGE)
    ready = await api.get("/readyz")
    assert ready.status == 200 and (await ready.json())["checks"]["registry"] == "ok"
    refuse_if_corrupted(registry)  # intact: the start check lets it be served

    caplog.set_level(logging.ERROR, logger="sealgate.registry")
    checkpoint(registry)
    overwrite_the_middle(registry, DAMAGE)
    assert quick_check(registry), "the damage must be visible to SQLite"

    verifier = headers(credentials, Role.VERIFIER)
    answers: collections.Counter[tuple[int, str | None, str | None]] = collections.Counter()
    longest = 0.0

    async def verify(code: str) -> None:
        nonlocal longest
        began = time.monotonic()
        r = await api.get(f"/v1/verify/{code}?purpose=demo", headers=verifier)
        problem = (await r.json()).get("code") if r.status != 200 else None
        longest = max(longest, time.monotonic() - began)
        answers[(r.status, problem, r.headers.get("Retry-After"))] += 1

    for start in range(0, len(codes), 50):
        await asyncio.gather(*(verify(code) for code in codes[start : start + 50]))
    corrupted = answers[(503, "registry-corrupted", None)]
    # Those whose pages were hit say so, without inviting a retry; the others verify.
    assert corrupted > 0, answers
    assert answers[(200, None, None)] + corrupted == len(codes), answers
    print(
        f"corrupted registry: {len(codes)} proofs, {registry.stat().st_size} bytes, "
        f"{DAMAGE} overwritten; {len(codes)} verifications, 50 at a time: {dict(answers)}; "
        f"longest wait {longest:.3f} s"
    )

    ready = await api.get("/readyz")
    body = await ready.json()
    assert ready.status == 503, body
    assert body["checks"]["registry"].startswith("corrupted: database disk image is malformed")
    assert "restore" in body["checks"]["registry"]
    assert "registry.db is corrupted: database disk image is malformed" in caplog.text

    # Nothing more is written into a file that must be restored from its backup.
    signer = headers(credentials, Role.SIGNER)
    r = await api.post(
        "/v1/certificates", json=proof_request(credentials.seals[0].seal_id), headers=signer
    )
    assert r.status == 503 and "Retry-After" not in r.headers
    assert (await r.json())["code"] == "registry-corrupted"

    # The same check at start: `sealgate serve` refuses the file, and says why.
    started = subprocess.run(
        [*SEALGATE, "--home", str(settings.home), "serve", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert started.returncode == 1, started.stderr
    assert f"the registry {registry} is corrupted" in started.stderr
    assert "restore the registry from a backup" in started.stderr
    print(f"readyz: {body['checks']['registry']}; serve: {started.stderr.strip()}")
