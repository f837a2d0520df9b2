"""The aiohttp application: routes, middleware, and the components' lifetimes.

Every component is created in :func:`components` (an aiohttp cleanup context) and
reached through an :class:`aiohttp.web.AppKey`; nothing lives in module globals. The
signing process is started here, after the worker process exists, so no PKCS#11 state
is ever carried across a fork.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from sealgate.cache.feed import ChangeFeed
from sealgate.cache.local import LocalTier
from sealgate.cache.lookup import CachedLookup
from sealgate.gateway.audit import AUDIT_NOTE, AuditLog, AuditNote, AuditUnavailable
from sealgate.gateway.auth import CLIENT, Authenticator, require_purpose
from sealgate.gateway.catalog import REFRESH_SECONDS, SealCatalog
from sealgate.gateway.checking import StatusChecker
from sealgate.gateway.home import Settings
from sealgate.gateway.metrics import Metrics
from sealgate.gateway.openapi import OPENAPI
from sealgate.gateway.problems import Problem, invalid, problem_for, unknown_code
from sealgate.gateway.requests import (
    InvalidRequest,
    decode_json,
    parse_holder_query,
    parse_idempotency_key,
    parse_purpose,
    parse_seal_body,
    parse_status_change,
)
from sealgate.gateway.sealing import (
    SealingService,
    format_code,
    proofs_json,
    request_digest,
    rfc3339,
)
from sealgate.gateway.throttle import FailedLookupLimiter, limited_lookup, limited_search
from sealgate.gateway.verifying import VerifyEndpoint
from sealgate.hsm.errors import HsmError
from sealgate.hsm.service import ProcessSigningService, SigningService
from sealgate.verify.code import CodeAuthority, is_well_formed, recordable_code
from sealgate.verify.directory import Client, Role
from sealgate.verify.holders import HolderKeys
from sealgate.verify.registry import (
    ProofStatus,
    Registry,
    RegistryError,
    Status,
    StatusChange,
    StatusChangeRequest,
)

log = logging.getLogger("sealgate.gateway")

MAX_BODY = 4 * 1024 * 1024  # a full batch of 1,000 proofs fits; more is refused with 413
# Longest a client may take to send a body (a few MB over a slow line takes seconds).
BODY_SECONDS = 30.0
MAX_DOCUMENT = 1024 * 1024
MAX_STATUS_BODY = 16 * 1024

REQUEST_ID = web.RequestKey("request_id", str)
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
SETTINGS = web.AppKey("settings", Settings)
REGISTRY = web.AppKey("registry", Registry)
CATALOG = web.AppKey("catalog", SealCatalog)
SIGNING = web.AppKey("signing", SigningService)
SIGNING_OVERRIDE = web.AppKey("signing_override", SigningService)
SEALING = web.AppKey("sealing", SealingService)
CHECKER = web.AppKey("checker", StatusChecker)
AUTH = web.AppKey("auth", Authenticator)
LOOKUP = web.AppKey("lookup", CachedLookup)
AUDIT = web.AppKey("audit", AuditLog)
HOLDER_KEYS = web.AppKey("holder_keys", HolderKeys)
FAILED_LOOKUPS = web.AppKey("failed_lookups", FailedLookupLimiter)
METRICS = web.AppKey("metrics", Metrics)
VERIFY = web.AppKey("verify", VerifyEndpoint)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(body, ensure_ascii=False).encode(),
        content_type="application/json",
        headers=headers,
    )


class RequestIds:
    """Request ids: a random prefix per process and a counter (unique, and cheap)."""

    def __init__(self) -> None:
        self._prefix = uuid.uuid4().hex[:12]
        self._count = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}{next(self._count):08x}"


REQUEST_IDS = web.AppKey("request_ids", RequestIds)
ROUTE_ACTIONS = web.AppKey("route_actions", dict)

# The requests that leave an audit record, by route: every sealing, status change,
# verification and document download (HEAD included: it answers 200 or 404 too).
AUDITED = {
    ("POST", "/v1/certificates"): "seal",
    ("GET", "/v1/verify/{code}"): "verify",
    ("POST", "/v1/verify/document"): "verify-document",
    ("GET", "/v1/certificates/{code}/document"): "document",
    ("POST", "/v1/certificates/{code}/status"): "status",
    ("GET", "/v1/certificates/{code}/status"): "status-history",
    ("GET", "/v1/proofs"): "proofs",
}
# Changes refused up front while the trail cannot be written, so nothing is done unaudited.
_CHANGES = frozenset({"seal", "status"})


def audit_unavailable(request_id: str) -> web.Response:
    return Problem(
        503,
        "audit-unavailable",
        "The audit trail cannot be written; retry later",
        headers={"Retry-After": "5"},
    ).response(request_id)


def request_id_of(request: web.BaseRequest, ids: RequestIds) -> str:
    """The caller's ``X-Request-Id`` when it is a plain token, else a new one."""
    offered = request.headers.get("X-Request-Id")
    return offered if offered and _REQUEST_ID.fullmatch(offered) else ids.next()


