"""What every request goes through: its id, errors as problem+json, its audit record
and its metrics (:func:`gateway_middleware`).

The audit record is written before the answer leaves; if that fails the answer is a 503
instead (fail closed), and while the trail cannot be written, changes are refused before
anything is done. A change's handler also writes its intent just before the change
(:func:`write_ahead`): a change is never made unaudited, and one that was made is never
answered 503 for want of its record.
"""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from sealgate.gateway import administration
from sealgate.gateway.audit import AUDIT_NOTE, INTENT, AuditLog, AuditNote, AuditUnavailable
from sealgate.gateway.auth import CLIENT
from sealgate.gateway.bounded import end_request_deadline, request_deadline
from sealgate.gateway.keys import AUDIT, HOLDER_KEYS, METRICS, SETTINGS
from sealgate.gateway.language import asks_chinese
from sealgate.gateway.problems import PROBLEM_CODE, Problem, audit_problem, invalid, problem_for
from sealgate.gateway.requests import InvalidRequest
from sealgate.hsm.errors import HsmError
from sealgate.verify.code import recordable_code
from sealgate.verify.directory import Client
from sealgate.verify.holders import HolderKeys

log = logging.getLogger("sealgate.gateway")

REQUEST_ID = web.RequestKey("request_id", str)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class RequestIds:
    """Request ids: a random prefix per process and a counter (unique, and cheap)."""

    def __init__(self) -> None:
        self._prefix = uuid.uuid4().hex[:12]
        self._count = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}{next(self._count):08x}"


REQUEST_IDS = web.AppKey("request_ids", RequestIds)
ROUTE_ACTIONS = web.AppKey("route_actions", dict)

# The requests that leave an audit record, by route: every sealing, status change,
# verification and document download (HEAD included: it answers 200 or 404 too).
AUDITED = {
    ("POST", "/v1/certificates"): "seal",
    ("GET", "/v1/verify/{code}"): "verify",
    ("POST", "/v1/verify/document"): "verify-document",
    ("POST", "/v1/verify/batch"): "verify-batch",
    ("GET", "/v1/certificates/{code}/document"): "document",
    ("POST", "/v1/certificates/{code}/status"): "status",
    ("GET", "/v1/certificates/{code}/status"): "status-history",
    ("GET", "/v1/proofs"): "proofs",
    ("POST", "/v1/requests"): "request",
    ("GET", "/v1/requests"): "requests",
    ("GET", "/v1/requests/{id}"): "request-read",
    ("POST", "/v1/requests/{id}/respond"): "request-respond",
    ("POST", "/v1/requests/{id}/reclassify"): "request-reclassify",
    ("POST", "/v1/requests/{id}/extend"): "request-extend",
    ("POST", "/v1/requests/{id}/return"): "request-return",
    ("GET", "/v1/holder-requests"): "holder-requests",
    ("GET", "/v1/certificates/{code}/qr"): "qr",
    ("GET", "/v1/verify/qr/{payload}"): "verify-qr",
    ("POST", "/v1/consents"): "consent",
    ("GET", "/v1/consents"): "consents",
    ("DELETE", "/v1/consents/{consent_id}"): "consent-revoke",
    ("GET", "/v1/holders/me/proofs"): "holder-proofs",
    ("GET", "/v1/holders/me/proofs/{code}/document"): "holder-document",
    # the admin's provisioning: the CLI's action names (sealgate.gateway.administration)
    ("GET", "/v1/admin/clients"): "client-list",
    ("POST", "/v1/admin/clients"): "client-add",
    ("DELETE", "/v1/admin/clients/{client_id}"): "client-remove",
    ("PUT", "/v1/admin/clients/{client_id}/grants"): "client-set-grants",
    ("PUT", "/v1/admin/clients/{client_id}/limits"): "client-set-limits",
    ("DELETE", "/v1/admin/clients/{client_id}/limits"): "client-set-limits",
    ("GET", "/v1/admin/seals"): "seal-list",
    ("POST", "/v1/admin/seals/{seal_id}/suspend"): "seal-suspend",
    ("POST", "/v1/admin/seals/{seal_id}/resume"): "seal-resume",
    ("POST", "/v1/subscriptions"): "subscribe",
    ("DELETE", "/v1/subscriptions/{id}"): "unsubscribe",
}
# Provisioning changes: as on the command line, a checkpoint signs their records as soon
# as the outcome's is written, before the answer leaves (a record no checkpoint covers
# could be deleted without trace).
_PROVISIONING = administration.ACTIONS
# Changes refused up front while the trail cannot be written, so nothing is done unaudited.
_CHANGES = frozenset(
    {
        "seal",
        "status",
        "request",
        "request-respond",
        "request-reclassify",
        "request-extend",
        "request-return",
        "consent",
        "consent-revoke",
        *_PROVISIONING,
        "subscribe",
        "unsubscribe",
    }
)


