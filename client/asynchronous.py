"""The asyncio client: :class:`AsyncClient`, the same operations as :class:`Client`."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import httpx

from sealgate.client import calls, calls_admin, calls_casework, calls_showing, notices
from sealgate.client.admin import ApiClient, SealInfo
from sealgate.client.calls import NO_RETRIES, Call, RetryPolicy
from sealgate.client.calls_showing import ImageFormat, Variant
from sealgate.client.casework import (
    Consent,
    HolderRequest,
    NewRequest,
    RequestAnswer,
    State,
    Tier,
    VerificationRequest,
)
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
from sealgate.client.showing import PublicCheck, QrCheck, QrCode, StatusList

T = TypeVar("T")


class AsyncClient:
    """A sealgate gateway, for one client token (its role decides what it may call).

    ::

        async with AsyncClient("https://gateway.example", token=token) as gateway:
            answer = await gateway.verify("430900-ZDXE31-DD2417-Z7GDVP", purpose="开户")

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
        self._http = httpx.AsyncClient(**http_options(base_url, token, timeout, tls))
        self._retry = retry or RetryPolicy()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def _run(self, call: Call[T]) -> T:
        policy = NO_RETRIES if call.once else self._retry
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._http.send(call.request(self._http))
            except httpx.TransportError as exc:
                wait = policy.after_failure(attempt, call.replayable)
                if wait is None:
                    raise calls.unreachable(exc) from exc
                await asyncio.sleep(wait)
                continue
            if response.status_code not in call.answers:
                wait = policy.after_answer(response, attempt)
                if wait is not None:
                    await asyncio.sleep(wait)
                    continue
            return call.outcome(response)

    # signer
    async def seal(
        self, proof: ProofRequest | Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> SealedProof:
        """Seal one proof. An Idempotency-Key is made unless given: retries of this call
        (after no answer, a 429 or a 503) return the first result, never a second proof."""
        return await self._run(calls.seal(proof, idempotency_key))

    async def seal_batch(
        self,
        proofs: Iterable[ProofRequest | Mapping[str, Any]],
        *,
        idempotency_key: str | None = None,
    ) -> list[SealedProof]:
        """Seal up to 1,000 proofs atomically: all are registered, or none."""
        return await self._run(calls.seal_batch(proofs, idempotency_key))

    # verifier
    async def verify(
        self,
        code: str,
        *,
        purpose: str,
        fields: str | None = None,
        consent_token: str | None = None,
    ) -> Verification:
        """A code's current status, holder masked; ``purpose`` must be granted to you.
        A mistyped code raises :class:`InvalidCode` without a request. ``fields="content"``
        also reads the proof's sealed content (``Verification.content``) where the
        purpose's matter grants it, with the holder's ``consent_token`` where the city
        requires consent (design §17)."""
        return await self._run(calls.verify(code, purpose, fields, consent_token))

    async def verify_batch(
        self, checks: Sequence[str | tuple[str, str]], *, purpose: str
    ) -> list[Verification | Problem]:
        """Up to 100 codes for one purpose, each answered on its own, in order: its
        :class:`Verification` or the :class:`Problem` it met (not raised). A ``(code,
        holder_id)`` pair asks whether the proof is that holder's (``holder_match``);
        the number is compared by the gateway as a keyed hash and never returned."""
        return await self._run(calls.verify_batch(checks, purpose))

    async def find_proofs(
        self,
        holder_id: str,
        type: str,
        *,
        purpose: str | None = None,
        consent_token: str | None = None,
    ) -> list[Verification]:
        """Reuse (一次提交、多次复用): the holder's proofs of ``type`` in force now, with the
        holder's consent (``consent_token``, from :meth:`grant_consent`), or for a granted
        ``purpose`` where the city keeps the purpose-only mode."""
        return await self._run(calls.find_proofs(holder_id, type, purpose, consent_token))

    async def verify_document(self, der: bytes, *, purpose: str) -> DocumentCheck:
        """Have the gateway check a presented sealed proof: seal, chain, registration, status."""
        return await self._run(calls.verify_document(der, purpose))

    # verifier (with purpose) or issuer (own office)
    async def document(
        self, code: str, *, purpose: str | None = None, consent_token: str | None = None
    ) -> bytes:
        """The sealed proof, CMS DER; check it offline with :func:`verify_offline`. A
        verifier presents the holder's consent (``consent_token``) or, in the purpose-only
        mode, a ``purpose``; an issuer, neither (its own office's proofs)."""
        return await self._run(calls.document(code, purpose, consent_token))

    # issuer
    async def change_status(
        self,
        code: str,
        status: Status | str,
        *,
        reason: str,
        superseded_by: str | None = None,
    ) -> History:
        """Pledge (质押), release, change, revoke, cancel or abolish a proof of your office."""
        return await self._run(calls.change_status(code, status, reason, superseded_by))

    async def history(self, code: str) -> History:
        """A proof of your office: its current status and every change (who, when, why)."""
        return await self._run(calls.history(code))

    # requester (a requesting office's system) and signer (the responding office's)
    async def create_request(
        self, request: NewRequest | Mapping[str, Any], *, operator: str
    ) -> VerificationRequest:
        """Send a verification request (协查核验) or an online issuance request (在线开具):
        registered and accepted on arrival, ``due_at`` counted from now. ``operator``:
        the acting staff member's identifier (X-Operator), never a name."""
        return await self._run(calls_casework.create_request(request, operator))

    async def requests(
        self, *, state: State | str | None = None, limit: int | None = None
    ) -> list[VerificationRequest]:
        """A responder's inbox, or a requester's own requests, soonest due first."""
        return await self._run(calls_casework.requests(state, limit))

    async def request(self, request_id: str) -> VerificationRequest:
        """A request with its every step (``steps``), for its requester or responder."""
        return await self._run(calls_casework.request(request_id))

    async def respond(
        self, request_id: str, answer: RequestAnswer | Mapping[str, Any], *, operator: str
    ) -> VerificationRequest:
        """Answer a request of your office: sealed with the seal kind its mode requires
        (verify: 查询核验专用章), the endorsement filled from the request; the answer
        carries the sealed proof (``document``) and its code (``answer_code``)."""
        return await self._run(calls_casework.respond(request_id, answer, operator))

    async def reclassify(
        self, request_id: str, tier: Tier | str, *, reason: str, operator: str
    ) -> VerificationRequest:
        """Move a request to a slower tier of its mode, with a reason."""
        return await self._run(calls_casework.reclassify(request_id, tier, reason, operator))

    async def extend(
        self, request_id: str, *, reason: str, approver: str, operator: str
    ) -> VerificationRequest:
        """Extend an extendable tier once by 5 working days, naming who approved it."""
        return await self._run(calls_casework.extend(request_id, reason, approver, operator))

    async def return_request(
        self, request_id: str, *, reason: str, operator: str
    ) -> VerificationRequest:
        """Return a request with a reason (outside the office's remit); it is closed."""
        return await self._run(calls_casework.return_request(request_id, reason, operator))

    # portal (the citizens' personal space, acting for a holder it has authenticated)
    async def holder_requests(self, holder_id: str) -> list[HolderRequest]:
        """The requests about a holder, newest first, with no case file or staff."""
        return await self._run(calls_casework.holder_requests(holder_id))

    async def grant_consent(
        self,
        holder_id: str,
        *,
        grantee: str,
        matter: str,
        proof_types: Iterable[str],
        expires_at: dt.datetime | dt.date | str,
        uses: int,
    ) -> Consent:
        """The holder consents to ``grantee`` (a verifier's client id) reading the
        holder's proofs of ``proof_types`` for ``matter``, ``uses`` times until
        ``expires_at``; give the verifier the answer's ``token``."""
        return await self._run(
            calls_casework.grant_consent(holder_id, grantee, matter, proof_types, expires_at, uses)
        )

    async def consents(self, holder_id: str) -> list[Consent]:
        """The holder's consents, revoked and expired ones included."""
        return await self._run(calls_casework.consents(holder_id))

    async def revoke_consent(self, consent_id: str, *, holder_id: str) -> None:
        """The holder withdraws a consent: its token is refused from now on."""
        return await self._run(calls_casework.revoke_consent(consent_id, holder_id))

    async def subscribe(
        self,
        url: str,
        events: Iterable[str],
        *,
        codes: Iterable[str] = (),
        purpose: str | None = None,
    ) -> notices.Subscription:
        """Change notices to ``url``: a verifier's of its ``codes`` (each checked for
        ``purpose``), a requester's of its office's requests. The answer's ``secret``
        (``whsec_…``) checks the notices' signatures; it is given this once."""
        return await self._run(notices.subscribe(url, events, codes, purpose))

    async def subscriptions(self) -> list[notices.Subscription]:
        """This client's subscriptions (without their secrets)."""
        return await self._run(notices.subscriptions())

    async def subscription(self, subscription_id: str) -> notices.Subscription:
        return await self._run(notices.subscription(subscription_id))

    async def unsubscribe(self, subscription_id: str) -> None:
        """End a subscription; what it was still owed is dropped."""
        return await self._run(notices.unsubscribe(subscription_id))

    async def deliveries(
        self, subscription_id: str, *, limit: int | None = None
    ) -> list[notices.Delivery]:
        """The delivery log, newest first: each notice's state, attempts, last status."""
        return await self._run(notices.deliveries(subscription_id, limit))

    async def my_proofs(self, *, holder_assertion: str) -> list[Verification]:
        """The holder's own proofs in any status; ``holder_assertion``: the identity
        platform's signed word (JWS) that the holder is who the portal says. An assertion
        serves one request: this call is never retried."""
        return await self._run(calls_casework.my_proofs(holder_assertion))

    async def my_document(self, code: str, *, holder_assertion: str) -> bytes:
        """One of the holder's own sealed proofs (CMS DER), with the holder's data in full."""
        return await self._run(calls_casework.my_document(code, holder_assertion))

    async def qr(self, code: str, *, variant: Variant = "dynamic") -> QrCode:
        """亮码: a proof's QR payload for its holder; the dynamic variant expires in the
        city's qr_lifetime (60 to 120 s)."""
        return await self._run(calls_showing.qr(code, variant))

    async def qr_image(
        self, code: str, *, kind: ImageFormat = "png", variant: Variant = "dynamic"
    ) -> bytes:
        """The proof's QR code drawn, as PNG or SVG."""
        return await self._run(calls_showing.qr_image(code, kind, variant))

    # verifier
    async def verify_qr(self, payload: str) -> QrCheck:
        """扫码 online: a scanned payload's signature, then the proof's live status."""
        return await self._run(calls_showing.verify_qr(payload))

    # anyone
    async def status_list(self, list_id: int, *, cached: StatusList | None = None) -> StatusList:
        """A signed status list (:attr:`QrCode.status_list_id`); with ``cached``, that
        list is returned as it is unless the gateway has a newer one (304)."""
        return await self._run(calls_showing.status_list(list_id, cached))

    async def public_check(self, code_or_payload: str) -> PublicCheck:
        """What anyone may learn of a code or a scanned payload, with no token: valid or
        not, its type, unit and dates. A mistyped code raises InvalidCode unsent."""
        return await self._run(calls_showing.public_check(code_or_payload))

    # admin (provisioning; every change names its operator, kept in the audit trail)
    async def clients(self) -> list[ApiClient]:
        """Every client with its grants and limit (never a token)."""
        return await self._run(calls_admin.clients())

    async def add_client(
        self,
        *,
        name: str,
        role: str,
        seals: Iterable[str] = (),
        purposes: Iterable[str] = (),
        office: str | None = None,
        operator: str,
    ) -> ApiClient:
        """Add a client; the answer's ``token`` is its bearer token, shown this once.
        Not retried after no answer (a repeat would add a second client)."""
        return await self._run(
            calls_admin.add_client(name, role, seals, purposes, office, operator)
        )

    async def remove_client(self, client_id: str, *, operator: str) -> None:
        """Remove a client: its token is refused at once by the gateway that answers,
        by every other within 10 s."""
        return await self._run(calls_admin.remove_client(client_id, operator))

    async def set_grants(
        self,
        client_id: str,
        *,
        role: str,
        seals: Iterable[str] = (),
        purposes: Iterable[str] = (),
        office: str | None = None,
        operator: str,
    ) -> ApiClient:
        """Replace a client's role, seals, purposes and office."""
        return await self._run(
            calls_admin.set_grants(client_id, role, seals, purposes, office, operator)
        )

    async def set_limits(
        self,
        client_id: str,
        *,
        failed_lookups: int,
        window_seconds: float | None = None,
        operator: str,
    ) -> ApiClient:
        """Give a client its own limit on failed lookups (window: 600 s unless given)."""
        return await self._run(
            calls_admin.set_limits(client_id, failed_lookups, window_seconds, operator)
        )

    async def clear_limits(self, client_id: str, *, operator: str) -> ApiClient:
        """Back to the city's limit on failed lookups."""
        return await self._run(calls_admin.clear_limits(client_id, operator))

    async def seals(self) -> list[SealInfo]:
        """Every seal, its key versions and whether it is suspended."""
        return await self._run(calls_admin.seals())

    async def suspend_seal(self, seal_id: str, *, operator: str) -> SealInfo:
        """Suspend a seal (misuse): nothing is sealed with it until resumed."""
        return await self._run(calls_admin.suspension(seal_id, True, operator))

    async def resume_seal(self, seal_id: str, *, operator: str) -> SealInfo:
        """Resume a suspended seal."""
        return await self._run(calls_admin.suspension(seal_id, False, operator))

    # anyone
    async def trust(self) -> TrustDocument:
        return await self._run(calls.trust())

    async def crl(self) -> bytes:
        """The city root's current CRL, DER (``openssl cms -verify -crl_check``,
        ``sealgate verify-file --crl``)."""
        return await self._run(calls.crl())

    async def health(self) -> bool:
        return await self._run(calls.health())

    async def ready(self) -> Readiness:
        return await self._run(calls.ready())

    async def metrics(self) -> str:
        """The Prometheus exposition text of ``/metrics``."""
        return await self._run(calls.metrics())

    async def openapi(self) -> dict[str, Any]:
        return await self._run(calls.openapi())
