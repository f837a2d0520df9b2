"""``GET /v1/verify/{code}?purpose=P&fields=content``: the status with the proof's content,
for a purpose whose matter reads it (docs/design.md §17).

The content is the ``content`` object the issuing office sealed (the facts), read from
the registered document, of the fields the matter may read; the holder stays masked, and
the holder's identity number is masked inside the content too. Where the city requires
consent it takes one use of the holder's consent to this client, for this matter and
type, as a document download does. Every refusal is a 403 that says nothing of the
content; the order (matter, proof, type, consent) spends no consent on a read the matter
could not make anyway.
"""

from __future__ import annotations

import json

from aiohttp import web

from sealgate.crypto.verification import signed_parts
from sealgate.gateway.audit import AUDIT_NOTE
from sealgate.gateway.auth import require_purpose
from sealgate.gateway.handlers.common import json_response
from sealgate.gateway.keys import AUTH, CATALOG, CHECKER, CONSENTS, FAILED_LOOKUPS, SETTINGS
from sealgate.gateway.language import asks_chinese
from sealgate.gateway.problems import Problem, invalid
from sealgate.gateway.requests import parse_purpose
from sealgate.gateway.throttle import limited_lookup
from sealgate.gateway.verifying import FIELDS
from sealgate.verify.directory import Role
from sealgate.verify.matters import ContentNotGranted, read_content
from sealgate.verify.registry import ProofRecord

CONTENT = "content"  # the one value ``fields`` takes


def content_not_granted(detail: str) -> Problem:
    return Problem(
        403, "content-not-granted", "This purpose may not read the proof's content", detail
    )


async def answer_with_content(request: web.Request) -> web.Response:
    """The status view with ``content``, checked as a verification is, and more."""
    app = request.app
    client = await app[AUTH].require(request, Role.VERIFIER)
    purpose = parse_purpose(request.query.get("purpose"))
    note = request[AUDIT_NOTE]
    note.purpose = purpose
    require_purpose(client, purpose)
    if request.query.getall(FIELDS) != [CONTENT]:
        raise invalid(FIELDS, f'the one value is "{CONTENT}", given once')
    note.detail.update(fields=CONTENT, matter=purpose)
    matter = app[CATALOG].matter(purpose)
    if matter is None or not matter.contents:
        raise content_not_granted("the purpose's matter reads the content of no proof")
    checker = app[CHECKER]
    code = request.match_info["code"]

    async def lookup() -> ProofRecord:
        return await checker.record(code)

    record = await limited_lookup(
        app[FAILED_LOOKUPS], client.client_id, lookup, limit=client.lookup_limit
    )
    try:
        fields = matter.content_fields(record.type)
    except ContentNotGranted:
        raise content_not_granted(
            "the purpose's matter does not read the content of this type of proof"
        ) from None
    if app[SETTINGS].consent_required:
        consent = await app[CONSENTS].redeem(
            request,
            client,
            holder_key=record.holder_key,
            proof_type=record.type,
            matter=matter.matter_id,
        )
        note.detail["consent"] = consent.consent_id
    # The registered document (decrypted and bound to its code by the registry): the
    # content exactly as the office sealed it.
    sealed = json.loads(signed_parts(record.document)[0])
    view = checker.status_view(record, chinese=asks_chinese(request))
    view[CONTENT] = read_content(
        sealed.get("content"), fields, sealed["holder"]["id"], record.holder_id_masked
    )
    return json_response(view, headers={"Cache-Control": "no-store"})