def audit_unavailable(request_id: str, *, chinese: bool = False) -> web.Response:
    return audit_problem().response(request_id, chinese=chinese)


def client_request_hash(request: web.BaseRequest, keys: HolderKeys) -> str | None:
    """The keyed hash of the caller's ``X-Request-Id``, if it sent one: what the trail
    keeps of it. The id itself is the gateway's (:class:`RequestIds`): a client's may be
    anything, an identity number too."""
    offered = request.headers.get("X-Request-Id")
    if not offered:
        return None
    return keys.keyed_hash("request-id", offered.encode("utf-8", "replace")).hex()[:32]


NOT_GRANTED = "(not granted)"
# Who a request refused before authentication is recorded as: no client, no role.
UNAUTHENTICATED = "(unauthenticated)"


def audit_row(
    action: str,
    client: Client | None,
    purpose: str | None,
    code: str | None,
    status: int | str,
    request_id: str,
    at: float,
    detail: dict[str, Any],
) -> list[Any]:
    """One audit record's fields, in :class:`sealgate.verify.audit.AuditEvent` order.

    A purpose is kept as given only when it is one the client is granted: anything else
    typed there (an identity number too) is recorded as :data:`NOT_GRANTED`. ``client``
    is ``None`` for a request refused before it was authenticated.
    """
    granted = client.purposes if client is not None else frozenset()
    return [
        action,
        client.client_id if client is not None else UNAUTHENTICATED,
        client.role.value if client is not None else "none",
        (purpose if purpose in granted else NOT_GRANTED) if purpose else None,
        code[:64] if code else None,
        str(status),
        request_id,
        at,
        detail,
    ]


def _problem_response(exc: Exception, request: web.Request, request_id: str) -> web.Response:
    """The one place where an exception escaping a handler becomes an answer, its title
    in the language the client asked for."""
    chinese = asks_chinese(request)
    if isinstance(exc, Problem):
        return exc.response(request_id, chinese=chinese)
    if isinstance(exc, InvalidRequest):
        problem = invalid(exc.field, exc.message)
    elif isinstance(exc, web.HTTPRequestEntityTooLarge):
        problem = Problem(413, "body-too-large", "The request body is too large")
    elif isinstance(exc, web.HTTPException):
        code = {404: "not-found", 405: "method-not-allowed"}.get(exc.status, "http-error")
        # RFC 9110 §15.5.6: a 405 says which methods the resource has.
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        problem = Problem(exc.status, code, exc.reason, headers=allow)
    else:
        mapped = problem_for(exc)
        if mapped is None:
            log.error("unhandled error (request %s)", request_id, exc_info=exc)
            mapped = Problem(500, "internal-error", "Internal error")
        elif mapped.status >= 500:
            log.warning("%s (request %s): %s", mapped.code, request_id, type(exc).__name__)
        problem = mapped
    return problem.response(request_id, chinese=chinese)


def _audit_rows(
    action: str,
    client: Client | None,
    request: web.Request,
    note: AuditNote,
    request_id: str,
    status: int | str,
    codes_given: Sequence[str] | None = None,
) -> list[list[Any]]:
    """The request's audit records: one per code it concerned."""
    purpose = note.purpose
    if purpose is None and request.query_string:
        purpose = request.query.get("purpose")
    if codes_given is not None:
        codes: Sequence[str | None] = codes_given
    elif note.codes is not None:
        codes = note.codes
    else:  # the path's, as the client typed it
        typed = request.match_info.get("code")
        codes = [None if typed is None else recordable_code(typed)]
    at = time.time()
    detail = note.detail
    if note.client_request is not None:
        detail = {**detail, "client_request": note.client_request}
    return [
        audit_row(action, client, purpose, code, status, request_id, at, detail)
        for code in codes or [None]
    ]


