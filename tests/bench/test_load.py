"""The locust scenarios end to end: a real `sealgate serve` on a real socket, a seeded
population, a few seconds of the citywide mix. Correctness only: no timing assertions."""

from __future__ import annotations

import http.client
import importlib.util
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sealgate.bench.load import format_table, run_locust
from sealgate.bench.population import Credentials, proof_request
from sealgate.gateway.provision import init_home
from sealgate.hsm.softhsm import softhsm_available
from tests.gateway.serving import free_port, serving

POPULATION = 200
ENDPOINTS = [
    ("GET", "/v1/verify/{code}"),
    ("GET", "/v1/certificates/{code}/document"),
    ("POST", "/v1/certificates"),
    ("POST", "/v1/certificates/{code}/status"),
]


@dataclass(frozen=True)
class Gateway:
    port: int
    credentials: Credentials
    credentials_path: Path
    codes_path: Path
    codes: list[str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, role: str, body: Any = None) -> tuple[int, Any]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            headers = self.credentials.auth(role)
            payload = None
            if body is not None:
                payload = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            return response.status, json.loads(response.read())
        finally:
            connection.close()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A demo home of its own, served on a free port, with a population of proofs."""
    if importlib.util.find_spec("locust") is None:
        pytest.fail(
            "locust is not installed: install the bench extra (pip install -e '.[test,bench]')"
        )
    if not softhsm_available():
        pytest.fail("SoftHSM2 is required: run the suite with `make test`")
    root = tmp_path_factory.mktemp("load")
    settings, demo = init_home(root / "home", demo=True)
    assert demo is not None
    credentials_path = root / "demo.tsv"
    credentials_path.write_text("\n".join(demo.lines()) + "\n", encoding="utf-8")
    credentials = Credentials.read(credentials_path)
    port = free_port()
    with serving(settings.home, port):
        seeding = Gateway(port, credentials, credentials_path, root / "codes.txt", [])
        batch = {"items": [proof_request(credentials.proof_seal, i) for i in range(POPULATION)]}
        status, answer = seeding.request("POST", "/v1/certificates", "signer", batch)
        assert status == 201, answer
        codes = [item["code"] for item in answer["items"]]
        assert len(set(codes)) == POPULATION
        seeding.codes_path.write_text("\n".join(codes) + "\n", encoding="ascii")
        yield Gateway(port, credentials, credentials_path, seeding.codes_path, codes)


@pytest.mark.slow
def test_the_mix_runs_without_failures_and_leaves_the_population_valid(
    gateway: Gateway, tmp_path: Path
) -> None:
    result = run_locust(
        gateway.url,
        gateway.credentials_path,
        gateway.codes_path,
        users=8,
        spawn_rate=8,
        seconds=6,
        out_dir=tmp_path / "locust",
        timeout=60,
    )
    table = format_table(result)
    print(table)
    assert not result.exceptions, result.exceptions
    assert not result.failures, [f"{f.method} {f.name}: {f.error}" for f in result.failures]
    for method, name in ENDPOINTS:
        row = result.endpoint(name, method)
        assert row.requests > 0, f"{method} {name} was never requested\n{table}"
        assert row.failures == 0, table
        assert not math.isnan(row.p50_ms)
    assert {(r.method, r.name) for r in result.endpoints} == set(ENDPOINTS), table
    assert result.aggregated.requests == sum(r.requests for r in result.endpoints)
    assert result.aggregated.failures == 0
    assert "| **Aggregated** |" in table
    # verifications are the bulk of the mix
    assert result.endpoint("/v1/verify/{code}").requests > result.aggregated.requests / 2

    # status changes touched only the users' own proofs: the population is all still valid
    for code in gateway.codes:
        status, view = gateway.request("GET", f"/v1/verify/{code}?purpose=demo", "verifier")
        assert status == 200, view
        assert view["status"] == "valid", (code, view)
