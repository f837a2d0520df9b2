"""The operations of verification requests, consents and the holder's own proofs, in the
manner of :mod:`sealgate.client.calls` (each described once, for both clients)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from sealgate.client.calls import Call, der_document, json_of, path_code
from sealgate.client.casework import (
    Consent,
    HolderRequest,
    NewRequest,
    RequestAnswer,
    State,
    Tier,
    VerificationRequest,
)
from sealgate.client.codes import normalise_holder_id
from sealgate.client.models import Verification

OPERATOR_HEADER = "X-Operator"
ASSERTION_HEADER = "Holder-Assertion"
MAX_OPERATOR = 64


def operator_header(operator: str) -> dict[str, str]:
    """The acting staff member's identifier, required on every request write and kept in
    the audit trail. The gateway checks its form; a name typed here (张三) is refused
    before it could leave, for a header carries ASCII only."""
    if not (0 < len(operator) <= MAX_OPERATOR and operator.isascii() and operator.isprintable()):
        raise ValueError(
            "an operator is a staff identifier (a letter, then letters, digits, '.', '_' or"
            f" '-'; at most {MAX_OPERATOR}), never a name or an identity number"
        )
    return {OPERATOR_HEADER: operator}


def _request_path(request_id: str, step: str = "") -> str:
    return f"/v1/requests/{quote(request_id, safe='')}" + (f"/{step}" if step else "")


def _body(value: NewRequest | RequestAnswer | Mapping[str, Any]) -> Any:
    return dict(value) if isinstance(value, Mapping) else value.to_json()


# --- verification requests ----------------------------------------------------------------
# Writes are not replayable after no answer: a repeat would register a second request, or
# be refused (409) for a step taken already. Read the request (request()) instead.


def create_request(
    request: NewRequest | Mapping[str, Any], operator: str
) -> Call[VerificationRequest]:
    return Call(
        "POST",
        "/v1/requests",
        lambda r: VerificationRequest.parse(json_of(r)),
        json=_body(request),
        headers=operator_header(operator),
        replayable=False,
        answers=(201,),
    )


def requests(state: State | str | None, limit: int | None) -> Call[list[VerificationRequest]]:
    params: dict[str, str] = {}
    if state is not None:
        params["state"] = State(state).value
    if limit is not None:
        params["limit"] = str(int(limit))
    return Call(
        "GET", "/v1/requests", lambda r: VerificationRequest.parse_list(json_of(r)), params=params
    )


def request(request_id: str) -> Call[VerificationRequest]:
    return Call("GET", _request_path(request_id), lambda r: VerificationRequest.parse(json_of(r)))


def _step(request_id: str, step: str, body: Any, operator: str) -> Call[VerificationRequest]:
    return Call(
        "POST",
        _request_path(request_id, step),
        lambda r: VerificationRequest.parse(json_of(r)),
        json=body,
        headers=operator_header(operator),
        replayable=False,
    )


def respond(
    request_id: str, answer: RequestAnswer | Mapping[str, Any], operator: str
) -> Call[VerificationRequest]:
    return _step(request_id, "respond", _body(answer), operator)


def reclassify(
    request_id: str, tier: Tier | str, reason: str, operator: str
) -> Call[VerificationRequest]:
    return _step(request_id, "reclassify", {"tier": Tier(tier).value, "reason": reason}, operator)


def extend(request_id: str, reason: str, approver: str, operator: str) -> Call[VerificationRequest]:
    return _step(request_id, "extend", {"reason": reason, "approver": approver}, operator)


def return_request(request_id: str, reason: str, operator: str) -> Call[VerificationRequest]:
    return _step(request_id, "return", {"reason": reason}, operator)


def holder_requests(holder_id: str) -> Call[list[HolderRequest]]:
    return Call(
        "GET",
        "/v1/holder-requests",
        lambda r: HolderRequest.parse_list(json_of(r)),
        params={"holder_id": normalise_holder_id(holder_id)},
    )


# --- consents -----------------------------------------------------------------------------


def _instant(value: dt.datetime | dt.date | str) -> str:
    """An expiry as the gateway reads it: an aware time, or a date (its day's end)."""
    if isinstance(value, dt.datetime):
        if value.utcoffset() is None:
            raise ValueError("expires_at: give a time with its offset (an aware datetime)")
        return value.isoformat(timespec="seconds")
    return value.isoformat() if isinstance(value, dt.date) else value


def grant_consent(
    holder_id: str,
    grantee: str,
    matter: str,
    proof_types: Iterable[str],
    expires_at: dt.datetime | dt.date | str,
    uses: int,
) -> Call[Consent]:
    body = {
        "holder_id": normalise_holder_id(holder_id),
        "grantee": grantee,
        "matter": matter,
        "proof_types": list(proof_types),
        "expires_at": _instant(expires_at),
        "uses": uses,
    }
    # Not replayable: a repeat would grant a second consent.
    return Call(
        "POST",
        "/v1/consents",
        lambda r: Consent.parse(json_of(r)),
        json=body,
        replayable=False,
        answers=(201,),
    )


def consents(holder_id: str) -> Call[list[Consent]]:
    return Call(
        "GET",
        "/v1/consents",
        lambda r: Consent.parse_list(json_of(r)),
        params={"holder_id": normalise_holder_id(holder_id)},
    )


def revoke_consent(consent_id: str, holder_id: str) -> Call[None]:
    # Not replayable: a repeat of a revocation made is 404 unknown-consent.
    return Call(
        "DELETE",
        f"/v1/consents/{quote(consent_id, safe='')}",
        lambda r: None,
        params={"holder_id": normalise_holder_id(holder_id)},
        replayable=False,
        answers=(204,),
    )


# --- the holder's own proofs -----------------------------------------------------------------
# An assertion serves one request: never sent twice (a repeat is 403 holder-not-asserted).


def my_proofs(holder_assertion: str) -> Call[list[Verification]]:
    return Call(
        "GET",
        "/v1/holders/me/proofs",
        lambda r: Verification.parse_list(json_of(r), "my proofs"),
        headers={ASSERTION_HEADER: holder_assertion},
        once=True,
    )


def my_document(code: str, holder_assertion: str) -> Call[bytes]:
    return Call(
        "GET",
        f"/v1/holders/me/proofs/{path_code(code)}/document",
        der_document,
        headers={ASSERTION_HEADER: holder_assertion},
        once=True,
    )
