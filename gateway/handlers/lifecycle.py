"""An issuing office's proofs over their life: a status change, and the history of them.

An issuer's lookup of another office's code is refused (403) and counted as a failed
lookup, as an unknown code is: otherwise an issuer could enumerate the whole city's codes
by telling 403 from 404 without limit."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sealgate.gateway.audit import AUDIT_NOTE
from sealgate.gateway.handlers.common import json_response, read_body
from sealgate.gateway.instants import rfc3339
from sealgate.gateway.keys import AUTH, CHECKER, CLOCK, FAILED_LOOKUPS, LOOKUP, REGISTRY
from sealgate.gateway.language import asks_chinese
from sealgate.gateway.middleware import write_ahead
from sealgate.gateway.problems import Problem, invalid, not_your_office, unknown_code
from sealgate.gateway.request_parsing import parse_operator
from sealgate.gateway.requests import decode_json, parse_status_change
from sealgate.gateway.sealing import format_code
from sealgate.gateway.throttle import limited_lookup
from sealgate.verify.directory import Client, Role
from sealgate.verify.registry import ProofStatus, Status, StatusChange, StatusChangeRequest

MAX_STATUS_BODY = 16 * 1024


def _history_view(changes: list[StatusChange]) -> list[dict[str, Any]]:
    return [
        {
            "from": c.from_status.value,
            "to": c.to_status.value,
            "reason": c.reason,
            "superseded_by": format_code(c.superseded_by) if c.superseded_by else None,
            "by": c.client_id,
            "at": rfc3339(c.changed_at),
        }
        for c in changes
    ]


async def _issuers_proof(request: web.Request, client: Client) -> tuple[str, ProofStatus]:
    """The proof an issuer's path names. An unknown code is a failed lookup, as on the
    verify routes (throttled, answered at the floor); another office's is refused."""
    checker = request.app[CHECKER]
    registry = request.app[REGISTRY]

    async def lookup() -> tuple[str, ProofStatus]:
        code = checker.code(request.match_info["code"])
        status = await registry.get_status(code)
        if status is None:
            raise unknown_code()
        if status.owner != client.office:  # a failed lookup too: it tells existence
            raise not_your_office()
        return code, status

    return await limited_lookup(
        request.app[FAILED_LOOKUPS], client.client_id, lookup, limit=client.lookup_limit
    )


async def post_status(request: web.Request) -> web.Response:
    """An issuing office changes its proof's status; 200 once durable and invalidated."""
    client = await request.app[AUTH].require(request, Role.ISSUER)
    checker = request.app[CHECKER]
    code, _ = await _issuers_proof(request, client)
    body = parse_status_change(decode_json(await read_body(request, MAX_STATUS_BODY)))
    try:
        target = Status(body.status)
    except ValueError:
        raise invalid("status", f"unknown status {body.status!r}") from None
    superseded_by = None
    if body.superseded_by is not None:
        try:
            superseded_by = checker.code(body.superseded_by)
        except Problem:
            raise invalid("superseded_by", "is not a registered verification code") from None
    if client.office is None:  # pragma: no cover - provisioning refuses such issuers
        raise Problem(403, "not-your-office", "This issuer belongs to no office")
    registry = request.app[REGISTRY]
    request[AUDIT_NOTE].detail = {"status": target.value}
    if (operator := request.headers.get("X-Operator")) is not None:
        # the acting staff member (宁波 第十七条), recorded with the change
        request[AUDIT_NOTE].detail["operator"] = parse_operator(operator)
    await write_ahead(request)  # journaled before the change, or it is not made
    updated = await registry.change_status(
        StatusChangeRequest(
            code=code,
            office=client.office,
            status=target,
            reason=body.reason,
            superseded_by=superseded_by,
            client_id=client.client_id,
            at=request.app[CLOCK](),
        )
    )
    # Before answering: this process's copy goes now, other processes' within the feed's
    # bound (and at once when the message reaches them).
    await request.app[LOOKUP].invalidate([code], announce=True)
    view = checker.status_view(updated, chinese=asks_chinese(request))
    view["history"] = _history_view(await registry.history(code))
    return json_response(view, headers={"Cache-Control": "no-store"})


async def get_status_history(request: web.Request) -> web.Response:
    """The issuing office's view: current status and every change (who, when, why)."""
    client = await request.app[AUTH].require(request, Role.ISSUER)
    checker = request.app[CHECKER]
    registry = request.app[REGISTRY]
    code, status = await _issuers_proof(request, client)
    view = checker.status_view(status, chinese=asks_chinese(request))
    view["history"] = _history_view(await registry.history(code))
    return json_response(view, headers={"Cache-Control": "no-store"})
