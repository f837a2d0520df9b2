"""Who may do what: tokens, roles, seal grants and purposes."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from sealgate.gateway.provision import Provisioner
from sealgate.verify.directory import Role
from tests.gateway.conftest import Demo, proof_request


async def count(demo: Demo) -> int:
    registry = demo.settings.open_registry()
    try:
        return await registry.count()
    finally:
        await registry.close()


async def sealed_code(api: TestClient[Any, Any], demo: Demo) -> str:
    response = await api.post(
        "/v1/certificates", json=proof_request(demo.proof_seal), headers=demo.auth(Role.SIGNER)
    )
    assert response.status == 201
    code: str = (await response.json())["code"]
    return code


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer sgt_not-a-token", "Basic dXNlcjpwYXNz", "bearer  ", "Token abc"],
)
async def test_bad_or_missing_token_is_401(
    api: TestClient[Any, Any], demo: Demo, header: str | None
) -> None:
    before = await count(demo)
    headers = {} if header is None else {"Authorization": header}
    for method, path in (("POST", "/v1/certificates"), ("GET", "/v1/verify/X?purpose=demo")):
        response = await api.request(
            method, path, json=proof_request(demo.proof_seal), headers=headers
        )
        assert response.status == 401
        assert response.content_type == "application/problem+json"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await response.json())["code"] == "unauthenticated"
    assert await count(demo) == before


@pytest.mark.parametrize("role", [Role.VERIFIER, Role.ISSUER, Role.ADMIN])
async def test_only_signers_seal(api: TestClient[Any, Any], demo: Demo, role: Role) -> None:
    before = await count(demo)
    response = await api.post(
        "/v1/certificates", json=proof_request(demo.proof_seal), headers=demo.auth(role)
    )
    assert response.status == 403
    assert (await response.json())["code"] == "forbidden-role"
    assert await count(demo) == before


@pytest.mark.parametrize("role", [Role.SIGNER, Role.ISSUER, Role.ADMIN])
async def test_only_verifiers_check_codes(
    api: TestClient[Any, Any], demo: Demo, role: Role
) -> None:
    code = await sealed_code(api, demo)
    response = await api.get(f"/v1/verify/{code}?purpose=demo", headers=demo.auth(role))
    assert response.status == 403


async def test_signer_without_the_seal_grant_is_403(api: TestClient[Any, Any], demo: Demo) -> None:
    provisioner = Provisioner(demo.settings)
    directory = provisioner.directory()
    _, token = provisioner.add_client(
        directory, name="narrow signer", role=Role.SIGNER, seals=[demo.verification_seal]
    )
    directory.close()
    headers = {"Authorization": f"Bearer {token}"}
    before = await count(demo)
    response = await api.post(
        "/v1/certificates", json=proof_request(demo.proof_seal), headers=headers
    )
    assert response.status == 403
    assert (await response.json())["code"] == "seal-not-granted"
    # one ungranted item refuses the whole batch
    items = [proof_request(demo.verification_seal), proof_request(demo.proof_seal)]
    response = await api.post("/v1/certificates", json={"items": items}, headers=headers)
    assert response.status == 403
    assert "items[1].seal_id" in (await response.json())["detail"]
    assert await count(demo) == before
    # the granted seal works
    response = await api.post(
        "/v1/certificates", json=proof_request(demo.verification_seal), headers=headers
    )
    assert response.status == 201


async def test_unknown_seal_is_refused_like_an_ungranted_one(
    api: TestClient[Any, Any], demo: Demo
) -> None:
    response = await api.post(
        "/v1/certificates", json=proof_request("SEAL-NOSUCHSEAL"), headers=demo.auth(Role.SIGNER)
    )
    assert response.status == 403


async def test_verification_needs_a_granted_purpose(api: TestClient[Any, Any], demo: Demo) -> None:
    code = await sealed_code(api, demo)
    verifier = demo.auth(Role.VERIFIER)
    response = await api.get(f"/v1/verify/{code}", headers=verifier)
    assert response.status == 400
    assert (await response.json())["field"] == "purpose"
    response = await api.get(f"/v1/verify/{code}?purpose=marketing", headers=verifier)
    assert response.status == 403
    assert (await response.json())["code"] == "purpose-not-granted"
    response = await api.get(
        f"/v1/certificates/{code}/document?purpose=marketing", headers=verifier
    )
    assert response.status == 403
    response = await api.post("/v1/verify/document?purpose=marketing", data=b"x", headers=verifier)
    assert response.status == 403
    response = await api.get(f"/v1/verify/{code}?purpose=demo", headers=verifier)
    assert response.status == 200


async def test_verify_response_masks_the_holder(api: TestClient[Any, Any], demo: Demo) -> None:
    code = await sealed_code(api, demo)
    response = await api.get(f"/v1/verify/{code}?purpose=demo", headers=demo.auth(Role.VERIFIER))
    body = await response.json()
    assert body["holder"] == {"kind": "person", "name": "张*", "id": "1101**********002X"}
    assert "11010519491231002X" not in await response.text()
    assert body["status"] == "valid"
    assert body["issuer"]["unit_code"] == "11430900006151330B"
    for key in (
        "type",
        "valid_from",
        "valid_until",
        "issued_at",
        "status_changed_at",
        "checked_at",
    ):
        assert key in body


async def test_issuer_of_another_office_cannot_fetch_the_document(
    api: TestClient[Any, Any], demo: Demo
) -> None:
    code = await sealed_code(api, demo)
    provisioner = Provisioner(demo.settings)
    directory = provisioner.directory()
    _, token = provisioner.add_client(
        directory, name="other office", role=Role.ISSUER, office="91430900MA4L00000Q"
    )
    directory.close()
    response = await api.get(
        f"/v1/certificates/{code}/document", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status == 403
    assert (await response.json())["code"] == "not-your-office"
