"""Bounded waits on the registry and the directory (docs/design.md §11).

A hung database must not hold every request for the driver's own timeouts (PostgreSQL:
5 s to get a connection and 10 s per statement, paid again by each retry; the directory's
blocking driver waits on a stopped server with no bound at all). Two things bound a wait:

- **The request's deadline** (:func:`request_deadline`, a city setting): every call a
  handler makes through a :class:`DependencyGuard` gets only what is left of it. The
  middleware starts it; tasks a request creates (a single-flight fetch) inherit it with
  their context. A call outside any request (the change feed) gets one deadline's worth.
- **A circuit breaker** (:class:`sealgate.cache.breaker.CircuitBreaker`, as for Redis):
  after :data:`FAILURES_TO_OPEN` failures in a row, calls are refused at once for
  :data:`OPEN_SECONDS`, then one probe goes through.

A call that outlives its waiter is not cancelled: it runs on, shielded, to the driver's
own end, so no connection is left half-way through a statement and no write's outcome is
made unknown by us. While such an abandoned call is still running no probe is sent (it
would only queue behind it: the directory's connection is one, under a lock), and if it
ends well, the dependency is back. Writes (registering, changing a status) are refused up
front while the breaker is open, but once begun are not cut off by the deadline: a 503
for a write that then commits would be a lie.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from sealgate.cache.breaker import Admission, CircuitBreaker
from sealgate.errors import Error
from sealgate.verify.consents import Consent
from sealgate.verify.directory import Client, Directory, DirectoryUnavailable
from sealgate.verify.registry import (
    IdempotentRequest,
    IdempotentResult,
    ProofRecord,
    ProofStatus,
    Registry,
    RegistryUnavailable,
    Status,
    StatusChange,
    StatusChangeRequest,
)
from sealgate.verify.requests import (
    Deadlines,
    RequestBook,
    RequestEvent,
    RequestQuery,
    Transition,
    VerificationRequest,
)

__all__ = [
    "DEFAULT_REQUEST_DEADLINE",
    "GUARDS",
    "BoundedDirectory",
    "BoundedRegistry",
    "DependencyGuard",
    "breakers_check",
    "request_deadline",
    "time_left",
]

log = logging.getLogger("sealgate.gateway")

T = TypeVar("T")

DEFAULT_REQUEST_DEADLINE = 3.0  # seconds; the city setting request_deadline
FAILURES_TO_OPEN = 3  # failures in a row: one slow answer is not an outage
OPEN_SECONDS = 1.0  # refused at once for this long, then one probe (Retry-After: 1)

# The event loop's time by which the current request must be answered; None outside one.
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "sealgate_request_deadline", default=None
)


def request_deadline(seconds: float) -> contextvars.Token[float | None]:
    """Start the current request's deadline (the middleware does, for every request)."""
    return _DEADLINE.set(asyncio.get_running_loop().time() + seconds)


def end_request_deadline(token: contextvars.Token[float | None]) -> None:
    _DEADLINE.reset(token)


