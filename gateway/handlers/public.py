"""The routes anyone may call: the trust document, liveness, readiness, metrics and the
OpenAPI description.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from sealgate.errors import Error
from sealgate.gateway.bounded import breakers_check
from sealgate.gateway.handlers.common import json_response
from sealgate.gateway.keys import AUDIT, CATALOG, LOOKUP, METRICS, OVERDUE, REGISTRY, SIGNING
from sealgate.gateway.openapi import OPENAPI
from sealgate.gateway.problems import Problem
from sealgate.hsm.errors import HsmError
from sealgate.verify.registry import RegistryError

log = logging.getLogger("sealgate.gateway")


async def get_trust(request: web.Request) -> web.Response:
    """The root-signed trust document (sealgate.crypto.trust_document), as published."""
    document = request.app[CATALOG].snapshot.trust_document
    if document is None:
        # Only the root may sign it, and no gateway holds the root: the operator must.
        raise Problem(
            503,
            "trust-document-unpublished",
            "No trust document is published yet",
            "an operator with the root's credentials runs 'sealgate trust publish'",
        )
    return web.Response(
        body=document,
        content_type="application/json",
        headers={"Cache-Control": "max-age=60"},
    )


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


def audit_check(request: web.Request) -> str:
    """``ok``, or why audited requests are refused now or would be (a journal that
    failed a write stays failing until a probe writes again; a disk without room)."""
    refusal = request.app[AUDIT].readiness()
    return "ok" if refusal is None else f"refusing: {refusal}"


async def readyz(request: web.Request) -> web.Response:
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(5):
            await request.app[SIGNING].check()
        checks["hsm"] = "ok"
    except (HsmError, TimeoutError) as exc:
        checks["hsm"] = f"unavailable: {type(exc).__name__}"
    try:
        async with asyncio.timeout(5):
            await request.app[REGISTRY].ping()
        checks["registry"] = "ok"
    except (RegistryError, TimeoutError) as exc:
        checks["registry"] = f"unavailable: {type(exc).__name__}"
    checks["registry"] = registry_integrity(request.app, checks["registry"])
    shared = request.app[LOOKUP].shared
    if shared is None:
        checks["cache"] = "in-process"
    else:
        # Redis down is not unready: verification answers from the registry meanwhile.
        checks["cache"] = "ok" if shared.available else "degraded: redis unavailable"
    checks["audit"] = audit_check(request)
    # Not unready: verification and the other seals go on; operators must rotate.
    checks["seals"] = "; ".join(request.app[CATALOG].snapshot.expiry_warnings) or "ok"
    checks["breakers"] = breakers_check(request.app)
    checks["checkpoints"] = checkpoint_signing(request.app)
    ready = checks["hsm"] == "ok" and checks["registry"] == "ok" and checks["audit"] == "ok"
    ready = ready and checks["checkpoints"] == "ok"
    return json_response({"ready": ready, "checks": checks}, 200 if ready else 503)


def registry_integrity(app: web.Application, reachable: str) -> str:
    """The registry's check: a store whose engine found its data damaged is "corrupted",
    whether or not it still answers, for no wait mends it (see sealgate.verify.integrity)."""
    corruption = app[REGISTRY].corruption
    if corruption is None:
        return reachable
    return f"corrupted: {corruption}; restore it from a backup"


def checkpoint_signing(app: web.Application) -> str:
    """``ok`` while the audit trail's checkpoints are signed in time; else how long records
    have waited for one (sealgate.gateway.audit.unsigned_limit)."""
    tail = app[AUDIT].unsigned_tail
    return "ok" if tail is None else f"unsigned: {tail}"


async def metrics(request: web.Request) -> web.Response:
    if (watch := request.app.get(OVERDUE)) is not None:
        try:
            await watch.count()  # the overdue requests as of this scrape
        except Error as exc:  # the registry away: the last count stands
            log.warning("overdue requests not counted (%s)", type(exc).__name__)
    return web.Response(
        body=request.app[METRICS].render(),
        content_type="text/plain",
        charset="utf-8",
        headers={"X-Content-Type-Options": "nosniff"},
    )


async def openapi(request: web.Request) -> web.Response:
    return json_response(OPENAPI)
