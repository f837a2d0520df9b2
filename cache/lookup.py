"""Status lookups through the tiers: in-process → shared (Redis) → registry.

The registry is the source of truth; the tiers hold copies. Concurrent misses for one
code make one fetch (single flight), which a cancelled caller cannot interrupt.
Invalidation drops the in-process copy, deletes the shared one and tells every other
process.

A delete alone cannot make a shared copy safe: it fails while Redis is down, and a Redis
restored from a snapshot (or a promoted replica) brings back copies deleted since. So for
a code whose status changed within the shared tier's TTL (plus :data:`CLOCK_MARGIN`),
which is as long as a copy made before the change can live, this process takes a shared
copy only if it is as new as the registry's row it last read after the change (rows carry
a version that each change bumps); until it has read one, it reads the registry. The
change feed tells it of each change, and at start it recalls those of the last TTL from
the registry, so a process started during an outage knows them too.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Collection, Iterable
from typing import Protocol

from cache.local import LocalTier
from verify.registry import ProofStatus, Registry

log = logging.getLogger("sealgate.cache")

# How far the clocks of the gateways, their registry and Redis may disagree: a change's
# time is taken on the gateway that made it.
CLOCK_MARGIN = 300.0


class SharedTier(Protocol):
    """The cache shared by processes and gateways (Redis); degrades to misses."""

    @property
    def available(self) -> bool: ...

    @property
    def ttl_seconds(self) -> int:
        """How long a copy can live in the tier after it was put."""
        ...

    async def get(self, code: str) -> ProofStatus | None: ...

    async def put(self, code: str, status: ProofStatus) -> None: ...

    async def delete(self, codes: Collection[str]) -> bool: ...

    async def publish(self, code: str) -> bool: ...


class CachedLookup:
    def __init__(
        self,
        registry: Registry,
        local: LocalTier,
        shared: SharedTier | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._registry = registry
        self._local = local
        self._shared = shared
        self._clock = clock
        self._flights: dict[str, asyncio.Task[ProofStatus | None]] = {}
        # Codes changed lately: until when a shared copy may predate the change, and the
        # version of the newest row read since (None: none read yet, trust no copy).
        self._changes: dict[str, tuple[float, int | None]] = {}

    @property
    def local(self) -> LocalTier:
        return self._local

    @property
    def shared(self) -> SharedTier | None:
        return self._shared

    async def get_status(self, code: str) -> ProofStatus | None:
        status = self._local.get(code)
        if status is not None:
            return status
        flight = self._flights.get(code)
        if flight is None:
            flight = asyncio.get_running_loop().create_task(self._fetch(code))
            self._flights[code] = flight
            flight.add_done_callback(functools.partial(self._land, code))
        # Shielded: a caller that goes away must not cancel the fetch others wait on.
        return await asyncio.shield(flight)

    def _land(self, code: str, flight: asyncio.Task[ProofStatus | None]) -> None:
        """A fetch finished: later callers start their own."""
        if self._flights.get(code) is flight:
            del self._flights[code]
        if not flight.cancelled():
            flight.exception()  # retrieved: waiters re-raise it; no "never retrieved" noise

    async def _fetch(self, code: str) -> ProofStatus | None:
        token = self._local.fill_token()
        shared = self._shared
        change = self._recent_change(code) if shared is not None else None
        newest = None if change is None else change[1]
        if shared is not None and (change is None or newest is not None):
            status = await shared.get(code)
            if status is not None and (newest is None or status.version >= newest):
                self._local.put(code, status, token)
                return status
        status = await self._registry.get_status(code)
        if status is not None and self._local.current(token):
            self._local.put(code, status, token)
            if shared is not None:
                # No change since the token: this row is as new as any change heard of.
                if (heard := self._changes.get(code)) is not None:
                    self._changes[code] = (heard[0], status.version)
                await shared.put(code, status)
        return status

    def _recent_change(self, code: str) -> tuple[float, int | None] | None:
        change = self._changes.get(code)
        if change is not None and change[0] <= self._clock():
            del self._changes[code]
            return None
        return change

    def changed(self, codes: Iterable[str], at: float | None = None) -> None:
        """``codes`` changed status at ``at`` (default now): no shared copy of them is
        taken until one is known to be newer, or every copy from before has expired."""
        if self._shared is None:
            return
        until = (self._clock() if at is None else at) + self._shared.ttl_seconds + CLOCK_MARGIN
        changes = self._changes
        for code in codes:
            known = changes.get(code)
            changes[code] = (until if known is None else max(known[0], until), None)

    def forget_expired_changes(self) -> None:
        """Drop the changes no live copy can predate (the feed calls this now and then)."""
        now = self._clock()
        self._changes = {code: c for code, c in self._changes.items() if c[0] > now}

    async def invalidate(self, codes: list[str], *, announce: bool) -> None:
        """Forget ``codes`` in every tier; ``announce`` tells the other processes too.

        The process that changed a status announces; processes that learn of a change
        (by message or from the change feed) only drop their copies and delete the
        shared ones again, which covers a fill that raced the first delete.
        """
        self._local.invalidate(codes)
        for code in codes:
            self._flights.pop(code, None)  # later callers must not join a stale fetch
        shared = self._shared
        if shared is None:
            return
        self.changed(codes)
        # Best effort: changed() is what keeps this process right; the delete spares
        # processes that have not heard of the change yet a stale read.
        await shared.delete(codes)
        if announce:
            for code in codes:
                await shared.publish(code)

    def forget_everything(self) -> None:
        """Drop every in-process copy: messages may have been lost."""
        self._local.clear()
        self._flights.clear()
