"""The alert rules (deploy/prometheus/) and the dashboard (deploy/grafana/): checked and
unit-tested by promtool, and held to the metrics a real gateway's /metrics exports."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from sealgate.bench.redis_server import RedisServer
from sealgate.gateway.app import create_app
from sealgate.verify.directory import Role
from tests.gateway.conftest import Demo, GatewayClient, proof_request
from tests.gateway.scraped import samples, types

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "sealgate-rules.yml"
RULE_TESTS = DEPLOY / "prometheus" / "sealgate-rules.test.yml"
DASHBOARD = DEPLOY / "grafana" / "sealgate-dashboard.json"
_NAME = re.compile(r"\bsealgate_[a-z0-9_]+")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("promtool is required (Debian's prometheus package): run `make test`")
    return subprocess.run(
        [tool, *args], capture_output=True, text=True, check=False, cwd=RULES.parent, timeout=60
    )


def test_promtool_checks_the_rules() -> None:
    checked = promtool("check", "rules", RULES.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 12 rules found" in checked.stdout


def test_promtool_unit_tests_the_rules() -> None:
    tested = promtool("test", "rules", RULE_TESTS.name)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_promtool_refuses_a_rule_that_misfires(tmp_path: Path) -> None:
    """The unit tests can fail: the same tests against rules with a threshold changed."""
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    (tmp_path / RULES.name).write_text(RULES.read_text().replace("> 0.01", "> 0.6"))
    tool = shutil.which("promtool") or "promtool"
    tested = subprocess.run(
        [tool, "test", "rules", RULE_TESTS.name],
        capture_output=True, text=True, check=False, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert tested.returncode == 1 and "SealgateServerErrors" in tested.stdout + tested.stderr


def _exported(text: str) -> set[str]:
    """Every series name /metrics can show, from its families and their types."""
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_sum", "_count"),
        "gauge": ("",),
    }
    return {
        family + suffix
        for family, kind in types(text).items()
        for suffix in suffixes.get(kind, ("",))
    }


def _names_in_rules() -> set[str]:
    return set(_NAME.findall(RULES.read_text()))


def _names_in_dashboard() -> set[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert exprs and all(panel["targets"] for panel in dashboard["panels"])
    return {name for expr in exprs for name in _NAME.findall(expr)}


async def test_the_rules_and_the_dashboard_name_only_exported_metrics(
    demo: Demo, redis_server: RedisServer, gateway_client: GatewayClient
) -> None:
    settings = dataclasses.replace(demo.settings, redis_url=redis_server.url)
    api = await gateway_client(create_app(settings))
    sealed = await api.post(
        "/v1/certificates", json=proof_request(demo.proof_seal), headers=demo.auth(Role.SIGNER)
    )
    assert sealed.status == 201
    verifier = demo.auth(Role.VERIFIER)
    assert (
        await api.get("/v1/verify/430900-ZDXE31-DD2417-Z7GDVP?purpose=demo", headers=verifier)
    ).status == 404
    assert (await api.get("/readyz")).status == 200
    text = await (await api.get("/metrics")).text()
    exported = _exported(text)
    used = _names_in_rules() | _names_in_dashboard()
    assert {
        "sealgate_ready",
        "sealgate_problems_total",
        "sealgate_seal_certificate_end_seconds",
        "sealgate_notice_deliveries_total",
        "sealgate_notice_oldest_pending_seconds",
    } <= used
    assert used <= exported, used - exported
    scraped: dict[tuple[str, frozenset[tuple[str, str]]], float] = samples(text)
    values: dict[str, Any] = {}
    for (name, labels), value in scraped.items():
        values.setdefault(name, []).append((dict(labels), value))
    assert values["sealgate_ready"] == [({}, 1.0)]
    assert values["sealgate_audit_available"] == [({}, 1.0)]
    assert ({"code": "unknown-code"}, 1.0) in values["sealgate_problems_total"]
    ends = {
        labels["seal"]: value for labels, value in values["sealgate_seal_certificate_end_seconds"]
    }
    assert demo.proof_seal in ends and ends[demo.proof_seal] > time.time() + 365 * 86400
