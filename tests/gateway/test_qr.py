"""亮码扫码 end to end: the gateway's QR code read by an independent reader, verified
offline against the trust document and the published status list (and by pycose), a
revocation reaching the list, the online check, and the command line."""

from __future__ import annotations

import dataclasses
import io
import json
import subprocess
import sys
import time
import urllib.parse
import zlib
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from aiohttp.test_utils import TestClient
from PIL import Image
from pycose.keys import EC2Key
from pycose.messages import Sign1Message

from sealgate.crypto.base45 import b45decode
from sealgate.crypto.certificates import certificate_pem
from sealgate.crypto.key_trust import KeyTrust, Use
from sealgate.crypto.qr_payload import PREFIX, encode_payload, prepare_payload, read_payload
from sealgate.crypto.trust_document import PendingTrustDocument
from sealgate.gateway.app import create_app
from sealgate.gateway.attestation import KEYS_FILE
from sealgate.gateway.cli import main
from sealgate.verify.directory import Role
from sealgate.verify.qr import verify_qr
from tests.crypto.signers import make_pki
from tests.crypto.test_qr_payload import Key
from tests.gateway.clock import Clock
from tests.gateway.conftest import Demo, GatewayClient
from tests.gateway.test_status import change, seal
from tests.waiting import eventually

Client = TestClient[Any, Any]
BOUND = 2.0  # the city's status_list_bound for these tests


@pytest.fixture
async def api(demo: Demo, gateway_client: GatewayClient) -> Client:
    settings = dataclasses.replace(demo.settings, status_list_bound=BOUND)
    return await gateway_client(create_app(settings))


def trust_of(demo: Demo) -> KeyTrust:
    return KeyTrust.from_json((demo.home / KEYS_FILE).read_bytes())


async def qr(api: Client, demo: Demo, code: str, kind: str = "payload", **query: str) -> Any:
    response = await api.get(
        f"/v1/certificates/{code}/qr",
        params={"format": kind, **query},
        headers=demo.auth(Role.PORTAL),
    )
    assert response.status == 200, await response.text()
    return await (response.json() if kind == "payload" else response.read())


async def status_list(api: Client, uri: str) -> bytes:
    """The list, once published: a list is signed within the bound after its first index."""

    async def published() -> Any:
        response = await api.get(uri)
        return response.status == 200 and await response.read()

    token: bytes = await eventually(published, timeout=10 * BOUND, what="the list published")
    return token


async def test_the_png_reads_back_to_the_payload_which_verifies_offline(
    api: Client, demo: Demo
) -> None:
    code = await seal(api, demo)
    png = await qr(api, demo, code, "png")
    with Image.open(io.BytesIO(png)) as image:
        found = zxingcpp.read_barcodes(image.convert("L"))
    assert len(found) == 1
    payload = found[0].text
    assert payload.startswith(PREFIX)
    assert found[0].symbology_identifier == "]Q1"  # a QR code
    version = int(found[0].extra["Version"])
    assert version < 15, f"QR version {version}"
    print(f"payload {len(payload)} characters, QR version {version}-M, PNG {image.size}")
    assert found[0].ec_level == "M"
    trust = trust_of(demo)
    claims_uri = (await qr(api, demo, code))["status_list"]["uri"]
    verdict = verify_qr(payload, trust, await status_list(api, claims_uri), now=_now())
    assert verdict.status == "valid"
    assert verdict.claims.code == code.replace("-", "")
    assert verdict.claims.holder_name_masked == "张*"
    verdict.claims.require_holder("11010519491231002X")
    # nothing of the holder's number in clear
    assert "1231002X" not in payload and b"1231002X" not in zlib.decompress(
        b45decode(payload[len(PREFIX) :])
    )