NOT_GRANTED = "(not granted)"
NONE_FOUND = "(none found)"


def audit_row(
    action: str,
    client: Client,
    purpose: str | None,
    code: str | None,
    status: int,
    request_id: str,
    at: float,
    detail: dict[str, Any],
) -> list[Any]:
    """One audit record's fields, in :class:`sealgate.verify.audit.AuditEvent` order.

    A purpose is kept as given only when it is one the client is granted: anything else
    typed there (an identity number too) is recorded as :data:`NOT_GRANTED`.
    """
    return [
        action,
        client.client_id,
        client.role.value,
        (purpose if purpose in client.purposes else NOT_GRANTED) if purpose else None,
        code[:64] if code else None,
        str(status),
        request_id,
        at,
        detail,
    ]


def _problem_response(exc: Exception, request_id: str) -> web.Response:
    """The one place where an exception escaping a handler becomes an answer."""
    if isinstance(exc, Problem):
        return exc.response(request_id)
    if isinstance(exc, InvalidRequest):
        return invalid(exc.field, exc.message).response(request_id)
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return Problem(413, "body-too-large", "The request body is too large").response(request_id)
    if isinstance(exc, web.HTTPException):
        code = {404: "not-found", 405: "method-not-allowed"}.get(exc.status, "http-error")
        # RFC 9110 §15.5.6: a 405 says which methods the resource has.
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return Problem(exc.status, code, exc.reason, headers=allow).response(request_id)
    mapped = problem_for(exc)
    if mapped is None:
        log.error("unhandled error (request %s)", request_id, exc_info=exc)
        mapped = Problem(500, "internal-error", "Internal error")
    elif mapped.status >= 500:
        log.warning("%s (request %s): %s", mapped.code, request_id, type(exc).__name__)
    return mapped.response(request_id)


def _audit_rows(
    action: str,
    client: Client,
    request: web.Request,
    note: AuditNote,
    request_id: str,
    status: int,
) -> list[list[Any]]:
    """The request's audit records: one per code it concerned."""
    purpose = note.purpose
    if purpose is None and request.query_string:
        purpose = request.query.get("purpose")
    if note.codes is not None:
        codes: Sequence[str | None] = note.codes
    else:  # the path's, as the client typed it
        typed = request.match_info.get("code")
        codes = [None if typed is None else recordable_code(typed)]
    at = time.time()
    return [
        audit_row(action, client, purpose, code, status, request_id, at, note.detail)
        for code in codes or [None]
    ]


