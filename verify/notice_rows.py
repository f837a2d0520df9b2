"""The notices' rows and statements, written once for both backends (as
:mod:`sealgate.verify.request_rows`): a backend says only how it writes a parameter."""

# Every name and value spliced into a statement here is a constant of this module.
# ruff: noqa: S608

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sealgate.verify.notices import (
    Delivery,
    DeliveryState,
    Event,
    Outcome,
    Subscription,
    decode_events,
    encode_data,
    encode_events,
    overdue_event_id,
    request_event_id,
    status_event_id,
)

SUBSCRIPTION_COLUMNS = (
    "subscription_id, client_id, url, events, purpose, office, created_at,"
    " status_from, requests_from"
)
DELIVERY_COLUMNS = (
    "seq, subscription_id, event_id, event, occurred_at, data, created_at, state, attempts,"
    " next_attempt_at, last_attempt_at, last_status, last_error"
)
# The feeds fan-out reads, each with its cursor in notice_cursors.
STATUS_FEED = "status"
REQUEST_FEED = "requests"
OVERDUE_FEED = "overdue"
# PostgreSQL draws request_events.seq before commit, so a later seq can be visible
# before an earlier one: each pass reads this many back again (the unique event id
# keeps a re-read from making a second delivery). The status log needs none: its
# writers commit in seq order (docs/design.md §4.6).
REQUEST_SLACK = 200
OVERDUE_SLACK = 60.0  # seconds, likewise for instants written by several clocks
# The overdue cursor moves on at least this often when nothing is late: a write a pass
# would otherwise cost every second, from every worker.
OVERDUE_STEP = 30.0
# Actions of a request's events that answer it (for request.answered).
ANSWERING = ("respond", "return")
# What pruning may delete: every state but pending (a delivery still owed).
SETTLED = ", ".join(
    f"'{state.value}'" for state in DeliveryState if state is not DeliveryState.PENDING
)


