"""Prometheus metrics of the gateway, through prometheus_client.

What ``/metrics`` shows (names and types as they were when it was written by hand):

- ``sealgate_requests_total`` counter, by ``route``, ``method``, ``status``;
- ``sealgate_request_seconds`` histogram, by ``route``;
- ``sealgate_audit_records_total`` and ``sealgate_audit_groups_total`` counters;
- ``sealgate_requests_overdue`` gauge: accepted verification requests past due (the
  registry's count, the same for every worker, as last counted);
- ``sealgate_problems_total`` counter, by ``code``: the refusals answered, by their
  problem code (``hsm-unavailable``, ``audit-unavailable``, ``registry-unavailable`` …);
- ``sealgate_ready`` gauge: 1 while the worker would answer ``/readyz`` ready (evaluated
  every :data:`READINESS_SECONDS`, and at each ``/readyz``);
- ``sealgate_audit_available`` gauge: 1 while audited requests are not refused;
  ``sealgate_audit_checkpoints_signed`` gauge: 0 once records have waited too long for
  a signed checkpoint (the audit key cannot sign);
- ``sealgate_seal_certificate_end_seconds`` gauge, by ``seal``: when each seal's active
  certificate ends (Unix time), for an alert well before it does;
- ``sealgate_notice_deliveries_total`` counter, by ``outcome`` (``delivered``, ``retry``,
  ``failed``: given up): change notices' delivery attempts (docs/design.md §18);
  ``sealgate_notice_deliveries_pruned_total`` counter: settled deliveries deleted past
  the retention; ``sealgate_notice_deliveries_pending`` gauge: deliveries owed, and
  ``sealgate_notice_oldest_pending_seconds`` gauge: how long the oldest of them has been
  owed (0: none), both the registry's as the courier last read them;
- with a Redis tier only: ``sealgate_cache_redis_available`` gauge and
  ``sealgate_cache_redis_refused_writes_total`` counter.

The alert rules and the dashboard over these are in ``deploy/prometheus/`` and
``deploy/grafana/``; a test holds them to the names exported here.

With ``--workers N`` the workers share one port and a scrape reaches whichever worker the
kernel picks. prometheus_client's multiprocess mode is used then, not a registry per
worker with a ``worker`` label: every scrape, whichever worker answers it, shows the sum
over every worker of the run, the dead ones included, so a counter never goes back. A
per-worker label would leave each scrape with one worker's series only, the others
absent (stale) until the kernel happens to pick their worker again. The supervisor
(:func:`sealgate.gateway.server.serve`) creates the run's directory, names it in
:data:`MULTIPROCESS_ENV` before the workers start (prometheus_client reads it on import),
marks a worker dead when it exits, and removes the directory at the end. Redis' gauge is
then the smallest over the live workers: 1 only while every worker uses the tier.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    values,
)
from prometheus_client.multiprocess import MultiProcessCollector

from sealgate.cache.lookup import SharedTier
from sealgate.gateway.audit import AuditLog

if TYPE_CHECKING:
    from sealgate.gateway.notices import NoticeCourier

__all__ = ["BUCKETS", "MULTIPROCESS_ENV", "PUBLISH_SECONDS", "READINESS_SECONDS", "Metrics"]

# Latency buckets in seconds, from sub-millisecond cache hits to slow seal batches.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
#: Where the workers of one run keep their values (prometheus_client's multiprocess mode).
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: How often a worker publishes the counts kept by its components (the audit log, the
#: Redis tier) for the scrapes that other workers answer.
PUBLISH_SECONDS = 1.0
#: How often a worker evaluates its readiness for ``sealgate_ready``.
READINESS_SECONDS = 5.0

# The *_created series were never shown; the multiprocess mode has none either.
disable_created_metrics()  # type: ignore[no-untyped-call]

if os.environ.get(MULTIPROCESS_ENV):
    # In the multiprocess mode each increment asks os.getpid() whether the process has
    # forked since: three a request, and on the 2-core sandbox measured a request's
    # metrics took 13 µs with it, 5 µs with this. A worker is spawned, never forked, and
    # forks nothing that records metrics: its pid, read once, is the same answer. Set
    # before any metric exists, once per process (each value class opens its own files).
    _PID = os.getpid()
    values.ValueClass = values.MultiProcessValue(  # type: ignore[no-untyped-call]
        process_identifier=lambda: _PID
    )


class Metrics:
    """One worker's metrics: requests observed as they are answered, and the counts of
    its components published at each scrape and every :data:`PUBLISH_SECONDS`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._multiprocess_dir = os.environ.get(MULTIPROCESS_ENV)
        self._requests = Counter(
            "sealgate_requests",
            "HTTP requests answered, by route and status.",
            ("route", "method", "status"),
            registry=self.registry,
        )
        self._latency = Histogram(
            "sealgate_request_seconds",
            "Time to answer, by route.",
            ("route",),
            buckets=BUCKETS,
            registry=self.registry,
        )
        self._problems = Counter(
            "sealgate_problems",
            "Refusals answered, by problem code.",
            ("code",),
            registry=self.registry,
        )
        self._ready = Gauge(
            "sealgate_ready",
            "Whether the worker is ready (as /readyz answers): 1, or 0.",
            registry=self.registry,
            multiprocess_mode="livemin",
        )
        # (route, method, status) -> its counter and histogram: labels() per request
        # costs a lock and a tuple, this a dict lookup
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._publishers: list[Callable[[], None]] = []

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        series = self._series.get((route, method, status))
        if series is None:
            series = self._series[(route, method, status)] = (
                self._requests.labels(route, method, str(status)),
                self._latency.labels(route),
            )
        series[0].inc()
        series[1].observe(seconds)

    def problem(self, code: str) -> None:
        self._problems.labels(code).inc()

    def ready(self, ready: bool) -> None:
        self._ready.set(int(ready))

    def follow(
        self, audit: AuditLog, shared: SharedTier | None, seal_ends: Callable[[], dict[str, float]]
    ) -> None:
        """Publish the audit log's counts and state, when the seals' certificates end
        (``seal_ends``: seal id to Unix time), and the Redis tier's counts if there is one."""
        records = self._counter("sealgate_audit_records", "Audit records written.")
        groups = self._counter(
            "sealgate_audit_groups", "Audit writes (records go in groups) by the workers."
        )
        self._publishers.append(_follower(records, lambda: audit.records_written))
        self._publishers.append(_follower(groups, lambda: audit.groups_written))
        available = self._gauge(
            "sealgate_audit_available", "Whether audited requests are taken (0: refused)."
        )
        signed = self._gauge(
            "sealgate_audit_checkpoints_signed",
            "Whether the audit trail's checkpoints are signed in time (0: the key cannot sign).",
        )
        ends = Gauge(
            "sealgate_seal_certificate_end_seconds",
            "When each seal's active certificate ends, Unix time.",
            ("seal",),
            registry=self.registry,
            multiprocess_mode="livemin",
        )
        self._publishers.append(lambda: available.set(int(audit.readiness() is None)))
        self._publishers.append(lambda: signed.set(int(audit.unsigned_tail is None)))

        def publish_ends() -> None:
            for seal, end in seal_ends().items():
                ends.labels(seal).set(end)

        self._publishers.append(publish_ends)
        if shared is None:
            return
        redis_available = self._gauge(
            "sealgate_cache_redis_available",
            "Whether the workers use the Redis tier (0: a breaker is open, lookups go to"
            " the registry).",
        )
        refused = self._counter(
            "sealgate_cache_redis_refused_writes", "Copies Redis refused to keep."
        )
        self._publishers.append(lambda: redis_available.set(int(shared.available)))
        self._publishers.append(_follower(refused, lambda: shared.refused_writes))

    def follow_overdue(self, count: Callable[[], int]) -> None:
        """Publish the count of overdue requests (gateway/overdue.py)."""
        overdue = Gauge(
            "sealgate_requests_overdue",
            "Verification requests accepted and past their due time, not yet answered.",
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self._publishers.append(lambda: overdue.set(count()))

    def follow_notices(self, courier: NoticeCourier) -> None:
        """Publish the courier's attempts, prunes and the backlog it last read."""
        attempts = Counter(
            "sealgate_notice_deliveries",
            "Change notices' delivery attempts, by outcome: delivered, retry (tried again"
            " later) or failed (given up).",
            ("outcome",),
            registry=self.registry,
        )
        for outcome in courier.attempts:
            series = attempts.labels(outcome)  # shown from 0, for rate() and increase()
            self._publishers.append(
                _follower(series, partial(courier.attempts.__getitem__, outcome))
            )
        pruned = self._counter(
            "sealgate_notice_deliveries_pruned",
            "Settled change-notice deliveries deleted past the retention.",
        )
        self._publishers.append(_follower(pruned, lambda: courier.pruned))
        # The registry's, the same for every worker: the largest over the live ones.
        pending = Gauge(
            "sealgate_notice_deliveries_pending",
            "Change-notice deliveries owed (not yet delivered nor given up).",
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        oldest = Gauge(
            "sealgate_notice_oldest_pending_seconds",
            "How long the oldest change-notice delivery owed has been owed (0: none).",
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self._publishers.append(lambda: pending.set(courier.backlog.pending))
        self._publishers.append(lambda: oldest.set(courier.oldest_pending_age()))

    def publish(self) -> None:
        for publisher in self._publishers:
            publisher()

    async def run(self) -> None:
        """Publish every :data:`PUBLISH_SECONDS` (until cancelled): with several workers,
        the one that answers a scrape shows the others' counts as they last published."""
        while True:
            await asyncio.sleep(PUBLISH_SECONDS)
            self.publish()

    def render(self) -> bytes:
        """The text exposition: this worker's metrics, or every worker's in a run of
        several."""
        self.publish()
        if self._multiprocess_dir is None:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        MultiProcessCollector(merged, self._multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(merged)

    def _counter(self, name: str, documentation: str) -> Counter:
        return Counter(name, documentation, registry=self.registry)

    def _gauge(self, name: str, documentation: str) -> Gauge:
        # the smallest over the live workers: 1 only while every worker says so
        return Gauge(name, documentation, registry=self.registry, multiprocess_mode="livemin")


def _follower(counter: Counter, count: Callable[[], int]) -> Callable[[], None]:
    """A publisher that adds to ``counter`` what ``count`` grew by since it last ran."""
    published = 0

    def publish() -> None:
        nonlocal published
        now = count()
        if now > published:
            counter.inc(now - published)
            published = now

    return publish
