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
the registry, so a process started during an outage knows them too. Those notes are
bounded (:data:`MAX_NOTED_CHANGES`); past the bound the shared tier is left aside.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import time
from collections.abc import Callable, Collection
from typing import NamedTuple, Protocol

from sealgate.cache.local import LocalTier
from sealgate.verify.registry import ProofStatus, Registry, RegistryUnavailable

log = logging.getLogger("sealgate.cache")

# How far the clocks of the gateways, their registry and Redis may disagree: a change's
# time is taken on the gateway that made it.
CLOCK_MARGIN = 300.0
# Changes remembered code by code (~150 bytes each). Past this, as in a night that
# supersedes proofs by the thousand a second, the process stops taking shared copies
# at all until the newest change it could not note is old enough.
MAX_NOTED_CHANGES = 200_000
# How long past the last successful poll of the change feed a copy still answers when the
# registry cannot be read (docs/design.md §11; the city setting outage_freshness).
DEFAULT_OUTAGE_FRESHNESS = 30.0
# Expired notes dropped per call of forget_expired_changes(), so that one call is short.
_FORGET_BATCH = 10_000


class SharedTier(Protocol):
    """The cache shared by processes and gateways (Redis); degrades to misses."""

    @property
    def available(self) -> bool: ...

    @property
    def ttl_seconds(self) -> int:
        """How long a copy can live in the tier after it was put."""
        ...

    @property
    def refused_writes(self) -> int:
        """Copies the tier refused to keep (out of memory, read-only replica...)."""
        ...

    async def get(self, code: str) -> ProofStatus | None: ...

    async def put(self, code: str, status: ProofStatus) -> None: ...

    async def delete(self, codes: Collection[str]) -> bool: ...

    async def publish(self, code: str) -> bool: ...


class Found(NamedTuple):
    """A lookup's answer. ``as_of`` is None when the status is current (the change feed
    is keeping up, or the registry was just read); otherwise it is the wall-clock time the
    status is known current as of: a copy answered through a registry outage."""

    status: ProofStatus | None
    as_of: float | None = None


class _Note(NamedTuple):
    """A code's recent change: until when a shared copy may predate it, and the version of
    the newest registry row read since (None: none yet, so no copy is taken)."""

    until: float
    version: int | None


