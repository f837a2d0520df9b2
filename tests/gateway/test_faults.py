"""Faults: the HSM failing under a running gateway, and seal key rotation under load."""

from __future__ import annotations

import asyncio
import base64
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from sealgate.bench.redis_server import RedisServer
from sealgate.crypto.verification import TrustList, verify_proof
from sealgate.gateway.app import create_app
from sealgate.gateway.config_file import load_settings
from sealgate.gateway.home import Settings
from sealgate.gateway.provision import DemoCredentials
from sealgate.hsm.errors import HsmUnavailable
from sealgate.hsm.service import ProcessSigningService, SigningService
from sealgate.verify.directory import Role
from tests.gateway.conftest import Demo, proof_request
from tests.gateway.scraped import value
from tests.gateway.serving import free_port, serving
from tests.gateway.test_audit import audit_verify
from tests.gateway.test_unsigned_tail import init_home_noting_so_pin, reinitialise_token
from tests.waiting import eventually

SEALGATE = [sys.executable, "-m", "sealgate.gateway.cli"]


class FlakySigningService(SigningService):
    """The real signing process, failing on command: a session or token failure."""

    def __init__(self, inner: SigningService) -> None:
        self.inner = inner
        self.failing = False

    async def start(self) -> None:
        await self.inner.start()

    async def sign_digest(self, label: str, digest: bytes) -> bytes:
        if self.failing:
            raise HsmUnavailable("injected: session closed", retry_after=2.0)
        return await self.inner.sign_digest(label, digest)

    async def check(self) -> None:
        if self.failing:
            raise HsmUnavailable("injected: session closed")
        await self.inner.check()

    async def close(self) -> None:
        await self.inner.close()


async def test_hsm_failure_is_503_verification_stays_up_sealing_recovers(
    demo: Demo, gateway_client: Any
) -> None:
    flaky = FlakySigningService(ProcessSigningService(demo.settings.keystore_config()))
    api: TestClient[Any, Any] = await gateway_client(create_app(demo.settings, signing=flaky))
    signer, verifier = demo.auth(Role.SIGNER), demo.auth(Role.VERIFIER)
    r = await api.post("/v1/certificates", json=proof_request(demo.proof_seal), headers=signer)
    code = (await r.json())["code"]
    flaky.failing = True
    r = await api.post("/v1/certificates", json=proof_request(demo.proof_seal), headers=signer)
    assert r.status == 503
    assert r.headers["Retry-After"] == "2"
    assert (await r.json())["code"] == "hsm-unavailable"
    assert (await api.get(f"/v1/verify/{code}?purpose=demo", headers=verifier)).status == 200
    assert (await api.get("/readyz")).status == 503
    flaky.failing = False
    r = await api.post("/v1/certificates", json=proof_request(demo.proof_seal), headers=signer)
    assert r.status == 201
    assert (await api.get("/readyz")).status == 200


@pytest.fixture
def own_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Settings, DemoCredentials]:
    """A home of its own: this test breaks its token."""
    return init_home_noting_so_pin(tmp_path / "home", monkeypatch)


async def test_token_reinitialised_under_a_running_gateway(
    own_home: tuple[Settings, DemoCredentials], gateway_client: Any, tmp_path: Path
) -> None:
    settings, credentials = own_home
    api: TestClient[Any, Any] = await gateway_client(create_app(settings))
    token = {c.role: t for c, t in credentials.clients}
    signer = {"Authorization": f"Bearer {token[Role.SIGNER]}"}
    verifier = {"Authorization": f"Bearer {token[Role.VERIFIER]}"}
    body = proof_request(credentials.seals[0].seal_id)
    r = await api.post("/v1/certificates", json=body, headers=signer)
    assert r.status == 201
    code = (await r.json())["code"]

    tokens = settings.home / "softhsm" / "tokens"
    backup = tmp_path / "token-backup"
    shutil.copytree(tokens, backup)
    reinitialise_token(settings)
    for _ in range(3):
        r = await api.post("/v1/certificates", json=body, headers=signer)
        assert r.status == 503
        assert "Retry-After" in r.headers
        assert (await api.get(f"/v1/verify/{code}?purpose=demo", headers=verifier)).status == 200
        # A time, not a condition: past the signing process's restart backoff (0.5 s),
        # so that each try opens the token again rather than failing fast.
        await asyncio.sleep(0.6)

    shutil.rmtree(tokens)
    shutil.copytree(backup, tokens)  # the operator restores the token

    async def sealed() -> bool:
        r = await api.post("/v1/certificates", json=body, headers=signer)
        return r.status == 201

    await eventually(sealed, timeout=10, interval=0.3, what="sealing without a restart")


