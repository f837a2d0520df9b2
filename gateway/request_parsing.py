"""Strict parsing of the verification requests' bodies and headers (the routes of
:mod:`sealgate.gateway.handlers.requests`), in the manner of
:mod:`sealgate.gateway.requests`: every field checked, unknown fields refused."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sealgate.gateway.requests import (
    MAX_HOLDER_ID,
    MAX_HOLDER_NAME,
    MAX_PROOF_TYPE,
    MAX_REASON,
    InvalidRequest,
    ProofRequest,
    _object,
    _text,
    parse_proof_request,
)
from sealgate.verify.holders import (
    HolderKind,
    InvalidHolderId,
    normalise_holder_id,
    require_birth_date,
)
from sealgate.verify.requests import TIERS, Mode, State, Tier

MAX_MATTER = 200
MAX_CASE_REF = 64
MAX_OPERATOR = 64
MAX_LIST = 500
# A staff member's identifier: a plain token, never a name or an identity number
# (宁波 第十四条/第十七条: the designated operator is recorded, nothing more of them).
_OPERATOR = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,63}")
_ID_NUMBER = re.compile(r"\d{15}|\d{17}[\dXx]")


@dataclass(frozen=True, slots=True)
class NewRequest:
    responder_office: str
    proof_type: str
    holder_kind: HolderKind
    holder_id: str  # normalised, checked; never logged
    holder_name: str
    matter: str
    case_ref: str
    mode: Mode
    tier: Tier


@dataclass(frozen=True, slots=True)
class StepBody:
    reason: str | None = None
    tier: Tier | None = None
    approver: str | None = None


def parse_operator(value: str | None) -> str:
    """The ``X-Operator`` header: required on every request write."""
    if value is None:
        raise InvalidRequest("X-Operator", "is required: the acting staff member's identifier")
    if not _OPERATOR.fullmatch(value) or _ID_NUMBER.search(value):
        raise InvalidRequest(
            "X-Operator",
            "must be a staff identifier (a letter, then letters, digits, '.', '_' or '-';"
            " at most 64), never a name or an identity number",
        )
    return value


def _holder(value: Any) -> tuple[HolderKind, str, str]:
    holder = _object(value, "holder", {"kind", "id", "name"}, set())
    try:
        kind = HolderKind(holder["kind"])
    except (ValueError, TypeError):
        raise InvalidRequest("holder.kind", "must be 'person' or 'org'") from None
    try:
        holder_id = normalise_holder_id(kind, _text(holder["id"], "holder.id", limit=MAX_HOLDER_ID))
        if kind is HolderKind.PERSON:
            require_birth_date(holder_id)
    except InvalidHolderId as exc:
        raise InvalidRequest("holder.id", str(exc)) from None
    return kind, holder_id, _text(holder["name"], "holder.name", limit=MAX_HOLDER_NAME)


def parse_new_request(value: Any) -> NewRequest:
    obj = _object(
        value,
        "",
        {"responder", "type", "holder", "matter", "case_ref", "mode", "tier"},
        set(),
    )
    try:
        responder = normalise_holder_id(
            HolderKind.ORG, _text(obj["responder"], "responder", limit=MAX_HOLDER_ID)
        )
    except InvalidHolderId as exc:
        raise InvalidRequest("responder", f"not a 统一社会信用代码: {exc}") from None
    try:
        mode = Mode(obj["mode"])
    except (ValueError, TypeError):
        raise InvalidRequest("mode", "must be 'verify' or 'issue'") from None
    tier = _tier(obj["tier"], "tier")
    if TIERS[tier].mode is not mode:
        raise InvalidRequest("tier", f"is not a tier of the {mode.value} mode")
    kind, holder_id, holder_name = _holder(obj["holder"])
    return NewRequest(
        responder_office=responder,
        proof_type=_text(obj["type"], "type", limit=MAX_PROOF_TYPE),
        holder_kind=kind,
        holder_id=holder_id,
        holder_name=holder_name,
        matter=_text(obj["matter"], "matter", limit=MAX_MATTER),
        case_ref=_text(obj["case_ref"], "case_ref", limit=MAX_CASE_REF),
        mode=mode,
        tier=tier,
    )


def _tier(value: Any, field: str) -> Tier:
    try:
        return Tier(value)
    except (ValueError, TypeError):
        raise InvalidRequest(field, f"must be one of {', '.join(t.value for t in Tier)}") from None


def parse_answer(value: Any, proof_type: str) -> ProofRequest:
    """A responder's answer: a proof without its type and endorsement, which the request
    fills (a responder cannot type either)."""
    if isinstance(value, dict):
        for filled in ("type", "endorsement"):
            if filled in value:
                raise InvalidRequest(filled, "is filled from the request, never typed")
        value = {**value, "type": proof_type}
    return parse_proof_request(value)


def parse_step(value: Any, *, reason: bool, tier: bool = False, approver: bool = False) -> StepBody:
    """The body of reclassify (reason, tier), extend (reason, approver), return (reason)."""
    required = {"reason"} if reason else set()
    if tier:
        required.add("tier")
    if approver:
        required.add("approver")
    obj = _object(value, "", required, set())
    return StepBody(
        reason=_text(obj["reason"], "reason", limit=MAX_REASON) if reason else None,
        tier=_tier(obj["tier"], "tier") if tier else None,
        approver=parse_operator_field(obj["approver"], "approver") if approver else None,
    )


def parse_operator_field(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise InvalidRequest(field, "must be a string")
    try:
        return parse_operator(value)
    except InvalidRequest as exc:
        raise InvalidRequest(field, exc.message) from None


def parse_state(value: str | None) -> State | None:
    if value is None:
        return None
    try:
        return State(value)
    except ValueError:
        raise InvalidRequest(
            "state", f"must be one of {', '.join(s.value for s in State)}"
        ) from None


def parse_limit(value: str | None) -> int:
    if value is None:
        return 100
    if not value.isdigit() or not 1 <= int(value) <= MAX_LIST:
        raise InvalidRequest("limit", f"must be a whole number from 1 to {MAX_LIST}")
    return int(value)
