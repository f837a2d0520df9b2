"""Limits on failed code lookups, and a floor on how soon a failed lookup is answered.

Someone holding a verifier's token can try codes at GET /v1/verify/{code} (docs/design.md §8). Two
limits, both counting only *failed* lookups (the one 404 for malformed, forged and
unregistered codes):

Per client (NIST SP 800-63B §5.2.2: at most 100 consecutive failed attempts)
    A leaky bucket of failures per client id: each failure adds one, the bucket drains at
    ``drain_per_second`` (by default 100 per 10 minutes), and it holds ``per_client``. When
    it has no room for one more failure, :meth:`FailedLookupLimiter.admit` refuses the
    client's lookups *before* the code is checked or looked up, with ``Retry-After`` = the
    seconds until one failure has drained. A sustained enumerator is thus held to the
    drain rate (one guess per 6 s by default) once its first 100 are spent.

    A successful lookup does **not** empty the bucket: an enumerator holding one valid
    code could otherwise interleave it between guesses and never be throttled. Legitimate
    checkers rarely fail, and their few typing errors drain away within minutes.

Global (per process, all clients' failures together)
    A token bucket (by default a burst of 2,000 failures, refilled at 1,000/s). When it is
    empty, further lookups that *fail* are answered 429 instead of 404. It guards against
    a distributed enumeration (many verifier tokens, each under its own limit) loading
    the registry and the gateway, and it makes such a flood visible as 429s. It counts
    only failures because legitimate traffic is overwhelmingly hits: a flood of guesses
    must not take verification away from the banks checking real proofs. Note what it does
    *not* do by default: the lookup that empties it has already been made, and a hit is
    still answered 200, so an attacker who ignores 429 learns as much as before. With
    ``global_brownout=True`` it also bites before the lookup: while the global bucket is
    empty, :meth:`~FailedLookupLimiter.admit` refuses clients that have failed recently
    (at least one failure not yet drained), and clients with a clean record are served.

Both are kept per process here, and with Redis also once for the whole city
(:mod:`sealgate.gateway.shared_limits`, through :meth:`FailedLookupLimiter.failed_everywhere`):
without it, with ``--workers N`` a client could spend up to N x 100 failures. A client's
own :class:`~sealgate.verify.directory.LookupLimit` replaces the default bucket, and a
code refused by its check character (a typing error, never a hit) weighs ``typo_weight``.

Memory is bounded: at most ``max_clients`` clients are tracked; when full, clients whose
bucket has drained are dropped first, and only if that frees too little are the clients
with the oldest last failure dropped (forgiving them; this needs more than ``max_clients``
verifier identities failing within one drain period). Clients that never fail are never
tracked.

Timing: :func:`answer_no_sooner_than` holds every failed lookup's answer until a floor
(10 ms by default) after the check began, so a malformed code (refused in about 2 µs), a
forged one (a keyed tag, a few µs) and an unregistered one (a registry read, about
150 µs) leave at the same time. :func:`limited_lookup` combines both for a handler.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

from sealgate.errors import Error
from sealgate.gateway.problems import Problem
from sealgate.gateway.shared_limits import SharedFailures, SharedUnavailable
from sealgate.verify.directory import LookupLimit

T = TypeVar("T")

Scope = Literal["client", "global"]

FAILURE_FLOOR_SECONDS = 0.010
UNKNOWN_CODE = "unknown-code"  # the Problem code of sealgate.gateway.problems.unknown_code()

# Float slack: 100 failures must leave the bucket exactly full, not 1e-13 over.
_EPSILON = 1e-9


class Throttled(Error):
    """A lookup refused for too many failures: by this client, or by everyone together."""

    def __init__(self, retry_after: float, scope: Scope) -> None:
        super().__init__(f"too many failed lookups ({scope}); retry after {retry_after:.3f} s")
        self.retry_after = retry_after
        self.scope: Scope = scope


class FailedLookupLimiter:
    """Per-client leaky buckets and one global token bucket of failed lookups.

    Owned by the application (one per process) and passed in; not thread-safe, meant to
    be used from the event loop's thread only. ``clock`` is monotonic seconds. A client's
    own :class:`LookupLimit` (``sealgate client set-limits``) replaces ``per_client`` and
    ``drain_per_second`` for it. With ``shared`` (:mod:`sealgate.gateway.shared_limits`)
    the buckets hold across workers and instances; these local ones stay the floor, and
    the whole limit when the shared store cannot be reached (fail closed).
    """

    def __init__(
        self,
        *,
        per_client: int = 100,
        drain_per_second: float = 100 / 600,
        global_burst: int = 2000,
        global_per_second: float = 1000.0,
        max_clients: int = 100_000,
        global_brownout: bool = False,
        typo_weight: float = 0.1,
        shared: SharedFailures | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_client < 1 or global_burst < 1 or max_clients < 1:
            raise ValueError("per_client, global_burst and max_clients must be at least 1")
        if not (drain_per_second > 0 and global_per_second > 0):
            raise ValueError("drain_per_second and global_per_second must be positive")
        if not 0 < typo_weight <= 1:
            raise ValueError("typo_weight must be in (0, 1]")
        self._default = LookupLimit(per_client, per_client / drain_per_second)
        self._global_burst = float(global_burst)
        self._global_rate = global_per_second
        self._max_clients = max_clients
        # After a sweep that frees too little, evict down to this, so sweeps stay rare.
        self._low_water = max_clients - max(1, max_clients // 10)
        self._brownout = global_brownout
        self.typo_weight = typo_weight
        self.shared = shared
        self._clock = clock
        # client id -> (failures in the bucket, when that was measured, drain per
        # second); ordered by the last failure, oldest first (re-inserted on each).
        self._clients: dict[str, tuple[float, float, float]] = {}
        self._tokens = float(global_burst)
        self._tokens_at = clock()

    def admit(self, client_id: str, limit: LookupLimit | None = None) -> None:
        """Refuse (raise :class:`Throttled`) a client with no room for one more failure.

        Call before the code is checked; it records nothing, so a client that never fails
        costs no memory.
        """
        now = self._clock()
        limit = limit or self._default
        level = self._level(client_id, now)
        room = limit.failures - 1.0
        if level > room + _EPSILON:
            raise Throttled((level - room) / limit.drain_per_second, "client")
        if self._brownout and level >= 1.0 - _EPSILON and self._refill(now) < 1.0:
            raise Throttled((1.0 - self._tokens) / self._global_rate, "global")

    def failed(
        self, client_id: str, limit: LookupLimit | None = None, *, weight: float = 1.0
    ) -> None:
        """Record a failed lookup (``weight``: :attr:`typo_weight` for a mistyped code,
        which can never be a hit); raise :class:`Throttled` if the global bucket was
        empty, or if the client's had no room left for it (lookups admitted together).
        The client's failure is counted either way."""
        now = self._clock()
        limit = limit or self._default
        level = self._level(client_id, now)
        room = limit.failures - level
        # Capped: the wait after a full bucket stays one drained failure.
        self._put(client_id, min(level + weight, float(limit.failures)), now, limit)
        if self._refill(now) < 1.0:
            raise Throttled((1.0 - self._tokens) / self._global_rate, "global")
        self._tokens -= 1.0
        if room < weight - _EPSILON:
            # Admitted together with others (in flight at once, a batch) that used up the
            # room: this one is beyond the limit, and answered so.
            raise Throttled((weight - room) / limit.drain_per_second, "client")

    async def failed_everywhere(
        self, client_id: str, limit: LookupLimit | None = None, *, weight: float = 1.0
    ) -> None:
        """:meth:`failed` here, then in the shared buckets: raises :class:`Throttled`
        when either has no room (the shared client bucket already full: this failure
        is one more than the limit allows in all). The shared level becomes this
        process's too, so its next :meth:`admit` refuses without asking."""
        refusal: Throttled | None = None
        try:
            self.failed(client_id, limit, weight=weight)
        except Throttled as exc:
            refusal = exc
        if self.shared is None:
            if refusal is not None:
                raise refusal
            return
        limit = limit or self._default
        try:
            shared = await self.shared.add(
                client_id, weight, limit, self._global_burst, self._global_rate
            )
        except SharedUnavailable:
            shared = None  # the local buckets alone, per process, until it is back
        if shared is not None:
            now = self._clock()
            if shared.client_level > self._level(client_id, now):
                self._put(client_id, shared.client_level, now, limit)
            if shared.client_full:
                excess = shared.client_level - (limit.failures - 1.0)
                refusal = Throttled(max(excess, weight) / limit.drain_per_second, "client")
            elif shared.global_empty and refusal is None:
                refusal = Throttled(1.0 / self._global_rate, "global")
        if refusal is not None:
            raise refusal

    def failures(self, client_id: str) -> float:
        """The failures in this client's bucket now (drained ones subtracted)."""
        return self._level(client_id, self._clock())

    @property
    def tracked_clients(self) -> int:
        return len(self._clients)

    def _put(self, client_id: str, level: float, now: float, limit: LookupLimit) -> None:
        if client_id in self._clients:
            del self._clients[client_id]  # re-inserted below, at the young end
        elif len(self._clients) >= self._max_clients:
            self._make_room(now)
        self._clients[client_id] = (level, now, limit.drain_per_second)

    def _level(self, client_id: str, now: float) -> float:
        entry = self._clients.get(client_id)
        if entry is None:
            return 0.0
        level, at, drain = entry
        return max(0.0, level - max(0.0, now - at) * drain)

    def _refill(self, now: float) -> float:
        elapsed = max(0.0, now - self._tokens_at)
        self._tokens = min(self._global_burst, self._tokens + elapsed * self._global_rate)
        self._tokens_at = now
        return self._tokens

    def _make_room(self, now: float) -> None:
        """Drop drained clients; if too few were, the ones whose last failure is oldest."""
        drained = [
            client_id
            for client_id, (level, at, drain) in self._clients.items()
            if level - (now - at) * drain <= _EPSILON
        ]
        for client_id in drained:
            del self._clients[client_id]
        if len(self._clients) >= self._max_clients:
            excess = len(self._clients) - self._low_water
            for client_id in list(itertools.islice(self._clients, excess)):
                del self._clients[client_id]


