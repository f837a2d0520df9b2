"""Change notices over HTTP (docs/design.md §18), in one gateway with an injected clock
and a real aiohttp receiver: a verifier told of its codes' changes, signed the Standard
Webhooks way (checked with that project's library); a receiver down and then up again;
each client's subscriptions its own; bad bodies refused with nothing stored; subscribing
as a check of each code, counted when it fails."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from standardwebhooks import Webhook

from sealgate.gateway.app import create_app
from sealgate.gateway.keys import COURIER
from sealgate.gateway.provision import DEMO_PURPOSE, Provisioner
from sealgate.verify.code import CodeAuthority
from sealgate.verify.directory import LookupLimit, Role
from tests.gateway.clock import Clock
from tests.gateway.conftest import Demo, GatewayClient, proof_request
from tests.gateway.serving import free_port
from tests.waiting import eventually


@dataclass
class Receiver:
    """A webhook receiver on a port of its own, which a test stops and starts again."""

    port: int = field(default_factory=free_port)
    answer: int = 204
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _receive(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.read()))
        return web.Response(status=self.answer)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._receive)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    listening = Receiver()
    await listening.start()
    yield listening
    await listening.stop()


@pytest.fixture(scope="module")
def bank(demo: Demo) -> dict[str, str]:
    """A second verifier (another bank) with a small failed-lookup budget."""
    provisioner = Provisioner(demo.settings, root_pin=demo.credentials.root_pin)
    directory = provisioner.directory()
    try:
        client, token = provisioner.add_client(
            directory, name="另一家银行", role=Role.VERIFIER, purposes=[DEMO_PURPOSE]
        )
        directory.set_lookup_limit(client.client_id, LookupLimit(3, 3600))
    finally:
        directory.close()
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Served:
    api: TestClient[Any, Any]
    app: web.Application
    clock: Clock


@pytest.fixture
async def served(demo: Demo, gateway_client: GatewayClient) -> Served:
    clock = Clock(time.time())
    app = create_app(demo.settings, clock=clock)
    return Served(await gateway_client(app), app, clock)


async def seal(api: TestClient[Any, Any], demo: Demo) -> str:
    sealed = await api.post(
        "/v1/certificates", json=proof_request(demo.proof_seal), headers=demo.auth(Role.SIGNER)
    )
    assert sealed.status == 201, await sealed.text()
    code: str = (await sealed.json())["code"]
    return code


async def change(api: TestClient[Any, Any], demo: Demo, code: str, status: str) -> None:
    changed = await api.post(
        f"/v1/certificates/{code}/status",
        json={"status": status, "reason": "贷款质押"},
        headers=demo.auth(Role.ISSUER),
    )
    assert changed.status == 200, await changed.text()


async def subscribe(
    api: TestClient[Any, Any], auth: dict[str, str], url: str, codes: list[str]
) -> dict[str, Any]:
    body = {"url": url, "events": ["status.changed"], "codes": codes, "purpose": DEMO_PURPOSE}
    made = await api.post("/v1/subscriptions", json=body, headers=auth)
    assert made.status == 201, await made.text()
    view: dict[str, Any] = await made.json()
    return view


async def test_a_verifier_is_told_of_each_change_of_its_codes_signed(
    demo: Demo, served: Served, receiver: Receiver
) -> None:
    api, app = served.api, served.app
    verifier = demo.auth(Role.VERIFIER)
    watched, other = await seal(api, demo), await seal(api, demo)
    made = await subscribe(api, verifier, receiver.url, [watched])
    assert made["secret"].startswith("whsec_") and made["codes"] == [watched]
    shown = await api.get(f"/v1/subscriptions/{made['id']}", headers=verifier)
    assert "secret" not in await shown.json()  # shown once, at creation
    await change(api, demo, watched, "pledged")
    await change(api, demo, other, "pledged")  # not subscribed to
    await change(api, demo, watched, "valid")
    await app[COURIER].round()
    mine = [(h, b) for h, b in receiver.received if json.loads(b)["subscription"] == made["id"]]
    signer = Webhook(made["secret"])
    notices = [signer.verify(body, headers) for headers, body in mine]
    assert [(n["type"], n["data"]["code"], n["data"]["to"]) for n in notices] == [
        ("status.changed", watched, "pledged"),
        ("status.changed", watched, "valid"),
    ]
    assert [h["webhook-id"] for h, _ in mine] == [n["id"] for n in notices]
    assert "holder" not in notices[0]["data"] and "reason" not in notices[0]["data"]
    log = await (
        await api.get(f"/v1/subscriptions/{made['id']}/deliveries", headers=verifier)
    ).json()
    assert [(d["state"], d["attempts"], d["last_status"]) for d in log["items"]] == [
        ("delivered", 1, 204),
        ("delivered", 1, 204),
    ]


async def test_a_receiver_down_is_tried_again_until_it_is_up(
    demo: Demo, served: Served, receiver: Receiver
) -> None:
    api, app = served.api, served.app
    verifier = demo.auth(Role.VERIFIER)
    code = await seal(api, demo)
    made = await subscribe(api, verifier, receiver.url, [code])
    await receiver.stop()
    await change(api, demo, code, "pledged")
    await app[COURIER].round()
    path = f"/v1/subscriptions/{made['id']}/deliveries"
    [owed] = (await (await api.get(path, headers=verifier)).json())["items"]
    assert (owed["state"], owed["attempts"], owed["last_status"]) == ("pending", 1, None)
    assert owed["last_error"] and owed["next_attempt_at"]
    receiver.answer = 503  # up, but failing
    await receiver.start()
    served.clock.now += 5
    await app[COURIER].round()
    [owed] = (await (await api.get(path, headers=verifier)).json())["items"]
    assert (owed["state"], owed["attempts"], owed["last_status"]) == ("pending", 2, 503)
    receiver.answer = 200
    await app[COURIER].round()  # not due yet: backing off (10 s after the second failure)
    assert len(receiver.received) == 1
    served.clock.now += 10
    await app[COURIER].round()
    [owed] = (await (await api.get(path, headers=verifier)).json())["items"]
    assert (owed["state"], owed["attempts"], owed["last_status"]) == ("delivered", 3, 200)
    ids = {h["webhook-id"] for h, _ in receiver.received}
    assert len(receiver.received) == 2 and len(ids) == 1  # one event, the same id each time


async def test_a_client_sees_and_deletes_only_its_own(
    demo: Demo, served: Served, bank: dict[str, str], receiver: Receiver
) -> None:
    api = served.api
    verifier = demo.auth(Role.VERIFIER)
    made = await subscribe(api, verifier, receiver.url, [await seal(api, demo)])
    path = f"/v1/subscriptions/{made['id']}"
    for method, target in (("GET", path), ("DELETE", path), ("GET", path + "/deliveries")):
        refused = await api.request(method, target, headers=bank)
        assert refused.status == 404, await refused.text()
        assert (await refused.json())["code"] == "unknown-subscription"
    listed = await (await api.get("/v1/subscriptions", headers=bank)).json()
    assert made["id"] not in [s["id"] for s in listed["items"]]
    issuer = await api.get("/v1/subscriptions", headers=demo.auth(Role.ISSUER))
    assert issuer.status == 403
    deleted = await api.delete(path, headers={**verifier, "X-Operator": "ops-1"})
    assert deleted.status == 204
    assert (await api.get(path, headers=verifier)).status == 404

    def trail() -> list[tuple[str, str, str]]:
        with sqlite3.connect(demo.settings.audit_path) as store:
            return store.execute(
                "SELECT action, result, detail FROM audit"
                " WHERE action IN ('subscribe', 'unsubscribe') AND detail LIKE ? ORDER BY seq",
                (f"%{made['id']}%",),
            ).fetchall()

    # the writer process chains the journal into the store a little behind
    actions = await eventually(lambda: len(trail()) == 5 and trail(), what="the records")
    assert [(a, r) for a, r, _ in actions] == [
        ("subscribe", "intent"),
        ("subscribe", "201"),
        ("unsubscribe", "404"),  # the other bank's try: refused, and no intent
        ("unsubscribe", "intent"),
        ("unsubscribe", "204"),
    ]
    assert "ops-1" in actions[-1][2]  # who at the bank ended it
    assert "/hook" not in actions[0][2]  # the host only, never the URL's path or query


def stored(demo: Demo) -> int:
    with sqlite3.connect(demo.settings.sqlite_path) as registry:
        return int(registry.execute("SELECT count(*) FROM subscriptions").fetchone()[0])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://bank.example/hook"}, "url"),
        ({"url": "http://bank.example/hook"}, "url"),  # plain http off the loopback
        ({"url": "https://169.254.169.254/latest"}, "url"),  # cloud metadata
        ({"url": "https://10.1.2.3/hook"}, "url"),
        ({"url": "https://[fe80::1]/hook"}, "url"),
        ({"url": "https://user:pw@bank.example/hook"}, "url"),
        ({"url": "https://no-such-host.invalid/hook"}, "url"),
        ({"events": ["status.exploded"]}, "events[0]"),
        ({"events": []}, "events"),
        ({"events": ["request.answered"]}, "events"),  # a requester's, not a verifier's
        ({"codes": []}, "codes"),
        ({"purpose": None}, "purpose"),
        ({"extra": 1}, "extra"),
    ],
)
async def test_a_bad_subscription_is_refused_and_nothing_stored(
    demo: Demo, served: Served, body: dict[str, Any], field: str
) -> None:
    api = served.api
    code = await seal(api, demo)
    full = {
        "url": "http://127.0.0.1:9/hook",
        "events": ["status.changed"],
        "codes": [code],
        "purpose": DEMO_PURPOSE,
        **body,
    }
    full = {k: v for k, v in full.items() if v is not None}
    before = stored(demo)
    refused = await api.post("/v1/subscriptions", json=full, headers=demo.auth(Role.VERIFIER))
    assert refused.status == 400, await refused.text()
    assert (await refused.json())["field"] == field
    assert stored(demo) == before


async def test_subscribing_is_a_check_of_each_code(
    demo: Demo, served: Served, bank: dict[str, str], receiver: Receiver
) -> None:
    api = served.api
    code = await seal(api, demo)
    # genuine (its keyed tag holds) but registered to no proof: a guess that could hit
    settings = demo.settings
    unknown = str(CodeAuthority(settings.read_secret("code-key"), settings.region).issue())
    before = stored(demo)
    wrong_purpose = await api.post(
        "/v1/subscriptions",
        json={"url": receiver.url, "events": ["status.changed"], "codes": [code], "purpose": "x"},
        headers=bank,
    )
    assert wrong_purpose.status == 403
    for _ in range(3):  # the bank's budget: 3 failed lookups
        refused = await api.post(
            "/v1/subscriptions",
            json={
                "url": receiver.url,
                "events": ["status.changed"],
                "codes": [code, unknown],
                "purpose": DEMO_PURPOSE,
            },
            headers=bank,
        )
        assert refused.status == 404, await refused.text()
        assert (await refused.json())["code"] == "unknown-code"
    spent = await api.post(
        "/v1/subscriptions",
        json={
            "url": receiver.url,
            "events": ["status.changed"],
            "codes": [code],
            "purpose": DEMO_PURPOSE,
        },
        headers=bank,
    )
    assert spent.status == 429  # each refused subscription was a failed lookup
    assert stored(demo) == before
