"""The notices on the PostgreSQL registry (docs/design.md §18).

Several gateways share the database: a fan-out pass locks the feeds' cursor rows
(``FOR UPDATE``, always in the same order), so passes run one at a time and each event
is read past its cursor once; a claim takes due deliveries ``FOR UPDATE SKIP LOCKED``,
so two instances claiming at once take different ones.
"""

from __future__ import annotations

import asyncio
from abc import abstractmethod
from contextlib import AbstractAsyncContextManager
from typing import Any

from sealgate.verify import notice_rows as nr
from sealgate.verify.integrity import CorruptionWatch
from sealgate.verify.notices import (
    Backlog,
    Claimed,
    Delivery,
    NoticeBook,
    Outcome,
    Subscription,
    SubscriptionNotFound,
)

SQL = nr.NoticeQueries.written_with(lambda n: f"${n}")
_FEEDS = (nr.STATUS_FEED, nr.REQUEST_FEED, nr.OVERDUE_FEED)


async def _subscription(conn: Any, row: Any) -> Subscription:
    codes = [str(c) for (c,) in await conn.fetch(SQL.codes_of, row[0])]
    return nr.subscription_from_row(tuple(row), codes)


async def _find(conn: Any, subscription_id: str, client_id: str) -> Subscription:
    row = await conn.fetchrow(SQL.select_subscription, subscription_id, client_id)
    if row is None:
        raise SubscriptionNotFound("the client has no such subscription")
    return await _subscription(conn, row)


async def fan_out(conn: Any, now: float, limit: int) -> int:
    async with conn.transaction():
        cursors = {f: float(await conn.fetchval(SQL.cursor + " FOR UPDATE", f)) for f in _FEEDS}
        owed: list[tuple[Any, ...]] = []
        seq = int(cursors[nr.STATUS_FEED])
        end = await conn.fetchval(SQL.status_end, seq, limit)
        if end is not None:
            found = await conn.fetch(SQL.status_matches, seq, end)
            owed += nr.status_deliveries([tuple(r) for r in found], now)
            await conn.execute(SQL.set_cursor, float(end), nr.STATUS_FEED)
        seq = int(cursors[nr.REQUEST_FEED])
        end = await conn.fetchval(SQL.request_end, seq, limit)
        if end is not None:
            found = await conn.fetch(SQL.request_matches, max(0, seq - nr.REQUEST_SLACK), end)
            owed += nr.request_deliveries([tuple(r) for r in found], now)
            await conn.execute(SQL.set_cursor, float(end), nr.REQUEST_FEED)
        lower, upper = nr.overdue_window(cursors[nr.OVERDUE_FEED], now)
        late = [tuple(r) for r in await conn.fetch(SQL.overdue_matches, lower, upper, limit)]
        owed += nr.overdue_deliveries(late, now)
        if (moved := nr.overdue_cursor(late, limit, cursors[nr.OVERDUE_FEED], now)) is not None:
            await conn.execute(SQL.set_cursor, moved, nr.OVERDUE_FEED)
        written = 0
        for row in owed:
            done = await conn.execute(SQL.insert_delivery, *row)
            written += int(done.rsplit(" ", 1)[-1])
    return written


async def claim(conn: Any, owner: str, now: float, lease: float, limit: int) -> list[Claimed]:
    async with conn.transaction():
        due = [r[0] for r in await conn.fetch(SQL.due + " FOR UPDATE SKIP LOCKED", now, now, limit)]
        if due:
            await conn.executemany(SQL.claim, [(owner, now + lease, seq) for seq in due])
        found = await conn.fetch(SQL.claimed, owner, now)
    return [Claimed(nr.delivery_from_row(tuple(r)[:-1]), str(r[-1])) for r in found]


class PostgresNotices(NoticeBook):
    """The :class:`NoticeBook` half of the PostgreSQL registry."""

    _integrity: CorruptionWatch

    @abstractmethod
    def _connection(self, what: str) -> AbstractAsyncContextManager[Any]: ...

    async def add_subscription(self, subscription: Subscription) -> Subscription:
        self._integrity.refuse_writes()

        async def work() -> Subscription:
            async with self._connection("subscription") as conn, conn.transaction():
                await conn.execute(SQL.insert_subscription, *nr.subscription_row(subscription))
                await conn.executemany(
                    SQL.insert_code,
                    [(c, subscription.subscription_id) for c in subscription.codes],
                )
                return await _find(conn, subscription.subscription_id, subscription.client_id)

        return await asyncio.shield(work())

    async def subscription(self, subscription_id: str, client_id: str) -> Subscription:
        async with self._connection("read") as conn:
            return await _find(conn, subscription_id, client_id)

    async def subscriptions_of(self, client_id: str) -> list[Subscription]:
        async with self._connection("read") as conn:
            found = await conn.fetch(SQL.of_client, client_id)
            return [await _subscription(conn, r) for r in found]

    async def delete_subscription(self, subscription_id: str, client_id: str, at: float) -> None:
        self._integrity.refuse_writes()

        async def work() -> None:
            async with self._connection("subscription") as conn, conn.transaction():
                done = await conn.execute(SQL.delete_subscription, at, subscription_id, client_id)
                if done != "UPDATE 1":
                    raise SubscriptionNotFound("the client has no such subscription")
                await conn.execute(SQL.delete_codes, subscription_id)
                await conn.execute(SQL.drop_pending, subscription_id)

        await asyncio.shield(work())

    async def deliveries(self, subscription_id: str, client_id: str, limit: int) -> list[Delivery]:
        async with self._connection("read") as conn:
            await _find(conn, subscription_id, client_id)
            found = await conn.fetch(SQL.deliveries, subscription_id, limit)
        return [nr.delivery_from_row(tuple(r)) for r in found]

    async def fan_out(self, now: float, limit: int = 1000) -> int:
        self._integrity.refuse_writes()
        async with self._connection("notices") as conn:
            return await fan_out(conn, now, limit)

    async def claim(self, owner: str, now: float, lease: float, limit: int) -> list[Claimed]:
        self._integrity.refuse_writes()
        async with self._connection("notices") as conn:
            return await claim(conn, owner, now, lease, limit)

    async def settle(self, owner: str, outcomes: list[Outcome]) -> None:
        self._integrity.refuse_writes()
        async with self._connection("notices") as conn:
            await conn.executemany(SQL.settle, nr.settle_rows(outcomes))

    async def prune(self, before: float, limit: int) -> int:
        self._integrity.refuse_writes()
        async with self._connection("notices") as conn, conn.transaction():
            done = await conn.execute(SQL.prune_deliveries, before, limit)
            await conn.execute(SQL.prune_subscriptions, before, limit)
        return int(done.rsplit(" ", 1)[-1])

    async def backlog(self) -> Backlog:
        async with self._connection("read") as conn:
            row = await conn.fetchrow(SQL.backlog)
        return Backlog(int(row[0]), row[1])
