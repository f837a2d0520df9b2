"""Fixtures for the cache tests: a real Redis server and tiers on it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from sealgate.bench.redis_server import RedisServer
from sealgate.cache.redis_tier import RedisTier


@pytest.fixture
def namespace() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def tier(redis_server: RedisServer, namespace: str) -> AsyncIterator[RedisTier]:
    """A started tier on the shared server, in a namespace of its own."""
    tier = RedisTier(redis_server.url, namespace=namespace)
    await tier.start()
    yield tier
    await tier.close()
