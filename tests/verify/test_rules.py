"""The change-status decision both backends apply: its checks, in their order, alone.

The same rules on the real stores are in ``test_registry_contract.py``."""

from __future__ import annotations

import dataclasses

import pytest

from sealgate.verify.lifecycle import InvalidSupersession, TerminalStatus, TransitionNotAllowed
from sealgate.verify.registry import (
    ProofNotFound,
    ProofStatus,
    Status,
    StatusChangeRequest,
    WrongOffice,
)
from sealgate.verify.rules import Successor, check_status_change, check_supersession

CURRENT = ProofStatus(
    code="OLD",
    seal_id="S",
    unit_name="u",
    unit_code="O",
    type="t",
    holder_kind="person",
    holder_name_masked="张*",
    holder_id_masked="1101**********002X",
    valid_from="2026-01-01",
    valid_until="2026-06-30",
    expires_at=100.0,
    issued_at=1.0,
    status=Status.VALID,
    status_changed_at=1.0,
    superseded_by=None,
    version=0,
)
NEWER = Successor(
    same_holder_and_type=True, status=Status.VALID, expires_at=None, issued_later=True
)


def request(
    status: Status, *, office: str = "O", newer: str | None = None, at: float = 50.0
) -> StatusChangeRequest:
    return StatusChangeRequest("OLD", office, status, "理由", newer, "C-issuer", at)


def test_a_lawful_change_returns_the_current_status() -> None:
    assert check_status_change(request(Status.CHANGED, newer="NEW"), CURRENT, NEWER) is CURRENT
    assert check_status_change(request(Status.REVOKED), CURRENT, None) is CURRENT


def test_the_checks_come_in_order_not_found_office_lifecycle_supersession() -> None:
    # Each request fails every later check too; only the first one may answer.
    foreign_terminal = request(Status.CHANGED, office="OTHER", newer="OLD")
    with pytest.raises(ProofNotFound):
        check_status_change(foreign_terminal, None, None)
    with pytest.raises(WrongOffice):
        check_status_change(foreign_terminal, CURRENT, None)
    revoked = dataclasses.replace(CURRENT, status=Status.REVOKED)
    with pytest.raises(TerminalStatus):
        check_status_change(request(Status.CHANGED, newer="OLD"), revoked, None)
    with pytest.raises(TransitionNotAllowed, match="expired"):
        check_status_change(request(Status.CHANGED, newer="OLD", at=100.0), CURRENT, None)
    with pytest.raises(InvalidSupersession, match="itself"):
        check_status_change(request(Status.CHANGED, newer="OLD"), CURRENT, None)


@pytest.mark.parametrize(
    ("successor", "now", "message"),
    [
        (None, 50.0, "names no registered proof"),
        (dataclasses.replace(NEWER, same_holder_and_type=False), 50.0, "another holder"),
        (dataclasses.replace(NEWER, status=Status.PLEDGED), 50.0, "not a valid proof"),
        (dataclasses.replace(NEWER, expires_at=50.0), 50.0, "not a valid proof"),
        (dataclasses.replace(NEWER, issued_later=False), 50.0, "not newer"),
    ],
)
def test_a_supersession_needs_a_newer_valid_proof_of_the_same_holder_and_type(
    successor: Successor | None, now: float, message: str
) -> None:
    with pytest.raises(InvalidSupersession, match=message):
        check_supersession("OLD", "NEW", successor, now)
    check_supersession("OLD", "NEW", NEWER, now)
