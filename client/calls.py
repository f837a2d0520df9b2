"""Each operation as a request and the reading of its answer, shared by :class:`Client`
and :class:`AsyncClient` (which differ only in how they wait), and the retry policy.

Here the proofs' operations and the public routes; verification requests, consents and
the holder's own proofs in :mod:`.calls_casework`; QR codes, status lists and the public
check in :mod:`.calls_showing`.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from sealgate.client.codes import normalise_code, normalise_holder_id
from sealgate.client.errors import (
    ClientError,
    GatewayUnreachable,
    Problem,
    UnexpectedAnswer,
    problem_class,
)
from sealgate.client.models import (
    DocumentCheck,
    History,
    ProofRequest,
    Readiness,
    SealedProof,
    Status,
    TrustDocument,
    Verification,
)

T = TypeVar("T")

PROBLEM_TYPE = "application/problem+json"
# The gateway's own bound on an Idempotency-Key (printable ASCII).
MAX_IDEMPOTENCY_KEY = 128


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When a request is sent again.

    - 429 and 503 that say ``Retry-After``: after that many seconds, if it is at most
      ``max_wait`` (a longer wait is the caller's decision: the problem is raised);
    - no answer at all (connection refused or cut, timeout): after ``backoff`` seconds,
      doubling, only for requests that are safe to repeat: reads, and sealings, which
      carry an Idempotency-Key, so a repeat returns the first result, never a second proof;
    - at most ``attempts`` sends in all. A 503 without ``Retry-After`` (a damaged
      registry) is never retried: waiting will not mend it.
    """

    attempts: int = 4
    max_wait: float = 30.0
    backoff: float = 0.5

    def after_answer(self, response: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before sending again after ``response``, or None: don't."""
        if attempt >= self.attempts or response.status_code not in (429, 503):
            return None
        wait = retry_after(response)
        return wait if wait is not None and wait <= self.max_wait else None

    def after_failure(self, attempt: int, replayable: bool) -> float | None:
        """Seconds to wait before sending again after no answer, or None: don't."""
        if not replayable or attempt >= self.attempts:
            return None
        return float(min(self.backoff * 2 ** (attempt - 1), self.max_wait))


NO_RETRIES = RetryPolicy(attempts=1)


def retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (a number of seconds or an HTTP date), if it says one."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One operation: what to send, and how its successful answer reads."""

    method: str
    path: str
    read: Callable[[httpx.Response], T]
    params: Mapping[str, str] | None = None
    json: Any = None
    content: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    replayable: bool = True  # safe to send again after no answer
    once: bool = False  # carries a single-use credential (a holder assertion): never resent
    answers: tuple[int, ...] = (200,)  # statuses read by ``read`` rather than raised

    def request(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        return http.build_request(
            self.method,
            self.path,
            params=self.params,
            json=self.json,
            content=self.content,
            headers=dict(self.headers),
        )

    def outcome(self, response: httpx.Response) -> T:
        """The answer read, or the problem it is raised as."""
        if response.status_code in self.answers:
            return self.read(response)
        raise problem_of(response)


def problem_of(response: httpx.Response) -> ClientError:
    """The exception for a refusal: a :class:`Problem` subclass by status for the
    gateway's problem+json, :class:`UnexpectedAnswer` for anything else."""
    kind = response.headers.get("Content-Type", "").split(";")[0].strip()
    if kind != PROBLEM_TYPE:
        return UnexpectedAnswer(
            f"HTTP {response.status_code} without a problem document ({kind or 'no type'})",
            response.status_code,
        )
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return UnexpectedAnswer(f"HTTP {response.status_code}: unreadable problem document")
    return problem_class(response.status_code)(body, response.status_code, retry_after(response))


def unreachable(exc: httpx.TransportError) -> GatewayUnreachable:
    return GatewayUnreachable(f"no answer from the gateway: {type(exc).__name__}: {exc}")


def json_of(response: httpx.Response) -> Any:
    if response.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
        raise UnexpectedAnswer(f"HTTP {response.status_code}: not a JSON answer")
    try:
        return response.json()
    except ValueError:
        raise UnexpectedAnswer("the answer is not valid JSON") from None


def _replayed(response: httpx.Response) -> bool:
    return bool(response.headers.get("Idempotent-Replayed") == "true")


def path_code(code: str) -> str:
    return quote(normalise_code(code), safe="")


def _key(idempotency_key: str | None) -> str:
    key = str(uuid.uuid4()) if idempotency_key is None else idempotency_key
    if not (0 < len(key) <= MAX_IDEMPOTENCY_KEY and key.isascii() and key.isprintable()):
        raise ValueError(f"an Idempotency-Key is 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII")
    return key


def _proof_json(proof: ProofRequest | Mapping[str, Any]) -> Any:
    return proof.to_json() if isinstance(proof, ProofRequest) else dict(proof)


# --- the operations ----------------------------------------------------------------------


def seal(proof: ProofRequest | Mapping[str, Any], idempotency_key: str | None) -> Call[SealedProof]:
    return Call(
        "POST",
        "/v1/certificates",
        lambda r: SealedProof.parse(json_of(r), _replayed(r)),
        json=_proof_json(proof),
        headers={"Idempotency-Key": _key(idempotency_key)},
        answers=(201,),
    )


def seal_batch(
    proofs: Iterable[ProofRequest | Mapping[str, Any]], idempotency_key: str | None
) -> Call[list[SealedProof]]:
    return Call(
        "POST",
        "/v1/certificates",
        lambda r: SealedProof.parse_batch(json_of(r), _replayed(r)),
        json={"items": [_proof_json(p) for p in proofs]},
        headers={"Idempotency-Key": _key(idempotency_key)},
        answers=(201,),
    )


def verify(
    code: str, purpose: str, fields: str | None = None, consent_token: str | None = None
) -> Call[Verification]:
    params = {"purpose": purpose} if fields is None else {"purpose": purpose, "fields": fields}
    return Call(
        "GET",
        f"/v1/verify/{path_code(code)}",
        lambda r: Verification.parse(json_of(r)),
        params=params,
        headers=_consented(consent_token),
        # A content read with a consent takes a use on arrival: never sent twice.
        replayable=consent_token is None,
    )


def verify_batch(
    checks: Sequence[str | tuple[str, str]], purpose: str
) -> Call[list[Verification | Problem]]:
    """Up to 100 codes, each alone or with the holder's identity number to match; every
    code and number is checked here first, so one typo sends nothing."""
    items: list[dict[str, str]] = []
    for check in checks:
        code, holder_id = (check, None) if isinstance(check, str) else check
        item = {"code": normalise_code(code)}
        if holder_id is not None:
            item["holder_id"] = normalise_holder_id(holder_id)
        items.append(item)

    def read(response: httpx.Response) -> list[Verification | Problem]:
        body = json_of(response)
        answers = body.get("items") if isinstance(body, dict) else None
        if not isinstance(answers, list) or len(answers) != len(items):
            raise UnexpectedAnswer("verify batch: 'items' is missing or of another length")
        out: list[Verification | Problem] = []
        for answer in answers:
            if isinstance(answer, dict) and isinstance(answer.get("problem"), dict):
                problem = answer["problem"]
                status = int(problem.get("status", 0))
                out.append(problem_class(status)(problem, status, None))
            else:
                out.append(Verification.parse(answer))
        return out

    # Replayable: checking is reading (each failure counts against the limit again).
    return Call("POST", "/v1/verify/batch", read, json={"purpose": purpose, "items": items})


def change_status(
    code: str, status: Status | str, reason: str, superseded_by: str | None
) -> Call[History]:
    body: dict[str, Any] = {"status": Status(status).value, "reason": reason}
    if superseded_by is not None:
        body["superseded_by"] = normalise_code(superseded_by)
    # Not replayable after no answer: the change may have been made, and a repeat would
    # be refused (409) or, for a release and a pledge, undo nothing. Read history().
    return Call(
        "POST",
        f"/v1/certificates/{path_code(code)}/status",
        lambda r: History.parse(json_of(r)),
        json=body,
        replayable=False,
    )


def history(code: str) -> Call[History]:
    return Call(
        "GET", f"/v1/certificates/{path_code(code)}/status", lambda r: History.parse(json_of(r))
    )


CONSENT_HEADER = "Consent-Token"


def _consented(consent_token: str | None) -> dict[str, str]:
    """The holder's consent a verifier presents (``Consent-Token``), if it has one."""
    return {} if consent_token is None else {CONSENT_HEADER: consent_token}


def find_proofs(
    holder_id: str, type_: str, purpose: str | None, consent_token: str | None
) -> Call[list[Verification]]:
    params = {"holder_id": normalise_holder_id(holder_id), "type": type_}
    if purpose is not None:
        params["purpose"] = purpose
    return Call(
        "GET",
        "/v1/proofs",
        lambda r: Verification.parse_list(json_of(r), "proofs"),
        params=params,
        headers=_consented(consent_token),
        # A consent's use is taken on arrival: a repeat after no answer would spend another.
        replayable=consent_token is None,
    )


def der_document(response: httpx.Response) -> bytes:
    """A sealed proof's answer: CMS DER."""
    if not response.headers.get("Content-Type", "").startswith("application/pkcs7-mime"):
        raise UnexpectedAnswer("document: not application/pkcs7-mime")
    return response.content


def document(code: str, purpose: str | None, consent_token: str | None) -> Call[bytes]:
    params = None if purpose is None else {"purpose": purpose}
    return Call(
        "GET",
        f"/v1/certificates/{path_code(code)}/document",
        der_document,
        params=params,
        headers=_consented(consent_token),
        replayable=consent_token is None,
    )


def verify_document(der: bytes, purpose: str) -> Call[DocumentCheck]:
    return Call(
        "POST",
        "/v1/verify/document",
        lambda r: DocumentCheck.parse(json_of(r)),
        params={"purpose": purpose},
        content=bytes(der),
        headers={"Content-Type": "application/pkcs7-mime"},
    )


def trust() -> Call[TrustDocument]:
    return Call("GET", "/v1/trust", lambda r: TrustDocument.parse(json_of(r)))


def crl() -> Call[bytes]:
    """The city root's current CRL (DER), for offline checks of seal revocation."""

    def read(response: httpx.Response) -> bytes:
        if response.headers.get("Content-Type", "").split(";")[0] != "application/pkix-crl":
            raise UnexpectedAnswer("crl: not application/pkix-crl")
        return response.content

    return Call("GET", "/v1/crl", read)


def health() -> Call[bool]:
    def read(response: httpx.Response) -> bool:
        body = json_of(response)
        return isinstance(body, dict) and bool(body.get("status") == "ok")

    return Call("GET", "/healthz", read)


def ready() -> Call[Readiness]:
    # 503 is an answer here (not ready, and why), not a refusal to retry.
    return Call("GET", "/readyz", lambda r: Readiness.parse(json_of(r)), answers=(200, 503))


def metrics() -> Call[str]:
    return Call("GET", "/metrics", lambda r: r.text)


def openapi() -> Call[dict[str, Any]]:
    def read(response: httpx.Response) -> dict[str, Any]:
        body = json_of(response)
        if not isinstance(body, dict):
            raise UnexpectedAnswer("openapi: not a JSON object")
        return body

    return Call("GET", "/openapi.json", read)
