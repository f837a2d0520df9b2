"""Failed-lookup buckets kept in the registry's database, for a city without Redis.

The same two buckets, with the same rules, as the Redis script of
:mod:`sealgate.gateway.shared_limits` (docs/design.md §8): per client a leaky bucket of
failures (each adds its weight, it drains at the client's rate, and a failure with no
room left is refused, the bucket then staying full), and for the city one token bucket
(a burst refilled at a rate; each failure takes a token, none left means the city is
over its budget). Both move in one transaction, on one clock:

- SQLite (one instance's workers, one machine): a job of the registry's writer thread,
  inside its ``BEGIN IMMEDIATE`` (so every worker process of the home takes its turn on
  the file's write lock), on that machine's clock read under the lock;
- PostgreSQL (several instances): one ``INSERT … ON CONFLICT … DO UPDATE … RETURNING``
  statement per bucket, on the database server's ``clock_timestamp()``.

The arithmetic is written three times (Lua, Python here for SQLite, SQL for PostgreSQL):
each store does it where the row is locked. ``tests/gateway/test_shared_limits.py`` runs
one set of tests on all three.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

__all__ = ["BucketLevels", "FailureCharge", "FailureLedger", "charge_city", "charge_client"]

# Float slack: 100 failures must leave the bucket exactly full, not 1e-13 over.
EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class FailureCharge:
    """One failed lookup to count, with the limits it is counted against."""

    client_id: str
    weight: float  # 1, or less for a mistyped code
    capacity: float  # failures the client's bucket holds
    drain_per_second: float
    global_burst: float
    global_per_second: float


@dataclass(frozen=True, slots=True)
class BucketLevels:
    client_level: float  # the client's failures in the shared bucket, this one included
    client_full: bool  # there was no room for this failure: answer 429
    global_empty: bool  # the city's failures exceed the global budget


def charge_client(
    stored: tuple[float, float] | None, now: float, charge: FailureCharge
) -> tuple[float, bool]:
    """The client's level after ``charge`` (stored: level and when it was measured) and
    whether the bucket had no room for it."""
    level, at = stored if stored is not None else (0.0, now)
    level = max(0.0, level - max(0.0, now - at) * charge.drain_per_second)
    full = level > charge.capacity - charge.weight + EPSILON
    return min(level + charge.weight, charge.capacity), full


def charge_city(
    stored: tuple[float, float] | None, now: float, charge: FailureCharge
) -> tuple[float, bool]:
    """The city's tokens after one failure (stored: tokens and when) and whether there
    was none to take."""
    tokens, at = stored if stored is not None else (charge.global_burst, now)
    tokens = min(charge.global_burst, tokens + max(0.0, now - at) * charge.global_per_second)
    if tokens < 1.0:
        return tokens, True
    return tokens - 1.0, False


class FailureLedger(ABC):
    """A registry that keeps the failed-lookup buckets (both backends do)."""

    @abstractmethod
    async def count_failure(self, charge: FailureCharge) -> BucketLevels:
        """Count one failure in the client's bucket and the city's, atomically, for
        every process on the database; :class:`~sealgate.verify.registry.RegistryError`
        if the store fails."""
