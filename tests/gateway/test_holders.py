"""The holder's own proofs, for the portal with the identity platform's signed assertion."""

from __future__ import annotations

import dataclasses
import json
import secrets
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from sealgate.bench.redis_server import RedisServer
from sealgate.crypto.jws import prepare_jws
from sealgate.crypto.key_trust import KeyTrust, TrustedKey, Use
from sealgate.gateway.app import create_app
from sealgate.gateway.holder_assertions import (
    ASSERTION_HEADER,
    ASSERTION_TYPE,
    PLATFORMS_FILE,
)
from sealgate.verify.directory import Role
from sealgate.verify.holders import resident_id_check
from tests.gateway.conftest import Demo, GatewayClient
from tests.gateway.test_status import change, seal

Client = TestClient[Any, Any]
HOLDER_ID = "11010519491231002X"


class Platform:
    """The city's identity platform, outside the gateway: a software key in this test."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.trusted = TrustedKey.from_der(der, [Use.HOLDER_ASSERTION])

    def assert_holder(self, holder_id: str, **overrides: Any) -> str:
        now = int(time.time())
        claims = {"iss": "ids", "aud": "sealgate", "sub": holder_id, "iat": now,
                  "exp": now + 120, "jti": secrets.token_hex(8), **overrides}  # fmt: skip
        pending = prepare_jws(self.trusted.kid, claims, typ=ASSERTION_TYPE)
        return pending.finish(self.key.sign(pending.digest, ec.ECDSA(Prehashed(hashes.SHA256()))))


@pytest.fixture(scope="module")
def platform(demo: Demo) -> Platform:
    platform = Platform()
    document = KeyTrust([platform.trusted]).document()
    (demo.home / PLATFORMS_FILE).write_text(json.dumps(document))
    return platform


@pytest.fixture
async def api(demo: Demo, platform: Platform, gateway_client: GatewayClient) -> Client:
    return await gateway_client(create_app(demo.settings))


def as_holder(demo: Demo, assertion: str) -> dict[str, str]:
    return {**demo.auth(Role.PORTAL), ASSERTION_HEADER: assertion}


async def test_a_holder_lists_and_downloads_their_own_proofs(
    api: Client, demo: Demo, platform: Platform
) -> None:
    mine = await seal(api, demo)
    ended = await seal(api, demo)
    assert (await change(api, demo, ended, "revoked")).status == 200
    someone = "11010519491231001" + resident_id_check("11010519491231001")
    theirs = await seal(api, demo, holder={"kind": "person", "id": someone, "name": "李四"})
    headers = as_holder(demo, platform.assert_holder(HOLDER_ID))
    listed = await api.get("/v1/holders/me/proofs", headers=headers)
    replayed = await api.get("/v1/holders/me/proofs", headers=headers)
    assert replayed.status == 403  # an assertion serves once
    headers = as_holder(demo, platform.assert_holder(HOLDER_ID))
    assert listed.status == 200
    items = {i["code"]: i["status"] for i in (await listed.json())["items"]}
    assert items[mine] == "valid" and items[ended] == "revoked" and theirs not in items
    headers = as_holder(demo, platform.assert_holder(HOLDER_ID))
    document = await api.get(f"/v1/holders/me/proofs/{mine}/document", headers=headers)
    assert document.status == 200
    assert HOLDER_ID.encode() in await document.read()  # the holder's own, in full
    headers = as_holder(demo, platform.assert_holder(HOLDER_ID))
    other = await api.get(f"/v1/holders/me/proofs/{theirs}/document", headers=headers)
    assert other.status == 404


async def test_an_assertion_must_be_the_platforms_current_and_for_the_gateway(
    api: Client, demo: Demo, platform: Platform
) -> None:
    path = "/v1/holders/me/proofs"
    assert (await api.get(path, headers=demo.auth(Role.PORTAL))).status == 403
    now = int(time.time())
    for bad in (
        Platform().assert_holder(HOLDER_ID),  # not the trusted platform
        platform.assert_holder(HOLDER_ID, aud="elsewhere"),
        platform.assert_holder(HOLDER_ID, iat=now - 600, exp=now - 300),
        platform.assert_holder(HOLDER_ID, exp=now + 3600),  # lasts too long
        platform.assert_holder("123"),
        platform.assert_holder(HOLDER_ID, jti="short"),
        platform.assert_holder(HOLDER_ID)[:-3] + "AAA",
    ):
        refused = await api.get(path, headers=as_holder(demo, bad))
        assert refused.status == 403
        assert (await refused.json())["code"] == "holder-not-asserted"
    token = platform.assert_holder(HOLDER_ID)
    assert (await api.get(path, headers={ASSERTION_HEADER: token})).status == 401
    verifier = {**demo.auth(Role.VERIFIER), ASSERTION_HEADER: token}
    assert (await api.get(path, headers=verifier)).status == 403


async def test_an_assertion_serves_once_across_instances_sharing_redis(
    demo: Demo, platform: Platform, gateway_client: GatewayClient, own_redis_server: RedisServer
) -> None:
    """Two gateways on one Redis: an assertion taken by one is refused by the other. With
    Redis gone each still refuses its own replays (per process, design §14)."""
    settings = dataclasses.replace(demo.settings, redis_url=own_redis_server.url)
    first = await gateway_client(create_app(settings))
    second = await gateway_client(create_app(settings))
    path = "/v1/holders/me/proofs"
    headers = as_holder(demo, platform.assert_holder(HOLDER_ID))
    assert (await first.get(path, headers=headers)).status == 200
    replayed = await second.get(path, headers=headers)
    assert replayed.status == 403
    assert "used already" in (await replayed.json())["detail"]
    fresh = as_holder(demo, platform.assert_holder(HOLDER_ID))
    assert (await second.get(path, headers=fresh)).status == 200  # a new one serves
    own_redis_server.kill()
    headers = as_holder(demo, platform.assert_holder(HOLDER_ID))
    assert (await first.get(path, headers=headers)).status == 200
    assert (await first.get(path, headers=headers)).status == 403
