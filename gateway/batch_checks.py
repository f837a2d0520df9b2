"""``POST /v1/verify/batch``: up to 100 codes checked for one purpose, each on its own.

Each item goes the way ``GET /v1/verify/{code}`` goes (the caches, the failed-lookup
limits and their 10 ms floor), so a batch is no way around a limit: every code not found
is one failed lookup, and once the client's budget is spent the remaining items are 429.
The items are looked up concurrently, and the answer keeps the request's order.

An item may carry ``holder_id``: "is this proof the holder's in front of me?" answered
``holder_match: true|false`` by comparing the keyed hash of the identity number with the
one the registry keeps: the number itself is neither returned, stored, nor logged. A
mismatch counts as a failed lookup: a client holding a code must not be able to find its
holder's number by trying candidates.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable
from typing import Any

from sealgate.gateway.checking import StatusChecker
from sealgate.gateway.problems import Problem, unknown_code
from sealgate.gateway.requests import CodeCheck
from sealgate.gateway.throttle import (
    FailedLookupLimiter,
    Throttled,
    limited_lookup,
    too_many_failed_lookups,
)
from sealgate.verify.directory import Client
from sealgate.verify.holders import HolderKeys
from sealgate.verify.registry import ProofStatus, Registry


class BatchChecker:
    def __init__(
        self,
        *,
        checker: StatusChecker,
        registry: Registry,
        holder_keys: HolderKeys,
        limiter: FailedLookupLimiter,
        clock: Callable[[], float],
    ) -> None:
        self._checker = checker
        self._registry = registry
        self._holder_keys = holder_keys
        self._limiter = limiter
        self._clock = clock

    async def check(
        self, client: Client, checks: list[CodeCheck], *, chinese: bool = False
    ) -> list[dict[str, Any]]:
        """Each check's answer, in order: the status view (with ``holder_match`` when a
        holder was given), or ``{"problem": …}``. The typed text is not echoed: it may
        be anything, an identity number among the likeliest."""
        answers = (self._one(client, check, chinese) for check in checks)
        return list(await asyncio.gather(*answers))

    async def _one(self, client: Client, check: CodeCheck, chinese: bool) -> dict[str, Any]:
        checker = self._checker
        try:
            status, as_of = await limited_lookup(
                self._limiter,
                client.client_id,
                lambda: checker.found(check.code),
                limit=client.lookup_limit,
            )
            view = checker.view(status, self._clock(), as_of, chinese=chinese)
            if check.holder is not None:
                view["holder_match"] = await self._holder_matches(client, status, check)
        except Problem as problem:
            return {"problem": problem.as_dict(chinese=chinese)}
        return view

    async def _holder_matches(self, client: Client, status: ProofStatus, check: CodeCheck) -> bool:
        holder = check.holder
        assert holder is not None
        record = await self._registry.get(status.code)
        if record is None:  # gone since the status was read: as for any unknown code
            raise unknown_code()
        key = self._holder_keys.key(holder.kind, holder.holder_id)
        if record.holder_kind == holder.kind.value and hmac.compare_digest(record.holder_key, key):
            return True
        try:
            await self._limiter.failed_everywhere(client.client_id, client.lookup_limit)
        except Throttled as exc:
            raise too_many_failed_lookups(exc) from None
        return False
