"""Change notices' subscriptions: made, listed, read, deleted, and their delivery log
(docs/design.md §18), for verifiers and requesters, each client its own alone."""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from sealgate.gateway.audit import AUDIT_NOTE
from sealgate.gateway.handlers.common import json_response, read_body
from sealgate.gateway.keys import AUTH, SUBSCRIPTIONS
from sealgate.gateway.middleware import write_ahead
from sealgate.gateway.request_parsing import parse_limit, parse_operator
from sealgate.gateway.requests import decode_json
from sealgate.gateway.sealing import format_code
from sealgate.gateway.subscribing import parse_subscription
from sealgate.verify.directory import Role

MAX_SUBSCRIPTION_BODY = 16 * 1024
NO_STORE = {"Cache-Control": "no-store"}
ROLES = (Role.VERIFIER, Role.REQUESTER)


def _operator(request: web.Request) -> None:
    """Who at the client made the change, when its system says (recorded, not required:
    a subscription is a system's, not a case's)."""
    if "X-Operator" in request.headers:
        operator = parse_operator(request.headers.get("X-Operator"))
        request[AUDIT_NOTE].detail["operator"] = operator


def _path_id(request: web.Request) -> str:
    subscription_id = request.match_info["id"][:64]
    request[AUDIT_NOTE].detail["subscription"] = subscription_id
    return subscription_id


async def post_subscription(request: web.Request) -> web.Response:
    client = await request.app[AUTH].require(request, *ROLES)
    _operator(request)
    body = parse_subscription(decode_json(await read_body(request, MAX_SUBSCRIPTION_BODY)))
    note = request[AUDIT_NOTE]
    note.purpose = body.purpose
    desk = request.app[SUBSCRIPTIONS]
    made = await desk.prepare(client, body)
    # The host only: a URL's path or query may carry a token of the receiver's.
    note.detail.update(
        subscription=made.subscription_id,
        events=[e.value for e in made.events],
        host=urlsplit(made.url).hostname,
    )
    if made.codes:
        # a record per code subscribed to, as for checks
        note.codes = [format_code(c) for c in made.codes]
    await write_ahead(request, note.codes or [])
    view = await desk.add(made)
    headers = {"Location": f"/v1/subscriptions/{made.subscription_id}", **NO_STORE}
    return json_response(view, status=201, headers=headers)


async def get_subscriptions(request: web.Request) -> web.Response:
    client = await request.app[AUTH].require(request, *ROLES)
    items = await request.app[SUBSCRIPTIONS].listing(client)
    return json_response({"items": items}, headers=NO_STORE)


async def get_subscription(request: web.Request) -> web.Response:
    client = await request.app[AUTH].require(request, *ROLES)
    view = await request.app[SUBSCRIPTIONS].read(client, _path_id(request))
    return json_response(view, headers=NO_STORE)


async def delete_subscription(request: web.Request) -> web.Response:
    client = await request.app[AUTH].require(request, *ROLES)
    _operator(request)
    subscription_id = _path_id(request)
    desk = request.app[SUBSCRIPTIONS]
    await desk.read(client, subscription_id)  # another's or none: 404, and no intent
    await write_ahead(request, [])
    await desk.delete(client, subscription_id)
    return web.Response(status=204, headers=NO_STORE)


async def get_deliveries(request: web.Request) -> web.Response:
    client = await request.app[AUTH].require(request, *ROLES)
    limit = parse_limit(request.query.get("limit"))
    items = await request.app[SUBSCRIPTIONS].deliveries(client, _path_id(request), limit)
    return json_response({"items": items}, headers=NO_STORE)
