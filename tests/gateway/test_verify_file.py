"""`sealgate verify-file` says what its VALID stands on, reads the root-signed trust
document, and refuses a retired key's later forgery; keys and signatures are SoftHSM2's."""

from __future__ import annotations

import base64
import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from sealgate.crypto.key_trust import KeyTrust
from sealgate.crypto.trust_document import SealKeyEntry, prepare_trust_document
from sealgate.gateway.app import create_app
from sealgate.gateway.cli import main as sealgate
from sealgate.gateway.provision import Provisioner, init_home
from sealgate.gateway.trust_publication import root_signer
from sealgate.verify.directory import Role
from tests.crypto.reseal import reseal, signed_at
from tests.gateway.conftest import Demo, GatewayClient, proof_request
from tests.gateway.test_document_check import TokenKey


def verify_file(
    capsys: pytest.CaptureFixture[str], demo: Demo, der: bytes, tmp_path: Path, *extra: str
) -> tuple[int, list[list[str]], str]:
    path = tmp_path / "proof.der"
    path.write_bytes(der)
    code = sealgate(["--home", str(demo.home), "verify-file", str(path), *extra])
    out, err = capsys.readouterr()
    return code, [line.split("\t") for line in out.splitlines()], err


async def sealed(api: TestClient[Any, Any], demo: Demo, seal_id: str) -> bytes:
    response = await api.post(
        "/v1/certificates", json=proof_request(seal_id), headers=demo.auth(Role.SIGNER)
    )
    assert response.status == 201, await response.text()
    return base64.b64decode((await response.json())["document"])


