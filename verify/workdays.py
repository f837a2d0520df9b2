"""Working days in the city's time zone (Asia/Shanghai), and deadlines counted in them.

A day is a working day when the State Council's yearly notice makes it one: a weekday
that is not a holiday, or a weekend day named a make-up working day (调休上班). The
published years come from the ``chinese-calendar`` package; an operator loads a year it
lacks, or corrects one, with ``sealgate calendar load FILE`` (:func:`parse_year`), and a
loaded year replaces the package's whole. A deadline that has to step through a year
neither knows is computed on plain weekdays and said to be **provisional**: never
silently taken for a known one.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import chinese_calendar.constants

from sealgate.errors import Error
from sealgate.verify.validity import LOCAL_ZONE

PACKAGE_SOURCE = "chinese-calendar"
# Longest walk a deadline may take: 5 working days plus the longest holiday run is far
# below this; a calendar that names a whole year off must not loop for ever.
_MAX_DAYS = 400


class CalendarError(Error):
    """A calendar file that cannot be loaded: the message says what is wrong in it."""


@dataclass(frozen=True, slots=True)
class YearDays:
    """One year's arrangement: the weekdays off and the weekend days worked."""

    year: int
    holidays: Mapping[dt.date, str]  # days off that would be working days, with the name
    workdays: Mapping[dt.date, str]  # weekend days worked, with the holiday they make up for
    source: str  # the notice, or "chinese-calendar"

    def is_workday(self, day: dt.date) -> bool:
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def to_json(self) -> str:
        """The form :func:`parse_year` reads (and the directory stores)."""
        return json.dumps(
            {
                "year": self.year,
                "source": self.source,
                "holidays": {d.isoformat(): n for d, n in sorted(self.holidays.items())},
                "workdays": {d.isoformat(): n for d, n in sorted(self.workdays.items())},
            },
            ensure_ascii=False,
            sort_keys=True,
        )


