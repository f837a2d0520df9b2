"""Verification requests (协查核验, 在线开具) and holders' consents as the client sends and
reads them (docs/design.md §12, §14): the requests' words are the registry's own
(:mod:`sealgate.verify.request_kinds`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sealgate.client.codes import normalise_holder_id
from sealgate.client.errors import UnexpectedAnswer
from sealgate.client.fields import Fields
from sealgate.client.models import Holder, MaskedHolder, Unit, decode_document, proof_body
from sealgate.verify.request_kinds import Action, Mode, State, Tier

__all__ = [
    "Action",
    "Consent",
    "HolderRequest",
    "Mode",
    "NewRequest",
    "RequestAnswer",
    "RequestStep",
    "State",
    "Tier",
    "VerificationRequest",
]


def holder_json(holder: Holder) -> dict[str, str]:
    """The holder as sent, its number checked here first (a typo costs no request)."""
    return {
        "kind": holder.kind.value,
        "id": normalise_holder_id(holder.id),
        "name": holder.name,
    }


@dataclass(frozen=True, slots=True)
class NewRequest:
    """A request a requesting office sends (``POST /v1/requests``): ``responder`` is the
    统一社会信用代码 of the office asked; the tier must be one of the mode's (verify:
    database, paper, archive; issue: online, complex)."""

    responder: str
    type: str
    holder: Holder
    matter: str  # 事项: the matter being handled
    case_ref: str  # the requesting office's own case number
    mode: Mode = Mode.VERIFY
    tier: Tier = Tier.DATABASE

    def to_json(self) -> dict[str, Any]:
        return {
            "responder": normalise_holder_id(self.responder),
            "type": self.type,
            "holder": holder_json(self.holder),
            "matter": self.matter,
            "case_ref": self.case_ref,
            "mode": Mode(self.mode).value,
            "tier": Tier(self.tier).value,
        }


@dataclass(frozen=True, slots=True)
class RequestAnswer:
    """The responding office's answer to a request: a proof without its type and
    endorsement, which the gateway fills from the request (neither may be typed)."""

    seal_id: str
    holder: Holder  # must be the request's holder (422 holder-mismatch)
    content: Mapping[str, Any]
    valid_from: str
    valid_until: str | None = None

    def to_json(self) -> dict[str, Any]:
        holder = holder_json(self.holder)
        return proof_body(self.seal_id, holder, self.content, self.valid_from, self.valid_until)


@dataclass(frozen=True, slots=True)
class RequestStep:
    """One step of a request's life: what, by which client and staff member, when, why."""

    action: Action
    from_state: State | None
    to_state: State
    tier: Tier
    due_at: dt.datetime
    reason: str | None
    approver: str | None
    operator: str  # the staff identifier the step named (X-Operator)
    by: str  # the client's id
    at: dt.datetime

    @classmethod
    def read(cls, f: Fields) -> RequestStep:
        return cls(
            action=f.word("action", Action),
            from_state=f.maybe_word("from", State),
            to_state=f.word("to", State),
            tier=f.word("tier", Tier),
            due_at=f.time("due_at"),
            reason=f.maybe_text("reason"),
            approver=f.maybe_text("approver"),
            operator=f.text("operator"),
            by=f.text("by"),
            at=f.time("at"),
        )


