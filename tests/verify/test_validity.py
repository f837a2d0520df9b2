"""A proof's dates: read in China Standard Time, and the statuses derived from them."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from sealgate.verify.lifecycle import (
    NotYetValid,
    TransitionNotAllowed,
    ValidityEnded,
    check_issuance,
    check_transition,
)
from sealgate.verify.registry import Status, derived_status
from sealgate.verify.rules import check_status_change
from sealgate.verify.validity import BadInstant, has_ended, has_started, instant, starts_at
from tests.verify.test_rules import CURRENT, request

S = Status
CST = dt.timezone(dt.timedelta(hours=8))
# 2027-01-01 00:00 in 益阳 is 2026-12-31 16:00 UTC
NEW_YEAR = dt.datetime(2027, 1, 1, tzinfo=CST).timestamp()


def test_a_date_is_a_day_in_china_standard_time() -> None:
    assert instant("2027-01-01", False) == NEW_YEAR
    assert instant("2026-12-31", True) == NEW_YEAR  # valid until: through that whole day
    assert instant("2026-12-31T16:00:00Z", False) == NEW_YEAR
    assert instant("2027-01-01T00:00:00+08:00", False) == NEW_YEAR
    with pytest.raises(BadInstant):
        instant("2027-01-01T00:00:00", False)  # a time needs its offset


def test_a_proof_is_not_yet_valid_until_the_first_moment_of_its_first_day() -> None:
    assert derived_status(S.VALID, "2027-01-01", None, NEW_YEAR - 1) is S.NOT_YET_VALID
    assert derived_status(S.VALID, "2027-01-01", None, NEW_YEAR) is S.VALID
    # a date-time start counts to the second, whatever its offset
    start = "2027-01-01T09:30:00+08:00"
    at = instant(start, False)
    assert derived_status(S.VALID, start, None, at - 0.001) is S.NOT_YET_VALID
    assert derived_status(S.VALID, start, None, at) is S.VALID


def test_expiry_and_other_statuses_say_more_than_a_start_still_ahead() -> None:
    ended = instant("2026-12-31", True)
    assert derived_status(S.VALID, "2026-01-01", ended, ended - 1) is S.VALID
    assert derived_status(S.VALID, "2026-01-01", ended, ended) is S.EXPIRED
    assert derived_status(S.PLEDGED, "2026-01-01", ended, ended) is S.EXPIRED
    for stored in (S.PLEDGED, S.CHANGED, S.REVOKED, S.CANCELLED, S.ABOLISHED):
        assert derived_status(stored, "2027-01-01", None, NEW_YEAR - 1) is stored


def test_an_unreadable_stored_start_counts_as_in_force() -> None:
    # Never written by sealing (which refuses it), but an answer must not fail on it.
    assert starts_at("not a date") is None
    assert has_started("not a date", 0.0)
    assert derived_status(S.VALID, "not a date", None, 0.0) is S.VALID


def test_an_end_is_already_outside_the_validity() -> None:
    assert not has_ended(None, 1e12)
    assert not has_ended(100.0, 99.999)
    assert has_ended(100.0, 100.0)


def test_a_proof_not_yet_valid_cannot_be_pledged_but_may_be_superseded_or_ended() -> None:
    with pytest.raises(NotYetValid) as refused:
        check_transition(S.VALID, S.PLEDGED, expired=False, not_yet_valid=True, superseded_by=None)
    assert isinstance(refused.value, TransitionNotAllowed)  # answered 409 either way
    check_transition(S.VALID, S.CHANGED, expired=False, not_yet_valid=True, superseded_by="X")
    for terminal in (S.REVOKED, S.CANCELLED, S.ABOLISHED):
        check_transition(S.VALID, terminal, expired=False, not_yet_valid=True, superseded_by=None)


def test_the_change_decision_derives_the_start_as_answers_do() -> None:
    ahead = dataclasses.replace(CURRENT, valid_from="2027-01-01", expires_at=None)
    with pytest.raises(NotYetValid):
        check_status_change(request(S.PLEDGED, at=NEW_YEAR - 1), ahead, None)
    assert check_status_change(request(S.PLEDGED, at=NEW_YEAR), ahead, None) is ahead


def test_sealing_an_ended_proof_is_refused_unless_issued_for_the_archive() -> None:
    with pytest.raises(ValidityEnded) as refused:
        check_issuance(100.0, 100.0, archival=False, field="items[2].valid_until")
    assert refused.value.field == "items[2].valid_until"
    check_issuance(100.0, 100.0, archival=True)
    check_issuance(100.0, 99.0, archival=False)
    check_issuance(None, 1e12, archival=False)  # open-ended
