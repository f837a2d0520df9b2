"""The application's keys: how handlers and middleware reach the worker's components.

Each is set once, in :func:`sealgate.gateway.app.components` (or :func:`create_app`);
nothing lives in module globals.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from sealgate.cache.lookup import CachedLookup
from sealgate.gateway.announcements import Announcer
from sealgate.gateway.attestation import GatewayKeys
from sealgate.gateway.audit import AuditLog
from sealgate.gateway.auth import Authenticator
from sealgate.gateway.batch_checks import BatchChecker
from sealgate.gateway.bounded import BoundedDirectory
from sealgate.gateway.casework import RequestDesk
from sealgate.gateway.catalog import SealCatalog
from sealgate.gateway.checking import StatusChecker
from sealgate.gateway.consenting import ConsentService
from sealgate.gateway.holder_assertions import HolderAssertions
from sealgate.gateway.home import Settings
from sealgate.gateway.metrics import Metrics
from sealgate.gateway.notices import NoticeCourier
from sealgate.gateway.overdue import OverdueWatch
from sealgate.gateway.public_check import CheckBuckets
from sealgate.gateway.qr_codes import QrIssuer
from sealgate.gateway.sealing import SealingService
from sealgate.gateway.status_lists import StatusLists
from sealgate.gateway.subscribing import SubscriptionDesk
from sealgate.gateway.throttle import FailedLookupLimiter
from sealgate.gateway.verifying import VerifyEndpoint
from sealgate.hsm.service import SigningService
from sealgate.verify.holders import HolderKeys
from sealgate.verify.registry import Registry

SETTINGS = web.AppKey("settings", Settings)
REGISTRY = web.AppKey("registry", Registry)
CATALOG = web.AppKey("catalog", SealCatalog)
SIGNING = web.AppKey("signing", SigningService)
SIGNING_OVERRIDE = web.AppKey("signing_override", SigningService)
SEALING = web.AppKey("sealing", SealingService)
CHECKER = web.AppKey("checker", StatusChecker)
AUTH = web.AppKey("auth", Authenticator)
ANNOUNCER = web.AppKey("announcer", Announcer)
LOOKUP = web.AppKey("lookup", CachedLookup)
AUDIT = web.AppKey("audit", AuditLog)
HOLDER_KEYS = web.AppKey("holder_keys", HolderKeys)
FAILED_LOOKUPS = web.AppKey("failed_lookups", FailedLookupLimiter)
METRICS = web.AppKey("metrics", Metrics)
VERIFY = web.AppKey("verify", VerifyEndpoint)
GATEWAY_KEYS = web.AppKey("gateway_keys", GatewayKeys)
STATUS_LISTS = web.AppKey("status_lists", StatusLists)
QR_ISSUER = web.AppKey("qr_issuer", QrIssuer)
CHECK_BUCKETS = web.AppKey("check_buckets", CheckBuckets)
CONSENTS = web.AppKey("consents", ConsentService)
HOLDER_ASSERTIONS = web.AppKey("holder_assertions", HolderAssertions)
BATCH_CHECKS = web.AppKey("batch_checks", BatchChecker)
DESK = web.AppKey("desk", RequestDesk)
OVERDUE = web.AppKey("overdue", OverdueWatch)
# The directory for the admin's routes (the token reads go through AUTH).
DIRECTORY = web.AppKey("directory", BoundedDirectory)
SUBSCRIPTIONS = web.AppKey("subscriptions", SubscriptionDesk)
COURIER = web.AppKey("courier", NoticeCourier)
# "Now" for every date a handler judges (not-yet-valid, expired, a change's time): time.time
# unless a test injects a clock of its own.
CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("clock")
