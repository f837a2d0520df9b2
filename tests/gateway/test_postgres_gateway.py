"""The gateway at city scale: a home whose database URL is postgresql://, on the suite's
real PostgreSQL. Registry and directory live there; nothing goes to a SQLite file."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest
from aiohttp.test_utils import TestClient

from sealgate.crypto.verification import TrustList, verify_proof
from sealgate.gateway.app import create_app
from sealgate.gateway.home import Settings
from sealgate.gateway.provision import DemoCredentials, init_home
from sealgate.verify.directory import Role
from sealgate.verify.postgres.schema import MIGRATIONS
from tests.gateway.conftest import proof_request
from tests.gateway.serving import free_port, serving
from tests.postgres_server import PostgresServer

SEALGATE = [sys.executable, "-m", "sealgate.gateway.cli"]

pytestmark = pytest.mark.processes  # PostgreSQL, or the CLI as a program
Client = TestClient[Any, Any]


@dataclass(frozen=True)
class PgDemo:
    settings: Settings
    credentials: DemoCredentials

    def auth(self, role: Role) -> dict[str, str]:
        token = next(t for c, t in self.credentials.clients if c.role is role)
        return {"Authorization": f"Bearer {token}"}

    @property
    def proof_seal(self) -> str:
        return self.credentials.seals[0].seal_id


@pytest.fixture(scope="module")
def pg_demo(tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer) -> PgDemo:
    """A demo home whose registry and directory are one PostgreSQL database."""
    home = tmp_path_factory.mktemp("pg-gateway") / "home"
    url = postgres_server.create_database("gateway")
    settings, credentials = init_home(home, demo=True, database_url=url)
    assert credentials is not None
    assert settings.database_kind == "postgresql"
    return PgDemo(settings, credentials)


def run(
    *args: str, home: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SEALGATE, "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
    )


def rows(url: str, query: str, *args: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query.encode(), args).fetchall()


async def test_a_proof_is_sealed_verified_and_its_status_changed_over_http(
    pg_demo: PgDemo, gateway_client: Any
) -> None:
    api: Client = await gateway_client(create_app(pg_demo.settings))
    key = {"Idempotency-Key": "pg-gateway-1"}
    sealed = await api.post(
        "/v1/certificates",
        json=proof_request(pg_demo.proof_seal),
        headers={**pg_demo.auth(Role.SIGNER), **key},
    )
    assert sealed.status == 201, await sealed.text()
    body = await sealed.json()
    code = body["code"]
    der = base64.b64decode(body["document"])
    trust = TrustList.from_pem(pg_demo.settings.root_certificate_path.read_bytes())
    assert verify_proof(der, trust).code == code

    replay = await api.post(
        "/v1/certificates",
        json=proof_request(pg_demo.proof_seal),
        headers={**pg_demo.auth(Role.SIGNER), **key},
    )
    assert replay.status == 201
    assert (await replay.json())["code"] == code
    assert replay.headers.get("Idempotent-Replayed") == "true"

    verifier = pg_demo.auth(Role.VERIFIER)
    checked = await api.get(f"/v1/verify/{code}?purpose=demo", headers=verifier)
    assert checked.status == 200
    assert (await checked.json())["status"] == "valid"
    document = await api.get(f"/v1/certificates/{code}/document?purpose=demo", headers=verifier)
    assert await document.read() == der
    presented = await api.post("/v1/verify/document?purpose=demo", data=der, headers=verifier)
    assert presented.status == 200, await presented.text()

    changed = await api.post(
        f"/v1/certificates/{code}/status",
        json={"status": "pledged", "reason": "贷款质押"},
        headers=pg_demo.auth(Role.ISSUER),
    )
    assert changed.status == 200, await changed.text()
    assert [(h["from"], h["to"]) for h in (await changed.json())["history"]] == [
        ("valid", "pledged")
    ]
    checked = await api.get(f"/v1/verify/{code}?purpose=demo", headers=verifier)
    assert (await checked.json())["status"] == "pledged"
    history = await api.get(f"/v1/certificates/{code}/status", headers=pg_demo.auth(Role.ISSUER))
    assert (await history.json())["status"] == "pledged"

    ready = await api.get("/readyz")
    assert (await ready.json())["checks"]["registry"] == "ok"

    url = pg_demo.settings.database_url
    compact = code.replace("-", "")
    assert rows(url, "SELECT status FROM proofs WHERE code = %s", compact) == [("pledged",)]
    assert rows(url, "SELECT count(*) FROM status_history")[0][0] >= 1
    assert not (pg_demo.settings.home / "registry.db").exists()


def test_the_cli_provisions_into_postgresql(pg_demo: PgDemo) -> None:
    home = pg_demo.settings.home
    migrated = run("db", "migrate", home=home)
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout.strip().endswith(f"schema version {len(MIGRATIONS)}")
    created = run(
        "seal", "create", "--unit-name", "益阳市民政局", "--unit-code", "11430900006151330B",
        "--kind", "verification", home=home,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    seal_id = created.stdout.split("\t")[1]
    assert seal_id in run("seal", "list", home=home).stdout
    url = pg_demo.settings.database_url
    assert rows(url, "SELECT kind FROM seals WHERE seal_id = %s", seal_id) == [("verification",)]
    assert not (home / "registry.db").exists()


def test_init_takes_the_database_from_the_environment_too(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    url = postgres_server.create_database("envinit")
    home = tmp_path / "home"
    result = run("init", "--backend", "soft", home=home, env={"SEALGATE_DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    assert rows(url, "SELECT count(*) FROM roots") == [(1,)]
    assert rows(url, "SELECT max(version) FROM schema_migrations") == [(len(MIGRATIONS),)]
    # the environment's URL is used, not written down: without it the home is SQLite
    assert "database_url" not in (home / "config.toml").read_text()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://db/sealgate", "unsupported database URL scheme 'mysql'"),
        ("postgresql://u:s3cret@127.0.0.1:1/x", "leave the password out"),
    ],
)
def test_init_refuses_unknown_schemes_and_passwords_in_the_config(
    tmp_path: Path, url: str, message: str
) -> None:
    result = run("init", "--backend", "soft", "--database-url", url, home=tmp_path / "home")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr
    assert "s3cret" not in result.stderr


def test_db_migrate_on_sqlite_and_on_an_unreachable_server(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert run("init", "--backend", "soft", home=home).returncode == 0
    migrated = run("db", "migrate", home=home)
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout.startswith("sqlite:///")
    unreachable = run(
        "db", "migrate", "--database-url", f"postgresql://u:pw-x@127.0.0.1:{free_port()}/db",
        home=home,
    )  # fmt: skip
    assert unreachable.returncode == 1
    assert "Traceback" not in unreachable.stderr
    assert "cannot migrate postgresql://u:***@127.0.0.1" in unreachable.stderr
    assert "pw-x" not in unreachable.stderr
    unknown = run("db", "migrate", "--database-url", "mongodb://x/y", home=home)
    assert unknown.returncode == 1
    assert "unsupported database URL scheme 'mongodb'" in unknown.stderr


@pytest.mark.slow
async def test_every_proof_answered_201_by_a_killed_gateway_is_in_postgresql(
    pg_demo: PgDemo,
) -> None:
    """The durability rule end to end: `sealgate serve` on PostgreSQL, SIGKILLed under
    load; every code it answered 201 for is registered and verifies."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    answered: list[str] = []
    with serving(pg_demo.settings.home, port) as process:
        async with aiohttp.ClientSession(headers=pg_demo.auth(Role.SIGNER)) as session:

            async def seal_until_killed(worker: int) -> None:
                n = 0
                while True:
                    body = proof_request(pg_demo.proof_seal, content={"w": worker, "n": n})
                    n += 1
                    try:
                        async with session.post(f"{url}/v1/certificates", json=body) as r:
                            if r.status == 201:
                                answered.append((await r.json())["code"])
                                if len(answered) == 30:
                                    os.kill(process.pid, signal.SIGKILL)
                    except aiohttp.ClientError:
                        return

            await asyncio.wait_for(
                asyncio.gather(*(seal_until_killed(i) for i in range(8))), timeout=60
            )
        process.wait(timeout=10)
        assert process.returncode == -signal.SIGKILL
    assert len(answered) >= 30
    registry = pg_demo.settings.open_registry()
    trust = TrustList.from_pem(pg_demo.settings.root_certificate_path.read_bytes())
    try:
        for code in answered:
            record = await registry.get(code.replace("-", ""))
            assert record is not None, f"{code} was answered 201 but is not registered"
            assert verify_proof(record.document, trust).code == code
    finally:
        await registry.close()