@dataclass(frozen=True, slots=True)
class NoticeQueries:
    """The statements in one placeholder style; every name spliced in is a constant."""

    insert_subscription: str
    insert_code: str
    select_subscription: str
    codes_of: str
    of_client: str
    delete_subscription: str
    delete_codes: str
    drop_pending: str
    deliveries: str
    cursor: str
    set_cursor: str
    status_end: str
    status_matches: str
    request_end: str
    request_matches: str
    overdue_matches: str
    insert_delivery: str
    due: str
    claim: str
    claimed: str
    settle: str
    prune_deliveries: str
    prune_subscriptions: str
    backlog: str

    @classmethod
    def written_with(cls, param: Callable[[int], str]) -> NoticeQueries:
        p = param
        live = "s.deleted_at IS NULL"
        wants = "s.events LIKE"
        delivery_cols = ", ".join(f"d.{c.strip()}" for c in DELIVERY_COLUMNS.split(","))
        return cls(
            insert_subscription=(
                f"INSERT INTO subscriptions ({SUBSCRIPTION_COLUMNS}) VALUES"
                f" ({', '.join(p(n) for n in range(1, 8))},"
                " (SELECT coalesce(max(seq), 0) FROM status_history),"
                " (SELECT coalesce(max(seq), 0) FROM request_events))"
            ),
            insert_code=(
                f"INSERT INTO subscription_codes (code, subscription_id) VALUES ({p(1)}, {p(2)})"
            ),
            select_subscription=(
                f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions"
                f" WHERE subscription_id = {p(1)} AND client_id = {p(2)} AND deleted_at IS NULL"
            ),
            codes_of=(
                f"SELECT code FROM subscription_codes WHERE subscription_id = {p(1)} ORDER BY code"
            ),
            of_client=(
                f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions"
                f" WHERE client_id = {p(1)} AND deleted_at IS NULL"
                " ORDER BY created_at, subscription_id"
            ),
            delete_subscription=(
                f"UPDATE subscriptions SET deleted_at = {p(1)} WHERE subscription_id = {p(2)}"
                f" AND client_id = {p(3)} AND deleted_at IS NULL"
            ),
            delete_codes=f"DELETE FROM subscription_codes WHERE subscription_id = {p(1)}",
            drop_pending=(
                f"UPDATE deliveries SET state = '{DeliveryState.DROPPED.value}',"
                " next_attempt_at = NULL, claimed_by = NULL, claimed_until = NULL"
                f" WHERE subscription_id = {p(1)} AND state = '{DeliveryState.PENDING.value}'"
            ),
            deliveries=(
                f"SELECT {DELIVERY_COLUMNS} FROM deliveries"
                f" WHERE subscription_id = {p(1)} ORDER BY seq DESC LIMIT {p(2)}"
            ),
            cursor=f"SELECT position FROM notice_cursors WHERE feed = {p(1)}",
            set_cursor=f"UPDATE notice_cursors SET position = {p(1)} WHERE feed = {p(2)}",
            status_end=(
                "SELECT max(seq) FROM (SELECT seq FROM status_history"
                f" WHERE seq > {p(1)} ORDER BY seq LIMIT {p(2)}) AS batch"
            ),
            status_matches=(
                "SELECT h.seq, h.code, h.from_status, h.to_status, h.superseded_by,"
                " h.changed_at, s.subscription_id FROM status_history h"
                " JOIN subscription_codes c ON c.code = h.code"
                " JOIN subscriptions s ON s.subscription_id = c.subscription_id"
                f" WHERE h.seq > {p(1)} AND h.seq <= {p(2)} AND h.seq > s.status_from"
                f" AND {live} ORDER BY h.seq"
            ),
            request_end=(
                "SELECT max(seq) FROM (SELECT seq FROM request_events"
                f" WHERE seq > {p(1)} ORDER BY seq LIMIT {p(2)}) AS batch"
            ),
            request_matches=(
                "SELECT e.seq, e.request_id, e.action, e.to_state, e.at, e.code,"
                " s.subscription_id FROM request_events e"
                " JOIN requests r ON r.request_id = e.request_id"
                " JOIN subscriptions s ON s.office = r.requester_office"
                f" WHERE e.seq > {p(1)} AND e.seq <= {p(2)} AND e.seq > s.requests_from"
                f" AND e.action IN ('{ANSWERING[0]}', '{ANSWERING[1]}')"
                f" AND {wants} '%,{Event.REQUEST_ANSWERED.value},%' AND {live} ORDER BY e.seq"
            ),
            overdue_matches=(
                "SELECT r.request_id, r.due_at, s.subscription_id FROM requests r"
                " JOIN subscriptions s ON s.office = r.requester_office"
                f" WHERE r.state = 'accepted' AND r.due_at > {p(1)} AND r.due_at <= {p(2)}"
                f" AND r.due_at > s.created_at AND {wants} '%,{Event.REQUEST_OVERDUE.value},%'"
                f" AND {live} ORDER BY r.due_at LIMIT {p(3)}"
            ),
            insert_delivery=(
                "INSERT INTO deliveries (subscription_id, event_id, event, occurred_at, data,"
                " created_at, state, attempts, next_attempt_at) VALUES"
                f" ({p(1)}, {p(2)}, {p(3)}, {p(4)}, {p(5)}, {p(6)},"
                f" '{DeliveryState.PENDING.value}', 0, {p(7)})"
                " ON CONFLICT (subscription_id, event_id) DO NOTHING"
            ),
            due=(
                f"SELECT seq FROM deliveries WHERE state = '{DeliveryState.PENDING.value}'"
                f" AND next_attempt_at <= {p(1)}"
                f" AND (claimed_until IS NULL OR claimed_until <= {p(2)})"
                f" ORDER BY next_attempt_at LIMIT {p(3)}"
            ),
            claim=(
                f"UPDATE deliveries SET claimed_by = {p(1)}, claimed_until = {p(2)}"
                f" WHERE seq = {p(3)}"
            ),
            claimed=(
                f"SELECT {delivery_cols}, s.url FROM deliveries d"
                " JOIN subscriptions s ON s.subscription_id = d.subscription_id"
                f" WHERE d.claimed_by = {p(1)} AND d.claimed_until > {p(2)}"
                f" AND d.state = '{DeliveryState.PENDING.value}' ORDER BY d.seq"
            ),
            settle=(
                f"UPDATE deliveries SET state = {p(1)}, attempts = attempts + 1,"
                f" last_attempt_at = {p(2)}, last_status = {p(3)}, last_error = {p(4)},"
                f" next_attempt_at = {p(5)}, claimed_by = NULL, claimed_until = NULL"
                f" WHERE seq = {p(6)} AND state = '{DeliveryState.PENDING.value}'"
            ),
            # Both read the index deliveries_age (state, created_at). No one else writes
            # a settled row, so two instances pruning at once at worst wait a batch.
            prune_deliveries=(
                "DELETE FROM deliveries WHERE seq IN (SELECT seq FROM deliveries"
                f" WHERE state IN ({SETTLED}) AND created_at < {p(1)} LIMIT {p(2)})"
            ),
            # Its deliveries gone, a deleted subscription's row goes too (its codes
            # went when it was deleted).
            prune_subscriptions=(
                "DELETE FROM subscriptions WHERE subscription_id IN (SELECT subscription_id"
                f" FROM subscriptions s WHERE s.deleted_at < {p(1)} AND NOT EXISTS"
                " (SELECT 1 FROM deliveries d WHERE d.subscription_id = s.subscription_id)"
                f" LIMIT {p(2)})"
            ),
            backlog=(
                "SELECT count(*), min(created_at) FROM deliveries"
                f" WHERE state = '{DeliveryState.PENDING.value}'"
            ),
        )


