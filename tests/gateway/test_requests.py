"""Verification requests end to end over HTTP (docs/design.md §12): each tier walked with
an injected clock (no sleeping), the sealed answer checked with OpenSSL and verify-file,
its endorsement filled from the request, the steps refused when they must be."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import sqlite3
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from standardwebhooks import Webhook

from sealgate.crypto.verification import TrustList, verify_proof
from sealgate.gateway.app import create_app
from sealgate.gateway.instants import rfc3339
from sealgate.gateway.keys import OVERDUE
from sealgate.gateway.provision import DEMO_OFFICE, Provisioner
from sealgate.gateway.webhooks import secret_text
from sealgate.verify.directory import Role, SealKind, SealScope
from sealgate.verify.holders import resident_id_check, uscc_check
from sealgate.verify.validity import LOCAL_ZONE
from sealgate.verify.workdays import parse_year
from tests.gateway.clock import Clock
from tests.gateway.conftest import Demo, GatewayClient, proof_request
from tests.gateway.test_sealing import openssl_verify, verify_file
from tests.waiting import eventually

CALENDAR_2027 = Path(__file__).parents[1] / "verify" / "data" / "calendar-2027.json"
REQUESTER_UNIT = "益阳市人力资源和社会保障局"
REQUESTER_CODE = "11430900MB0012345" + uscc_check("11430900MB0012345")
RESPONDER_UNIT, RESPONDER_CODE = DEMO_OFFICE
PLATFORM_UNIT = "益阳市大数据中心"
PLATFORM_CODE = "12430900MB0098765" + uscc_check("12430900MB0098765")
HOLDER = {"kind": "person", "id": "11010519491231002X", "name": "张三"}


def at(text: str) -> float:
    """A moment in China Standard Time: ``2027-01-07 10:00``."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=LOCAL_ZONE).timestamp()


def shown(text: str) -> str:
    """The RFC 3339 form an answer shows for a China Standard Time moment (the city's
    offset, +08:00 by default: docs/design.md §6.2)."""
    return dt.datetime.fromtimestamp(at(text), LOCAL_ZONE).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Offices:
    requester: dict[str, str]
    responder: dict[str, str]
    portal: dict[str, str]
    other_signer: dict[str, str]  # an office of its own, not the responder
    platform_seal: str  # the city's 查询核验专用章, granted to the next
    platform_responder: dict[str, str]  # the responding office's system, with it
    platform_issuer: dict[str, str]  # an issuer of the platform's own office
    unofficed_signer: dict[str, str]  # granted the platform seal, belonging to no office
    requester_id: str  # the requesting office's client, as a consent names its grantee


def bearer(token: str, operator: str = "staff-0042") -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-Operator": operator}


@pytest.fixture(scope="module")
def offices(demo: Demo) -> Offices:
    """The requesting office (a unit the directory knows by its seal), the responding
    office's system (a signer of the demo office), the citizens' personal space, and the
    2027 calendar loaded as `sealgate calendar load` does."""
    provisioner = Provisioner(demo.settings, root_pin=demo.credentials.root_pin)
    directory = provisioner.directory()
    try:
        with provisioner.keystore() as keystore:
            provisioner.create_seal(
                keystore,
                directory,
                unit_name=REQUESTER_UNIT,
                unit_code=REQUESTER_CODE,
                kind=SealKind.PROOF,
            )
            platform = provisioner.create_seal(
                keystore,
                directory,
                unit_name=PLATFORM_UNIT,
                unit_code=PLATFORM_CODE,
                kind=SealKind.VERIFICATION,
                scope=SealScope.PLATFORM,
            )
        seals = [demo.proof_seal, demo.verification_seal]
        _, platform_responder = provisioner.add_client(
            directory,
            name="公安局核验系统(平台章)",
            role=Role.SIGNER,
            seals=[platform.seal_id],
            office=RESPONDER_CODE,
        )
        _, platform_issuer = provisioner.add_client(
            directory, name="大数据中心", role=Role.ISSUER, office=PLATFORM_CODE
        )
        _, unofficed = provisioner.add_client(
            directory, name="无单位签章", role=Role.SIGNER, seals=[platform.seal_id]
        )
        requester_client, requester = provisioner.add_client(
            directory, name="人社局业务系统", role=Role.REQUESTER, office=REQUESTER_CODE
        )
        _, responder = provisioner.add_client(
            directory, name="公安局核验系统", role=Role.SIGNER, seals=seals, office=RESPONDER_CODE
        )
        _, other = provisioner.add_client(
            directory, name="人社局签章", role=Role.SIGNER, office=REQUESTER_CODE
        )
        _, portal = provisioner.add_client(directory, name="个人空间", role=Role.PORTAL)
        year = parse_year(CALENDAR_2027.read_text(encoding="utf-8"))
        directory.load_calendar_year(year.year, year.to_json())
    finally:
        directory.close()
    return Offices(
        bearer(requester),
        bearer(responder),
        bearer(portal),
        bearer(other),
        platform.seal_id,
        bearer(platform_responder),
        bearer(platform_issuer),
        bearer(unofficed),
        requester_client.client_id,
    )


