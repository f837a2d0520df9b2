"""The peers the capacity harness measures beside the gateway (bench/peers/): each server
started as the harness starts it and asked over real HTTP, and a tiny ``--peers`` run.
Correctness only: the figures of one-second windows mean nothing and nothing here asserts
on them, only on how the ratios are made from the windows."""

from __future__ import annotations

import base64
import http.client
import json
import shutil
import sqlite3
import statistics
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis as redis_py
from asn1crypto import cms

from sealgate.bench.capacity import Harness, Options, run_capacity
from sealgate.bench.findings import SEAL_COST_TARGET
from sealgate.bench.peers.verify import REDIS_PREFIX, write_statuses
from sealgate.bench.population import Credentials, proof_request
from sealgate.bench.processes import free_port, service
from sealgate.bench.redis_server import RedisServer
from sealgate.bench.results import Measurement
from sealgate.gateway.provision import init_home
from sealgate.hsm.softhsm import softhsm_available

VALID = {"code": "430900-AAAAAA-BBBBBB-CCCCC1", "status": "valid", "type": "户籍证明",
         "holder_name": "张*", "valid_from": "2026-11-01", "valid_until": "2027-10-31"}  # fmt: skip
REVOKED = {**VALID, "code": "430900-AAAAAA-BBBBBB-CCCCC2", "status": "revoked"}


@contextmanager
def peer(kind: str, log: Path, *args: str) -> Iterator[int]:
    """``python -m sealgate.bench.peers KIND``, as the harness runs it; yields its port."""
    port = free_port()
    argv = [sys.executable, "-m", "sealgate.bench.peers", kind, "--port", str(port), *args]
    with service(argv, port=port, log=log):
        yield port


