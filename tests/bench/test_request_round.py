"""The harness's mode for the automated 30-minute tier, shrunk: a real `sealgate serve`,
the clients provisioned through the CLI, a fraction of a second of rounds. Correctness
only: a tiny run's figures mean nothing and nothing here asserts on them."""

from __future__ import annotations

from pathlib import Path

import pytest

from sealgate.bench.request_round import provision_round_clients, request_round
from sealgate.bench.results import Report
from sealgate.bench.workspace import sealgate_argv
from sealgate.gateway.provision import init_home
from tests.gateway.conftest import Demo
from tests.gateway.serving import free_port, serving

pytestmark = [pytest.mark.slow, pytest.mark.processes]


def test_a_tiny_run_of_rounds_answers_every_request(tmp_path: Path) -> None:
    settings, credentials = init_home(tmp_path / "home", demo=True)
    assert credentials is not None
    demo = Demo(settings, credentials)
    clients = provision_round_clients(sealgate_argv(), settings.home, demo.verification_seal)
    port = free_port()
    report = Report(started="", machine="", population=0, options={})
    with serving(settings.home, port) as process:
        measured = request_round(
            report, process.pid, f"http://127.0.0.1:{port}", clients, seconds=0.5, concurrency=2
        )
    assert measured.errors == 0
    assert measured.rate > 0 and measured.p99_ms is not None and measured.cpu_us is not None
    assert report.measurements["request_round"] is measured
