"""The public check's question: codes and scanned payloads, nothing of the holder, and a
budget per client address."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from sealgate.gateway.app import create_app
from sealgate.gateway.problems import Problem
from sealgate.gateway.public_check import CheckBuckets
from sealgate.verify.directory import Role
from tests.gateway.conftest import Demo, GatewayClient
from tests.gateway.test_status import change, seal

Client = TestClient[Any, Any]


@pytest.fixture
async def api(demo: Demo, gateway_client: GatewayClient) -> Client:
    return await gateway_client(create_app(dataclasses.replace(demo.settings, check_per_minute=5)))


async def ask(api: Client, text: str, address: str = "203.0.113.7") -> Any:
    return await api.get("/v1/public/check", params={"q": text}, headers={"X-Real-IP": address})


async def test_a_code_or_a_payload_answers_only_valid_type_unit_and_dates(
    api: Client, demo: Demo
) -> None:
    code = await seal(api, demo)
    answer = await ask(api, code)
    assert answer.status == 200
    assert await answer.json() == {
        "valid": True,
        "type": "无犯罪记录证明",
        "unit_name": "益阳市公安局",
        "valid_from": "2026-11-22",
        "valid_until": "2027-05-21",
    }
    qr = await api.get(f"/v1/certificates/{code}/qr", headers=demo.auth(Role.PORTAL))
    payload = (await qr.json())["payload"]
    assert (await (await ask(api, payload, "203.0.113.8")).json())["valid"] is True
    assert (await change(api, demo, code, "revoked")).status == 200
    assert (await (await ask(api, payload, "203.0.113.8")).json())["valid"] is False
    bad = await ask(api, payload[:-3] + "AAA", "203.0.113.8")
    assert bad.status == 422


async def test_each_address_has_its_budget_and_is_told_in_chinese(api: Client, demo: Demo) -> None:
    code = await seal(api, demo)
    for _ in range(5):
        assert (await ask(api, code, "198.51.100.1")).status == 200
    refused = await ask(api, code, "198.51.100.1")
    assert refused.status == 429
    assert int(refused.headers["Retry-After"]) >= 1
    body = await refused.json()
    assert body["code"] == "too-many-checks" and "秒后再试" in body["detail"]
    assert (await ask(api, code, "198.51.100.2")).status == 200  # another address
    unknown = await ask(api, "430900-ZDXE31-DD2417-Z7GDVP", "198.51.100.3")
    assert unknown.status == 404
    assert (await api.get("/v1/public/check", headers={"X-Real-IP": "198.51.100.4"})).status == 400


async def test_the_page_and_its_script_are_served_with_a_strict_policy(api: Client) -> None:
    page = await api.get("/check")
    assert page.status == 200 and 'lang="zh-CN"' in await page.text()
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    script = await api.get("/check/check.js")
    assert "fetch(" in await script.text()


def test_a_bucket_refills_over_the_minute() -> None:
    now = [0.0]
    buckets = CheckBuckets(6, clock=lambda: now[0])
    for _ in range(6):
        buckets.admit("a")
    with pytest.raises(Problem) as refused:
        buckets.admit("a")
    assert refused.value.headers["Retry-After"] == "10"
    now[0] += 10.0
    buckets.admit("a")
