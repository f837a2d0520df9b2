"""The aiohttp application: routes, middleware, and the components' lifetimes.

Every component is created in :func:`components` (an aiohttp cleanup context) and
reached through an :class:`aiohttp.web.AppKey`; nothing lives in module globals. The
signing process is started here, after the worker process exists, so no PKCS#11 state
is ever carried across a fork.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from sealgate.cache.feed import ChangeFeed
from sealgate.cache.local import LocalTier
from sealgate.cache.lookup import CachedLookup
from sealgate.crypto.timestamps import timestamp_check
from sealgate.gateway.announcements import Announcer, Hints
from sealgate.gateway.attestation import GatewayKeys
from sealgate.gateway.audit import AUDIT_KEY_LABEL, AuditLog
from sealgate.gateway.auth import Authenticator
from sealgate.gateway.batch_checks import BatchChecker
from sealgate.gateway.bounded import GUARDS, BoundedDirectory, BoundedRegistry
from sealgate.gateway.casework import RequestDesk, load_calendar
from sealgate.gateway.catalog import SealCatalog
from sealgate.gateway.checking import StatusChecker
from sealgate.gateway.consenting import ConsentService
from sealgate.gateway.handlers.admin import add_admin_routes
from sealgate.gateway.handlers.check import get_check_page, get_check_script, get_public_check
from sealgate.gateway.handlers.common import MAX_BODY
from sealgate.gateway.handlers.consents import delete_consent, get_consents, post_consent
from sealgate.gateway.handlers.holders import get_my_document, get_my_proofs
from sealgate.gateway.handlers.lifecycle import get_status_history, post_status
from sealgate.gateway.handlers.public import (
    get_crl,
    get_trust,
    healthz,
    metrics,
    openapi,
    readyz,
    watch_readiness,
)
from sealgate.gateway.handlers.qr import get_qr, get_status_list, get_verify_qr
from sealgate.gateway.handlers.requests import (
    get_holder_requests,
    get_request,
    get_requests,
    post_extend,
    post_reclassify,
    post_request,
    post_respond,
    post_return,
)
from sealgate.gateway.handlers.sealing import post_certificates
from sealgate.gateway.handlers.subscriptions import (
    delete_subscription,
    get_deliveries,
    get_subscription,
    get_subscriptions,
    post_subscription,
)
from sealgate.gateway.handlers.verify import (
    get_document,
    get_proofs,
    get_verify,
    post_verify_batch,
    post_verify_document,
)
from sealgate.gateway.holder_assertions import HolderAssertions, load_platforms
from sealgate.gateway.home import HomeError, Settings
from sealgate.gateway.instants import use_offset
from sealgate.gateway.keys import (
    ANNOUNCER,
    AUDIT,
    AUTH,
    BATCH_CHECKS,
    CATALOG,
    CHECK_BUCKETS,
    CHECKER,
    CLOCK,
    CONSENTS,
    COURIER,
    DESK,
    DIRECTORY,
    FAILED_LOOKUPS,
    GATEWAY_KEYS,
    HOLDER_ASSERTIONS,
    HOLDER_KEYS,
    LOOKUP,
    METRICS,
    OVERDUE,
    QR_ISSUER,
    REGISTRY,
    SEALING,
    SETTINGS,
    SIGNING,
    SIGNING_OVERRIDE,
    STATUS_LISTS,
    SUBSCRIPTIONS,
    VERIFY,
)
from sealgate.gateway.metrics import Metrics
from sealgate.gateway.middleware import (
    AUDITED,
    REQUEST_IDS,
    ROUTE_ACTIONS,
    RequestIds,
    gateway_middleware,
)
from sealgate.gateway.notices import DAY, NoticeCourier
from sealgate.gateway.overdue import OverdueWatch
from sealgate.gateway.public_check import CheckBuckets
from sealgate.gateway.qr_codes import QrIssuer
from sealgate.gateway.sealing import SealingService
from sealgate.gateway.shared_limits import DatabaseFailures, RedisFailures
from sealgate.gateway.status_lists import StatusLists
from sealgate.gateway.subscribing import BoundedNotices, SubscriptionDesk
from sealgate.gateway.throttle import FailedLookupLimiter
from sealgate.gateway.timestamping import Timestamper
from sealgate.gateway.verifying import VerifyEndpoint
from sealgate.hsm.errors import HsmError
from sealgate.hsm.service import ProcessSigningService, SigningService
from sealgate.verify.code import CodeAuthority, is_well_formed
from sealgate.verify.holders import HolderKeys
from sealgate.verify.lookup_failures import FailureLedger

log = logging.getLogger("sealgate.gateway")
MIN_RELOAD_GAP = 0.2  # seconds between two loads of the seal catalog


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
        # Only the active seal keys and the gateway's own keys, whatever else the token holds.
        own_keys = {AUDIT_KEY_LABEL}  # the gateway's own: the audit key, then its QR keys
        signing.allow(catalog.snapshot.signing_labels | own_keys)
        try:
            await signing.start()
        except HsmError as exc:
            # Verification does not need the HSM: serve it, and let sealing answer 503
            # until the signing process can start (each seal request retries it).
            log.warning(
                "signing unavailable at start (%s); sealing will answer 503", type(exc).__name__
            )
        timestamper = None
        if settings.tsa_url is not None:
            tsa_trust = settings.tsa_trust()
            if tsa_trust is None:  # pragma: no cover - load_settings refuses this
                raise HomeError("a TSA URL is set but the home has no tsa-roots.pem")
            timestamper = Timestamper(settings.tsa_url, tsa_trust)
            await timestamper.start()
            stack.push_async_callback(timestamper.close)
        else:
            log.warning("no TSA configured (SEALGATE_TSA_URL): proofs carry no timestamp")
        # Every wait on the registry and the directory bounded, behind a breaker (§11).
        registry = BoundedRegistry(settings.open_registry(), call_bound=settings.request_deadline)
        stack.push_async_callback(registry.close)
        tokens = BoundedDirectory(directory, call_bound=settings.request_deadline)
        stack.callback(tokens.close)
        shared = None
        if settings.redis_url:
            from sealgate.cache.redis_tier import redis_tier_for

            # One server (redis://) or a Redis Cluster (redis+cluster://), same interface.
            shared = redis_tier_for(settings.redis_url)
            await shared.start()
            stack.push_async_callback(shared.close)
            # failed lookups counted once for the whole city (docs/design.md §8)
            app[FAILED_LOOKUPS].shared = RedisFailures(shared)
        elif isinstance(registry.inner, FailureLedger):
            # without Redis, in the registry's database (every backend keeps them)
            app[FAILED_LOOKUPS].shared = DatabaseFailures(
                registry.inner, call_bound=settings.request_deadline
            )
        head_sink = settings.head_sink()
        audit = AuditLog(
            settings.audit_path,
            head_path=settings.audit_head_path,
            signing=signing,
            sink=None if head_sink is None else head_sink.push_async,
        )
        await audit.start()
        stack.push_async_callback(audit.close)
        lookup = CachedLookup(
            registry, LocalTier(), shared, outage_freshness=settings.outage_freshness
        )
        feed = ChangeFeed(registry, lookup)
        await feed.start()

        app[REGISTRY] = registry
        app[CATALOG] = catalog
        app[SIGNING] = signing
        app[AUTH] = Authenticator(
            directory,
            read=tokens.client_by_token,
            outage_freshness=settings.outage_freshness,
            lifetime=settings.token_cache,
        )
        app[ANNOUNCER] = Announcer(shared)
        app[GUARDS] = (registry.guard, tokens.guard)
        app[DIRECTORY] = tokens
        app[LOOKUP] = lookup
        app[AUDIT] = audit
        app[METRICS].follow(audit, shared, lambda: catalog.snapshot.certificate_ends)
        app[HOLDER_KEYS] = holder_keys
        sealing = app[SEALING] = SealingService(
            registry=registry,
            catalog=catalog,
            signing=signing,
            codes=codes,
            holder_keys=holder_keys,
            clock=app[CLOCK],
            archival_issuance=settings.archival_issuance,
            timestamper=timestamper,
            seal_untimestamped=settings.seal_untimestamped,
        )
        desk = app[DESK] = RequestDesk(
            book=registry,
            catalog=catalog,
            sealing=sealing,
            holder_keys=holder_keys,
            calendar=await asyncio.to_thread(load_calendar, directory),
            office_hours=settings.office_hours,
            clock=app[CLOCK],
        )
        watch = app[OVERDUE] = OverdueWatch(
            registry,
            app[CLOCK],
            webhook=settings.overdue_webhook,
            key=settings.read_secret("webhook-key") if settings.overdue_webhook else b"",
        )
        stack.push_async_callback(watch.close)
        app[METRICS].follow_overdue(lambda: watch.overdue)
        checker = StatusChecker(
            codes=codes,
            lookup=lookup,
            registry=registry,
            catalog=catalog,
            clock=app[CLOCK],
        )
        if (tsa_roots := settings.tsa_trust()) is not None:
            # A presented proof's timestamp is checked, and the proof judged at its time.
            checker.timestamp = timestamp_check(tsa_roots)
        app[CHECKER] = checker
        app[VERIFY] = VerifyEndpoint(
            auth=app[AUTH], checker=checker, limiter=app[FAILED_LOOKUPS], clock=app[CLOCK]
        )
        app[BATCH_CHECKS] = BatchChecker(
            checker=checker,
            registry=registry,
            holder_keys=holder_keys,
            limiter=app[FAILED_LOOKUPS],
            clock=app[CLOCK],
        )
        webhook_key = settings.read_secret("webhook-key")
        app[SUBSCRIPTIONS] = SubscriptionDesk(
            book=BoundedNotices(registry),
            checker=checker,
            limiter=app[FAILED_LOOKUPS],
            rules=settings.notice_targets,
            key=webhook_key,
            clock=app[CLOCK],
        )
        courier = app[COURIER] = NoticeCourier(
            BoundedNotices(registry),
            key=webhook_key,
            rules=settings.notice_targets,
            clock=app[CLOCK],
            retention=settings.notice_retention_days * DAY,
        )
        stack.push_async_callback(courier.close)
        app[METRICS].follow_notices(courier)
        keys = GatewayKeys.load(settings.home)
        app[GATEWAY_KEYS] = keys
        own_keys |= set(keys.labels.values())
        signing.allow(catalog.snapshot.signing_labels | own_keys)
        lists = StatusLists(
            registry=registry,
            signing=signing,
            keys=keys,
            bound=settings.status_list_bound,
            public_url=settings.public_url,
            clock=app[CLOCK],
        )
        app[STATUS_LISTS] = lists
        app[CONSENTS] = ConsentService(
            registry=registry,
            signing=signing,
            keys=keys,
            holder_keys=holder_keys,
            clock=app[CLOCK],
        )
        app[HOLDER_ASSERTIONS] = HolderAssertions(
            load_platforms(settings.home), holder_keys, app[CLOCK], shared
        )
        app[QR_ISSUER] = QrIssuer(
            registry=registry,
            catalog=catalog,
            signing=signing,
            keys=keys,
            lists=lists,
            region=settings.region,
            lifetime=settings.qr_lifetime,
            clock=app[CLOCK],
        )

        reload_now = asyncio.Event()  # set by an announcement heard (§6.2)
        named_at: dict[str, float] = {}  # key label → when a catalog in use last named it

        async def refresh_catalog() -> None:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(reload_now.wait(), settings.catalog_refresh)
                reload_now.clear()  # what is heard from now on asks for another load
                try:
                    fresh = await asyncio.to_thread(catalog.load)
                    # New keys are allowed before any sealing can pick them; a key the
                    # catalog no longer names stays allowed a refresh's span more, for
                    # the sealings already prepared with it (then refused: ≤ 10 s by
                    # default), however many announcements wake the loads meanwhile.
                    now = time.monotonic()
                    named_at.update(dict.fromkeys(catalog.snapshot.signing_labels, now))
                    for label, at in list(named_at.items()):
                        if now - at > settings.catalog_refresh:
                            del named_at[label]
                    signing.allow(named_at.keys() | fresh.signing_labels | own_keys)
                    catalog.snapshot = fresh
                    # `sealgate calendar load` beside serving gateways: in force as soon
                    desk.calendar = await asyncio.to_thread(load_calendar, directory)
                except Exception:
                    log.exception("seal catalog refresh failed; keeping the previous one")
                # A flood of announcements costs at most a few directory reads a second.
                await asyncio.sleep(MIN_RELOAD_GAP)

        def on_message(code: str) -> None:
            if code == "*":  # the listener reconnected: messages may have been lost
                lookup.forget_everything()
            elif is_well_formed(code):  # whatever else arrives is ignored
                lookup.forget([code])

        tasks = [
            asyncio.create_task(refresh_catalog(), name="catalog-refresh"),
            asyncio.create_task(feed.run(), name="change-feed"),
            asyncio.create_task(audit.run(), name="audit-duties"),
            asyncio.create_task(app[METRICS].run(), name="metrics-publisher"),
            asyncio.create_task(watch.run(), name="overdue-watch"),
            asyncio.create_task(courier.run(), name="change-notices"),
            asyncio.create_task(lists.run(), name="status-lists"),
            asyncio.create_task(watch_readiness(app), name="readiness"),
        ]
        if shared is not None:
            hints = Hints(app[AUTH], reload_now.set)
            listener = shared.listen(on_message, hints)
            tasks.append(asyncio.create_task(listener, name="cache-listener"))
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


def create_app(
    settings: Settings,
    *,
    signing: SigningService | None = None,
    clock: Callable[[], float] = time.time,
) -> web.Application:
    """The gateway's application. ``signing`` replaces the signing process (the seam
    through which tests inject HSM faults); by default each worker starts its own.
    ``clock`` is "now" for the proofs' dates (the seam through which tests reach a
    proof's first day without waiting for it)."""
    app = web.Application(client_max_size=MAX_BODY, middlewares=[gateway_middleware])
    app[SETTINGS] = settings
    use_offset(settings.answer_offset)  # the city's, for every instant answered
    app[CLOCK] = clock
    if signing is not None:
        app[SIGNING_OVERRIDE] = signing
    app[METRICS] = Metrics()
    limits = settings.failed_lookups
    app[FAILED_LOOKUPS] = FailedLookupLimiter(
        per_client=limits.per_client.failures,
        drain_per_second=limits.per_client.drain_per_second,
        typo_weight=limits.typo_weight,
        global_burst=limits.global_burst,
        global_per_second=limits.global_per_second,
    )
    app[CHECK_BUCKETS] = CheckBuckets(settings.check_per_minute)
    app.cleanup_ctx.append(components)
    app.router.add_post("/v1/certificates", post_certificates)
    # Before /v1/verify/{code:.+}, which would take it for a code.
    app.router.add_get("/v1/verify/qr/{payload:.+}", get_verify_qr)
    # {code:.+}: anything typed, slashes included, gets the code check and its one 404.
    app.router.add_get("/v1/verify/{code:.+}", get_verify)
    app.router.add_post("/v1/verify/document", post_verify_document)
    app.router.add_post("/v1/verify/batch", post_verify_batch)
    app.router.add_get("/v1/certificates/{code}/document", get_document)
    app.router.add_post("/v1/certificates/{code}/status", post_status)
    app.router.add_get("/v1/certificates/{code}/status", get_status_history)
    app.router.add_get("/v1/proofs", get_proofs)
    app.router.add_get("/v1/certificates/{code}/qr", get_qr)
    app.router.add_get("/v1/status-lists/{list_id}", get_status_list)
    app.router.add_post("/v1/consents", post_consent)
    app.router.add_get("/v1/consents", get_consents)
    app.router.add_delete("/v1/consents/{consent_id}", delete_consent)
    app.router.add_get("/v1/holders/me/proofs", get_my_proofs)
    app.router.add_get("/v1/holders/me/proofs/{code}/document", get_my_document)
    app.router.add_get("/check", get_check_page)
    app.router.add_get("/check/check.js", get_check_script)
    app.router.add_get("/v1/public/check", get_public_check)
    app.router.add_get("/v1/trust", get_trust)
    app.router.add_get("/v1/crl", get_crl)
    app.router.add_post("/v1/requests", post_request)
    app.router.add_get("/v1/requests", get_requests)
    app.router.add_get("/v1/requests/{id}", get_request)
    app.router.add_post("/v1/requests/{id}/respond", post_respond)
    app.router.add_post("/v1/requests/{id}/reclassify", post_reclassify)
    app.router.add_post("/v1/requests/{id}/extend", post_extend)
    app.router.add_post("/v1/requests/{id}/return", post_return)
    app.router.add_get("/v1/holder-requests", get_holder_requests)
    app.router.add_post("/v1/subscriptions", post_subscription)
    app.router.add_get("/v1/subscriptions", get_subscriptions)
    app.router.add_get("/v1/subscriptions/{id}", get_subscription)
    app.router.add_delete("/v1/subscriptions/{id}", delete_subscription)
    app.router.add_get("/v1/subscriptions/{id}/deliveries", get_deliveries)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi)
    add_admin_routes(app.router)
    app[REQUEST_IDS] = RequestIds()
    app[ROUTE_ACTIONS] = {
        route: AUDITED[key]
        for route in app.router.routes()
        if route.resource is not None
        and (key := ("GET" if route.method == "HEAD" else route.method, route.resource.canonical))
        in AUDITED
    }
    return app
