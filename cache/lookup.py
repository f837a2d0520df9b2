"""Status lookups through the tiers: in-process → shared (Redis) → registry.

The registry is the source of truth; the tiers hold copies. Concurrent misses for one
code make one fetch (single flight), which a cancelled caller cannot interrupt.
Invalidation drops the in-process copy, deletes the shared one and tells every other
process; a shared copy that could not be deleted (Redis down) is bypassed by this
process until the delete succeeds.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Collection
from typing import Protocol

from cache.local import LocalTier
from verify.registry import ProofStatus, Registry

log = logging.getLogger("sealgate.cache")


class SharedTier(Protocol):
    """The cache shared by processes and gateways (Redis); degrades to misses."""

    @property
    def available(self) -> bool: ...

    async def get(self, code: str) -> ProofStatus | None: ...

    async def put(self, code: str, status: ProofStatus) -> None: ...

    async def delete(self, codes: Collection[str]) -> bool: ...

    async def publish(self, code: str) -> bool: ...


class CachedLookup:
    def __init__(
        self, registry: Registry, local: LocalTier, shared: SharedTier | None = None
    ) -> None:
        self._registry = registry
        self._local = local
        self._shared = shared
        self._flights: dict[str, asyncio.Task[ProofStatus | None]] = {}
        # Codes whose shared copy may be stale because its delete failed.
        self._undeleted: set[str] = set()

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
        if shared is not None and code not in self._undeleted:
            status = await shared.get(code)
            if status is not None:
                self._local.put(code, status, token)
                return status
        status = await self._registry.get_status(code)
        if status is not None and self._local.current(token):
            self._local.put(code, status, token)
            if shared is not None and code not in self._undeleted:
                await shared.put(code, status)
        return status

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
        if await shared.delete(codes):
            self._undeleted.difference_update(codes)
        else:
            self._undeleted.update(codes)
        if announce:
            for code in codes:
                await shared.publish(code)

    def forget_everything(self) -> None:
        """Drop every in-process copy: messages may have been lost."""
        self._local.clear()
        self._flights.clear()

    async def retry_deletes(self) -> None:
        """Delete the shared copies that could not be deleted before."""
        if self._shared is None or not self._undeleted:
            return
        pending = list(self._undeleted)
        if await self._shared.delete(pending):
            self._undeleted.difference_update(pending)
            log.info("deleted %d shared cache entries left over from an outage", len(pending))