@dataclass(frozen=True, slots=True)
class VerificationRequest:
    """A request as its requester and its responder see it; ``state`` is ``overdue`` once
    an accepted request is past ``due_at``. ``steps``: every step, with
    :meth:`Client.request` (and none yet in :meth:`Client.create_request`'s answer);
    ``document``: the sealed answer (CMS DER), with :meth:`Client.respond` only."""

    id: str
    mode: Mode
    tier: Tier
    state: State
    requester: Unit
    responder: Unit
    type: str
    holder: MaskedHolder
    matter: str
    case_ref: str
    registered_at: dt.datetime
    due_at: dt.datetime
    provisional: bool  # due_at in a year the working-day calendar does not know yet
    extendable: bool
    extended: bool
    answered_at: dt.datetime | None
    elapsed_seconds: float | None  # registered to answered (第十六条)
    answer_code: str | None
    reason: str | None  # of the last reclassification, extension or return
    steps: tuple[RequestStep, ...] | None = None
    document: bytes | None = field(default=None, repr=False)

    @classmethod
    def read(cls, f: Fields) -> VerificationRequest:
        return cls(
            id=f.text("id"),
            mode=f.word("mode", Mode),
            tier=f.word("tier", Tier),
            state=f.word("state", State),
            requester=Unit.read(f.obj("requester")),
            responder=Unit.read(f.obj("responder")),
            type=f.text("type"),
            holder=MaskedHolder.read(f.obj("holder")),
            matter=f.text("matter"),
            case_ref=f.text("case_ref"),
            registered_at=f.time("registered_at"),
            due_at=f.time("due_at"),
            provisional=f.flag("provisional"),
            extendable=f.flag("extendable"),
            extended=f.flag("extended"),
            answered_at=f.maybe_time("answered_at"),
            elapsed_seconds=f.maybe_real("elapsed_seconds"),
            answer_code=f.maybe_text("answer_code"),
            reason=f.maybe_text("reason"),
            steps=tuple(RequestStep.read(e) for e in f.items("events"))
            if f.has("events")
            else None,
            document=decode_document(f) if f.has("document") else None,
        )

    @classmethod
    def parse(cls, body: Any) -> VerificationRequest:
        return cls.read(Fields(body, "request"))

    @classmethod
    def parse_list(cls, body: Any) -> list[VerificationRequest]:
        return [cls.read(item) for item in Fields(body, "requests").items("items")]


@dataclass(frozen=True, slots=True)
class HolderRequest:
    """A request as the holder's personal space shows it: no case file, no staff."""

    id: str
    mode: Mode
    state: State
    requester: Unit
    responder: Unit
    type: str
    matter: str
    registered_at: dt.datetime
    due_at: dt.datetime
    answered_at: dt.datetime | None
    answer_code: str | None
    reason: str | None

    @classmethod
    def parse_list(cls, body: Any) -> list[HolderRequest]:
        return [
            cls(
                id=f.text("id"),
                mode=f.word("mode", Mode),
                state=f.word("state", State),
                requester=Unit.read(f.obj("requester")),
                responder=Unit.read(f.obj("responder")),
                type=f.text("type"),
                matter=f.text("matter"),
                registered_at=f.time("registered_at"),
                due_at=f.time("due_at"),
                answered_at=f.maybe_time("answered_at"),
                answer_code=f.maybe_text("answer_code"),
                reason=f.maybe_text("reason"),
            )
            for f in Fields(body, "holder requests").items("items")
        ]


@dataclass(frozen=True, slots=True)
class Consent:
    """A holder's consent to a verifier (``grantee``, its client id) reading the holder's
    proofs of ``proof_types`` for ``matter`` (事项), until ``expires_at``, ``uses_left``
    more times. ``token`` comes with :meth:`Client.grant_consent` only: the verifier
    presents it (``consent_token=``) on a document download or a reuse lookup."""

    consent_id: str
    grantee: str
    matter: str
    proof_types: tuple[str, ...]
    expires_at: dt.datetime
    uses_left: int
    revoked: bool
    token: str | None = field(default=None, repr=False)

    @classmethod
    def read(cls, f: Fields) -> Consent:
        return cls(
            consent_id=f.text("consent_id"),
            grantee=f.text("grantee"),
            matter=f.text("matter"),
            proof_types=tuple(f.texts("proof_types")),
            expires_at=f.time("expires_at"),
            uses_left=f.number("uses_left"),
            revoked=f.flag("revoked"),
            token=f.maybe_text("token"),
        )

    @classmethod
    def parse(cls, body: Any) -> Consent:
        consent = cls.read(Fields(body, "consent"))
        if consent.token is None:
            raise UnexpectedAnswer("consent: a grant without its token")
        return consent

    @classmethod
    def parse_list(cls, body: Any) -> list[Consent]:
        return [cls.read(item) for item in Fields(body, "consents").items("items")]