@pytest.fixture
def clock() -> Clock:
    return Clock(at("2027-01-07 10:00"))


@pytest.fixture
async def api(
    demo: Demo, offices: Offices, clock: Clock, gateway_client: GatewayClient
) -> TestClient[Any, Any]:
    return await gateway_client(create_app(demo.settings, clock=clock))


def new_request(tier: str = "database", mode: str = "verify") -> dict[str, Any]:
    return {
        "responder": RESPONDER_CODE,
        "type": "无犯罪记录证明",
        "holder": HOLDER,
        "matter": "社会保障卡申领",
        "case_ref": "YY-RS-2027-000123",
        "mode": mode,
        "tier": tier,
    }


def answer(seal: str) -> dict[str, Any]:
    return {
        "seal_id": seal,
        "holder": HOLDER,
        "content": {"结论": "经查询，未发现有犯罪记录"},
        "valid_from": "2026-11-22",
        "valid_until": "2027-07-06",
    }


async def send(api: TestClient[Any, Any], offices: Offices, **body: Any) -> dict[str, Any]:
    response = await api.post("/v1/requests", json=new_request(**body), headers=offices.requester)
    assert response.status == 201, await response.text()
    created: dict[str, Any] = await response.json()
    return created


async def step(
    api: TestClient[Any, Any], offices: Offices, request_id: str, action: str, body: Any
) -> tuple[int, dict[str, Any]]:
    response = await api.post(
        f"/v1/requests/{request_id}/{action}", json=body, headers=offices.responder
    )
    return response.status, await response.json()


async def inbox(api: TestClient[Any, Any], offices: Offices, state: str) -> list[str]:
    response = await api.get(f"/v1/requests?state={state}", headers=offices.responder)
    assert response.status == 200
    return [r["id"] for r in (await response.json())["items"]]


