"""A requesting office told of its requests over HTTP (docs/design.md §18): answered (and
returned) and overdue, signed the Standard Webhooks way; another office's requests not."""

from __future__ import annotations

import json
import time
from typing import Any

from standardwebhooks import Webhook

from sealgate.gateway.app import create_app
from sealgate.gateway.keys import COURIER
from tests.gateway.clock import Clock
from tests.gateway.conftest import Demo, GatewayClient
from tests.gateway.test_notices import Receiver, receiver
from tests.gateway.test_requests import Offices, answer, offices, send, step

__all__ = ["offices", "receiver"]  # fixtures this module uses from others

DAY = 86400.0


async def test_a_requester_is_told_when_its_requests_are_answered_or_overdue(
    demo: Demo, offices: Offices, gateway_client: GatewayClient, receiver: Receiver
) -> None:
    clock = Clock(float(int(time.time())))
    app = create_app(demo.settings, clock=clock)
    api = await gateway_client(app)
    body = {"url": receiver.url, "events": ["request.answered", "request.overdue"]}
    made = await api.post("/v1/subscriptions", json=body, headers=offices.requester)
    assert made.status == 201, await made.text()
    subscription: dict[str, Any] = await made.json()
    # a verifier's events are not the requester's, nor a code list
    for bad in ({**body, "events": ["status.changed"]}, {**body, "codes": ["X"]}):
        refused = await api.post("/v1/subscriptions", json=bad, headers=offices.requester)
        assert refused.status == 400, await refused.text()

    answered = await send(api, offices)
    returned = await send(api, offices)
    late = await send(api, offices)
    status, _ = await step(
        api, offices, answered["id"], "respond", answer(demo.verification_seal)
    )
    assert status == 200
    status, _ = await step(api, offices, returned["id"], "return", {"reason": "材料不全"})
    assert status == 200
    await app[COURIER].round()
    clock.now += 40 * DAY  # past any tier's deadline, extensions and holidays included
    await app[COURIER].round()

    signer = Webhook(subscription["secret"])
    notices = [signer.verify(b, h) for h, b in receiver.received]
    assert all(n["subscription"] == subscription["id"] for n in notices)
    told = {(n["type"], n["data"]["request"]): n["data"] for n in notices}
    assert told[("request.answered", answered["id"])]["state"] == "answered"
    assert told[("request.answered", answered["id"])]["answer_code"]
    assert told[("request.answered", returned["id"])]["state"] == "returned"
    assert ("request.overdue", late["id"]) in told
    # a closed request is not late; each event told once
    assert ("request.overdue", answered["id"]) not in told
    assert ("request.overdue", returned["id"]) not in told
    assert len({n["id"] for n in notices}) == len(notices) == 3
    # nothing of the holder in a notice
    for _, raw in receiver.received:
        assert "holder" not in json.loads(raw)["data"]
