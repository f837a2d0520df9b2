"""Instants in answers are written in the city's offset (+08:00 unless config says)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from sealgate.gateway.app import create_app
from sealgate.gateway.config_file import load_settings
from sealgate.gateway.home import HomeError
from sealgate.gateway.instants import CHINA, parse_offset, rfc3339, use_offset
from sealgate.verify.directory import Role
from tests.gateway.conftest import Demo, GatewayClient, proof_request

MOMENT = 1_796_000_000  # 2026-11-30T00:53:20Z


@pytest.fixture(autouse=True)
def china_again() -> Iterator[None]:
    yield
    use_offset(CHINA)  # one offset a process: the next test finds the default


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("+08:00", "2026-11-30T08:53:20+08:00"),
        ("Z", "2026-11-30T00:53:20Z"),
        ("+00:00", "2026-11-30T00:53:20Z"),
        ("-05:30", "2026-11-29T19:23:20-05:30"),
    ],
)
def test_offsets(text: str, written: str) -> None:
    use_offset(parse_offset(text))
    assert rfc3339(MOMENT) == written
    assert dt.datetime.fromisoformat(written).timestamp() == MOMENT  # the same instant


@pytest.mark.parametrize("text", ["+8:00", "UTC", "+24:00", "08:00", "+08:60", ""])
def test_bad_offsets_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_offset(text)


async def test_answers_speak_the_citys_offset(demo: Demo, gateway_client: GatewayClient) -> None:
    async def sealed_and_verified(settings: Any) -> dict[str, Any]:
        api = await gateway_client(create_app(settings))
        r = await api.post(
            "/v1/certificates", json=proof_request(demo.proof_seal), headers=demo.auth(Role.SIGNER)
        )
        code = (await r.json())["code"]
        r = await api.get(f"/v1/verify/{code}?purpose=demo", headers=demo.auth(Role.VERIFIER))
        answer: dict[str, Any] = await r.json()
        return answer

    china = await sealed_and_verified(demo.settings)
    assert china["checked_at"].endswith("+08:00") and china["issued_at"].endswith("+08:00")
    utc = await sealed_and_verified(dataclasses.replace(demo.settings, answer_offset=dt.UTC))
    assert utc["checked_at"].endswith("Z") and utc["issued_at"].endswith("Z")


def test_a_bad_offset_in_the_config_is_refused(demo: Demo, tmp_path: Any) -> None:
    home = tmp_path / "home"
    home.mkdir()
    config = (demo.home / "config.toml").read_text()
    (home / "config.toml").write_text(config + '\nanswer_offset = "China"\n')
    with pytest.raises(HomeError, match="answer_offset"):
        load_settings(home)
    (home / "config.toml").write_text(config + '\nanswer_offset = "Z"\n')
    assert load_settings(home).answer_offset == dt.UTC