async def test_database_tier_answered_by_the_offices_system_and_sealed(
    demo: Demo, offices: Offices, gateway_client: GatewayClient, tmp_path: Path
) -> None:
    # Today's clock: verify-file judges the seal's signing time against its own now.
    clock = Clock(float(int(time.time())))
    api = await gateway_client(create_app(demo.settings, clock=clock))
    created = await send(api, offices)
    assert created["state"] == "accepted"  # registered and accepted on arrival
    registered = dt.datetime.fromisoformat(created["registered_at"]).timestamp()
    assert registered == clock.now
    due = dt.datetime.fromisoformat(created["due_at"]).timestamp()
    assert due == clock.now + 30 * 60  # every minute counts: no office hours set
    assert created["provisional"] is False
    assert created["requester"] == {"unit_name": REQUESTER_UNIT, "unit_code": REQUESTER_CODE}
    assert created["holder"]["id"] == "1101**********002X"
    assert created["id"] in await inbox(api, offices, "accepted")

    clock.now += 95.25  # the office's system answers within seconds, no person involved
    status, answered = await step(
        api, offices, created["id"], "respond", answer(demo.verification_seal)
    )
    assert status == 200, answered
    assert answered["state"] == "answered"
    assert answered["elapsed_seconds"] == 95.25  # recorded exactly (第十六条)
    der = base64.b64decode(answered["document"])
    assert openssl_verify(der, demo.settings.root_certificate_path, tmp_path).returncode == 0
    assert verify_file(der, demo, tmp_path) == 0
    trust = TrustList.from_pem(demo.settings.root_certificate_path.read_bytes())
    content = json.loads(verify_proof(der, trust).content)
    endorsement = content["endorsement"]
    assert endorsement["extracting_unit"] == REQUESTER_UNIT
    assert endorsement["verifying_unit"] == RESPONDER_UNIT
    assert content["type"] == "无犯罪记录证明"
    assert created["id"] not in await inbox(api, offices, "accepted")

    # the requester sees the answer and every step, with the staff who took it
    response = await api.get(f"/v1/requests/{created['id']}", headers=offices.requester)
    seen = await response.json()
    assert seen["state"] == "answered"
    assert seen["answer_code"] == answered["answer_code"]
    assert [(e["action"], e["operator"]) for e in seen["events"]] == [
        ("register", "staff-0042"),
        ("respond", "staff-0042"),
    ]
    # and the proof is registered under the code the request names
    verify = await api.get(
        f"/v1/verify/{answered['answer_code']}?purpose=demo", headers=demo.auth(Role.VERIFIER)
    )
    assert verify.status == 200
    assert (await verify.json())["seal_kind"] == "verification"  # 查询核验专用章
    # a bank shown the document sees who extracted it, who verified it, and when
    check = await api.post(
        "/v1/verify/document?purpose=demo",
        data=der,
        headers={**demo.auth(Role.VERIFIER), "Content-Type": "application/pkcs7-mime"},
    )
    checked = await check.json()
    assert (checked["seal_kind"], checked["registered"]) == ("verification", True)
    assert checked["endorsement"] == {
        "extracting_unit": REQUESTER_UNIT,
        "verifying_unit": RESPONDER_UNIT,
        "extracted_at": checked["signing_time"],
    }


async def test_paper_tier_is_answered_the_next_working_day(
    api: TestClient[Any, Any], demo: Demo, offices: Offices, clock: Clock
) -> None:
    clock.now = at("2027-01-08 16:00")  # a Friday
    created = await send(api, offices, tier="paper")
    assert created["due_at"] == shown("2027-01-12 00:00")  # the close of Monday
    clock.now = at("2027-01-11 09:30")
    assert created["id"] in await inbox(api, offices, "accepted")
    status, answered = await step(
        api, offices, created["id"], "respond", answer(demo.verification_seal)
    )
    assert status == 200, answered
    assert answered["state"] == "answered"


async def test_archive_tier_is_extended_once_and_a_second_extension_refused(
    api: TestClient[Any, Any], offices: Offices
) -> None:
    created = await send(api, offices, tier="archive")
    assert created["due_at"] == shown("2027-01-12 00:00")  # 2 working days: Fri, Mon
    assert created["extendable"] is True
    extension = {"reason": "档案在异地库房，需调阅", "approver": "head-0007"}
    status, extended = await step(api, offices, created["id"], "extend", extension)
    assert status == 200, extended
    assert extended["due_at"] == shown("2027-01-19 00:00")  # +5: Tue 12 … Mon 18
    assert extended["extended"] is True
    assert extended["reason"] == "档案在异地库房，需调阅"  # told to the requester
    status, refused = await step(api, offices, created["id"], "extend", extension)
    assert status == 409
    assert refused["code"] == "step-not-allowed"
    response = await api.get(f"/v1/requests/{created['id']}", headers=offices.requester)
    events = (await response.json())["events"]
    assert [e["action"] for e in events] == ["register", "extend"]
    assert events[1]["approver"] == "head-0007"


async def test_only_an_extendable_tier_extends(api: TestClient[Any, Any], offices: Offices) -> None:
    created = await send(api, offices, tier="paper")
    extension = {"reason": "需要更多时间", "approver": "head-0007"}
    status, refused = await step(api, offices, created["id"], "extend", extension)
    assert (status, refused["code"]) == (409, "step-not-allowed")


