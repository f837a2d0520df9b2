"""The failed-lookup buckets on SQLite (:mod:`sealgate.verify.lookup_failures`): read,
moved and written back by one job of the registry's writer thread, whose transaction
(``BEGIN IMMEDIATE``) holds the file's write lock, so the worker processes of a home
take turns and none reads a level another is about to write."""

from __future__ import annotations

import sqlite3
import time

from sealgate.verify.lookup_failures import BucketLevels, FailureCharge, charge_city, charge_client

CITY = "city"  # the one row of lookup_budget

_CLIENT = "SELECT level, at FROM lookup_failures WHERE client_id = ?"
_PUT_CLIENT = (
    "INSERT INTO lookup_failures (client_id, level, at, refused) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (client_id) DO UPDATE"
    " SET level = excluded.level, at = excluded.at, refused = excluded.refused"
)
_CITY = "SELECT tokens, at FROM lookup_budget WHERE bucket = ?"
_PUT_CITY = (
    "INSERT INTO lookup_budget (bucket, tokens, at, empty) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (bucket) DO UPDATE"
    " SET tokens = excluded.tokens, at = excluded.at, empty = excluded.empty"
)


def count_failure(conn: sqlite3.Connection, charge: FailureCharge) -> BucketLevels:
    # Read under the write lock: the workers of a home share this machine's clock, and
    # whoever held the lock before wrote an earlier time (a clock set back drains nothing).
    now = time.time()
    row = conn.execute(_CLIENT, (charge.client_id,)).fetchone()
    level, full = charge_client(None if row is None else (row[0], row[1]), now, charge)
    conn.execute(_PUT_CLIENT, (charge.client_id, level, max(now, row[1] if row else now), full))
    row = conn.execute(_CITY, (CITY,)).fetchone()
    tokens, empty = charge_city(None if row is None else (row[0], row[1]), now, charge)
    conn.execute(_PUT_CITY, (CITY, tokens, max(now, row[1] if row else now), empty))
    return BucketLevels(level, full, empty)
