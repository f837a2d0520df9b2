"""/metrics through prometheus_client: the names and types it always had, and, with
several workers on one port, counters that never go back whichever worker answers."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from sealgate.gateway.app import create_app
from sealgate.gateway.config_file import load_settings
from sealgate.verify.directory import Role
from tests.gateway.conftest import Demo, proof_request
from tests.gateway.scraped import Samples, samples, types, value
from tests.gateway.serving import free_port, serving
from tests.gateway.test_processes import children, started_workers

# What /metrics showed before prometheus_client wrote it (the Redis pair needs a Redis).
FAMILIES = {
    "sealgate_requests": "counter",
    "sealgate_request_seconds": "histogram",
    "sealgate_audit_records": "counter",
    "sealgate_audit_groups": "counter",
    "sealgate_requests_overdue": "gauge",  # verification requests past due (§12)
    # issue 28's, for the alert rules (deploy/prometheus/)
    "sealgate_problems": "counter",
    "sealgate_ready": "gauge",
    "sealgate_audit_available": "gauge",
    "sealgate_audit_checkpoints_signed": "gauge",
    "sealgate_seal_certificate_end_seconds": "gauge",
    # change notices (§18)
    "sealgate_notice_deliveries": "counter",
    "sealgate_notice_deliveries_pruned": "counter",
    "sealgate_notice_deliveries_pending": "gauge",
    "sealgate_notice_oldest_pending_seconds": "gauge",
}


async def test_the_metrics_keep_their_names_and_types(
    api: TestClient[Any, Any], demo: Demo
) -> None:
    signer = demo.auth(Role.SIGNER)
    sealed = await api.post("/v1/certificates", json=proof_request(demo.proof_seal), headers=signer)
    assert sealed.status == 201
    code = (await sealed.json())["code"]
    verifier = demo.auth(Role.VERIFIER)
    for _ in range(3):
        assert (await api.get(f"/v1/verify/{code}?purpose=demo", headers=verifier)).status == 200
    response = await api.get("/metrics")
    assert response.content_type == "text/plain"
    text = await response.text()
    assert types(text) == FAMILIES  # and no Redis pair: this gateway has no Redis tier
    verify = {"route": "/v1/verify/{code}", "method": "GET", "status": "200"}
    assert value(text, "sealgate_requests_total", **verify) == 3
    assert value(text, "sealgate_request_seconds_count", route="/v1/verify/{code}") == 3
    assert value(text, "sealgate_request_seconds_bucket", route="/v1/verify/{code}", le="+Inf") == 3
    # a record for the seal and each verification, journaled before each answer left
    records = value(text, "sealgate_audit_records_total")
    assert records is not None and records >= 4
    groups = value(text, "sealgate_audit_groups_total")
    assert groups is not None and 1 <= groups <= records


def _went_back(before: Samples, after: Samples) -> list[str]:
    """The counters (and histogram counts) that are lower in ``after`` than in ``before``."""
    return [
        f"{name}{dict(labels)}: {before[(name, labels)]} -> {after.get((name, labels))}"
        for name, labels in before
        if name.endswith(("_total", "_count", "_bucket"))
        and after.get((name, labels), -1.0) < before[(name, labels)]
    ]


@pytest.mark.slow
async def test_with_two_workers_no_scrape_shows_a_counter_going_back(demo: Demo) -> None:
    """Every scrape on a fresh connection, so the kernel spreads them over the workers;
    one worker killed midway. Each scrape shows every worker's requests (the dead one's
    too), so it counts at least all the requests answered before it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    healthz = {"route": "/healthz", "method": "GET", "status": "200"}
    answered = 0
    previous: Samples = {}
    scraped_by: set[str] = set()  # the request ids' per-worker prefixes
    with serving(demo.home, port, workers=2) as supervisor:
        workers = started_workers(supervisor.pid, 2)
        environ = Path(f"/proc/{workers[0]}/environ").read_bytes().split(b"\0")
        [metrics_dir] = [
            v.split(b"=", 1)[1].decode()
            for v in environ
            if v.startswith(b"PROMETHEUS_MULTIPROC_DIR=")
        ]
        assert Path(metrics_dir).is_dir()
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def scrape_round() -> None:
                nonlocal answered, previous
                for _ in range(3):
                    async with session.get(f"{url}/healthz") as r:
                        assert r.status == 200
                        answered += 1
                async with session.get(f"{url}/metrics") as r:
                    assert r.status == 200
                    scraped_by.add(r.headers["X-Request-Id"][:12])
                    now = samples(await r.text())
                assert _went_back(previous, now) == []
                shown = now.get(("sealgate_requests_total", frozenset(healthz.items())), 0.0)
                assert shown >= answered, "a scrape missed another worker's requests"
                previous = now

            for _ in range(20):
                await scrape_round()
            os.kill(workers[0], signal.SIGKILL)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                now_workers = children(supervisor.pid)
                if len(now_workers) == 2 and workers[0] not in now_workers:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(3)  # the new worker starts and binds
            for _ in range(20):
                await scrape_round()
    assert len(scraped_by) >= 2, "every scrape reached the same worker"
    assert not Path(metrics_dir).exists(), "the run's metrics directory was left behind"


async def test_metrics_behind_a_token_when_one_is_set(
    demo: Demo, gateway_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEALGATE_METRICS_TOKEN", "scrape-7f3a")
    settings = load_settings(demo.home)
    assert settings.metrics_token == "scrape-7f3a"
    api = await gateway_client(create_app(settings))
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "scrape-7f3a"}):
        r = await api.get("/metrics", headers=headers)
        assert r.status == 401 and "sealgate_requests" not in await r.text()
    r = await api.get("/metrics", headers={"Authorization": "Bearer scrape-7f3a"})
    assert r.status == 200 and "sealgate_requests_total" in await r.text()
    monkeypatch.delenv("SEALGATE_METRICS_TOKEN")
    assert load_settings(demo.home).metrics_token is None  # off unless set