async def write_ahead(request: web.Request, codes: Sequence[str] | None = None) -> None:
    """Journal the intent of the change a handler is about to make, on the disk, with
    the codes it concerns (``None``: the path's); raises :class:`AuditUnavailable`, and
    then the change must not be made.

    Called just before the registry write: the record of a change is durable no later
    than the change. Its outcome record follows under the same request id (see
    :func:`gateway_middleware`); a code with an intent and no outcome was changed or not
    as the registry says.
    """
    app = request.app
    action = app[ROUTE_ACTIONS].get(request.match_info.route)
    client = request.get(CLIENT)
    if action not in _CHANGES or client is None:  # pragma: no cover - a handler's bug
        raise RuntimeError("write_ahead outside an authenticated change")
    note = request[AUDIT_NOTE]
    rows = _audit_rows(action, client, request, note, request[REQUEST_ID], INTENT, codes)
    await app[AUDIT].record_rows(rows, ahead=True)
    note.ahead = True


async def _sign_now(audit: AuditLog, request_id: str) -> None:
    """Sign a provisioning change's records now; a failure leaves them to the next
    checkpoint (the duties loop's, within its interval), the change made."""
    try:
        await audit.checkpoint()
    except (HsmError, AuditUnavailable) as exc:
        log.warning(
            "provisioning change (request %s) not yet signed (%s): the next checkpoint signs it",
            request_id,
            type(exc).__name__,
        )


@web.middleware
async def gateway_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request id, errors as problem+json, the audit record, metrics: for every request.

    The audit record is written before the answer leaves; if that fails the answer is a
    503 instead (fail closed), unless it is a change that was made, whose intent was
    journaled before it (:func:`write_ahead`): that is answered as made. While the trail
    cannot be written, changes are refused before anything is done.
    """
    app = request.app
    request_id = app[REQUEST_IDS].next()
    request[REQUEST_ID] = request_id
    started = time.perf_counter()
    route = request.match_info.route
    action: str | None = app[ROUTE_ACTIONS].get(route)
    audit = app[AUDIT] if action is not None else None
    note = AuditNote()
    if audit is not None:  # only an audited request's record keeps it
        note.client_request = client_request_hash(request, app[HOLDER_KEYS])
    request[AUDIT_NOTE] = note
    response: web.StreamResponse
    refusal = audit.refusal if audit is not None and action in _CHANGES else None
    if refusal is not None and audit is not None:
        audit.note_refusal(refusal)
        response = audit_unavailable(request_id, chinese=asks_chinese(request))
    else:
        # Every wait on the registry or directory in the handler gets what is left of
        # this (docs/design.md §11).
        deadline = request_deadline(app[SETTINGS].request_deadline)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = _problem_response(exc, request, request_id)
        except Exception as exc:
            response = _problem_response(exc, request, request_id)
        finally:
            end_request_deadline(deadline)
        if audit is not None and action is not None:
            client = request.get(CLIENT)
            # Refusals before authentication (401, a duplicated Authorization) too: who
            # knocked with what is part of the record, under no client's name.
            try:
                await audit.record_rows(
                    _audit_rows(action, client, request, note, request_id, response.status)
                )
            except AuditUnavailable:
                if note.ahead and response.status < 400:
                    # Made, and audited ahead (its intent is in the journal): the
                    # answer says so. A 503 would have the client retry a change that
                    # was made (a duplicate proof, a 409 for a revocation).
                    log.warning(
                        "outcome of a change not audited (request %s); its intent is",
                        request_id,
                    )
                else:
                    response = audit_unavailable(request_id, chinese=asks_chinese(request))
            else:
                if note.ahead and action in _PROVISIONING:
                    await _sign_now(audit, request_id)
    response.headers["X-Request-Id"] = request_id
    resource = route.resource
    app[METRICS].observe(
        resource.canonical if resource is not None else "unmatched",
        request.method,
        response.status,
        time.perf_counter() - started,
    )
    if (problem := response.get(PROBLEM_CODE)) is not None:
        app[METRICS].problem(problem)
    return response
