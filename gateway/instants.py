"""Instants in answers: RFC 3339, whole seconds, in the city's UTC offset.

A city's clients read times in China time (+08:00, the default); ``answer_offset`` in
config.toml (``"+08:00"``, ``"Z"``, any ``±HH:MM``) sets another for a deployment. The
offset is one per process, set once from the settings at start (:func:`use_offset`), as
a locale is: every answer of a deployment speaks the same offset, and the answers a worker
remembers were formatted in it. The instant is the same whatever the offset; only how it
is written changes, and every RFC 3339 reader takes either.
"""

from __future__ import annotations

import datetime as dt
import functools
import re

__all__ = ["CHINA", "parse_offset", "rfc3339", "use_offset"]

CHINA = dt.timezone(dt.timedelta(hours=8))
_OFFSET = re.compile(r"(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)")

_zone = CHINA


def parse_offset(text: str) -> dt.timezone:
    """``"Z"`` or ``"±HH:MM"`` as a timezone; ValueError for anything else."""
    if not _OFFSET.fullmatch(text):
        raise ValueError(f"an offset is Z or ±HH:MM, not {text!r}")
    if text == "Z":
        return dt.UTC
    sign = -1 if text[0] == "-" else 1
    return dt.timezone(sign * dt.timedelta(hours=int(text[1:3]), minutes=int(text[4:6])))


def use_offset(zone: dt.timezone) -> None:
    """Write every answer's instants in ``zone`` from now on (the process's one setting)."""
    global _zone
    if zone != _zone:
        _zone = zone
        _format.cache_clear()


def rfc3339(timestamp: float) -> str:
    """Whole seconds in the city's offset: ``2026-11-22T11:08:04+08:00``."""
    return _format(int(timestamp))


@functools.lru_cache(maxsize=8192)
def _format(seconds: int) -> str:
    # Cached: every status answer formats its proof's times and "now", which repeat.
    return dt.datetime.fromtimestamp(seconds, _zone).isoformat().replace("+00:00", "Z")
