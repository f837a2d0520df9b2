"""The gateway's side of verification requests: who may do what, the deadlines' calendar,
the answer sealed through the sealing path with the seal the mode requires and an
endorsement filled from the request, and the views each party sees.

The state machine itself is :mod:`sealgate.verify.requests`; each change is decided and
written by the registry in one transaction (the answer's proof with it), durable before
it is answered, its intent journaled before it is made.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from sealgate.gateway.catalog import SealCatalog
from sealgate.gateway.instants import rfc3339
from sealgate.gateway.problems import Problem
from sealgate.gateway.request_parsing import NewRequest, StepBody
from sealgate.gateway.requests import EndorsementRequest, ProofRequest
from sealgate.gateway.sealing import Ahead, SealingService, format_code
from sealgate.verify.directory import Client, Directory, SealScope
from sealgate.verify.holders import HolderKeys, mask_id, mask_name
from sealgate.verify.registry import ProofRecord
from sealgate.verify.requests import (
    SEAL_KIND,
    TIERS,
    Action,
    Deadlines,
    RequestBook,
    RequestEvent,
    RequestQuery,
    State,
    Transition,
    VerificationRequest,
)
from sealgate.verify.workdays import OfficeHours, WorkCalendar, parse_year

log = logging.getLogger("sealgate.gateway")


def load_calendar(directory: Directory) -> WorkCalendar:
    """The package's years with the operator's loaded years over them (blocking)."""
    return WorkCalendar(parse_year(text) for text in directory.calendar_years())


class RequestDesk:
    def __init__(
        self,
        *,
        book: RequestBook,
        catalog: SealCatalog,
        sealing: SealingService,
        holder_keys: HolderKeys,
        calendar: WorkCalendar,
        office_hours: OfficeHours | None,
        clock: Callable[[], float],
    ) -> None:
        self._book = book
        self._catalog = catalog
        self._sealing = sealing
        self._holder_keys = holder_keys
        self._clock = clock
        self.office_hours = office_hours
        self.calendar = calendar

    @property
    def deadlines(self) -> Deadlines:
        return Deadlines(self.calendar, self.office_hours)

    def _office(self, client: Client) -> tuple[str, str]:
        """The caller's office and its name as the directory knows it."""
        name = None if client.office is None else self._catalog.unit_name(client.office)
        if client.office is None or name is None:
            raise Problem(403, "no-office", "This client belongs to no office the directory knows")
        return client.office, name

    async def create(
        self,
        client: Client,
        body: NewRequest,
        operator: str,
        ahead: Callable[[str], Awaitable[None]],
    ) -> VerificationRequest:
        office, unit = self._office(client)
        responder_unit = self._catalog.unit_name(body.responder_office)
        if responder_unit is None:
            raise Problem(
                422,
                "unknown-office",
                "The responding office is not one the directory knows",
                field="responder",
            )
        now = self._clock()
        due = self.deadlines.due(body.tier, now)
        request = VerificationRequest(
            request_id="R-" + secrets.token_hex(10),
            mode=body.mode,
            tier=body.tier,
            state=State.ACCEPTED,  # registered and accepted on arrival: the clock starts
            requester_client=client.client_id,
            requester_office=office,
            requester_unit=unit,
            responder_office=body.responder_office,
            responder_unit=responder_unit,
            proof_type=body.proof_type,
            holder_kind=body.holder_kind.value,
            holder_name_masked=mask_name(body.holder_name),
            holder_id_masked=mask_id(body.holder_id),
            holder_key=self._holder_keys.key(body.holder_kind, body.holder_id),
            matter=body.matter,
            case_ref=body.case_ref,
            registered_at=now,
            due_at=due.at,
            provisional=due.provisional,
            extended=False,
            answered_at=None,
            answer_code=None,
            reason=None,
            version=0,
        )
        await ahead(request.request_id)
        await self._book.create_request(request, operator)
        return request

    def now(self) -> float:
        return self._clock()

    async def responders(self, client: Client, request_id: str) -> VerificationRequest:
        """The request, if it is addressed to the caller's office (else the same 404)."""
        found = await self._book.get_request(request_id)
        if found is None or found[0].responder_office != client.office:
            raise Problem(404, "request-not-found", "No such request for this office")
        return found[0]

    async def respond(
        self,
        client: Client,
        current: VerificationRequest,
        answer: ProofRequest,
        operator: str,
        ahead: Ahead,
    ) -> tuple[VerificationRequest, ProofRecord]:
        """Answer ``current`` (read with :meth:`responders`)."""
        office, _ = self._office(client)
        request_id = current.request_id
        seal = self._catalog.seal(answer.seal_id)
        if seal is not None and answer.seal_id in client.seals:
            wanted = SEAL_KIND[current.mode]
            if seal.kind is not wanted:
                raise Problem(
                    422,
                    "seal-kind-mismatch",
                    f"A {current.mode.value} request is answered with a {wanted.value} seal",
                    field="seal_id",
                )
            if seal.scope is SealScope.UNIT and seal.unit_code != office:
                raise Problem(403, "seal-not-granted", "The seal is another unit's")
        if self._holder_keys.key(answer.holder_kind, answer.holder_id) != current.holder_key:
            raise Problem(
                422, "holder-mismatch", "The answer is about another holder", field="holder"
            )
        # 宁波 第十四条: the platform endorses who extracted (the requesting office), who
        # verified (the responding office) and when: from the request, never typed.
        endorsed = replace(
            answer,
            endorsement=EndorsementRequest(current.requester_unit, current.responder_unit),
        )

        async def store(proofs: list[ProofRecord]) -> VerificationRequest:
            step = self._step(client, request_id, Action.RESPOND, operator, code=proofs[0].code)
            return await self._book.change_request(step, self.deadlines, proofs)

        proof, updated = await self._sealing.seal_answer(client, endorsed, ahead=ahead, store=store)
        return updated, proof

    async def step(
        self,
        client: Client,
        request_id: str,
        action: Action,
        body: StepBody,
        operator: str,
        ahead: Ahead,
    ) -> VerificationRequest:
        self._office(client)
        await self.responders(client, request_id)
        step = self._step(
            client,
            request_id,
            action,
            operator,
            reason=body.reason,
            tier=body.tier,
            approver=body.approver,
        )
        await ahead([])
        return await self._book.change_request(step, self.deadlines)

    def _step(
        self, client: Client, request_id: str, action: Action, operator: str, **fields: Any
    ) -> Transition:
        return Transition(
            request_id=request_id,
            action=action,
            office=client.office or "",
            client_id=client.client_id,
            operator=operator,
            at=self._clock(),
            **fields,
        )

    async def read(
        self, client: Client, request_id: str
    ) -> tuple[VerificationRequest, list[RequestEvent]]:
        """A request as its requester or its responder sees it."""
        found = await self._book.get_request(request_id)
        if found is None or client.office not in (
            found[0].requester_office,
            found[0].responder_office,
        ):
            raise Problem(404, "request-not-found", "No such request for this office")
        return found

    async def listing(self, query: RequestQuery) -> list[VerificationRequest]:
        return await self._book.list_requests(query)

    def view(
        self, r: VerificationRequest, events: list[RequestEvent] | None = None
    ) -> dict[str, Any]:
        now = self._clock()
        rule = TIERS[r.tier]
        body: dict[str, Any] = {
            "id": r.request_id,
            "mode": r.mode.value,
            "tier": r.tier.value,
            "state": r.state_at(now).value,
            "requester": {"unit_name": r.requester_unit, "unit_code": r.requester_office},
            "responder": {"unit_name": r.responder_unit, "unit_code": r.responder_office},
            "type": r.proof_type,
            "holder": {
                "kind": r.holder_kind,
                "name": r.holder_name_masked,
                "id": r.holder_id_masked,
            },
            "matter": r.matter,
            "case_ref": r.case_ref,
            "registered_at": rfc3339(r.registered_at),
            "due_at": rfc3339(r.due_at),
            "provisional": r.provisional,
            "extendable": rule.extendable and not r.extended and r.state is State.ACCEPTED,
            "extended": r.extended,
            "answered_at": None if r.answered_at is None else rfc3339(r.answered_at),
            # 第十六条: the time spent is excluded from the requester's own promise
            "elapsed_seconds": None
            if r.answered_at is None
            else round(r.answered_at - r.registered_at, 3),
            "answer_code": None if r.answer_code is None else format_code(r.answer_code),
            "reason": r.reason,
        }
        if events is not None:
            body["events"] = [
                {
                    "action": e.action.value,
                    "from": None if e.from_state is None else e.from_state.value,
                    "to": e.to_state.value,
                    "tier": e.tier.value,
                    "due_at": rfc3339(e.due_at),
                    "reason": e.reason,
                    "approver": e.approver,
                    "operator": e.operator,
                    "by": e.client_id,
                    "at": rfc3339(e.at),
                }
                for e in events
            ]
        return body

    def holder_view(self, r: VerificationRequest) -> dict[str, Any]:
        """What the holder's personal space shows: no case file, no staff."""
        full = self.view(r)
        keep: tuple[str, ...] = ("id", "mode", "state", "requester", "responder", "type")
        keep += ("matter",)
        keep += ("registered_at", "due_at", "answered_at", "answer_code", "reason")
        return {k: full[k] for k in keep}
