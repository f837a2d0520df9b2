"""The outbox's upkeep over HTTP (docs/design.md §18), in one gateway with an injected
clock and a real receiver: /metrics counts the attempts by outcome and shows what is owed
and for how long; past ``[notices] retention_days`` the courier deletes what was
delivered or given up, and keeps what is still owed and what is recent."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from sealgate.gateway.app import create_app
from sealgate.gateway.config_file import load_settings
from sealgate.gateway.home import HomeError
from sealgate.gateway.keys import COURIER
from sealgate.gateway.notices import BACKLOG_SECONDS
from sealgate.verify.directory import Role
from tests.gateway.clock import Clock
from tests.gateway.conftest import Demo, GatewayClient
from tests.gateway.scraped import value
from tests.gateway.test_notices import Receiver, change, receiver, seal, subscribe

__all__ = ["receiver"]  # a fixture this module uses from another

DAY = 86400.0


async def scrape(api: TestClient[Any, Any]) -> dict[str, float | None]:
    text = await (await api.get("/metrics")).text()
    counts: dict[str, float | None] = {
        outcome: value(text, "sealgate_notice_deliveries_total", outcome=outcome)
        for outcome in ("delivered", "retry", "failed")
    }
    for name in (
        "sealgate_notice_deliveries_pruned_total",
        "sealgate_notice_deliveries_pending",
        "sealgate_notice_oldest_pending_seconds",
    ):
        counts[name.removeprefix("sealgate_notice_")] = value(text, name)
    return counts


async def states(
    api: TestClient[Any, Any], auth: dict[str, str], sid: str
) -> list[tuple[str, int]]:
    """The delivery log, newest first: each delivery's state and attempts."""
    log = await (await api.get(f"/v1/subscriptions/{sid}/deliveries", headers=auth)).json()
    return [(d["state"], d["attempts"]) for d in log["items"]]


async def test_metrics_follow_the_deliveries_and_old_settled_ones_are_pruned(
    demo: Demo, gateway_client: GatewayClient, receiver: Receiver
) -> None:
    clock = Clock(float(int(time.time())))
    settings = dataclasses.replace(demo.settings, notice_retention_days=30)
    app = create_app(settings, clock=clock)
    api = await gateway_client(app)
    courier = app[COURIER]
    verifier = demo.auth(Role.VERIFIER)
    delivered, given_up, owed = [await seal(api, demo) for _ in range(3)]
    made = await subscribe(api, verifier, receiver.url, [delivered, given_up, owed])
    assert await scrape(api) == {
        "delivered": 0.0,
        "retry": 0.0,
        "failed": 0.0,
        "deliveries_pruned_total": 0.0,
        "deliveries_pending": 0.0,
        "oldest_pending_seconds": 0.0,
    }

    await change(api, demo, delivered, "pledged")
    await courier.round()
    receiver.answer = 500  # up, but failing from now on
    clock.now += BACKLOG_SECONDS  # the backlog is read again
    await change(api, demo, given_up, "pledged")
    await courier.round()
    clock.now += 100
    seen = await scrape(api)
    assert (seen["delivered"], seen["retry"], seen["failed"]) == (1.0, 1.0, 0.0)
    assert seen["deliveries_pending"] == 1.0
    assert seen["oldest_pending_seconds"] == 100.0  # owed since the round before

    clock.now += 2 * DAY  # past the day a delivery is retried for: given up
    await courier.round()
    seen = await scrape(api)
    assert (seen["delivered"], seen["retry"], seen["failed"]) == (1.0, 1.0, 1.0)
    assert (seen["deliveries_pending"], seen["oldest_pending_seconds"]) == (0.0, 0.0)
    assert await states(api, verifier, made["id"]) == [("failed", 2), ("delivered", 1)]

    clock.now += 30 * DAY  # both settled ones now older than the retention
    await change(api, demo, owed, "pledged")  # owed, and recent
    await courier.round()
    seen = await scrape(api)
    assert seen["deliveries_pruned_total"] == 2.0
    assert (seen["retry"], seen["deliveries_pending"]) == (2.0, 1.0)
    assert await states(api, verifier, made["id"]) == [("pending", 1)]
    assert len(receiver.received) == 4  # each attempt made once, none twice


def test_the_retention_is_a_setting_of_at_least_two_days(demo: Demo, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    config = (demo.home / "config.toml").read_text()
    assert "[notices]" not in config
    (home / "config.toml").write_text(config)
    assert load_settings(home).notice_retention_days == 30
    (home / "config.toml").write_text(config + "\n[notices]\nretention_days = 90\n")
    assert load_settings(home).notice_retention_days == 90
    for wrong in ("1", "0", '"a month"', "30.5", "true"):
        (home / "config.toml").write_text(config + f"\n[notices]\nretention_days = {wrong}\n")
        with pytest.raises(HomeError, match="retention_days"):
            load_settings(home)
    (home / "config.toml").write_text(config + "\n[notices]\nretention = 30\n")
    with pytest.raises(HomeError, match=r"\[notices\] takes"):
        load_settings(home)
