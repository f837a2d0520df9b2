"""The notices on the SQLite registry: its writer thread serialises every write, so a
fan-out pass and a claim need no lock of their own (docs/design.md §18)."""

from __future__ import annotations

import sqlite3
from abc import abstractmethod
from collections.abc import Callable
from typing import Any, TypeVar

from sealgate.verify import notice_rows as nr
from sealgate.verify.notices import (
    Backlog,
    Claimed,
    Delivery,
    NoticeBook,
    Outcome,
    Subscription,
    SubscriptionNotFound,
)

T = TypeVar("T")
SQL = nr.NoticeQueries.written_with(lambda _: "?")


def _subscription(conn: sqlite3.Connection, row: tuple[Any, ...]) -> Subscription:
    codes = [c for (c,) in conn.execute(SQL.codes_of, (row[0],))]
    return nr.subscription_from_row(row, codes)


def _find(conn: sqlite3.Connection, subscription_id: str, client_id: str) -> Subscription:
    row = conn.execute(SQL.select_subscription, (subscription_id, client_id)).fetchone()
    if row is None:
        raise SubscriptionNotFound("the client has no such subscription")
    return _subscription(conn, row)


def _cursor(conn: sqlite3.Connection, feed: str) -> float:
    return float(conn.execute(SQL.cursor, (feed,)).fetchone()[0])


def fan_out(conn: sqlite3.Connection, now: float, limit: int) -> int:
    """One pass over the three feeds, inside the writer's transaction."""
    owed: list[tuple[Any, ...]] = []
    seq = int(_cursor(conn, nr.STATUS_FEED))
    end = conn.execute(SQL.status_end, (seq, limit)).fetchone()[0]
    if end is not None:
        found = conn.execute(SQL.status_matches, (seq, end)).fetchall()
        owed += nr.status_deliveries(found, now)
        conn.execute(SQL.set_cursor, (end, nr.STATUS_FEED))
    seq = int(_cursor(conn, nr.REQUEST_FEED))
    end = conn.execute(SQL.request_end, (seq, limit)).fetchone()[0]
    if end is not None:
        window = (max(0, seq - nr.REQUEST_SLACK), end)
        owed += nr.request_deliveries(conn.execute(SQL.request_matches, window).fetchall(), now)
        conn.execute(SQL.set_cursor, (end, nr.REQUEST_FEED))
    cursor = _cursor(conn, nr.OVERDUE_FEED)
    lower, upper = nr.overdue_window(cursor, now)
    found = conn.execute(SQL.overdue_matches, (lower, upper, limit)).fetchall()
    owed += nr.overdue_deliveries(found, now)
    if (moved := nr.overdue_cursor(found, limit, cursor, now)) is not None:
        conn.execute(SQL.set_cursor, (moved, nr.OVERDUE_FEED))
    written = 0
    for row in owed:
        written += conn.execute(SQL.insert_delivery, row).rowcount
    return written


def prune(conn: sqlite3.Connection, before: float, limit: int) -> int:
    deleted = conn.execute(SQL.prune_deliveries, (before, limit)).rowcount
    conn.execute(SQL.prune_subscriptions, (before, limit))
    return int(deleted)


def claim(
    conn: sqlite3.Connection, owner: str, now: float, lease: float, limit: int
) -> list[Claimed]:
    due = [seq for (seq,) in conn.execute(SQL.due, (now, now, limit))]
    conn.executemany(SQL.claim, [(owner, now + lease, seq) for seq in due])
    found = conn.execute(SQL.claimed, (owner, now)).fetchall()
    return [Claimed(nr.delivery_from_row(row[:-1]), row[-1]) for row in found]


class SqliteNotices(NoticeBook):
    """The :class:`NoticeBook` half of :class:`sealgate.verify.sqlite.registry.SqliteRegistry`."""

    @abstractmethod
    async def _read(self, query: Callable[[sqlite3.Connection], T]) -> T: ...

    @abstractmethod
    async def _write_job(self, work: Callable[[sqlite3.Connection], T]) -> T: ...

    async def add_subscription(self, subscription: Subscription) -> Subscription:
        def work(conn: sqlite3.Connection) -> Subscription:
            conn.execute(SQL.insert_subscription, nr.subscription_row(subscription))
            conn.executemany(
                SQL.insert_code, [(c, subscription.subscription_id) for c in subscription.codes]
            )
            return _find(conn, subscription.subscription_id, subscription.client_id)

        return await self._write_job(work)

    async def subscription(self, subscription_id: str, client_id: str) -> Subscription:
        return await self._read(lambda c: _find(c, subscription_id, client_id))

    async def subscriptions_of(self, client_id: str) -> list[Subscription]:
        return await self._read(
            lambda c: [_subscription(c, r) for r in c.execute(SQL.of_client, (client_id,))]
        )

    async def delete_subscription(self, subscription_id: str, client_id: str, at: float) -> None:
        def work(conn: sqlite3.Connection) -> None:
            done = conn.execute(SQL.delete_subscription, (at, subscription_id, client_id))
            if done.rowcount != 1:
                raise SubscriptionNotFound("the client has no such subscription")
            conn.execute(SQL.delete_codes, (subscription_id,))
            conn.execute(SQL.drop_pending, (subscription_id,))

        await self._write_job(work)

    async def deliveries(self, subscription_id: str, client_id: str, limit: int) -> list[Delivery]:
        def query(conn: sqlite3.Connection) -> list[Delivery]:
            _find(conn, subscription_id, client_id)
            found = conn.execute(SQL.deliveries, (subscription_id, limit))
            return [nr.delivery_from_row(r) for r in found]

        return await self._read(query)

    async def fan_out(self, now: float, limit: int = 1000) -> int:
        return await self._write_job(lambda c: fan_out(c, now, limit))

    async def claim(self, owner: str, now: float, lease: float, limit: int) -> list[Claimed]:
        return await self._write_job(lambda c: claim(c, owner, now, lease, limit))

    async def settle(self, owner: str, outcomes: list[Outcome]) -> None:
        rows = nr.settle_rows(outcomes)
        await self._write_job(lambda c: c.executemany(SQL.settle, rows))

    async def prune(self, before: float, limit: int) -> int:
        return await self._write_job(lambda c: prune(c, before, limit))

    async def backlog(self) -> Backlog:
        def query(conn: sqlite3.Connection) -> Backlog:
            pending, oldest = conn.execute(SQL.backlog).fetchone()
            return Backlog(int(pending), oldest)

        return await self._read(query)
