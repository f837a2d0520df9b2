"""Consents over HTTP's back: granting one (a token signed in the HSM), redeeming one on a
document download or a reuse lookup, listing and revoking a holder's.

The token is a compact JWS (``typ`` :data:`TOKEN_TYPE`) signed by the gateway's consent
key; it carries the consent's id, its grantee (``aud``), matter, types, expiry and uses,
and nothing of the holder. A verifier presents it in the :data:`CONSENT_HEADER` header.
Redeeming checks the signature, that the verifier is the grantee, and then takes a use
in the registry, which alone knows whether the holder revoked it or it was used up.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from aiohttp import web

from sealgate.crypto.errors import CryptoError
from sealgate.crypto.jws import open_jws, prepare_jws
from sealgate.crypto.key_trust import Use
from sealgate.gateway.attestation import GatewayKeys
from sealgate.gateway.problems import Problem
from sealgate.gateway.requests import ConsentRequest
from sealgate.hsm.service import SigningService
from sealgate.verify.consents import Consent, ConsentDoesNotCover, ConsentNotUsable
from sealgate.verify.directory import Client
from sealgate.verify.holders import HolderKeys
from sealgate.verify.registry import Registry

CONSENT_HEADER = "Consent-Token"
TOKEN_TYPE = "sealgate-consent+jwt"  # noqa: S105 - a media type, not a secret


def consent_refused(detail: str) -> Problem:
    return Problem(403, "consent-invalid", "The consent does not allow this", detail)


class ConsentService:
    def __init__(
        self,
        *,
        registry: Registry,
        signing: SigningService,
        keys: GatewayKeys,
        holder_keys: HolderKeys,
        clock: Callable[[], float],
    ) -> None:
        self._registry = registry
        self._signing = signing
        self._keys = keys
        self._holder_keys = holder_keys
        self._clock = clock

    def holder_key(self, request: ConsentRequest) -> bytes:
        return self._holder_keys.key(request.holder_kind, request.holder_id)

    def new(self, request: ConsentRequest) -> Consent:
        return Consent(
            consent_id="CN-" + secrets.token_urlsafe(12),
            holder_key=self.holder_key(request),
            grantee=request.grantee,
            matter=request.matter,
            proof_types=request.proof_types,
            expires_at=request.expires_at,
            uses_left=request.uses,
            created_at=self._clock(),
            revoked_at=None,
        )

    async def token(self, consent: Consent) -> str:
        label, kid = self._keys.signer(Use.CONSENT)
        claims = {
            "jti": consent.consent_id,
            "aud": consent.grantee,
            "matter": consent.matter,
            "types": list(consent.proof_types),
            "iat": int(consent.created_at),
            "exp": int(consent.expires_at),
            "uses": consent.uses_left,
        }
        pending = prepare_jws(kid, claims, typ=TOKEN_TYPE)
        return pending.finish(await self._signing.sign_digest(label, pending.digest))

    async def redeem(
        self,
        request: web.Request,
        client: Client,
        *,
        holder_key: bytes,
        proof_type: str,
        matter: str | None = None,
    ) -> Consent:
        """The consent the request presents, one use taken; 403 if there is none that
        covers this client reading this holder's proof of this type now (and, when
        ``matter`` is given, for that matter: a content read's, docs/design.md §17)."""
        token = request.headers.get(CONSENT_HEADER)
        if not token:
            raise Problem(
                403,
                "consent-required",
                "The holder's consent is required",
                f"send the holder's consent token in {CONSENT_HEADER}",
            )
        now = self._clock()
        try:
            claims = open_jws(token, self._keys.trust, Use.CONSENT, typ=TOKEN_TYPE)
        except CryptoError:
            raise consent_refused("the consent token is not one this gateway signed") from None
        consent_id, audience = claims.get("jti"), claims.get("aud")
        if not isinstance(consent_id, str) or audience != client.client_id:
            raise consent_refused("the consent was given to another client")
        types = claims.get("types")
        if not isinstance(types, list) or proof_type not in types:  # before a use is spent
            raise consent_refused("the consent does not cover this type of proof")
        if matter is not None and claims.get("matter") != matter:
            raise consent_refused("the consent was given for another matter")
        try:
            consent = await self._registry.use_consent(consent_id, now)
            consent.covers(holder_key=holder_key, grantee=client.client_id, proof_type=proof_type)
        except (ConsentNotUsable, ConsentDoesNotCover) as exc:
            raise consent_refused(str(exc)) from None
        return consent
