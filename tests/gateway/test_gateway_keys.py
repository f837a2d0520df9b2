"""A home made before the gateway keys: served without them (what needs them answers 503)
until `sealgate gateway-keys` makes them; running it again changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sealgate.gateway.app import create_app
from sealgate.gateway.attestation import KEYS_FILE
from sealgate.gateway.cli import main
from sealgate.gateway.provision import init_home
from sealgate.verify.directory import Role
from tests.gateway.conftest import Demo, GatewayClient
from tests.gateway.test_status import seal


async def test_keys_made_for_an_older_home(
    tmp_path: Path, gateway_client: GatewayClient, capsys: pytest.CaptureFixture[str]
) -> None:
    settings, credentials = init_home(tmp_path / "home", demo=True)
    assert credentials is not None
    demo = Demo(settings, credentials)
    (settings.home / KEYS_FILE).unlink()  # as a home made before them
    api: Any = await gateway_client(create_app(settings))
    code = await seal(api, demo)
    refused = await api.get(f"/v1/certificates/{code}/qr", headers=demo.auth(Role.PORTAL))
    assert refused.status == 503
    await api.close()

    assert main(["--home", str(settings.home), "gateway-keys", "--operator", "tester"]) == 0
    first = capsys.readouterr().out
    assert sorted(line.split("\t")[0] for line in first.splitlines()) == [
        "consent", "qr", "status-list",
    ]  # fmt: skip
    assert main(["--home", str(settings.home), "gateway-keys", "--operator", "tester"]) == 0
    assert capsys.readouterr().out == first  # the same keys: none made twice
    api = await gateway_client(create_app(settings))
    answer = await api.get(f"/v1/certificates/{code}/qr", headers=demo.auth(Role.PORTAL))
    assert answer.status == 200
