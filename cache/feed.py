"""The change feed: every process polls the registry's status-change log.

Messages (Redis pub/sub) make invalidation fast; this poll makes it certain. Any change
is seen by every process within one interval even when a message is lost, so no copy
outlives a change by more than about ``interval`` (DESIGN: 1 s). Each successful poll
lets the in-process tier serve its copies for :data:`TRUST_WINDOW` more; while polls fail
(or the event loop stalls and they cannot run) its copies are not served.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from cache.lookup import CachedLookup
from verify.registry import Registry, RegistryError

log = logging.getLogger("sealgate.cache")

DEFAULT_INTERVAL = 0.2
# A copy may be trusted while the last successful poll is at most this old; it keeps
# the 1 s bound with room for one slow poll.
TRUST_WINDOW = 0.6


class ChangeFeed:
    def __init__(
        self,
        registry: Registry,
        lookup: CachedLookup,
        *,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._registry = registry
        self._lookup = lookup
        self._interval = interval
        self._clock = clock
        self._last_seq = 0
        self._failing: RegistryError | None = None

    async def start(self) -> None:
        """Begin after the newest change: copies fetched from now on are current."""
        self._lookup.local.trust_until(self._clock())  # nothing served until a poll
        self._last_seq = await self._registry.last_change()
        self._lookup.local.trust_until(self._clock() + TRUST_WINDOW)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.poll()

    async def poll(self) -> None:
        started = self._clock()
        try:
            changes = await self._registry.changes_since(self._last_seq)
            while changes:
                await self._lookup.invalidate(sorted({c.code for c in changes}), announce=False)
                self._last_seq = changes[-1].seq
                changes = await self._registry.changes_since(self._last_seq)
            await self._lookup.retry_deletes()
        except RegistryError as exc:
            if self._failing is None:
                log.warning("change feed failing (%s); in-process copies lapse", type(exc).__name__)
                self._failing = exc
            return
        if self._failing is not None:
            log.info("change feed recovered")  # the catch-up above replayed what was missed
            self._failing = None
        self._lookup.local.trust_until(started + TRUST_WINDOW)