async def test_pycose_verifies_the_payload_with_the_trust_documents_key(
    api: Client, demo: Demo
) -> None:
    body = await qr(api, demo, await seal(api, demo))
    cose = zlib.decompress(b45decode(body["payload"][len(PREFIX) :]))
    message = Sign1Message.decode(cose)
    kid = message.phdr[next(k for k in message.phdr if getattr(k, "identifier", k) == 4)]
    key = trust_of(demo).key(kid, Use.QR).public_key.public_numbers()
    message.key = EC2Key(crv="P_256", x=key.x.to_bytes(32, "big"), y=key.y.to_bytes(32, "big"))
    assert message.verify_signature()
    # one altered byte: pycose and the gateway both refuse it
    altered = bytearray(cose)
    altered[len(altered) // 2] ^= 0x01
    tampered = encode_payload(bytes(altered))
    try:
        bad = Sign1Message.decode(bytes(altered))
        bad.key = message.key
        assert not bad.verify_signature()
    except Exception as exc:  # pycose could not even parse it: refused too
        assert not isinstance(exc, AssertionError)
    response = await api.get(
        "/v1/verify/qr/" + urllib.parse.quote(tampered, safe=""), headers=demo.auth(Role.VERIFIER)
    )
    assert response.status == 422
    assert (await response.json())["code"] == "invalid-qr"


async def test_a_revoked_proof_reads_revoked_offline_once_the_list_is_regenerated(
    api: Client, demo: Demo
) -> None:
    code = await seal(api, demo)
    body = await qr(api, demo, code)
    payload, uri = body["payload"], body["status_list"]["uri"]
    trust = trust_of(demo)

    async def offline() -> str:
        return verify_qr(payload, trust, await status_list(api, uri), now=_now()).status

    await eventually(lambda: _is(offline(), "valid"), timeout=10 * BOUND, what="listed valid")
    assert (await change(api, demo, code, "revoked")).status == 200
    # the payload itself is unchanged and still signed: only the list says it
    await eventually(
        lambda: _is(offline(), "revoked-or-ended"), timeout=10 * BOUND, what="listed revoked"
    )
    online = await api.get(
        "/v1/verify/qr/" + urllib.parse.quote(payload, safe=""), headers=demo.auth(Role.VERIFIER)
    )
    assert (await online.json())["status"] == "revoked"
    # and no new QR code for it
    refused = await api.get(f"/v1/certificates/{code}/qr", headers=demo.auth(Role.PORTAL))
    assert refused.status == 409


async def _is(status: Any, wanted: str) -> bool:
    return bool(await status == wanted)


async def test_status_lists_are_cacheable_and_answer_304(api: Client, demo: Demo) -> None:
    body = await qr(api, demo, await seal(api, demo))
    uri = body["status_list"]["uri"]
    await eventually(lambda: _listed(api, uri), timeout=10 * BOUND, what="the list published")
    response = await api.get(uri)
    assert response.headers["Content-Type"] == "application/statuslist+cwt"
    assert response.headers["Cache-Control"] == f"public, max-age={int(BOUND / 2)}"
    etag = response.headers["ETag"]
    again = await api.get(uri, headers={"If-None-Match": etag})
    assert again.status in (200, 304)  # 200 only if it was regenerated in between
    assert (await api.get("/v1/status-lists/999")).status == 404
    assert (await api.get("/v1/status-lists/x")).status == 404


async def _listed(api: Client, uri: str) -> bool:
    return (await api.get(uri)).status == 200


async def test_only_the_portal_gets_qr_codes_and_bad_queries_are_refused(
    api: Client, demo: Demo
) -> None:
    code = await seal(api, demo)
    path = f"/v1/certificates/{code}/qr"
    assert (await api.get(path, headers=demo.auth(Role.VERIFIER))).status == 403
    assert (await api.get(path)).status == 401
    bad = await api.get(path, params={"format": "gif"}, headers=demo.auth(Role.PORTAL))
    assert bad.status == 400 and (await bad.json())["field"] == "format"
    unknown = await api.get(
        "/v1/certificates/430900-ZDXE31-DD2417-Z7GDVP/qr", headers=demo.auth(Role.PORTAL)
    )
    assert unknown.status == 404
    svg = await qr(api, demo, code, "svg")
    assert b"<svg" in svg
    static = await qr(api, demo, code, variant="static")
    assert static["expires_at"] is None
    dynamic = await qr(api, demo, code)
    assert dynamic["expires_at"] is not None and dynamic["qr_version"] < 15


async def test_the_online_check_refuses_garbage_and_names_the_code_in_the_audit(
    api: Client, demo: Demo
) -> None:
    headers = demo.auth(Role.VERIFIER)
    for garbage in ("SG1:ABC", "hello", "SG1:" + "A" * 3000):
        response = await api.get("/v1/verify/qr/" + urllib.parse.quote(garbage), headers=headers)
        assert response.status == 422
        assert garbage not in await response.text()
    assert (await api.get("/v1/verify/qr/SG1:ABC", headers=demo.auth(Role.PORTAL))).status == 403


@pytest.mark.slow
async def test_verify_qr_on_the_command_line(api: Client, demo: Demo, tmp_path: Path) -> None:
    code = await seal(api, demo)
    body = await qr(api, demo, code)
    picture = tmp_path / "qr.png"
    picture.write_bytes(await qr(api, demo, code, "png"))
    listed = tmp_path / "list.cwt"

    async def save_list() -> bool:
        listed.write_bytes(await status_list(api, body["status_list"]["uri"]))
        return True

    await save_list()

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "sealgate.gateway.cli", "--home", str(demo.home), "verify-qr",
             *args, "--status-list", str(listed)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    by_picture = cli(str(picture), "--holder-id", "11010519491231002X")
    assert by_picture.returncode == 0, by_picture.stderr
    assert by_picture.stdout.startswith("VALID\t" + code.replace("-", ""))
    by_text = cli(body["payload"])
    assert by_text.returncode == 0, by_text.stderr
    wrong_holder = cli(body["payload"], "--holder-id", "110105194912310029")
    assert wrong_holder.returncode == 1 and "HolderMismatch" in wrong_holder.stderr
    text = body["payload"]
    one_off = text[:-5] + ("A" if text[-5] != "A" else "B") + text[-4:]
    altered = cli(one_off)
    assert altered.returncode == 1 and altered.stderr.startswith("INVALID")


async def test_verify_qr_against_the_served_root_signed_trust_document(
    api: Client, demo: Demo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A counter with no home of the gateway's: the city root (PEM), the JSON of
    GET /v1/trust and a status list, nothing else."""
    body = await qr(api, demo, code := await seal(api, demo))
    listed = tmp_path / "list.cwt"
    listed.write_bytes(await status_list(api, body["status_list"]["uri"]))
    served = await api.get("/v1/trust")
    assert served.status == 200
    trust = await served.read()
    city_root = tmp_path / "root.pem"
    city_root.write_bytes((demo.home / "root.pem").read_bytes())

    def verify_qr_cli(payload: str, document: bytes, roots: Path = city_root) -> tuple[int, str]:
        path = tmp_path / "trust.json"
        path.write_bytes(document)
        status = main(
            ["--home", str(tmp_path / "counter"), "verify-qr", payload, "--trust-document",
             str(path), "--roots", str(roots), "--status-list", str(listed)]
        )  # fmt: skip
        out = capsys.readouterr()
        return status, out.out + out.err

    status, said = verify_qr_cli(body["payload"], trust)
    assert status == 0 and said.startswith("VALID\t" + code.replace("-", "") + "\t"), said

    # one byte altered: the QR key's kid pointed elsewhere
    kid = json.loads(trust)["document"]["keys"][0]["kid"].encode()
    at = trust.index(kid)
    altered = trust[:at] + (b"A" if kid[:1] != b"A" else b"B") + trust[at + 1 :]
    status, said = verify_qr_cli(body["payload"], altered)
    assert status == 1 and said.startswith("INVALID: TrustDocumentError"), said
    assert "signature does not verify" in said

    # the same document signed by another root: refused against the city's, and read
    # under that root only by whoever trusts it
    other = make_pki()
    pending = PendingTrustDocument(json.loads(trust)["document"], other.root)
    foreign = pending.finish(other.root_signer.sign(pending.digest))
    status, said = verify_qr_cli(body["payload"], foreign)
    assert status == 1 and "not signed by a trusted root" in said, said
    other_root = tmp_path / "other.pem"
    other_root.write_text(certificate_pem(other.root))
    assert verify_qr_cli(body["payload"], foreign, other_root)[0] == 0

    # a payload signed by a key the document does not list
    forger = Key(Use.QR)
    claims = read_payload(body["payload"], trust_of(demo), now=_now())
    forged = encode_payload(forger.sign(prepare_payload(claims, forger.trusted.kid)))
    status, said = verify_qr_cli(forged, trust)
    assert status == 1 and said.startswith("INVALID: UntrustedKey"), said


def _now() -> float:
    return time.time()


async def test_a_dynamic_payload_is_refused_once_its_lifetime_is_over(
    demo: Demo, gateway_client: GatewayClient
) -> None:
    clock = Clock(time.time())
    settings = dataclasses.replace(demo.settings, qr_lifetime=60.0)
    api = await gateway_client(create_app(settings, clock=clock))
    body = await qr(api, demo, await seal(api, demo))
    path = "/v1/verify/qr/" + urllib.parse.quote(body["payload"], safe="")
    verifier = demo.auth(Role.VERIFIER)
    assert (await api.get(path, headers=verifier)).status == 200
    clock.now += 60
    late = await api.get(path, headers=verifier)
    assert late.status == 422 and (await late.json())["code"] == "qr-expired"
