"""The requests' rows and statements, written once for both backends (see
:mod:`sealgate.verify.rows`): a backend says only how it writes a parameter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sealgate.verify.requests import (
    Action,
    Mode,
    RequestEvent,
    RequestQuery,
    State,
    Tier,
    VerificationRequest,
)

REQUEST_COLUMNS = (
    "request_id, mode, tier, state, requester_client, requester_office, requester_unit,"
    " responder_office, responder_unit, proof_type, holder_kind, holder_name_masked,"
    " holder_id_masked, holder_key, matter, case_ref, registered_at, due_at, provisional,"
    " extended, answered_at, answer_code, reason, version"
)
EVENT_COLUMNS = (
    "request_id, action, from_state, to_state, tier, due_at, reason, approver, operator,"
    " client_id, at, code"
)
_MUTABLE: tuple[str, ...] = ("tier", "state", "due_at", "provisional", "extended")
_MUTABLE += ("answered_at", "answer_code", "reason", "version")
_LIST_ORDER = " ORDER BY due_at, request_id LIMIT "


@dataclass(frozen=True, slots=True)
class RequestQueries:
    """The statements in one placeholder style; every name spliced in is a constant."""

    insert_request: str
    select_request: str
    update_request: str
    insert_event: str
    events: str
    by_responder: str
    by_requester: str
    by_holder: str
    overdue_unannounced: str
    mark_announced: str
    count_overdue: str

    @classmethod
    def written_with(cls, param: Callable[[int], str]) -> RequestQueries:
        p = param

        def params(count: int) -> str:
            return ", ".join(p(n) for n in range(1, count + 1))

        sets = ", ".join(f"{name} = {p(n)}" for n, name in enumerate(_MUTABLE, start=1))
        # office, three stored states, the due_at bounds, the limit
        chosen = (
            f" = {p(1)} AND state IN ({p(2)}, {p(3)}, {p(4)})"
            f" AND due_at > {p(5)} AND due_at <= {p(6)}{_LIST_ORDER}{p(7)}"
        )
        select = f"SELECT {REQUEST_COLUMNS} FROM requests WHERE"  # noqa: S608
        return cls(
            insert_request=f"INSERT INTO requests ({REQUEST_COLUMNS}) VALUES ({params(24)})",  # noqa: S608
            select_request=f"{select} request_id = {p(1)}",
            update_request=(
                f"UPDATE requests SET {sets} WHERE request_id = {p(len(_MUTABLE) + 1)}"  # noqa: S608
            ),
            insert_event=f"INSERT INTO request_events ({EVENT_COLUMNS}) VALUES ({params(12)})",  # noqa: S608
            events=(
                f"SELECT {EVENT_COLUMNS} FROM request_events"  # noqa: S608
                f" WHERE request_id = {p(1)} ORDER BY seq"
            ),
            by_responder=f"{select} responder_office{chosen}",
            by_requester=f"{select} requester_office{chosen}",
            by_holder=(
                f"{select} holder_key = {p(1)} AND state IN ({p(2)}, {p(3)}, {p(4)})"
                f" AND due_at > {p(5)} AND due_at <= {p(6)}"
                f" ORDER BY registered_at DESC, request_id LIMIT {p(7)}"
            ),
            overdue_unannounced=(
                f"{select} state = 'accepted' AND due_at <= {p(1)}"
                f" AND overdue_announced_at IS NULL{_LIST_ORDER}{p(2)}"
            ),
            mark_announced=(
                f"UPDATE requests SET overdue_announced_at = {p(1)} WHERE request_id = {p(2)}"  # noqa: S608
            ),
            count_overdue=(
                f"SELECT count(*) FROM requests WHERE state = 'accepted' AND due_at <= {p(1)}"  # noqa: S608
            ),
        )

    def listing(self, query: RequestQuery) -> tuple[str, tuple[Any, ...]]:
        """The statement and parameters of a list."""
        states = query.stored_states
        states = (states * 3)[:3]  # always three placeholders: repeat the ones asked for
        lower, upper = query.due_bounds()
        tail = (*states, lower, upper, query.limit)
        if query.responder_office is not None:
            return self.by_responder, (query.responder_office, *tail)
        if query.requester_office is not None:
            return self.by_requester, (query.requester_office, *tail)
        if query.holder_key is not None:
            return self.by_holder, (query.holder_key, *tail)
        raise ValueError("a list names an office or a holder")


def request_row(r: VerificationRequest) -> tuple[Any, ...]:
    """The row of :data:`REQUEST_COLUMNS`."""
    return (
        r.request_id,
        r.mode.value,
        r.tier.value,
        r.state.value,
        r.requester_client,
        r.requester_office,
        r.requester_unit,
        r.responder_office,
        r.responder_unit,
        r.proof_type,
        r.holder_kind,
        r.holder_name_masked,
        r.holder_id_masked,
        r.holder_key,
        r.matter,
        r.case_ref,
        r.registered_at,
        r.due_at,
        int(r.provisional),
        int(r.extended),
        r.answered_at,
        r.answer_code,
        r.reason,
        r.version,
    )


def update_row(r: VerificationRequest) -> tuple[Any, ...]:
    """The parameters of :attr:`RequestQueries.update_request`."""
    return (
        r.tier.value,
        r.state.value,
        r.due_at,
        int(r.provisional),
        int(r.extended),
        r.answered_at,
        r.answer_code,
        r.reason,
        r.version,
        r.request_id,
    )


def request_from_row(row: tuple[Any, ...]) -> VerificationRequest:
    return VerificationRequest(
        request_id=row[0],
        mode=Mode(row[1]),
        tier=Tier(row[2]),
        state=State(row[3]),
        requester_client=row[4],
        requester_office=row[5],
        requester_unit=row[6],
        responder_office=row[7],
        responder_unit=row[8],
        proof_type=row[9],
        holder_kind=row[10],
        holder_name_masked=row[11],
        holder_id_masked=row[12],
        holder_key=bytes(row[13]),
        matter=row[14],
        case_ref=row[15],
        registered_at=row[16],
        due_at=row[17],
        provisional=bool(row[18]),
        extended=bool(row[19]),
        answered_at=row[20],
        answer_code=row[21],
        reason=row[22],
        version=row[23],
    )


def event_row(e: RequestEvent) -> tuple[Any, ...]:
    """The row of :data:`EVENT_COLUMNS`."""
    return (
        e.request_id,
        e.action.value,
        None if e.from_state is None else e.from_state.value,
        e.to_state.value,
        e.tier.value,
        e.due_at,
        e.reason,
        e.approver,
        e.operator,
        e.client_id,
        e.at,
        e.code,
    )


def event_from_row(row: tuple[Any, ...]) -> RequestEvent:
    return RequestEvent(
        request_id=row[0],
        action=Action(row[1]),
        from_state=None if row[2] is None else State(row[2]),
        to_state=State(row[3]),
        tier=Tier(row[4]),
        due_at=row[5],
        reason=row[6],
        approver=row[7],
        operator=row[8],
        client_id=row[9],
        at=row[10],
        code=row[11],
    )
