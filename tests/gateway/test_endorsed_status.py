"""A status check names what a bank relies on besides the status (issue 28, design §6.2):
a request's answer its endorsement (who extracted, who verified, when), a platform seal's
proof its data owner, through every cache tier (the wire format's version 2, §5.4)."""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

import msgpack
import pytest
import redis.asyncio as redis
from aiohttp.test_utils import TestClient

from sealgate.bench.redis_server import RedisServer
from sealgate.cache.codec import decode_status, encode_status, status_fields
from sealgate.client.models import DataOwner, DocumentCheck, Endorsement, Verification
from sealgate.gateway.app import create_app
from sealgate.verify.directory import Role
from tests.gateway import test_requests as requests
from tests.gateway.clock import Clock
from tests.gateway.conftest import Demo, GatewayClient, proof_request
from tests.gateway.test_openapi_document import PATHS, matches, ref
from tests.gateway.test_requests import (
    REQUESTER_UNIT,
    RESPONDER_CODE,
    RESPONDER_UNIT,
    Offices,
    answer,
    send,
)

offices = requests.offices  # the fixture: the requesting and responding offices
clock = requests.clock  # the fixture: a working day of 2027
BATCH_ANSWER = PATHS["/v1/verify/batch"]["post"]["responses"]["200"]["content"]["application/json"][
    "schema"
]


async def responded(
    api: TestClient[Any, Any], offices: Offices, seal: str, as_: Any
) -> dict[str, Any]:
    """A new request's answer, sealed with ``seal`` by the client ``as_``."""
    created = await send(api, offices)
    response = await api.post(
        f"/v1/requests/{created['id']}/respond", json=answer(seal), headers=as_
    )
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def answered(api: TestClient[Any, Any], offices: Offices, seal: str, as_: Any) -> str:
    """The code of a new request's answer."""
    code: str = (await responded(api, offices, seal, as_))["answer_code"]
    return code


async def verified(
    api: TestClient[Any, Any], demo: Demo, code: str, **headers: str
) -> dict[str, Any]:
    response = await api.get(
        f"/v1/verify/{code}?purpose=demo", headers={**demo.auth(Role.VERIFIER), **headers}
    )
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    assert matches(ref("StatusView"), body), body
    return body


def endorsement_of(view: dict[str, Any]) -> dict[str, Any]:
    return {
        "extracting_unit": REQUESTER_UNIT,
        "verifying_unit": RESPONDER_UNIT,
        "extracted_at": view["issued_at"],
    }


def without_time(view: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in view.items() if k != "checked_at"}


async def test_an_answer_names_both_units_from_the_in_process_cache(
    demo: Demo, offices: Offices, clock: Clock, gateway_client: GatewayClient
) -> None:
    api = await gateway_client(create_app(demo.settings, clock=clock))
    response = await responded(api, offices, demo.verification_seal, offices.responder)
    code = response["answer_code"]
    first = await verified(api, demo, code)  # the registry's row, then kept in-process
    assert first["endorsement"] == endorsement_of(first)
    assert "data_owner" not in first  # the responding office's own seal
    second = await verified(api, demo, code)  # the remembered answer, from the copy
    assert without_time(second) == without_time(first)
    chinese = await verified(api, demo, code, **{"Accept-Language": "zh-CN"})
    assert chinese["status_label"] == "有效"
    assert chinese["endorsement"] == first["endorsement"]
    # the typed client reads it (Client and AsyncClient share this reading)
    endorsement = Endorsement(REQUESTER_UNIT, RESPONDER_UNIT, Verification.parse(first).issued_at)
    assert Verification.parse(second).endorsement == endorsement
    # the status says what the sealed document says
    check = await api.post(
        "/v1/verify/document?purpose=demo",
        data=base64.b64decode(response["document"]),
        headers={**demo.auth(Role.VERIFIER), "Content-Type": "application/pkcs7-mime"},
    )
    assert check.status == 200, await check.text()
    assert DocumentCheck.parse(await check.json()).endorsement == endorsement

    # a proof sealed directly answered no request: not endorsed, no data owner
    sealed = await api.post(
        "/v1/certificates", json=proof_request(demo.proof_seal), headers=demo.auth(Role.SIGNER)
    )
    assert sealed.status == 201, await sealed.text()
    plain_code = (await sealed.json())["code"]
    plain = await verified(api, demo, plain_code)
    assert "endorsement" not in plain and "data_owner" not in plain
    assert Verification.parse(plain).endorsement is None

    # a batch check answers each item as the single check does
    response = await api.post(
        "/v1/verify/batch",
        json={"purpose": "demo", "items": [{"code": code}, {"code": plain_code}]},
        headers=demo.auth(Role.VERIFIER),
    )
    assert response.status == 200, await response.text()
    batch = await response.json()
    assert matches(BATCH_ANSWER, batch), batch
    items = batch["items"]
    assert items[0]["endorsement"] == first["endorsement"]
    assert items[0]["seal_kind"] == "verification"
    assert "endorsement" not in items[1]