def time_left(default: float) -> float:
    """Seconds left of the current request's deadline; ``default`` outside a request."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return default
    return deadline - asyncio.get_running_loop().time()


class DependencyGuard:
    """Bounded calls to one dependency, behind a breaker; see the module docstring."""

    def __init__(
        self,
        name: str,
        unavailable: Callable[[str], Error],
        failure: type[Error],
        *,
        call_bound: float = DEFAULT_REQUEST_DEADLINE,
        failures_to_open: int = FAILURES_TO_OPEN,
        open_seconds: float = OPEN_SECONDS,
        meanwhile: str = "requests that need it answer 503",
    ) -> None:
        self._name = name
        self._unavailable = unavailable  # makes the error a refusal raises
        self._failure = failure  # what the dependency raises when it is down
        self._call_bound = call_bound
        self._failures_to_open = failures_to_open
        self._breaker = CircuitBreaker(open_seconds, name, log, meanwhile=meanwhile)
        self._failures = 0  # in a row
        self._abandoned: set[asyncio.Future[Any]] = set()  # running on past their waiter

    @property
    def name(self) -> str:
        return self._name

    @property
    def available(self) -> bool:
        """Closed: calls go through (readiness reports an open one)."""
        return self._breaker.closed

    @property
    def abandoned(self) -> int:
        return len(self._abandoned)

    async def call(self, start: Callable[[], Awaitable[T]], *, write: bool = False) -> T:
        """``start()``'s result, within the request's deadline (a ``write`` waits for its
        outcome, however long the backend's own bound); the guard's unavailability error
        when the breaker refuses it or the deadline passes."""
        admission = self._breaker.admit()
        if admission is Admission.PROBE and self._abandoned:
            self._breaker.abandoned(admission)  # a probe now would queue behind those
            admission = None
        if admission is None:
            raise self._unavailable(f"{self._name} is unavailable; failing fast for a while")
        budget = None if write else time_left(self._call_bound)
        if budget is not None and budget <= 0:
            self._breaker.abandoned(admission)
            raise self._unavailable("the request's deadline passed")
        call = asyncio.ensure_future(start())
        try:
            result = await asyncio.wait_for(asyncio.shield(call), budget)
        except TimeoutError:
            self._abandon(call)
            self._failed(admission, TimeoutError(f"no answer within {budget:.1f} s"))
            raise self._unavailable(f"{self._name} did not answer within the deadline") from None
        except asyncio.CancelledError:
            if not call.done():  # the client went away: the call runs on regardless
                self._abandon(call)
            self._breaker.abandoned(admission)
            raise
        except self._failure as exc:
            self._failed(admission, exc)
            raise
        except Exception:
            self._succeeded(admission)  # it answered, with a refusal of this call alone
            raise
        self._succeeded(admission)
        return result

    def _succeeded(self, admission: Admission) -> None:
        self._failures = 0
        self._breaker.succeeded(admission)

    def _failed(self, admission: Admission, error: BaseException) -> None:
        self._failures += 1
        if admission is Admission.PROBE or self._failures >= self._failures_to_open:
            self._breaker.failed(admission, error)
        else:
            self._breaker.abandoned(admission)

    def _abandon(self, call: asyncio.Future[Any]) -> None:
        self._abandoned.add(call)
        call.add_done_callback(self._abandoned_call_ended)

    def _abandoned_call_ended(self, call: asyncio.Future[Any]) -> None:
        self._abandoned.discard(call)
        if call.cancelled() or call.exception() is not None:
            return  # retrieved: nobody waits on it any more
        if not self._breaker.closed and not self._abandoned:
            # It answered after all: the dependency is back (as a probe would show).
            self._failures = 0
            self._breaker.succeeded(Admission.PROBE)


class BoundedRegistry(Registry, RequestBook):
    """A :class:`Registry` whose every call goes through a :class:`DependencyGuard`."""

    def __init__(self, inner: Registry, *, call_bound: float = DEFAULT_REQUEST_DEADLINE) -> None:
        self._inner = inner
        self.guard = DependencyGuard(
            "the registry", RegistryUnavailable, RegistryUnavailable, call_bound=call_bound
        )

    @property
    def inner(self) -> Registry:
        return self._inner

    def __getattr__(self, name: str) -> Any:
        # What the interface does not name (a backend's own helpers) is the backend's.
        return getattr(self._inner, name)

    async def register(
        self, proofs: list[ProofRecord], idempotency: IdempotentRequest | None = None
    ) -> None:
        await self.guard.call(lambda: self._inner.register(proofs, idempotency), write=True)

    async def get(self, code: str) -> ProofRecord | None:
        return await self.guard.call(lambda: self._inner.get(code))

    async def get_status(self, code: str) -> ProofStatus | None:
        return await self.guard.call(lambda: self._inner.get_status(code))

    async def change_status(self, change: StatusChangeRequest) -> ProofStatus:
        return await self.guard.call(lambda: self._inner.change_status(change), write=True)

    async def history(self, code: str) -> list[StatusChange]:
        return await self.guard.call(lambda: self._inner.history(code))

    async def changes_since(self, seq: int, limit: int = 1000) -> list[StatusChange]:
        return await self.guard.call(lambda: self._inner.changes_since(seq, limit))

    async def last_change(self) -> int:
        return await self.guard.call(self._inner.last_change)

    async def find_by_holder(self, holder_key: bytes, type: str) -> list[ProofStatus]:
        return await self.guard.call(lambda: self._inner.find_by_holder(holder_key, type))

    async def idempotent_result(self, client_id: str, key: str) -> IdempotentResult | None:
        return await self.guard.call(lambda: self._inner.idempotent_result(client_id, key))

    async def add_consent(self, consent: Consent) -> None:
        await self.guard.call(lambda: self._inner.add_consent(consent), write=True)

    async def use_consent(self, consent_id: str, now: float) -> Consent:
        return await self.guard.call(lambda: self._inner.use_consent(consent_id, now), write=True)

    async def consents_of(self, holder_key: bytes) -> list[Consent]:
        return await self.guard.call(lambda: self._inner.consents_of(holder_key))

    async def revoke_consent(self, consent_id: str, holder_key: bytes, now: float) -> None:
        await self.guard.call(
            lambda: self._inner.revoke_consent(consent_id, holder_key, now), write=True
        )

    async def proofs_of_holder(self, holder_key: bytes) -> list[ProofStatus]:
        return await self.guard.call(lambda: self._inner.proofs_of_holder(holder_key))

    async def status_slot(self, code: str) -> int:
        return await self.guard.call(lambda: self._inner.status_slot(code), write=True)

    async def slots_since(self, index: int, limit: int = 10_000) -> list[tuple[int, Status]]:
        return await self.guard.call(lambda: self._inner.slots_since(index, limit))

    async def slots_of(self, codes: list[str]) -> dict[str, int]:
        return await self.guard.call(lambda: self._inner.slots_of(codes))

    async def count(self) -> int:
        return await self.guard.call(self._inner.count)

    async def ping(self) -> None:
        await self.guard.call(self._inner.ping)

    @property
    def _book(self) -> RequestBook:
        if not isinstance(self._inner, RequestBook):  # pragma: no cover - both backends are
            raise RegistryUnavailable("this registry keeps no requests")
        return self._inner

    async def create_request(self, request: VerificationRequest, operator: str) -> None:
        await self.guard.call(lambda: self._book.create_request(request, operator), write=True)

    async def change_request(
        self,
        step: Transition,
        deadlines: Deadlines,
        proofs: list[ProofRecord] | None = None,
    ) -> VerificationRequest:
        return await self.guard.call(
            lambda: self._book.change_request(step, deadlines, proofs), write=True
        )

    async def get_request(
        self, request_id: str
    ) -> tuple[VerificationRequest, list[RequestEvent]] | None:
        return await self.guard.call(lambda: self._book.get_request(request_id))

    async def list_requests(self, query: RequestQuery) -> list[VerificationRequest]:
        return await self.guard.call(lambda: self._book.list_requests(query))

    async def overdue_unannounced(self, now: float, limit: int) -> list[VerificationRequest]:
        return await self.guard.call(lambda: self._book.overdue_unannounced(now, limit))

    async def mark_announced(self, request_id: str, at: float) -> None:
        await self.guard.call(lambda: self._book.mark_announced(request_id, at), write=True)

    async def count_overdue(self, now: float) -> int:
        return await self.guard.call(lambda: self._book.count_overdue(now))

    @property
    def corruption(self) -> str | None:
        # The base class answers None; the backend behind the guard knows.
        return self._inner.corruption

    async def close(self) -> None:
        await self._inner.close()


class BoundedDirectory:
    """The directory reads the serving path makes, off the event loop and guarded.

    The blocking :class:`Directory` waits on a stopped server without end (PostgreSQL's
    statement_timeout is the server's to enforce); the request is answered while its
    thread is left to finish. So the reads run on one thread of their own (the PostgreSQL
    directory serialises its calls on one connection anyway): a hang holds that thread,
    never the loop's shared pool, which the rest of the worker needs meanwhile.
    """

    def __init__(
        self, directory: Directory, *, call_bound: float = DEFAULT_REQUEST_DEADLINE
    ) -> None:
        self._directory = directory
        self._thread = concurrent.futures.ThreadPoolExecutor(1, "sealgate-directory")
        self.guard = DependencyGuard(
            "the directory", DirectoryUnavailable, DirectoryUnavailable, call_bound=call_bound
        )

    async def client_by_token(self, token: str) -> Client | None:
        loop = asyncio.get_running_loop()
        return await self.guard.call(
            lambda: loop.run_in_executor(self._thread, self._directory.client_by_token, token)
        )

    async def call(self, work: Callable[[Directory], T], *, write: bool = False) -> T:
        """``work`` on the directory (the admin's reads and changes), on the same thread
        and behind the same guard as the token reads; a ``write`` is waited for (its
        intent is audited: the answer says whether it was made)."""
        loop = asyncio.get_running_loop()
        return await self.guard.call(
            lambda: loop.run_in_executor(self._thread, work, self._directory), write=write
        )

    def close(self) -> None:
        """Stop taking reads; a read stuck on a hung server is not waited for."""
        self._thread.shutdown(wait=False, cancel_futures=True)


# The worker's guards (registry, directory), for readiness.
GUARDS = web.AppKey("dependency_guards", tuple)


def breakers_check(app: web.Application) -> str:
    """``/readyz`` ``checks.breakers``: which dependencies are being failed fast. Reported,
    not made a cause of unreadiness here: the registry's own check already says so, and
    verification keeps answering from copies through a directory outage."""
    guards: tuple[DependencyGuard, ...] = app[GUARDS]
    open_ = [g.name for g in guards if not g.available]
    return "closed" if not open_ else f"open: {', '.join(open_)} (failing fast)"
