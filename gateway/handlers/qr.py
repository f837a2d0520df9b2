"""亮码扫码 over HTTP: a proof's QR code for the portal, the status lists anyone may fetch,
and the online check of a scanned payload for counters with a network.
"""

from __future__ import annotations

from aiohttp import web

from sealgate.crypto.qr_payload import read_payload
from sealgate.gateway.audit import AUDIT_NOTE
from sealgate.gateway.handlers.common import json_response
from sealgate.gateway.instants import rfc3339
from sealgate.gateway.keys import AUTH, CHECKER, CLOCK, GATEWAY_KEYS, QR_ISSUER, STATUS_LISTS
from sealgate.gateway.language import asks_chinese
from sealgate.gateway.problems import Problem, invalid
from sealgate.gateway.sealing import format_code
from sealgate.verify.directory import Role

FORMATS = ("payload", "svg", "png")
VARIANTS = ("dynamic", "static")
NO_STORE = {"Cache-Control": "no-store"}


async def get_qr(request: web.Request) -> web.Response:
    """The proof's QR code, for the portal acting for its holder."""
    await request.app[AUTH].require(request, Role.PORTAL)
    kind = request.query.get("format", "payload")
    if kind not in FORMATS:
        raise invalid("format", "must be payload, svg or png")
    variant = request.query.get("variant", "dynamic")
    if variant not in VARIANTS:
        raise invalid("variant", "must be dynamic or static")
    record = await request.app[CHECKER].record(request.match_info["code"])
    issued = await request.app[QR_ISSUER].issue(record, dynamic=variant == "dynamic")
    if kind == "png":
        return web.Response(body=issued.png(), content_type="image/png", headers=NO_STORE)
    if kind == "svg":
        return web.Response(body=issued.svg(), content_type="image/svg+xml", headers=NO_STORE)
    claims = issued.claims
    body = {
        "payload": issued.payload,
        "code": format_code(claims.code),
        "issued_at": rfc3339(claims.issued_at),
        "expires_at": None if claims.expires_at is None else rfc3339(claims.expires_at),
        "status_list": {"uri": claims.status_list, "idx": claims.status_index},
        "qr_version": issued.qr().version,
    }
    return json_response(body, headers=NO_STORE)


async def get_status_list(request: web.Request) -> web.StreamResponse:
    """A signed status list (CWT), cacheable by a CDN for half the city's bound."""
    text = request.match_info["list_id"]
    if not (text.isascii() and text.isdigit() and len(text) <= 9):
        raise Problem(404, "unknown-status-list", "No such status list")
    published = request.app[STATUS_LISTS].published(int(text))
    if published is None:
        raise Problem(404, "unknown-status-list", "No such status list")
    headers = {
        "Cache-Control": f"public, max-age={request.app[STATUS_LISTS].max_age}",
        "ETag": published.etag,
        "Last-Modified": published.last_modified,
    }
    if published.etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(
        body=published.token, content_type="application/statuslist+cwt", headers=headers
    )


async def get_verify_qr(request: web.Request) -> web.Response:
    """A scanned payload checked online: its signature, then the proof's live status."""
    await request.app[AUTH].require(request, Role.VERIFIER)
    now = request.app[CLOCK]()
    claims = read_payload(request.match_info["payload"], request.app[GATEWAY_KEYS].trust, now=now)
    request[AUDIT_NOTE].codes = [claims.code]
    checker = request.app[CHECKER]
    status = await checker.status(claims.code)
    view = checker.view(status, now, chinese=asks_chinese(request))
    view["holder"] = {"kind": claims.holder_kind, "name": claims.holder_name_masked}
    view["payload_expires_at"] = None if claims.expires_at is None else rfc3339(claims.expires_at)
    return json_response(view, headers=NO_STORE)
