"""Verification requests over HTTP: a requesting office's system sends them, the
responding office's system sees its inbox and answers, reclassifies, extends or returns
them, and the holder's personal space shows the holder's (docs/design.md §12)."""

from __future__ import annotations

import base64
import functools
from collections.abc import Awaitable, Callable

from aiohttp import web

from sealgate.gateway.audit import AUDIT_NOTE
from sealgate.gateway.handlers.common import json_response, read_body
from sealgate.gateway.keys import AUTH, CONSENTS, DESK, HOLDER_KEYS, SETTINGS
from sealgate.gateway.middleware import write_ahead
from sealgate.gateway.request_parsing import (
    parse_answer,
    parse_limit,
    parse_new_request,
    parse_operator,
    parse_state,
    parse_step,
)
from sealgate.gateway.requests import decode_json, parse_holder_id
from sealgate.gateway.sealing import format_code
from sealgate.verify.directory import Role
from sealgate.verify.requests import Action, RequestQuery

MAX_REQUEST_BODY = 64 * 1024
NO_STORE = {"Cache-Control": "no-store"}


def _operator(request: web.Request) -> str:
    """The acting staff member, recorded in the audit trail (never a name or an id)."""
    operator = parse_operator(request.headers.get("X-Operator"))
    request[AUDIT_NOTE].detail["operator"] = operator
    return operator


def _path_id(request: web.Request) -> str:
    request_id = request.match_info["id"][:64]
    request[AUDIT_NOTE].detail["request"] = request_id
    return request_id


async def post_request(request: web.Request) -> web.Response:
    """A requesting office registers a request; accepted at once on arrival (201)."""
    client = await request.app[AUTH].require(request, Role.REQUESTER)
    operator = _operator(request)
    body = parse_new_request(decode_json(await read_body(request, MAX_REQUEST_BODY)))
    desk = request.app[DESK]
    note = request[AUDIT_NOTE]
    note.detail.update(mode=body.mode.value, tier=body.tier.value)
    if request.app[SETTINGS].consent_required:
        # A request asks another office about the holder: only with the holder's consent
        # to this office for this type of proof (益阳 第十一条). One use is taken here,
        # before the request is registered; a refused registration does not give it back.
        holder_key = request.app[HOLDER_KEYS].key(body.holder_kind, body.holder_id)
        consent = await request.app[CONSENTS].redeem(
            request, client, holder_key=holder_key, proof_type=body.proof_type
        )
        note.detail.update(consent=consent.consent_id, matter=consent.matter)

    async def ahead(request_id: str) -> None:
        note.detail["request"] = request_id  # the intent names the request it registers
        await write_ahead(request, [])

    created = await desk.create(client, body, operator, ahead)
    headers = {"Location": f"/v1/requests/{created.request_id}", **NO_STORE}
    return json_response(desk.view(created, []), status=201, headers=headers)


async def get_requests(request: web.Request) -> web.Response:
    """A responder's inbox, or a requester's own requests, by state (overdue included)."""
    client = await request.app[AUTH].require(request, Role.SIGNER, Role.REQUESTER)
    desk = request.app[DESK]
    state = parse_state(request.query.get("state"))
    limit = parse_limit(request.query.get("limit"))
    if client.office is None:
        return json_response({"items": []}, headers=NO_STORE)
    now = desk.now()
    if client.role is Role.SIGNER:
        query = RequestQuery(now, responder_office=client.office, state=state, limit=limit)
    else:
        query = RequestQuery(now, requester_office=client.office, state=state, limit=limit)
    found = await desk.listing(query)
    return json_response({"items": [desk.view(r) for r in found]}, headers=NO_STORE)


async def get_request(request: web.Request) -> web.Response:
    """A request with its every step, for its requester or its responder."""
    client = await request.app[AUTH].require(request, Role.SIGNER, Role.REQUESTER)
    desk = request.app[DESK]
    found, events = await desk.read(client, _path_id(request))
    return json_response(desk.view(found, events), headers=NO_STORE)


async def post_respond(request: web.Request) -> web.Response:
    """The responding office answers: sealed with the seal the mode requires, the
    endorsement filled from the request; the request and the proof commit together."""
    client = await request.app[AUTH].require(request, Role.SIGNER)
    desk = request.app[DESK]
    request_id = _path_id(request)
    operator = _operator(request)
    current = await desk.responders(client, request_id)
    payload = decode_json(await read_body(request, MAX_REQUEST_BODY))
    answer = parse_answer(payload, current.proof_type)
    updated, proof = await desk.respond(
        client, current, answer, operator, functools.partial(write_ahead, request)
    )
    request[AUDIT_NOTE].codes = [format_code(proof.code)]
    view = desk.view(updated)
    view["document"] = base64.b64encode(proof.document).decode("ascii")
    return json_response(view, headers=NO_STORE)


def _step_handler(
    action: Action, **wants: bool
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        client = await request.app[AUTH].require(request, Role.SIGNER)
        desk = request.app[DESK]
        request_id = _path_id(request)
        operator = _operator(request)
        body = parse_step(decode_json(await read_body(request, MAX_REQUEST_BODY)), **wants)
        updated = await desk.step(
            client, request_id, action, body, operator, functools.partial(write_ahead, request)
        )
        return json_response(desk.view(updated), headers=NO_STORE)

    return handle


post_reclassify = _step_handler(Action.RECLASSIFY, reason=True, tier=True)
post_extend = _step_handler(Action.EXTEND, reason=True, approver=True)
post_return = _step_handler(Action.RETURN, reason=True)


async def get_holder_requests(request: web.Request) -> web.Response:
    """The holder's personal space: the requests about the holder (masked, no staff)."""
    await request.app[AUTH].require(request, Role.PORTAL)
    desk = request.app[DESK]
    kind, holder_id = parse_holder_id(request.query.get("holder_id"), "holder_id")
    key = request.app[HOLDER_KEYS].key(kind, holder_id)
    found = await desk.listing(RequestQuery(desk.now(), holder_key=key))
    return json_response({"items": [desk.holder_view(r) for r in found]}, headers=NO_STORE)