def subscription_row(s: Subscription) -> tuple[Any, ...]:
    """The first seven columns of :data:`SUBSCRIPTION_COLUMNS` (the feed positions are
    the store's own, read in the insert)."""
    return (
        s.subscription_id,
        s.client_id,
        s.url,
        encode_events(s.events),
        s.purpose,
        s.office,
        s.created_at,
    )


def subscription_from_row(row: tuple[Any, ...], codes: list[str]) -> Subscription:
    return Subscription(
        subscription_id=row[0],
        client_id=row[1],
        url=row[2],
        events=decode_events(row[3]),
        purpose=row[4],
        office=row[5],
        created_at=row[6],
        status_from=int(row[7]),
        requests_from=int(row[8]),
        codes=tuple(codes),
    )


def delivery_from_row(row: tuple[Any, ...]) -> Delivery:
    return Delivery(
        seq=int(row[0]),
        subscription_id=row[1],
        event_id=row[2],
        event=Event(row[3]),
        occurred_at=row[4],
        data=json.loads(row[5]),
        created_at=row[6],
        state=DeliveryState(row[7]),
        attempts=int(row[8]),
        next_attempt_at=row[9],
        last_attempt_at=row[10],
        last_status=None if row[11] is None else int(row[11]),
        last_error=row[12],
    )


# --- fan-out: what a feed's rows owe, as insert_delivery's parameters ------------------------


def status_deliveries(found: list[tuple[Any, ...]], now: float) -> list[tuple[Any, ...]]:
    """From :attr:`NoticeQueries.status_matches`: the change, never its reason (free text
    an issuer typed) nor who made it."""
    return [
        (
            subscription_id,
            status_event_id(int(seq)),
            Event.STATUS_CHANGED.value,
            changed_at,
            encode_data({"code": code, "from": before, "to": after, "superseded_by": successor}),
            now,
            now,  # due at once
        )
        for seq, code, before, after, successor, changed_at, subscription_id in found
    ]


def request_deliveries(found: list[tuple[Any, ...]], now: float) -> list[tuple[Any, ...]]:
    """From :attr:`NoticeQueries.request_matches`: which request, its state, the answer's
    code (never the staff member, nor the reason of a return)."""
    return [
        (
            subscription_id,
            request_event_id(int(seq)),
            Event.REQUEST_ANSWERED.value,
            at,
            encode_data({"request": request_id, "state": state, "answer_code": code}),
            now,
            now,
        )
        for seq, request_id, _action, state, at, code, subscription_id in found
    ]


def overdue_deliveries(found: list[tuple[Any, ...]], now: float) -> list[tuple[Any, ...]]:
    """From :attr:`NoticeQueries.overdue_matches`."""
    return [
        (
            subscription_id,
            overdue_event_id(request_id, due_at),
            Event.REQUEST_OVERDUE.value,
            due_at,
            encode_data({"request": request_id, "due_at": due_at}),
            now,
            now,
        )
        for request_id, due_at, subscription_id in found
    ]


def overdue_window(cursor: float, now: float) -> tuple[float, float]:
    """The due times a pass reads: from a little before the cursor up to now."""
    return max(0.0, cursor - OVERDUE_SLACK), now


def overdue_cursor(found: list[Any], limit: int, cursor: float, now: float) -> float | None:
    """Where the overdue cursor goes after a pass (None: it stays): past a full batch's
    last due time, else to now, if anything was found or it is due to move anyway."""
    if len(found) == limit:
        return float(found[-1][1])
    if found or now - cursor >= OVERDUE_STEP:
        return now
    return None


def settle_rows(outcomes: list[Outcome]) -> list[tuple[Any, ...]]:
    """The parameters of :attr:`NoticeQueries.settle` (both backends)."""
    return [
        (
            (
                DeliveryState.DELIVERED
                if o.delivered
                else DeliveryState.PENDING
                if o.next_attempt_at is not None
                else DeliveryState.FAILED
            ).value,
            o.at,
            o.status,
            o.error,
            o.next_attempt_at,
            o.seq,
        )
        for o in outcomes
    ]