async def test_reclassified_to_a_slower_tier_with_a_reason(
    api: TestClient[Any, Any], offices: Offices
) -> None:
    created = await send(api, offices)
    body = {"tier": "paper", "reason": "数据库未收录，需查纸质档案"}
    status, moved = await step(api, offices, created["id"], "reclassify", body)
    assert status == 200, moved
    assert (moved["tier"], moved["due_at"]) == ("paper", shown("2027-01-09 00:00"))
    status, refused = await step(api, offices, created["id"], "reclassify", body)
    assert (status, refused["code"]) == (409, "step-not-allowed")  # not slower any more
    wrong_mode = {"tier": "complex", "reason": "x"}
    status, refused = await step(api, offices, created["id"], "reclassify", wrong_mode)
    assert status == 409


async def test_returned_with_a_reason_and_closed(
    api: TestClient[Any, Any], demo: Demo, offices: Offices
) -> None:
    created = await send(api, offices)
    status, returned = await step(
        api, offices, created["id"], "return", {"reason": "不属于本单位职责范围"}
    )
    assert status == 200, returned
    assert (returned["state"], returned["reason"]) == ("returned", "不属于本单位职责范围")
    status, refused = await step(
        api, offices, created["id"], "respond", answer(demo.verification_seal)
    )
    assert (status, refused["code"]) == (409, "request-closed")


async def test_an_overdue_request_is_reported(
    api: TestClient[Any, Any], offices: Offices, clock: Clock
) -> None:
    created = await send(api, offices)
    assert created["id"] not in await inbox(api, offices, "overdue")
    clock.now += 30 * 60  # due now
    assert created["id"] in await inbox(api, offices, "overdue")
    assert created["id"] not in await inbox(api, offices, "accepted")
    response = await api.get(f"/v1/requests/{created['id']}", headers=offices.requester)
    assert (await response.json())["state"] == "overdue"
    response = await api.get("/v1/requests?state=overdue", headers=offices.requester)
    assert created["id"] in [r["id"] for r in (await response.json())["items"]]


async def test_the_seal_kind_must_match_the_mode(
    api: TestClient[Any, Any], demo: Demo, offices: Offices
) -> None:
    created = await send(api, offices)  # verify: a 查询核验专用章 answers it
    status, refused = await step(api, offices, created["id"], "respond", answer(demo.proof_seal))
    assert (status, refused["code"]) == (422, "seal-kind-mismatch")
    issue = await send(api, offices, mode="issue", tier="online")  # 电子证明专用章
    status, refused = await step(
        api, offices, issue["id"], "respond", answer(demo.verification_seal)
    )
    assert (status, refused["code"]) == (422, "seal-kind-mismatch")
    status, answered = await step(api, offices, issue["id"], "respond", answer(demo.proof_seal))
    assert status == 200, answered
    assert created["id"] in await inbox(api, offices, "accepted")  # untouched by the refusal


async def test_the_endorsement_is_never_typed_and_the_holder_must_match(
    api: TestClient[Any, Any], demo: Demo, offices: Offices
) -> None:
    created = await send(api, offices)
    typed = {**answer(demo.verification_seal), "endorsement": {"extracting_unit": "某银行"}}
    status, refused = await step(api, offices, created["id"], "respond", typed)
    assert (status, refused["field"]) == (400, "endorsement")
    other = {**answer(demo.verification_seal)}
    other_id = "11010519491231003" + resident_id_check("11010519491231003")
    other["holder"] = {"kind": "person", "id": other_id, "name": "李四"}
    status, refused = await step(api, offices, created["id"], "respond", other)
    assert (status, refused["code"]) == (422, "holder-mismatch")


async def test_another_office_sees_none_of_it(
    api: TestClient[Any, Any], demo: Demo, offices: Offices
) -> None:
    created = await send(api, offices)
    response = await api.post(
        f"/v1/requests/{created['id']}/respond",
        json=answer(demo.verification_seal),
        headers=offices.other_signer,
    )
    assert response.status == 404
    response = await api.get("/v1/requests?state=accepted", headers=offices.other_signer)
    assert created["id"] not in [r["id"] for r in (await response.json())["items"]]