def parse_year(text: str) -> YearDays:
    """A year from its JSON: ``{"year", "source", "holidays": {date: name},
    "workdays": {date: name}}``; raises :class:`CalendarError` naming what is wrong."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CalendarError(f"not JSON: {exc.msg} (line {exc.lineno})") from None
    if not isinstance(value, dict) or set(value) - {"year", "source", "holidays", "workdays"}:
        raise CalendarError('expected an object with "year", "source", "holidays", "workdays"')
    year = value.get("year")
    if not isinstance(year, int) or isinstance(year, bool) or not 2000 <= year <= 2200:
        raise CalendarError('"year" must be a year between 2000 and 2200')
    source = value.get("source")
    if not isinstance(source, str) or not source.strip() or len(source) > 200:
        raise CalendarError('"source" must name the notice (at most 200 characters)')
    holidays = _days(value.get("holidays"), "holidays", year)
    workdays = _days(value.get("workdays"), "workdays", year)
    if both := sorted(holidays.keys() & workdays.keys()):
        raise CalendarError(f"{both[0]} is both a holiday and a working day")
    if weekdays := sorted(d for d in workdays if d.weekday() < 5):
        raise CalendarError(f"workdays: {weekdays[0]} is a weekday; only weekend days are made up")
    return YearDays(year, holidays, workdays, source.strip())


def _days(value: Any, name: str, year: int) -> dict[dt.date, str]:
    if not isinstance(value, dict):
        raise CalendarError(f'"{name}" must be an object of dates (YYYY-MM-DD) to names')
    days = {}
    for key, label in value.items():
        try:
            day = dt.date.fromisoformat(key)
        except ValueError:
            raise CalendarError(f"{name}: {key!r} is not a date (YYYY-MM-DD)") from None
        if day.year != year:
            raise CalendarError(f"{name}: {key} is not in {year}")
        if not isinstance(label, str) or len(label) > 64:
            raise CalendarError(f"{name}: {key} must name its holiday (at most 64 characters)")
        days[day] = label
    return days


def package_years() -> dict[int, YearDays]:
    """The years the ``chinese-calendar`` package knows."""
    holidays: dict[int, dict[dt.date, str]] = {}
    workdays: dict[int, dict[dt.date, str]] = {}
    for day, label in chinese_calendar.constants.holidays.items():
        holidays.setdefault(day.year, {})[day] = label
    for day, label in chinese_calendar.constants.workdays.items():
        workdays.setdefault(day.year, {})[day] = label
    return {
        year: YearDays(year, days, workdays.get(year, {}), PACKAGE_SOURCE)
        for year, days in holidays.items()
    }


@dataclass(frozen=True, slots=True)
class Deadline:
    """When something is due, and whether it had to be counted on plain weekdays."""

    at: float  # Unix seconds
    provisional: bool


@dataclass(frozen=True, slots=True)
class OfficeHours:
    """The hours of a working day that count (the city's setting for the 30-minute tier)."""

    opens: dt.time
    closes: dt.time

    @classmethod
    def parse(cls, text: str) -> OfficeHours:
        """``"09:00-17:00"``."""
        try:
            start, end = (dt.time.fromisoformat(part.strip()) for part in text.split("-"))
        except ValueError:
            raise CalendarError(f"office hours {text!r}: expected HH:MM-HH:MM") from None
        if not start < end:
            raise CalendarError(f"office hours {text!r}: they must close after they open")
        return cls(start, end)


class WorkCalendar:
    """The working days of the years the package knows, with the loaded years over them."""

    def __init__(self, loaded: Iterable[YearDays] = (), *, package: bool = True) -> None:
        self._years = package_years() if package else {}
        for year in loaded:
            self._years[year.year] = year

    @property
    def years(self) -> dict[int, str]:
        """Each known year with its source."""
        return {year: days.source for year, days in sorted(self._years.items())}

    def knows(self, year: int) -> bool:
        return year in self._years

    def is_workday(self, day: dt.date) -> bool:
        """On plain weekdays for a year the calendar does not know (see :meth:`knows`)."""
        known = self._years.get(day.year)
        return known.is_workday(day) if known is not None else day.weekday() < 5

    def working_days_after(self, moment: float, days: int) -> Deadline:
        """The close (24:00 in Asia/Shanghai) of the ``days``-th working day after the day
        of ``moment``: what "within N working days" of a registration means. Provisional
        when a day counted lies in a year the calendar does not know."""
        day = dt.datetime.fromtimestamp(moment, LOCAL_ZONE).date()
        provisional = False
        counted = 0
        for _ in range(_MAX_DAYS):
            if counted == days:
                return Deadline(_day_start(day + dt.timedelta(days=1)), provisional)
            day += dt.timedelta(days=1)
            provisional |= not self.knows(day.year)
            counted += self.is_workday(day)
        raise CalendarError(f"no {days} working days within {_MAX_DAYS} days of {day}")

    def office_time_after(
        self, moment: float, seconds: float, hours: OfficeHours | None
    ) -> Deadline:
        """``seconds`` after ``moment``; with office hours, only their seconds on working
        days count (a request registered at 16:50 with hours to 17:00 is due 09:20 of the
        next working day)."""
        if hours is None:
            return Deadline(moment + seconds, False)
        at = moment
        left = seconds
        provisional = False
        for _ in range(_MAX_DAYS):
            day = dt.datetime.fromtimestamp(at, LOCAL_ZONE).date()
            provisional |= not self.knows(day.year)
            if self.is_workday(day):
                opens = dt.datetime.combine(day, hours.opens, LOCAL_ZONE).timestamp()
                closes = dt.datetime.combine(day, hours.closes, LOCAL_ZONE).timestamp()
                start = max(at, opens)
                if start < closes:
                    if closes - start >= left:
                        return Deadline(start + left, provisional)
                    left -= closes - start
            at = _day_start(day + dt.timedelta(days=1))
        raise CalendarError(f"no office time within {_MAX_DAYS} days")


def _day_start(day: dt.date) -> float:
    return dt.datetime.combine(day, dt.time(), LOCAL_ZONE).timestamp()


def local_day(moment: float) -> dt.date:
    """The Asia/Shanghai date of ``moment``."""
    return dt.datetime.fromtimestamp(moment, LOCAL_ZONE).date()
