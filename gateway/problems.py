"""RFC 9457 problem details, and the one place where domain errors become HTTP answers.

Each problem has a stable ``code`` clients may branch on. Handlers raise :class:`Problem`
or let a domain exception through; :func:`problem_for` maps the latter.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Coroutine
from http import HTTPStatus
from typing import Any

from aiohttp import hdrs, web
from aiohttp.web_protocol import RequestHandler

from sealgate.crypto.errors import ContentError, CoseError, Expired, ProofError
from sealgate.errors import Error
from sealgate.gateway.audit import AuditUnavailable
from sealgate.gateway.language import PROBLEM_TITLES_ZH
from sealgate.gateway.timestamping import TsaUnavailable
from sealgate.hsm.errors import HsmError, HsmUnavailable
from sealgate.verify.directory import DirectoryUnavailable
from sealgate.verify.lifecycle import (
    InvalidSupersession,
    NotYetValid,
    TerminalStatus,
    TransitionNotAllowed,
    ValidityEnded,
)
from sealgate.verify.registry import (
    IdempotencyConflict,
    ProofNotFound,
    RegistryCorrupted,
    RegistryUnavailable,
    WrongOffice,
)
from sealgate.verify.requests import (
    NotYourRequest,
    RequestClosed,
    RequestNotFound,
    RequestRefused,
)
from sealgate.verify.workdays import CalendarError

PROBLEM_TYPE = "application/problem+json"
# The problem code an answer carries, for the metrics (sealgate_problems_total).
PROBLEM_CODE = web.ResponseKey("problem_code", str)


class Problem(Error):
    """An error answer: HTTP status, stable code, human title and detail."""

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(f"{status} {code}: {detail or title}")
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra
        # Never in the answer (every failed lookup answers the same 404): a code refused
        # by its check character, which the failed-lookup limits weigh less.
        self.mistyped = False

    def as_dict(self, *, chinese: bool = False) -> dict[str, Any]:
        """The problem details (RFC 9457) object: the body of an answer, or one item's
        outcome in a batch answer; ``chinese``: the title in Chinese (the code stays)."""
        title = PROBLEM_TITLES_ZH.get(self.code, self.title) if chinese else self.title
        body: dict[str, Any] = {
            "type": f"urn:sealgate:problem:{self.code}",
            "title": title,
            "status": self.status,
            "code": self.code,
        }
        if self.detail:
            body["detail"] = self.detail
        body.update(self.extra)
        return body

    def response(self, request_id: str | None = None, *, chinese: bool = False) -> web.Response:
        body = self.as_dict(chinese=chinese)
        if request_id:
            body["request_id"] = request_id
        response = web.Response(
            status=self.status,
            # ASCII escapes: a detail may quote a client's field name, and that may hold a
            # lone surrogate, which UTF-8 cannot encode but a JSON escape can.
            body=json.dumps(body).encode() + b"\n",
            content_type=PROBLEM_TYPE,
            # As the answers are: a shared cache must not keep a 404 for a code that
            # is registered a moment later, nor any refusal meant for one client.
            headers={"Cache-Control": "no-store", **self.headers},
        )
        response[PROBLEM_CODE] = self.code  # counted by code in the metrics
        return response


# Same status, body and code for malformed, forged and unregistered codes: an enumerator
# must not learn which of them a guess was.
def not_your_office() -> Problem:
    return Problem(403, "not-your-office", "This proof was issued by another office")


def unknown_code(*, mistyped: bool = False) -> Problem:
    problem = Problem(404, "unknown-code", "No proof has this verification code")
    problem.mistyped = mistyped
    return problem


def invalid(field: str, message: str) -> Problem:
    return Problem(400, "invalid-request", "The request is invalid", message, field=field)


def audit_problem() -> Problem:
    """The trail cannot be written, and nothing was done: retrying later is right (a
    change made is never answered so; see ``sealgate.gateway.middleware``)."""
    return Problem(
        503,
        "audit-unavailable",
        "The audit trail cannot be written; retry later",
        headers={"Retry-After": "5"},
    )


def problem_for(exc: Exception) -> Problem | None:
    """The answer for a domain exception, or ``None`` for a bug (answered 500)."""
    if isinstance(exc, AuditUnavailable):  # a change's intent not journaled: not made
        return audit_problem()
    if isinstance(exc, HsmUnavailable):
        retry = max(1, math.ceil(exc.retry_after or 1))
        return Problem(
            503,
            "hsm-unavailable",
            "The signing device is unavailable; retry later",
            headers={"Retry-After": str(retry)},
        )
    if isinstance(exc, HsmError):
        return Problem(
            503,
            "seal-key-unavailable",
            "The seal's key cannot be used right now",
            headers={"Retry-After": "30"},
        )
    if isinstance(exc, TsaUnavailable):  # nothing was sealed
        return Problem(
            503,
            "tsa-unavailable",
            "The time-stamping authority cannot stamp the proofs; retry later",
            headers={"Retry-After": str(exc.retry_after)},
        )
    if isinstance(exc, RegistryUnavailable):
        return Problem(
            503,
            "registry-unavailable",
            "The registry is unavailable; retry later",
            headers={"Retry-After": "1"},
        )
    if isinstance(exc, RegistryCorrupted):
        # 503, for this gateway cannot serve the request (a balancer may try another),
        # but no Retry-After: the data stays damaged until the operator restores the
        # database, so a client that retries on its own only adds load. Not 500, which
        # says "a bug in sealgate" and is what the suite treats as one.
        return Problem(
            503,
            "registry-corrupted",
            "The registry's data is damaged; retrying will not help until it is restored",
        )
    if isinstance(exc, DirectoryUnavailable):  # clients cannot be authenticated meanwhile
        return Problem(
            503,
            "directory-unavailable",
            "The directory of seals and clients is unavailable; retry later",
            headers={"Retry-After": "1"},
        )
    if isinstance(exc, IdempotencyConflict):
        return Problem(
            422,
            "idempotency-key-reused",
            "This Idempotency-Key was used with a different request",
        )
    if isinstance(exc, ProofNotFound):
        return unknown_code()
    if isinstance(exc, WrongOffice):
        return not_your_office()
    if isinstance(exc, TerminalStatus):
        return Problem(409, "status-terminal", "The proof's status is final", str(exc))
    if isinstance(exc, NotYetValid):
        return Problem(409, "not-yet-valid", "The proof is not valid yet", str(exc))
    if isinstance(exc, TransitionNotAllowed):
        return Problem(409, "transition-not-allowed", "That status change is not allowed", str(exc))
    if isinstance(exc, InvalidSupersession):
        return Problem(
            422,
            "invalid-supersession",
            "superseded_by must name a newer valid proof",
            str(exc),
            field="superseded_by",
        )
    if isinstance(exc, ValidityEnded):
        # Not retryable: the same request is refused every time (the city may ask for
        # archival issuance instead, docs/deployment.md).
        return Problem(
            422,
            "validity-ended",
            "The proof's validity has already ended",
            exc.message,
            field=exc.field,
        )
    if isinstance(exc, RequestNotFound | NotYourRequest):
        return Problem(404, "request-not-found", "No such request for this office")
    if isinstance(exc, RequestClosed):
        return Problem(409, "request-closed", "The request was answered or returned", str(exc))
    if isinstance(exc, RequestRefused):
        return Problem(409, "step-not-allowed", "That step is not allowed now", str(exc))
    if isinstance(exc, CalendarError):
        return Problem(503, "calendar-unusable", "The working-day calendar cannot count it")
    if isinstance(exc, Expired):
        return Problem(422, "qr-expired", "This QR code has expired", str(exc))
    if isinstance(exc, CoseError):
        # The reason names the check that failed; the payload itself is never echoed.
        return Problem(
            422, "invalid-qr", "This is not a valid QR code of a proof", reason=type(exc).__name__
        )
    if isinstance(exc, ContentError):
        return Problem(400, "invalid-request", "The request is invalid", str(exc))
    if isinstance(exc, ProofError):
        return Problem(
            422,
            "invalid-proof",
            "The document is not a valid sealed proof",
            str(exc),
            reason=type(exc).__name__,
        )
    return None


_QUOTE_STARTS = re.compile(r"[:'\"\n]")


def protocol_problem(status: int, message: str | None) -> Problem:
    """The answer to a request aiohttp refused itself, where no middleware sees it: a
    malformed request line, bytes a request target may not hold, a control character in
    a header (400), an ``Expect`` it does not know (417)."""
    if status == HTTPStatus.INTERNAL_SERVER_ERROR:
        return Problem(500, "internal-error", "Internal error")
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "HTTP error"
    title = "The request is not valid HTTP" if status == HTTPStatus.BAD_REQUEST else phrase
    # aiohttp's message goes on to quote the offending bytes (a token among them,
    # perhaps): only what precedes them is kept.
    detail = _QUOTE_STARTS.split((message or "").strip(), maxsplit=1)[0].strip()[:100]
    return Problem(status, phrase.lower().replace(" ", "-"), title, detail or None)


def _with_own_id(problem: Problem) -> web.Response:
    # No application saw the request, so none numbered it: an id of its own, as every
    # answer has.
    request_id = uuid.uuid4().hex[:20]
    response = problem.response(request_id)
    response.headers["X-Request-Id"] = request_id
    return response


_HTTP_EXCEPTION = web.HTTPException
_FINISH_RESPONSE = RequestHandler.finish_response


class _ProblemRequestHandler(RequestHandler):
    """aiohttp's connection handler, with its own error answers as problem details."""

    __slots__ = ()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        # aiohttp's own: it logs, and raises if part of an answer has already been sent.
        super().handle_error(request, status, exc, message)
        response = _with_own_id(protocol_problem(status, message))
        response.force_close()  # as aiohttp does: the connection's state is unknown
        return response

    def finish_response(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> Coroutine[Any, Any, tuple[web.StreamResponse, bool]]:
        # An HTTPException that escaped the application is sent as it is, text/plain:
        # aiohttp's check of `Expect` raises one outside the middleware. Every answer
        # passes here, so: names bound once, and aiohttp's coroutine handed back rather
        # than awaited in one of our own (about 0.15 µs an answer, measured).
        if isinstance(resp, _HTTP_EXCEPTION) and resp.status >= HTTPStatus.BAD_REQUEST:
            answer = _with_own_id(protocol_problem(resp.status, resp.text))
            for name, value in resp.headers.items():  # Allow, WWW-Authenticate, ...
                if name not in answer.headers and name != hdrs.CONTENT_LENGTH:
                    answer.headers[name] = value
            resp = answer
        return _FINISH_RESPONSE(self, request, resp, start_time)


class _ProblemServer(web.Server):
    def __call__(self) -> RequestHandler:
        handler = super().__call__()
        handler.__class__ = _ProblemRequestHandler  # same slots: only the methods change
        return handler


def answer_protocol_errors_as_problems(server: web.Server) -> None:
    """Make the connections ``server`` accepts answer the errors aiohttp finds itself
    (before routing, so no middleware sees them) as ``application/problem+json``, like
    every other refusal. Call before the server takes its first connection."""
    server.__class__ = _ProblemServer
