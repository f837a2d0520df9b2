"""POST /v1/verify/document tells the truth: a revoked proof shows ``revoked`` however it
was re-encoded, re-encodings no seal made are refused, a retired key's forgery is refused,
and the answer says what it checked. Real SoftHSM2 keys sign every proof and forgery."""

from __future__ import annotations

import base64
import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from asn1crypto import cms, core
from cryptography.hazmat.primitives.asymmetric import utils

from sealgate.crypto.algorithms import P256_ORDER
from sealgate.crypto.attributes import OID_SIGNATURE_TIME_STAMP_TOKEN
from sealgate.gateway.app import create_app
from sealgate.gateway.keys import CATALOG
from sealgate.gateway.provision import Provisioner
from sealgate.hsm.keystore import Keystore
from sealgate.verify.directory import Role
from tests.crypto.reseal import reseal, signed_at
from tests.gateway.clock import Clock
from tests.gateway.conftest import Demo, GatewayClient, proof_request

PRESENT = "/v1/verify/document?purpose=demo"


class TokenKey:
    """A seal key in the demo's SoftHSM2 token, signing as a forger with the token would
    (who makes S low, as sealgate does, so that only what the forgery says can fail)."""

    def __init__(self, keystore: Keystore, label: str) -> None:
        self._keystore, self._label = keystore, label

    def sign(self, digest: bytes) -> bytes:
        r, s = utils.decode_dss_signature(self._keystore.sign_digest(self._label, digest))
        return utils.encode_dss_signature(r, min(s, P256_ORDER - s))


@pytest.fixture
def keystore(demo: Demo) -> Iterator[Keystore]:
    with Provisioner(demo.settings).keystore() as keystore:
        yield keystore


@pytest.fixture
def clock() -> Clock:
    return Clock(time.time())


@pytest.fixture
async def api(demo: Demo, gateway_client: GatewayClient, clock: Clock) -> TestClient[Any, Any]:
    return await gateway_client(create_app(demo.settings, clock=clock))


async def seal(api: TestClient[Any, Any], demo: Demo, seal_id: str | None = None) -> dict[str, Any]:
    response = await api.post(
        "/v1/certificates",
        json=proof_request(seal_id or demo.proof_seal),
        headers=demo.auth(Role.SIGNER),
    )
    assert response.status == 201, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def present(api: TestClient[Any, Any], demo: Demo, der: bytes) -> tuple[int, Any]:
    headers = {**demo.auth(Role.VERIFIER), "Content-Type": "application/pkcs7-mime"}
    response = await api.post(PRESENT, data=der, headers=headers)
    return response.status, await response.json()


async def revoke(api: TestClient[Any, Any], demo: Demo, code: str) -> None:
    response = await api.post(
        f"/v1/certificates/{code}/status",
        json={"status": "revoked", "reason": "吊销: test"},
        headers=demo.auth(Role.ISSUER),
    )
    assert response.status == 200, await response.text()


def timestamped(der: bytes) -> bytes:
    """The proof with a signature time-stamp attribute added (a placeholder token: the
    one unsigned attribute a checker lets through, to its own check)."""
    token = cms.ContentInfo({"content_type": "data", "content": b"not a real token"}).dump()
    return reseal(der, unsigned=[(OID_SIGNATURE_TIME_STAMP_TOKEN, token)])


async def test_the_answer_says_what_was_checked(api: TestClient[Any, Any], demo: Demo) -> None:
    body = await seal(api, demo)
    status, answer = await present(api, demo, base64.b64decode(body["document"]))
    assert status == 200, answer
    assert answer["registered"] is True
    assert answer["status"] == "valid"
    assert answer["judged_at"] == answer["signing_time"]
    assert answer["checked"] == {
        "time": "signing-time, asserted by the signer",
        "retirement": "key active (the directory)",
        "revocation": "not checked offline",
        "registry": "registered: this is the proof registered under its code",
    }


async def test_a_revoked_proof_shows_revoked_however_re_encoded(
    api: TestClient[Any, Any], demo: Demo
) -> None:
    body = await seal(api, demo)
    der = base64.b64decode(body["document"])
    await revoke(api, demo, body["code"])

    status, answer = await present(api, demo, der)
    assert (status, answer["registered"], answer["status"]) == (200, True, "revoked")
    # An allowed re-encoding (another unsigned time-stamp): still this proof, still revoked.
    status, answer = await present(api, demo, timestamped(der))
    assert (status, answer["registered"], answer["status"]) == (200, True, "revoked")
    assert answer["checked"]["time"].endswith("(its timestamp token was not checked)")
    # Re-encodings sealgate never makes are refused outright, never "valid".
    for forged, why in (
        (reseal(der, flip_s=True), "high S"),
        (reseal(der, unsigned=[("1.2.3.4", core.Null().dump())]), "unsigned attribute"),
    ):
        status, problem = await present(api, demo, forged)
        assert status == 422, problem
        assert problem["code"] == "invalid-proof"
        assert why in problem["detail"]


async def test_another_proof_under_a_registered_code_says_so_and_its_status(
    api: TestClient[Any, Any], demo: Demo, keystore: Keystore
) -> None:
    """A seal key re-signing a registered code's attributes at another time: the seal holds,
    yet it is not the registered proof, and the code's status is still reported."""
    body = await seal(api, demo)
    await revoke(api, demo, body["code"])
    label = demo.settings.open_directory().seal(demo.proof_seal).active_key.key_label
    later = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(minutes=1)
    forged = reseal(
        base64.b64decode(body["document"]),
        TokenKey(keystore, label),
        attributes=signed_at(later),
    )
    status, answer = await present(api, demo, forged)
    assert status == 200, answer
    assert answer["registered"] is False
    assert answer["status"] == "revoked"
    assert answer["checked"]["registry"].startswith("not registered: its code is registered")


async def test_a_retired_key_cannot_forge_later_proofs(
    api: TestClient[Any, Any], demo: Demo, keystore: Keystore, clock: Clock
) -> None:
    """The issue's forgery: after a rotation, the old key (still in the token) signs with
    a later signing time; refused, while its earlier proofs keep verifying."""
    seal_id = demo.verification_seal
    body = await seal(api, demo, seal_id)
    der = base64.b64decode(body["document"])
    directory = demo.settings.open_directory()
    old_label = directory.seal(seal_id).active_key.key_label
    Provisioner(demo.settings).rotate_seal(keystore, directory, seal_id)
    api.server.app[CATALOG].refresh()
    clock.now = time.time() + 3600  # an hour after the rotation
    status, answer = await present(api, demo, der)
    assert status == 200, answer
    assert answer["checked"]["retirement"].startswith("key retired ")

    old_key = TokenKey(keystore, old_label)
    for when, why in (
        (dt.datetime.fromtimestamp(int(clock.now), dt.UTC), "SignedAfterRetirement"),
        (dt.datetime(2031, 11, 30, tzinfo=dt.UTC), "SignedInTheFuture"),
    ):
        forged = reseal(der, old_key, attributes=signed_at(when))
        status, problem = await present(api, demo, forged)
        assert (status, problem["reason"]) == (422, why), problem
