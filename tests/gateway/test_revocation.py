"""The offline root and seal revocation, end to end on real tools (docs/design.md §5.2,
§7.2): the gateway's token holds no root key, ``sealgate seal revoke`` issues a CRL that
``openssl cms -verify -crl_check`` and ``verify-file --crl`` honour, the gateway serves it
and judges presented proofs by it, and a retired or revoked key forges nothing."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from sealgate.bench.tsa_server import TsaServer
from sealgate.crypto.canonical import canonical_json
from sealgate.crypto.certificates import certificate_pem
from sealgate.crypto.proof import ProofSealer
from sealgate.crypto.verification import TrustList, verify_proof
from sealgate.gateway.app import create_app
from sealgate.gateway.keys import SIGNING
from sealgate.gateway.provision import ROOT_KEY_LABEL, Provisioner, init_home
from sealgate.hsm.errors import KeyNotAllowed
from sealgate.hsm.softhsm import SOFTHSM2_MODULE
from sealgate.verify.directory import KeyState, Role
from tests.gateway.conftest import Demo, GatewayClient, proof_request
from tests.gateway.serving import free_port, serving

SEALGATE = [sys.executable, "-m", "sealgate.gateway.cli"]

pytestmark = pytest.mark.processes  # the CLI, openssl and pkcs11-tool as programs


@pytest.fixture
def own(tmp_path: Path) -> Demo:
    """A demo home for one test: it revokes and rotates its seals."""
    settings, credentials = init_home(tmp_path / "home", demo=True)
    assert credentials is not None
    return Demo(settings, credentials)


def cli(demo: Demo, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SEALGATE, "--home", str(demo.home), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def with_root(demo: Demo, *args: str) -> subprocess.CompletedProcess[str]:
    done = cli(demo, *args, "--root-pin-file", str(demo.root_pin_file), "--operator", "ops-1")
    assert done.returncode == 0, done.stderr
    return done


def openssl_verify(
    demo: Demo, proof: bytes, *, crl_check: bool = False
) -> subprocess.CompletedProcess[bytes]:
    """``openssl cms -verify`` against the root; with ``crl_check``, and the home's CRL
    (as GET /v1/crl serves it, DER) beside the root in the CA file, where OpenSSL reads
    CRLs from."""
    path = demo.home.parent / "proof.der"
    path.write_bytes(proof)
    ca = demo.home.parent / "ca.pem"
    ca.write_bytes(demo.settings.root_certificate_path.read_bytes())
    check = []
    if crl_check:
        crl = base64.encodebytes(demo.settings.crl_path.read_bytes()).decode()
        with ca.open("a") as bundle:
            bundle.write(f"-----BEGIN X509 CRL-----\n{crl}-----END X509 CRL-----\n")
        check = ["-crl_check"]
    return subprocess.run(
        [
            "openssl", "cms", "-verify", "-inform", "DER", "-in", str(path),
            "-CAfile", str(ca), "-out", os.devnull, *check,
        ],
        capture_output=True,
        timeout=30,
        check=False,
    )  # fmt: skip


def verify_file(demo: Demo, proof: bytes, *extra: str) -> subprocess.CompletedProcess[str]:
    path = demo.home.parent / "presented.der"
    path.write_bytes(proof)
    return cli(demo, "verify-file", str(path), *extra)


def pkcs11_private_keys(demo: Demo, token: str, pin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "pkcs11-tool", "--module", SOFTHSM2_MODULE, "--token-label", token,
            "--login", "--pin", pin, "--list-objects", "--type", "privkey",
        ],
        env={**os.environ, "SOFTHSM2_CONF": str(demo.home / "softhsm" / "softhsm2.conf")},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )  # fmt: skip


async def seal(api: TestClient[Any, Any], demo: Demo, seal_id: str) -> dict[str, Any]:
    response = await api.post(
        "/v1/certificates", json=proof_request(seal_id), headers=demo.auth(Role.SIGNER)
    )
    assert response.status == 201, await response.text()
    answer: dict[str, Any] = await response.json()
    return answer


async def check_document(api: TestClient[Any, Any], demo: Demo, proof: bytes) -> Any:
    response = await api.post(
        "/v1/verify/document?purpose=demo",
        data=proof,
        headers={**demo.auth(Role.VERIFIER), "Content-Type": "application/pkcs7-mime"},
    )
    return response.status, await response.json()


def test_the_gateway_token_holds_no_root_key_and_the_serving_gateway_no_root_pin(
    own: Demo,
) -> None:
    gateway_pin = own.settings.read_secret("token-pin").decode()
    listed = pkcs11_private_keys(own, own.settings.token_label, gateway_pin)
    assert listed.returncode == 0, listed.stderr
    assert "sealgate-audit-1" in listed.stdout and "seal-SEAL-" in listed.stdout
    assert ROOT_KEY_LABEL not in listed.stdout
    # The root's token: its key is there, under its own PIN, which the gateway's is not.
    root_token = own.settings.root_token_label
    assert ROOT_KEY_LABEL in pkcs11_private_keys(own, root_token, own.credentials.root_pin).stdout
    refused = pkcs11_private_keys(own, root_token, gateway_pin)
    assert refused.returncode != 0 and "CKR_PIN_INCORRECT" in refused.stderr
    pin = own.credentials.root_pin.encode()
    assert not [p for p in own.home.rglob("*") if p.is_file() and pin in p.read_bytes()]

    port = free_port()
    with serving(own.home, port) as server:
        session = subprocess.run(
            ["pgrep", "-s", str(server.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        assert len(session) >= 3  # supervisor, worker, signing process (and audit writer)
        for pid in session:
            for what in ("environ", "cmdline"):
                assert pin not in Path(f"/proc/{pid}/{what}").read_bytes()


async def test_a_revoked_seals_proof_is_refused_by_openssl_crl_check_and_accepted_without(
    own: Demo, gateway_client: GatewayClient
) -> None:
    api = await gateway_client(create_app(own.settings))
    sealed = await seal(api, own, own.proof_seal)
    proof = base64.b64decode(sealed["document"])
    served = await api.get("/v1/crl")
    assert served.status == 200 and served.content_type == "application/pkix-crl"
    assert served.headers["Cache-Control"] == "public, max-age=60"
    assert await served.read() == own.settings.crl_path.read_bytes()
    await api.close()

    # The seal certificate names where its CRL is published.
    seal_der = verify_proof(
        proof, TrustList.from_pem(own.settings.root_certificate_path.read_bytes())
    ).seal_certificate_der
    shown = subprocess.run(
        ["openssl", "x509", "-inform", "DER", "-noout", "-ext", "crlDistributionPoints"],
        input=seal_der,
        capture_output=True,
        check=False,
    )
    assert b"URI:http://127.0.0.1:8080/v1/crl" in shown.stdout
    assert openssl_verify(own, proof, crl_check=True).returncode == 0

    time.sleep(1)  # revoked in a later second than the proof's issue (the CRL's resolution)
    revoked = with_root(own, "seal", "revoke", own.proof_seal, "--reason", "keyCompromise")
    assert f"revoked\t{own.proof_seal}\tv1\tkeyCompromise" in revoked.stdout
    assert "crl\t2\t" in revoked.stdout
    refused = openssl_verify(own, proof, crl_check=True)
    assert refused.returncode != 0 and b"certificate revoked" in refused.stderr
    assert openssl_verify(own, proof).returncode == 0  # without -crl_check: the signature holds

    checked = verify_file(own, proof, "--crl", str(own.settings.crl_path))
    assert checked.returncode == 1 and "SealRevoked" in checked.stderr
    unchecked = verify_file(own, proof)
    assert unchecked.returncode == 0
    assert "checked\trevocation\tnot checked offline" in unchecked.stdout

    api = await gateway_client(create_app(own.settings))
    served = await api.get("/v1/crl")
    assert served.headers["ETag"] == '"crl-2"'
    assert await served.read() == own.settings.crl_path.read_bytes()
    # Registered before its seal was revoked: the registry's record of issue is a time the
    # gateway vouches for, so the proof stands, and the answer says what was checked.
    status, answer = await check_document(api, own, proof)
    assert status == 200 and answer["seal"] == "valid" and answer["registered"] is True
    assert answer["checked"]["revocation"].startswith("revoked only as of ")
    assert "after the time judged (the seal directory as of " in answer["checked"]["revocation"]
    # The revoked seal seals nothing more.
    refusal = await api.post(
        "/v1/certificates", json=proof_request(own.proof_seal), headers=own.auth(Role.SIGNER)
    )
    assert refusal.status == 503 and (await refusal.json())["code"] == "seal-revoked"


async def test_a_compromised_key_forges_nothing_after_its_compromise_date(
    own: Demo, gateway_client: GatewayClient
) -> None:
    api = await gateway_client(create_app(own.settings))
    genuine = base64.b64decode((await seal(api, own, own.verification_seal))["document"])
    await api.close()
    # The compromise is dated (in whole seconds, as the CRL has it) after the genuine
    # proof's issue, and not in the future.
    time.sleep(2)
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=0.5)
    with_root(
        own, "seal", "revoke", own.verification_seal, "--reason", "keyCompromise",
        "--since", since.isoformat(),
    )  # fmt: skip

    # The thief's proof: the stolen key (still in the token until purged) signs altered
    # content, dated after the compromise.
    key = next(k for k in own.credentials.seals if k.seal_id == own.verification_seal).active_key
    sealer = ProofSealer(key.certificate)
    pending = sealer.prepare(
        canonical_json({"结论": "伪造"}),
        code="430900-ZDXE31-DD2417-Z7GDVP",
        seal_id=own.verification_seal,
        signing_time=dt.datetime.now(dt.UTC).replace(microsecond=0),
    )
    with Provisioner(own.settings).keystore() as keystore:
        forged = pending.finish(keystore.sign_digest(key.key_label, pending.digest))
    crl = ("--crl", str(own.settings.crl_path))
    assert verify_file(own, forged).returncode == 0  # the signature alone holds
    refused = verify_file(own, forged, *crl)
    assert refused.returncode == 1 and "SealRevoked" in refused.stderr
    # Offline, the genuine proof's own signing time cannot show it came first.
    assert "only a trusted time" in verify_file(own, genuine, *crl).stderr

    api = await gateway_client(create_app(own.settings))
    status, answer = await check_document(api, own, forged)
    assert status == 422 and answer["reason"] == "SealRevoked"
    status, answer = await check_document(api, own, genuine)
    assert status == 200 and answer["registered"] is True

    purged = cli(own, "seal", "purge", "--operator", "ops-1")
    assert f"destroyed\t{own.verification_seal}\tv1" in purged.stdout
    with Provisioner(own.settings).keystore() as keystore:
        left = keystore.keys()
    assert key.key_label not in [info.label for info in left]


async def test_a_retired_key_is_destroyed_at_rotation_or_refused_by_the_signing_process(
    own: Demo, gateway_client: GatewayClient
) -> None:
    old = {s.seal_id: s.active_key.key_label for s in own.credentials.seals}
    gateway_pin = own.settings.read_secret("token-pin").decode()

    with_root(own, "seal", "rotate", own.proof_seal)  # no grace: destroyed at once
    listed = pkcs11_private_keys(own, own.settings.token_label, gateway_pin).stdout
    assert old[own.proof_seal] not in listed

    with_root(own, "seal", "rotate", own.verification_seal, "--grace", "3600")
    listed = pkcs11_private_keys(own, own.settings.token_label, gateway_pin).stdout
    assert old[own.verification_seal] in listed  # kept for its grace period
    directory = Provisioner(own.settings).directory()
    retired, active = directory.seal(own.verification_seal).keys
    directory.close()
    assert retired.state is KeyState.RETIRED and retired.retired_at == active.created_at
    assert retired.destroy_after == pytest.approx(active.created_at + 3600)

    api = await gateway_client(create_app(own.settings))
    signing = api.app[SIGNING]
    digest = hashlib.sha256(b"a forgery").digest()
    with pytest.raises(KeyNotAllowed):
        await signing.sign_digest(retired.key_label, digest)
    with pytest.raises(KeyNotAllowed):  # nor any other key of the token
        await signing.sign_digest(ROOT_KEY_LABEL, digest)
    assert await signing.sign_digest(active.key_label, digest)
    # Sealing goes on with the new key.
    sealed = await seal(api, own, own.verification_seal)
    roots = TrustList.from_pem(own.settings.root_certificate_path.read_bytes())
    assert verify_proof(base64.b64decode(sealed["document"]), roots).seal_certificate_der == (
        active.certificate
    )
    assert certificate_pem(active.certificate) in (
        await (await api.get("/v1/trust")).text()
    ).replace("\\n", "\n")


async def test_readiness_names_a_crl_out_of_date_without_turning_unready(
    own: Demo, gateway_client: GatewayClient
) -> None:
    api = await gateway_client(create_app(own.settings))
    ready = await (await api.get("/readyz")).json()
    assert ready["checks"]["crl"] == "ok"
    await api.close()
    directory = Provisioner(own.settings).directory()
    issued = directory.latest_crl()
    assert issued is not None
    # The operators did not issue the next one in time.
    past = time.time() - 3600
    directory.add_crl(
        dataclasses.replace(issued, number=9, this_update=past - 60, next_update=past)
    )
    directory.close()
    api = await gateway_client(create_app(own.settings))
    response = await api.get("/readyz")
    ready = await response.json()
    assert response.status == 200 and ready["ready"]
    assert ready["checks"]["crl"].startswith("out of date since ")
    assert ready["checks"]["crl"].endswith("run sealgate crl issue")


async def test_a_timestamp_before_the_compromise_keeps_a_proof_valid_offline(
    own: Demo, gateway_client: GatewayClient, tsa_server: TsaServer
) -> None:
    """With trusted time (CAdES-B-T), the compromise date is honoured offline too: a proof
    timestamped before it stands against the CRL, while the same seal's untimestamped
    proof (its signing time the signer's word) is refused."""
    tsa_server.trusted_by(own.home)
    stamped = dataclasses.replace(own.settings, tsa_url=tsa_server.url)
    api = await gateway_client(create_app(stamped))
    timestamped = base64.b64decode((await seal(api, own, own.proof_seal))["document"])
    await api.close()
    api = await gateway_client(create_app(own.settings))  # a gateway without its TSA: B-B
    bare = base64.b64decode((await seal(api, own, own.proof_seal))["document"])
    await api.close()
    time.sleep(2)  # the compromise is dated (in whole seconds) after both proofs
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=0.5)
    with_root(
        own, "seal", "revoke", own.proof_seal, "--reason", "keyCompromise",
        "--since", since.isoformat(),
    )  # fmt: skip
    crl = ("--crl", str(own.settings.crl_path))
    kept = verify_file(own, timestamped, *crl)  # the home's tsa-roots.pem checks the token
    assert kept.returncode == 0, kept.stderr
    assert "checked\ttime\tRFC 3161 signature timestamp" in kept.stdout
    assert "checked\trevocation\trevoked only as of " in kept.stdout
    refused = verify_file(own, bare, *crl)
    assert refused.returncode == 1 and "only a trusted time" in refused.stderr
    # openssl's -crl_check knows no compromise date: it refuses both
    assert openssl_verify(own, timestamped, crl_check=True).returncode != 0
