"""Checks shared by the single-server and the cluster tier tests."""

from __future__ import annotations

import asyncio

from sealgate.cache.redis_tier import RedisTier
from tests.cache.samples import status_for


async def concurrent_gets_get_their_own(tier: RedisTier, count: int = 500) -> list[str]:
    """Store every other of ``count`` codes, get all at once: each get must receive its
    own value (or its miss), never another's. Returns the codes."""
    codes = [f"C{n:04d}" for n in range(count)]
    for code in codes[::2]:
        await tier.put(code, status_for(code, version=int(code[1:])))
    results = await asyncio.gather(*(tier.get(code) for code in codes))
    for code, result in zip(codes, results, strict=True):
        if int(code[1:]) % 2:
            assert result is None
        else:
            assert result == status_for(code, version=int(code[1:]))
    return codes
