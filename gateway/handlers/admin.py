"""The admin role's provisioning over HTTP: clients, their grants and limits, and seals'
suspension (docs/design.md §6.2).

Each change is the command line's own operation (:mod:`sealgate.gateway.administration`),
audited as it is there: the same action, subject and detail, the operator from the
required ``X-Operator`` header, its intent written ahead of the directory write, and a
checkpoint signed once its outcome is recorded (:mod:`sealgate.gateway.middleware`).
Nothing that needs the city root's key has a route: the root stays offline.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from sealgate.crypto.certificates import certificate_validity
from sealgate.gateway import administration
from sealgate.gateway.administration import (
    DEFAULT_LIMIT_WINDOW,
    MAX_CLIENT_NAME,
    MAX_ID,
    Change,
    Grants,
    InvalidChange,
)
from sealgate.gateway.audit import AUDIT_NOTE
from sealgate.gateway.handlers.common import json_response, read_body
from sealgate.gateway.instants import rfc3339
from sealgate.gateway.keys import ANNOUNCER, AUTH, CATALOG, DIRECTORY
from sealgate.gateway.middleware import write_ahead
from sealgate.gateway.problems import Problem
from sealgate.gateway.request_parsing import parse_operator
from sealgate.gateway.requests import InvalidRequest, decode_json
from sealgate.verify.directory import Client, NotFound, Role, Seal

MAX_ADMIN_BODY = 64 * 1024
NO_STORE = {"Cache-Control": "no-store"}


def client_view(client: Client) -> dict[str, Any]:
    """A client as the admin sees it: never its token (only its digest is stored)."""
    limit = client.lookup_limit
    return {
        "client_id": client.client_id,
        "name": client.name,
        "role": client.role.value,
        "office": client.office,
        "seals": sorted(client.seals),
        "purposes": sorted(client.purposes),
        "lookup_limit": None
        if limit is None
        else {"failed_lookups": limit.failures, "window_seconds": limit.window_seconds},
        "created_at": rfc3339(client.created_at),
    }


def seal_view(seal: Seal) -> dict[str, Any]:
    return {
        "seal_id": seal.seal_id,
        "kind": seal.kind.value,
        "scope": seal.scope.value,
        "unit_name": seal.unit_name,
        "unit_code": seal.unit_code,
        "suspended_at": None if seal.suspended_at is None else rfc3339(seal.suspended_at),
        "keys": [
            {
                "version": key.version,
                "state": key.state.value,
                "not_after": rfc3339(certificate_validity(key.certificate)[1].timestamp()),
            }
            for key in seal.keys
        ],
    }


def unknown_client() -> Problem:
    return Problem(404, "unknown-client", "No client has that id")


def unknown_seal() -> Problem:
    return Problem(404, "unknown-seal", "No seal has that id")


def refused(exc: InvalidChange) -> Problem:
    return Problem(
        422, "invalid-provisioning", "The change is not allowed", str(exc), field=exc.field
    )


async def _admin(request: web.Request) -> str:
    """The admin's own client id."""
    return (await request.app[AUTH].require(request, Role.ADMIN)).client_id


def _not_oneself(admin_id: str, client_id: str, role: Role | None = None) -> None:
    """An admin neither removes its own client nor takes its role away over HTTP: the
    city would be left without a way in but the command line on the gateway's host."""
    if client_id == admin_id and role is not Role.ADMIN:
        raise refused(
            InvalidChange(
                "role" if role is not None else "client_id",
                "an admin cannot remove its own client or its role: another admin can",
            )
        )


def _path_id(request: web.Request, name: str) -> str:
    value = request.match_info[name]
    # Not echoed in the 404 either: what was typed there may be anything.
    return value if len(value) <= MAX_ID and value.isascii() and value.isprintable() else ""


async def _body(request: web.Request, required: set[str], optional: set[str]) -> dict[str, Any]:
    body = decode_json(await read_body(request, MAX_ADMIN_BODY))
    if not isinstance(body, dict):
        raise InvalidRequest("", "must be an object")
    for key in body:
        if key not in required | optional:
            raise InvalidRequest(key, "is not a known field")
    for key in sorted(required - body.keys()):
        raise InvalidRequest(key, "is required")
    return body


def _string(body: dict[str, Any], key: str, limit: int) -> str:
    value = body[key]
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        raise InvalidRequest(key, f"must be a string of 1 to {limit} characters")
    return value


