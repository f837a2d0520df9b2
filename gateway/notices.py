"""Change notices delivered (docs/design.md §18): each worker's courier.

Every :data:`ROUND_SECONDS` a worker's courier has the registry turn the feeds into
deliveries (:meth:`~sealgate.verify.notices.NoticeBook.fan_out`), claims what is due
(for :data:`CLAIM_LEASE` seconds, so workers and instances share the work), POSTs each,
signed the Standard Webhooks way (:mod:`sealgate.gateway.webhooks`), and records the
outcomes: delivered on a 2xx, else tried again with :data:`NOTICE_RETRIES`'s backoff for
a day and then given up. All of it lives in the registry, so a worker killed anywhere in
a round loses nothing: what it claimed is claimed by another once the lease lapses.

A round also keeps the outbox's upkeep, each on its own clock: every
:data:`BACKLOG_SECONDS` it reads what is owed (for ``/metrics``: one indexed read per
worker, whatever the scrapes), and every :data:`PRUNE_SECONDS` it deletes the settled
deliveries owed more than the retention ago (``[notices] retention_days``), a
:data:`PRUNE_BATCH` per transaction so SQLite's one writer is never held for long.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from sealgate.errors import Error
from sealgate.gateway.instants import rfc3339
from sealgate.gateway.sealing import format_code
from sealgate.gateway.webhooks import (
    NOTICE_RETRIES,
    RetryPolicy,
    TargetRefused,
    TargetResolver,
    TargetRules,
    signed_headers,
    subscription_secret,
)
from sealgate.verify.notices import (
    Backlog,
    Claimed,
    Delivery,
    DeliveryState,
    Event,
    NoticeBook,
    Outcome,
)

log = logging.getLogger("sealgate.gateway")

ROUND_SECONDS = 1.0
CLAIM_LEASE = 30.0  # > DELIVERY_TIMEOUT and a round's registry writes
CLAIM_BATCH = 50
DELIVERY_TIMEOUT = 10.0
DAY = 86400.0
PRUNE_SECONDS = 3600.0  # a worker prunes at most this often
PRUNE_BATCH = 500  # deliveries deleted in one transaction
PRUNE_PAUSE = 0.05  # seconds between batches: other writes go first
BACKLOG_SECONDS = 10.0  # how often a worker reads what is owed
# An attempt's outcome, as /metrics counts it: the settled states and a retry.
RETRY = "retry"
OUTCOMES = (DeliveryState.DELIVERED.value, RETRY, DeliveryState.FAILED.value)


def outcome_label(outcome: Outcome) -> str:
    if outcome.delivered:
        return DeliveryState.DELIVERED.value
    return RETRY if outcome.next_attempt_at is not None else DeliveryState.FAILED.value


def _code(compact: str | None) -> str | None:
    return None if compact is None else format_code(compact)


def notice_data(delivery: Delivery) -> dict[str, Any]:
    """The ``data`` of a notice: the stored facts, codes and instants as answers write
    them. The same bytes on every attempt (the signature's timestamp is the attempt's)."""
    facts = delivery.data
    if delivery.event is Event.STATUS_CHANGED:
        return {
            "code": _code(facts["code"]),
            "from": facts["from"],
            "to": facts["to"],
            "superseded_by": _code(facts["superseded_by"]),
            "changed_at": rfc3339(delivery.occurred_at),
        }
    if delivery.event is Event.REQUEST_ANSWERED:
        return {
            "request": facts["request"],
            "state": facts["state"],
            "answer_code": _code(facts["answer_code"]),
            "at": rfc3339(delivery.occurred_at),
        }
    return {"request": facts["request"], "due_at": rfc3339(delivery.occurred_at)}


def notice_body(delivery: Delivery) -> bytes:
    """A Standard Webhooks payload: ``type``, ``timestamp`` (the event's), ``data``, and
    the event's ``id`` and ``subscription``."""
    payload = {
        "id": delivery.event_id,
        "type": delivery.event.value,
        "timestamp": rfc3339(delivery.occurred_at),
        "subscription": delivery.subscription_id,
        "data": notice_data(delivery),
    }
    return json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()


class NoticeCourier:
    def __init__(
        self,
        book: NoticeBook,
        *,
        key: bytes,
        rules: TargetRules,
        clock: Callable[[], float],
        retention: float,
        policy: RetryPolicy = NOTICE_RETRIES,
    ) -> None:
        self._book = book
        self._key = key
        self._rules = rules
        self._clock = clock
        self._policy = policy
        self._retention = retention
        self._owner = secrets.token_hex(8)  # this worker's claims, none other's
        self._session: aiohttp.ClientSession | None = None
        # What /metrics shows: this worker's attempts by outcome and deliveries pruned,
        # and the backlog as last read (the registry's, the same for every worker).
        self.attempts = dict.fromkeys(OUTCOMES, 0)
        self.pruned = 0
        self.backlog = Backlog(0, None)
        self._backlog_due = 0.0
        self._prune_due = 0.0
        # One round at a time: what a round claimed is the owner's, so a second round of
        # the same owner at once would send it again.
        self._turn = asyncio.Lock()

    async def round(self) -> int:
        """Fan out, claim, deliver and record once, and the upkeep when it is due;
        returns how many were delivered."""
        async with self._turn:
            return await self._round()

    async def _round(self) -> int:
        await self._book.fan_out(self._clock())
        claimed = await self._book.claim(self._owner, self._clock(), CLAIM_LEASE, CLAIM_BATCH)
        delivered = 0
        if claimed:
            outcomes = await asyncio.gather(*(self._attempt(c) for c in claimed))
            await self._book.settle(self._owner, list(outcomes))
            for outcome in outcomes:
                self.attempts[outcome_label(outcome)] += 1
            delivered = sum(o.delivered for o in outcomes)
        await self._upkeep()
        return delivered

    async def _upkeep(self) -> None:
        now = self._clock()
        if now >= self._prune_due:
            await self.prune()
            self._prune_due = now + PRUNE_SECONDS
        if now >= self._backlog_due:
            self.backlog = await self._book.backlog()
            self._backlog_due = now + BACKLOG_SECONDS

    async def prune(self) -> int:
        """Delete the settled deliveries (delivered, given up, dropped) owed more than the
        retention ago, a batch per transaction; returns how many went. What is pending
        stays, however old."""
        before = self._clock() - self._retention
        total = 0
        while True:
            deleted = await self._book.prune(before, PRUNE_BATCH)
            total += deleted
            self.pruned += deleted
            if deleted < PRUNE_BATCH:
                break
            await asyncio.sleep(PRUNE_PAUSE)
        if total:
            log.info("pruned %d change-notice deliveries settled before the retention", total)
        return total

    def oldest_pending_age(self) -> float:
        """Seconds the oldest delivery owed has been owed, as last read (0: none)."""
        oldest = self.backlog.oldest
        return 0.0 if oldest is None else max(0.0, self._clock() - oldest)

    async def _attempt(self, claimed: Claimed) -> Outcome:
        delivery = claimed.delivery
        status: int | None = None
        error: str | None = None
        try:
            self._rules.check_url(claimed.url)  # an address literal: no resolver sees it
            body = notice_body(delivery)
            secret = subscription_secret(self._key, delivery.subscription_id)
            # the attempt's wall-clock time: what the receiver's replay window judges
            headers = signed_headers(secret, delivery.event_id, int(time.time()), body)
            async with self._client().post(
                claimed.url, data=body, headers=headers, allow_redirects=False
            ) as answer:
                status = answer.status
        except TargetRefused:
            error = "TargetRefused"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = type(exc).__name__
        now = self._clock()
        if status is not None and 200 <= status < 300:
            return Outcome(delivery.seq, now, True, status, None, None)
        failures = delivery.attempts + 1
        retry = self._policy.next_attempt(failures, delivery.created_at, now)
        if retry is None:
            log.warning("notice %s given up after %d attempts", delivery.event_id, failures)
        return Outcome(delivery.seq, now, False, status, error, retry)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(resolver=TargetResolver(self._rules)),
                timeout=aiohttp.ClientTimeout(total=DELIVERY_TIMEOUT),
            )
        return self._session

    async def run(self) -> None:
        """A round every :data:`ROUND_SECONDS` until cancelled."""
        while True:
            try:
                while await self.round() == CLAIM_BATCH:
                    pass  # a backlog: the next batch at once
            except Error as exc:  # the registry away: the next round tries again
                log.warning("change notices not delivered this round (%s)", type(exc).__name__)
            except Exception:
                log.exception("delivering change notices failed; trying again")
            await asyncio.sleep(ROUND_SECONDS)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
