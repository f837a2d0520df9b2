"""The failed-lookup buckets on PostgreSQL (:mod:`sealgate.verify.lookup_failures`): one
statement moves both, each an ``INSERT … ON CONFLICT … DO UPDATE … RETURNING`` that
PostgreSQL runs under the row's lock, so gateways racing on one client queue on its row
and each sees the level the one before it left. Time is the database server's (read
once, ``clock_timestamp()``), the same for every instance; a statement that waited on
the lock behind a later one drains nothing for the wait (``greatest``), and ``at`` never
moves back.

Parameters: $1 client id, $2 weight, $3 the client's capacity, $4 its drain per second,
$5 the city's burst, $6 its refill per second. ``refused`` and ``empty`` are stored only
because ``RETURNING`` sees the new row alone: they say what this failure met.
"""

from __future__ import annotations

CITY = "city"  # the one row of lookup_budget

_DRAINED = "greatest(0, f.level - greatest(0, excluded.at - f.at) * $4::float8)"
_REFILLED = "least($5::float8, b.tokens + greatest(0, excluded.at - b.at) * $6::float8)"

COUNT_FAILURE = f"""
WITH clock AS (SELECT extract(epoch FROM clock_timestamp())::float8 AS now),
client AS (
    INSERT INTO lookup_failures AS f (client_id, level, at, refused)
    SELECT $1, least($2::float8, $3::float8), now, ($2::float8 > $3::float8 + 1e-9)::int
    FROM clock
    ON CONFLICT (client_id) DO UPDATE SET
        level = least({_DRAINED} + $2::float8, $3::float8),
        refused = ({_DRAINED} > $3::float8 - $2::float8 + 1e-9)::int,
        at = greatest(f.at, excluded.at)
    RETURNING level, refused
),
city AS (
    INSERT INTO lookup_budget AS b (bucket, tokens, at, empty)
    SELECT '{CITY}', $5::float8 - 1, now, 0 FROM clock
    ON CONFLICT (bucket) DO UPDATE SET
        tokens = CASE WHEN {_REFILLED} < 1 THEN {_REFILLED} ELSE {_REFILLED} - 1 END,
        empty = ({_REFILLED} < 1)::int,
        at = greatest(b.at, excluded.at)
    RETURNING empty
)
SELECT client.level, client.refused, city.empty FROM client, city
"""  # noqa: S608 - constants of this module, no input
