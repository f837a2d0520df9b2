"""The status lifecycle: the rules alone, then a state machine on the real registry."""

from __future__ import annotations

import asyncio
import itertools
import os
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from sealgate.verify.at_rest import DocumentCipher
from sealgate.verify.lifecycle import (
    DERIVED,
    TERMINAL,
    InvalidSupersession,
    LifecycleError,
    TerminalStatus,
    TransitionNotAllowed,
    check_transition,
)
from sealgate.verify.registry import ProofRecord, Status, StatusChangeRequest, WrongOffice
from sealgate.verify.sqlite import SqliteRegistry

S = Status
ALLOWED = {
    (S.VALID, S.PLEDGED), (S.PLEDGED, S.VALID), (S.VALID, S.CHANGED),
    *((a, b) for a in (S.VALID, S.PLEDGED, S.CHANGED) for b in TERMINAL),
}  # fmt: skip


@pytest.mark.parametrize(("current", "target"), list(itertools.product(Status, Status)))
def test_transition_table(current: Status, target: Status) -> None:
    superseded_by = "X" if target is S.CHANGED else None
    if current in DERIVED:
        return  # never stored
    if (current, target) in ALLOWED:
        check_transition(current, target, expired=False, superseded_by=superseded_by)
        return
    expected = TerminalStatus if current in TERMINAL and target not in DERIVED else LifecycleError
    with pytest.raises(expected):
        check_transition(current, target, expired=False, superseded_by=superseded_by)


def test_expired_proofs_are_not_pledged_or_changed_but_may_be_revoked() -> None:
    for target in (S.PLEDGED, S.CHANGED):
        with pytest.raises(TransitionNotAllowed):
            check_transition(
                S.VALID, target, expired=True, superseded_by="X" if target is S.CHANGED else None
            )
    check_transition(S.VALID, S.REVOKED, expired=True, superseded_by=None)
    check_transition(S.PLEDGED, S.VALID, expired=True, superseded_by=None)


def test_superseded_by_goes_with_changed_only() -> None:
    with pytest.raises(InvalidSupersession):
        check_transition(S.VALID, S.CHANGED, expired=False, superseded_by=None)
    with pytest.raises(InvalidSupersession):
        check_transition(S.VALID, S.REVOKED, expired=False, superseded_by="X")


def proof(
    code: str,
    holder: bytes = b"h" * 32,
    type_: str = "t",
    office: str = "O",
    issued_at: float = 1.0,
    expires_at: float | None = None,
) -> ProofRecord:
    return ProofRecord(
        code=code,
        seal_id="SEAL-1",
        unit_name="u",
        unit_code=office,
        type=type_,
        holder_kind="person",
        holder_name_masked="张*",
        holder_id_masked="1101**********002X",
        holder_key=holder,
        valid_from="2026-01-01",
        valid_until=None,
        expires_at=expires_at,
        issued_at=issued_at,
        status=S.VALID,
        status_changed_at=issued_at,
        superseded_by=None,
        signer_client="C-1",
        document=b"\x30\x00",
    )


class LifecycleMachine(RuleBasedStateMachine):
    """Random status changes on the real SQLite registry, checked against a model."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.directory = tempfile.TemporaryDirectory()
        self.registry = SqliteRegistry(
            Path(self.directory.name) / "r.db", DocumentCipher(os.urandom(32))
        )
        self.model: dict[str, Status] = {}
        self.applied: dict[str, list[tuple[Status, Status]]] = {}
        self.counter = itertools.count()
        self.run(self.registry.register([proof("P0")]))
        self.model["P0"] = S.VALID
        self.applied["P0"] = []

    def run(self, coroutine):  # type: ignore[no-untyped-def]
        return self.loop.run_until_complete(coroutine)

    def teardown(self) -> None:
        self.run(self.registry.close())
        self.loop.close()
        self.directory.cleanup()

    @rule(issued_offset=st.integers(min_value=0, max_value=2))
    def issue(self, issued_offset: int) -> None:
        code = f"P{next(self.counter) + 1}"
        self.run(self.registry.register([proof(code, issued_at=1.0 + issued_offset)]))
        self.model[code] = S.VALID
        self.applied[code] = []

    @rule(
        data=st.data(),
        wanted=st.sampled_from(list(Status)),
        reason=st.text(min_size=1, max_size=20),
    )
    def change(self, data: st.DataObject, wanted: Status, reason: str) -> None:
        target = wanted
        code = data.draw(st.sampled_from(sorted(self.model)))
        newer = None
        if target is S.CHANGED:
            newer = data.draw(st.sampled_from(sorted(self.model)))
        request = StatusChangeRequest(code, "O", target, reason, newer, "C-issuer", time.time())
        before = self.model[code]
        try:
            result = self.run(self.registry.change_status(request))
        except LifecycleError as exc:
            assert (before, target) not in ALLOWED or isinstance(exc, InvalidSupersession)
            if before in TERMINAL:
                assert isinstance(exc, TerminalStatus) or target in DERIVED
            return
        assert before not in TERMINAL, "a terminal status was left"
        assert (before, target) in ALLOWED
        assert result.status is target
        self.model[code] = target
        self.applied[code].append((before, target))

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data())
    def other_office_is_refused(self, data: st.DataObject) -> None:
        code = data.draw(st.sampled_from(sorted(self.model)))
        request = StatusChangeRequest(code, "OTHER", S.REVOKED, "x", None, "C-x", time.time())
        with pytest.raises(WrongOffice):
            self.run(self.registry.change_status(request))

    @invariant()
    def registry_matches_model_and_history_is_complete(self) -> None:
        for code, status in self.model.items():
            stored = self.run(self.registry.get_status(code))
            assert stored is not None
            assert stored.status is status
            history = self.run(self.registry.history(code))
            assert [(h.from_status, h.to_status) for h in history] == self.applied[code]
            assert stored.version == len(history)
            assert all(h.client_id == "C-issuer" and h.reason for h in history)


LifecycleMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=25, deadline=None
)
test_lifecycle_state_machine = pytest.mark.slow(LifecycleMachine.TestCase)