async def test_valid_says_what_it_checked(
    api: TestClient[Any, Any], demo: Demo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    der = await sealed(api, demo, demo.proof_seal)
    code, lines, _ = verify_file(capsys, demo, der, tmp_path)
    assert code == 0
    assert lines[0][0] == "VALID"
    assert lines[1:] == [
        ["checked", "time", "signing-time, asserted by the signer"],
        ["checked", "retirement", "not checked offline"],
        ["checked", "revocation", "not checked offline"],
        ["checked", "registry", "not checked offline"],
    ]
    trust = tmp_path / "trust.json"
    trust.write_bytes(await (await api.get("/v1/trust")).read())
    code, lines, _ = verify_file(capsys, demo, der, tmp_path, "--trust-document", str(trust))
    assert code == 0
    version = json.loads(trust.read_bytes())["document"]["version"]
    assert lines[2][2].startswith(f"key active (trust document version {version} of ")


async def test_a_rotation_publishes_and_a_retired_key_cannot_forge_later(
    api: TestClient[Any, Any], demo: Demo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seal_id = demo.verification_seal
    der = await sealed(api, demo, seal_id)
    directory = demo.settings.open_directory()
    before = directory.trust_document()
    old = directory.seal(seal_id).active_key
    # Kept for a grace period: the old key forges below, as a stolen one would.
    pin = ["--root-pin-file", str(demo.root_pin_file), "--operator", "ops-1"]
    assert (
        sealgate(["--home", str(demo.home), "seal", "rotate", seal_id, "--grace", "3600", *pin])
        == 0
    )
    capsys.readouterr()
    after = directory.trust_document()
    assert before is not None and after is not None and after[0] == before[0] + 1
    listed = json.loads(after[1])["document"]["seals"]
    retired = next(s for s in listed if s["seal_id"] == seal_id and s["version"] == old.version)
    assert retired["state"] == "retired" and retired["retired_at"] is not None
    assert sealgate(["--home", str(demo.home), "trust", "publish", *pin]) == 0
    assert capsys.readouterr().out == f"trust document\tversion {after[0] + 1}\n"
    after = directory.trust_document()
    assert after is not None

    # The same rotation as if it had been three minutes ago (its certificate is only
    # minutes old): a document the root signs so. Times from other machines' clocks get
    # CLOCK_SKEW (5 min) of slack, so a forgery dated 4 minutes ahead is past it.
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    retired_at = now - dt.timedelta(minutes=3)
    document = tmp_path / "trust.json"
    provisioner = Provisioner(demo.settings, root_pin=demo.credentials.root_pin)
    with provisioner.keystore() as keystore, provisioner.root_keystore() as root:
        entry = SealKeyEntry(
            seal_id, "verification", "查询核验专用章", "u", "c", 1, "retired", old.certificate,
            retired_at,
        )  # fmt: skip
        roots = [der_ for der_, _ in directory.roots()]
        pending = prepare_trust_document(
            version=after[0] + 1,
            issued_at=retired_at,
            roots=roots,
            seal_keys=[entry],
            keys=KeyTrust([]),
            root_der=roots[-1],
        )
        document.write_bytes(pending.finish(root_signer(root, directory)(pending.digest)))
        old_key = TokenKey(keystore, old.key_label)
        forgeries = {
            "SignedAfterRetirement": reseal(
                der, old_key, attributes=signed_at(now + dt.timedelta(minutes=4))
            ),
            "SignedInTheFuture": reseal(
                der, old_key, attributes=signed_at(dt.datetime(2031, 11, 30, tzinfo=dt.UTC))
            ),
        }
        early = reseal(der, old_key, attributes=signed_at(retired_at - dt.timedelta(minutes=1)))
    code, lines, _ = verify_file(capsys, demo, early, tmp_path, "--trust-document", str(document))
    assert code == 0, lines
    assert lines[2][2].startswith(f"key retired {retired_at.isoformat()}, signed before")
    for why, forged in forgeries.items():
        # Without the document, the signature alone holds (and the output says so) ...
        if why == "SignedAfterRetirement":
            assert verify_file(capsys, demo, forged, tmp_path)[0] == 0
        # ... with it, the forgery is refused.
        code, _, err = verify_file(
            capsys, demo, forged, tmp_path, "--trust-document", str(document)
        )
        assert code == 1
        assert err.startswith(f"INVALID: {why}")


async def test_a_trust_document_not_signed_by_the_root_is_refused(
    api: TestClient[Any, Any], demo: Demo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    der = await sealed(api, demo, demo.proof_seal)
    body = json.loads(await (await api.get("/v1/trust")).read())
    for seal in body["document"]["seals"]:
        seal["retired_at"] = None
    body["document"]["version"] += 100
    document = tmp_path / "trust.json"
    document.write_text(json.dumps(body))
    code, _, err = verify_file(capsys, demo, der, tmp_path, "--trust-document", str(document))
    assert code == 1
    assert err.startswith("INVALID: TrustDocumentError")


async def test_no_trust_document_yet_is_503_until_one_is_published(
    tmp_path: Path, gateway_client: GatewayClient, capsys: pytest.CaptureFixture[str]
) -> None:
    """A home from before trust documents: no gateway can sign one, the operator must."""
    pin = tmp_path / "root-pin"
    pin.write_text("the root pin of this test\n")
    settings, _ = init_home(tmp_path / "home", root_pin=pin.read_text().strip())
    with sqlite3.connect(settings.home / "registry.db") as conn:
        conn.execute("DELETE FROM trust_documents")
    api = await gateway_client(create_app(settings))
    response = await api.get("/v1/trust")
    assert response.status == 503
    assert (await response.json())["code"] == "trust-document-unpublished"
    assert "Retry-After" not in response.headers  # waiting does not publish it
    await api.close()
    published = ["--home", str(settings.home), "trust", "publish", "--root-pin-file", str(pin)]
    assert sealgate([*published, "--operator", "ops-1"]) == 0
    assert capsys.readouterr().out == "trust document\tversion 1\n"
    api = await gateway_client(create_app(settings))
    body = await (await api.get("/v1/trust")).read()
    assert body.endswith(b"\n") and json.loads(body)["document"]["version"] == 1
