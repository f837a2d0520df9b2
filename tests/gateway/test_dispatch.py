"""Remembered verifications answered before the router (``sealgate.gateway.dispatch``): the same
answers, refusals and audit records as the application's, over real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from yarl import URL

from sealgate.gateway.administration import new_token
from sealgate.gateway.app import create_app
from sealgate.gateway.dispatch import Dispatch
from sealgate.gateway.keys import AUDIT, FAILED_LOOKUPS
from sealgate.gateway.provision import Provisioner
from sealgate.gateway.throttle import Throttled
from sealgate.verify.directory import Client as DirectoryClient
from sealgate.verify.directory import Role
from tests.gateway.conftest import Demo, GatewayClient
from tests.gateway.scraped import value
from tests.gateway.test_audit import audit_store_locked
from tests.gateway.test_authorization import sealed_code

Client = TestClient[Any, Any]


def dispatch_of(api: Client) -> Dispatch:
    runner = api.server.runner
    assert runner is not None and runner.server is not None
    handler = runner.server.request_handler
    assert isinstance(handler, Dispatch)
    return handler


def audit_records(path: Path, request_id: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT action, client, role, purpose, code, result, detail FROM audit"
            " WHERE request = ? ORDER BY seq",
            (request_id,),
        ).fetchall()
    finally:
        conn.close()


async def remembered(api: Client, demo: Demo) -> tuple[str, Dispatch]:
    """A sealed code the gateway has verified once (the application's way) and so
    remembers, with the dispatch that answers it from now on."""
    code = await sealed_code(api, demo)
    response = await api.get(f"/v1/verify/{code}?purpose=demo", headers=demo.auth(Role.VERIFIER))
    assert response.status == 200
    return code, dispatch_of(api)


async def test_a_remembered_verification_is_answered_as_the_application_answers(
    demo: Demo, gateway_client: GatewayClient
) -> None:
    app = create_app(demo.settings)
    api = await gateway_client(app)
    code = await sealed_code(api, demo)
    dispatch = dispatch_of(api)
    verifier = demo.auth(Role.VERIFIER)
    answers = []
    ids = []
    offered = "11010519491231002X"  # anything a client sends, an identity number too
    for _ in range(2):
        answered = dispatch.answered
        response = await api.get(
            f"/v1/verify/{code}?purpose=demo", headers={**verifier, "X-Request-Id": offered}
        )
        assert response.status == 200
        # the gateway's own id, whichever way: a client's is kept only as a keyed hash
        ids.append(response.headers["X-Request-Id"])
        assert ids[-1] not in ("", offered)
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["Cache-Control"] == "no-store"
        answers.append((dispatch.answered - answered, json.loads(await response.read())))
    (by_app, first), (by_dispatch, second) = answers
    assert (by_app, by_dispatch) == (0, 1)
    first.pop("checked_at")
    second.pop("checked_at")
    assert first == second
    assert first["status"] == "valid" and first["code"] == code

    await app[AUDIT].checkpoint()
    trail = demo.settings.audit_path
    [app_record] = audit_records(trail, ids[0])
    [dispatch_record] = audit_records(trail, ids[1])
    assert dispatch_record == app_record
    assert app_record[:6] == ("verify", app_record[1], "verifier", "demo", code, "200")
    hashed = json.loads(app_record[6])["client_request"]
    assert len(hashed) == 32 and offered not in trail.read_bytes().decode(errors="replace")

    metrics = await (await api.get("/metrics")).text()
    labels = {"route": "/v1/verify/{code}", "method": "GET", "status": "200"}
    assert value(metrics, "sealgate_requests_total", **labels) == 2


async def test_a_new_request_id_when_none_or_a_bad_one_is_offered(api: Client, demo: Demo) -> None:
    code, dispatch = await remembered(api, demo)
    verifier = demo.auth(Role.VERIFIER)
    seen = set()
    for offered in ({}, {"X-Request-Id": "bad id with spaces"}):
        answered = dispatch.answered
        response = await api.get(f"/v1/verify/{code}?purpose=demo", headers={**verifier, **offered})
        assert response.status == 200 and dispatch.answered == answered + 1
        request_id = response.headers["X-Request-Id"]
        assert request_id != "bad id with spaces"
        seen.add(request_id)
    assert len(seen) == 2


@pytest.mark.parametrize(
    ("who", "query", "status", "problem"),
    [
        (Role.SIGNER, "purpose=demo", 403, "forbidden-role"),
        (Role.VERIFIER, "purpose=marketing", 403, "purpose-not-granted"),
        (Role.VERIFIER, "", 400, "invalid-request"),
        (None, "purpose=demo", 401, "unauthenticated"),
    ],
)
async def test_refusals_are_the_applications_even_when_all_else_is_remembered(
    api: Client, demo: Demo, who: Role | None, query: str, status: int, problem: str
) -> None:
    code, dispatch = await remembered(api, demo)
    headers = demo.auth(who) if who else {"Authorization": "Bearer sgt_unknown"}
    for _ in range(2):  # the second time, the client and the query are remembered too
        answered = dispatch.answered
        response = await api.get(f"/v1/verify/{code}?{query}", headers=headers)
        assert response.status == status
        assert response.headers["Content-Type"] == "application/problem+json"
        body = await response.json()
        assert body["code"] == problem and body["request_id"] == response.headers["X-Request-Id"]
        assert dispatch.answered == answered


async def test_the_role_is_checked_even_for_a_signer_holding_a_purpose(
    api: Client, demo: Demo
) -> None:
    # Provisioning never grants a signer a purpose; a directory row may still say so.
    directory = Provisioner(demo.settings).directory()
    token = new_token()
    directory.add_client(
        DirectoryClient(
            "C-odd-signer", "odd", Role.SIGNER, None, frozenset(), frozenset({"demo"}), 0.0
        ),
        token,
    )
    directory.close()
    code, dispatch = await remembered(api, demo)
    for _ in range(2):
        answered = dispatch.answered
        response = await api.get(
            f"/v1/verify/{code}?purpose=demo", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status == 403
        assert (await response.json())["code"] == "forbidden-role"
        assert dispatch.answered == answered


async def test_a_client_out_of_failure_budget_is_refused_by_the_application(
    demo: Demo, gateway_client: GatewayClient
) -> None:
    app = create_app(demo.settings)
    api = await gateway_client(app)
    code, dispatch = await remembered(api, demo)
    verifier_id = next(c.client_id for c, _ in demo.credentials.clients if c.role is Role.VERIFIER)
    limiter = app[FAILED_LOOKUPS]
    for _ in range(500):
        with contextlib.suppress(Throttled):  # past the 100th: counted, and said so
            limiter.failed(verifier_id)
    answered = dispatch.answered
    response = await api.get(f"/v1/verify/{code}?purpose=demo", headers=demo.auth(Role.VERIFIER))
    assert response.status == 429
    assert int(response.headers["Retry-After"]) >= 1
    assert dispatch.answered == answered


@pytest.mark.parametrize(
    "target",
    [
        "/v1/verify/{percent}?purpose=demo",  # the router decodes; the dispatch does not
        "/v1/verify/{code}/?purpose=demo",
        "/v1/verify/{code}?purpose=%64emo",
        "/v1/verify/{lower}?purpose=demo",  # typed otherwise: checked anew, then remembered
        "/v1/verify/{wide}?purpose=demo",  # full width, en dashes: as an input method types
    ],
)
async def test_other_spellings_go_to_the_application_and_say_the_same(
    api: Client, demo: Demo, target: str
) -> None:
    code, dispatch = await remembered(api, demo)
    wide = code.translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)}).replace("\uff0d", "\u2013")
    spelled = target.format(
        code=code,
        lower=code.lower(),
        percent="%" + f"{ord(code[0]):02X}" + code[1:],
        wide=urllib.parse.quote(wide),
    )
    answered = dispatch.answered
    # sent as written: yarl would otherwise decode what needs no encoding
    url = URL(str(api.make_url("")).rstrip("/") + spelled, encoded=True)
    response = await api.session.get(url, headers=demo.auth(Role.VERIFIER))
    assert dispatch.answered == answered
    if target.startswith("/v1/verify/{code}/"):
        assert response.status == 404  # a trailing slash is not part of any code
        return
    assert response.status == 200
    assert (await response.json())["code"] == code


async def test_head_goes_to_the_application(api: Client, demo: Demo) -> None:
    code, dispatch = await remembered(api, demo)
    answered = dispatch.answered
    response = await api.head(f"/v1/verify/{code}?purpose=demo", headers=demo.auth(Role.VERIFIER))
    assert response.status == 200
    assert dispatch.answered == answered


async def test_a_status_change_reaches_the_remembered_answer(api: Client, demo: Demo) -> None:
    code, dispatch = await remembered(api, demo)
    response = await api.post(
        f"/v1/certificates/{code}/status",
        json={"status": "revoked", "reason": "lost"},
        headers=demo.auth(Role.ISSUER),
    )
    assert response.status == 200
    answered = dispatch.answered
    for _ in range(2):  # whichever way each takes, neither may answer "valid"
        response = await api.get(
            f"/v1/verify/{code}?purpose=demo", headers=demo.auth(Role.VERIFIER)
        )
        assert (await response.json())["status"] == "revoked"
    assert dispatch.answered > answered  # and the dispatch answered from the new status


async def test_no_answer_leaves_unless_its_audit_record_is_written(
    demo: Demo, gateway_client: GatewayClient
) -> None:
    app = create_app(demo.settings)
    api = await gateway_client(app)
    code, dispatch = await remembered(api, demo)
    audit = app[AUDIT]
    with audit_store_locked(demo.settings.audit_path):
        # the first record waits in the journal; once it has waited too long, refusals
        response = await api.get(
            f"/v1/verify/{code}?purpose=demo", headers=demo.auth(Role.VERIFIER)
        )
        assert response.status == 200
        journaled = response.headers["X-Request-Id"]
        for _ in range(100):
            if not audit.healthy:
                break
            await asyncio.sleep(0.05)
        answered = dispatch.answered
        response = await api.get(
            f"/v1/verify/{code}?purpose=demo", headers=demo.auth(Role.VERIFIER)
        )
        assert dispatch.answered == answered + 1
        assert response.status == 503
        body = await response.json()
        assert body["code"] == "audit-unavailable"
        unaudited = response.headers["X-Request-Id"]
        assert unaudited == body["request_id"]
        assert body["status"] == 503
    await audit.flush()
    assert audit_records(demo.settings.audit_path, unaudited) == []
    assert len(audit_records(demo.settings.audit_path, journaled)) == 1
