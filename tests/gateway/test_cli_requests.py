"""`sealgate calendar load|list` and `sealgate seal suspend|resume`, run as the CLI."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from sealgate.gateway.app import create_app
from sealgate.gateway.cli import main as sealgate
from sealgate.gateway.config_file import load_settings
from sealgate.gateway.home import HomeError
from sealgate.verify.directory import Role
from sealgate.verify.workdays import OfficeHours
from tests.gateway.conftest import Demo, GatewayClient, proof_request

CALENDAR_2027 = Path(__file__).parents[1] / "verify" / "data" / "calendar-2027.json"


def test_calendar_load_then_list(
    demo: Demo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = str(demo.home)
    assert (
        sealgate(["--home", home, "calendar", "load", str(CALENDAR_2027), "--operator", "tester"])
        == 0
    )
    assert "calendar\t2027\t17 holidays\t5 made up" in capsys.readouterr().out
    assert sealgate(["--home", home, "calendar", "list"]) == 0
    listed = dict(line.split("\t", 1) for line in capsys.readouterr().out.splitlines())
    assert listed["2026"] == "chinese-calendar"
    assert listed["2027"].startswith("test fixture")
    bad = tmp_path / "bad.json"
    bad.write_text('{"year": 2028, "source": "x", "holidays": {"2028-02-30": "x"}}')
    assert sealgate(["--home", home, "calendar", "load", str(bad), "--operator", "tester"]) != 0
    assert "is not a date" in capsys.readouterr().err


async def test_a_suspended_seal_seals_nothing_until_resumed(
    demo: Demo, gateway_client: GatewayClient, capsys: pytest.CaptureFixture[str]
) -> None:
    home = str(demo.home)
    assert (
        sealgate(["--home", home, "seal", "suspend", demo.proof_seal, "--operator", "tester"]) == 0
    )
    api: Any = await gateway_client(create_app(demo.settings))
    response = await api.post(
        "/v1/certificates", json=proof_request(demo.proof_seal), headers=demo.auth(Role.SIGNER)
    )
    assert response.status == 403
    assert (await response.json())["code"] == "seal-suspended"
    await api.close()
    assert (
        sealgate(["--home", home, "seal", "resume", demo.proof_seal, "--operator", "tester"]) == 0
    )
    api = await gateway_client(create_app(demo.settings))
    response = await api.post(
        "/v1/certificates", json=proof_request(demo.proof_seal), headers=demo.auth(Role.SIGNER)
    )
    assert response.status == 201
    assert sealgate(["--home", home, "seal", "suspend", "SEAL-NONE", "--operator", "tester"]) != 0


def test_the_request_settings_are_read_from_config_and_refused_when_wrong(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    config = home / "config.toml"
    config.write_text(
        '[requests]\noffice_hours = "09:00-17:30"\noverdue_webhook = "https://hooks.example/late"\n'
    )
    settings = load_settings(home)
    assert settings.office_hours == OfficeHours(dt.time(9), dt.time(17, 30))
    assert settings.overdue_webhook == "https://hooks.example/late"
    for wrong in (
        '[requests]\noffice_hours = "17:00-09:00"\n',
        '[requests]\noffice_hours = "nine to five"\n',
        '[requests]\noverdue_webhook = "ftp://x"\n',
        '[requests]\nofice_hours = "09:00-17:00"\n',
    ):
        config.write_text(wrong)
        with pytest.raises(HomeError, match=r"\[requests\]"):
            load_settings(home)
    config.write_text("")
    assert load_settings(home).office_hours is None  # every minute counts
