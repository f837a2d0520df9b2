"""Sealing: from validated proof requests to durable, sealed, registered proofs.

The path of DESIGN §3: authorise the seal → canonical content → signed attributes → the
HSM signs (in the signing process, batched with concurrent requests) → CMS assembled →
registry write made durable → answer. Nothing is answered before the registry commit.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import functools
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crypto.canonical import canonical_json
from crypto.proof import Endorsement, PendingProof
from gateway.catalog import SealCatalog
from gateway.problems import Problem
from gateway.requests import ProofRequest
from hsm.service import SigningService
from verify.code import CodeAuthority
from verify.directory import Client
from verify.holders import HolderKeys, mask_id, mask_name
from verify.registry import (
    CodeTaken,
    IdempotencyConflict,
    IdempotentRequest,
    ProofRecord,
    Registry,
    Status,
)

# A fresh code collides with a registered one with odds of about N / 2^45; a handful of
# attempts makes a failure practically impossible while bounding the work.
CODE_ATTEMPTS = 4


def rfc3339(timestamp: float) -> str:
    """UTC, whole seconds: ``2026-11-22T03:08:04Z``."""
    return _rfc3339_seconds(int(timestamp))


@functools.lru_cache(maxsize=8192)
def _rfc3339_seconds(seconds: int) -> str:
    # Cached: every status answer formats its proof's times and "now", which repeat.
    return (
        dt.datetime.fromtimestamp(seconds, dt.UTC)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z")
    )


def request_digest(body: Any) -> bytes:
    """What identifies a request body for idempotency: its canonical JSON, hashed."""
    return hashlib.sha256(canonical_json(body)).digest()


@dataclass(frozen=True, slots=True)
class SealOutcome:
    proofs: list[ProofRecord]
    replayed: bool  # answered from an earlier request with the same Idempotency-Key


def proof_view(proof: ProofRecord) -> dict[str, Any]:
    """The 201 body of one sealed proof."""
    return {
        "code": format_code(proof.code),
        "status": proof.status.value,
        "issued_at": rfc3339(proof.issued_at),
        "seal_id": proof.seal_id,
        "document": base64.b64encode(proof.document).decode("ascii"),
    }


def format_code(compact: str) -> str:
    """The hyphenated form of a compact code (region, then three groups of six)."""
    return "-".join((compact[:6], compact[6:12], compact[12:18], compact[18:]))


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
    ) -> None:
        self._registry = registry
        self._catalog = catalog
        self._signing = signing
        self._codes = codes
        self._holder_keys = holder_keys
        self._clock = clock
        # One in-flight sealing per (client, idempotency key) in this process; other
        # processes are held off by the registry's unique key.
        self._inflight: dict[tuple[str, str], asyncio.Event] = {}

    def authorise(self, client: Client, requests: list[ProofRequest]) -> None:
        for index, request in enumerate(requests):
            if request.seal_id not in client.seals or self._catalog.seal(request.seal_id) is None:
                where = f"items[{index}].seal_id" if len(requests) > 1 else "seal_id"
                raise Problem(
                    403,
                    "seal-not-granted",
                    "This client may not use that seal",
                    f"{where}: seal {request.seal_id!r} is not granted to this client",
                )

    async def seal(
        self,
        client: Client,
        requests: list[ProofRequest],
        *,
        idempotency_key: str | None = None,
        digest: bytes = b"",
    ) -> SealOutcome:
        self.authorise(client, requests)
        if idempotency_key is None:
            return SealOutcome(await self._seal_and_register(client, requests, None), False)
        slot = (client.client_id, idempotency_key)
        running = self._inflight.get(slot)
        if running is not None:
            # Wait for the twin already in flight, then answer from what it stored (or,
            # if it failed or was cancelled and stored nothing, seal afresh). Only the
            # fact that it ended passes between them, never its exception.
            await running.wait()
            return await self._seal_idempotent(client, requests, idempotency_key, digest)
        done = asyncio.Event()
        self._inflight[slot] = done
        try:
            return await self._seal_idempotent(client, requests, idempotency_key, digest)
        finally:
            del self._inflight[slot]
            done.set()

    async def _seal_idempotent(
        self, client: Client, requests: list[ProofRequest], key: str, digest: bytes
    ) -> SealOutcome:
        previous = await self._registry.idempotent_result(client.client_id, key)
        if previous is not None:
            return await self._replay(client, key, digest)
        ticket = IdempotentRequest(client.client_id, key, digest)
        try:
            return SealOutcome(await self._seal_and_register(client, requests, ticket), False)
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
        return SealOutcome(proofs, True)

    async def _seal_and_register(
        self,
        client: Client,
        requests: list[ProofRequest],
        ticket: IdempotentRequest | None,
    ) -> list[ProofRecord]:
        for attempt in range(CODE_ATTEMPTS):
            # Prepared here, signed together (one trip to the signing process, no task per
            # proof), then assembled.
            prepared = [self._prepare_one(client, r) for r in requests]
            signatures = await self._signing.sign_digests(
                [(label, pending.digest) for label, pending, _ in prepared]
            )
            proofs = [
                dataclasses.replace(record, document=pending.finish(signature))
                for (_, pending, record), signature in zip(prepared, signatures, strict=True)
            ]
            try:
                await self._registry.register(list(proofs), ticket)
                return list(proofs)
            except CodeTaken:
                if attempt == CODE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _prepare_one(
        self, client: Client, request: ProofRequest
    ) -> tuple[str, PendingProof, ProofRecord]:
        """The key label, the CMS awaiting its signature, and the record (document empty)."""
        seal = self._catalog.seal(request.seal_id)
        if seal is None:  # removed since authorise(); treat as not granted
            raise Problem(403, "seal-not-granted", "This client may not use that seal")
        key = seal.active_key
        now = int(self._clock())
        signing_time = dt.datetime.fromtimestamp(now, dt.UTC)
        code = self._codes.issue()
        endorsement = None
        proof_document: dict[str, Any] = {
            "version": 1,
            "code": str(code),
            "type": request.type,
            "issuer": {"unit_name": seal.unit_name, "unit_code": seal.unit_code},
            "seal_id": seal.seal_id,
            "holder": {
                "kind": request.holder_kind.value,
                "id": request.holder_id,
                "name": request.holder_name,
            },
            "content": request.content,
            "valid_from": request.valid_from,
            "issued_at": rfc3339(now),
        }
        if request.valid_until is not None:
            proof_document["valid_until"] = request.valid_until
        if request.endorsement is not None:
            endorsement = Endorsement(
                extracting_unit=request.endorsement.extracting_unit,
                verifying_unit=request.endorsement.verifying_unit,
                extracted_at=signing_time,
            )
            proof_document["endorsement"] = {
                k: v
                for k, v in (
                    ("extracting_unit", endorsement.extracting_unit),
                    ("verifying_unit", endorsement.verifying_unit),
                    ("extracted_at", rfc3339(now)),
                )
                if v is not None
            }
        pending = self._catalog.sealer(key).prepare(
            canonical_json(proof_document),
            code=str(code),
            seal_id=seal.seal_id,
            signing_time=signing_time,
            endorsement=endorsement,
        )
        record = ProofRecord(
            code=code.compact,
            seal_id=seal.seal_id,
            unit_name=seal.unit_name,
            unit_code=seal.unit_code,
            type=request.type,
            holder_kind=request.holder_kind.value,
            holder_name_masked=mask_name(request.holder_name),
            holder_id_masked=mask_id(request.holder_id),
            holder_key=self._holder_keys.key(request.holder_kind, request.holder_id),
            valid_from=request.valid_from,
            valid_until=request.valid_until,
            expires_at=request.expires_at,
            issued_at=float(now),
            status=Status.VALID,
            status_changed_at=float(now),
            superseded_by=None,
            signer_client=client.client_id,
            document=b"",
        )
        return key.key_label, pending, record
