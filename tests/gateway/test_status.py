"""Status changes by the issuing office, their history, and reuse by holder."""

from __future__ import annotations

import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from sealgate.gateway.app import create_app
from sealgate.verify.directory import Role
from tests.gateway.clock import DAY, Clock, first_moment
from tests.gateway.conftest import Demo, GatewayClient, proof_request
from tests.gateway.test_throttling_http import new_client

Client = TestClient[Any, Any]


async def seal(api: Client, demo: Demo, **overrides: Any) -> str:
    response = await api.post(
        "/v1/certificates",
        json=proof_request(demo.proof_seal, **overrides),
        headers=demo.auth(Role.SIGNER),
    )
    assert response.status == 201, await response.text()
    code: str = (await response.json())["code"]
    return code


async def change(api: Client, demo: Demo, code: str, status: str, **extra: Any) -> Any:
    return await api.post(
        f"/v1/certificates/{code}/status",
        json={"status": status, "reason": "测试", **extra},
        headers=demo.auth(Role.ISSUER),
    )


async def verified(api: Client, demo: Demo, code: str) -> dict[str, Any]:
    response = await api.get(f"/v1/verify/{code}?purpose=demo", headers=demo.auth(Role.VERIFIER))
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


async def test_pledge_release_revoke_show_at_once_and_are_in_the_history(
    api: Client, demo: Demo
) -> None:
    code = await seal(api, demo)
    assert (await verified(api, demo, code))["status"] == "valid"  # now cached
    for status in ("pledged", "valid", "revoked"):
        response = await change(api, demo, code, status)
        assert response.status == 200, await response.text()
        assert (await response.json())["status"] == status
        assert (await verified(api, demo, code))["status"] == status
    response = await api.get(f"/v1/certificates/{code}/status", headers=demo.auth(Role.ISSUER))
    history = (await response.json())["history"]
    assert [(h["from"], h["to"]) for h in history] == [
        ("valid", "pledged"),
        ("pledged", "valid"),
        ("valid", "revoked"),
    ]
    issuer_id = next(c.client_id for c, _ in demo.credentials.clients if c.role is Role.ISSUER)
    assert all(h["by"] == issuer_id and h["reason"] == "测试" and h["at"] for h in history)


@pytest.mark.parametrize("terminal", ["revoked", "cancelled", "abolished"])
async def test_nothing_leaves_a_terminal_status(api: Client, demo: Demo, terminal: str) -> None:
    code = await seal(api, demo)
    assert (await change(api, demo, code, terminal)).status == 200
    for status in ("valid", "pledged", "revoked", "cancelled", "abolished"):
        response = await change(api, demo, code, status)
        assert response.status == 409
        assert (await response.json())["code"] == "status-terminal"
    assert (await verified(api, demo, code))["status"] == terminal


async def test_other_offices_and_other_roles_are_refused(api: Client, demo: Demo) -> None:
    code = await seal(api, demo)
    other = new_client(demo, Role.ISSUER, office="91430900MA4L00000Q")
    response = await api.post(
        f"/v1/certificates/{code}/status", json={"status": "revoked", "reason": "x"}, headers=other
    )
    assert response.status == 403
    assert (await response.json())["code"] == "not-your-office"
    response = await api.get(f"/v1/certificates/{code}/status", headers=other)
    assert response.status == 403
    for role in (Role.SIGNER, Role.VERIFIER, Role.ADMIN):
        response = await api.post(
            f"/v1/certificates/{code}/status",
            json={"status": "revoked", "reason": "x"},
            headers=demo.auth(role),
        )
        assert response.status == 403
    assert (await verified(api, demo, code))["status"] == "valid"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"status": "expired", "reason": "x"}, 409, None),
        ({"status": "lost", "reason": "x"}, 400, "status"),
        ({"status": "revoked"}, 400, "reason"),
        ({"status": "revoked", "reason": "x", "extra": 1}, 400, "extra"),
        ({"status": "changed", "reason": "x"}, 422, "superseded_by"),
        (
            {"status": "revoked", "reason": "x", "superseded_by": "430900-000000-000000-000000"},
            400,
            "superseded_by",
        ),
    ],
)
async def test_bad_status_requests(
    api: Client, demo: Demo, body: dict[str, Any], status: int, field: str | None
) -> None:
    code = await seal(api, demo)
    response = await api.post(
        f"/v1/certificates/{code}/status", json=body, headers=demo.auth(Role.ISSUER)
    )
    assert response.status == status
    if field:
        assert (await response.json()).get("field") == field
    assert (await verified(api, demo, code))["status"] == "valid"


async def test_unknown_code_is_404(api: Client, demo: Demo) -> None:
    response = await change(api, demo, "430900-ZDXE31-DD2417-Z7GDVP", "revoked")
    assert response.status == 404