class CachedLookup:
    def __init__(
        self,
        registry: Registry,
        local: LocalTier,
        shared: SharedTier | None = None,
        *,
        clock: Callable[[], float] = time.time,
        max_noted: int = MAX_NOTED_CHANGES,
        outage_freshness: float = DEFAULT_OUTAGE_FRESHNESS,
    ) -> None:
        self._registry = registry
        self._local = local
        self._shared = shared
        self._clock = clock  # wall-clock: compared with the times of changes
        self._flights: dict[str, asyncio.Task[Found]] = {}
        self._outage_freshness = outage_freshness
        self._notes: dict[str, _Note] = {}
        self._expiries: collections.deque[tuple[float, str]] = collections.deque()
        self._max_noted = max_noted
        self._shared_aside_until = 0.0  # no shared copy at all before then (overflow)

    @property
    def local(self) -> LocalTier:
        return self._local

    @property
    def shared(self) -> SharedTier | None:
        return self._shared

    async def get_status(self, code: str) -> ProofStatus | None:
        return (await self.find(code)).status

    async def find(self, code: str) -> Found:
        """The status of ``code`` and how fresh it is (see :class:`Found`)."""
        status = self._local.get(code)
        if status is not None:
            return Found(status)
        flight = self._flights.get(code)
        if flight is None:
            flight = asyncio.get_running_loop().create_task(self._fetch(code))
            self._flights[code] = flight
            flight.add_done_callback(functools.partial(self._land, code))
        # Shielded: a caller that goes away must not cancel the fetch others wait on.
        return await asyncio.shield(flight)

    def _land(self, code: str, flight: asyncio.Task[Found]) -> None:
        """A fetch finished: later callers start their own."""
        if self._flights.get(code) is flight:
            del self._flights[code]
        if not flight.cancelled():
            flight.exception()  # retrieved: waiters re-raise it; no "never retrieved" noise

    async def _fetch(self, code: str) -> Found:
        token = self._local.fill_token()
        shared = self._shared
        note = None
        if shared is not None:
            if self._clock() < self._shared_aside_until:
                shared = None
            else:
                note = self._recent_note(code)
        newest = None if note is None else note.version
        if shared is not None and (note is None or newest is not None):
            status = await shared.get(code)
            if status is not None and (newest is None or status.version >= newest):
                self._local.put(code, status, token)
                if self._local.trusted:
                    return Found(status)
                # The feed lapses: no change since its last poll is known of, so the copy
                # is as fresh as that poll, and answers only within the bound (§11).
                as_of = self._local.confirmed_within(self._outage_freshness)
                if as_of is not None:
                    return Found(status, as_of)
        try:
            status = await self._registry.get_status(code)
        except RegistryUnavailable:
            # Through an outage, the copy this process holds answers while the last
            # poll that confirmed it is recent enough; past that, the 503 stands.
            lapsed = self._local.lapsed(code, self._outage_freshness)
            if lapsed is None:
                raise
            return Found(*lapsed)
        if status is not None and self._local.current(token):
            self._local.put(code, status, token)
            if shared is not None:
                # No change was heard of since the token: this row is as new as any was.
                if (heard := self._notes.get(code)) is not None:
                    self._notes[code] = heard._replace(version=status.version)
                await shared.put(code, status)
        return Found(status)

    def _recent_note(self, code: str) -> _Note | None:
        note = self._notes.get(code)
        if note is not None and note.until <= self._clock():
            del self._notes[code]
            return None
        return note

    def relevant_since(self) -> float | None:
        """The wall-clock time before which a change can no longer have a shared copy
        from before it alive (None without a shared tier): what the feed recalls at start."""
        if self._shared is None:
            return None
        return self._clock() - self._shared.ttl_seconds - CLOCK_MARGIN

    def forget(self, codes: Collection[str], at: float | None = None) -> None:
        """``codes`` changed status (at ``at``, default now): drop their in-process copies
        and the fetches under way, and take no shared copy of them until one is known to
        be as new as the change, or every copy from before it has expired."""
        self._local.invalidate(list(codes))  # also keeps fetches under way from filling
        for code in codes:
            self._flights.pop(code, None)  # later callers must not join a stale fetch
        shared = self._shared
        if shared is None:
            return
        until = (self._clock() if at is None else at) + shared.ttl_seconds + CLOCK_MARGIN
        notes, expiries = self._notes, self._expiries
        for code in codes:
            known = notes.get(code)
            if known is None and len(notes) >= self._max_noted:
                self._set_shared_aside(until)
                continue
            notes[code] = _Note(until if known is None else max(known.until, until), None)
            if len(expiries) < 2 * self._max_noted:
                expiries.append((until, code))
            # else the note stays until a fetch finds it expired: the dict's bound holds

    def _set_shared_aside(self, until: float) -> None:
        if self._shared_aside_until <= self._clock():
            log.warning(
                "over %d recent status changes: Redis copies are set aside for a while",
                self._max_noted,
            )
        self._shared_aside_until = max(self._shared_aside_until, until)

    def forget_expired_changes(self) -> None:
        """Drop notes no live copy can predate, a bounded number a call (the feed calls
        this at each poll)."""
        now = self._clock()
        expiries, notes = self._expiries, self._notes
        for _ in range(_FORGET_BATCH):
            if not expiries or expiries[0][0] > now:
                return
            until, code = expiries.popleft()
            note = notes.get(code)
            if note is not None and note.until <= until:
                del notes[code]

    async def invalidate(self, codes: list[str], *, announce: bool) -> None:
        """Forget ``codes`` in every tier; ``announce`` tells the other processes too.

        The process that changed a status announces; processes that learn of a change
        (by message or from the change feed) only drop their copies and delete the
        shared ones again, which covers a fill that raced the first delete.
        """
        self.forget(codes)
        shared = self._shared
        if shared is None:
            return
        # Best effort: forget() is what keeps this process right; the delete spares
        # processes that have not heard of the change yet a stale read.
        await shared.delete(codes)
        if announce:
            for code in codes:
                await shared.publish(code)

    def forget_everything(self) -> None:
        """Drop every in-process copy: messages may have been lost."""
        self._local.clear()
        self._flights.clear()
