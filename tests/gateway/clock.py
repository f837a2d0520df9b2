"""A clock a test moves: the gateway's "now" for the proofs' dates (``create_app(clock=)``).

Days are China Standard Time's, as a proof's dates mean them (sealgate.verify.validity).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sealgate.verify.validity import LOCAL_ZONE

DAY = dt.timedelta(days=1)


@dataclass
class Clock:
    """The gateway's "now", moved by the test."""

    now: float

    def __call__(self) -> float:
        return self.now

    @property
    def today(self) -> dt.date:
        return dt.datetime.fromtimestamp(self.now, LOCAL_ZONE).date()


def first_moment(day: dt.date) -> float:
    """00:00 China Standard Time of ``day``."""
    return dt.datetime.combine(day, dt.time(), LOCAL_ZONE).timestamp()
