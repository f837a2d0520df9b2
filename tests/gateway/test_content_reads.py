"""``GET /v1/verify/{code}?fields=content`` over real HTTP: the content only where the
purpose's matter grants it for the proof's type (and, where the city requires it, with
the holder's consent for that matter); every refusal a 403 without a word of content;
the read in the audit trail; the remembered answers never serving it."""

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
from sealgate.gateway.provision import Provisioner
from sealgate.verify.directory import Role
from sealgate.verify.matters import new_matter
from tests.gateway.conftest import Demo, GatewayClient
from tests.gateway.test_audit import rows
from tests.gateway.test_dispatch import dispatch_of
from tests.gateway.test_status import seal
from tests.waiting import eventually

Client = TestClient[Any, Any]
HOLDER_ID = "11010519491231002X"  # proof_request's holder
TYPE = "无犯罪记录证明"  # the demo matter reads its content, every field
FACTS = {"结论": "经查询，未发现有犯罪记录", "用途": "入职"}


@pytest.fixture(scope="module")
def tokens(demo: Demo) -> dict[str, str]:
    """Verifiers granted matters of their own: one reading one field of TYPE, one
    reading no content at all (a purpose migrated from before the table)."""
    provisioner = Provisioner(demo.settings)
    directory = provisioner.directory()
    try:
        now = time.time()
        directory.add_matter(new_matter("hr", "入职背景审查", [f"{TYPE}=结论"], now))
        directory.add_matter(new_matter("loan", "贷款审批", [], now))
        made = {}
        for purpose in ("hr", "loan"):
            _, made[purpose] = provisioner.add_client(
                directory, name=purpose, role=Role.VERIFIER, purposes=[purpose]
            )
        return made
    finally:
        directory.close()


@pytest.fixture
async def api(demo: Demo, gateway_client: GatewayClient, tokens: dict[str, str]) -> Client:
    return await gateway_client(create_app(demo.settings))  # after the matters: its catalog


async def read(
    api: Client, code: str, purpose: str = "demo", token: str | None = None, **headers: str
) -> Any:
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    return await api.get(
        f"/v1/verify/{code}", params={"purpose": purpose, "fields": "content"},
        headers={**auth, **headers},
    )  # fmt: skip


async def refused(response: Any, status: int, code: str) -> dict[str, Any]:
    text = await response.text()
    assert response.status == status, text
    assert response.content_type == "application/problem+json"
    for fact in (*FACTS.values(), HOLDER_ID, 'content":'):
        assert fact not in text
    problem: dict[str, Any] = json.loads(text)
    assert problem["code"] == code
    return problem


async def test_a_granted_matter_reads_the_sealed_content(api: Client, demo: Demo) -> None:
    code = await seal(api, demo)
    # verified once first: the remembered answer (without content) must not answer after
    plain = await api.get(f"/v1/verify/{code}?purpose=demo", headers=demo.auth(Role.VERIFIER))
    assert "content" not in await plain.json()
    answered = dispatch_of(api).answered
    response = await read(api, code, token=demo.token(Role.VERIFIER))
    assert response.status == 200, await response.text()
    assert response.headers["Cache-Control"] == "no-store"
    view = await response.json()
    assert view["content"] == FACTS
    assert view["code"] == code and view["type"] == TYPE and view["status"] == "valid"
    assert view["holder"] == {"kind": "person", "name": "张*", "id": "1101**********002X"}
    assert dispatch_of(api).answered == answered  # the application's answer
    # the audit record says which code, matter and that content was read
    request_id = response.headers["X-Request-Id"]
    found = await eventually(lambda: rows(demo.settings.audit_path, f"request = '{request_id}'"))
    (_, action, _, _, purpose, recorded, result, detail) = found[0]
    assert (action, purpose, recorded, result) == ("verify", "demo", code, "200")
    assert json.loads(detail)["fields"] == "content" and json.loads(detail)["matter"] == "demo"
    assert HOLDER_ID not in detail


async def test_the_holders_number_in_the_content_is_masked(api: Client, demo: Demo) -> None:
    content = {"结论": f"身份证号 {HOLDER_ID.lower()} 无犯罪记录", "list": [HOLDER_ID]}
    code = await seal(api, demo, content=content)
    response = await read(api, code, token=demo.token(Role.VERIFIER))
    text = await response.text()
    assert response.status == 200, text
    assert HOLDER_ID not in text.upper()
    assert json.loads(text)["content"] == {
        "结论": "身份证号 1101**********002X 无犯罪记录",
        "list": ["1101**********002X"],
    }