async def test_a_platform_seals_answer_names_its_data_owner(
    demo: Demo, offices: Offices, clock: Clock, gateway_client: GatewayClient
) -> None:
    api = await gateway_client(create_app(demo.settings, clock=clock))
    code = await answered(api, offices, offices.platform_seal, offices.platform_responder)
    for _ in range(2):  # from the registry, then from the in-process copy
        view = await verified(api, demo, code)
        assert view["issuer"]["unit_code"] != RESPONDER_CODE  # the platform's seal
        assert view["data_owner"] == {"unit_code": RESPONDER_CODE, "unit_name": RESPONDER_UNIT}
        assert view["endorsement"] == endorsement_of(view)
    assert Verification.parse(view).data_owner == DataOwner(RESPONDER_CODE, RESPONDER_UNIT)


async def test_an_answer_names_both_units_through_redis_and_old_copies_are_refetched(
    demo: Demo,
    offices: Offices,
    clock: Clock,
    gateway_client: GatewayClient,
    own_redis_server: RedisServer,
) -> None:
    settings = dataclasses.replace(demo.settings, redis_url=own_redis_server.url)
    api = await gateway_client(create_app(settings, clock=clock))
    code = await answered(api, offices, demo.verification_seal, offices.responder)
    first = await verified(api, demo, code)
    assert first["endorsement"] == endorsement_of(first)
    raw = redis.Redis.from_url(own_redis_server.url)
    key = f"sealgate:p:{code.replace('-', '')}"
    try:
        kept = await raw.get(key)
        assert kept is not None, "the gateway kept no copy in Redis"
        copy = decode_status(kept)
        assert (copy.extracting_unit, copy.verifying_unit) == (REQUESTER_UNIT, RESPONDER_UNIT)

        # Another instance, its in-process tier empty, answers from the Redis copy: one
        # marked in Redis alone shows that it does, endorsement and all.
        marked = dataclasses.replace(copy, verifying_unit="只在 Redis 的副本中")
        await raw.set(key, encode_status(marked))
        other = await gateway_client(create_app(settings, clock=clock))
        from_redis = await verified(other, demo, code)
        assert from_redis["endorsement"]["verifying_unit"] == "只在 Redis 的副本中"

        # A copy an older gateway wrote (format 1) cannot say whether the proof is
        # endorsed: a miss, the registry read, and a copy of the current format kept.
        old = msgpack.packb([1, *status_fields(copy)[:16]], use_bin_type=True)
        await raw.set(key, old)
        third = await gateway_client(create_app(settings, clock=clock))
        refetched = await verified(third, demo, code)
        assert without_time(refetched) == without_time(first)
        assert decode_status(await raw.get(key) or b"") == copy
    finally:
        await raw.aclose()


@pytest.mark.parametrize("language", [{}, {"Accept-Language": "zh-CN"}])
async def test_the_status_history_shows_the_endorsement_too(
    demo: Demo,
    offices: Offices,
    clock: Clock,
    gateway_client: GatewayClient,
    language: dict[str, str],
) -> None:
    """The issuing office's own view of the proof shares the status view."""
    api = await gateway_client(create_app(demo.settings, clock=clock))
    code = await answered(api, offices, demo.verification_seal, offices.responder)
    response = await api.get(
        f"/v1/certificates/{code}/status", headers={**demo.auth(Role.ISSUER), **language}
    )
    assert response.status == 200, await response.text()
    history = await response.json()
    assert matches(ref("StatusHistory"), history), history
    assert history["endorsement"] == endorsement_of(history)
