"""Consent: a verifier without one gets 403 on document download and reuse; with one it
works until it expires, is used up or is revoked; the audit trail names it."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from sealgate.gateway.app import create_app
from sealgate.gateway.consenting import CONSENT_HEADER
from sealgate.gateway.instants import rfc3339
from sealgate.verify.directory import Role
from sealgate.verify.holders import resident_id_check
from tests.gateway.clock import Clock
from tests.gateway.conftest import Demo, GatewayClient
from tests.gateway.test_audit import rows
from tests.gateway.test_status import seal
from tests.waiting import eventually

Client = TestClient[Any, Any]
HOLDER_ID = "11010519491231002X"  # proof_request's holder
TYPE = "无犯罪记录证明"


@pytest.fixture
def clock() -> Clock:
    return Clock(time.time())


@pytest.fixture
async def api(demo: Demo, gateway_client: GatewayClient, clock: Clock) -> Client:
    settings = dataclasses.replace(demo.settings, consent_required=True)
    return await gateway_client(create_app(settings, clock=clock))


def verifier_id(demo: Demo) -> str:
    return next(c.client_id for c, _ in demo.credentials.clients if c.role is Role.VERIFIER)


async def grant(api: Client, demo: Demo, clock: Clock, **overrides: Any) -> dict[str, Any]:
    body = {
        "holder_id": HOLDER_ID,
        "grantee": verifier_id(demo),
        "matter": "demo",
        "proof_types": [TYPE],
        "expires_at": rfc3339(clock.now + 3600),
        "uses": 2,
        **overrides,
    }
    response = await api.post("/v1/consents", json=body, headers=demo.auth(Role.PORTAL))
    assert response.status == 201, await response.text()
    granted: dict[str, Any] = await response.json()
    return granted


async def download(api: Client, demo: Demo, code: str, token: str | None = None) -> Any:
    headers = demo.auth(Role.VERIFIER)
    if token is not None:
        headers[CONSENT_HEADER] = token
    return await api.get(f"/v1/certificates/{code}/document", headers=headers)


async def reuse(api: Client, demo: Demo, token: str | None = None) -> Any:
    headers = demo.auth(Role.VERIFIER)
    if token is not None:
        headers[CONSENT_HEADER] = token
    return await api.get(
        "/v1/proofs", params={"holder_id": HOLDER_ID, "type": TYPE}, headers=headers
    )


async def test_without_a_consent_documents_and_reuse_are_refused(api: Client, demo: Demo) -> None:
    code = await seal(api, demo)
    for response in (await download(api, demo, code), await reuse(api, demo)):
        assert response.status == 403
        assert (await response.json())["code"] == "consent-required"
    # purpose-only verification by code goes on
    verified = await api.get(f"/v1/verify/{code}?purpose=demo", headers=demo.auth(Role.VERIFIER))
    assert verified.status == 200


async def test_a_consent_works_for_its_uses_and_the_trail_names_it(
    api: Client, demo: Demo, clock: Clock
) -> None:
    code = await seal(api, demo)
    granted = await grant(api, demo, clock)
    assert granted["token"].count(".") == 2 and HOLDER_ID not in granted["token"]
    first = await download(api, demo, code, granted["token"])
    assert first.status == 200
    assert first.headers["Content-Type"] == "application/pkcs7-mime"
    second = await reuse(api, demo, granted["token"])
    assert second.status == 200 and (await second.json())["items"]
    spent = await download(api, demo, code, granted["token"])
    assert spent.status == 403
    assert "used up" in (await spent.json())["detail"]
    trail = demo.settings.audit_path

    def named() -> list[Any]:
        return [
            r for r in rows(trail, "action IN ('document', 'proofs')")
            if json.loads(r[7]).get("consent") == granted["consent_id"]
        ]  # fmt: skip

    # one record for the download, one for each code the reuse lookup returned
    found = await eventually(
        lambda: {r[1] for r in named()} == {"document", "proofs"} and named(),
        what="the consent audited",
    )
    assert len([r for r in found if r[1] == "document"]) == 1
    assert all(HOLDER_ID not in str(r) for r in rows(trail))


async def test_a_revoked_or_expired_consent_is_refused(
    api: Client, demo: Demo, clock: Clock
) -> None:
    code = await seal(api, demo)
    granted = await grant(api, demo, clock, uses=5)
    portal = demo.auth(Role.PORTAL)
    listed = await api.get("/v1/consents", params={"holder_id": HOLDER_ID}, headers=portal)
    assert granted["consent_id"] in [c["consent_id"] for c in (await listed.json())["items"]]
    revoked = await api.delete(
        f"/v1/consents/{granted['consent_id']}", params={"holder_id": HOLDER_ID}, headers=portal
    )
    assert revoked.status == 204
    refused = await download(api, demo, code, granted["token"])
    assert refused.status == 403 and "revoked" in (await refused.json())["detail"]
    again = await api.delete(
        f"/v1/consents/{granted['consent_id']}", params={"holder_id": HOLDER_ID}, headers=portal
    )
    assert again.status == 404

    later = await grant(api, demo, clock, uses=5)
    assert (await download(api, demo, code, later["token"])).status == 200
    clock.now += 3601
    expired = await download(api, demo, code, later["token"])
    assert expired.status == 403


async def test_a_consent_covers_only_its_grantee_holder_and_types(
    api: Client, demo: Demo, clock: Clock
) -> None:
    code = await seal(api, demo)
    other_grantee = await grant(api, demo, clock, grantee="C-SOMEONEELSE")
    assert (await download(api, demo, code, other_grantee["token"])).status == 403
    other_type = await grant(api, demo, clock, proof_types=["婚姻状况证明"], uses=1)
    assert (await download(api, demo, code, other_type["token"])).status == 403
    someone = "11010519491231001" + resident_id_check("11010519491231001")
    other_holder = await grant(api, demo, clock, holder_id=someone)
    assert (await download(api, demo, code, other_holder["token"])).status == 403
    forged = other_type["token"][:-4] + ("AAAA" if other_type["token"][-4:] != "AAAA" else "BBBB")
    assert (await download(api, demo, code, forged)).status == 403
    assert (await reuse(api, demo, "not.a.token")).status == 403


async def test_consents_are_the_portals_and_bad_bodies_are_refused(
    api: Client, demo: Demo, clock: Clock
) -> None:
    body = {"holder_id": HOLDER_ID, "grantee": "C-X", "matter": "m", "proof_types": [TYPE],
            "expires_at": rfc3339(clock.now + 60), "uses": 1}  # fmt: skip
    assert (
        await api.post("/v1/consents", json=body, headers=demo.auth(Role.VERIFIER))
    ).status == 403
    for field, value in (("uses", 0), ("expires_at", "2001-01-01"), ("holder_id", "123")):
        bad = await api.post(
            "/v1/consents", json={**body, field: value}, headers=demo.auth(Role.PORTAL)
        )
        assert bad.status == 400 and (await bad.json())["field"] == field
    # a matter the city's table does not hold: 422, and no consent stored
    async def held() -> list[Any]:
        listed = await api.get(
            "/v1/consents", params={"holder_id": HOLDER_ID}, headers=demo.auth(Role.PORTAL)
        )
        assert listed.status == 200
        items: list[Any] = (await listed.json())["items"]
        return items

    before = await held()
    unknown = await api.post("/v1/consents", json=body, headers=demo.auth(Role.PORTAL))
    assert unknown.status == 422 and (await unknown.json())["code"] == "unknown-matter"
    assert await held() == before