def call(port: int, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        payload = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        connection.request(method, path, body=payload, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@pytest.mark.slow
def test_the_dict_peer_answers_the_seeded_statuses(tmp_path: Path) -> None:
    statuses = tmp_path / "statuses.jsonl"
    assert write_statuses(statuses, [VALID, REVOKED]) == 2
    with peer("dict", tmp_path / "dict.log", "--statuses", str(statuses)) as port:
        # the harness's paths carry the gateway's purpose: the peer ignores it
        assert call(port, "GET", f"/v1/verify/{VALID['code']}?purpose=demo") == (200, VALID)
        assert call(port, "GET", f"/v1/verify/{REVOKED['code']}") == (200, REVOKED)
        status, _ = call(port, "GET", "/v1/verify/430900-AAAAAA-BBBBBB-CCCCC3")
        assert status == 404


@pytest.mark.slow
def test_the_redis_peer_answers_with_one_get(tmp_path: Path, redis_server: RedisServer) -> None:
    client = redis_py.Redis.from_url(redis_server.url)
    key = REDIS_PREFIX + REVOKED["code"]
    client.set(key, json.dumps(REVOKED, ensure_ascii=False).encode())
    try:
        with peer("redis", tmp_path / "redis.log", "--redis", redis_server.url) as port:
            assert call(port, "GET", f"/v1/verify/{REVOKED['code']}?purpose=demo") == (
                200,
                REVOKED,
            )
            # what is not in Redis is not known: nothing else is asked
            status, _ = call(port, "GET", f"/v1/verify/{VALID['code']}")
            assert status == 404
            client.set(key, json.dumps(VALID).encode())  # a change is seen at once
            assert call(port, "GET", f"/v1/verify/{REVOKED['code']}")[1]["status"] == "valid"
    finally:
        client.delete(key)
        client.close()


@pytest.mark.slow
def test_the_pyhanko_peer_seals_cms_that_openssl_verifies_against_the_root(
    tmp_path: Path,
) -> None:
    if not softhsm_available():
        pytest.fail("SoftHSM2 is required: run the suite with `make test`")
    settings, demo = init_home(tmp_path / "home", demo=True)
    assert demo is not None
    credentials = Credentials.parse("\n".join(demo.lines()))
    seal = credentials.proof_seal
    database = tmp_path / "peer.sqlite"
    items = [proof_request(seal, i) for i in range(3)]
    args = ("--home", str(settings.home), "--seal", seal, "--database", str(database))
    with peer("pyhanko", tmp_path / "pyhanko.log", *args) as port:
        status, answer = call(port, "POST", "/v1/certificates", {"items": items})
    assert status == 201, answer
    assert len(answer["items"]) == 3
    stored = dict(sqlite3.connect(database).execute("SELECT code, document FROM proofs"))
    assert set(stored) == {item["code"] for item in answer["items"]}
    for item, sent in zip(answer["items"], items, strict=True):
        der = base64.b64decode(item["document"])
        assert stored[item["code"]] == der
        signed = cms.ContentInfo.load(der)
        assert signed["content_type"].native == "signed_data"
        path = tmp_path / f"{item['code']}.der"
        path.write_bytes(der)
        verified = subprocess.run(
            ["openssl", "cms", "-verify", "-inform", "DER", "-in", str(path),
             "-CAfile", str(settings.root_certificate_path)],
            capture_output=True, check=False,
        )  # fmt: skip
        assert verified.returncode == 0, verified.stderr.decode()
        content = json.loads(verified.stdout)
        assert content["code"] == item["code"]
        assert content["holder"] == sent["holder"]
        assert content["content"] == sent["content"]
    # an altered document is refused by the same check
    tampered = bytearray(base64.b64decode(answer["items"][0]["document"]))
    at = bytes(tampered).index(b'"holder"')
    tampered[at + 20] ^= 0x01
    path = tmp_path / "tampered.der"
    path.write_bytes(bytes(tampered))
    refused = subprocess.run(
        ["openssl", "cms", "-verify", "-inform", "DER", "-in", str(path),
         "-CAfile", str(settings.root_certificate_path)],
        capture_output=True, check=False,
    )  # fmt: skip
    assert refused.returncode != 0


def _measurement(name: str, runs: list[float], cpu_runs: list[float], **extra: Any) -> Measurement:
    return Measurement(
        name, name, statistics.fmean(runs), statistics.fmean(cpu_runs), runs=runs,
        cpu_runs=cpu_runs, **extra,
    )  # fmt: skip


def test_sealing_is_judged_by_its_cost_ratio_at_most_the_target(tmp_path: Path) -> None:
    # seals/s against the sign rate is for information; CPU-µs per proof over the sign's
    # CPU-µs per signature, the median of the windows', is judged against ≤ 2.5
    for costs, verdict in (([2.0, 2.4, 9.0], True), ([2.0, 2.6, 2.7], False)):
        harness = Harness(Options(out=tmp_path))
        m = harness.report.measurements
        m["sign"] = _measurement("sign", [10_000.0] * 4, [50.0] * 4)
        m["seal_batch"] = _measurement(
            "seal_batch", [4000.0] * 3, [50.0 * c for c in costs],
            pair_ratios=[0.4] * 3, cost_ratios=costs,
        )  # fmt: skip
        harness.derive()
        rows = {row["name"]: row for row in harness.report.ratios}
        assert rows["seal_batch"]["target"] is None
        assert rows["seal_batch"]["pass"] is None
        cost = rows["seal_cost"]
        assert cost["ratio"] == statistics.median(costs)
        assert (cost["target"], cost["at_most"], cost["pass"]) == (SEAL_COST_TARGET, True, verdict)
        assert harness.report.peer_ratios == []  # no peers asked for


def _around(figure: list[float], base: list[float]) -> list[float]:
    """Each figure window over the mean of the base windows either side of it."""
    return [g / ((a + b) / 2) for g, a, b in zip(figure, base, base[1:], strict=False)]


@pytest.mark.slow
def test_a_tiny_run_with_peers_reports_gateway_over_each_peer(tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        pytest.fail("wrk is required: run the suite with `make test` (it installs wrk)")
    if not softhsm_available():
        pytest.fail("SoftHSM2 is required: run the suite with `make test`")
    out = tmp_path / "capacity"
    options = Options(
        out=out, population=2000, seconds=1.0, rounds=1, warmup=0.0, zipf_warmup=0.5,
        connections=4, batch=5, sweep_seconds=1.0, peers=True,
    )  # fmt: skip
    report_path = run_capacity(options)

    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    measured = results["measurements"]
    compared = {
        "verify_cached_vs_dict": "peer_dict",
        "verify_mix_vs_redis": "peer_redis",
        "seal_batch_vs_pyhanko": "peer_pyhanko",
    }
    for figure, base in compared.items():
        for name, windows in ((figure, 1), (base, 2)):  # peer, gateway, peer
            assert len(measured[name]["runs"]) == windows, name
            assert measured[name]["errors"] == 0, name  # every answer a 2xx
            assert measured[name]["rate"] > 0 and measured[name]["cpu_us"] > 0, name
    rows = {row["name"]: row for row in results["peer_ratios"]}
    assert list(rows) == ["peer_dict", "peer_redis", "peer_pyhanko_rate", "peer_pyhanko_cost"]
    for name, figure in (("peer_dict", "verify_cached_vs_dict"),
                         ("peer_redis", "verify_mix_vs_redis"),
                         ("peer_pyhanko_rate", "seal_batch_vs_pyhanko")):  # fmt: skip
        expected = _around(measured[figure]["runs"], measured[compared[figure]]["runs"])
        assert rows[name]["pairs"] == pytest.approx(expected), name
        assert rows[name]["ratio"] == pytest.approx(expected[0]), name
    # sealing's CPU-µs per proof: the peer's windows either side over the gateway's
    gateway_cpu = measured["seal_batch_vs_pyhanko"]["cpu_runs"]
    peer_cpu = measured["peer_pyhanko"]["cpu_runs"]
    assert rows["peer_pyhanko_cost"]["ratio"] == pytest.approx(
        1 / _around(gateway_cpu, peer_cpu)[0]
    )
    assert {r["target"] for r in rows.values()} == {3.0, 20.0}
    # and sealing's own cost ratio against the sign floor, from the same kind of windows
    cost = next(r for r in results["ratios"] if r["name"] == "seal_cost")
    expected_cost = _around(measured["seal_batch"]["cpu_runs"], measured["sign"]["cpu_runs"])
    assert cost["ratio"] == pytest.approx(expected_cost[0])
    assert cost["at_most"] is True
    # the peers' Redis keys are gone, the statuses the dict peer served are the registry's
    lines = (out / "peer-statuses.jsonl").read_text(encoding="utf-8").splitlines()
    codes = set((out / "codes.txt").read_text().split())
    assert codes <= {json.loads(line)["code"] for line in lines}
    report = report_path.read_text(encoding="utf-8")
    assert "## Against the peers (docs/design.md §9)" in report
    assert "| verify of a cached code / FastAPI dict peer |" in report
    assert "≤ 2.5" in report