@web.middleware
async def gateway_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request id, errors as problem+json, the audit record, metrics: for every request.

    The audit record is written before the answer leaves; if that fails the answer is a
    503 instead (fail closed), and while the trail cannot be written, changes are refused
    before anything is done.
    """
    app = request.app
    request_id = request_id_of(request, app[REQUEST_IDS])
    request[REQUEST_ID] = request_id
    started = time.perf_counter()
    route = request.match_info.route
    action: str | None = app[ROUTE_ACTIONS].get(route)
    audit = app[AUDIT] if action is not None else None
    note = AuditNote()
    request[AUDIT_NOTE] = note
    response: web.StreamResponse
    if audit is not None and action in _CHANGES and not audit.healthy:
        response = audit_unavailable(request_id)
    else:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = _problem_response(exc, request_id)
        except Exception as exc:
            response = _problem_response(exc, request_id)
        # unauthenticated: refused before anything took place, nothing to record
        client = request.get(CLIENT) if audit is not None else None
        if audit is not None and action is not None and client is not None:
            try:
                await audit.record_rows(
                    _audit_rows(action, client, request, note, request_id, response.status)
                )
            except AuditUnavailable:
                response = audit_unavailable(request_id)
    response.headers["X-Request-Id"] = request_id
    resource = route.resource
    app[METRICS].observe(
        resource.canonical if resource is not None else "unmatched",
        request.method,
        response.status,
        time.perf_counter() - started,
    )
    return response


async def read_body(request: web.Request, limit: int = MAX_BODY) -> bytes:
    """The body, refused with 413 as soon as it passes ``limit`` (chunked bodies too),
    and with 408 if it has not all come within :data:`BODY_SECONDS`."""
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    body = bytearray()
    try:
        async with asyncio.timeout(BODY_SECONDS):
            async for chunk in request.content.iter_chunked(64 * 1024):
                body += chunk
                if len(body) > limit:
                    raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(body))
    except TimeoutError:
        # A body dribbled in, or announced and never sent, must not hold the connection
        # and the handler for ever.
        raise Problem(408, "body-timeout", "The request body did not arrive in time") from None
    except (ConnectionResetError, HttpProcessingError) as exc:
        # The client went away mid-body, or sent less than it announced: its doing, a
        # 4xx in the metrics and the audit trail, not a 500 with a traceback.
        raise Problem(400, "incomplete-body", "The request body did not arrive whole") from exc
    return bytes(body)


async def post_certificates(request: web.Request) -> web.Response:
    client = await request.app[AUTH].require(request, Role.SIGNER)
    body = await read_body(request)
    payload = decode_json(body)
    proofs, batch = parse_seal_body(payload)
    key = parse_idempotency_key(request.headers.get("Idempotency-Key"))
    outcome = await request.app[SEALING].seal(
        client, proofs, idempotency_key=key, digest=request_digest(payload) if key else b""
    )
    codes = [format_code(p.code) for p in outcome.proofs]
    request[AUDIT_NOTE].codes = codes
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else None
    return web.Response(
        status=201,
        body=proofs_json(outcome.proofs, codes, batch=batch),
        content_type="application/json",
        headers=headers,
    )


async def get_verify(request: web.Request) -> web.Response:
    return await request.app[VERIFY].answer(request)


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
        return code, status

    code, status = await limited_lookup(request.app[FAILED_LOOKUPS], client.client_id, lookup)
    if status.unit_code != client.office:
        raise Problem(403, "not-your-office", "This proof was issued by another office")
    return code, status


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
    updated = await registry.change_status(
        StatusChangeRequest(
            code=code,
            office=client.office,
            status=target,
            reason=body.reason,
            superseded_by=superseded_by,
            client_id=client.client_id,
            at=time.time(),
        )
    )
    # Before answering: this process's copy goes now, other processes' within the feed's
    # bound (and at once when the message reaches them).
    await request.app[LOOKUP].invalidate([code], announce=True)
    view = checker.status_view(updated)
    view["history"] = _history_view(await registry.history(code))
    return json_response(view, headers={"Cache-Control": "no-store"})


async def get_status_history(request: web.Request) -> web.Response:
    """The issuing office's view: current status and every change (who, when, why)."""
    client = await request.app[AUTH].require(request, Role.ISSUER)
    checker = request.app[CHECKER]
    registry = request.app[REGISTRY]
    code, status = await _issuers_proof(request, client)
    view = checker.status_view(status)
    view["history"] = _history_view(await registry.history(code))
    return json_response(view, headers={"Cache-Control": "no-store"})


async def get_proofs(request: web.Request) -> web.Response:
    """Reuse (益阳 四(四)2): the holder's current valid proofs of a type, for a granted purpose."""
    client = await request.app[AUTH].require(request, Role.VERIFIER)
    require_purpose(client, parse_purpose(request.query.get("purpose")))
    query = parse_holder_query(request.query.get("holder_id"), request.query.get("type"))
    holder_key = request.app[HOLDER_KEYS].key(query.kind, query.holder_id)
    # The keyed hash only: the audit trail never holds an identity number. Nor the type
    # as typed (free text, an identity number too): only once it has named proofs.
    detail = request[AUDIT_NOTE].detail = {"holder": holder_key.hex(), "type": NONE_FOUND}
    checker = request.app[CHECKER]
    registry = request.app[REGISTRY]

    async def current() -> list[dict[str, Any]]:
        now = time.time()
        found = await registry.find_by_holder(holder_key, query.type)
        return [checker.status_view(p) for p in found if p.current_status(now) is Status.VALID]

    # An empty answer counts as a failed lookup, as an unknown code does: this must not
    # be a way to harvest holders by guessing identity numbers.
    items = await limited_search(request.app[FAILED_LOOKUPS], client.client_id, current)
    if items:
        detail["type"] = query.type
    return json_response({"items": items}, headers={"Cache-Control": "no-store"})


