"""The requests' contract on both backends (SQLite and a real PostgreSQL): the state
machine applied inside the write, an answer's proof committed with it or not at all,
racing answers, and the lists each party sees (overdue derived, never stored)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import AsyncIterator

import pytest

from sealgate.verify.at_rest import DocumentCipher
from sealgate.verify.registry import CodeTaken, Registry
from sealgate.verify.requests import (
    Action,
    Deadlines,
    Mode,
    NotYourRequest,
    RequestBook,
    RequestClosed,
    RequestNotFound,
    RequestQuery,
    RequestRefused,
    State,
    Tier,
    Transition,
    VerificationRequest,
)
from sealgate.verify.workdays import WorkCalendar
from tests.verify.backends import BACKENDS, Backend, open_backend
from tests.verify.test_lifecycle import proof

DEADLINES = Deadlines(WorkCalendar())
T0 = 1_790_000_000.0  # 2026-09-21 (a Monday), in a year the calendar knows


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: object) -> Backend:
    return open_backend(request, tmp_path)  # type: ignore[arg-type]


@pytest.fixture
async def book(backend: Backend) -> AsyncIterator[Registry]:
    registry = backend.registry(DocumentCipher(os.urandom(32)))
    assert isinstance(registry, RequestBook)
    yield registry
    await registry.close()


def request(request_id: str, tier: Tier = Tier.DATABASE, **fields: object) -> VerificationRequest:
    due = DEADLINES.due(tier, T0)
    base = VerificationRequest(
        request_id=request_id,
        mode=Mode.VERIFY,
        tier=tier,
        state=State.ACCEPTED,
        requester_client="C-req",
        requester_office="REQ",
        requester_unit="人社局",
        responder_office="O",
        responder_unit="公安局",
        proof_type="无犯罪记录证明",
        holder_kind="person",
        holder_name_masked="张*",
        holder_id_masked="1101**********002X",
        holder_key=b"h" * 32,
        matter="事项",
        case_ref="CASE-1",
        registered_at=T0,
        due_at=due.at,
        provisional=due.provisional,
        extended=False,
        answered_at=None,
        answer_code=None,
        reason=None,
        version=0,
    )
    return dataclasses.replace(base, **fields)  # type: ignore[arg-type]


def step(request_id: str, action: Action, office: str = "O", **fields: object) -> Transition:
    return Transition(
        request_id=request_id,
        action=action,
        office=office,
        client_id="C-resp",
        operator="staff-1",
        at=T0 + 60,
        **fields,  # type: ignore[arg-type]
    )


def book_of(registry: Registry) -> RequestBook:
    assert isinstance(registry, RequestBook)
    return registry


async def test_a_request_reads_back_with_its_registration(book: Registry) -> None:
    requests = book_of(book)
    created = request("R-1")
    await requests.create_request(created, "staff-9")
    found = await requests.get_request("R-1")
    assert found is not None
    stored, events = found
    assert stored == created
    assert [(e.action, e.operator, e.to_state) for e in events] == [
        (Action.REGISTER, "staff-9", State.ACCEPTED)
    ]
    assert await requests.get_request("R-none") is None


async def test_an_answer_and_its_proof_commit_together_or_not_at_all(book: Registry) -> None:
    requests = book_of(book)
    await requests.create_request(request("R-1"), "s")
    answered = await requests.change_request(
        step("R-1", Action.RESPOND, code="A"), DEADLINES, [proof("A")]
    )
    assert (answered.state, answered.answer_code, answered.answered_at) == (
        State.ANSWERED,
        "A",
        T0 + 60,
    )
    assert await book.get("A") is not None
    with pytest.raises(RequestClosed):
        await requests.change_request(
            step("R-1", Action.RESPOND, code="B"), DEADLINES, [proof("B")]
        )
    assert await book.get("B") is None  # refused: its proof is not registered either
    # a taken code leaves the request as it was
    await requests.create_request(request("R-2"), "s")
    with pytest.raises(CodeTaken):
        await requests.change_request(
            step("R-2", Action.RESPOND, code="A"), DEADLINES, [proof("A")]
        )
    found = await requests.get_request("R-2")
    assert found is not None and found[0].state is State.ACCEPTED and len(found[1]) == 1


async def test_racing_answers_take_one(book: Registry) -> None:
    requests = book_of(book)
    await requests.create_request(request("R-1"), "s")
    outcomes = await asyncio.gather(
        *(
            requests.change_request(
                step("R-1", Action.RESPOND, code=f"P{i}"), DEADLINES, [proof(f"P{i}")]
            )
            for i in range(6)
        ),
        return_exceptions=True,
    )
    answered = [o for o in outcomes if isinstance(o, VerificationRequest)]
    assert len(answered) == 1
    assert all(isinstance(o, RequestClosed) for o in outcomes if o not in answered)
    registered = [c for c in (f"P{i}" for i in range(6)) if await book.get(c) is not None]
    assert registered == [answered[0].answer_code]


async def test_steps_refused_leave_nothing(book: Registry) -> None:
    requests = book_of(book)
    await requests.create_request(request("R-1", Tier.ARCHIVE), "s")
    with pytest.raises(RequestNotFound):
        await requests.change_request(step("R-x", Action.RETURN, reason="r"), DEADLINES)
    with pytest.raises(NotYourRequest):
        await requests.change_request(step("R-1", Action.RETURN, "P", reason="r"), DEADLINES)
    extend = step("R-1", Action.EXTEND, reason="档案调阅", approver="head-1")
    once = await requests.change_request(extend, DEADLINES)
    assert once.extended and once.version == 1
    with pytest.raises(RequestRefused):
        await requests.change_request(extend, DEADLINES)
    found = await requests.get_request("R-1")
    assert found is not None
    assert found[0] == once
    assert [e.action for e in found[1]] == [Action.REGISTER, Action.EXTEND]
    assert found[1][1].approver == "head-1"


async def test_lists_by_office_holder_and_state(book: Registry) -> None:
    requests = book_of(book)
    await requests.create_request(request("R-1"), "s")  # due T0 + 30 min
    await requests.create_request(request("R-2", Tier.PAPER), "s")
    await requests.create_request(request("R-3", responder_office="P"), "s")
    await requests.change_request(step("R-2", Action.RETURN, reason="不属于本单位"), DEADLINES)

    async def ids(**query: object) -> list[str]:
        found = await requests.list_requests(RequestQuery(**query))  # type: ignore[arg-type]
        return [r.request_id for r in found]

    late = T0 + 31 * 60
    assert await ids(at=T0, responder_office="O") == ["R-1", "R-2"]
    assert await ids(at=T0, responder_office="O", state=State.ACCEPTED) == ["R-1"]
    assert await ids(at=late, responder_office="O", state=State.ACCEPTED) == []
    assert await ids(at=late, responder_office="O", state=State.OVERDUE) == ["R-1"]
    assert await ids(at=late, responder_office="O", state=State.RETURNED) == ["R-2"]
    assert await ids(at=T0, requester_office="REQ", limit=2) == ["R-1", "R-3"]
    assert sorted(await ids(at=T0, holder_key=b"h" * 32)) == ["R-1", "R-2", "R-3"]
    assert await requests.count_overdue(T0) == 0
    assert await requests.count_overdue(late) == 2
    unannounced = await requests.overdue_unannounced(late, 10)
    assert [r.request_id for r in unannounced] == ["R-1", "R-3"]
    await requests.mark_announced("R-1", late)
    assert [r.request_id for r in await requests.overdue_unannounced(late, 10)] == ["R-3"]
