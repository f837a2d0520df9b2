"""Subscriptions to change notices over HTTP (docs/design.md §18): who may subscribe to
what, the body's parsing, the views, and the registry's calls behind the breaker.

- A **verifier** subscribes to ``status.changed`` for codes it names, under one of its
  purposes. Subscribing is a check of each code (the way ``GET /v1/verify/{code}`` goes:
  the failed-lookup limits, their floor): an unknown code refuses the whole subscription
  and counts as a failed lookup, so subscribing is no way to learn which codes exist.
- A **requester** subscribes to ``request.answered`` and ``request.overdue`` for its
  office's requests.

A client sees, reads and deletes only its own: another client's subscription is not
found, whatever its id.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sealgate.gateway.auth import require_purpose
from sealgate.gateway.bounded import BoundedRegistry
from sealgate.gateway.checking import StatusChecker
from sealgate.gateway.instants import rfc3339
from sealgate.gateway.problems import Problem, invalid
from sealgate.gateway.requests import MAX_PURPOSE, InvalidRequest
from sealgate.gateway.sealing import format_code
from sealgate.gateway.throttle import FailedLookupLimiter, limited_lookup
from sealgate.gateway.webhooks import (
    MAX_URL,
    TargetRefused,
    TargetRules,
    check_target,
    secret_text,
    subscription_secret,
)
from sealgate.verify.directory import Client, Role
from sealgate.verify.notices import (
    REQUEST_EVENTS,
    Backlog,
    Claimed,
    Delivery,
    Event,
    NoticeBook,
    Outcome,
    Subscription,
    SubscriptionNotFound,
)

MAX_SUBSCRIBED_CODES = 100  # codes in one subscription (a batch check's worth)
MAX_DELIVERIES = 500  # listed at once


@dataclass(frozen=True, slots=True)
class NewSubscription:
    url: str
    events: tuple[Event, ...]
    codes: tuple[str, ...]  # as typed
    purpose: str | None


def parse_subscription(body: Any) -> NewSubscription:
    """The body of ``POST /v1/subscriptions``: strict, unknown fields refused."""
    if not isinstance(body, dict):
        raise InvalidRequest("", "the body must be a JSON object")
    for key in body:
        if key not in ("url", "events", "codes", "purpose"):
            raise InvalidRequest(key, "is not a known field")
    url = body.get("url")
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        raise InvalidRequest("url", f"is required: an https:// URL of at most {MAX_URL}")
    events = body.get("events")
    if not isinstance(events, list) or not events:
        raise InvalidRequest("events", f"a list of events: {', '.join(e.value for e in Event)}")
    parsed: list[Event] = []
    for n, event in enumerate(events):
        try:
            parsed.append(Event(event))
        except (ValueError, TypeError):
            raise InvalidRequest(f"events[{n}]", "is not a known event") from None
    if len(set(parsed)) != len(parsed):
        raise InvalidRequest("events", "names an event twice")
    codes = body.get("codes", [])
    if not isinstance(codes, list) or len(codes) > MAX_SUBSCRIBED_CODES:
        raise InvalidRequest("codes", f"a list of at most {MAX_SUBSCRIBED_CODES} codes")
    for n, code in enumerate(codes):
        if not isinstance(code, str) or not 0 < len(code) <= 64:
            raise InvalidRequest(f"codes[{n}]", "must be a verification code")
    purpose = body.get("purpose")
    if purpose is not None and (
        not isinstance(purpose, str) or not 0 < len(purpose) <= MAX_PURPOSE
    ):
        raise InvalidRequest("purpose", f"a purpose of at most {MAX_PURPOSE} characters")
    return NewSubscription(url, tuple(parsed), tuple(codes), purpose)


def subscription_view(s: Subscription) -> dict[str, Any]:
    return {
        "id": s.subscription_id,
        "url": s.url,
        "events": [e.value for e in s.events],
        "codes": [format_code(c) for c in s.codes],
        "purpose": s.purpose,
        "created_at": rfc3339(s.created_at),
    }


def delivery_view(d: Delivery) -> dict[str, Any]:
    def instant(value: float | None) -> str | None:
        return None if value is None else rfc3339(value)

    return {
        "event_id": d.event_id,
        "type": d.event.value,
        "occurred_at": rfc3339(d.occurred_at),
        "state": d.state.value,
        "attempts": d.attempts,
        "last_attempt_at": instant(d.last_attempt_at),
        "last_status": d.last_status,
        "last_error": d.last_error,
        "next_attempt_at": instant(d.next_attempt_at),
    }


def unknown_subscription() -> Problem:
    return Problem(404, "unknown-subscription", "This client has no such subscription")


class BoundedNotices(NoticeBook):
    """The registry's :class:`NoticeBook` behind its breaker and the request's deadline."""

    def __init__(self, registry: BoundedRegistry) -> None:
        inner = registry.inner
        if not isinstance(inner, NoticeBook):  # pragma: no cover - both backends are
            raise TypeError("this registry keeps no notices")
        self._inner: NoticeBook = inner
        self._guard = registry.guard

    async def add_subscription(self, subscription: Subscription) -> Subscription:
        return await self._guard.call(
            lambda: self._inner.add_subscription(subscription), write=True
        )

    async def subscription(self, subscription_id: str, client_id: str) -> Subscription:
        return await self._guard.call(lambda: self._inner.subscription(subscription_id, client_id))

    async def subscriptions_of(self, client_id: str) -> list[Subscription]:
        return await self._guard.call(lambda: self._inner.subscriptions_of(client_id))

    async def delete_subscription(self, subscription_id: str, client_id: str, at: float) -> None:
        await self._guard.call(
            lambda: self._inner.delete_subscription(subscription_id, client_id, at), write=True
        )

    async def deliveries(self, subscription_id: str, client_id: str, limit: int) -> list[Delivery]:
        return await self._guard.call(
            lambda: self._inner.deliveries(subscription_id, client_id, limit)
        )

    async def fan_out(self, now: float, limit: int = 1000) -> int:
        return await self._guard.call(lambda: self._inner.fan_out(now, limit), write=True)

    async def claim(self, owner: str, now: float, lease: float, limit: int) -> list[Claimed]:
        return await self._guard.call(
            lambda: self._inner.claim(owner, now, lease, limit), write=True
        )

    async def settle(self, owner: str, outcomes: list[Outcome]) -> None:
        await self._guard.call(lambda: self._inner.settle(owner, outcomes), write=True)

    async def prune(self, before: float, limit: int) -> int:
        return await self._guard.call(lambda: self._inner.prune(before, limit), write=True)

    async def backlog(self) -> Backlog:
        return await self._guard.call(self._inner.backlog)


class SubscriptionDesk:
    def __init__(
        self,
        *,
        book: NoticeBook,
        checker: StatusChecker,
        limiter: FailedLookupLimiter,
        rules: TargetRules,
        key: bytes,
        clock: Callable[[], float],
    ) -> None:
        self._book = book
        self._checker = checker
        self._limiter = limiter
        self._rules = rules
        self._key = key
        self._clock = clock

    async def prepare(self, client: Client, body: NewSubscription) -> Subscription:
        """The subscription ``body`` asks for, every rule checked (the codes under the
        lookup limits); nothing is stored yet."""
        if client.role is Role.VERIFIER:
            if body.events != (Event.STATUS_CHANGED,):
                raise invalid("events", "a verifier subscribes to status.changed")
            if not body.codes:
                raise invalid("codes", "name the codes to be told of")
            if body.purpose is None:
                raise invalid("purpose", "is required: the purpose the codes are checked for")
            require_purpose(client, body.purpose)
            codes = tuple(dict.fromkeys([await self._checked(client, c) for c in body.codes]))
            office, purpose = None, body.purpose
        else:
            if not set(body.events) <= REQUEST_EVENTS:
                raise invalid("events", "a requester subscribes to request events")
            if body.codes or body.purpose is not None:
                raise invalid("codes", "a requester's notices are of its office's requests")
            if client.office is None:
                raise Problem(403, "no-office", "This client belongs to no office")
            codes, office, purpose = (), client.office, None
        try:
            await check_target(self._rules, body.url)
        except TargetRefused as exc:
            raise invalid("url", str(exc)) from None
        return Subscription(
            subscription_id="sub_" + secrets.token_urlsafe(16),
            client_id=client.client_id,
            url=body.url,
            events=body.events,
            codes=codes,
            purpose=purpose,
            office=office,
            created_at=self._clock(),
        )

    async def _checked(self, client: Client, code: str) -> str:
        checker = self._checker

        async def lookup() -> str:
            return (await checker.status(code)).code

        return await limited_lookup(
            self._limiter, client.client_id, lookup, limit=client.lookup_limit
        )

    async def add(self, subscription: Subscription) -> dict[str, Any]:
        """Store it; its view with the secret, shown this once."""
        stored = await self._book.add_subscription(subscription)
        secret = subscription_secret(self._key, stored.subscription_id)
        return {**subscription_view(stored), "secret": secret_text(secret)}

    async def listing(self, client: Client) -> list[dict[str, Any]]:
        return [subscription_view(s) for s in await self._book.subscriptions_of(client.client_id)]

    async def read(self, client: Client, subscription_id: str) -> dict[str, Any]:
        try:
            found = await self._book.subscription(subscription_id, client.client_id)
        except SubscriptionNotFound:
            raise unknown_subscription() from None
        return subscription_view(found)

    async def delete(self, client: Client, subscription_id: str) -> None:
        try:
            await self._book.delete_subscription(subscription_id, client.client_id, self._clock())
        except SubscriptionNotFound:
            raise unknown_subscription() from None

    async def deliveries(
        self, client: Client, subscription_id: str, limit: int
    ) -> list[dict[str, Any]]:
        try:
            found = await self._book.deliveries(subscription_id, client.client_id, limit)
        except SubscriptionNotFound:
            raise unknown_subscription() from None
        return [delivery_view(d) for d in found]
