"""Verification requests between offices (协查核验) and online issuance requests (在线开具):
one state machine, as pure functions both registry backends apply in the transaction that
writes the change.

益阳 规程 第十三条–第十六条, 沂源 核验办法 第七条, 宁波 第十四条: the responding office
registers and accepts a request at once (its arrival is the clock's start), then answers
it within its tier's deadline, reclassifies it to a slower tier with a reason, extends an
extendable tier once by 5 working days with the approver named, or returns it with a
reason::

    accepted ──respond──▶ answered        (a sealed proof, its code recorded)
       │ ▲
       │ └─ reclassify (to a slower tier of the same mode), extend (once)
       └────return──────▶ returned
    overdue: an accepted request past its due_at; derived at each answer, never stored

Exceptions::

    RequestError
    ├── RequestNotFound     no request has that id (or it is not the caller's to see)
    ├── NotYourRequest      the request is another office's
    ├── RequestClosed       it was answered or returned already
    └── RequestRefused      the step is not allowed for this request (the message says why)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace

from sealgate.errors import Error
from sealgate.verify.directory import SealKind
from sealgate.verify.registry import ProofRecord
from sealgate.verify.request_kinds import Action as Action
from sealgate.verify.request_kinds import Mode as Mode
from sealgate.verify.request_kinds import State as State
from sealgate.verify.request_kinds import Tier as Tier
from sealgate.verify.workdays import Deadline, OfficeHours, WorkCalendar


class RequestError(Error):
    """Base of the requests' errors."""


class RequestNotFound(RequestError):
    """No request has that id."""


class NotYourRequest(RequestError):
    """The request is addressed to another office."""


class RequestClosed(RequestError):
    """The request was answered or returned: nothing more happens to it."""


class RequestRefused(RequestError):
    """The step is not allowed for this request now (a second extension, a tier that is
    not slower, an extension of a tier that has none)."""


# The seal kind each mode's answer is sealed with (益阳 第十七条).
SEAL_KIND = {Mode.VERIFY: SealKind.VERIFICATION, Mode.ISSUE: SealKind.PROOF}


@dataclass(frozen=True, slots=True)
class TierRule:
    mode: Mode
    minutes: int  # 0 unless counted in minutes
    working_days: int  # 0 unless counted in working days
    extendable: bool

    @property
    def length(self) -> tuple[int, int]:
        """Orders tiers from fastest to slowest."""
        return (self.working_days, self.minutes)


TIERS = {
    Tier.DATABASE: TierRule(Mode.VERIFY, 30, 0, False),
    Tier.PAPER: TierRule(Mode.VERIFY, 0, 1, False),
    Tier.ARCHIVE: TierRule(Mode.VERIFY, 0, 2, True),
    Tier.ONLINE: TierRule(Mode.ISSUE, 0, 1, False),
    Tier.COMPLEX: TierRule(Mode.ISSUE, 0, 2, True),
}
EXTENSION_WORKING_DAYS = 5


@dataclass(frozen=True, slots=True)
class Deadlines:
    """How a tier's deadline is counted: the calendar, and the city's office hours for
    the minutes tier (``None``: every minute counts)."""

    calendar: WorkCalendar
    office_hours: OfficeHours | None = None

    def due(self, tier: Tier, registered_at: float) -> Deadline:
        rule = TIERS[tier]
        if rule.minutes:
            return self.calendar.office_time_after(
                registered_at, rule.minutes * 60, self.office_hours
            )
        return self.calendar.working_days_after(registered_at, rule.working_days)

    def extended(self, due_at: float) -> Deadline:
        """5 more working days after the day a working-day deadline closes."""
        return self.calendar.working_days_after(due_at - 1, EXTENSION_WORKING_DAYS)


@dataclass(frozen=True, slots=True)
class VerificationRequest:
    """One request as the registry keeps it. The holder appears only masked and as the
    keyed hash of the holder's id (as in a proof record)."""

    request_id: str
    mode: Mode
    tier: Tier
    state: State  # as stored: accepted, answered or returned
    requester_client: str
    requester_office: str  # unit codes (统一社会信用代码) and names as the directory knows them
    requester_unit: str
    responder_office: str
    responder_unit: str
    proof_type: str
    holder_kind: str
    holder_name_masked: str
    holder_id_masked: str
    holder_key: bytes
    matter: str  # 事项
    case_ref: str
    registered_at: float
    due_at: float
    provisional: bool
    extended: bool
    answered_at: float | None
    answer_code: str | None  # compact code of the sealed answer
    reason: str | None  # of the last reclassification, extension or return
    version: int

    def state_at(self, now: float) -> State:
        """The state a reader sees: ``overdue`` once an accepted request is past due."""
        if self.state is State.ACCEPTED and now >= self.due_at:
            return State.OVERDUE
        return self.state


@dataclass(frozen=True, slots=True)
class RequestEvent:
    """One step of a request's life: what, by whom (client and staff member), when, why."""

    request_id: str
    action: Action
    from_state: State | None
    to_state: State
    tier: Tier
    due_at: float
    reason: str | None
    approver: str | None
    operator: str
    client_id: str
    at: float
    code: str | None


@dataclass(frozen=True, slots=True)
class Transition:
    """A responding office's step on a request."""

    request_id: str
    action: Action
    office: str  # the unit code of the office acting: must be the request's responder
    client_id: str
    operator: str
    at: float
    reason: str | None = None
    tier: Tier | None = None  # reclassify
    approver: str | None = None  # extend
    code: str | None = None  # respond: the compact code of the sealed answer