@pytest.mark.parametrize("operator", [None, "11010519491231002X", "张三", "x" * 65])
async def test_every_write_names_a_staff_identifier(
    api: TestClient[Any, Any], offices: Offices, operator: str | None
) -> None:
    headers = dict(offices.requester)
    del headers["X-Operator"]
    if operator is not None:
        headers["X-Operator"] = operator
    response = await api.post("/v1/requests", json=new_request(), headers=headers)
    assert response.status == 400
    assert (await response.json())["field"] == "X-Operator"


async def test_the_holder_sees_the_requests_about_them(
    api: TestClient[Any, Any], offices: Offices
) -> None:
    created = await send(api, offices)
    response = await api.get(
        f"/v1/holder-requests?holder_id={HOLDER['id']}", headers=offices.portal
    )
    assert response.status == 200
    items = (await response.json())["items"]
    mine = next(i for i in items if i["id"] == created["id"])
    assert mine["requester"]["unit_name"] == REQUESTER_UNIT
    assert "case_ref" not in mine and "events" not in mine
    response = await api.get(
        f"/v1/holder-requests?holder_id={HOLDER['id']}", headers=offices.requester
    )
    assert response.status == 403


async def test_overdue_requests_are_counted_in_metrics(
    api: TestClient[Any, Any], offices: Offices, clock: Clock
) -> None:
    async def overdue() -> float:
        text = await (await api.get("/metrics")).text()
        line = next(x for x in text.splitlines() if x.startswith("sealgate_requests_overdue "))
        return float(line.split()[1])

    before = await overdue()
    await send(api, offices)
    assert await overdue() == before
    clock.now += 31 * 60
    assert await overdue() >= before + 1


async def test_overdue_requests_are_announced_signed_at_least_once(
    demo: Demo, offices: Offices, clock: Clock, gateway_client: GatewayClient, aiohttp_server: Any
) -> None:
    received: list[tuple[dict[str, str], bytes]] = []
    late: dict[str, Any] = {}

    def mine() -> list[tuple[dict[str, str], bytes]]:
        return [(h, b) for h, b in received if h["webhook-id"] == late["id"]]

    async def receive(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.read()))
        # the first delivery of this test's request fails: it must come again, later
        return web.Response(status=500 if len(mine()) == 1 else 204)

    receiver = web.Application()
    receiver.router.add_post("/hook", receive)
    server = await aiohttp_server(receiver)
    settings = replace(demo.settings, overdue_webhook=str(server.make_url("/hook")))
    app = create_app(settings, clock=clock)
    api = await gateway_client(app)
    late.update(await send(api, offices))
    watch = app[OVERDUE]
    await watch.announce()
    assert mine() == []  # not late yet
    clock.now += 31 * 60
    await watch.announce()
    assert len(mine()) == 1  # answered 500: not announced
    await watch.announce()
    assert len(mine()) == 1  # backing off: not even tried
    clock.now += 1
    await watch.announce()
    assert len(mine()) == 2  # acknowledged this time
    clock.now += 600
    await watch.announce()
    assert len(mine()) == 2  # never again
    # The receiver's secret: the home's webhook-key, as Standard Webhooks writes one.
    receiver_side = Webhook(secret_text(demo.settings.read_secret("webhook-key")))
    for headers, body in mine():
        announced = receiver_side.verify(body, headers)
        assert (announced["event"], announced["id"]) == ("request.overdue", late["id"])
        assert "holder" not in announced


