"""Small hardening (issue 28): a duplicated Authorization header, an issuer's lookups of
another office's codes, and what the trail keeps of refusals and of what a client sent."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from sealgate.gateway.app import create_app
from sealgate.gateway.keys import AUDIT, FAILED_LOOKUPS
from sealgate.verify.directory import Role
from tests.gateway.conftest import Demo, GatewayClient, proof_request
from tests.gateway.test_throttling_http import new_client

OTHER_OFFICE = "91430900MA4L00000Q"  # not the demo office


def records(path: Path, request_id: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT action, client, role, code, result, detail FROM audit WHERE request = ?"
            " ORDER BY seq",
            (request_id,),
        ).fetchall()
    finally:
        conn.close()


async def served_with_a_proof(
    demo: Demo, gateway_client: GatewayClient
) -> tuple[web.Application, TestClient[Any, Any], str]:
    """A gateway of the demo home, and the code of a proof it has just sealed."""
    app = create_app(demo.settings)
    api = await gateway_client(app)
    r = await api.post(
        "/v1/certificates", json=proof_request(demo.proof_seal), headers=demo.auth(Role.SIGNER)
    )
    assert r.status == 201
    return app, api, (await r.json())["code"]


async def test_a_duplicated_authorization_header_is_refused_and_recorded(
    demo: Demo, gateway_client: GatewayClient
) -> None:
    app, api, code = await served_with_a_proof(demo, gateway_client)
    verifier = demo.auth(Role.VERIFIER)["Authorization"]
    assert (
        await api.get(f"/v1/verify/{code}?purpose=demo", headers={"Authorization": verifier})
    ).status == 200
    # remembered now, so the dispatch would answer it; with a second header it does not
    for second in (verifier, "Bearer sgt_someone-else"):
        headers = [("Authorization", verifier), ("Authorization", second)]
        r = await api.get(f"/v1/verify/{code}?purpose=demo", headers=headers)
        assert r.status == 400
        assert (await r.json())["code"] == "duplicate-authorization"
        await app[AUDIT].flush()
        [(action, client, role, recorded_code, result, _)] = records(
            demo.settings.audit_path, r.headers["X-Request-Id"]
        )
        assert (action, client, role, recorded_code, result) == (
            "verify", "(unauthenticated)", "none", code, "400"
        )  # fmt: skip


async def test_a_401_is_recorded_under_no_client(demo: Demo, gateway_client: GatewayClient) -> None:
    app = create_app(demo.settings)
    api = await gateway_client(app)
    r = await api.get(
        "/v1/verify/430900-ZDXE31-DD2417-Z7GDVP?purpose=demo",
        headers={"Authorization": "Bearer sgt_not-a-token", "X-Request-Id": "11010519491231002X"},
    )
    assert r.status == 401
    await app[AUDIT].flush()
    [(action, client, role, _, result, detail)] = records(
        demo.settings.audit_path, r.headers["X-Request-Id"]
    )
    assert (action, client, role, result) == ("verify", "(unauthenticated)", "none", "401")
    # the id the client sent is kept only as a keyed hash, never as sent
    assert set(json.loads(detail)) == {"client_request"}
    assert b"11010519491231002X" not in demo.settings.audit_path.read_bytes()


async def test_an_issuers_lookups_of_another_offices_codes_are_failed_lookups(
    demo: Demo, gateway_client: GatewayClient
) -> None:
    app, api, code = await served_with_a_proof(demo, gateway_client)
    stranger = new_client(demo, Role.ISSUER, office=OTHER_OFFICE)
    limiter = app[FAILED_LOOKUPS]
    before = await api.get(f"/v1/certificates/{code}/status", headers=demo.auth(Role.ISSUER))
    assert before.status == 200
    paths = (
        ("GET", f"/v1/certificates/{code}/status", None),
        ("POST", f"/v1/certificates/{code}/status", {"status": "revoked", "reason": "x"}),
        ("GET", f"/v1/certificates/{code}/document", None),
    )
    for n, (method, path, body) in enumerate(paths, start=1):
        r = await api.request(method, path, json=body, headers=stranger)
        assert r.status == 403 and (await r.json())["code"] == "not-your-office"
        stranger_id = next(c.client_id for c in _clients(demo) if c.office == OTHER_OFFICE)
        assert round(limiter.failures(stranger_id)) == n
    # the owner's own lookups cost nothing
    own = next(
        c.client_id for c in _clients(demo) if c.role is Role.ISSUER and c.office != OTHER_OFFICE
    )
    assert limiter.failures(own) == 0


def _clients(demo: Demo) -> list[Any]:
    directory = demo.settings.open_directory()
    try:
        return list(directory.clients())
    finally:
        directory.close()


async def test_proofs_returned_and_documents_checked_are_recorded_with_their_codes(
    demo: Demo, gateway_client: GatewayClient
) -> None:
    app, api, code = await served_with_a_proof(demo, gateway_client)
    verifier = demo.auth(Role.VERIFIER)
    found = await api.get(
        "/v1/proofs",
        params={"holder_id": "11010519491231002X", "type": "无犯罪记录证明", "purpose": "demo"},
        headers=verifier,
    )
    returned = [item["code"] for item in (await found.json())["items"]]
    assert code in returned
    document = await api.get(f"/v1/certificates/{code}/document?purpose=demo", headers=verifier)
    checked = await api.post(
        "/v1/verify/document?purpose=demo",
        data=await document.read(),
        headers={**verifier, "Content-Type": "application/pkcs7-mime"},
    )
    assert checked.status == 200
    await app[AUDIT].flush()
    trail = demo.settings.audit_path
    assert sorted(row[3] for row in records(trail, found.headers["X-Request-Id"])) == sorted(
        returned
    )
    [(action, _, _, recorded, result, detail)] = records(trail, checked.headers["X-Request-Id"])
    assert (action, recorded, result) == ("verify-document", code, "200")
    assert json.loads(detail) == {"registered": True}


async def test_idempotency_keys_and_bodies_are_kept_only_as_keyed_hashes(
    demo: Demo, gateway_client: GatewayClient
) -> None:
    app = create_app(demo.settings)
    api = await gateway_client(app)
    key = "11010519491231002X-retry"
    body = proof_request(demo.proof_seal, content={"n": "keyed"})
    headers = {**demo.auth(Role.SIGNER), "Idempotency-Key": key}
    first = await api.post("/v1/certificates", json=body, headers=headers)
    again = await api.post("/v1/certificates", json=body, headers=headers)
    assert first.status == again.status == 201
    assert (await first.json())["code"] == (await again.json())["code"]  # still a replay
    other = await api.post(
        "/v1/certificates", json={**body, "content": {"n": "other"}}, headers=headers
    )
    assert other.status == 422  # and a different body under the key is still told apart
    await app[AUDIT].flush()
    for path in demo.home.glob("*.db*"):
        assert key.encode() not in path.read_bytes(), path
