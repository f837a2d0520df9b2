"""The routes anyone may call: the trust document, liveness, readiness, metrics and the
OpenAPI description.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time

from aiohttp import web

from sealgate.errors import Error
from sealgate.gateway.auth import unauthenticated
from sealgate.gateway.bounded import breakers_check
from sealgate.gateway.catalog import CRL_MAX_AGE
from sealgate.gateway.handlers.common import json_response
from sealgate.gateway.instants import rfc3339
from sealgate.gateway.keys import (
    AUDIT,
    CATALOG,
    LOOKUP,
    METRICS,
    OVERDUE,
    REGISTRY,
    SETTINGS,
    SIGNING,
)
from sealgate.gateway.metrics import READINESS_SECONDS
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


async def get_crl(request: web.Request) -> web.Response:
    """The newest CRL the city root issued (DER, RFC 5280): the seal certificates'
    CRL distribution point."""
    crl = request.app[CATALOG].snapshot.crl
    if crl is None:
        raise Problem(404, "no-crl", "No CRL has been issued (sealgate crl issue)")
    return web.Response(
        body=crl.der,
        content_type="application/pkix-crl",
        headers={
            "Cache-Control": f"public, max-age={CRL_MAX_AGE}",
            "ETag": f'"crl-{crl.number}"',
        },
    )


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


def audit_check(app: web.Application) -> str:
    """``ok``, or why audited requests are refused now or would be (a journal that
    failed a write stays failing until a probe writes again; a disk without room)."""
    refusal = app[AUDIT].readiness()
    return "ok" if refusal is None else f"refusing: {refusal}"


async def readyz(request: web.Request) -> web.Response:
    ready, checks = await readiness(request.app)
    return json_response({"ready": ready, "checks": checks}, 200 if ready else 503)


async def watch_readiness(app: web.Application) -> None:
    """``sealgate_ready`` kept current whether or not anyone asks ``/readyz``: every
    :data:`~sealgate.gateway.metrics.READINESS_SECONDS`, until cancelled."""
    while True:
        await asyncio.sleep(READINESS_SECONDS)
        try:
            await readiness(app)
        except Exception:  # the next round tries again; /readyz itself answers as ever
            log.exception("readiness for the metrics failed")


async def readiness(app: web.Application) -> tuple[bool, dict[str, str]]:
    """Whether this worker is ready, and each check's word; also published as
    ``sealgate_ready``."""
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(5):
            await app[SIGNING].check()
        checks["hsm"] = "ok"
    except (HsmError, TimeoutError) as exc:
        checks["hsm"] = f"unavailable: {type(exc).__name__}"
    try:
        async with asyncio.timeout(5):
            await app[REGISTRY].ping()
        checks["registry"] = "ok"
    except (RegistryError, TimeoutError) as exc:
        checks["registry"] = f"unavailable: {type(exc).__name__}"
    checks["registry"] = registry_integrity(app, checks["registry"])
    shared = app[LOOKUP].shared
    if shared is None:
        checks["cache"] = "in-process"
    else:
        # Redis down is not unready: verification answers from the registry meanwhile.
        checks["cache"] = "ok" if shared.available else "degraded: redis unavailable"
    checks["audit"] = audit_check(app)
    # Not unready: verification and the other seals go on; operators must rotate.
    checks["seals"] = "; ".join(app[CATALOG].snapshot.expiry_warnings) or "ok"
    checks["breakers"] = breakers_check(app)
    checks["checkpoints"] = checkpoint_signing(app)
    # Not unready: the root is offline and only its operators can issue the next CRL.
    checks["crl"] = crl_currency(app)
    ready = checks["hsm"] == "ok" and checks["registry"] == "ok" and checks["audit"] == "ok"
    ready = ready and checks["checkpoints"] == "ok"
    app[METRICS].ready(ready)
    return ready, checks


def registry_integrity(app: web.Application, reachable: str) -> str:
    """The registry's check: a store whose engine found its data damaged is "corrupted",
    whether or not it still answers, for no wait mends it (see sealgate.verify.integrity)."""
    corruption = app[REGISTRY].corruption
    if corruption is None:
        return reachable
    return f"corrupted: {corruption}; restore it from a backup"


def crl_currency(app: web.Application) -> str:
    """``ok`` while the CRL served is current and not due within a tenth of its span;
    else what the operators must do (sealgate crl issue, with the root's PIN)."""
    crl = app[CATALOG].snapshot.crl
    if crl is None:
        return "none issued: run sealgate crl issue"
    now = time.time()
    due = rfc3339(crl.next_update)
    if now >= crl.next_update:
        return f"out of date since {due}: run sealgate crl issue"
    if crl.next_update - now < (crl.next_update - crl.this_update) / 10:
        return f"due {due}: run sealgate crl issue"
    return "ok"


def checkpoint_signing(app: web.Application) -> str:
    """``ok`` while the audit trail's checkpoints are signed in time; else how long records
    have waited for one (sealgate.gateway.audit.unsigned_limit)."""
    tail = app[AUDIT].unsigned_tail
    return "ok" if tail is None else f"unsigned: {tail}"


async def metrics(request: web.Request) -> web.Response:
    token = request.app[SETTINGS].metrics_token
    if token is not None:
        # Optional (a SEALGATE_METRICS_TOKEN, or secrets/metrics-token): the figures
        # tell load and failures to anyone who can reach the port.
        offered = request.headers.getall("Authorization", ())
        expected = f"Bearer {token}".encode()
        if len(offered) != 1 or not hmac.compare_digest(offered[0].encode(), expected):
            raise unauthenticated()
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
