"""Sealing: from validated proof requests to durable, sealed, registered proofs.

The path of docs/design.md §3.2: authorise the seal → canonical content → signed attributes → the
HSM signs (in the signing process, batched with concurrent requests) → the TSA stamps each
signature (when the city has one, all of a batch's at once) → CMS assembled → registry
write made durable → answer. Nothing is answered before the registry commit,
and nothing is committed before its audit intent is journaled (``ahead``).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import functools
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sealgate.crypto.canonical import canonical_json, canonical_string
from sealgate.crypto.errors import SealCertificateNotValid
from sealgate.crypto.proof import Endorsement, PendingProof, ProofSealer
from sealgate.crypto.timestamps import has_signature_timestamp
from sealgate.gateway.catalog import SealCatalog
from sealgate.gateway.instants import rfc3339
from sealgate.gateway.problems import Problem
from sealgate.gateway.requests import ProofRequest
from sealgate.gateway.timestamping import Timestamper, TsaUnavailable
from sealgate.hsm.service import SigningService
from sealgate.verify.code import CodeAuthority
from sealgate.verify.directory import Client, NotFound, Seal, SealKey, SealScope
from sealgate.verify.holders import HolderKeys, mask_id, mask_name
from sealgate.verify.lifecycle import check_issuance
from sealgate.verify.registry import (
    CodeTaken,
    IdempotencyConflict,
    IdempotentRequest,
    ProofRecord,
    Registry,
    Status,
)

log = logging.getLogger("sealgate.gateway.sealing")
T = TypeVar("T")

# Journals the intent of a sealing, with the proofs' hyphenated codes, before the
# registry write; raises (and nothing is registered) if it cannot.
Ahead = Callable[[list[str]], Awaitable[None]]

# A fresh code collides with a registered one with odds of about N / 2^45; a handful of
# attempts makes a failure practically impossible while bounding the work.
CODE_ATTEMPTS = 4


def _where(requests: list[ProofRequest], index: int, field: str) -> str:
    """A refused field's path in the body: a batch's items are numbered."""
    return f"items[{index}].{field}" if len(requests) > 1 else field


def request_digest(body: Any) -> bytes:
    """What identifies a request body for idempotency: its canonical JSON, hashed."""
    return hashlib.sha256(canonical_json(body)).digest()


@dataclass(frozen=True, slots=True)
class SealOutcome:
    proofs: list[ProofRecord]
    replayed: bool  # answered from an earlier request with the same Idempotency-Key
    # When the proofs' statuses are read: the sealing's moment, or a replay's. The 201
    # shows them as of then, as a verification would (not-yet-valid, expired, or a
    # change made since the first answer).
    at: float
    # Whether the proofs carry a TSA's signature timestamp (a sealing stamps all or none).
    timestamped: bool


def proof_json(proof: ProofRecord, code: str, at: float) -> bytes:
    """The 201 body of one sealed proof (``code`` is its hyphenated form), written directly:
    ``{"code", "status", "issued_at", "seal_id", "document"}`` with the document in base64,
    the status as a verification at ``at`` derives it.

    Every part but the seal id is ASCII that needs no escaping (code, status, time,
    base64); ``json.dumps`` spent most of its time scanning the documents for escapes.
    """
    return b"".join(
        (
            b'{"code":"',
            code.encode("ascii"),
            b'","status":"',
            proof.current_status(at).value.encode("ascii"),
            b'","issued_at":"',
            rfc3339(proof.issued_at).encode("ascii"),
            b'","seal_id":',
            _json_string(proof.seal_id),
            b',"document":"',
            base64.b64encode(proof.document),
            b'"}',
        )
    )


@functools.lru_cache(maxsize=256)
def _json_string(text: str) -> bytes:
    return json.dumps(text, ensure_ascii=False).encode()


def proofs_json(proofs: list[ProofRecord], codes: list[str], *, batch: bool, at: float) -> bytes:
    """The 201 body of a sealing: ``{"items": [...]}`` for a batch, else the one proof,
    ending with a newline as every JSON answer does. ``codes`` are the proofs' hyphenated
    codes (the audit record needs them too)."""
    if not batch:
        return proof_json(proofs[0], codes[0], at) + b"\n"
    items = (proof_json(p, c, at) for p, c in zip(proofs, codes, strict=True))
    return b'{"items":[' + b",".join(items) + b"]}\n"


def format_code(compact: str) -> str:
    """The hyphenated form of a compact code (region, then three groups of six)."""
    return "-".join((compact[:6], compact[6:12], compact[12:18], compact[18:]))


def document_json(code: str, request: ProofRequest, seal: Seal, issued_at: str) -> bytes:
    """The content a proof seals: the canonical JSON (RFC 8785) of ::

        {"version": 1, "code", "type", "issuer": {"unit_name", "unit_code"}, "seal_id",
         "holder": {"kind", "id", "name"}, "content", "valid_from", "valid_until"?,
         "issued_at", "endorsement"?: {"extracting_unit"?, "verifying_unit"?,
         "extracted_at"}}

    written member by member in canonical (sorted) key order, with only ``content`` going
    through :func:`canonical_json`: building the object and canonicalising it whole was
    the largest part of preparing a proof (tests compare the two).
    """
    s = canonical_string  # a local name: called a dozen times a proof
    parts = [
        b'{"code":',
        s(code),
        b',"content":',
        canonical_json(request.content),
    ]
    if (endorsement := request.endorsement) is not None:
        parts.append(b',"endorsement":{"extracted_at":')
        parts.append(s(issued_at))
        if endorsement.extracting_unit is not None:
            parts.append(b',"extracting_unit":')
            parts.append(s(endorsement.extracting_unit))
        if endorsement.verifying_unit is not None:
            parts.append(b',"verifying_unit":')
            parts.append(s(endorsement.verifying_unit))
        parts.append(b"}")
    parts += (
        b',"holder":{"id":',
        s(request.holder_id),
        b',"kind":',
        s(request.holder_kind.value),
        b',"name":',
        s(request.holder_name),
        b'},"issued_at":',
        s(issued_at),
        b',"issuer":{"unit_code":',
        s(seal.unit_code),
        b',"unit_name":',
        s(seal.unit_name),
        b'},"seal_id":',
        s(seal.seal_id),
        b',"type":',
        s(request.type),
        b',"valid_from":',
        s(request.valid_from),
    )
    if request.valid_until is not None:
        parts.append(b',"valid_until":')
        parts.append(s(request.valid_until))
    parts.append(b',"version":1}')
    return b"".join(parts)


class SealingService:
    def __init__(
        self,
        *,
        registry: Registry,
        catalog: SealCatalog,
        signing: SigningService,
        codes: CodeAuthority,
        holder_keys: HolderKeys,
        clock: Callable[[], float] = time.time,
        archival_issuance: bool = False,
        timestamper: Timestamper | None = None,
        seal_untimestamped: bool = False,
    ) -> None:
        self._registry = registry
        self._catalog = catalog
        self._signing = signing
        self._codes = codes
        self._holder_keys = holder_keys
        self._clock = clock
        # The city's choice: seal proofs whose validity has already ended (they show
        # expired), or refuse them 422 (the default).
        self._archival_issuance = archival_issuance
        # The city's TSA: each proof's signature is stamped (CAdES-B-T), or none is.
        self._timestamper = timestamper
        # The city's choice when its TSA cannot stamp: refuse (503, the default) or seal
        # without timestamps, each answer marked (Sealgate-Timestamped: false).
        self._seal_untimestamped = seal_untimestamped
        # One in-flight sealing per (client, idempotency key) in this process; other
        # processes are held off by the registry's unique key.
        self._inflight: dict[tuple[str, str], asyncio.Event] = {}

    def authorise(self, client: Client, requests: list[ProofRequest]) -> None:
        for index, request in enumerate(requests):
            seal = self._catalog.seal(request.seal_id)
            if request.seal_id not in client.seals or seal is None:
                raise Problem(
                    403,
                    "seal-not-granted",
                    "This client may not use that seal",
                    f"{_where(requests, index, 'seal_id')}: seal {request.seal_id!r} is not"
                    " granted to this client",
                )
            if seal.scope is SealScope.PLATFORM and client.office is None:
                # the proof's data is some office's: a platform seal records which
                raise Problem(
                    403,
                    "no-office",
                    "A platform seal is used for an office: this signer has none",
                    f"{_where(requests, index, 'seal_id')}: give the signer an --office to use"
                    f" seal {request.seal_id!r}",
                )
            if seal.suspended_at is not None:
                raise Problem(
                    403,
                    "seal-suspended",
                    "The seal is suspended",
                    f"{_where(requests, index, 'seal_id')}: seal {request.seal_id!r} is"
                    " suspended (sealgate seal resume)",
                )

    @staticmethod
    def _refuse_typed_endorsements(requests: list[ProofRequest]) -> None:
        """宁波 第十四条: the platform endorses who extracted, who verified and when. It
        fills that from a verification request and the clients it authenticated
        (``seal_answer``); a signer typing it could name any unit."""
        for index, request in enumerate(requests):
            if request.endorsement is not None:
                raise Problem(
                    422,
                    "endorsement-not-typed",
                    "The endorsement is filled from a verification request, never typed",
                    "answer the request (POST /v1/requests/{id}/respond) instead",
                    field=_where(requests, index, "endorsement"),
                )

    async def seal_answer(
        self,
        client: Client,
        request: ProofRequest,
        *,
        ahead: Ahead,
        store: Callable[[list[ProofRecord]], Awaitable[T]],
    ) -> tuple[ProofRecord, T]:
        """Seal one proof as a request's answer: ``store`` registers it together with the
        request's change (one transaction) instead of the plain registration."""
        self.authorise(client, [request])
        stored: list[T] = []

        async def register(proofs: list[ProofRecord]) -> None:
            stored.append(await store(proofs))

        proofs, _ = await self._seal_and_register(client, [request], None, ahead, register)
        return proofs[0], stored[0]

    async def seal(
        self,
        client: Client,
        requests: list[ProofRequest],
        *,
        idempotency_key: str | None = None,
        digest: bytes = b"",
        ahead: Ahead | None = None,
    ) -> SealOutcome:
        self._refuse_typed_endorsements(requests)
        self.authorise(client, requests)
        if idempotency_key is None:
            proofs, stamped = await self._seal_and_register(client, requests, None, ahead)
            return SealOutcome(proofs, False, proofs[0].issued_at, stamped)
        slot = (client.client_id, idempotency_key)
        running = self._inflight.get(slot)
        if running is not None:
            # Wait for the twin already in flight, then answer from what it stored (or,
            # if it failed or was cancelled and stored nothing, seal afresh). Only the
            # fact that it ended passes between them, never its exception.
            await running.wait()
            return await self._seal_idempotent(client, requests, idempotency_key, digest, ahead)
        done = asyncio.Event()
        self._inflight[slot] = done
        try:
            return await self._seal_idempotent(client, requests, idempotency_key, digest, ahead)
        finally:
            del self._inflight[slot]
            done.set()

    async def _seal_idempotent(
        self,
        client: Client,
        requests: list[ProofRequest],
        key: str,
        digest: bytes,
        ahead: Ahead | None,
    ) -> SealOutcome:
        previous = await self._registry.idempotent_result(client.client_id, key)
        if previous is not None:
            return await self._replay(client, key, digest)
        ticket = IdempotentRequest(client.client_id, key, digest)
        try:
            proofs, stamped = await self._seal_and_register(client, requests, ticket, ahead)
            return SealOutcome(proofs, False, proofs[0].issued_at, stamped)
        except IdempotencyConflict:
            # Another process registered this key first; answer as it did.
            return await self._replay(client, key, digest)

    async def _replay(self, client: Client, key: str, digest: bytes) -> SealOutcome:
        previous = await self._registry.idempotent_result(client.client_id, key)
        if previous is None:  # pragma: no cover - the key was just seen
            raise IdempotencyConflict("idempotency key vanished")
        if previous.request_digest != digest:
            raise IdempotencyConflict("idempotency key reused with a different body")
        proofs = []
        for code in previous.codes:
            proof = await self._registry.get(code)
            if proof is None:  # pragma: no cover - written in one transaction
                raise IdempotencyConflict("idempotency record names a missing proof")
            proofs.append(proof)
        # A replay answers as a verification would now: a retry must not be told a status
        # the proof no longer has. It is never refused for having ended since: it exists.
        stamped = has_signature_timestamp(proofs[0].document)
        return SealOutcome(proofs, True, self._clock(), stamped)

    async def _seal_and_register(
        self,
        client: Client,
        requests: list[ProofRequest],
        ticket: IdempotentRequest | None,
        ahead: Ahead | None = None,
        store: Callable[[list[ProofRecord]], Awaitable[None]] | None = None,
    ) -> tuple[list[ProofRecord], bool]:
        """The proofs registered (by ``store``, else the plain registration), and whether
        they carry timestamps."""
        for attempt in range(CODE_ATTEMPTS):
            # Prepared here, signed together (one trip to the signing process, no task per
            # proof), then assembled.
            prepared = self._prepare(client, requests)
            signatures = await self._signing.sign_digests(
                [(p.key_label, p.pending.digest) for p in prepared]
            )
            signatures, stamps = await self._stamp(prepared, signatures)
            proofs = [
                p.record(p.pending.finish(signature, stamp))
                for p, signature, stamp in zip(prepared, signatures, stamps, strict=True)
            ]
            if ahead is not None:
                await ahead([format_code(p.code) for p in proofs])
            try:
                if store is None:
                    await self._registry.register(proofs, ticket)
                else:
                    await store(proofs)
                return proofs, bool(stamps[0])
            except CodeTaken:
                if attempt == CODE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _stamp(
        self, prepared: list[_Prepared], signatures: list[bytes]
    ) -> tuple[list[bytes], list[bytes]]:
        """The signatures, and each one's ``unsignedAttrs`` with its timestamp, or all
        empty: without a TSA, or when it cannot stamp and the city chose to seal without
        (else the TsaUnavailable propagates: 503, nothing sealed)."""
        none = [b""] * len(signatures)
        if self._timestamper is None:
            return signatures, none
        # As the proofs will carry them (ECDSA: low S): what the timestamps must be over.
        signatures = [
            p.pending.signature_value(signature)
            for p, signature in zip(prepared, signatures, strict=True)
        ]
        try:
            return signatures, await self._timestamper.stamp(signatures)
        except TsaUnavailable as exc:
            if not self._seal_untimestamped:
                raise
            log.warning("sealing %d proof(s) without timestamps: %s", len(signatures), exc)
            return signatures, none

    def _prepare(self, client: Client, requests: list[ProofRequest]) -> list[_Prepared]:
        """Each proof's CMS awaiting its signature, with what its record needs."""
        # What a batch shares is worked out once: the time, and each seal's key and sealer.
        # The proof shows whole seconds; the registry keeps the instant, which orders two
        # proofs sealed within one second (a newer proof supersedes an older one). Across
        # gateways that order is only as good as their clocks' agreement.
        moment = self._clock()
        self._check_dates(requests, moment)
        now = int(moment)
        signing_time = dt.datetime.fromtimestamp(now, dt.UTC)
        issued_at = rfc3339(now)
        seals: dict[str, tuple[Seal, SealKey, ProofSealer]] = {}
        prepared = []
        for request in requests:
            entry = seals.get(request.seal_id)
            if entry is None:
                seal = self._catalog.seal(request.seal_id)
                if seal is None:  # removed since authorise(); treat as not granted
                    raise Problem(403, "seal-not-granted", "This client may not use that seal")
                try:
                    key = seal.active_key
                except NotFound:  # every certificate of the seal revoked
                    raise Problem(
                        503,
                        "seal-revoked",
                        "The seal's certificate is revoked; an operator must rotate its key",
                        f"seal {seal.seal_id}",
                    ) from None
                entry = seals[request.seal_id] = (seal, key, self._catalog.sealer(key))
            seal, key, sealer = entry
            code = self._codes.issue()
            code_text = str(code)
            endorsement = None
            if request.endorsement is not None:
                endorsement = Endorsement(
                    extracting_unit=request.endorsement.extracting_unit,
                    verifying_unit=request.endorsement.verifying_unit,
                    extracted_at=signing_time,
                )
            try:
                pending = sealer.prepare(
                    document_json(code_text, request, seal, issued_at),
                    code=code_text,
                    seal_id=seal.seal_id,
                    signing_time=signing_time,
                    endorsement=endorsement,
                )
            except SealCertificateNotValid as exc:
                # Every checker would refuse the proof; the operator must rotate the key.
                raise Problem(
                    503,
                    "seal-certificate-not-valid",
                    "The seal's certificate is not valid now; an operator must rotate its key",
                    f"seal {seal.seal_id}: {exc}",
                ) from exc
            prepared.append(
                _Prepared(
                    key.key_label,
                    pending,
                    code.compact,
                    seal,
                    request,
                    self._holder_keys.key(request.holder_kind, request.holder_id),
                    moment,
                    client.client_id,
                    client.office if seal.scope is SealScope.PLATFORM else None,
                )
            )
        return prepared

    def _check_dates(self, requests: list[ProofRequest], moment: float) -> None:
        """Refuse the whole sealing (before anything is signed or stored) if a proof's
        validity has ended by ``moment``, unless the city issues for the archive."""
        for index, request in enumerate(requests):
            check_issuance(
                request.expires_at,
                moment,
                archival=self._archival_issuance,
                field=f"items[{index}].valid_until" if len(requests) > 1 else "valid_until",
            )


