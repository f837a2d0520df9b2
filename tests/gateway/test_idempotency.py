"""Idempotency-Key: a retry returns the first result and never a second proof."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from aiohttp.test_utils import TestClient

from sealgate.verify.directory import Role
from tests.gateway.conftest import Demo, proof_request
from tests.gateway.test_authorization import count


async def test_same_key_and_body_return_the_same_proof(
    api: TestClient[Any, Any], demo: Demo
) -> None:
    headers = {**demo.auth(Role.SIGNER), "Idempotency-Key": str(uuid.uuid4())}
    body = proof_request(demo.proof_seal)
    before = await count(demo)
    first = await api.post("/v1/certificates", json=body, headers=headers)
    assert first.status == 201
    second = await api.post("/v1/certificates", json=body, headers=headers)
    assert second.status == 201
    assert second.headers["Idempotent-Replayed"] == "true"
    assert await first.json() == await second.json()
    assert await count(demo) == before + 1


async def test_key_order_and_whitespace_do_not_make_a_different_body(
    api: TestClient[Any, Any], demo: Demo
) -> None:
    headers = {
        **demo.auth(Role.SIGNER),
        "Idempotency-Key": str(uuid.uuid4()),
        "Content-Type": "application/json",
    }
    body = proof_request(demo.proof_seal)
    import json

    compact = json.dumps(body, ensure_ascii=False)
    reordered = json.dumps(dict(reversed(list(body.items()))), indent=2)
    first = await api.post("/v1/certificates", data=compact.encode(), headers=headers)
    second = await api.post("/v1/certificates", data=reordered.encode(), headers=headers)
    assert (await first.json())["code"] == (await second.json())["code"]


async def test_same_key_with_a_different_body_is_refused(
    api: TestClient[Any, Any], demo: Demo
) -> None:
    headers = {**demo.auth(Role.SIGNER), "Idempotency-Key": str(uuid.uuid4())}
    first = await api.post("/v1/certificates", json=proof_request(demo.proof_seal), headers=headers)
    assert first.status == 201
    before = await count(demo)
    changed = proof_request(demo.proof_seal, content={"结论": "另一个"})
    second = await api.post("/v1/certificates", json=changed, headers=headers)
    assert second.status == 422
    assert (await second.json())["code"] == "idempotency-key-reused"
    assert await count(demo) == before


async def test_concurrent_retries_make_one_proof(api: TestClient[Any, Any], demo: Demo) -> None:
    headers = {**demo.auth(Role.SIGNER), "Idempotency-Key": str(uuid.uuid4())}
    body = {"items": [proof_request(demo.proof_seal, content={"n": i}) for i in range(5)]}
    before = await count(demo)
    responses = await asyncio.gather(
        *(api.post("/v1/certificates", json=body, headers=headers) for _ in range(20))
    )
    assert {r.status for r in responses} == {201}
    codes = {tuple(i["code"] for i in (await r.json())["items"]) for r in responses}
    assert len(codes) == 1
    assert await count(demo) == before + 5


async def test_keys_are_per_client(api: TestClient[Any, Any], demo: Demo) -> None:
    from sealgate.gateway.provision import Provisioner

    provisioner = Provisioner(demo.settings)
    directory = provisioner.directory()
    _, token = provisioner.add_client(
        directory, name="second signer", role=Role.SIGNER, seals=[demo.proof_seal]
    )
    directory.close()
    key = str(uuid.uuid4())
    body = proof_request(demo.proof_seal)
    first = await api.post(
        "/v1/certificates", json=body, headers={**demo.auth(Role.SIGNER), "Idempotency-Key": key}
    )
    second = await api.post(
        "/v1/certificates",
        json=body,
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
    )
    assert (await first.json())["code"] != (await second.json())["code"]


async def test_bad_idempotency_key_is_400(api: TestClient[Any, Any], demo: Demo) -> None:
    headers = {**demo.auth(Role.SIGNER), "Idempotency-Key": "x" * 300}
    response = await api.post(
        "/v1/certificates", json=proof_request(demo.proof_seal), headers=headers
    )
    assert response.status == 400
    assert (await response.json())["field"] == "Idempotency-Key"
