"""A home made before the gateway keys: served without them (what needs them answers 503)
until `sealgate gateway-keys` makes them, with the root's PIN, and publishes them in the
next root-signed trust document; running it again makes no other keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sealgate.crypto.trust_document import read_trust_document
from sealgate.crypto.verification import TrustList
from sealgate.gateway.app import create_app
from sealgate.gateway.attestation import KEYS_FILE, GatewayKeys
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

    command = ["--home", str(settings.home), "gateway-keys", "--operator", "tester"]
    assert main(command) == 1  # no root PIN, no terminal to type it at: nothing made
    assert "--root-pin-file" in capsys.readouterr().err
    assert not (settings.home / KEYS_FILE).exists()
    command += ["--root-pin-file", str(demo.root_pin_file)]
    assert main(command) == 0
    first = capsys.readouterr().out
    assert sorted(line.split("\t")[0] for line in first.splitlines()) == [
        "consent", "qr", "status-list",
    ]  # fmt: skip
    assert main(command) == 0
    assert capsys.readouterr().out == first  # the same keys: none made twice
    directory = settings.open_directory()
    try:
        published = directory.trust_document()
    finally:
        directory.close()
    assert published is not None and published[0] == 3  # init's, then one a run
    roots = TrustList.from_pem(settings.root_certificate_path.read_bytes())
    listed = read_trust_document(published[1], roots).keys
    assert listed.document() == GatewayKeys.load(settings.home).trust.document()
    api = await gateway_client(create_app(settings))
    answer = await api.get(f"/v1/certificates/{code}/qr", headers=demo.auth(Role.PORTAL))
    assert answer.status == 200
