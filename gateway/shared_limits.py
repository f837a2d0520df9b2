"""Failed-lookup buckets shared by every worker and instance of a city: in Redis, else
in the registry's database.

The local buckets of :mod:`sealgate.gateway.throttle` are per process: with ``--workers
N`` and M instances a client could spend N x M x 100 failures, and a restart forgave them
all. Here each failure is counted once, atomically, in one place: a Lua script moves the
client's leaky bucket and the city's global token bucket together, on Redis's own clock
(every instance reads the same time), and says whether either had room.

Only failures come here, never a lookup that succeeds: the hot path (a cached
verification) costs nothing more, and a failure already waits for the 10 ms answer floor,
which hides this round trip. What a process learns (the client's shared level) becomes its
local level, so its next lookup by that client is refused with no round trip at all.

Keys share one hash tag, ``{sealgate:limits}``, so that a Redis Cluster keeps both buckets
of a script on one node (a script may only touch keys of one slot). Failed lookups are
rare, so one node carries them all with room to spare.

Without Redis, :class:`DatabaseFailures` keeps the same buckets with the same rules in
the registry's database (:mod:`sealgate.verify.lookup_failures`): SQLite for the workers
of one instance, PostgreSQL for several instances. Its calls have a guard of their own
(the request's deadline, a breaker), so a store that hangs costs a failure at most what
is left of its deadline and, once the breaker is open, nothing.

When the store cannot be reached, :class:`SharedUnavailable` is raised and the caller
keeps its local buckets, which still limit each process (fail closed: never no limit).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from sealgate.errors import Error
from sealgate.gateway.bounded import DEFAULT_REQUEST_DEADLINE, DependencyGuard
from sealgate.verify.lookup_failures import BucketLevels as SharedLevels
from sealgate.verify.lookup_failures import FailureCharge, FailureLedger
from sealgate.verify.registry import RegistryError, RegistryUnavailable

if TYPE_CHECKING:
    from sealgate.cache.redis_tier import RedisTier
    from sealgate.verify.directory import LookupLimit

__all__ = [
    "DatabaseFailures",
    "RedisFailures",
    "SharedFailures",
    "SharedLevels",
    "SharedUnavailable",
]

_TAG = "{sealgate:limits}"

# KEYS: the client's bucket, the global bucket.
# ARGV: weight, capacity, drain/s, global burst, global refill/s.
# Returns: the client's level after this failure (a string: Lua numbers would be cut to
# integers), whether it had no room for it, whether the global bucket was empty.
_ADD_FAILURE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local weight, cap, drain = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local burst, rate = tonumber(ARGV[4]), tonumber(ARGV[5])
local c = redis.call('HMGET', KEYS[1], 'level', 'at')
local level = tonumber(c[1]) or 0
local at = tonumber(c[2]) or now
level = math.max(0, level - math.max(0, now - at) * drain)
local full = 0
if level > cap - weight + 1e-9 then full = 1 end
level = math.min(level + weight, cap)
redis.call('HSET', KEYS[1], 'level', tostring(level), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(level / drain * 1000) + 1000)
local g = redis.call('HMGET', KEYS[2], 'tokens', 'at')
local tokens = tonumber(g[1]) or burst
local gat = tonumber(g[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - gat) * rate)
local empty = 0
if tokens < 1 then empty = 1 else tokens = tokens - 1 end
redis.call('HSET', KEYS[2], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[2], math.ceil(burst / rate * 1000) + 1000)
return {tostring(level), full, empty}
"""


class SharedUnavailable(Error):
    """The shared buckets cannot be reached now: keep to the local ones."""


class SharedFailures(Protocol):
    async def add(
        self,
        client_id: str,
        weight: float,
        limit: LookupLimit,
        global_burst: float,
        global_per_second: float,
    ) -> SharedLevels:
        """Count one failure of ``client_id``; raises :class:`SharedUnavailable`."""


class RedisFailures:
    """:class:`SharedFailures` in the Redis (or Redis Cluster) the cache tier uses, through
    its connection pool and circuit breaker: a dead Redis costs one timeout a second."""

    def __init__(self, tier: RedisTier, namespace: str = "sealgate") -> None:
        self._tier = tier
        self._global_key = f"{_TAG}:{namespace}:global"
        self._client_prefix = f"{_TAG}:{namespace}:client:"

    async def add(
        self,
        client_id: str,
        weight: float,
        limit: LookupLimit,
        global_burst: float,
        global_per_second: float,
    ) -> SharedLevels:
        from redis.exceptions import RedisError

        from sealgate.cache.redis_tier import TierUnavailable

        keys = (self._client_prefix + client_id, self._global_key)
        args = (weight, limit.failures, limit.drain_per_second, global_burst, global_per_second)
        try:
            # EVAL, not EVALSHA: a failure is rare, and the script then survives a
            # Redis restart or a failover with no NOSCRIPT round trip.
            reply = await self._tier.command(
                lambda redis: redis.eval(_ADD_FAILURE, 2, *keys, *map(repr, args))
            )
        except TierUnavailable as exc:
            raise SharedUnavailable(str(exc)) from None
        except RedisError as exc:  # an error reply (a read-only replica): the same to us
            raise SharedUnavailable(type(exc).__name__) from None
        level, full, empty = reply
        return SharedLevels(float(level), bool(int(full)), bool(int(empty)))


class DatabaseFailures:
    """:class:`SharedFailures` in the registry's database, for a city without Redis."""

    def __init__(
        self, ledger: FailureLedger, *, call_bound: float = DEFAULT_REQUEST_DEADLINE
    ) -> None:
        self._ledger = ledger
        # Not the registry's guard: a slow count must not open the breaker that the
        # verification path's reads go through.
        self.guard = DependencyGuard(
            "the failed-lookup store",
            RegistryUnavailable,
            RegistryUnavailable,
            call_bound=call_bound,
            meanwhile="failed lookups are limited per process",
        )

    async def add(
        self,
        client_id: str,
        weight: float,
        limit: LookupLimit,
        global_burst: float,
        global_per_second: float,
    ) -> SharedLevels:
        charge = FailureCharge(
            client_id,
            weight,
            float(limit.failures),
            limit.drain_per_second,
            global_burst,
            global_per_second,
        )
        try:
            # Bounded like a read: a count that outlives the deadline still lands (and
            # counts), the failure is answered from the local buckets meanwhile.
            return await self.guard.call(lambda: self._ledger.count_failure(charge))
        except RegistryError as exc:
            raise SharedUnavailable(type(exc).__name__) from None