async def test_each_step_is_audited_ahead_with_its_staff_member(
    api: TestClient[Any, Any], demo: Demo, offices: Offices
) -> None:
    response = await api.post("/v1/requests", json=new_request(), headers=offices.requester)
    created = await response.json()
    create_id = response.headers["X-Request-Id"]  # the gateway's own id, in its records
    response = await api.post(
        f"/v1/requests/{created['id']}/respond",
        json=answer(demo.verification_seal),
        headers={**offices.responder, "X-Operator": "clerk-7"},
    )
    code = (await response.json())["answer_code"]
    answer_id = response.headers["X-Request-Id"]

    def rows(request_id: str) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(demo.settings.audit_path)
        try:
            return conn.execute(
                "SELECT action, code, result, detail FROM audit WHERE request = ? ORDER BY seq",
                (request_id,),
            ).fetchall()
        finally:
            conn.close()

    created_rows = await eventually(lambda: len(rows(create_id)) == 2 and rows(create_id))
    assert [(a, r) for a, _, r, _ in created_rows] == [("request", "intent"), ("request", "201")]
    for *_, detail in created_rows:
        assert json.loads(detail) == {
            "operator": "staff-0042",
            "mode": "verify",
            "tier": "database",
            "request": created["id"],
        }
    answered = await eventually(lambda: len(rows(answer_id)) == 2 and rows(answer_id))
    assert [(a, c, r) for a, c, r, _ in answered] == [
        ("request-respond", code, "intent"),
        ("request-respond", code, "200"),
    ]
    assert all(json.loads(d)["operator"] == "clerk-7" for *_, d in answered)
    conn = sqlite3.connect(demo.settings.audit_path)
    try:
        dumped = "\n".join(str(row) for row in conn.execute("SELECT * FROM audit"))
    finally:
        conn.close()
    assert HOLDER["id"] not in dumped  # the holder's identity number is kept nowhere


async def test_a_platform_seal_answers_for_the_office_that_owns_the_data(
    api: TestClient[Any, Any], demo: Demo, offices: Offices
) -> None:
    """宁波 第十五条: the city's seal, used by a granted unit; the proof's status follows
    the office that owns its data, not the seal's unit."""
    created = await send(api, offices)
    response = await api.post(
        f"/v1/requests/{created['id']}/respond",
        json=answer(offices.platform_seal),
        headers=offices.platform_responder,
    )
    assert response.status == 200, await response.text()
    code = (await response.json())["answer_code"]
    verify = await api.get(f"/v1/verify/{code}?purpose=demo", headers=demo.auth(Role.VERIFIER))
    shown = await verify.json()
    assert shown["issuer"] == {"unit_name": PLATFORM_UNIT, "unit_code": PLATFORM_CODE}
    assert shown["seal_kind"] == "verification"
    pledge = {"status": "pledged", "reason": "质押"}
    # the seal's unit may not change it; the data owner (the responding office) may
    refused = await api.post(
        f"/v1/certificates/{code}/status", json=pledge, headers=offices.platform_issuer
    )
    assert refused.status == 403
    changed = await api.post(
        f"/v1/certificates/{code}/status", json=pledge, headers=demo.auth(Role.ISSUER)
    )
    assert changed.status == 200, await changed.text()
    # a signer of no office cannot use the platform's seal at all
    direct = await api.post(
        "/v1/certificates",
        json=proof_request(offices.platform_seal),
        headers=offices.unofficed_signer,
    )
    assert (direct.status, (await direct.json())["code"]) == (403, "no-office")


async def test_a_request_needs_the_holders_consent_where_the_city_asks_for_it(
    demo: Demo, offices: Offices, clock: Clock, gateway_client: GatewayClient
) -> None:
    """consent_required: a request about a holder is registered only with the holder's
    consent to the requesting office for that type of proof, one use each."""
    settings = dataclasses.replace(demo.settings, consent_required=True)
    api = await gateway_client(create_app(settings, clock=clock))
    refused = await api.post("/v1/requests", json=new_request(), headers=offices.requester)
    assert refused.status == 403
    assert (await refused.json())["code"] == "consent-required"
    granted = await api.post(
        "/v1/consents",
        json={
            "holder_id": HOLDER["id"],
            "grantee": offices.requester_id,
            "matter": "demo",
            "proof_types": ["无犯罪记录证明"],
            "expires_at": rfc3339(clock.now + 3600),
            "uses": 1,
        },
        headers=offices.portal,
    )
    assert granted.status == 201, await granted.text()
    token = {"Consent-Token": (await granted.json())["token"]}
    other_type = {**new_request(), "type": "户籍证明"}
    refused = await api.post(
        "/v1/requests", json=other_type, headers={**offices.requester, **token}
    )
    assert refused.status == 403  # the consent does not cover that type
    created = await api.post(
        "/v1/requests", json=new_request(), headers={**offices.requester, **token}
    )
    assert created.status == 201, await created.text()
    spent = await api.post(
        "/v1/requests", json=new_request(), headers={**offices.requester, **token}
    )
    assert spent.status == 403  # its one use is taken
