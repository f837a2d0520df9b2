"""Status caches in front of the registry (docs/design.md §4.5: in-process → Redis → registry).

- :mod:`sealgate.cache.local`: the in-process tier of one worker.
- :mod:`sealgate.cache.redis_tier`: the shared Redis tier, used when SEALGATE_REDIS_URL is set.
- :mod:`sealgate.cache.lookup`: lookups through the tiers, single flight, invalidation.
- :mod:`sealgate.cache.feed`: the registry change feed that bounds staleness when messages are lost.
- :mod:`sealgate.cache.codec`: the msgpack form of a cached status.
"""

from sealgate.cache.codec import CacheDataError, decode_status, encode_status
from sealgate.cache.redis_tier import RedisTier

__all__ = ["CacheDataError", "RedisTier", "decode_status", "encode_status"]
