"""Change notices (docs/design.md §18): subscriptions, and the deliveries owed to them.

A subscription names a client, the URL its notices go to and the events it wants:
``status.changed`` for the codes it names (a verifier's, each checked when it subscribed),
``request.answered`` and ``request.overdue`` for its office's requests (a requester's).

The registry keeps subscriptions, an outbox of deliveries and the cursors of the feeds
that fill it, so nothing lives only in a gateway's memory. :meth:`NoticeBook.fan_out`
reads the feeds past their cursors (the status-change log, the requests' events, the
requests past due) and writes a delivery per subscription and event, in one transaction
with the cursors' advance: a gateway killed at any moment loses no event and makes no
second delivery row (``(subscription_id, event_id)`` is unique, and each event's id is
stable: ``status-<seq>``, ``request-<seq>``, ``overdue-<request id>-<due>``). Deliveries
are then *claimed* for a while by one process (:meth:`NoticeBook.claim`), so several
workers and instances share the work instead of each sending everything; a claim that
lapses (its process died) is taken by the next. Delivery is at least once: a sender
killed after the receiver's 2xx and before :meth:`NoticeBook.settle` sends again, with
the same event id.
"""

from __future__ import annotations

import enum
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from sealgate.verify.registry import RegistryError


class NoticeError(RegistryError):
    """Base of the notices' refusals."""


class SubscriptionNotFound(NoticeError):
    """No subscription of that id for that client."""


class Event(enum.StrEnum):
    STATUS_CHANGED = "status.changed"  # a proof's status changed (质押, 吊销, …)
    REQUEST_ANSWERED = "request.answered"  # a request answered or returned
    REQUEST_OVERDUE = "request.overdue"  # a request still accepted past its due time


REQUEST_EVENTS = frozenset({Event.REQUEST_ANSWERED, Event.REQUEST_OVERDUE})


class DeliveryState(enum.StrEnum):
    PENDING = "pending"  # waiting for its next attempt
    DELIVERED = "delivered"  # a 2xx came back
    FAILED = "failed"  # given up: no 2xx within the retry span
    DROPPED = "dropped"  # its subscription was deleted first


@dataclass(frozen=True, slots=True)
class Subscription:
    subscription_id: str
    client_id: str
    url: str
    events: tuple[Event, ...]
    codes: tuple[str, ...]  # compact codes, for status.changed
    purpose: str | None  # the purpose the codes were checked under
    office: str | None  # the requesting office, for request events
    created_at: float
    # Feed positions when it was made: only what happens after it is delivered.
    status_from: int = 0
    requests_from: int = 0

    def wants(self, event: Event) -> bool:
        return event in self.events


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event owed to one subscription, with where its attempts stand."""

    seq: int
    subscription_id: str
    event_id: str
    event: Event
    occurred_at: float
    data: dict[str, Any]  # the event's facts, as fan-out found them (never a holder)
    created_at: float
    state: DeliveryState
    attempts: int
    next_attempt_at: float | None
    last_attempt_at: float | None
    last_status: int | None  # the receiver's HTTP status, if it answered
    last_error: str | None  # why not, if it did not (a class of error, never a body)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery claimed for sending, with where it goes."""

    delivery: Delivery
    url: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an attempt came to: delivered, or when to try again (None: given up)."""

    seq: int
    at: float
    delivered: bool
    status: int | None
    error: str | None
    next_attempt_at: float | None


@dataclass(frozen=True, slots=True)
class Backlog:
    """The deliveries still owed (pending): how many, and since when the oldest was
    (its fan-out's instant; None: nothing is owed)."""

    pending: int
    oldest: float | None


def encode_events(events: tuple[Event, ...]) -> str:
    """Stored as ``,a,b,``: a statement finds an event with ``LIKE '%,a,%'``."""
    return "," + ",".join(e.value for e in events) + ","


def decode_events(text: str) -> tuple[Event, ...]:
    return tuple(Event(e) for e in text.strip(",").split(",") if e)


def encode_data(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def status_event_id(seq: int) -> str:
    return f"status-{seq}"


def request_event_id(seq: int) -> str:
    return f"request-{seq}"


def overdue_event_id(request_id: str, due_at: float) -> str:
    # A request extended or reclassified and late again is a new event.
    return f"overdue-{request_id}-{int(due_at)}"


class NoticeBook(ABC):
    """Where subscriptions and their deliveries are kept: the registry's store. Every
    write is durable on return."""

    @abstractmethod
    async def add_subscription(self, subscription: Subscription) -> Subscription:
        """Store a new subscription; returns it with the feed positions it starts after."""

    @abstractmethod
    async def subscription(self, subscription_id: str, client_id: str) -> Subscription:
        """The client's subscription; :class:`SubscriptionNotFound` if it has none such
        (another client's is not found either)."""

    @abstractmethod
    async def subscriptions_of(self, client_id: str) -> list[Subscription]:
        """The client's subscriptions in force, oldest first."""

    @abstractmethod
    async def delete_subscription(self, subscription_id: str, client_id: str, at: float) -> None:
        """End a subscription; its pending deliveries are dropped. Raises
        :class:`SubscriptionNotFound`."""

    @abstractmethod
    async def deliveries(self, subscription_id: str, client_id: str, limit: int) -> list[Delivery]:
        """The subscription's deliveries, newest first. Raises :class:`SubscriptionNotFound`."""

    @abstractmethod
    async def fan_out(self, now: float, limit: int = 1000) -> int:
        """Turn what the feeds hold past their cursors into deliveries, and advance the
        cursors, in one transaction; returns how many deliveries were written."""

    @abstractmethod
    async def claim(self, owner: str, now: float, lease: float, limit: int) -> list[Claimed]:
        """Claim up to ``limit`` deliveries due by ``now`` for ``owner`` until
        ``now + lease``: no other owner takes them meanwhile."""

    @abstractmethod
    async def settle(self, owner: str, outcomes: list[Outcome]) -> None:
        """Record the outcomes of attempts and release the claims (an outcome whose claim
        lapsed and was taken by another owner is still recorded: it happened)."""

    @abstractmethod
    async def prune(self, before: float, limit: int) -> int:
        """Delete up to ``limit`` deliveries settled (delivered, given up, dropped) that
        were owed before ``before``, in one short transaction, and then the subscriptions
        deleted before it that have none left; returns how many deliveries went. A
        pending delivery is never deleted, however old."""

    @abstractmethod
    async def backlog(self) -> Backlog:
        """What is owed now (one indexed read)."""
