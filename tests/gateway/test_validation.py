"""Bad input gets a clear 400 naming the field, and nothing is stored."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from sealgate.verify.directory import Role
from tests.gateway.conftest import Demo, proof_request
from tests.gateway.scraped import value
from tests.gateway.test_authorization import count


def without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


CASES: list[tuple[str, Any, str]] = [
    ("unknown field", {"colour": "red"}, "colour"),
    (
        "holder id check character",
        {"holder": {"kind": "person", "id": "110105194912310021", "name": "张三"}},
        "holder.id",
    ),
    (
        "org code check",
        {"holder": {"kind": "org", "id": "91430900MA4L000000", "name": "某公司"}},
        "holder.id",
    ),
    (
        "holder kind",
        {"holder": {"kind": "robot", "id": "11010519491231002X", "name": "x"}},
        "holder.kind",
    ),
    (
        "holder extra field",
        {"holder": {"kind": "person", "id": "11010519491231002X", "name": "张三", "phone": "1"}},
        "holder.phone",
    ),
    ("type not a string", {"type": 42}, "type"),
    ("empty type", {"type": "  "}, "type"),
    ("content not an object", {"content": [1, 2]}, "content"),
    ("bad date", {"valid_from": "22/11/2026"}, "valid_from"),
    ("naive date-time", {"valid_from": "2026-11-22T10:00:00"}, "valid_from"),
    ("until before from", {"valid_until": "2026-01-01"}, "valid_until"),
    ("endorsement unknown field", {"endorsement": {"who": "x"}}, "endorsement.who"),
    ("seal id type", {"seal_id": ["x"]}, "seal_id"),
]


@pytest.mark.parametrize(("name", "change", "field"), CASES, ids=[c[0] for c in CASES])
async def test_invalid_field_is_named(
    api: TestClient[Any, Any], demo: Demo, name: str, change: dict[str, Any], field: str
) -> None:
    before = await count(demo)
    body = proof_request(demo.proof_seal, **change)
    response = await api.post("/v1/certificates", json=body, headers=demo.auth(Role.SIGNER))
    assert response.status == 400, name
    assert response.content_type == "application/problem+json"
    problem = await response.json()
    assert problem["code"] == "invalid-request"
    assert problem["field"] == field
    # and inside a batch, the item is named
    response = await api.post(
        "/v1/certificates",
        json={"items": [proof_request(demo.proof_seal), body]},
        headers=demo.auth(Role.SIGNER),
    )
    assert response.status == 400
    assert (await response.json())["field"] == f"items[1].{field}"
    assert await count(demo) == before


async def test_missing_field_is_named(api: TestClient[Any, Any], demo: Demo) -> None:
    response = await api.post(
        "/v1/certificates",
        json=without(proof_request(demo.proof_seal), "valid_from"),
        headers=demo.auth(Role.SIGNER),
    )
    assert response.status == 400
    assert (await response.json())["field"] == "valid_from"


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b"{not json", "malformed JSON"),
        (b'{"seal_id": "\xff\xfe"}', "UTF-8"),
        (b'{"a": NaN}', "NaN"),
        (b"[" * 100_000 + b"]" * 100_000, "nested"),
        (b"", "malformed JSON"),
        (b'{"seal_id": "a", "seal_id": "b"}', "twice"),
    ],
)
async def test_undecodable_bodies(
    api: TestClient[Any, Any], demo: Demo, raw: bytes, detail: str
) -> None:
    before = await count(demo)
    response = await api.post(
        "/v1/certificates",
        data=raw,
        headers={**demo.auth(Role.SIGNER), "Content-Type": "application/json"},
    )
    assert response.status == 400
    assert detail in (await response.json())["detail"]
    assert await count(demo) == before


async def test_oversized_body_is_413(api: TestClient[Any, Any], demo: Demo) -> None:
    before = await count(demo)
    body = proof_request(demo.proof_seal, content={"blob": "x" * (5 * 1024 * 1024)})
    response = await api.post("/v1/certificates", json=body, headers=demo.auth(Role.SIGNER))
    assert response.status == 413
    assert (await response.json())["code"] == "body-too-large"
    assert await count(demo) == before


async def test_service_documents(api: TestClient[Any, Any], demo: Demo) -> None:
    assert (await api.get("/healthz")).status == 200
    ready = await api.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["checks"]["hsm"] == "ok"
    spec = await (await api.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.")
    assert "/v1/certificates" in spec["paths"]
    trust = (await (await api.get("/v1/trust")).json())["document"]
    assert trust["roots"][0].startswith("-----BEGIN CERTIFICATE-----")
    assert {s["kind"] for s in trust["seals"]} == {"proof", "verification"}
    await api.get("/healthz")
    metrics = await (await api.get("/metrics")).text()
    assert value(metrics, "sealgate_requests_total", route="/healthz", method="GET", status="200")
    missing = await api.get("/no/such/path")
    assert missing.status == 404
    assert missing.content_type == "application/problem+json"