@pytest.mark.slow
async def test_seal_rotation_under_sealing_load(demo: Demo) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    seal_id = demo.proof_seal
    documents: list[bytes] = []
    stop = asyncio.Event()
    with serving(demo.home, port):
        async with aiohttp.ClientSession(headers=demo.auth(Role.SIGNER)) as session:

            async def seal_forever(worker: int) -> None:
                n = 0
                while not stop.is_set():
                    body = proof_request(seal_id, content={"w": worker, "n": n})
                    n += 1
                    async with session.post(f"{url}/v1/certificates", json=body) as r:
                        assert r.status == 201, await r.text()
                        documents.append(base64.b64decode((await r.json())["document"]))

            load = [asyncio.create_task(seal_forever(i)) for i in range(4)]
            await eventually(lambda: len(documents) >= 20, timeout=30, what="sealing under load")
            rotated = await asyncio.to_thread(
                subprocess.run,
                # A grace period: with the old key destroyed at once, sealings that
                # gateways still make with it in the ≤ 5 s before they switch would fail.
                [
                    *SEALGATE,
                    "--home",
                    str(demo.home),
                    "seal",
                    "rotate",
                    seal_id,
                    "--grace",
                    "60",
                    "--root-pin-file",
                    str(demo.root_pin_file),
                    "--operator",
                    "ops-1",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            assert rotated.returncode == 0, rotated.stderr
            roots = TrustList.from_pem(demo.settings.root_certificate_path.read_bytes())
            old_key = verify_proof(documents[0], roots).seal_certificate_der
            sealed_since = len(documents)

            def sealing_with_the_new_key() -> bool:
                # within 5 s the gateway reads its seal catalog again; then 20 more seals
                return len(documents) >= sealed_since + 20 and (
                    verify_proof(documents[-20], roots).seal_certificate_der != old_key
                )

            await eventually(sealing_with_the_new_key, timeout=30, interval=0.2)
            stop.set()
            await asyncio.gather(*load)
            async with session.get(f"{url}/v1/trust") as r:
                trust_list = await r.json()
    versions = [s for s in trust_list["document"]["seals"] if s["seal_id"] == seal_id]
    assert [s["state"] for s in versions][-2:] == ["retired", "active"]

    certificates = [verify_proof(d, roots).seal_certificate_der for d in documents]
    assert len(set(certificates)) == 2  # old key before, new key after, all verifying
    old, new = certificates[0], certificates[-1]
    assert old != new
    switched = certificates.index(new)
    assert all(c == old for c in certificates[:switched])
    assert all(c == new for c in certificates[switched:])
    audit = audit_verify(demo)
    assert audit.returncode == 0, audit.stderr


async def test_a_redis_that_refuses_writes_shows_in_the_metrics(
    demo: Demo, own_redis_server: RedisServer, gateway_client: Any
) -> None:
    admin = Redis.from_url(own_redis_server.url)
    await admin.config_set("maxmemory-policy", "noeviction")
    await admin.config_set("maxmemory", 1)  # full: every SET is refused
    try:
        api: TestClient[Any, Any] = await gateway_client(
            create_app(load_settings(demo.home, redis_url=own_redis_server.url))
        )
        r = await api.post(
            "/v1/certificates", json=proof_request(demo.proof_seal), headers=demo.auth(Role.SIGNER)
        )
        code = (await r.json())["code"]
        r = await api.get(f"/v1/verify/{code}?purpose=demo", headers=demo.auth(Role.VERIFIER))
        assert r.status == 200 and (await r.json())["status"] == "valid"  # from the registry
        metrics = await (await api.get("/metrics")).text()
        assert value(metrics, "sealgate_cache_redis_available") == 1  # answering, not keeping
        refused = value(metrics, "sealgate_cache_redis_refused_writes_total")
        assert refused is not None and refused >= 1
    finally:
        await admin.aclose()
