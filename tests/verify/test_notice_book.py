"""The notices' contract on both backends (SQLite and a real PostgreSQL): subscriptions
kept per client, fan-out from the feeds into the outbox exactly once per subscription
and event, claims that two claimers never share, attempts recorded."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest

from sealgate.verify.at_rest import DocumentCipher
from sealgate.verify.notices import (
    Backlog,
    DeliveryState,
    Event,
    NoticeBook,
    Outcome,
    Subscription,
    SubscriptionNotFound,
)
from sealgate.verify.registry import Registry, Status, StatusChangeRequest
from sealgate.verify.requests import Action, RequestBook, Transition
from tests.verify.backends import BACKENDS, Backend, open_backend
from tests.verify.test_lifecycle import proof
from tests.verify.test_request_book import DEADLINES, T0, request


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: object) -> Backend:
    return open_backend(request, tmp_path)  # type: ignore[arg-type]


@pytest.fixture
async def registry(backend: Backend) -> AsyncIterator[Registry]:
    opened = backend.registry(DocumentCipher(os.urandom(32)))
    assert isinstance(opened, NoticeBook)
    yield opened
    await opened.close()


def book(registry: Registry) -> NoticeBook:
    assert isinstance(registry, NoticeBook)
    return registry


def subscription(sid: str, client: str = "C-bank", **fields: object) -> Subscription:
    base: dict[str, object] = {
        "subscription_id": sid,
        "client_id": client,
        "url": "https://bank.example/hook",
        "events": (Event.STATUS_CHANGED,),
        "codes": ("A", "B"),
        "purpose": "loan",
        "office": None,
        "created_at": T0,
    }
    return Subscription(**{**base, **fields})  # type: ignore[arg-type]


async def change(registry: Registry, code: str, status: Status, at: float = T0 + 1) -> None:
    await registry.change_status(
        StatusChangeRequest(code, "O", status, "质押", None, "C-issuer", at)
    )


async def test_a_subscription_is_its_clients_alone(registry: Registry) -> None:
    notices = book(registry)
    made = await notices.add_subscription(subscription("S-1"))
    assert made.codes == ("A", "B") and made.events == (Event.STATUS_CHANGED,)
    assert [s.subscription_id for s in await notices.subscriptions_of("C-bank")] == ["S-1"]
    assert await notices.subscriptions_of("C-other") == []
    with pytest.raises(SubscriptionNotFound):
        await notices.subscription("S-1", "C-other")
    with pytest.raises(SubscriptionNotFound):
        await notices.delete_subscription("S-1", "C-other", T0)
    with pytest.raises(SubscriptionNotFound):
        await notices.deliveries("S-1", "C-other", 10)
    await notices.delete_subscription("S-1", "C-bank", T0)
    assert await notices.subscriptions_of("C-bank") == []
    with pytest.raises(SubscriptionNotFound):
        await notices.delete_subscription("S-1", "C-bank", T0)


async def test_each_change_is_owed_once_to_each_subscription_that_names_its_code(
    registry: Registry,
) -> None:
    notices = book(registry)
    await registry.register([proof("A"), proof("B"), proof("C")])
    await change(registry, "A", Status.PLEDGED)  # before any subscription: nobody's
    await notices.add_subscription(subscription("S-1"))
    await notices.add_subscription(subscription("S-2", "C-other", codes=("B",)))
    await change(registry, "A", Status.VALID)
    await change(registry, "B", Status.REVOKED)
    await change(registry, "C", Status.REVOKED)  # named by no one
    # Fan-out passes from several places at once write each delivery once.
    written = await asyncio.gather(*(notices.fan_out(T0 + 2) for _ in range(4)))
    assert sum(written) == 3
    assert await notices.fan_out(T0 + 3) == 0
    owed = await notices.deliveries("S-1", "C-bank", 10)
    assert [(d.event, d.data["code"], d.data["to"]) for d in owed] == [
        (Event.STATUS_CHANGED, "B", "revoked"),
        (Event.STATUS_CHANGED, "A", "valid"),
    ]
    assert all(d.state is DeliveryState.PENDING and d.attempts == 0 for d in owed)
    assert "reason" not in owed[0].data  # an issuer's free text is not sent on
    other = await notices.deliveries("S-2", "C-other", 10)
    assert [d.data["code"] for d in other] == ["B"]
    assert other[0].event_id == owed[0].event_id  # one event, one id, whoever it goes to


async def test_claims_are_shared_out_and_outcomes_recorded(registry: Registry) -> None:
    notices = book(registry)
    await registry.register([proof(code) for code in "ABCDEF"])
    await notices.add_subscription(subscription("S-1", codes=tuple("ABCDEF")))
    for code in "ABCDEF":
        await change(registry, code, Status.PLEDGED)
    await notices.fan_out(T0 + 2)
    first, second = await asyncio.gather(
        notices.claim("worker-1", T0 + 2, 30, 4), notices.claim("worker-2", T0 + 2, 30, 4)
    )
    one = {c.delivery.seq for c in first}
    two = {c.delivery.seq for c in second}
    assert len(one | two) == 6 and not one & two  # all claimed, none twice
    assert {c.url for c in first} == {"https://bank.example/hook"}
    assert await notices.claim("worker-3", T0 + 3, 30, 10) == []  # claimed meanwhile
    claimed = sorted(first, key=lambda c: c.delivery.seq)
    await notices.settle(
        "worker-1",
        [
            Outcome(claimed[0].delivery.seq, T0 + 3, True, 204, None, None),
            Outcome(claimed[1].delivery.seq, T0 + 3, False, 500, None, T0 + 10),
            Outcome(claimed[2].delivery.seq, T0 + 3, False, None, "ClientConnectorError", None),
        ],
    )
    by_seq = {d.seq: d for d in await notices.deliveries("S-1", "C-bank", 10)}
    done, again, given_up = (by_seq[c.delivery.seq] for c in claimed[:3])
    assert (done.state, done.attempts, done.last_status) == (DeliveryState.DELIVERED, 1, 204)
    assert (again.state, again.next_attempt_at, again.last_status) == (
        DeliveryState.PENDING,
        T0 + 10,
        500,
    )
    assert (given_up.state, given_up.last_error) == (DeliveryState.FAILED, "ClientConnectorError")
    # Lapsed claims (their process died) are taken by the next claimer once due, and so
    # is the one to try again (due at T0 + 10); the settled ones are not.
    later = await notices.claim("worker-3", T0 + 40, 30, 10)
    assert {c.delivery.seq for c in later} == (one | two) - {done.seq, given_up.seq}


async def test_deleting_drops_what_is_still_owed(registry: Registry) -> None:
    notices = book(registry)
    await registry.register([proof("A")])
    await notices.add_subscription(subscription("S-1", codes=("A",)))
    await change(registry, "A", Status.PLEDGED)
    await notices.fan_out(T0 + 2)
    await notices.delete_subscription("S-1", "C-bank", T0 + 3)
    assert await notices.claim("worker-1", T0 + 4, 30, 10) == []
    await change(registry, "A", Status.VALID, T0 + 5)
    assert await notices.fan_out(T0 + 6) == 0


async def test_a_requesters_office_is_told_of_answers_and_lateness(registry: Registry) -> None:
    notices = book(registry)
    assert isinstance(registry, RequestBook)
    requests = registry
    await notices.add_subscription(
        subscription(
            "S-office",
            "C-req",
            events=(Event.REQUEST_ANSWERED, Event.REQUEST_OVERDUE),
            codes=(),
            purpose=None,
            office="REQ",
            created_at=T0 - 10,
        )
    )
    await notices.add_subscription(
        subscription("S-else", "C-x", events=(Event.REQUEST_ANSWERED,), codes=(), office="ELSE")
    )
    answered = request("R-1")
    late = request("R-2")
    await requests.create_request(answered, "staff-1")
    await requests.create_request(late, "staff-1")
    step = Transition("R-1", Action.RETURN, "O", "C-resp", "staff-2", T0 + 5, reason="不属本单位")
    await requests.change_request(step, DEADLINES)
    assert await notices.fan_out(T0 + 6) == 1  # the return; nothing is late yet
    assert await notices.fan_out(late.due_at + 1) == 1  # R-2 is late now
    assert await notices.fan_out(late.due_at + 2) == 0
    owed = await notices.deliveries("S-office", "C-req", 10)
    assert [(d.event, d.data["request"]) for d in owed] == [
        (Event.REQUEST_OVERDUE, "R-2"),
        (Event.REQUEST_ANSWERED, "R-1"),
    ]
    assert owed[1].data["state"] == "returned"
    assert "不属本单位" not in str(owed[1].data)  # the reason stays with the parties
    assert await notices.deliveries("S-else", "C-x", 10) == []


async def test_pruning_deletes_only_settled_deliveries_past_the_retention(
    registry: Registry, backend: Backend
) -> None:
    notices = book(registry)
    await registry.register([proof(code) for code in "ABCDEF"])
    await notices.add_subscription(subscription("S-1", codes=tuple("ABCDE")))
    await notices.add_subscription(subscription("S-gone", "C-other", codes=("F",)))
    old, recent = T0 + 2, T0 + 100  # fan-out instants: the first four owed long ago
    for code in "ABCD":
        await change(registry, code, Status.PLEDGED)
    await change(registry, "F", Status.PLEDGED)
    assert await notices.fan_out(old) == 5
    claimed = {
        c.delivery.data["code"]: c.delivery.seq for c in await notices.claim("w", old, 30, 10)
    }
    await notices.settle(
        "w",
        [
            Outcome(claimed["A"], old + 1, True, 204, None, None),  # delivered
            Outcome(claimed["B"], old + 1, False, 500, None, None),  # given up
            Outcome(claimed["C"], old + 1, False, 500, None, old + 60),  # to try again
            # D: never attempted, claim lapsed: pending
        ],
    )
    await notices.delete_subscription("S-gone", "C-other", old + 2)  # F's dropped
    await change(registry, "E", Status.PLEDGED, recent)
    assert await notices.fan_out(recent) == 1
    # C and D are claimed again too (due, their claim lapsed); only E is settled
    [fresh] = [
        c for c in await notices.claim("w", recent, 30, 10) if c.delivery.data["code"] == "E"
    ]
    await notices.settle("w", [Outcome(fresh.delivery.seq, recent, True, 200, None, None)])
    assert await notices.backlog() == Backlog(2, old)  # C and D, owed since the old pass

    assert await notices.prune(old, 10) == 0  # nothing owed before the cut
    # A batch at a time: the three settled old ones (A, B and S-gone's F), then none.
    assert await notices.prune(old + 50, 2) == 2
    assert await notices.prune(old + 50, 2) == 1
    assert await notices.prune(old + 50, 2) == 0
    left = {d.data["code"]: d.state for d in await notices.deliveries("S-1", "C-bank", 10)}
    assert left == {
        "C": DeliveryState.PENDING,
        "D": DeliveryState.PENDING,
        "E": DeliveryState.DELIVERED,  # recent: kept
    }
    # The deleted subscription's row went with its last delivery; the live one stays.
    rows = backend.execute("SELECT subscription_id FROM subscriptions ORDER BY 1")
    assert [r[0] for r in rows] == ["S-1"]
    # Pending ones stay however old they grow.
    assert await notices.prune(recent + 10**9, 100) == 1  # E only
    assert await notices.backlog() == Backlog(2, old)
    assert [d.data["code"] for d in await notices.deliveries("S-1", "C-bank", 10)] == ["D", "C"]


async def test_the_backlog_of_an_empty_outbox(registry: Registry) -> None:
    assert await book(registry).backlog() == Backlog(0, None)