def registered(request: VerificationRequest, operator: str) -> RequestEvent:
    """The first event of a request: registered and accepted on arrival."""
    return RequestEvent(
        request.request_id,
        Action.REGISTER,
        None,
        State.ACCEPTED,
        request.tier,
        request.due_at,
        None,
        None,
        operator,
        request.requester_client,
        request.registered_at,
        None,
    )


def decide(
    current: VerificationRequest | None, step: Transition, deadlines: Deadlines
) -> tuple[VerificationRequest, RequestEvent]:
    """The request after ``step`` and the event recording it; raises when the step is not
    allowed. The order of the checks is the contract: not found, other office, closed,
    then the step's own rules."""
    if current is None:
        raise RequestNotFound("no request has that id")
    if current.responder_office != step.office:
        raise NotYourRequest("the request is addressed to another office")
    if current.state is not State.ACCEPTED:
        raise RequestClosed(f"the request was {current.state.value} already")
    rule = TIERS[current.tier]
    updated: VerificationRequest
    if step.action is Action.RESPOND:
        if step.code is None:  # pragma: no cover - the gateway always seals first
            raise RequestRefused("an answer needs its sealed proof")
        updated = replace(
            current,
            state=State.ANSWERED,
            answered_at=step.at,
            answer_code=step.code,
        )
    elif step.action is Action.RETURN:
        updated = replace(current, state=State.RETURNED, answered_at=step.at, reason=step.reason)
    elif step.action is Action.RECLASSIFY:
        target = step.tier
        if target is None or TIERS[target].mode is not current.mode:
            raise RequestRefused(f"a {current.mode.value} request has no such tier")
        if TIERS[target].length <= rule.length:
            raise RequestRefused("a request is reclassified only to a slower tier")
        if current.extended:
            raise RequestRefused("an extended request cannot be reclassified")
        due = deadlines.due(target, current.registered_at)
        updated = replace(
            current, tier=target, due_at=due.at, provisional=due.provisional, reason=step.reason
        )
    elif step.action is Action.EXTEND:
        if not rule.extendable:
            raise RequestRefused(f"the {current.tier.value} tier cannot be extended")
        if current.extended:
            raise RequestRefused("the request was extended once already")
        due = deadlines.extended(current.due_at)
        updated = replace(
            current,
            due_at=due.at,
            provisional=current.provisional or due.provisional,
            extended=True,
            reason=step.reason,
        )
    else:  # pragma: no cover - registration is not a transition
        raise RequestRefused(f"{step.action.value} is not a step on a request")
    updated = replace(updated, version=current.version + 1)
    event = RequestEvent(
        current.request_id,
        step.action,
        current.state,
        updated.state,
        updated.tier,
        updated.due_at,
        step.reason,
        step.approver,
        step.operator,
        step.client_id,
        step.at,
        step.code,
    )
    return updated, event


@dataclass(frozen=True, slots=True)
class RequestQuery:
    """Which requests a list shows: one office's inbox (responder) or outbox
    (requester), or one holder's, with a state (derived ``overdue`` included)."""

    at: float  # "now", for accepted vs overdue
    responder_office: str | None = None
    requester_office: str | None = None
    holder_key: bytes | None = None
    state: State | None = None
    limit: int = 100

    def due_bounds(self) -> tuple[float, float]:
        """The due_at range (lower exclusive, upper inclusive) the state asks for."""
        if self.state is State.ACCEPTED:
            return (self.at, 1e18)
        if self.state is State.OVERDUE:
            return (-1.0, self.at)
        return (-1.0, 1e18)

    @property
    def stored_states(self) -> tuple[str, ...]:
        if self.state is None:
            return tuple(s.value for s in State if s is not State.OVERDUE)
        if self.state is State.OVERDUE:
            return (State.ACCEPTED.value,)
        return (self.state.value,)


class RequestBook(ABC):
    """Where requests are kept: the registry's store, so an answer's proof and the
    request's change commit in one transaction. Every write is durable on return."""

    @abstractmethod
    async def create_request(self, request: VerificationRequest, operator: str) -> None:
        """Store a new request with its registration event."""

    @abstractmethod
    async def change_request(
        self,
        step: Transition,
        deadlines: Deadlines,
        proofs: list[ProofRecord] | None = None,
    ) -> VerificationRequest:
        """Apply ``step`` (see :func:`decide`) and record its event, registering
        ``proofs`` (the sealed answer) in the same transaction."""

    @abstractmethod
    async def get_request(
        self, request_id: str
    ) -> tuple[VerificationRequest, list[RequestEvent]] | None:
        """A request with its events, oldest first; ``None`` if unknown."""

    @abstractmethod
    async def list_requests(self, query: RequestQuery) -> list[VerificationRequest]:
        """The requests ``query`` selects, soonest due first (a holder's: newest first)."""

    @abstractmethod
    async def overdue_unannounced(self, now: float, limit: int) -> list[VerificationRequest]:
        """Accepted requests past due whose lateness no webhook has acknowledged."""

    @abstractmethod
    async def mark_announced(self, request_id: str, at: float) -> None:
        """Record that the webhook acknowledged the request's lateness."""

    @abstractmethod
    async def count_overdue(self, now: float) -> int:
        """How many accepted requests are past due."""
