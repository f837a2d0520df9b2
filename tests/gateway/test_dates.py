"""A proof's dates through real HTTP: not yet valid before valid_from, refused when already
ended (or sealed expired, for a city that issues for the archive), and every 201 showing
the status a verification shows right after.

The gateway's clock is injected (``create_app(clock=...)``): a proof's first day is
reached by moving it, not by waiting. Days are China Standard Time's, as the dates mean.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from sealgate.gateway.app import create_app
from sealgate.gateway.config_file import load_settings
from sealgate.gateway.home import HomeError
from sealgate.gateway.keys import REGISTRY
from sealgate.gateway.provision import init_home
from sealgate.verify.directory import Role
from sealgate.verify.validity import LOCAL_ZONE
from tests.gateway.clock import DAY, Clock, first_moment
from tests.gateway.conftest import Demo, GatewayClient, proof_request
from tests.gateway.serving import free_port, serving

Client = TestClient[Any, Any]
TYPE = "无犯罪记录证明"


def in_force(clock: Clock) -> dict[str, str]:
    """A period that started ten days ago and lasts well past any day a test moves to."""
    return {
        "valid_from": (clock.today - 10 * DAY).isoformat(),
        "valid_until": (clock.today + 200 * DAY).isoformat(),
    }


_serials = itertools.count(1)


def new_holder() -> dict[str, str]:
    """A person of their own (a valid 身份证号), so each test's reuse lookup sees only its
    own proofs."""
    body = f"43090219900101{next(_serials):03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    check = "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]
    return {"kind": "person", "id": body + check, "name": "李四"}


async def seal_answer(api: Client, demo: Demo, **overrides: Any) -> Any:
    response = await api.post(
        "/v1/certificates",
        json=proof_request(demo.proof_seal, **overrides),
        headers=demo.auth(Role.SIGNER),
    )
    assert response.status == 201, await response.text()
    return await response.json()


async def verified_status(api: Client, demo: Demo, code: str) -> str:
    response = await api.get(f"/v1/verify/{code}?purpose=demo", headers=demo.auth(Role.VERIFIER))
    assert response.status == 200, await response.text()
    status: str = (await response.json())["status"]
    return status


async def reused(api: Client, demo: Demo, holder: dict[str, str]) -> list[str]:
    response = await api.get(
        "/v1/proofs",
        params={"holder_id": holder["id"], "type": TYPE, "purpose": "demo"},
        headers=demo.auth(Role.VERIFIER),
    )
    assert response.status == 200, await response.text()
    return [item["code"] for item in (await response.json())["items"]]


async def change(api: Client, demo: Demo, code: str, status: str, **extra: Any) -> Any:
    return await api.post(
        f"/v1/certificates/{code}/status",
        json={"status": status, "reason": "测试", **extra},
        headers=demo.auth(Role.ISSUER),
    )


async def history(api: Client, demo: Demo, code: str) -> Any:
    response = await api.get(f"/v1/certificates/{code}/status", headers=demo.auth(Role.ISSUER))
    assert response.status == 200
    return await response.json()


async def test_a_proof_not_yet_valid_is_shown_so_not_reused_nor_pledged_until_its_first_day(
    demo: Demo, gateway_client: GatewayClient
) -> None:
    clock = Clock(time.time())
    api = await gateway_client(create_app(demo.settings, clock=clock))
    holder = new_holder()
    first_day = clock.today + DAY
    current = await seal_answer(api, demo, holder=holder, **in_force(clock))
    ahead = await seal_answer(
        api,
        demo,
        holder=holder,
        valid_from=first_day.isoformat(),
        valid_until=(first_day + 90 * DAY).isoformat(),
    )
    code = ahead["code"]
    assert ahead["status"] == "not-yet-valid"
    # twice: the second answer is the remembered one (in-process copy, memoised body)
    assert [await verified_status(api, demo, code) for _ in range(2)] == ["not-yet-valid"] * 2
    assert await reused(api, demo, holder) == [current["code"]]

    response = await change(api, demo, code, "pledged")
    assert response.status == 409
    problem = await response.json()
    assert problem["code"] == "not-yet-valid"
    assert "not valid yet" in problem["detail"]
    state = await history(api, demo, code)
    assert (state["status"], state["history"]) == ("not-yet-valid", [])

    clock.now = first_moment(first_day) - 1  # 23:59:59 the evening before, China time
    assert await verified_status(api, demo, code) == "not-yet-valid"
    assert (await change(api, demo, code, "pledged")).status == 409

    clock.now = first_moment(first_day)  # its first day: nothing stored changed, nor needs to
    assert [await verified_status(api, demo, code) for _ in range(2)] == ["valid"] * 2
    assert sorted(await reused(api, demo, holder)) == sorted([current["code"], code])
    response = await change(api, demo, code, "pledged")
    assert response.status == 200, await response.text()
    assert await verified_status(api, demo, code) == "pledged"


async def test_a_proof_not_yet_valid_may_be_revoked_or_superseded_but_supersedes_none(
    demo: Demo, gateway_client: GatewayClient
) -> None:
    clock = Clock(time.time())
    api = await gateway_client(create_app(demo.settings, clock=clock))
    holder = new_holder()
    tomorrow = (clock.today + DAY).isoformat()
    older = (await seal_answer(api, demo, holder=holder, **in_force(clock)))["code"]
    clock.now += 1  # a successor must be issued later
    ahead = (await seal_answer(api, demo, holder=holder, valid_from=tomorrow))["code"]
    response = await change(api, demo, older, "changed", superseded_by=ahead)
    assert response.status == 422
    problem = await response.json()
    assert (problem["code"], problem["field"]) == ("invalid-supersession", "superseded_by")
    assert "not-yet-valid" in problem["detail"]
    assert await verified_status(api, demo, older) == "valid"

    clock.now += 1
    newer = (await seal_answer(api, demo, holder=holder, **in_force(clock)))["code"]
    response = await change(api, demo, ahead, "changed", superseded_by=newer)
    assert response.status == 200, await response.text()
    assert await verified_status(api, demo, ahead) == "changed"
    other = (await seal_answer(api, demo, holder=holder, valid_from=tomorrow))["code"]
    assert (await change(api, demo, other, "revoked")).status == 200
    assert await verified_status(api, demo, other) == "revoked"


async def test_sealing_a_proof_already_ended_is_refused_and_nothing_is_stored(
    demo: Demo, gateway_client: GatewayClient
) -> None:
    clock = Clock(float(int(time.time())))
    api = await gateway_client(create_app(demo.settings, clock=clock))
    registry = api.app[REGISTRY]
    before = await registry.count()
    yesterday = clock.today - DAY
    ended = {"valid_from": (yesterday - 30 * DAY).isoformat(), "valid_until": yesterday.isoformat()}
    signer = demo.auth(Role.SIGNER)

    response = await api.post(
        "/v1/certificates", json=proof_request(demo.proof_seal, **ended), headers=signer
    )
    assert response.status == 422
    problem = await response.json()
    assert (problem["code"], problem["field"]) == ("validity-ended", "valid_until")
    assert response.headers.get("Retry-After") is None  # the same request fails every time

    # a batch is refused whole, naming the item
    batch = {
        "items": [
            proof_request(demo.proof_seal, **in_force(clock)),
            proof_request(demo.proof_seal, **ended),
        ]
    }
    response = await api.post("/v1/certificates", json=batch, headers=signer)
    assert response.status == 422
    assert (await response.json())["field"] == "items[1].valid_until"

    # the instant valid_until names is already outside the validity
    just_now = dt.datetime.fromtimestamp(clock.now, LOCAL_ZONE).isoformat()
    response = await api.post(
        "/v1/certificates",
        json=proof_request(demo.proof_seal, valid_from=ended["valid_from"], valid_until=just_now),
        headers={**signer, "Idempotency-Key": "ended-1"},
    )
    assert response.status == 422
    assert (await response.json())["code"] == "validity-ended"
    assert await registry.count() == before

    # ending today (a date: through this whole day, China time) is still sealed, valid
    today = clock.today.isoformat()
    body = await seal_answer(api, demo, valid_from=ended["valid_from"], valid_until=today)
    assert body["status"] == "valid" == await verified_status(api, demo, body["code"])
    assert await registry.count() == before + 1


@pytest.fixture(scope="module")
def archival_home(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """A demo home whose city issues for the archive (config.toml, as an operator sets it)."""
    home = tmp_path_factory.mktemp("archival") / "home"
    settings, credentials = init_home(home, demo=True)
    assert credentials is not None and not settings.archival_issuance
    with (home / "config.toml").open("a", encoding="utf-8") as config:
        config.write("archival_issuance = true\n")
    return Demo(load_settings(home), credentials)


async def test_with_archival_issuance_an_ended_proof_is_sealed_and_shows_expired(
    archival_home: Demo, gateway_client: GatewayClient
) -> None:
    demo = archival_home
    assert demo.settings.archival_issuance
    clock = Clock(time.time())
    api = await gateway_client(create_app(demo.settings, clock=clock))
    before = await api.app[REGISTRY].count()
    yesterday = clock.today - DAY
    body = await seal_answer(
        api,
        demo,
        valid_from=(yesterday - 365 * DAY).isoformat(),
        valid_until=yesterday.isoformat(),
    )
    assert body["status"] == "expired"
    assert await verified_status(api, demo, body["code"]) == "expired"
    assert await api.app[REGISTRY].count() == before + 1
    # expired: it cannot be put into use
    response = await change(api, demo, body["code"], "pledged")
    assert (response.status, (await response.json())["code"]) == (409, "transition-not-allowed")


async def test_every_201_shows_the_status_a_verification_shows_right_after(
    demo: Demo, gateway_client: GatewayClient
) -> None:
    clock = Clock(time.time())
    api = await gateway_client(create_app(demo.settings, clock=clock))
    today, signer = clock.today, demo.auth(Role.SIGNER)
    soon = dt.datetime.fromtimestamp(int(clock.now) + 1, LOCAL_ZONE).isoformat()
    periods: list[dict[str, Any]] = [
        {"valid_from": today.isoformat(), "valid_until": (today + 9 * DAY).isoformat()},
        {"valid_from": (today - 9 * DAY).isoformat(), "valid_until": today.isoformat()},
        {"valid_from": (today + DAY).isoformat(), "valid_until": (today + 9 * DAY).isoformat()},
        {"valid_from": (today + DAY).isoformat(), "valid_until": None},  # open-ended
        {"valid_from": soon, "valid_until": None},  # a second from now
    ]
    answers = [await seal_answer(api, demo, **period) for period in periods]
    response = await api.post(
        "/v1/certificates",
        json={"items": [proof_request(demo.proof_seal, **period) for period in periods]},
        headers={**signer, "Idempotency-Key": "dates-batch"},
    )
    assert response.status == 201
    items = (await response.json())["items"]
    shown = [a["status"] for a in answers]
    assert shown == ["valid", "valid", "not-yet-valid", "not-yet-valid", "not-yet-valid"]
    assert [i["status"] for i in items] == shown
    for answer in [*answers, *items]:
        assert answer["status"] == await verified_status(api, demo, answer["code"])

    # A replay later answers as a verification then would: the starts have come, and the
    # proof valid through today has ended.
    clock.now = first_moment(today + DAY)
    response = await api.post(
        "/v1/certificates",
        json={"items": [proof_request(demo.proof_seal, **period) for period in periods]},
        headers={**signer, "Idempotency-Key": "dates-batch"},
    )
    assert (response.status, response.headers.get("Idempotent-Replayed")) == (201, "true")
    replayed = (await response.json())["items"]
    assert [r["code"] for r in replayed] == [i["code"] for i in items]
    assert [r["status"] for r in replayed] == ["valid", "expired", "valid", "valid", "valid"]
    for answer in replayed:
        assert answer["status"] == await verified_status(api, demo, answer["code"])


def test_archival_issuance_is_read_from_the_config_and_off_by_default(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    config = home / "config.toml"
    for text, expected in (("", False), ("archival_issuance = true\n", True),
                           ('archival_issuance = "false"\n', False),
                           ('archival_issuance = "true"\n', True)):  # fmt: skip
        config.write_text('region = "430900"\n' + text, encoding="utf-8")
        assert load_settings(home).archival_issuance is expected
    config.write_text('archival_issuance = "ture"\n', encoding="utf-8")
    with pytest.raises(HomeError, match="archival_issuance"):
        load_settings(home)


@pytest.mark.processes
@pytest.mark.slow
async def test_a_served_gateway_under_a_mix_of_dates_acknowledges_exactly_what_it_stores(
    demo: Demo,
) -> None:
    """`sealgate serve` (two workers, the real clock) under concurrent sealings: ended,
    starting in two days, in force, and batches with one ended item. Every 201's proofs
    are stored and nothing else is; each 201 status is what verify answers; every proof
    not yet valid refuses its pledge."""
    today = Clock(time.time()).today
    periods: dict[str, dict[str, str]] = {
        "ended": {"valid_from": str(today - 40 * DAY), "valid_until": str(today - DAY)},
        # two days ahead: a run that crosses midnight still finds them not yet valid
        "ahead": {"valid_from": str(today + 2 * DAY), "valid_until": str(today + 90 * DAY)},
        "current": {"valid_from": str(today - 5 * DAY), "valid_until": str(today + 90 * DAY)},
    }
    kinds = [*periods, "batch with one ended", "batch"]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    registry = demo.settings.open_registry()
    answers: list[tuple[str, int, Any]] = []
    try:
        before = await registry.count()
        with serving(demo.home, port, workers=2):
            async with aiohttp.ClientSession() as session:
                limit = asyncio.Semaphore(6)

                async def seal(index: int) -> None:
                    kind = kinds[index % len(kinds)]
                    body: Any = proof_request(demo.proof_seal, **periods.get(kind, {}))
                    if kind.startswith("batch"):
                        last = periods["ended" if kind.endswith("ended") else "ahead"]
                        body = {
                            "items": [
                                *(proof_request(demo.proof_seal, **periods["current"]),) * 4,
                                proof_request(demo.proof_seal, **last),
                            ]
                        }
                    async with (
                        limit,
                        session.post(
                            f"{url}/v1/certificates", json=body, headers=demo.auth(Role.SIGNER)
                        ) as response,
                    ):
                        answers.append((kind, response.status, await response.json()))

                await asyncio.gather(*(seal(i) for i in range(60)))
                sealed = [
                    (proof["code"], proof["status"])
                    for _, status, body in answers
                    if status == 201
                    for proof in body.get("items", [body])
                ]
                for code, shown in sealed:
                    async with session.get(
                        f"{url}/v1/verify/{code}?purpose=demo", headers=demo.auth(Role.VERIFIER)
                    ) as response:
                        assert (await response.json())["status"] == shown, code
                    if shown == "not-yet-valid":
                        async with session.post(
                            f"{url}/v1/certificates/{code}/status",
                            json={"status": "pledged", "reason": "测试"},
                            headers=demo.auth(Role.ISSUER),
                        ) as response:
                            assert response.status == 409
                            assert (await response.json())["code"] == "not-yet-valid"
        refused = {kind for kind, status, _ in answers if status != 201}
        assert refused == {"ended", "batch with one ended"}
        assert all(body["code"] == "validity-ended" for _, s, body in answers if s != 201)
        assert len(answers) == 60
        assert sorted({shown for _, shown in sealed}) == ["not-yet-valid", "valid"]
        assert await registry.count() - before == len(sealed) == 12 * 1 + 12 * 1 + 12 * 5
    finally:
        await registry.close()
