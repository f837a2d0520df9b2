"""Sealing: an issuing system's proofs sealed and registered (``POST /v1/certificates``)."""

from __future__ import annotations

import functools

from aiohttp import web

from sealgate.gateway.audit import AUDIT_NOTE
from sealgate.gateway.handlers.common import read_body
from sealgate.gateway.keys import AUTH, HOLDER_KEYS, SEALING
from sealgate.gateway.middleware import write_ahead
from sealgate.gateway.requests import decode_json, parse_idempotency_key, parse_seal_body
from sealgate.gateway.sealing import format_code, proofs_json, request_digest
from sealgate.verify.directory import Role


async def post_certificates(request: web.Request) -> web.Response:
    client = await request.app[AUTH].require(request, Role.SIGNER)
    body = await read_body(request)
    payload = decode_json(body)
    proofs, batch = parse_seal_body(payload)
    key = parse_idempotency_key(request.headers.get("Idempotency-Key"))
    # Kept only as keyed hashes: a key is the client's free text, and a plain digest of
    # a body could confirm a guessed holder's identity number.
    keys = request.app[HOLDER_KEYS]
    outcome = await request.app[SEALING].seal(
        client,
        proofs,
        idempotency_key=None
        if key is None
        else keys.keyed_hash("idempotency-key", key.encode()).hex(),
        digest=keys.keyed_hash("request-body", request_digest(payload)) if key else b"",
        ahead=functools.partial(write_ahead, request),
    )
    codes = [format_code(p.code) for p in outcome.proofs]
    request[AUDIT_NOTE].codes = codes
    headers = {"Sealgate-Timestamped": "true" if outcome.timestamped else "false"}
    if outcome.replayed:
        headers["Idempotent-Replayed"] = "true"
    return web.Response(
        status=201,
        body=proofs_json(outcome.proofs, codes, batch=batch, at=outcome.at),
        content_type="application/json",
        headers=headers,
    )
