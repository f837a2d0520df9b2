"""Consents, for the portal acting for a holder it has authenticated: grant, list, revoke."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sealgate.gateway.audit import AUDIT_NOTE
from sealgate.gateway.handlers.common import json_response, read_body
from sealgate.gateway.instants import rfc3339
from sealgate.gateway.keys import AUTH, CATALOG, CLOCK, CONSENTS, HOLDER_KEYS, REGISTRY
from sealgate.gateway.middleware import write_ahead
from sealgate.gateway.problems import Problem
from sealgate.gateway.requests import decode_json, parse_consent_request, parse_holder_id
from sealgate.verify.consents import Consent, ConsentNotFound
from sealgate.verify.directory import Role

MAX_CONSENT_BODY = 16 * 1024
NO_STORE = {"Cache-Control": "no-store"}


def consent_view(consent: Consent) -> dict[str, Any]:
    view = consent.view()
    view["expires_at"] = rfc3339(consent.expires_at)
    return view


async def post_consent(request: web.Request) -> web.Response:
    await request.app[AUTH].require(request, Role.PORTAL)
    service = request.app[CONSENTS]
    body = parse_consent_request(
        decode_json(await read_body(request, MAX_CONSENT_BODY)), request.app[CLOCK]()
    )
    if request.app[CATALOG].matter(body.matter) is None:
        # A consent is given for a matter of the city's table (docs/design.md §17): the
        # one a content read's purpose names, so a consent cannot outlive its business.
        raise Problem(
            422,
            "unknown-matter",
            "The matter is not in the city's table of matters",
            "name a matter of the table (sealgate matter list) by its id",
        )
    consent = service.new(body)
    request[AUDIT_NOTE].detail = {
        "consent": consent.consent_id,
        "holder": consent.holder_key.hex(),
        "grantee": consent.grantee,
        "matter": consent.matter,
    }
    token = await service.token(consent)  # signed before it is stored: no unsigned consent
    await write_ahead(request)
    await request.app[REGISTRY].add_consent(consent)
    return json_response({**consent_view(consent), "token": token}, 201, headers=NO_STORE)


def _holder_key(request: web.Request) -> bytes:
    kind, holder_id = parse_holder_id(request.query.get("holder_id"), "holder_id")
    return request.app[HOLDER_KEYS].key(kind, holder_id)


async def get_consents(request: web.Request) -> web.Response:
    await request.app[AUTH].require(request, Role.PORTAL)
    holder_key = _holder_key(request)
    request[AUDIT_NOTE].detail = {"holder": holder_key.hex()}
    found = await request.app[REGISTRY].consents_of(holder_key)
    return json_response({"items": [consent_view(c) for c in found]}, headers=NO_STORE)


async def delete_consent(request: web.Request) -> web.Response:
    await request.app[AUTH].require(request, Role.PORTAL)
    holder_key = _holder_key(request)
    consent_id = request.match_info["consent_id"]
    request[AUDIT_NOTE].detail = {"holder": holder_key.hex(), "consent": consent_id[:64]}
    await write_ahead(request)
    try:
        await request.app[REGISTRY].revoke_consent(consent_id, holder_key, request.app[CLOCK]())
    except ConsentNotFound:
        raise Problem(404, "unknown-consent", "The holder has no such consent in force") from None
    return web.Response(status=204, headers=NO_STORE)
