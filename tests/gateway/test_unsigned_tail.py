"""The audit trail's unsigned tail: records no signed checkpoint covers are counted by
`sealgate audit verify`, which fails past the operator's bounds, and a gateway that
cannot sign checkpoints (its token lost) turns not-ready."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sealgate.gateway import provision
from sealgate.gateway.app import create_app
from sealgate.gateway.audit_store import append_now
from sealgate.gateway.home import Settings
from sealgate.gateway.keys import AUDIT
from sealgate.gateway.provision import DemoCredentials, init_home
from sealgate.hsm.softhsm import create_softhsm_token
from sealgate.verify.audit import AuditEvent
from sealgate.verify.directory import Role
from tests.gateway.conftest import GatewayClient, proof_request
from tests.waiting import eventually

pytestmark = pytest.mark.processes  # the CLI as a program

SEALGATE = [sys.executable, "-m", "sealgate.gateway.cli"]


def audit_verify(home: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SEALGATE, "--home", str(home), "audit", "verify", *options],
        capture_output=True,
        text=True,
        check=False,
    )


def unsigned_count(stdout: str) -> int:
    last = stdout.strip().split("\t")[-1]
    assert last.endswith(" unsigned"), stdout
    return int(last.removesuffix(" unsigned"))


def test_audit_verify_fails_when_unsigned_records_are_older_than_the_bound(
    tmp_path: Path,
) -> None:
    """A trail whose records no checkpoint signed, written 100 s ago: past the default
    bound (two checkpoint intervals and a round, 21 s), within one of 200 s."""
    trail = tmp_path / "audit.db"
    written = time.time() - 100
    append_now(
        trail,
        [
            AuditEvent("verify", "C-1", "verifier", "demo", None, "200", f"r{n}", written + n, {})
            for n in range(3)
        ],
    )
    (tmp_path / "audit-key.pem").write_bytes(
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    found = audit_verify(tmp_path, "--no-head", "--no-checkpoints")
    assert found.returncode == 1
    assert found.stdout.startswith("UNSIGNED\t3 records") and unsigned_count(found.stdout) == 3
    assert "3 records after record 0 are covered by no signed checkpoint" in found.stderr
    assert "--max-unsigned-age 21" in found.stderr

    within = audit_verify(tmp_path, "--no-head", "--no-checkpoints", "--max-unsigned-age", "200")
    assert within.returncode == 0, within.stderr
    assert within.stdout.startswith("OK\t3 records") and unsigned_count(within.stdout) == 3

    counted = audit_verify(
        tmp_path,
        "--no-head",
        "--no-checkpoints",
        "--max-unsigned-age",
        "200",
        "--max-unsigned-records",
        "2",
    )
    assert counted.returncode == 1 and "--max-unsigned-records 2" in counted.stderr
    assert (
        audit_verify(
            tmp_path,
            "--no-head",
            "--no-checkpoints",
            "--max-unsigned-age",
            "200",
            "--max-unsigned-records",
            "3",
        ).returncode
        == 0
    )
    refused = audit_verify(tmp_path, "--no-head", "--no-checkpoints", "--max-unsigned-age", "-1")
    assert refused.returncode == 1 and "cannot be negative" in refused.stderr


@pytest.fixture
def own_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Settings, DemoCredentials]:
    """A home of its own: this test reinitialises its token."""
    return init_home_noting_so_pin(tmp_path / "home", monkeypatch)


def init_home_noting_so_pin(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Settings, DemoCredentials]:
    """A demo home whose gateway token's SO PIN is noted beside it (``so-pin``), as the
    operator who reinitialises a token keeps it: the home keeps none."""

    def noting(directory: Path, label: str, pin: str, so_pin: str) -> Path:
        if label == "sealgate":
            (home.parent / "so-pin").write_text(so_pin)
        return create_softhsm_token(directory, label, pin, so_pin)

    monkeypatch.setattr(provision, "create_softhsm_token", noting)
    settings, credentials = init_home(home, demo=True)
    assert credentials is not None
    return settings, credentials


def reinitialise_token(settings: Settings) -> None:
    """The token is lost: initialised afresh over the old one (with the SO PIN the
    operator noted), the audit key gone."""
    done = subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--token",
            settings.token_label,
            "--label",
            settings.token_label,
            "--so-pin",
            (settings.home.parent / "so-pin").read_text(),
            "--pin",
            settings.read_secret("token-pin").decode(),
        ],
        env={**os.environ, "SOFTHSM2_CONF": str(settings.home / "softhsm" / "softhsm2.conf")},
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


async def test_a_lost_token_leaves_an_unsigned_tail_reported_by_readyz_and_audit_verify(
    own_home: tuple[Settings, DemoCredentials], gateway_client: GatewayClient, tmp_path: Path
) -> None:
    settings, credentials = own_home
    token = {c.role: t for c, t in credentials.clients}
    signer = {"Authorization": f"Bearer {token[Role.SIGNER]}"}
    verifier = {"Authorization": f"Bearer {token[Role.VERIFIER]}"}
    app = create_app(settings)
    api: TestClient[Any, Any] = await gateway_client(app)
    audit = app[AUDIT]
    # A short interval: the bound (two intervals and a round of the duties) is 2 s.
    audit._checkpoint_seconds = 0.5

    r = await api.post(
        "/v1/certificates", json=proof_request(credentials.seals[0].seal_id), headers=signer
    )
    assert r.status == 201
    code = (await r.json())["code"]
    assert await audit.checkpoint() is not None  # everything so far signed
    ready = await api.get("/readyz")
    assert ready.status == 200 and (await ready.json())["checks"]["checkpoints"] == "ok"
    signed = audit_verify(settings.home)
    assert signed.returncode == 0 and unsigned_count(signed.stdout) == 0, signed.stderr

    tokens = settings.home / "softhsm" / "tokens"
    backup = tmp_path / "token-backup"
    shutil.copytree(tokens, backup)
    reinitialise_token(settings)
    lost_at = time.monotonic()
    verified = 0

    async def not_ready_for_want_of_checkpoints() -> bool:
        # records go on piling up: each verification is one, and none is signed
        nonlocal verified
        r = await api.get(f"/v1/verify/{code}?purpose=demo", headers=verifier)
        assert r.status == 200
        verified += 1
        ready = await api.get("/readyz")
        checks = (await ready.json())["checks"]
        return ready.status == 503 and checks["checkpoints"].startswith("unsigned: ")

    await eventually(not_ready_for_want_of_checkpoints, timeout=20, interval=0.2, what="not ready")
    not_ready_after = time.monotonic() - lost_at
    checks = (await (await api.get("/readyz")).json())["checks"]
    await audit.flush()

    # Younger than the default bound (21 s): OK, with the count said.
    within = audit_verify(settings.home)
    assert within.returncode == 0, within.stderr
    assert unsigned_count(within.stdout) >= verified
    # Past a bound the operator sets, on their number or their age (over 2 s by now).
    assert audit_verify(settings.home, "--max-unsigned-records", "1").returncode == 1
    aged = audit_verify(settings.home, "--max-unsigned-age", "1")
    assert aged.returncode == 1 and aged.stdout.startswith("UNSIGNED")
    assert unsigned_count(aged.stdout) >= verified
    print(
        f"token lost: {verified} verifications (all 200), not ready after "
        f"{not_ready_after:.1f} s: {checks['checkpoints']!r}; audit verify: "
        f"{within.stdout.strip()!r} (exit 0), --max-unsigned-age 1: exit 1, {aged.stderr!r}"
    )

    # The token restored: the next checkpoint signs the whole tail, and readiness returns.
    shutil.rmtree(tokens)
    shutil.copytree(backup, tokens)

    async def checkpoints_signed_again() -> bool:
        r = await api.get(f"/v1/verify/{code}?purpose=demo", headers=verifier)
        assert r.status == 200
        ready = await api.get("/readyz")
        return (await ready.json())["checks"]["checkpoints"] == "ok"

    await eventually(checkpoints_signed_again, timeout=20, interval=0.3, what="signed again")
    await audit.checkpoint()
    after = audit_verify(settings.home, "--max-unsigned-age", "0")
    assert after.returncode == 0 and unsigned_count(after.stdout) == 0, after.stderr
