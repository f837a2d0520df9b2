"""What the harness puts into the Redis beside the gateway, and takes out again: every
proof's status as the gateway caches it, and the one-GET floor's keys."""

from __future__ import annotations

from pathlib import Path

from sealgate.bench.floors import REDIS_PREFIX
from sealgate.bench.redis_server import RedisServer
from sealgate.bench.seeding import Progress
from sealgate.bench.workspace import registry_statuses


def warm_shared_cache(home: Path, redis_url: str) -> int:
    """Every registered proof's status in Redis, as the gateway caches it."""
    import redis as redis_py

    from sealgate.cache.codec import encode_status
    from sealgate.cache.redis_tier import status_key

    client = redis_py.Redis.from_url(redis_url)
    count = 0
    try:
        for batch in registry_statuses(home, "warming Redis"):
            pipe = client.pipeline(transaction=False)
            for status in batch:
                pipe.set(status_key(status.code), encode_status(status), ex=3600)
            pipe.execute()
            count += len(batch)
    finally:
        client.close()
    return count


def fill_floor_keys(redis: RedisServer, codes: list[str]) -> None:
    """The one-GET floor's keys: one value per code, the size of a cached status."""
    import redis as redis_py

    client = redis_py.Redis.from_url(redis.url)
    value = b'{"status":"valid","type":"' + b"x" * 200 + b'"}'
    progress = Progress(len(codes), "floor keys")
    try:
        for start in range(0, len(codes), 10_000):
            pipe = client.pipeline(transaction=False)
            for code in codes[start : start + 10_000]:
                pipe.set(REDIS_PREFIX + code.encode(), value)
            pipe.execute()
            progress.update(min(start + 10_000, len(codes)))
        progress.update(len(codes), final=True)
    finally:
        client.close()


def flush_floor_keys(redis: RedisServer, prefix: bytes = REDIS_PREFIX) -> None:
    """Removes the keys under ``prefix``: the floor's, or a peer's."""
    import redis as redis_py

    client = redis_py.Redis.from_url(redis.url)
    try:
        cursor = 0
        while True:
            cursor, keys = client.scan(cursor, match=prefix + b"*", count=10_000)
            if keys:
                client.unlink(*keys)
            if cursor == 0:
                break
    finally:
        client.close()
