"""The in-process tier: copies of proof statuses in one worker's memory.

Bounded in count; a copy is dropped when an invalidation names its code, and never
stored if an invalidation arrived while it was being fetched (see :meth:`LocalTier.put`).

Copies are kept as plain tuples of strings and numbers
(:func:`sealgate.cache.codec.status_fields`), which the cyclic garbage collector stops tracking
after its first look; only the last :data:`HOT_ENTRIES` read are also kept as
:class:`ProofStatus` objects. As objects, 200,000 copies (with the answers built from
them) were ~500,000 objects for every full collection to scan: a pause of ~100 ms of the
worker, every minute or so under the Zipf mix.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sealgate.cache.codec import status_fields, status_from_fields
from sealgate.verify.registry import ProofStatus

DEFAULT_MAX_ENTRIES = 200_000
HOT_ENTRIES = 4096
# An upper bound on any copy's age: invalidation is what keeps copies right; this only
# limits the damage of a bug or of a change feed that stalled unnoticed.
DEFAULT_MAX_AGE = 30.0


class LocalTier:
    def __init__(
        self,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_age: float = DEFAULT_MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # code -> (stored at, *sealgate.cache.codec.status_fields), flat: a tuple holding a tuple
        # is untracked only a collection after it (see the module docstring)
        self._entries: dict[str, tuple[Any, ...]] = {}
        self._objects: dict[str, ProofStatus] = {}  # the hot ones, as objects
        self._max_entries = max_entries
        self._max_age = max_age
        self._clock = clock
        self._generation = 0  # bumped by every invalidation
        # Copies are served only until this instant; the change feed moves it forward
        # after each successful poll. Without a feed (tests, tools) copies are trusted.
        self._trusted_until = float("inf")
        # The last poll that confirmed the copies: (clock reading, wall-clock time).
        # Every change committed before it had dropped its copy by then.
        self._confirmed: tuple[float, float] | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def trust_until(self, deadline: float) -> None:
        """Serve copies until ``deadline`` (a ``clock`` reading), unless moved again."""
        self._trusted_until = deadline

    def confirm(self, at: float, wall: float) -> None:
        """A poll that began at ``at`` (a ``clock`` reading; ``wall`` on the wall clock)
        found every change up to then: each copy held is current as of that instant."""
        self._confirmed = (at, wall)

    @property
    def trusted(self) -> bool:
        return self._clock() <= self._trusted_until

    def confirmed_within(self, bound: float) -> float | None:
        """The wall-clock time of the last confirmation if it is at most ``bound``
        seconds old, else None."""
        confirmed = self._confirmed
        if confirmed is None or self._clock() - confirmed[0] > bound:
            return None
        return confirmed[1]

    def lapsed(self, code: str, bound: float) -> tuple[ProofStatus, float] | None:
        """For when the registry cannot be read: the copy of ``code`` if the copies were
        last confirmed at most ``bound`` seconds ago, with the wall-clock time of that
        confirmation (how fresh the copy is known to be). A copy's own age does not
        matter here: what makes it right is that no change was heard of since it was
        confirmed, so the bound is on the confirmation (docs/design.md §11)."""
        as_of = self.confirmed_within(bound)
        entry = None if as_of is None else self._entries.get(code)
        if as_of is None or entry is None:
            return None
        status = self._objects.get(code)
        if status is None:
            status = status_from_fields(entry[1:])
            self._keep_object(code, status)
        return status, as_of

    def get(self, code: str) -> ProofStatus | None:
        entry = self._entries.get(code)
        if entry is None:
            return None
        now = self._clock()
        if now > self._trusted_until:
            return None
        if now - entry[0] > self._max_age:
            del self._entries[code]
            self._objects.pop(code, None)
            return None
        status = self._objects.get(code)
        if status is None:
            status = status_from_fields(entry[1:])
            self._keep_object(code, status)
        return status

    def _keep_object(self, code: str, status: ProofStatus) -> None:
        objects = self._objects
        if len(objects) >= HOT_ENTRIES:
            for stale in list(objects)[: HOT_ENTRIES // 10]:
                del objects[stale]
        objects[code] = status

    def fill_token(self) -> int:
        """Take before fetching a copy; pass to :meth:`put` when it arrives."""
        return self._generation

    def current(self, token: int) -> bool:
        """Whether no invalidation happened since ``token`` was taken."""
        return token == self._generation

    def put(self, code: str, status: ProofStatus, token: int) -> None:
        """Keep a copy, unless an invalidation came while it was fetched.

        The fetch may have read the registry just before a status change committed; an
        invalidation since the token was taken means the copy may be that old one.
        """
        if token != self._generation:
            return
        if len(self._entries) >= self._max_entries:
            # Drop the oldest tenth (dicts keep insertion order): cheap, and the popular
            # codes come straight back.
            for stale in list(self._entries)[: max(1, self._max_entries // 10)]:
                del self._entries[stale]
                self._objects.pop(stale, None)
        self._entries[code] = (self._clock(), *status_fields(status))
        self._keep_object(code, status)

    def invalidate(self, codes: list[str]) -> None:
        self._generation += 1
        for code in codes:
            self._entries.pop(code, None)
            self._objects.pop(code, None)

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()
        self._objects.clear()