@dataclass(slots=True)  # not frozen: its __init__ would set each field through object.__setattr__
class _Prepared:
    """One proof between preparation and its signature (private, never changed)."""

    key_label: str
    pending: PendingProof
    code: str  # compact
    seal: Seal
    request: ProofRequest
    holder_key: bytes
    issued_at: float
    signer_client: str
    data_owner: str | None  # a platform seal's proof: the signer's office

    def record(self, document: bytes) -> ProofRecord:
        request, seal = self.request, self.seal
        endorsement = request.endorsement
        return ProofRecord(
            code=self.code,
            seal_id=seal.seal_id,
            unit_name=seal.unit_name,
            unit_code=seal.unit_code,
            type=request.type,
            holder_kind=request.holder_kind.value,
            holder_name_masked=mask_name(request.holder_name),
            holder_id_masked=mask_id(request.holder_id),
            holder_key=self.holder_key,
            valid_from=request.valid_from,
            valid_until=request.valid_until,
            expires_at=request.expires_at,
            issued_at=self.issued_at,
            status=Status.VALID,
            status_changed_at=self.issued_at,
            superseded_by=None,
            signer_client=self.signer_client,
            document=document,
            data_owner=self.data_owner,
            extracting_unit=None if endorsement is None else endorsement.extracting_unit,
            verifying_unit=None if endorsement is None else endorsement.verifying_unit,
        )
