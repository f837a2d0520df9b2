"""POST /v1/verify/batch: a bank's batch of codes, each its own outcome, under the limits."""

from __future__ import annotations

import sqlite3
from typing import Any

from aiohttp.test_utils import TestClient

from sealgate.gateway.provision import Provisioner
from sealgate.verify.directory import LookupLimit, Role
from tests.gateway.conftest import Demo, proof_request
from tests.gateway.test_checking import random_codes

HOLDER = "11010519491231002X"  # the holder of tests.gateway.conftest.proof_request
OTHER_HOLDER = "110105194912310038"  # valid, and another person


async def sealed(api: TestClient[Any, Any], demo: Demo) -> str:
    r = await api.post(
        "/v1/certificates", json=proof_request(demo.proof_seal), headers=demo.auth(Role.SIGNER)
    )
    assert r.status == 201
    code: str = (await r.json())["code"]
    return code


def verifier_with_limit(demo: Demo, limit: LookupLimit) -> dict[str, str]:
    provisioner = Provisioner(demo.settings)
    directory = provisioner.directory()
    try:
        client, token = provisioner.add_client(
            directory, name="a bank", role=Role.VERIFIER, purposes=["demo"]
        )
        directory.set_lookup_limit(client.client_id, limit)
    finally:
        directory.close()
    return {"Authorization": f"Bearer {token}"}


async def test_each_code_gets_its_own_outcome_in_order(
    api: TestClient[Any, Any], demo: Demo
) -> None:
    code = await sealed(api, demo)
    unknown = random_codes(1, seed=31)[0]
    mistyped = code[:-1] + ("0" if code[-1] != "0" else "1")
    body = {
        "purpose": "demo",
        "items": [
            {"code": code, "holder_id": HOLDER},
            {"code": code.lower(), "holder_id": OTHER_HOLDER},
            {"code": unknown},
            {"code": mistyped},
            {"code": code},
        ],
    }
    r = await api.post("/v1/verify/batch", json=body, headers=demo.auth(Role.VERIFIER))
    assert r.status == 200
    answer = await r.json()
    assert answer["purpose"] == "demo"
    items = answer["items"]
    assert [item.get("status") for item in items] == ["valid", "valid", None, None, "valid"]
    assert items[0]["holder_match"] is True
    assert items[1]["holder_match"] is False
    assert "holder_match" not in items[4]
    assert items[0]["holder"]["id"] != HOLDER  # masked, as on GET /v1/verify
    for item in items[2:4]:
        assert item == {
            "problem": {
                "type": "urn:sealgate:problem:unknown-code",
                "title": "No proof has this verification code",
                "status": 404,
                "code": "unknown-code",
            }
        }
    text = await r.text()
    assert HOLDER not in text and OTHER_HOLDER not in text and unknown not in text


async def test_a_batch_is_no_way_around_the_limit(api: TestClient[Any, Any], demo: Demo) -> None:
    """Looked up together, five unknown codes against a budget of three: three 404s and
    two 429s, and the client is refused after."""
    bank = verifier_with_limit(demo, LookupLimit(3, 600.0))
    guesses = random_codes(5, seed=32)
    body = {"purpose": "demo", "items": [{"code": c} for c in guesses]}
    r = await api.post("/v1/verify/batch", json=body, headers=bank)
    assert r.status == 200
    statuses = sorted(item["problem"]["status"] for item in (await r.json())["items"])
    assert statuses == [404, 404, 404, 429, 429]
    code = await sealed(api, demo)
    assert (await api.get(f"/v1/verify/{code}?purpose=demo", headers=bank)).status == 429


async def test_holder_mismatches_count_as_failed_lookups(
    api: TestClient[Any, Any], demo: Demo
) -> None:
    """Trying identity numbers against a code one holds is guessing: it meets the limit."""
    bank = verifier_with_limit(demo, LookupLimit(2, 600.0))
    code = await sealed(api, demo)
    matches = []
    for _ in range(3):
        body = {"purpose": "demo", "items": [{"code": code, "holder_id": OTHER_HOLDER}]}
        r = await api.post("/v1/verify/batch", json=body, headers=bank)
        matches.append((await r.json())["items"][0])
    assert [m.get("holder_match") for m in matches[:2]] == [False, False]
    assert matches[2]["problem"]["status"] == 429


async def test_bad_batches_are_refused_whole(
    api: TestClient[Any, Any], demo: Demo
) -> None:
    code = await sealed(api, demo)
    verifier = demo.auth(Role.VERIFIER)
    too_many = {"purpose": "demo", "items": [{"code": code}] * 101}
    bad_holder = {"purpose": "demo", "items": [{"code": code, "holder_id": "123"}]}
    no_purpose = {"items": [{"code": code}]}
    not_granted = {"purpose": "marketing", "items": [{"code": code}]}
    for body, status, field in [
        (too_many, 400, "items"),
        (bad_holder, 400, "items[0].holder_id"),
        (no_purpose, 400, "purpose"),
        ({"purpose": "demo", "items": []}, 400, "items"),
        (not_granted, 403, None),
    ]:
        r = await api.post("/v1/verify/batch", json=body, headers=verifier)
        assert r.status == status, body
        if field is not None:
            assert (await r.json())["field"] == field
    ok = {"purpose": "demo", "items": [{"code": code, "holder_id": HOLDER}, {"code": code}]}
    assert (await api.post("/v1/verify/batch", json=ok, headers=verifier)).status == 200


async def test_the_trail_records_each_code_and_no_holder_number(
    api: TestClient[Any, Any], demo: Demo
) -> None:
    from sealgate.gateway.keys import AUDIT

    code = await sealed(api, demo)
    body = {"purpose": "demo", "items": [{"code": code, "holder_id": HOLDER}, {"code": "nope"}]}
    headers = {**demo.auth(Role.VERIFIER), "X-Request-Id": "batch-trail-1"}
    r = await api.post("/v1/verify/batch", json=body, headers=headers)
    assert r.status == 200
    await api.app[AUDIT].flush()
    with sqlite3.connect(demo.settings.audit_path) as conn:
        rows = conn.execute(
            "SELECT code, detail FROM audit WHERE action = 'verify-batch'"
            " AND request = 'batch-trail-1' ORDER BY seq"
        ).fetchall()
        everything = "".join(str(row) for row in conn.execute("SELECT * FROM audit"))
    assert [row[0] for row in rows] == [code, "(not a code)"]
    assert '"holder_checks":1' in rows[0][1].replace(" ", "")
    assert HOLDER not in everything
