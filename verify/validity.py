"""A proof's period of validity: its dates read as instants, in one place.

A request's ``valid_from`` and ``valid_until`` are kept as the issuing system wrote them
(an RFC 3339 date, or a date-time with an offset). A date without a time is read in the
city's time zone, China Standard Time: a proof valid from 2027-01-01 is in force from
that day's first moment in 益阳, and one valid until 2027-01-31 through that whole day.
Sealing reads them with :func:`instant` (refusing what it cannot read), and every status
answer derives ``not-yet-valid`` and ``expired`` from the same readings
(:func:`sealgate.verify.registry.derived_status`), so the gateway never holds two views
of when a proof starts or ends.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from zoneinfo import ZoneInfo

# The city's time zone: a date alone means that day there.
LOCAL_ZONE = ZoneInfo("Asia/Shanghai")

RFC3339_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
RFC3339_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


class BadInstant(ValueError):
    """The text is not a date or date-time a proof may carry (the message says why)."""


@functools.lru_cache(maxsize=4096)
def instant(text: str, end_of_day: bool) -> float:
    """The POSIX time ``text`` stands for (a date: its start, or the next day's).

    Cached: a batch's proofs mostly share their dates, every status answer reads its
    proof's ``valid_from``, and parsing one costs more than the rest of a field's checks.
    Failures are not cached (they raise).
    """
    if not (RFC3339_DATE.fullmatch(text) or RFC3339_DATE_TIME.fullmatch(text)):
        raise BadInstant("must be an RFC 3339 date or date-time with an offset")
    if not "1900" <= text[:4] <= "9998":
        raise BadInstant("must be a year between 1900 and 9998")
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            if end_of_day:
                day += dt.timedelta(days=1)
            return dt.datetime.combine(day, dt.time(), LOCAL_ZONE).timestamp()
        moment = dt.datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        raise BadInstant("must be an RFC 3339 date or date-time") from None
    if moment.tzinfo is None:  # pragma: no cover - the pattern requires an offset
        raise BadInstant("a date-time needs a UTC offset")
    return moment.timestamp()


def starts_at(valid_from: str) -> float | None:
    """The instant a proof comes into force; ``None`` if its text cannot be read.

    Every stored ``valid_from`` passed :func:`instant` when it was sealed; a record
    written otherwise (by hand, by an older release) is treated as in force rather than
    refused at every answer.
    """
    try:
        return instant(valid_from, False)
    except BadInstant:
        return None


def has_ended(expires_at: float | None, now: float) -> bool:
    """Whether a validity ending at ``expires_at`` (``None``: open-ended) is over at
    ``now``: the ending instant itself is already outside it."""
    return expires_at is not None and now >= expires_at


def has_started(valid_from: str, now: float) -> bool:
    """Whether a proof valid from ``valid_from`` is in force (or was) at ``now``."""
    start = starts_at(valid_from)
    return start is None or now >= start
