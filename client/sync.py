"""The blocking client: :class:`Client`."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import httpx

from sealgate.client import calls
from sealgate.client.calls import Call, RetryPolicy
from sealgate.client.errors import Problem
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
from sealgate.client.settings import http_options

T = TypeVar("T")


class Client:
    """A sealgate gateway, for one client token (its role decides what it may call).

    ::

        with Client("https://gateway.example", token=token) as gateway:
            answer = gateway.verify("430900-ZDXE31-DD2417-Z7GDVP", purpose="开户")

    Every refusal raises a :class:`~sealgate.client.errors.ClientError`; see
    :mod:`sealgate.client.errors`. 429 and 503 are retried as ``retry`` says. ``tls``:
    True (the system's CAs), an :class:`ssl.SSLContext` (the city's CA), or False.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        tls: bool | ssl.SSLContext = True,
    ) -> None:
        self._http = httpx.Client(**http_options(base_url, token, timeout, tls))
        self._retry = retry or RetryPolicy()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _run(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._http.send(call.request(self._http))
            except httpx.TransportError as exc:
                wait = self._retry.after_failure(attempt, call.replayable)
                if wait is None:
                    raise calls.unreachable(exc) from exc
                time.sleep(wait)
                continue
            if response.status_code not in call.answers:
                wait = self._retry.after_answer(response, attempt)
                if wait is not None:
                    time.sleep(wait)
                    continue
            return call.outcome(response)

    # signer
    def seal(
        self, proof: ProofRequest | Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> SealedProof:
        """Seal one proof. An Idempotency-Key is made unless given: retries of this call
        (after no answer, a 429 or a 503) return the first result, never a second proof."""
        return self._run(calls.seal(proof, idempotency_key))

    def seal_batch(
        self,
        proofs: Iterable[ProofRequest | Mapping[str, Any]],
        *,
        idempotency_key: str | None = None,
    ) -> list[SealedProof]:
        """Seal up to 1,000 proofs atomically: all are registered, or none."""
        return self._run(calls.seal_batch(proofs, idempotency_key))

    # verifier
    def verify(self, code: str, *, purpose: str) -> Verification:
        """A code's current status, holder masked; ``purpose`` must be granted to you.
        A mistyped code raises :class:`InvalidCode` without a request."""
        return self._run(calls.verify(code, purpose))

    def verify_batch(
        self, checks: Sequence[str | tuple[str, str]], *, purpose: str
    ) -> list[Verification | Problem]:
        """Up to 100 codes for one purpose, each answered on its own, in order: its
        :class:`Verification` or the :class:`Problem` it met (not raised). A ``(code,
        holder_id)`` pair asks whether the proof is that holder's (``holder_match``);
        the number is compared by the gateway as a keyed hash and never returned."""
        return self._run(calls.verify_batch(checks, purpose))

    def find_proofs(self, holder_id: str, type: str, *, purpose: str) -> list[Verification]:
        """Reuse (一次提交、多次复用): the holder's proofs of ``type`` in force now."""
        return self._run(calls.find_proofs(holder_id, type, purpose))

    def verify_document(self, der: bytes, *, purpose: str) -> DocumentCheck:
        """Have the gateway check a presented sealed proof: seal, chain, registration, status."""
        return self._run(calls.verify_document(der, purpose))

    # verifier (with purpose) or issuer (own office)
    def document(self, code: str, *, purpose: str | None = None) -> bytes:
        """The sealed proof, CMS DER; check it offline with :func:`verify_offline`."""
        return self._run(calls.document(code, purpose))

    # issuer
    def change_status(
        self,
        code: str,
        status: Status | str,
        *,
        reason: str,
        superseded_by: str | None = None,
    ) -> History:
        """Pledge (质押), release, change, revoke, cancel or abolish a proof of your office."""
        return self._run(calls.change_status(code, status, reason, superseded_by))

    def history(self, code: str) -> History:
        """A proof of your office: its current status and every change (who, when, why)."""
        return self._run(calls.history(code))

    # anyone
    def trust(self) -> TrustDocument:
        return self._run(calls.trust())

    def health(self) -> bool:
        return self._run(calls.health())

    def ready(self) -> Readiness:
        return self._run(calls.ready())

    def metrics(self) -> str:
        """The Prometheus exposition text of ``/metrics``."""
        return self._run(calls.metrics())

    def openapi(self) -> dict[str, Any]:
        return self._run(calls.openapi())
