"""What the client raises: one tree under :class:`sealgate.errors.Error`.

::

    ClientError
    ├── InvalidCode           a code refused before any request (typo: check character)
    ├── InvalidHolderId       an identity number refused before any request
    ├── GatewayUnreachable    no answer (connection, timeout), retries spent
    ├── UnexpectedAnswer      an answer outside the contract (not JSON, missing field)
    ├── ProofRejected         a sealed proof that fails offline verification
    └── Problem               the gateway's RFC 9457 refusal: ``status``, ``code``, ``field``
        ├── InvalidRequest        400
        ├── Unauthorized          401
        ├── Forbidden             403  (purpose-not-granted, not-your-office, seal-not-granted)
        ├── UnknownCode           404  (malformed, forged and unknown codes alike)
        ├── Conflict              409  (status-terminal, transition-not-allowed, not-yet-valid)
        ├── Unprocessable         422  (validity-ended, idempotency-key-reused, invalid-proof …)
        ├── TooManyRequests       429  (after the bounded Retry-After retries)
        └── Unavailable           503, 5xx (after the retries; ``retry_after`` if it said one)

Branch on the class for the HTTP meaning and on ``code`` for the reason: the codes are
stable, listed in the gateway's ``/openapi.json``.
"""

from __future__ import annotations

from typing import Any

from sealgate.errors import Error

__all__ = [
    "ClientError",
    "Conflict",
    "Forbidden",
    "GatewayUnreachable",
    "InvalidCode",
    "InvalidHolderId",
    "InvalidRequest",
    "Problem",
    "ProofRejected",
    "TooManyRequests",
    "Unauthorized",
    "Unavailable",
    "UnexpectedAnswer",
    "UnknownCode",
    "Unprocessable",
    "problem_class",
]


class ClientError(Error):
    """Base of everything :mod:`sealgate.client` raises."""


class InvalidCode(ClientError, ValueError):
    """Not a verification code (length, alphabet or check character): no request was sent."""


class InvalidHolderId(ClientError, ValueError):
    """Not a resident identity number or unified social credit code: no request was sent."""


class GatewayUnreachable(ClientError):
    """The gateway did not answer (connection refused or cut, timeout), retries spent."""


class UnexpectedAnswer(ClientError):
    """The gateway answered outside its contract: another service at that URL, a proxy's
    error page, or a version this client does not know."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ProofRejected(ClientError):
    """A sealed proof failed offline verification; ``reason`` names the check (the same
    names as the gateway's ``invalid-proof`` problem: BadSignature, UntrustedSeal …)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class Problem(ClientError):
    """The gateway refused: an ``application/problem+json`` answer."""

    def __init__(self, body: dict[str, Any], status: int, retry_after: float | None) -> None:
        self.status = status
        self.code = str(body.get("code", ""))
        self.title = str(body.get("title", ""))
        self.detail: str | None = body.get("detail")
        self.field: str | None = body.get("field")
        self.request_id: str | None = body.get("request_id")
        self.retry_after = retry_after
        self.body = body
        super().__init__(f"{status} {self.code}: {self.detail or self.title}")


class InvalidRequest(Problem):
    """400: the request was refused as sent; ``field`` names what to fix."""


class Unauthorized(Problem):
    """401: no token, or one the gateway does not know (removed clients within 10 s)."""


class Forbidden(Problem):
    """403: the role, purpose, office or seal is not this client's."""


class UnknownCode(Problem):
    """404: no proof has this code (or the code was forged): the same answer for all."""


class Conflict(Problem):
    """409: the proof's status does not allow that change."""


class Unprocessable(Problem):
    """422: understood and refused (ended validity, reused key, a document that fails)."""


class TooManyRequests(Problem):
    """429: too many failed lookups; ``retry_after`` says when to try again."""


class Unavailable(Problem):
    """5xx: a component is down. ``retry_after`` is None when waiting will not help
    (``registry-corrupted``)."""


_BY_STATUS: dict[int, type[Problem]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Forbidden,
    404: UnknownCode,
    409: Conflict,
    422: Unprocessable,
    429: TooManyRequests,
}


def problem_class(status: int) -> type[Problem]:
    """The class of a problem answered with HTTP ``status``."""
    if status >= 500:
        return Unavailable
    return _BY_STATUS.get(status, InvalidRequest if 400 <= status < 500 else Problem)
