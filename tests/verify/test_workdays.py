"""Deadlines in working days over the 2026 (the chinese-calendar package's) and 2027
(loaded from a file, as `sealgate calendar load` does) holiday calendars."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from sealgate.verify.requests import Deadlines, Tier
from sealgate.verify.validity import LOCAL_ZONE
from sealgate.verify.workdays import CalendarError, OfficeHours, WorkCalendar, parse_year

CALENDAR_2027 = Path(__file__).parent / "data" / "calendar-2027.json"


def at(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=LOCAL_ZONE).timestamp()


@pytest.fixture(scope="module")
def deadlines() -> Deadlines:
    loaded = parse_year(CALENDAR_2027.read_text(encoding="utf-8"))
    return Deadlines(WorkCalendar([loaded]))


@pytest.mark.parametrize(
    ("registered", "due"),
    [
        # 2026: 国庆 Oct 1–7 (the package); Sep 30 is the last working day before it
        ("2026-09-30 15:00", "2026-10-09 00:00"),
        # 2027: 国庆 Oct 1–7 (loaded); Thursday Sep 30 the last working day before it
        ("2027-09-30 15:00", "2027-10-09 00:00"),
    ],
)
def test_the_last_working_day_before_national_day_is_due_the_first_after(
    deadlines: Deadlines, registered: str, due: str
) -> None:
    deadline = deadlines.due(Tier.PAPER, at(registered))
    assert deadline.at == at(due)  # the close of Oct 8, the first working day after
    assert deadline.provisional is False


@pytest.mark.parametrize(
    ("registered", "due"),
    [
        ("2026-10-09 11:00", "2026-10-11 00:00"),  # Saturday Oct 10, 2026 is worked
        ("2027-10-08 11:00", "2027-10-10 00:00"),  # Saturday Oct 9, 2027 is worked
        ("2026-09-18 11:00", "2026-09-21 00:00"),  # Sunday Sep 20, 2026 is worked
    ],
)
def test_a_make_up_weekend_day_counts_as_a_working_day(
    deadlines: Deadlines, registered: str, due: str
) -> None:
    assert deadlines.due(Tier.PAPER, at(registered)).at == at(due)


def test_a_year_outside_the_calendar_is_provisional(deadlines: Deadlines) -> None:
    deadline = deadlines.due(Tier.PAPER, at("2031-03-06 10:00"))  # a Thursday
    assert deadline.provisional is True
    assert deadline.at == at("2031-03-08 00:00")  # counted on weekdays, and said so
    # a deadline that steps into an unknown year is provisional too
    assert deadlines.due(Tier.ARCHIVE, at("2027-12-30 10:00")).provisional is True
    assert deadlines.due(Tier.ARCHIVE, at("2027-12-27 10:00")).provisional is False


def test_without_the_loaded_year_2027_is_provisional() -> None:
    assert Deadlines(WorkCalendar()).due(Tier.PAPER, at("2027-09-30 10:00")).provisional


def test_an_extension_adds_five_working_days_after_the_due_day(deadlines: Deadlines) -> None:
    due = deadlines.due(Tier.ARCHIVE, at("2026-09-29 10:00"))  # Wed 30, Thu Oct 8
    assert due.at == at("2026-10-09 00:00")
    # Fri 9, Sat 10 (made up), Mon 12, Tue 13, Wed 14
    assert deadlines.extended(due.at).at == at("2026-10-15 00:00")


def test_the_thirty_minute_tier_with_and_without_office_hours(deadlines: Deadlines) -> None:
    assert deadlines.due(Tier.DATABASE, at("2026-09-30 16:50")).at == at("2026-09-30 17:20")
    hours = Deadlines(deadlines.calendar, OfficeHours.parse("09:00-17:00"))
    # 10 minutes on Sep 30, the other 20 after the holiday
    assert hours.due(Tier.DATABASE, at("2026-09-30 16:50")).at == at("2026-10-08 09:20")
    assert hours.due(Tier.DATABASE, at("2026-10-10 08:00")).at == at("2026-10-10 09:30")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[]", "expected an object"),
        (
            '{"year": 2027, "source": "x", "holidays": {"2026-10-01": "国庆"}, "workdays": {}}',
            "not in 2027",
        ),
        (
            '{"year": 2027, "source": "x", "holidays": {}, "workdays": {"2027-10-08": "国庆"}}',
            "is a weekday",
        ),
        (
            '{"year": 2027, "source": "x", "holidays": {"2027-13-01": "x"}, "workdays": {}}',
            "not a date",
        ),
    ],
)
def test_a_bad_calendar_file_is_refused_saying_why(text: str, says: str) -> None:
    with pytest.raises(CalendarError, match=says):
        parse_year(text)


def test_a_loaded_year_round_trips_and_replaces_the_packages() -> None:
    year = parse_year(CALENDAR_2027.read_text(encoding="utf-8"))
    assert parse_year(year.to_json()) == year
    corrected = parse_year('{"year": 2026, "source": "更正", "holidays": {}, "workdays": {}}')
    calendar = WorkCalendar([corrected])
    assert calendar.is_workday(dt.date(2026, 10, 8))
    assert calendar.is_workday(dt.date(2026, 10, 1))  # no holidays in the correction
    assert calendar.years[2026] == "更正"
