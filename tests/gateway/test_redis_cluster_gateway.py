"""The real app with ``SEALGATE_REDIS_URL=redis+cluster://…``: verification fills the
cluster, a status change clears it and shows at once."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio.cluster import ClusterNode, RedisCluster

from sealgate.bench.redis_cluster import RedisClusterServer
from sealgate.cache.codec import decode_status
from sealgate.cache.redis_tier import status_key
from sealgate.gateway.app import create_app
from sealgate.verify.directory import Role
from sealgate.verify.registry import Status
from tests.gateway.conftest import Demo, proof_request
from tests.waiting import eventually

Client = TestClient[Any, Any]


@pytest.fixture
async def cluster_api(demo: Demo, redis_cluster: RedisClusterServer, gateway_client: Any) -> Client:
    settings = dataclasses.replace(demo.settings, redis_url=redis_cluster.url)
    client: Client = await gateway_client(create_app(settings))
    return client


@pytest.fixture
async def raw_cluster(redis_cluster: RedisClusterServer) -> AsyncIterator[RedisCluster]:
    client = RedisCluster(
        startup_nodes=[ClusterNode("127.0.0.1", port) for port in redis_cluster.ports]
    )
    yield client
    await client.aclose()


def key(code: str) -> str:
    return status_key(code.replace("-", ""))  # the cache keys codes in compact form


async def cached_status(cluster: RedisCluster, code: str) -> Status:
    """The status the cluster holds for ``code`` once it holds one (the fill is async)."""
    data = await eventually(lambda: cluster.get(key(code)), timeout=5, interval=0.02)
    return decode_status(data).status


async def verify(api: Client, demo: Demo, code: str) -> str:
    response = await api.get(f"/v1/verify/{code}?purpose=demo", headers=demo.auth(Role.VERIFIER))
    assert response.status == 200, await response.text()
    status: str = (await response.json())["status"]
    return status


async def test_verification_through_a_redis_cluster(
    cluster_api: Client, demo: Demo, raw_cluster: RedisCluster
) -> None:
    ready = await (await cluster_api.get("/readyz")).json()
    assert ready["checks"]["cache"] == "ok", ready

    codes = []
    for _ in range(6):  # several codes: several slots, most likely several nodes
        response = await cluster_api.post(
            "/v1/certificates", json=proof_request(demo.proof_seal), headers=demo.auth(Role.SIGNER)
        )
        assert response.status == 201, await response.text()
        codes.append((await response.json())["code"])
    for code in codes:
        assert await verify(cluster_api, demo, code) == "valid"
        assert await cached_status(raw_cluster, code) is Status.VALID
    assert len({raw_cluster.keyslot(key(code)) for code in codes}) > 1  # keys spread

    code = codes[0]
    response = await cluster_api.post(
        f"/v1/certificates/{code}/status",
        json={"status": "pledged", "reason": "贷款质押"},
        headers=demo.auth(Role.ISSUER),
    )
    assert response.status == 200, await response.text()
    assert await verify(cluster_api, demo, code) == "pledged"
    # The stale copy was deleted from the cluster, and the next miss filled the new one.
    assert await cached_status(raw_cluster, code) is Status.PLEDGED
    assert all([await verify(cluster_api, demo, other) == "valid" for other in codes[1:]])
