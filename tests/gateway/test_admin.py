"""The admin role's provisioning over HTTP, against a served gateway of two workers: the
CLI's operations and audit records, every other role refused, bad input storing nothing,
the root's duties out of reach, and a change honoured by the worker that did not make it."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from sealgate.client import Client, Forbidden, Problem, Unprocessable
from sealgate.gateway.auth import CACHE_SECONDS
from sealgate.gateway.catalog import REFRESH_SECONDS
from sealgate.gateway.cli import main as sealgate
from sealgate.gateway.openapi import OPENAPI
from sealgate.gateway.provision import init_home
from sealgate.hsm.softhsm import softhsm_available
from sealgate.verify.directory import Role
from tests.gateway.conftest import Demo, proof_request
from tests.gateway.serving import free_port, serving

pytestmark = pytest.mark.processes

UNKNOWN = "/v1/verify/430900-ZDXE31-DD2417-Z7GDVP"  # well-formed, registered nowhere
# How long another worker may go on with what it remembers: its token cache, its catalog.
SLACK = 5.0
STAFF = {"X-Operator": "ops-7"}


@dataclass
class Served:
    demo: Demo
    url: str
    log: Path

    def admin(self) -> Client:
        return Client(self.url, self.demo.token(Role.ADMIN), tls=False)

    def admin_headers(self) -> dict[str, str]:
        return {**self.demo.auth(Role.ADMIN), **STAFF}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    if not softhsm_available():
        pytest.fail("SoftHSM2 is required: run the suite with `make test`")
    base = tmp_path_factory.mktemp("admin")
    settings, credentials = init_home(base / "home", demo=True)
    assert credentials is not None
    for matter in ("开户", "a", "b"):  # the purposes granted here (docs/design.md §17)
        assert sealgate(["--home", str(settings.home), "matter", "add", matter,
                         "--name", matter, "--operator", "ops-1"]) == 0  # fmt: skip
    port = free_port()
    log = base / "gateway.log"
    with serving(settings.home, port, workers=2, log=log):
        yield Served(Demo(settings, credentials), f"http://127.0.0.1:{port}", log)


def fresh() -> httpx.Client:
    """A new connection for every request: SO_REUSEPORT spreads them over the workers."""
    return httpx.Client(limits=httpx.Limits(max_keepalive_connections=0), timeout=30)


def worker_of(response: httpx.Response) -> str:
    """Which worker answered: its request ids share a random prefix of its own."""
    return response.headers["X-Request-Id"][:12]


def records(served: Served, *actions: str) -> list[dict[str, Any]]:
    conn = sqlite3.connect(served.demo.settings.audit_path)
    try:
        rows = [
            row
            for row in conn.execute(
                "SELECT seq, action, client, role, result, detail FROM audit ORDER BY seq"
            )
            if row[1] in actions
        ]
    finally:
        conn.close()
    keys = ("seq", "action", "client", "role", "result", "detail")
    return [{**dict(zip(keys, row, strict=True)), "detail": json.loads(row[5])} for row in rows]


def cli(served: Served, *args: str) -> None:
    assert sealgate(["--home", str(served.demo.home), *args]) == 0


def test_a_client_added_over_http_works_and_its_token_is_kept_nowhere(served: Served) -> None:
    with served.admin() as admin:
        added = admin.add_client(
            name="某银行", role="verifier", purposes=["开户"], operator="ops-7"
        )
        assert added.token is not None and added.token.startswith("sgt_")
        assert added.purposes == ("开户",) and added.lookup_limit is None
        listed = {c.client_id: c for c in admin.clients()}
    assert listed[added.client_id].token is None
    with fresh() as http:  # never seen by either worker: in force at once on both
        for _ in range(6):
            checked = http.get(
                f"{served.url}{UNKNOWN}",
                params={"purpose": "开户"},
                headers={"Authorization": f"Bearer {added.token}"},
            )
            assert checked.status_code == 404  # authenticated; the code is unknown
    token = added.token.encode()
    for path in served.demo.home.rglob("*"):
        if path.is_file():
            assert token not in path.read_bytes(), path
    assert token not in served.log.read_bytes()
    conn = sqlite3.connect(served.demo.home / "registry.db")
    try:
        (digest,) = conn.execute(
            "SELECT token_digest FROM clients WHERE client_id = ?", (added.client_id,)
        ).fetchone()
    finally:
        conn.close()
    assert bytes(digest) == hashlib.sha256(token).digest()


def test_every_other_role_is_refused(served: Served) -> None:
    routes = [
        ("GET", "/v1/admin/clients"),
        ("POST", "/v1/admin/clients"),
        ("DELETE", "/v1/admin/clients/C-0000000000"),
        ("PUT", "/v1/admin/clients/C-0000000000/grants"),
        ("PUT", "/v1/admin/clients/C-0000000000/limits"),
        ("DELETE", "/v1/admin/clients/C-0000000000/limits"),
        ("GET", "/v1/admin/seals"),
        ("POST", f"/v1/admin/seals/{served.demo.proof_seal}/suspend"),
        ("POST", f"/v1/admin/seals/{served.demo.proof_seal}/resume"),
    ]
    # every route of the document's admin part, and no other
    described = {
        (method.upper(), path)
        for path, operations in OPENAPI["paths"].items()
        if path.startswith("/v1/admin/")
        for method in operations
    }
    assert len(described) == len(routes)
    body = {"name": "x", "role": "admin"}
    with fresh() as http:
        for role in (Role.SIGNER, Role.ISSUER, Role.VERIFIER, Role.PORTAL):
            for method, path in routes:
                answer = http.request(
                    method,
                    served.url + path,
                    json=body,
                    headers={**served.demo.auth(role), **STAFF},
                )
                assert answer.status_code == 403, (role, method, path)
                assert answer.json()["code"] == "forbidden-role"
        for method, path in routes:
            assert http.request(method, served.url + path, json=body).status_code == 401
    with served.admin() as admin:
        assert all(c.name != "x" for c in admin.clients())
        assert all(s.suspended_at is None for s in admin.seals())


@pytest.mark.parametrize(
    ("body", "headers", "status", "field"),
    [
        ({"name": "x", "role": "verifier"}, {}, 400, "X-Operator"),
        ({"name": "x", "role": "verifier"}, {"X-Operator": "zhang san"}, 400, "X-Operator"),
        (
            {"name": "x", "role": "verifier"},
            {"X-Operator": "11010519491231002X"},
            400,
            "X-Operator",
        ),
        ({"name": "x"}, STAFF, 400, "role"),
        ({"name": "x", "role": "root"}, STAFF, 400, "role"),
        ({"name": "x", "role": "verifier", "token": "sgt_mine"}, STAFF, 400, "token"),
        ({"name": "", "role": "verifier"}, STAFF, 400, "name"),
        ({"name": "x", "role": "verifier", "purposes": "开户"}, STAFF, 400, "purposes"),
        ({"name": "x\tbank", "role": "verifier"}, STAFF, 422, "name"),
        ({"name": "x", "role": "signer", "purposes": ["开户"]}, STAFF, 422, "purposes"),
        ({"name": "x", "role": "verifier", "purposes": ["no-such"]}, STAFF, 422, "purposes"),
        ({"name": "x", "role": "signer", "seals": ["SEAL-NOSUCHSEAL"]}, STAFF, 422, "seals"),
        ({"name": "x", "role": "issuer"}, STAFF, 422, "office"),
        ({"name": "x", "role": "issuer", "office": "bad"}, STAFF, 422, "office"),
        ({"name": "x", "role": "verifier", "office": "11430900006151330B"}, STAFF, 422, "office"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_stored(
    served: Served, body: dict[str, Any], headers: dict[str, str], status: int, field: str
) -> None:
    with served.admin() as admin:
        before = admin.clients()
    with fresh() as http:
        answer = http.post(
            f"{served.url}/v1/admin/clients",
            json=body,
            headers={**served.demo.auth(Role.ADMIN), **headers},
        )
    assert answer.status_code == status
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    assert answer.json()["field"] == field
    assert "11010519491231002X" not in answer.text
    with served.admin() as admin:
        assert admin.clients() == before


def test_limits_and_grants_refused_when_wrong(served: Served) -> None:
    with served.admin() as admin:
        client = admin.add_client(name="limits", role="verifier", purposes=["a"], operator="ops-7")
        with pytest.raises(Unprocessable):
            admin.set_limits(client.client_id, failed_lookups=0, operator="ops-7")
        with pytest.raises(Unprocessable):
            admin.set_grants(client.client_id, role="signer", purposes=["a"], operator="ops-7")
        unchanged = next(c for c in admin.clients() if c.client_id == client.client_id)
    assert unchanged.lookup_limit is None and unchanged.role == "verifier"
    with fresh() as http:
        missing = http.put(
            f"{served.url}/v1/admin/clients/C-NOSUCHCLNT/limits",
            json={"failed_lookups": 5},
            headers=served.admin_headers(),
        )
        assert (missing.status_code, missing.json()["code"]) == (404, "unknown-client")
        unnamed = http.put(
            f"{served.url}/v1/admin/clients/{client.client_id}/limits",
            json={"failed_lookups": 5},
            headers=served.demo.auth(Role.ADMIN),
        )
        assert (unnamed.status_code, unnamed.json()["field"]) == (400, "X-Operator")
        assert not records(served, "client-set-limits") or all(
            r["detail"].get("subject") != "C-NOSUCHCLNT"
            for r in records(served, "client-set-limits")
        )
        garbled = http.put(
            f"{served.url}/v1/admin/clients/{client.client_id}/limits",
            content=b"{not json",
            headers={**served.admin_headers(), "Content-Type": "application/json"},
        )
        assert garbled.status_code == 400


def test_grants_and_limits_set_over_http(served: Served) -> None:
    with served.admin() as admin:
        added = admin.add_client(name="grants", role="verifier", purposes=["a"], operator="ops-7")
        changed = admin.set_grants(
            added.client_id, role="verifier", purposes=["b"], operator="ops-7"
        )
        assert changed.purposes == ("b",)
        limited = admin.set_limits(
            added.client_id, failed_lookups=7, window_seconds=60, operator="ops-7"
        )
        assert limited.lookup_limit is not None
        assert (limited.lookup_limit.failed_lookups, limited.lookup_limit.window_seconds) == (7, 60)
        assert admin.clear_limits(added.client_id, operator="ops-7").lookup_limit is None
    auth = {"Authorization": f"Bearer {added.token}"}
    with fresh() as http:  # first used after its grants changed: no worker remembers it
        for _ in range(4):
            assert http.get(f"{served.url}{UNKNOWN}?purpose=b", headers=auth).status_code == 404
            refused = http.get(f"{served.url}{UNKNOWN}?purpose=a", headers=auth)
            assert refused.json()["code"] == "purpose-not-granted"


def test_an_http_change_is_audited_as_the_cli_makes_it(served: Served) -> None:
    with served.admin() as admin:
        target = admin.add_client(name="audited", role="verifier", purposes=["a"], operator="ops-7")
    admin_id = next(c.client_id for c, _ in served.demo.credentials.clients if c.role is Role.ADMIN)
    cli(served, "client", "set-limits", target.client_id, "--failed-lookups", "9",
        "--window", "90", "--operator", "ops-7")  # fmt: skip
    with fresh() as http:
        answer = http.put(
            f"{served.url}/v1/admin/clients/{target.client_id}/limits",
            json={"failed_lookups": 9, "window_seconds": 90},
            headers=served.admin_headers(),
        )
    assert answer.status_code == 200
    mine = [
        r
        for r in records(served, "client-set-limits", "checkpoint")
        if r["action"] == "checkpoint" or r["detail"].get("subject") == target.client_id
    ]
    changes = [r for r in mine if r["action"] != "checkpoint"]
    by_cli, by_http = changes[:2], changes[2:]
    assert [r["result"] for r in by_cli] == ["intent", "ok"]
    assert [r["result"] for r in by_http] == ["intent", "200"]
    for record in by_cli:
        assert (record["client"], record["role"]) == ("cli:ops-7", "operator")
    for record in by_http:
        assert (record["client"], record["role"]) == (admin_id, "admin")
    cli_detail = {k: v for k, v in by_cli[0]["detail"].items() if k != "account"}
    for record in [*by_cli, *by_http]:
        detail = {k: v for k, v in record["detail"].items() if k not in ("account",)}
        assert (
            detail
            == cli_detail
            == {
                "subject": target.client_id,
                "operator": "ops-7",
                "failed_lookups": "9/90s",
            }
        )
    # signed at once, as the CLI signs its own: a checkpoint follows the outcome
    outcome = by_http[-1]["seq"]
    assert any(r["action"] == "checkpoint" and r["seq"] > outcome for r in mine)
    assert sealgate(["--home", str(served.demo.home), "audit", "verify"]) == 0


def test_cli_and_http_grants_are_the_same_operation(served: Served) -> None:
    with served.admin() as admin:
        target = admin.add_client(name="same", role="verifier", purposes=["a"], operator="ops-7")
        cli(served, "client", "set-grants", target.client_id, "--role", "issuer",
            "--office", "11430900006151330B", "--operator", "ops-7")  # fmt: skip
        by_cli = next(c for c in admin.clients() if c.client_id == target.client_id)
        by_http = admin.set_grants(
            target.client_id, role="issuer", office="11430900006151330B", operator="ops-7"
        )
    assert by_cli == by_http
    assert (by_http.role, by_http.office, by_http.purposes) == ("issuer", "11430900006151330B", ())
    details = [r["detail"] for r in records(served, "client-set-grants")]
    mine = [{k: v for k, v in d.items() if k != "account"} for d in details]
    assert mine[-1] == mine[-3]  # the HTTP outcome's detail as the CLI's intent's


def test_a_removed_client_is_refused_by_both_workers(served: Served) -> None:
    with served.admin() as admin:
        doomed = admin.add_client(
            name="lost laptop", role="verifier", purposes=["a"], operator="ops-7"
        )
    auth = {"Authorization": f"Bearer {doomed.token}"}
    workers: set[str] = set()
    with fresh() as http:
        for _ in range(200):  # both workers remember it as valid
            answer = http.get(f"{served.url}{UNKNOWN}?purpose=a", headers=auth)
            assert answer.status_code == 404
            workers.add(worker_of(answer))
            if len(workers) == 2:
                break
        assert len(workers) == 2
        removal = http.delete(
            f"{served.url}/v1/admin/clients/{doomed.client_id}", headers=served.admin_headers()
        )
        assert removal.status_code == 204
        remover = worker_of(removal)
        refused_by: set[str] = set()
        deadline = time.monotonic() + CACHE_SECONDS + SLACK
        while refused_by != workers and time.monotonic() < deadline:
            answer = http.get(f"{served.url}{UNKNOWN}?purpose=a", headers=auth)
            worker = worker_of(answer)
            if worker == remover:  # the worker that removed it forgot it at once
                assert answer.status_code == 401
            if answer.status_code == 401:
                refused_by.add(worker)
            else:
                assert worker not in refused_by  # once refused, never served again
        assert refused_by == workers
        again = http.delete(
            f"{served.url}/v1/admin/clients/{doomed.client_id}", headers=served.admin_headers()
        )
        assert (again.status_code, again.json()["code"]) == (404, "unknown-client")


def test_a_suspended_seal_seals_nothing_on_either_worker(served: Served) -> None:
    seal = served.demo.proof_seal
    signer = served.demo.auth(Role.SIGNER)

    def sealing(http: httpx.Client) -> httpx.Response:
        return http.post(f"{served.url}/v1/certificates", json=proof_request(seal), headers=signer)

    with served.admin() as admin:
        suspended = admin.suspend_seal(seal, operator="ops-7")
        assert suspended.suspended_at is not None and suspended.seal_id == seal
        with fresh() as http:
            refused: set[str] = set()
            deadline = time.monotonic() + REFRESH_SECONDS + SLACK
            while len(refused) < 2 and time.monotonic() < deadline:
                answer = sealing(http)
                if answer.status_code == 403:
                    assert answer.json()["code"] == "seal-suspended"
                    refused.add(worker_of(answer))
                else:
                    assert answer.status_code == 201
                    assert worker_of(answer) not in refused
            assert len(refused) == 2
            assert next(s for s in admin.seals() if s.seal_id == seal).suspended_at is not None
            assert admin.resume_seal(seal, operator="ops-7").suspended_at is None
            sealed: set[str] = set()
            deadline = time.monotonic() + REFRESH_SECONDS + SLACK
            while len(sealed) < 2 and time.monotonic() < deadline:
                answer = sealing(http)
                if answer.status_code == 201:
                    sealed.add(worker_of(answer))
                else:
                    assert worker_of(answer) not in sealed
            assert len(sealed) == 2
    actions = [
        (r["action"], r["result"])
        for r in records(served, "seal-suspend", "seal-resume")
        if r["detail"].get("subject") == seal
    ]
    assert actions == [
        ("seal-suspend", "intent"),
        ("seal-suspend", "200"),
        ("seal-resume", "intent"),
        ("seal-resume", "200"),
    ]
    with served.admin() as admin, pytest.raises(Problem) as raised:
        admin.suspend_seal("SEAL-NOSUCHSEAL", operator="ops-7")
    assert (raised.value.status, raised.value.code) == (404, "unknown-seal")


def test_the_root_stays_offline(served: Served) -> None:
    """Nothing that needs the city root's key has a route: not a seal's creation,
    rotation or revocation, not a CRL, not the trust document."""
    seal = served.demo.proof_seal
    attempts = [
        ("POST", "/v1/admin/seals"),
        ("POST", f"/v1/admin/seals/{seal}/rotate"),
        ("POST", f"/v1/admin/seals/{seal}/revoke"),
        ("POST", "/v1/admin/crl"),
        ("POST", "/v1/crl"),
        ("POST", "/v1/admin/trust"),
        ("POST", "/v1/trust"),
        ("PUT", "/v1/trust"),
        ("POST", "/v1/admin/gateway-keys"),
    ]
    with fresh() as http:
        for method, path in attempts:
            answer = http.request(
                method, served.url + path, headers=served.admin_headers(), json={}
            )
            assert answer.status_code in (404, 405), (method, path)
    writes = {
        (method, path)
        for path, operations in OPENAPI["paths"].items()
        for method in operations
        if method != "get"
    }
    assert not {
        (m, p)
        for m, p in writes
        if any(w in p for w in ("rotate", "revoke", "crl", "trust", "keys"))
    }
    assert {(m, p) for m, p in writes if p.startswith("/v1/admin/seals")} == {
        ("post", "/v1/admin/seals/{seal_id}/suspend"),
        ("post", "/v1/admin/seals/{seal_id}/resume"),
    }
    with served.admin() as admin, pytest.raises(Forbidden):
        admin.seal(proof_request(seal))  # nor is the admin a signer of the seals it governs


def test_an_admin_neither_removes_nor_demotes_itself(served: Served) -> None:
    """Over HTTP an admin cannot lock the city out: its own client is neither removed nor
    given another role (another admin, or the command line, can)."""
    own_id = next(c.client_id for c, _ in served.demo.credentials.clients if c.role is Role.ADMIN)
    with served.admin() as admin:
        with pytest.raises(Unprocessable):
            admin.remove_client(own_id, operator="ops-7")
        with pytest.raises(Unprocessable):
            admin.set_grants(own_id, role="verifier", purposes=["a"], operator="ops-7")
        assert next(c for c in admin.clients() if c.client_id == own_id).role == "admin"
        kept = admin.set_grants(own_id, role="admin", operator="ops-7")  # no change of role
        assert kept.role == "admin"
        other = admin.add_client(name="second admin", role="admin", operator="ops-7")
        admin.remove_client(other.client_id, operator="ops-7")  # another admin: allowed
    assert not [
        r for r in records(served, "client-remove") if r["detail"].get("subject") == own_id
    ]