async def test_a_matter_reads_only_its_fields(
    api: Client, demo: Demo, tokens: dict[str, str]
) -> None:
    code = await seal(api, demo)
    response = await read(api, code, "hr", tokens["hr"])
    assert response.status == 200, await response.text()
    assert (await response.json())["content"] == {"结论": FACTS["结论"]}


async def test_no_content_without_the_matters_grant(
    api: Client, demo: Demo, tokens: dict[str, str]
) -> None:
    code = await seal(api, demo)
    other_type = await seal(api, demo, type="婚姻状况证明")
    await refused(await read(api, code, "loan", tokens["loan"]), 403, "content-not-granted")
    await refused(await read(api, other_type, token=demo.token(Role.VERIFIER)), 403,
                  "content-not-granted")  # fmt: skip
    # a purpose not granted to this client, and a client that is no verifier
    await refused(await read(api, code, "loan", demo.token(Role.VERIFIER)), 403,
                  "purpose-not-granted")  # fmt: skip
    await refused(await read(api, code, token=demo.token(Role.ISSUER)), 403, "forbidden-role")
    # the status without fields is still answered to the status-only matter
    plain = await api.get(
        f"/v1/verify/{code}?purpose=loan", headers={"Authorization": f"Bearer {tokens['loan']}"}
    )
    assert plain.status == 200 and "content" not in await plain.json()


@pytest.mark.parametrize("query", ["fields=all", "fields=content&fields=content", "fields="])
async def test_other_fields_are_refused(api: Client, demo: Demo, query: str) -> None:
    code = await seal(api, demo)
    response = await api.get(
        f"/v1/verify/{code}?purpose=demo&{query}", headers=demo.auth(Role.VERIFIER)
    )
    problem = await refused(response, 400, "invalid-request")
    assert problem["field"] == "fields"


async def test_an_unknown_code_is_the_one_404(api: Client, demo: Demo) -> None:
    response = await read(api, "430900-ZDXE31-DD2417-Z7GDVP", token=demo.token(Role.VERIFIER))
    await refused(response, 404, "unknown-code")


async def test_where_consent_is_required_the_holders_consent_for_the_matter(
    demo: Demo, gateway_client: GatewayClient, tokens: dict[str, str]
) -> None:
    settings = dataclasses.replace(demo.settings, consent_required=True)
    api = await gateway_client(create_app(settings))
    code = await seal(api, demo)
    verifier = demo.token(Role.VERIFIER)
    verifier_id = next(c.client_id for c, _ in demo.credentials.clients if c.role is Role.VERIFIER)

    async def grant(matter: str, types: list[str]) -> str:
        expires = rfc3339(time.time() + 3600)
        body = {"holder_id": HOLDER_ID, "grantee": verifier_id, "matter": matter,
                "proof_types": types, "expires_at": expires, "uses": 1}  # fmt: skip
        response = await api.post("/v1/consents", json=body, headers=demo.auth(Role.PORTAL))
        assert response.status == 201, await response.text()
        token: str = (await response.json())["token"]
        return token

    await refused(await read(api, code, token=verifier), 403, "consent-required")
    for wrong in (await grant("loan", [TYPE]), await grant("demo", ["婚姻状况证明"]), "x.y.z"):
        response = await read(api, code, token=verifier, **{CONSENT_HEADER: wrong})
        await refused(response, 403, "consent-invalid")
    consent = await grant("demo", [TYPE])
    response = await read(api, code, token=verifier, **{CONSENT_HEADER: consent})
    assert response.status == 200, await response.text()
    assert (await response.json())["content"] == FACTS
    request_id = response.headers["X-Request-Id"]
    found = await eventually(lambda: rows(demo.settings.audit_path, f"request = '{request_id}'"))
    detail = json.loads(found[0][7])
    assert detail["matter"] == "demo" and detail["consent"].startswith("CN-")
    # its one use is spent
    again = await read(api, code, token=verifier, **{CONSENT_HEADER: consent})
    await refused(again, 403, "consent-invalid")