async def get_document(request: web.Request) -> web.Response:
    client = await request.app[AUTH].require(request, Role.VERIFIER, Role.ISSUER)
    if client.role is Role.VERIFIER:
        require_purpose(client, parse_purpose(request.query.get("purpose")))
    checker = request.app[CHECKER]
    code = request.match_info["code"]
    # Throttled like /v1/verify: it answers the same 404 for any code, so it must not be a
    # way around the limit.
    record = await limited_lookup(
        request.app[FAILED_LOOKUPS], client.client_id, lambda: checker.record(code)
    )
    if client.role is Role.ISSUER and record.unit_code != client.office:
        raise Problem(403, "not-your-office", "This proof was issued by another office")
    return web.Response(
        body=record.document,
        content_type="application/pkcs7-mime",
        headers={
            "Content-Disposition": f'attachment; filename="{record.code}.p7m"',
            "Cache-Control": "no-store",
        },
    )


async def post_verify_document(request: web.Request) -> web.Response:
    client = await request.app[AUTH].require(request, Role.VERIFIER)
    require_purpose(client, parse_purpose(request.query.get("purpose")))
    der = await read_body(request, MAX_DOCUMENT)
    if not der:
        raise invalid("body", "send the sealed proof as DER (application/pkcs7-mime)")
    result = await request.app[CHECKER].check_document(der)
    return json_response(result, headers={"Cache-Control": "no-store"})


