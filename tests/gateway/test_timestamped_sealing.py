"""Sealing with a real TSA (`sealgate tsa serve`): every proof CAdES-B-T, checked by
`openssl ts -verify`, pyHanko's ETSI validation with time, verify-file and the document
check; a TSA that cannot stamp is 503 with nothing sealed."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from asn1crypto import cms, core
from asn1crypto import x509 as asn1_x509

from sealgate.bench.processes import free_port
from sealgate.bench.tsa_server import TsaServer
from sealgate.crypto.assessment import TIMESTAMP
from sealgate.crypto.attributes import OID_SIGNATURE_TIME_STAMP_TOKEN
from sealgate.crypto.timestamps import Timestamp, verify_token
from sealgate.crypto.verification import TrustList, verify_proof
from sealgate.gateway.app import create_app
from sealgate.gateway.config_file import load_settings
from sealgate.gateway.home import HomeError
from sealgate.gateway.instants import rfc3339
from sealgate.gateway.timestamping import Timestamper, TsaUnavailable
from sealgate.verify.directory import Role
from tests.gateway.conftest import Demo, GatewayClient, proof_request
from tests.gateway.test_sealing import openssl_verify, verify_file


@pytest.fixture(scope="module")
def stamping(demo: Demo, tsa_server: TsaServer) -> Iterator[Demo]:
    """The module's demo home trusting the suite's TSA, its settings naming it."""
    tsa_server.trusted_by(demo.home)
    yield Demo(dataclasses.replace(demo.settings, tsa_url=tsa_server.url), demo.credentials)
    (demo.home / "tsa-roots.pem").unlink()


@pytest.fixture
async def stamped_api(stamping: Demo, gateway_client: GatewayClient) -> TestClient[Any, Any]:
    return await gateway_client(create_app(stamping.settings))


TS_VERIFY = ("openssl", "ts", "-verify", "-token_in")


def signer_of(der: bytes) -> cms.SignerInfo:
    signer: cms.SignerInfo = cms.ContentInfo.load(der)["content"]["signer_infos"][0]
    return signer


def token_of(der: bytes) -> bytes:
    """The one signature timestamp token of a proof (its only unsigned attribute)."""
    attributes = signer_of(der)["unsigned_attrs"]
    assert [a["type"].dotted for a in attributes] == [OID_SIGNATURE_TIME_STAMP_TOKEN]
    token: bytes = attributes[0]["values"][0].dump()
    return token


def stamp_of(der: bytes, trust: TrustList, tsa_trust: TrustList) -> Timestamp:
    """The verified signature timestamp of a proof that verifies."""
    verified = verify_proof(der, trust)
    assert verified.timestamp_token is not None
    return verify_token(verified.timestamp_token, verified.signature, tsa_trust)


async def seal_batch(api: TestClient[Any, Any], demo: Demo, n: int, **headers: str) -> Any:
    return await api.post(
        "/v1/certificates",
        json={"items": [proof_request(demo.proof_seal, content={"n": i}) for i in range(n)]},
        headers={**demo.auth(Role.SIGNER), **headers},
    )


async def test_each_proof_of_a_batch_carries_a_timestamp_openssl_verifies(
    stamped_api: TestClient[Any, Any], stamping: Demo, tsa_server: TsaServer, tmp_path: Path
) -> None:
    response = await seal_batch(stamped_api, stamping, 12)
    assert response.status == 201, await response.text()
    documents = [base64.b64decode(item["document"]) for item in (await response.json())["items"]]
    tsa_trust = TrustList.from_pem(tsa_server.root_path.read_bytes())
    trust = TrustList.from_pem(stamping.settings.root_certificate_path.read_bytes())
    tsa_root, root = tsa_server.root_path, stamping.settings.root_certificate_path
    serials = set()
    for der in documents:
        token = tmp_path / "token.der"
        token.write_bytes(token_of(der))
        imprint = hashlib.sha256(signer_of(der)["signature"].native).hexdigest()
        checked = subprocess.run(
            [*TS_VERIFY, "-in", str(token), "-digest", imprint, "-CAfile", str(tsa_root)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert checked.returncode == 0, checked.stderr
        assert "Verification: OK" in checked.stdout
        # The unsigned attribute leaves the CMS signature alone.
        assert openssl_verify(der, root, tmp_path).returncode == 0
        verified = verify_proof(der, trust)
        stamp = stamp_of(der, trust, tsa_trust)
        assert stamp.tsa_name == "sealgate development TSA"
        assert verified.signing_time <= stamp.gen_time
        serials.add(stamp.serial)
    assert len(serials) == 12
    # A token of one proof does not fit another's signature.
    wrong = tmp_path / "wrong.der"
    wrong.write_bytes(token_of(documents[0]))
    other = hashlib.sha256(signer_of(documents[1])["signature"].native).hexdigest()
    refused = subprocess.run(
        [*TS_VERIFY, "-in", str(wrong), "-digest", other, "-CAfile", str(tsa_root)],
        capture_output=True,
        check=False,
    )
    assert refused.returncode != 0


async def test_verify_file_and_the_document_check_judge_at_the_timestamp(
    stamped_api: TestClient[Any, Any],
    stamping: Demo,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    response = await stamped_api.post(
        "/v1/certificates",
        json=proof_request(stamping.proof_seal),
        headers=stamping.auth(Role.SIGNER),
    )
    assert response.status == 201, await response.text()
    der = base64.b64decode((await response.json())["document"])
    assert verify_file(der, stamping, tmp_path) == 0  # the home's tsa-roots.pem
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("VALID\t")
    assert f"checked\ttime\t{TIMESTAMP}" in lines
    checked = await stamped_api.post(
        "/v1/verify/document?purpose=demo", data=der, headers=stamping.auth(Role.VERIFIER)
    )
    assert checked.status == 200, await checked.text()
    answer = await checked.json()
    assert answer["seal"] == "valid"
    assert answer["checked"]["time"] == TIMESTAMP
    trust = TrustList.from_pem(stamping.settings.root_certificate_path.read_bytes())
    tsa_trust = TrustList.from_pem((stamping.home / "tsa-roots.pem").read_bytes())
    assert answer["judged_at"] == rfc3339(stamp_of(der, trust, tsa_trust).gen_time.timestamp())


async def test_pyhanko_etsi_validation_with_time_passes(
    stamped_api: TestClient[Any, Any], stamping: Demo, tsa_server: TsaServer
) -> None:
    from asn1crypto import crl as asn1_crl
    from pyhanko.sign.ades.report import AdESPassed
    from pyhanko.sign.validation.ades import ades_with_time_validation
    from pyhanko.sign.validation.policy_decl import (
        LocalKnowledge,
        RevinfoOnlineFetchingRule,
        RevocationInfoGatheringSpec,
        SignatureValidationSpec,
    )
    from pyhanko_certvalidator.context import CertValidationPolicySpec
    from pyhanko_certvalidator.policy_decl import (
        NO_REVOCATION,
        CertRevTrustPolicy,
        RevocationCheckingPolicy,
        RevocationCheckingRule,
    )
    from pyhanko_certvalidator.registry import SimpleTrustManager
    from pyhanko_certvalidator.revinfo.archival import CRLContainer

    def policy(root_pem: Path, revocation: RevocationCheckingPolicy) -> CertValidationPolicySpec:
        root = TrustList.from_pem(root_pem.read_bytes()).roots[0]
        return CertValidationPolicySpec(
            trust_manager=SimpleTrustManager.build(trust_roots=[asn1_x509.Certificate.load(root)]),
            revinfo_policy=CertRevTrustPolicy(revocation),
        )

    # The seal certificate is checked against the city root's CRL (GET /v1/crl), supplied
    # here: nothing is fetched. The development TSA publishes none.
    crl_required = RevocationCheckingPolicy(
        ee_certificate_rule=RevocationCheckingRule.CRL_REQUIRED,
        intermediate_ca_cert_rule=RevocationCheckingRule.NO_CHECK,
    )
    known_crl = CRLContainer(asn1_crl.CertificateList.load(stamping.settings.crl_path.read_bytes()))

    response = await stamped_api.post(
        "/v1/certificates",
        json=proof_request(stamping.proof_seal),
        headers=stamping.auth(Role.SIGNER),
    )
    der = base64.b64decode((await response.json())["document"])
    spec = SignatureValidationSpec(
        cert_validation_policy=policy(stamping.settings.root_certificate_path, crl_required),
        ts_cert_validation_policy=policy(tsa_server.root_path, NO_REVOCATION),
        local_knowledge=LocalKnowledge(known_crls=[known_crl]),
        revinfo_gathering_policy=RevocationInfoGatheringSpec(
            online_fetching_rule=RevinfoOnlineFetchingRule.LOCAL_ONLY
        ),
    )
    result = await ades_with_time_validation(cms.ContentInfo.load(der)["content"], spec)
    assert result.ades_subindic is AdESPassed.OK
    status = result.api_status
    assert status is not None and status.valid and status.intact
    assert status.timestamp_validity is not None and status.timestamp_validity.valid
    stamp = stamp_of(
        der,
        TrustList.from_pem(stamping.settings.root_certificate_path.read_bytes()),
        TrustList.from_pem(tsa_server.root_path.read_bytes()),
    )
    assert result.best_signature_time == stamp.gen_time


async def test_a_tsa_that_is_down_is_503_and_nothing_is_sealed(
    stamping: Demo, gateway_client: GatewayClient
) -> None:
    closed = f"http://127.0.0.1:{free_port()}/"  # nothing listens there
    down = await gateway_client(create_app(dataclasses.replace(stamping.settings, tsa_url=closed)))
    key = {"Idempotency-Key": "tsa-down-1"}
    refused = await seal_batch(down, stamping, 3, **key)
    assert refused.status == 503
    assert refused.headers["Retry-After"] == "5"
    assert (await refused.json())["code"] == "tsa-unavailable"
    # Nothing was registered under the key: the same request seals afresh once the TSA is
    # back (a replay would say Idempotent-Replayed).
    up = await gateway_client(create_app(stamping.settings))
    sealed = await seal_batch(up, stamping, 3, **key)
    assert sealed.status == 201, await sealed.text()
    assert "Idempotent-Replayed" not in sealed.headers


async def test_tokens_of_a_tsa_the_home_does_not_trust_are_not_embedded(
    stamping: Demo, tsa_server: TsaServer
) -> None:
    city_root = TrustList.from_pem(stamping.settings.root_certificate_path.read_bytes())
    async with Timestamper(tsa_server.url, city_root) as stamper:
        with pytest.raises(TsaUnavailable, match="does not verify"):
            await stamper.stamp([b"signature"])
    trusted = TrustList.from_pem(tsa_server.root_path.read_bytes())
    async with Timestamper(tsa_server.url, trusted) as stamper:
        assert len(await stamper.stamp([b"one", b"two"])) == 2


def test_a_tsa_url_without_trusted_tsa_roots_is_refused(
    demo: Demo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(demo.home / "config.toml", home / "config.toml")
    monkeypatch.setenv("SEALGATE_TSA_URL", "http://127.0.0.1:9/")
    with pytest.raises(HomeError, match=r"tsa-roots\.pem"):
        load_settings(home)
    monkeypatch.setenv("SEALGATE_TSA_URL", "ftp://127.0.0.1/")
    with pytest.raises(HomeError, match="http"):
        load_settings(home)


async def test_each_answer_says_whether_its_proofs_are_timestamped(
    stamped_api: TestClient[Any, Any], stamping: Demo, api: TestClient[Any, Any]
) -> None:
    key = {"Idempotency-Key": "marked-1"}
    stamped = await seal_batch(stamped_api, stamping, 2, **key)
    assert stamped.headers["Sealgate-Timestamped"] == "true"
    again = await seal_batch(stamped_api, stamping, 2, **key)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Sealgate-Timestamped"] == "true"
    plain = await seal_batch(api, stamping, 1)  # the home's own settings: no TSA
    assert plain.status == 201
    assert plain.headers["Sealgate-Timestamped"] == "false"
    document = base64.b64decode((await plain.json())["items"][0]["document"])
    assert isinstance(signer_of(document)["unsigned_attrs"], core.Void)


async def test_a_city_may_seal_without_timestamps_when_its_tsa_is_down_marked(
    stamping: Demo, gateway_client: GatewayClient
) -> None:
    closed = f"http://127.0.0.1:{free_port()}/"
    settings = dataclasses.replace(stamping.settings, tsa_url=closed, seal_untimestamped=True)
    down = await gateway_client(create_app(settings))
    key = {"Idempotency-Key": "fallback-1"}
    sealed = await seal_batch(down, stamping, 2, **key)
    assert sealed.status == 201, await sealed.text()
    assert sealed.headers["Sealgate-Timestamped"] == "false"
    for item in (await sealed.json())["items"]:
        assert isinstance(
            signer_of(base64.b64decode(item["document"]))["unsigned_attrs"], core.Void
        )
    replayed = await seal_batch(down, stamping, 2, **key)
    assert replayed.headers["Sealgate-Timestamped"] == "false"


def test_the_city_chooses_what_a_tsa_outage_does(
    demo: Demo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(demo.home / "config.toml", home / "config.toml")
    assert load_settings(home).seal_untimestamped is False  # the default: 503
    monkeypatch.setenv("SEALGATE_TSA_UNAVAILABLE", "seal-untimestamped")
    assert load_settings(home).seal_untimestamped is True
    monkeypatch.setenv("SEALGATE_TSA_UNAVAILABLE", "seal-anyway")
    with pytest.raises(HomeError, match="tsa_unavailable"):
        load_settings(home)