def _strings(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidRequest(key, "must be an array of strings")
    if len(value) > administration.MAX_GRANTS:
        raise InvalidRequest(key, f"at most {administration.MAX_GRANTS}")
    return value


async def _grants(request: web.Request, body: dict[str, Any]) -> Grants:
    try:
        role = Role(body["role"])
    except (ValueError, TypeError):
        raise InvalidRequest("role", f"must be one of {', '.join(r.value for r in Role)}") from None
    office = body.get("office")
    if office is not None:
        office = _string(body, "office", 64)
    seals = _strings(body, "seals")
    purposes = _strings(body, "purposes")
    try:
        return await request.app[DIRECTORY].call(
            lambda d: Grants.checked(d, role=role, seals=seals, purposes=purposes, office=office)
        )
    except InvalidChange as exc:
        raise refused(exc) from None


async def _make(request: web.Request, change: Change) -> None:
    """The change audited ahead, then made and announced to every worker (before the
    answer); the middleware records its outcome and signs."""
    request[AUDIT_NOTE].detail = change.record(parse_operator(request.headers.get("X-Operator")))
    await write_ahead(request)  # journaled before the change, or it is not made
    await request.app[DIRECTORY].call(change.write, write=True)
    await request.app[ANNOUNCER].announce(change)


async def _existing_client(request: web.Request) -> str:
    """The path's client id, refused 404 before anything is recorded if it names none."""
    client_id = _path_id(request, "client_id")
    try:
        await request.app[DIRECTORY].call(lambda d: d.client(client_id))
    except NotFound:
        raise unknown_client() from None
    return client_id


async def _changed_client(request: web.Request, change: Change) -> web.Response:
    """Made, forgotten by this process's authenticator (in force here at once), and the
    client as it now is."""
    try:
        await _make(request, change)
        client = await request.app[DIRECTORY].call(lambda d: d.client(change.subject))
    except NotFound:  # removed meanwhile
        raise unknown_client() from None
    finally:
        request.app[AUTH].forget(change.subject)
    return json_response(client_view(client), headers=NO_STORE)


async def get_clients(request: web.Request) -> web.Response:
    await _admin(request)
    clients = await request.app[DIRECTORY].call(lambda d: d.clients())
    return json_response({"items": [client_view(c) for c in clients]}, headers=NO_STORE)


async def post_client(request: web.Request) -> web.Response:
    """A new client; its token is in this answer and nowhere else (only its digest is
    stored)."""
    await _admin(request)
    parse_operator(request.headers.get("X-Operator"))  # before the body: nothing is read
    body = await _body(request, {"name", "role"}, {"seals", "purposes", "office"})
    name = _string(body, "name", MAX_CLIENT_NAME)
    grants = await _grants(request, body)
    try:
        change, client, token = administration.add_client(name, grants)
    except InvalidChange as exc:
        raise refused(exc) from None
    await _make(request, change)
    return json_response({**client_view(client), "token": token}, 201, NO_STORE)


async def delete_client(request: web.Request) -> web.Response:
    admin_id = await _admin(request)
    parse_operator(request.headers.get("X-Operator"))
    client_id = await _existing_client(request)
    _not_oneself(admin_id, client_id)
    change = administration.remove_client(client_id)
    try:
        await _make(request, change)
    except NotFound:
        raise unknown_client() from None
    finally:
        request.app[AUTH].forget(change.subject)
    return web.Response(status=204, headers=NO_STORE)


async def put_grants(request: web.Request) -> web.Response:
    admin_id = await _admin(request)
    parse_operator(request.headers.get("X-Operator"))
    client_id = await _existing_client(request)
    body = await _body(request, {"role"}, {"seals", "purposes", "office"})
    grants = await _grants(request, body)
    _not_oneself(admin_id, client_id, grants.role)
    return await _changed_client(request, administration.set_grants(client_id, grants))


async def put_limits(request: web.Request) -> web.Response:
    await _admin(request)
    parse_operator(request.headers.get("X-Operator"))
    client_id = await _existing_client(request)
    body = await _body(request, {"failed_lookups"}, {"window_seconds"})
    failures, window = body["failed_lookups"], body.get("window_seconds", DEFAULT_LIMIT_WINDOW)
    if isinstance(failures, bool) or not isinstance(failures, int):
        raise InvalidRequest("failed_lookups", "must be a whole number")
    if isinstance(window, bool) or not isinstance(window, int | float):
        raise InvalidRequest("window_seconds", "must be a number of seconds")
    try:
        limit = administration.lookup_limit(failures, float(window))
    except InvalidChange as exc:
        raise refused(exc) from None
    return await _changed_client(request, administration.set_limits(client_id, limit))


async def delete_limits(request: web.Request) -> web.Response:
    """Back to the city's default limit."""
    await _admin(request)
    parse_operator(request.headers.get("X-Operator"))
    client_id = await _existing_client(request)
    return await _changed_client(request, administration.set_limits(client_id, None))


async def get_seals(request: web.Request) -> web.Response:
    await _admin(request)
    seals = await request.app[DIRECTORY].call(lambda d: d.seals())
    return json_response({"items": [seal_view(s) for s in seals]}, headers=NO_STORE)


async def _suspension(request: web.Request, *, suspend: bool) -> web.Response:
    await _admin(request)
    parse_operator(request.headers.get("X-Operator"))
    seal_id = _path_id(request, "seal_id")
    directory = request.app[DIRECTORY]
    try:
        await directory.call(lambda d: d.seal(seal_id))
        await _make(request, administration.suspend_seal(seal_id, suspend=suspend))
        seal = await directory.call(lambda d: d.seal(seal_id))
    except NotFound:
        raise unknown_seal() from None
    # In force in this process at once (its sealings read the catalog); in the others
    # as they hear the announcement, or at their catalog's next refresh.
    catalog = request.app[CATALOG]
    catalog.snapshot = await asyncio.to_thread(catalog.load)
    return json_response(seal_view(seal), headers=NO_STORE)


async def post_suspend(request: web.Request) -> web.Response:
    return await _suspension(request, suspend=True)


async def post_resume(request: web.Request) -> web.Response:
    return await _suspension(request, suspend=False)


def add_admin_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/v1/admin/clients", get_clients)
    router.add_post("/v1/admin/clients", post_client)
    router.add_delete("/v1/admin/clients/{client_id}", delete_client)
    router.add_put("/v1/admin/clients/{client_id}/grants", put_grants)
    router.add_put("/v1/admin/clients/{client_id}/limits", put_limits)
    router.add_delete("/v1/admin/clients/{client_id}/limits", delete_limits)
    router.add_get("/v1/admin/seals", get_seals)
    router.add_post("/v1/admin/seals/{seal_id}/suspend", post_suspend)
    router.add_post("/v1/admin/seals/{seal_id}/resume", post_resume)