def retry_after_header(retry_after: float) -> str:
    """Whole seconds, rounded up, at least 1 (RFC 9110 §10.2.3 delay-seconds)."""
    return str(max(1, math.ceil(retry_after)))


def too_many_failed_lookups(exc: Throttled) -> Problem:
    """The 429 answer for a :class:`Throttled`."""
    detail = (
        "This client has made too many failed lookups; retry after the indicated delay"
        if exc.scope == "client"
        else "Too many failed lookups across all clients; retry after the indicated delay"
    )
    return Problem(
        429,
        "too-many-failed-lookups",
        "Too many failed code lookups",
        detail,
        headers={"Retry-After": retry_after_header(exc.retry_after)},
    )


async def answer_no_sooner_than(
    started: float,
    floor_seconds: float = FAILURE_FLOOR_SECONDS,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Return no sooner than ``started + floor_seconds`` (``started`` read from ``clock``).

    For failed lookups: whichever path the refusal took (malformed, forged, unregistered),
    the answer leaves at the floor, so its timing tells nothing. The wait is an
    ``asyncio.sleep``: it does not block the event loop (other requests are served
    meanwhile) and it costs a suspended coroutine, not a thread. It also slows a serial
    enumerator to at most one guess per floor per connection. It hides only what is
    faster than the floor: keep the floor above the slow path's usual latency.
    """
    deadline = started + floor_seconds
    while (remaining := deadline - clock()) > 0:
        # Looped: the event loop may run a timer up to its clock resolution early.
        await asyncio.sleep(remaining)


def _admit(limiter: FailedLookupLimiter, client_id: str, limit: LookupLimit | None) -> None:
    try:
        limiter.admit(client_id, limit)
    except Throttled as exc:
        raise too_many_failed_lookups(exc) from None


async def _failed(
    limiter: FailedLookupLimiter,
    client_id: str,
    limit: LookupLimit | None,
    answer: Problem | None,
    started: float,
    floor_seconds: float,
    clock: Callable[[], float],
) -> Problem | None:
    """Count a failure and hold the answer to the floor; the 429 instead of ``answer``
    if a bucket had no room. A mistyped code (:attr:`Problem.mistyped`) weighs less."""
    weight = limiter.typo_weight if answer is not None and answer.mistyped else 1.0
    try:
        await limiter.failed_everywhere(client_id, limit, weight=weight)
    except Throttled as exc:
        answer = too_many_failed_lookups(exc)
    await answer_no_sooner_than(started, floor_seconds, clock=clock)
    return answer


async def limited_lookup(
    limiter: FailedLookupLimiter,
    client_id: str,
    lookup: Callable[[], Awaitable[T]],
    *,
    limit: LookupLimit | None = None,
    floor_seconds: float = FAILURE_FLOOR_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Run ``lookup`` under the limits (``limit``: the client's own, if it has one); its
    unknown-code 404 becomes a failure.

    Refused with 429 before ``lookup`` runs if the client's bucket is full. When
    ``lookup`` raises the unknown-code :class:`Problem`, the failure is recorded, the
    answer is held until ``floor_seconds`` after the lookup began, and the 404 is raised
    (or the 429 if a bucket had no room). Any other outcome passes through as is.
    """
    _admit(limiter, client_id, limit)
    started = clock()
    try:
        return await lookup()
    except Problem as problem:
        if problem.code != UNKNOWN_CODE:
            raise
        refusal = await _failed(limiter, client_id, limit, problem, started, floor_seconds, clock)
        raise (refusal or problem) from None


async def limited_search(
    limiter: FailedLookupLimiter,
    client_id: str,
    search: Callable[[], Awaitable[list[T]]],
    *,
    limit: LookupLimit | None = None,
    floor_seconds: float = FAILURE_FLOOR_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> list[T]:
    """:func:`limited_lookup` for a search, whose failure is an empty result, not a 404:
    guessing holders' identity numbers meets the same limits as guessing codes."""
    _admit(limiter, client_id, limit)
    started = clock()
    found = await search()
    if not found:
        refusal = await _failed(limiter, client_id, limit, None, started, floor_seconds, clock)
        if refusal is not None:
            raise refusal
    return found
