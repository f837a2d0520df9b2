"""Change notices' subscriptions as the client makes and reads them (docs/design.md §18),
and their operations, in the manner of :mod:`sealgate.client.calls`.

A notice arrives at the subscriber's URL signed the Standard Webhooks way; check it
with that project's library and the subscription's ``secret`` (``whsec_…``, given once,
by :meth:`Client.subscribe`), and deduplicate by ``webhook-id``: delivery is at least
once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from sealgate.client.calls import Call, json_of
from sealgate.client.codes import normalise_code
from sealgate.client.errors import UnexpectedAnswer
from sealgate.client.fields import Fields

EVENTS = ("status.changed", "request.answered", "request.overdue")


@dataclass(frozen=True, slots=True)
class Subscription:
    subscription_id: str
    url: str
    events: tuple[str, ...]
    codes: tuple[str, ...]
    purpose: str | None
    created_at: dt.datetime
    secret: str | None = field(default=None, repr=False)  # only from subscribe()

    @classmethod
    def read(cls, f: Fields) -> Subscription:
        return cls(
            subscription_id=f.text("id"),
            url=f.text("url"),
            events=tuple(f.texts("events")),
            codes=tuple(f.texts("codes")),
            purpose=f.maybe_text("purpose"),
            created_at=f.time("created_at"),
            secret=f.maybe_text("secret"),
        )


@dataclass(frozen=True, slots=True)
class Delivery:
    """One notice owed to a subscription: ``state`` pending, delivered, failed (given up
    after a day) or dropped (the subscription was deleted first)."""

    event_id: str
    type: str
    occurred_at: dt.datetime
    state: str
    attempts: int
    last_attempt_at: dt.datetime | None
    last_status: int | None
    last_error: str | None
    next_attempt_at: dt.datetime | None

    @classmethod
    def read(cls, f: Fields) -> Delivery:
        return cls(
            event_id=f.text("event_id"),
            type=f.text("type"),
            occurred_at=f.time("occurred_at"),
            state=f.text("state"),
            attempts=f.number("attempts"),
            last_attempt_at=f.maybe_time("last_attempt_at"),
            last_status=f.maybe_number("last_status"),
            last_error=f.maybe_text("last_error"),
            next_attempt_at=f.maybe_time("next_attempt_at"),
        )


def _path(subscription_id: str, tail: str = "") -> str:
    return f"/v1/subscriptions/{quote(subscription_id, safe='')}{tail}"


def subscribe(
    url: str, events: Iterable[str], codes: Iterable[str], purpose: str | None
) -> Call[Subscription]:
    """Every code checked here first, so a typo sends nothing (and spends none of the
    failed-lookup budget a subscription's codes are checked against)."""
    body: dict[str, Any] = {"url": url, "events": list(events)}
    checked = [normalise_code(code) for code in codes]
    if checked:
        body["codes"] = checked
    if purpose is not None:
        body["purpose"] = purpose

    def read(response: Any) -> Subscription:
        made = Subscription.read(Fields(json_of(response), "subscription"))
        if made.secret is None:
            raise UnexpectedAnswer("subscription: made without its secret")
        return made

    # Not replayable: a repeat would make a second subscription.
    return Call("POST", "/v1/subscriptions", read, json=body, replayable=False, answers=(201,))


def subscriptions() -> Call[list[Subscription]]:
    return Call(
        "GET",
        "/v1/subscriptions",
        lambda r: [
            Subscription.read(i) for i in Fields(json_of(r), "subscriptions").items("items")
        ],
    )


def subscription(subscription_id: str) -> Call[Subscription]:
    return Call(
        "GET",
        _path(subscription_id),
        lambda r: Subscription.read(Fields(json_of(r), "subscription")),
    )


def unsubscribe(subscription_id: str) -> Call[None]:
    # Not replayable: a repeat of a deletion made is 404 unknown-subscription.
    return Call("DELETE", _path(subscription_id), lambda r: None, replayable=False, answers=(204,))


def deliveries(subscription_id: str, limit: int | None) -> Call[list[Delivery]]:
    return Call(
        "GET",
        _path(subscription_id, "/deliveries"),
        lambda r: [Delivery.read(i) for i in Fields(json_of(r), "deliveries").items("items")],
        params=None if limit is None else {"limit": str(limit)},
    )
