"""Verification: a code checked, a holder's proofs found, a sealed document fetched or
checked (the verifier's routes).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sealgate.gateway.audit import AUDIT_NOTE
from sealgate.gateway.auth import require_purpose
from sealgate.gateway.content_reads import answer_with_content
from sealgate.gateway.handlers.common import json_response, read_body
from sealgate.gateway.instants import rfc3339
from sealgate.gateway.keys import (
    AUTH,
    BATCH_CHECKS,
    CHECKER,
    CLOCK,
    CONSENTS,
    FAILED_LOOKUPS,
    HOLDER_KEYS,
    REGISTRY,
    SETTINGS,
    VERIFY,
)
from sealgate.gateway.language import asks_chinese
from sealgate.gateway.problems import invalid, not_your_office
from sealgate.gateway.requests import (
    decode_json,
    parse_holder_query,
    parse_purpose,
    parse_verify_batch,
)
from sealgate.gateway.throttle import limited_lookup, limited_search
from sealgate.gateway.verifying import asks_content
from sealgate.verify.code import is_well_formed, recordable_code
from sealgate.verify.directory import Role
from sealgate.verify.registry import ProofRecord, Status

MAX_DOCUMENT = 1024 * 1024

# what a holder search records for the type when it found nothing
NONE_FOUND = "(none found)"


async def get_verify(request: web.Request) -> web.Response:
    if asks_content(request):  # rare, and never among the remembered answers
        return await answer_with_content(request)
    return await request.app[VERIFY].answer(request)


async def get_proofs(request: web.Request) -> web.Response:
    """Reuse (益阳 四(四)2): the holder's current valid proofs of a type, with the holder's
    consent (or, where the city keeps the purpose-only mode, for a granted purpose): in
    force now, so neither expired nor not yet valid."""
    client = await request.app[AUTH].require(request, Role.VERIFIER)
    consent_required = request.app[SETTINGS].consent_required
    if not consent_required:
        require_purpose(client, parse_purpose(request.query.get("purpose")))
    query = parse_holder_query(request.query.get("holder_id"), request.query.get("type"))
    holder_key = request.app[HOLDER_KEYS].key(query.kind, query.holder_id)
    # The keyed hash only: the audit trail never holds an identity number. Nor the type
    # as typed (free text, an identity number too): only once it has named proofs.
    detail = request[AUDIT_NOTE].detail = {"holder": holder_key.hex(), "type": NONE_FOUND}
    if consent_required:
        consent = await request.app[CONSENTS].redeem(
            request, client, holder_key=holder_key, proof_type=query.type
        )
        detail.update(consent=consent.consent_id, matter=consent.matter)
    checker = request.app[CHECKER]
    registry = request.app[REGISTRY]
    clock = request.app[CLOCK]

    async def current() -> list[dict[str, Any]]:
        now = clock()
        found = await registry.find_by_holder(holder_key, query.type)
        chinese = asks_chinese(request)
        return [
            checker.status_view(p, chinese=chinese)
            for p in found
            if p.current_status(now) is Status.VALID
        ]

    # An empty answer counts as a failed lookup, as an unknown code does: this must not
    # be a way to harvest holders by guessing identity numbers.
    items = await limited_search(
        request.app[FAILED_LOOKUPS], client.client_id, current, limit=client.lookup_limit
    )
    if items:
        detail["type"] = query.type
        # one record per code answered: which proofs this verifier was shown
        request[AUDIT_NOTE].codes = [item["code"] for item in items]
    return json_response({"items": items}, headers={"Cache-Control": "no-store"})


async def get_document(request: web.Request) -> web.Response:
    client = await request.app[AUTH].require(request, Role.VERIFIER, Role.ISSUER)
    consent_required = request.app[SETTINGS].consent_required
    if client.role is Role.VERIFIER and not consent_required:
        require_purpose(client, parse_purpose(request.query.get("purpose")))
    checker = request.app[CHECKER]
    code = request.match_info["code"]
    # Throttled like /v1/verify: it answers the same 404 for any code, so it must not be a
    # way around the limit.

    async def lookup() -> ProofRecord:
        found = await checker.record(code)
        if client.role is Role.ISSUER and found.owner != client.office:
            raise not_your_office()  # a failed lookup too: it tells the code exists
        return found

    record = await limited_lookup(
        request.app[FAILED_LOOKUPS], client.client_id, lookup, limit=client.lookup_limit
    )
    if client.role is Role.VERIFIER and consent_required:
        # The sealed document carries the holder's full name and number: only with the
        # holder's consent to this verifier for this type of proof.
        consent = await request.app[CONSENTS].redeem(
            request, client, holder_key=record.holder_key, proof_type=record.type
        )
        request[AUDIT_NOTE].detail = {"consent": consent.consent_id, "matter": consent.matter}
    return web.Response(
        body=record.document,
        content_type="application/pkcs7-mime",
        headers={
            "Content-Disposition": f'attachment; filename="{record.code}.p7m"',
            "Cache-Control": "no-store",
        },
    )


async def post_verify_document(request: web.Request) -> web.Response:
    client = await request.app[AUTH].require(request, Role.VERIFIER)
    require_purpose(client, parse_purpose(request.query.get("purpose")))
    der = await read_body(request, MAX_DOCUMENT)
    if not der:
        raise invalid("body", "send the sealed proof as DER (application/pkcs7-mime)")
    result = await request.app[CHECKER].check_document(der)
    # The code the verified seal vouches for (one refused names none: its content is
    # nobody's word); the trail also says whether it was the registered document.
    note = request[AUDIT_NOTE]
    note.codes = [result["code"]] if is_well_formed(result["code"]) else None
    note.detail = {"registered": result["registered"]}
    return json_response(result, headers={"Cache-Control": "no-store"})


async def post_verify_batch(request: web.Request) -> web.Response:
    """Up to 100 codes for one purpose, each its own status or problem (a bank's batch)."""
    client = await request.app[AUTH].require(request, Role.VERIFIER)
    purpose, checks = parse_verify_batch(decode_json(await read_body(request)))
    note = request[AUDIT_NOTE]
    note.purpose = purpose
    require_purpose(client, purpose)
    # one audit record a code; a holder's number never, only how many were matched
    note.codes = [recordable_code(check.code) for check in checks]
    note.detail["holder_checks"] = sum(check.holder is not None for check in checks)
    items = await request.app[BATCH_CHECKS].check(client, checks, chinese=asks_chinese(request))
    return json_response(
        {"purpose": purpose, "items": items, "checked_at": rfc3339(request.app[CLOCK]())},
        headers={"Cache-Control": "no-store"},
    )
