"""Every answer with a body ends with a newline, so `curl` output does not run into the
next command's output or the shell prompt (the README's walkthrough prints them)."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from sealgate.verify.directory import Role
from tests.gateway.conftest import Demo, proof_request


async def test_json_answers_and_problems_end_with_a_newline(
    api: TestClient[Any, Any], demo: Demo
) -> None:
    signer, verifier = demo.auth(Role.SIGNER), demo.auth(Role.VERIFIER)
    issuer = demo.auth(Role.ISSUER)
    sealed = await api.post("/v1/certificates", json=proof_request(demo.proof_seal), headers=signer)
    batch = await api.post(
        "/v1/certificates", json={"items": [proof_request(demo.proof_seal)] * 2}, headers=signer
    )
    code = (await sealed.json())["code"]
    answers = {
        "seal": sealed,
        "batch": batch,
        # the first verification takes the application's way, the second the remembered one
        "verify": await api.get(f"/v1/verify/{code}?purpose=demo", headers=verifier),
        "verify again": await api.get(f"/v1/verify/{code}?purpose=demo", headers=verifier),
        "history": await api.get(f"/v1/certificates/{code}/status", headers=issuer),
        "proofs": await api.get(
            "/v1/proofs",
            params={"holder_id": "11010519491231002X", "type": "无犯罪记录证明", "purpose": "demo"},
            headers=verifier,
        ),
        "trust": await api.get("/v1/trust"),
        "healthz": await api.get("/healthz"),
        "readyz": await api.get("/readyz"),
        "openapi": await api.get("/openapi.json"),
        "metrics": await api.get("/metrics"),
        "404": await api.get("/v1/verify/430900-AAAAAA-AAAA?purpose=demo", headers=verifier),
        "401": await api.get(f"/v1/verify/{code}?purpose=demo"),
        "no route": await api.get("/nowhere"),
    }
    for name, response in answers.items():
        body = await response.read()
        assert body.endswith(b"\n"), name
        assert not body.endswith(b"\n\n"), name
    assert answers["seal"].status == 201 and answers["batch"].status == 201
    assert answers["verify again"].status == 200 and answers["404"].status == 404