async def test_changed_names_a_newer_proof_of_the_same_holder_and_type(
    api: Client, demo: Demo
) -> None:
    old = await seal(api, demo)
    newer = await seal(api, demo)
    other_type = await seal(api, demo, type="户籍证明")
    other_holder = await seal(
        api, demo, holder={"kind": "person", "id": "430902199001011231", "name": "李四"}
    )
    for wrong in (other_type, other_holder, old):
        response = await change(api, demo, old, "changed", superseded_by=wrong)
        assert response.status == 422, wrong
        assert (await response.json())["code"] == "invalid-supersession"
    # the older proof, still valid, cannot supersede the newer: sealed a moment apart,
    # most likely within the same second
    response = await change(api, demo, newer, "changed", superseded_by=old)
    assert response.status == 422
    assert "not newer" in (await response.json())["detail"]
    response = await change(api, demo, old, "changed", superseded_by=newer.lower())
    assert response.status == 200
    body = await verified(api, demo, old)
    assert body["status"] == "changed"
    assert body["superseded_by"] == newer
    # an older proof cannot supersede a newer one
    response = await change(api, demo, newer, "changed", superseded_by=old)
    assert response.status == 422


async def test_expired_is_derived_from_valid_until(
    demo: Demo, gateway_client: GatewayClient
) -> None:
    # A proof already ended is not sealed (test_dates.py): this one ends today, China time.
    clock = Clock(time.time())
    api = await gateway_client(create_app(demo.settings, clock=clock))
    today = clock.today
    code = await seal(
        api, demo, valid_from=(today - 30 * DAY).isoformat(), valid_until=today.isoformat()
    )
    assert (await verified(api, demo, code))["status"] == "valid"
    clock.now = first_moment(today + DAY)
    assert (await verified(api, demo, code))["status"] == "expired"
    response = await change(api, demo, code, "pledged")
    assert response.status == 409
    assert (await change(api, demo, code, "revoked")).status == 200
    assert (await verified(api, demo, code))["status"] == "revoked"


async def test_reuse_lists_the_holders_current_valid_proofs(
    demo: Demo, gateway_client: GatewayClient
) -> None:
    clock = Clock(time.time())
    api = await gateway_client(create_app(demo.settings, clock=clock))
    today = clock.today
    holder = {"kind": "person", "id": "430902198001010015", "name": "王五"}
    kept = await seal(api, demo, holder=holder)
    revoked = await seal(api, demo, holder=holder)
    ending = {"valid_from": (today - 30 * DAY).isoformat(), "valid_until": today.isoformat()}
    await seal(api, demo, holder=holder, **ending)
    await seal(api, demo, holder=holder, type="户籍证明")
    assert (await change(api, demo, revoked, "revoked")).status == 200
    clock.now = first_moment(today + DAY)  # the one ending today has expired
    verifier = demo.auth(Role.VERIFIER)
    response = await api.get(
        "/v1/proofs",
        params={"holder_id": holder["id"].lower(), "type": "无犯罪记录证明", "purpose": "demo"},
        headers=verifier,
    )
    assert response.status == 200
    items = (await response.json())["items"]
    assert [i["code"] for i in items] == [kept]
    assert items[0]["holder"]["id"] == "4309**********0015"
    assert holder["id"] not in await response.text()
    # purpose and role still apply
    response = await api.get(
        "/v1/proofs",
        params={"holder_id": holder["id"], "type": "无犯罪记录证明", "purpose": "marketing"},
        headers=verifier,
    )
    assert response.status == 403
    response = await api.get(
        "/v1/proofs",
        params={"holder_id": holder["id"], "type": "无犯罪记录证明", "purpose": "demo"},
        headers=demo.auth(Role.SIGNER),
    )
    assert response.status == 403
    response = await api.get(
        "/v1/proofs", params={"holder_id": "123", "type": "x", "purpose": "demo"}, headers=verifier
    )
    assert response.status == 400
    assert (await response.json())["field"] == "holder_id"


async def test_holder_ids_are_not_stored_in_clear(api: Client, demo: Demo) -> None:
    holder_id = "430902198502020019"
    await seal(api, demo, holder={"kind": "person", "id": holder_id, "name": "赵六"})
    import sqlite3

    conn = sqlite3.connect(demo.settings.sqlite_path)
    try:
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            for (column,) in [(c[1],) for c in conn.execute(f"PRAGMA table_info({table})")]:
                # names from sqlite_master, not input
                query = f"SELECT count(*) FROM {table} WHERE CAST({column} AS TEXT) LIKE ?"  # noqa: S608
                hits = conn.execute(query, (f"%{holder_id}%",)).fetchone()[0]
                assert hits == 0, f"{table}.{column} holds the id in clear"
    finally:
        conn.close()


async def test_a_status_change_records_its_staff_member_and_refuses_an_id_number(
    api: Client, demo: Demo
) -> None:
    code = await seal(api, demo)
    headers = {**demo.auth(Role.ISSUER), "X-Operator": "11010519491231002X"}
    body = {"status": "pledged", "reason": "质押"}
    response = await api.post(f"/v1/certificates/{code}/status", json=body, headers=headers)
    assert response.status == 400
    assert (await response.json())["field"] == "X-Operator"
    assert (await verified(api, demo, code))["status"] == "valid"  # nothing changed
    headers["X-Operator"] = "clerk-3"
    response = await api.post(f"/v1/certificates/{code}/status", json=body, headers=headers)
    assert response.status == 200
