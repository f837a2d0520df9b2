"""The public check page and its one question (no token): valid or not, type, unit, dates."""

from __future__ import annotations

from importlib import resources
from typing import Any

from aiohttp import web

from sealgate.crypto.qr_payload import PREFIX, read_payload
from sealgate.gateway.handlers.common import json_response
from sealgate.gateway.keys import CHECK_BUCKETS, CHECKER, CLOCK, FAILED_LOOKUPS, GATEWAY_KEYS
from sealgate.gateway.problems import invalid
from sealgate.gateway.public_check import client_address
from sealgate.gateway.throttle import limited_lookup
from sealgate.verify.registry import Status

MAX_INPUT = 2048
_STATIC = resources.files("sealgate.gateway") / "static"
PAGE = (_STATIC / "check.html").read_bytes()
SCRIPT = (_STATIC / "check.js").read_bytes()
# The page runs only its own script and talks only to this gateway.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self' "
    "'unsafe-inline'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'",
    "Cache-Control": "public, max-age=300",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


async def get_check_page(request: web.Request) -> web.Response:
    return web.Response(body=PAGE, content_type="text/html", charset="utf-8", headers=PAGE_HEADERS)


async def get_check_script(request: web.Request) -> web.Response:
    return web.Response(
        body=SCRIPT, content_type="text/javascript", charset="utf-8", headers=PAGE_HEADERS
    )


async def get_public_check(request: web.Request) -> web.Response:
    """``?q=`` a code as typed, or a scanned QR payload: what the page shows."""
    address = client_address(request)
    request.app[CHECK_BUCKETS].admit(address)
    typed = request.query.get("q", "").strip()
    if not typed or len(typed) > MAX_INPUT:
        raise invalid("q", "give a verification code or a scanned QR payload")
    checker = request.app[CHECKER]
    now = request.app[CLOCK]()
    code = typed
    if typed.upper().startswith(PREFIX):
        # Only the signature and the code are taken from a payload; the status is live.
        code = read_payload(typed, request.app[GATEWAY_KEYS].trust, now=now).code
    status = await limited_lookup(
        request.app[FAILED_LOOKUPS], f"check:{address}", lambda: checker.status(code)
    )
    answer: dict[str, Any] = {
        "valid": status.current_status(now) is Status.VALID,
        "type": status.type,
        "unit_name": status.unit_name,
        "valid_from": status.valid_from,
        "valid_until": status.valid_until,
    }
    return json_response(answer, headers={"Cache-Control": "no-store"})
