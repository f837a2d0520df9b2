"""Overdue requests: counted for ``/metrics`` and announced to the city's webhook.

Each worker watches (every :data:`WATCH_SECONDS`): it counts the accepted requests past
due, and, when the city configured ``[requests] overdue_webhook``, POSTs each one whose
lateness no delivery has yet had acknowledged. A delivery is signed as change notices
are (:mod:`sealgate.gateway.webhooks`: Standard Webhooks, the secret the home's
``webhook-key`` itself) and is marked announced in the registry only after a 2xx:
**at least once**. A failed delivery is retried with :data:`OVERDUE_RETRIES`'s backoff
(1 s doubling to 300 s, never given up); the backoff is the worker's own memory, so a
restart, or a second worker or instance, may deliver again. Receivers deduplicate by
``webhook-id`` (the request's id).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from sealgate.errors import Error
from sealgate.gateway.instants import rfc3339
from sealgate.gateway.webhooks import RetryPolicy, signed_headers
from sealgate.verify.requests import RequestBook, VerificationRequest

log = logging.getLogger("sealgate.gateway")

WATCH_SECONDS = 5.0
OVERDUE_RETRIES = RetryPolicy(first=1.0, longest=300.0)
DELIVERY_TIMEOUT = 5.0
BATCH = 100


def announcement(r: VerificationRequest) -> bytes:
    """What a delivery says of a late request: no holder, no staff."""
    return json.dumps(
        {
            "event": "request.overdue",
            "id": r.request_id,
            "mode": r.mode.value,
            "tier": r.tier.value,
            "requester": {"unit_name": r.requester_unit, "unit_code": r.requester_office},
            "responder": {"unit_name": r.responder_unit, "unit_code": r.responder_office},
            "case_ref": r.case_ref,
            "registered_at": rfc3339(r.registered_at),
            "due_at": rfc3339(r.due_at),
        },
        ensure_ascii=False,
        sort_keys=True,
    ).encode()


@dataclass(slots=True)
class _Backoff:
    next_at: float
    failures: int


class OverdueWatch:
    def __init__(
        self,
        book: RequestBook,
        clock: Callable[[], float],
        *,
        webhook: str | None = None,
        key: bytes = b"",
    ) -> None:
        self._book = book
        self._clock = clock
        self._webhook = webhook
        self._key = key
        self._backoff: dict[str, _Backoff] = {}
        self._session: aiohttp.ClientSession | None = None
        self.overdue = 0  # as last counted

    async def count(self) -> int:
        self.overdue = await self._book.count_overdue(self._clock())
        return self.overdue

    async def announce(self) -> int:
        """Deliver each unannounced overdue request whose backoff has passed; returns
        how many were acknowledged."""
        if self._webhook is None:
            return 0
        now = self._clock()
        acknowledged = 0
        for late in await self._book.overdue_unannounced(now, BATCH):
            backoff = self._backoff.get(late.request_id)
            if backoff is not None and backoff.next_at > now:
                continue
            if await self._deliver(late, now):
                await self._book.mark_announced(late.request_id, now)
                self._backoff.pop(late.request_id, None)
                acknowledged += 1
            else:
                failures = 1 if backoff is None else backoff.failures + 1
                wait = OVERDUE_RETRIES.wait(failures)
                self._backoff[late.request_id] = _Backoff(now + wait, failures)
        return acknowledged

    async def _deliver(self, late: VerificationRequest, now: float) -> bool:
        assert self._webhook is not None
        body = announcement(late)
        # the receiver's replay window is judged by wall-clock time, whatever ``now`` is
        headers = signed_headers(self._key, late.request_id, int(time.time()), body)
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=DELIVERY_TIMEOUT)
            )
        try:
            async with self._session.post(self._webhook, data=body, headers=headers) as answer:
                if 200 <= answer.status < 300:
                    return True
                log.warning("overdue webhook answered %s for %s", answer.status, late.request_id)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("overdue webhook unreachable (%s)", type(exc).__name__)
        return False

    async def run(self) -> None:
        """Count and announce every :data:`WATCH_SECONDS` until cancelled."""
        while True:
            try:
                await self.count()
                await self.announce()
            except Error as exc:  # the registry away: the next round tries again
                log.warning("overdue requests not watched this round (%s)", type(exc).__name__)
            except Exception:
                log.exception("watching overdue requests failed; trying again")
            await asyncio.sleep(WATCH_SECONDS)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