async def get_trust(request: web.Request) -> web.Response:
    return web.Response(
        body=request.app[CATALOG].snapshot.trust_document,
        content_type="application/json",
        headers={"Cache-Control": "max-age=60"},
    )


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


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
    shared = request.app[LOOKUP].shared
    if shared is None:
        checks["cache"] = "in-process"
    else:
        # Redis down is not unready: verification answers from the registry meanwhile.
        checks["cache"] = "ok" if shared.available else "degraded: redis unavailable"
    refusal = request.app[AUDIT].refusal
    checks["audit"] = "ok" if refusal is None else f"refusing: {refusal}"
    # Not unready: verification and the other seals go on; operators must rotate.
    checks["seals"] = "; ".join(request.app[CATALOG].snapshot.expiry_warnings) or "ok"
    ready = checks["hsm"] == "ok" and checks["registry"] == "ok" and refusal is None
    return json_response({"ready": ready, "checks": checks}, 200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    audit = request.app[AUDIT]
    extra = (
        "# HELP sealgate_audit_records_total Audit records written by this worker.\n"
        "# TYPE sealgate_audit_records_total counter\n"
        f"sealgate_audit_records_total {audit.records_written}\n"
        "# HELP sealgate_audit_groups_total Audit writes (records go in groups) by this worker.\n"
        "# TYPE sealgate_audit_groups_total counter\n"
        f"sealgate_audit_groups_total {audit.groups_written}\n"
    )
    shared = request.app[LOOKUP].shared
    if shared is not None:
        extra += (
            "# HELP sealgate_cache_redis_available Whether this worker uses the Redis tier"
            " (0: its breaker is open, lookups go to the registry).\n"
            "# TYPE sealgate_cache_redis_available gauge\n"
            f"sealgate_cache_redis_available {int(shared.available)}\n"
            "# HELP sealgate_cache_redis_refused_writes_total Copies Redis refused to keep.\n"
            "# TYPE sealgate_cache_redis_refused_writes_total counter\n"
            f"sealgate_cache_redis_refused_writes_total {shared.refused_writes}\n"
        )
    return web.Response(
        body=request.app[METRICS].render() + extra.encode(),
        content_type="text/plain",
        charset="utf-8",
        headers={"X-Content-Type-Options": "nosniff"},
    )


async def openapi(request: web.Request) -> web.Response:
    return json_response(OPENAPI)


async def components(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    async with contextlib.AsyncExitStack() as stack:
        directory = settings.open_directory()
        stack.callback(directory.close)
        codes = CodeAuthority(settings.read_secret("code-key"), settings.region)
        holder_keys = HolderKeys(settings.read_secret("holder-key"))
        catalog = await asyncio.to_thread(SealCatalog, directory)
        signing = app.get(SIGNING_OVERRIDE) or ProcessSigningService(settings.keystore_config())
        stack.push_async_callback(signing.close)
        try:
            await signing.start()
        except HsmError as exc:
            # Verification does not need the HSM: serve it, and let sealing answer 503
            # until the signing process can start (each seal request retries it).
            log.warning(
                "signing unavailable at start (%s); sealing will answer 503", type(exc).__name__
            )
        registry = settings.open_registry()
        stack.push_async_callback(registry.close)
        shared = None
        if settings.redis_url:
            from sealgate.cache.redis_tier import redis_tier_for

            # One server (redis://) or a Redis Cluster (redis+cluster://), same interface.
            shared = redis_tier_for(settings.redis_url)
            await shared.start()
            stack.push_async_callback(shared.close)
        audit = AuditLog(settings.audit_path, head_path=settings.audit_head_path, signing=signing)
        await audit.start()
        stack.push_async_callback(audit.close)
        lookup = CachedLookup(registry, LocalTier(), shared)
        feed = ChangeFeed(registry, lookup)
        await feed.start()

        app[REGISTRY] = registry
        app[CATALOG] = catalog
        app[SIGNING] = signing
        app[AUTH] = Authenticator(directory)
        app[LOOKUP] = lookup
        app[AUDIT] = audit
        app[HOLDER_KEYS] = holder_keys
        app[SEALING] = SealingService(
            registry=registry,
            catalog=catalog,
            signing=signing,
            codes=codes,
            holder_keys=holder_keys,
        )
        checker = StatusChecker(codes=codes, lookup=lookup, registry=registry, catalog=catalog)
        app[CHECKER] = checker
        app[VERIFY] = VerifyEndpoint(auth=app[AUTH], checker=checker, limiter=app[FAILED_LOOKUPS])

        async def refresh_catalog() -> None:
            while True:
                await asyncio.sleep(REFRESH_SECONDS)
                try:
                    await asyncio.to_thread(catalog.refresh)
                except Exception:
                    log.exception("seal catalog refresh failed; keeping the previous one")

        def on_message(code: str) -> None:
            if code == "*":  # the listener reconnected: messages may have been lost
                lookup.forget_everything()
            elif is_well_formed(code):  # whatever else arrives is ignored
                lookup.forget([code])

        tasks = [
            asyncio.create_task(refresh_catalog(), name="catalog-refresh"),
            asyncio.create_task(feed.run(), name="change-feed"),
            asyncio.create_task(audit.run(), name="audit-duties"),
        ]
        if shared is not None:
            tasks.append(asyncio.create_task(shared.listen(on_message), name="cache-listener"))
        try:
            yield
        finally:
            await _cancel_all(tasks)


async def _cancel_all(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel the background tasks and wait for them, cancelling again any that went on:
    a cancellation can be swallowed deep inside (Python 3.11's ``wait_for`` drops one
    that meets a result), and a loop that survives it would hang shutdown for good."""
    pending = set(tasks)
    for _ in range(10):
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=3.0)
        if not pending:
            break
        log.error("background tasks ignored a cancellation: %s", [t.get_name() for t in pending])
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())


def create_app(settings: Settings, *, signing: SigningService | None = None) -> web.Application:
    """The gateway's application. ``signing`` replaces the signing process (the seam
    through which tests inject HSM faults); by default each worker starts its own."""
    app = web.Application(client_max_size=MAX_BODY, middlewares=[gateway_middleware])
    app[SETTINGS] = settings
    if signing is not None:
        app[SIGNING_OVERRIDE] = signing
    app[METRICS] = Metrics()
    app[FAILED_LOOKUPS] = FailedLookupLimiter()
    app.cleanup_ctx.append(components)
    app.router.add_post("/v1/certificates", post_certificates)
    # {code:.+}: anything typed, slashes included, gets the code check and its one 404.
    app.router.add_get("/v1/verify/{code:.+}", get_verify)
    app.router.add_post("/v1/verify/document", post_verify_document)
    app.router.add_get("/v1/certificates/{code}/document", get_document)
    app.router.add_post("/v1/certificates/{code}/status", post_status)
    app.router.add_get("/v1/certificates/{code}/status", get_status_history)
    app.router.add_get("/v1/proofs", get_proofs)
    app.router.add_get("/v1/trust", get_trust)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi)
    app[REQUEST_IDS] = RequestIds()
    app[ROUTE_ACTIONS] = {
        route: AUDITED[key]
        for route in app.router.routes()
        if route.resource is not None
        and (key := ("GET" if route.method == "HEAD" else route.method, route.resource.canonical))
        in AUDITED
    }
    return app
