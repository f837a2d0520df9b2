"""亮码: a proof's QR payload, signed in the HSM for the portal to show on a phone.

The payload (:mod:`sealgate.crypto.qr_payload`) is signed by the gateway's QR key
(:mod:`sealgate.gateway.attestation` says why not the seal's), names the proof's index in
the status lists (given on its first QR), and in the dynamic variant ends
``qr_lifetime`` seconds (a city setting, 60-120) after it was made, so a screenshot
passed on stops working. Rendered with segno at error correction level M: a phone's
screen is not a torn label, and level M keeps a ~500-character payload at version 13
(69 modules), well under the version 15 the contract allows.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable
from dataclasses import dataclass

import segno

from sealgate.crypto.key_trust import Use
from sealgate.crypto.qr_payload import QrClaims, encode_payload, holder_digest, prepare_payload
from sealgate.crypto.verification import verify_proof
from sealgate.gateway.attestation import GatewayKeys, sign_cose
from sealgate.gateway.catalog import SealCatalog
from sealgate.gateway.problems import Problem
from sealgate.gateway.status_lists import StatusLists, list_position
from sealgate.hsm.service import SigningService
from sealgate.verify.registry import ProofRecord, Registry, Status

# A proof in one of these may be shown; a changed or ended one may not.
SHOWABLE = frozenset({Status.VALID, Status.PLEDGED, Status.NOT_YET_VALID})
ERROR_LEVEL = "m"
PNG_SCALE = 5  # pixels a module: 385 px square at version 13 with its 4-module border
MAX_DIGESTS = 10_000


@dataclass(frozen=True, slots=True)
class IssuedQr:
    payload: str
    claims: QrClaims

    def qr(self) -> segno.QRCode:
        return segno.make(self.payload, error=ERROR_LEVEL, micro=False, boost_error=False)

    def png(self) -> bytes:
        out = io.BytesIO()
        self.qr().save(out, kind="png", scale=PNG_SCALE, border=4)
        return out.getvalue()

    def svg(self) -> bytes:
        out = io.BytesIO()
        self.qr().save(out, kind="svg", scale=PNG_SCALE, border=4, xmldecl=True)
        return out.getvalue()


class QrIssuer:
    def __init__(
        self,
        *,
        registry: Registry,
        catalog: SealCatalog,
        signing: SigningService,
        keys: GatewayKeys,
        lists: StatusLists,
        region: str,
        lifetime: float,
        clock: Callable[[], float],
    ) -> None:
        self._registry = registry
        self._catalog = catalog
        self._signing = signing
        self._keys = keys
        self._lists = lists
        self._region = region
        self._lifetime = int(lifetime)
        self._clock = clock
        # The slow holder digest depends on the code and holder alone: made once a code.
        self._digests: dict[str, bytes] = {}

    async def issue(self, record: ProofRecord, *, dynamic: bool) -> IssuedQr:
        now = self._clock()
        if record.current_status(now) not in SHOWABLE:
            raise Problem(
                409,
                "not-showable",
                "A proof in this status cannot be shown as a QR code",
                f"the proof is {record.current_status(now).value}",
            )
        label, kid = self._keys.signer(Use.QR)
        index = await self._registry.status_slot(record.code)
        list_id, entry = list_position(index)
        issued_at = int(now)
        claims = QrClaims(
            issuer=self._region,
            code=record.code,
            type=record.type,
            unit_name=record.unit_name,
            unit_code=record.unit_code,
            valid_from=record.valid_from,
            valid_until=record.valid_until,
            holder_kind=record.holder_kind,
            holder_name_masked=record.holder_name_masked,
            holder_digest=await self._holder_digest(record),
            status_list=self._lists.uri(list_id),
            status_index=entry,
            issued_at=issued_at,
            expires_at=issued_at + self._lifetime if dynamic else None,
        )
        cose = await sign_cose(self._signing, label, prepare_payload(claims, kid))
        return IssuedQr(encode_payload(cose), claims)

    async def _holder_digest(self, record: ProofRecord) -> bytes:
        digest = self._digests.get(record.code)
        if digest is None:
            # The full identity number is only in the sealed document: read it there,
            # checked against the trust list like any presented proof.
            content = verify_proof(record.document, self._catalog.snapshot.trust).content
            holder_id = str(json.loads(content)["holder"]["id"])
            digest = await asyncio.to_thread(holder_digest, record.code, holder_id)
            if len(self._digests) >= MAX_DIGESTS:
                self._digests.clear()
            self._digests[record.code] = digest
        return digest
