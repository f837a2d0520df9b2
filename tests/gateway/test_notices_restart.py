"""Change notices survive a gateway killed outright (docs/design.md §18): a real
`sealgate serve` with two workers, a real aiohttp receiver, status changes made before,
across and after a SIGKILL of the whole gateway and its restart on the same home. The
receiver sees every change made, exactly once per event id after de-duplication, every
signature valid by the Standard Webhooks library."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
from collections import Counter
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from standardwebhooks import Webhook

from sealgate.gateway.provision import DEMO_PURPOSE, init_home
from sealgate.verify.directory import Role
from tests.gateway.conftest import Demo, proof_request
from tests.gateway.serving import free_port, serving
from tests.waiting import eventually

pytestmark = pytest.mark.processes


def session_alive(session: int) -> bool:
    found = subprocess.run(["pgrep", "-s", str(session)], capture_output=True, check=False)
    return bool(found.stdout.strip())


CODES = 12
# A delivery claimed by the killed gateway waits out its claim (30 s) before another
# takes it: the wait below allows for that and the backoff after it.
DELIVERED_WITHIN = 90.0
HOLD = 2.0  # the receiver's time to answer


async def test_every_change_is_told_once_across_a_sigkill_and_restart(
    tmp_path: Any, aiohttp_server: Any
) -> None:
    settings, credentials = init_home(tmp_path / "home", demo=True)
    assert credentials is not None
    demo = Demo(settings, credentials)
    received: list[tuple[dict[str, str], bytes]] = []

    async def receive(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.read()))
        await asyncio.sleep(HOLD)  # slow enough that the kill finds deliveries unanswered
        return web.Response(status=204)

    receiver = web.Application()
    receiver.router.add_post("/hook", receive)
    hook = str((await aiohttp_server(receiver)).make_url("/hook"))

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    issuer, verifier = demo.auth(Role.ISSUER), demo.auth(Role.VERIFIER)
    # no kept-alive connection outlives the killed gateway
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:

        async def change(code: str, status: str) -> None:
            async with http.post(
                f"{base}/v1/certificates/{code}/status",
                json={"status": status, "reason": "质押"},
                headers=issuer,
            ) as answer:
                assert answer.status == 200, await answer.text()

        with serving(settings.home, port, workers=2) as gateway:
            body = {"items": [proof_request(demo.proof_seal) for _ in range(CODES)]}
            async with http.post(
                f"{base}/v1/certificates", json=body, headers=demo.auth(Role.SIGNER)
            ) as sealed:
                assert sealed.status == 201
                codes = [item["code"] for item in (await sealed.json())["items"]]
            subscription = {
                "url": hook,
                "events": ["status.changed"],
                "codes": codes,
                "purpose": DEMO_PURPOSE,
            }
            async with http.post(
                f"{base}/v1/subscriptions", json=subscription, headers=verifier
            ) as made:
                assert made.status == 201, await made.text()
                view = await made.json()
                secret, subscription_id = view["secret"], view["id"]
            for code in codes[: CODES // 2]:
                await change(code, "pledged")
            # Killed at once, workers and all, with deliveries claimed and in flight.
            await eventually(lambda: len(received) >= 2, what="the first notices")
            os.killpg(gateway.pid, signal.SIGKILL)
            gateway.wait()
            # every worker gone, so no dying one still holds the port when it serves again
            await eventually(lambda: not session_alive(gateway.pid), what="the killed workers gone")
        with serving(settings.home, port, workers=2):
            for code in codes[CODES // 2 :]:
                await change(code, "pledged")
            for code in codes[: CODES // 3]:
                await change(code, "valid")  # released again
            with sqlite3.connect(settings.sqlite_path) as registry:
                made_changes = {
                    f"status-{seq}"
                    for (seq,) in registry.execute(
                        f"SELECT seq FROM status_history WHERE code IN ({','.join('?' * CODES)})",  # noqa: S608 - placeholders only
                        [c.replace("-", "") for c in codes],
                    )
                }
            assert len(made_changes) == CODES + CODES // 3

            def told() -> set[str]:
                return {h["webhook-id"] for h, _ in received}

            async def acknowledged() -> bool:
                async with http.get(
                    f"{base}/v1/subscriptions/{subscription_id}/deliveries", headers=verifier
                ) as log:
                    items = (await log.json())["items"]
                return len(items) == len(made_changes) and all(
                    d["state"] == "delivered" for d in items
                )

            # Every notice answered 2xx, as the subscription's delivery log says, the
            # ones the killed gateway left unanswered included.
            await eventually(
                acknowledged,
                timeout=DELIVERED_WITHIN,
                interval=0.5,
                what="every notice delivered",
            )
    assert told() == made_changes  # none made up, none missed
    checker = Webhook(secret)
    notices = [checker.verify(body, headers) for headers, body in received]  # every one
    by_id = {n["id"]: n for n in notices}
    assert len(by_id) == len(made_changes)  # exactly once per event id, after de-duplication
    assert all(json.loads(b)["id"] == h["webhook-id"] for h, b in received)
    # The notices the killed gateway had sent and not heard back of came again.
    repeats = Counter(h["webhook-id"] for h, _ in received)
    assert sum(n - 1 for n in repeats.values()) >= 1
    print(
        f"\n{len(received)} deliveries of {len(made_changes)} events; repeated: "
        f"{sum(n - 1 for n in repeats.values())}"
    )
