"""The change feed: every process polls the registry's status-change log.

Messages (Redis pub/sub) make invalidation fast; this poll makes it certain. Any change
is seen by every process within one interval even when a message is lost, so no copy
outlives a change by more than about ``interval`` (docs/design.md §4.5: 1 s). Each successful poll
lets the in-process tier serve its copies for :data:`TRUST_WINDOW` more; while polls fail
(or the event loop stalls and they cannot run) its copies are not served as current. Each
successful poll also confirms the copies as of its start: through a registry outage they
answer, saying so, while that confirmation is recent enough (docs/design.md §11).

At start the feed also recalls from the registry the changes recent enough that a shared
copy made before them may still be alive (see :mod:`sealgate.cache.lookup`): a process started
while Redis was down, or before a Redis restored from a snapshot came back, must not
take such a copy for current.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from sealgate.cache.lookup import CLOCK_MARGIN, CachedLookup
from sealgate.verify.registry import Registry, RegistryError

log = logging.getLogger("sealgate.cache")

DEFAULT_INTERVAL = 0.2
# A copy may be trusted while the last successful poll is at most this old; it keeps
# the 1 s bound with room for one slow poll.
TRUST_WINDOW = 0.6
RECALL_PAGE = 1000  # changes a query at start: one registry round trip each


class ChangeFeed:
    def __init__(
        self,
        registry: Registry,
        lookup: CachedLookup,
        *,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._registry = registry
        self._lookup = lookup
        self._interval = interval
        self._clock = clock
        self._wall = wall
        self._last_seq = 0
        self._failing: RegistryError | None = None

    async def start(self) -> None:
        """Begin after the newest change: copies fetched from now on are current, and
        the shared copies that recent changes made stale are known."""
        started, wall = self._clock(), self._wall()
        self._lookup.local.trust_until(started)  # nothing served until a poll
        self._last_seq = await self._registry.last_change()
        await self._recall(self._last_seq)
        self._lookup.local.trust_until(self._clock() + TRUST_WINDOW)
        self._lookup.local.confirm(started, wall)

    async def _recall(self, last: int) -> None:
        """Tell the lookup of every change up to ``last`` recent enough to matter. The log
        is ordered by ``seq``, and by time but for the clocks' disagreement, which the
        margin covers: a binary search finds where that stretch starts."""
        since = self._lookup.relevant_since()
        if since is None or last == 0:
            return
        low, high = 0, last  # the stretch starts after some seq in [low, high]
        while low < high:
            middle = (low + high) // 2
            following = await self._registry.changes_since(middle, limit=1)
            if following and following[0].changed_at < since - CLOCK_MARGIN:
                low = following[0].seq  # that change and every one before it are older
            else:
                high = middle
        while low < last:
            changes = await self._registry.changes_since(low, limit=RECALL_PAGE)
            if not changes:
                break
            for change in changes:
                if change.seq <= last and change.changed_at >= since:
                    self._lookup.forget((change.code,), at=change.changed_at)
            low = changes[-1].seq

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.poll()

    async def poll(self) -> None:
        started, wall = self._clock(), self._wall()
        try:
            changes = await self._registry.changes_since(self._last_seq)
            while changes:
                await self._lookup.invalidate(sorted({c.code for c in changes}), announce=False)
                self._last_seq = changes[-1].seq
                changes = await self._registry.changes_since(self._last_seq)
        except RegistryError as exc:
            if self._failing is None:
                log.warning("change feed failing (%s); in-process copies lapse", type(exc).__name__)
                self._failing = exc
            return
        if self._failing is not None:
            log.info("change feed recovered")  # the catch-up above replayed what was missed
            self._failing = None
        self._lookup.local.trust_until(started + TRUST_WINDOW)
        self._lookup.local.confirm(started, wall)
        self._lookup.forget_expired_changes()
