"""Sealing through the HTTP API, checked by OpenSSL and by `sealgate verify-file`."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from sealgate.crypto.attributes import OID_SIGNING_CERTIFICATE_V2
from sealgate.crypto.canonical import canonical_json
from sealgate.crypto.proof import OID_VERIFICATION_CODE
from sealgate.crypto.verification import TrustList, verify_proof
from sealgate.gateway.cli import main as sealgate
from sealgate.gateway.instants import rfc3339
from sealgate.gateway.requests import EndorsementRequest, ProofRequest
from sealgate.gateway.sealing import document_json, format_code, proofs_json
from sealgate.verify.code import parse_code
from sealgate.verify.directory import Role, Seal, SealKind
from sealgate.verify.holders import HolderKind
from sealgate.verify.registry import ProofRecord, Status
from tests.gateway.conftest import Demo, proof_request


def openssl_verify(der: bytes, root: Path, tmp_path: Path) -> subprocess.CompletedProcess[bytes]:
    path = tmp_path / "proof.der"
    path.write_bytes(der)
    return subprocess.run(
        [
            "openssl",
            "cms",
            "-verify",
            "-inform",
            "DER",
            "-in",
            str(path),
            "-CAfile",
            str(root),
        ],
        capture_output=True,
        check=False,
    )


def verify_file(der: bytes, demo: Demo, tmp_path: Path) -> int:
    path = tmp_path / "proof-cli.der"
    path.write_bytes(der)
    return sealgate(["--home", str(demo.home), "verify-file", str(path)])


async def seal(api: TestClient[Any, Any], demo: Demo, **overrides: Any) -> dict[str, Any]:
    response = await api.post(
        "/v1/certificates",
        json=proof_request(demo.proof_seal, **overrides),
        headers=demo.auth(Role.SIGNER),
    )
    assert response.status == 201, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def test_sealed_proof_passes_openssl_and_carries_the_canonical_proof(
    api: TestClient[Any, Any], demo: Demo, tmp_path: Path
) -> None:
    body = await seal(api, demo)
    assert body["status"] == "valid"
    assert body["seal_id"] == demo.proof_seal
    parse_code(body["code"])
    der = base64.b64decode(body["document"])

    result = openssl_verify(der, demo.settings.root_certificate_path, tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    content = json.loads(result.stdout)
    assert content["code"] == body["code"]
    assert content["holder"] == {"kind": "person", "id": "11010519491231002X", "name": "张三"}
    assert content["issuer"] == {"unit_name": "益阳市公安局", "unit_code": "11430900006151330B"}
    assert "endorsement" not in content  # only a request's answer carries one
    # Canonical JSON (RFC 8785): keys sorted, no whitespace.
    assert (
        result.stdout
        == json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    )
    assert verify_file(der, demo, tmp_path) == 0

    printed = subprocess.run(
        [
            "openssl",
            "cms",
            "-cmsout",
            "-print",
            "-inform",
            "DER",
            "-in",
            str(tmp_path / "proof.der"),
        ],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    assert f"({OID_VERIFICATION_CODE})" in printed
    assert "signingCertificateV2" in printed or OID_SIGNING_CERTIFICATE_V2 in printed
    assert body["code"] in printed


async def test_a_signer_cannot_type_an_endorsement(api: TestClient[Any, Any], demo: Demo) -> None:
    """Its units come from a verification request (tests/gateway/test_requests.py), never
    from the signer, who could name any unit there."""
    typed = {"extracting_unit": "益阳市人社局", "verifying_unit": "益阳市公安局"}
    for body in (
        proof_request(demo.proof_seal, endorsement=typed),
        {"items": [proof_request(demo.proof_seal), proof_request(demo.proof_seal, endorsement={})]},
    ):
        response = await api.post("/v1/certificates", json=body, headers=demo.auth(Role.SIGNER))
        assert response.status == 422
        refused = await response.json()
        assert refused["code"] == "endorsement-not-typed"
        assert refused["field"] in ("endorsement", "items[1].endorsement")


ID_DATA = bytes.fromhex("06092a864886f70d010701")
ECDSA_WITH_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")
VERSION_1 = bytes.fromhex("020101")


@pytest.mark.slow  # openssl and verify-file for every third byte
async def test_any_changed_byte_fails_openssl_and_verify_file(
    api: TestClient[Any, Any], demo: Demo, tmp_path: Path
) -> None:
    """Every content byte: both refuse. Elsewhere: verify-file refuses every change, and
    OpenSSL 3.0 every change but in four fields no signature covers, which it does not
    check: the SignedData and SignerInfo version numbers, eContentType (not compared
    with the signed content-type), and the SignerInfo's signatureAlgorithm (it goes by
    the key).
    """
    body = await seal(api, demo)
    der = base64.b64decode(body["document"])
    content = openssl_verify(der, demo.settings.root_certificate_path, tmp_path).stdout
    start = der.find(content)
    assert start > 0
    content_positions = set(range(start, start + len(content)))
    e_content_type = der.index(ID_DATA)
    signature_algorithm = der.rindex(ECDSA_WITH_SHA256)
    trust = TrustList.from_pem(demo.settings.root_certificate_path.read_bytes())
    seal_certificate = verify_proof(der, trust).seal_certificate_der  # the key may be rotated
    after_certificates = der.index(seal_certificate) + len(seal_certificate)
    lenient = {
        der.index(VERSION_1) + 2,  # SignedData version
        der.index(VERSION_1, after_certificates) + 2,  # SignerInfo version
        *range(e_content_type, e_content_type + len(ID_DATA)),
        *range(signature_algorithm, signature_algorithm + len(ECDSA_WITH_SHA256)),
    }
    openssl_accepted = []
    for position in sorted(content_positions | set(range(0, len(der), 3))):
        tampered = bytearray(der)
        tampered[position] ^= 0x01
        assert verify_file(bytes(tampered), demo, tmp_path) == 1, (
            f"verify-file accepted a change at byte {position}"
        )
        result = openssl_verify(bytes(tampered), demo.settings.root_certificate_path, tmp_path)
        if result.returncode == 0:
            openssl_accepted.append(position)
    assert not content_positions & set(openssl_accepted)
    assert set(openssl_accepted) <= lenient


async def test_verify_document_endpoint_reports_seal_and_status(
    api: TestClient[Any, Any], demo: Demo
) -> None:
    body = await seal(api, demo)
    der = base64.b64decode(body["document"])
    headers = {**demo.auth(Role.VERIFIER), "Content-Type": "application/pkcs7-mime"}
    response = await api.post("/v1/verify/document?purpose=demo", data=der, headers=headers)
    assert response.status == 200
    result = await response.json()
    assert result["seal"] == "valid"
    assert result["registered"] is True
    assert result["status"] == "valid"
    assert result["code"] == body["code"]

    tampered = bytearray(der)
    tampered[der.find(b"valid_from") + 15] ^= 0x01
    response = await api.post(
        "/v1/verify/document?purpose=demo", data=bytes(tampered), headers=headers
    )
    assert response.status == 422
    problem = await response.json()
    assert problem["code"] == "invalid-proof"


async def test_document_download_is_the_registered_der(
    api: TestClient[Any, Any], demo: Demo
) -> None:
    body = await seal(api, demo)
    response = await api.get(
        f"/v1/certificates/{body['code']}/document?purpose=demo", headers=demo.auth(Role.VERIFIER)
    )
    assert response.status == 200
    assert response.content_type == "application/pkcs7-mime"
    assert await response.read() == base64.b64decode(body["document"])
    # The issuing office may fetch its own proof without a purpose.
    response = await api.get(
        f"/v1/certificates/{body['code']}/document", headers=demo.auth(Role.ISSUER)
    )
    assert response.status == 200


async def test_batch_seals_every_item_in_one_registration(
    api: TestClient[Any, Any], demo: Demo, tmp_path: Path
) -> None:
    registry = demo.settings.open_registry()
    before = await registry.count()
    items = [proof_request(demo.proof_seal, content={"n": i}) for i in range(50)]
    items[7]["seal_id"] = demo.verification_seal
    response = await api.post(
        "/v1/certificates", json={"items": items}, headers=demo.auth(Role.SIGNER)
    )
    assert response.status == 201
    sealed = (await response.json())["items"]
    assert len(sealed) == 50
    assert len({s["code"] for s in sealed}) == 50
    assert sealed[7]["seal_id"] == demo.verification_seal
    assert await registry.count() == before + 50
    for item in (sealed[0], sealed[7]):
        result = openssl_verify(
            base64.b64decode(item["document"]), demo.settings.root_certificate_path, tmp_path
        )
        assert result.returncode == 0
    await registry.close()


@pytest.mark.parametrize("size", [1000])
async def test_batch_limit(api: TestClient[Any, Any], demo: Demo, size: int) -> None:
    registry = demo.settings.open_registry()
    before = await registry.count()
    items = [proof_request(demo.proof_seal, content={"n": i}) for i in range(size + 1)]
    response = await api.post(
        "/v1/certificates", json={"items": items}, headers=demo.auth(Role.SIGNER)
    )
    assert response.status == 400
    problem = await response.json()
    assert problem["field"] == "items"
    assert await registry.count() == before
    response = await api.post(
        "/v1/certificates", json={"items": items[:size]}, headers=demo.auth(Role.SIGNER)
    )
    assert response.status == 201
    assert await registry.count() == before + size
    await registry.close()


_codes = st.text(alphabet="0123456789ABCDEFGHJKMNPQRSTVWXYZ", min_size=24, max_size=24)
_seal_ids = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)
_records = st.builds(
    ProofRecord,
    code=_codes,
    seal_id=_seal_ids,
    unit_name=st.just("某市公安局"),
    unit_code=st.just("11430900MB1234567X"),
    type=st.just("无犯罪记录证明"),
    holder_kind=st.just("person"),
    holder_name_masked=st.just("张*"),
    holder_id_masked=st.just("1101**********002X"),
    holder_key=st.binary(min_size=32, max_size=32),
    valid_from=st.just("2026-01-01"),
    valid_until=st.none(),
    expires_at=st.none(),
    issued_at=st.integers(min_value=0, max_value=2**33).map(float),
    status=st.sampled_from(Status),
    status_changed_at=st.just(0.0),
    superseded_by=st.none(),
    signer_client=st.just("C-1"),
    document=st.binary(max_size=3000),
)


@given(
    st.lists(_records, min_size=1, max_size=5),
    st.booleans(),
    st.integers(min_value=0, max_value=2**33).map(float),
)
def test_written_answer_is_the_json_of_the_views(
    records: list[ProofRecord], batch: bool, at: float
) -> None:
    """The 201 body is written by hand for speed; it must be exactly this JSON, with each
    status as a verification at ``at`` shows it (valid_from 2026-01-01 falls in the
    range of ``at``, so both sides of a start are drawn)."""

    def view(proof: ProofRecord) -> dict[str, Any]:
        return {
            "code": format_code(proof.code),
            "status": proof.current_status(at).value,
            "issued_at": rfc3339(proof.issued_at),
            "seal_id": proof.seal_id,
            "document": base64.b64encode(proof.document).decode("ascii"),
        }

    codes = [format_code(r.code) for r in records]
    body = proofs_json(records, codes, batch=batch, at=at)
    expected: Any = {"items": [view(r) for r in records]} if batch else view(records[0])
    assert json.loads(body) == expected


# Any text a field could hold short of a lone surrogate (quotes, backslashes, control
# characters, astral planes): what the canonical form must escape, or must not.
_texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | _texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_texts, inner, max_size=3),
    max_leaves=8,
)
_requests = st.builds(
    ProofRequest,
    seal_id=_texts,
    type=_texts,
    holder_kind=st.sampled_from(HolderKind),
    holder_id=_texts,
    holder_name=_texts,
    content=st.dictionaries(
        _texts, _json_values | st.floats(allow_nan=False, allow_infinity=False), max_size=4
    ),
    valid_from=_texts,
    valid_until=st.none() | _texts,
    expires_at=st.none(),
    endorsement=st.none() | st.builds(EndorsementRequest, st.none() | _texts, st.none() | _texts),
)


@settings(max_examples=500, deadline=None)
@given(_requests, _texts, _texts, _texts, _texts, _texts)
def test_written_document_is_the_canonical_json_of_the_proof(
    request: ProofRequest, code: str, seal_id: str, unit_name: str, unit_code: str, issued_at: str
) -> None:
    """The sealed content is written member by member for speed; it must be exactly
    what canonicalising the whole proof object gives (floats in the content included,
    which take RFC 8785's number form)."""
    # the seal's id, not the request's: the document names the seal that signs
    seal = Seal(seal_id, SealKind.PROOF, unit_name, unit_code, 0.0, ())
    proof: dict[str, Any] = {
        "version": 1,
        "code": code,
        "type": request.type,
        "issuer": {"unit_name": unit_name, "unit_code": unit_code},
        "seal_id": seal.seal_id,
        "holder": {
            "kind": request.holder_kind.value,
            "id": request.holder_id,
            "name": request.holder_name,
        },
        "content": request.content,
        "valid_from": request.valid_from,
        "issued_at": issued_at,
    }
    if request.valid_until is not None:
        proof["valid_until"] = request.valid_until
    if (endorsement := request.endorsement) is not None:
        proof["endorsement"] = {"extracted_at": issued_at}
        if endorsement.extracting_unit is not None:
            proof["endorsement"]["extracting_unit"] = endorsement.extracting_unit
        if endorsement.verifying_unit is not None:
            proof["endorsement"]["verifying_unit"] = endorsement.verifying_unit
    assert document_json(code, request, seal, issued_at) == canonical_json(proof)
