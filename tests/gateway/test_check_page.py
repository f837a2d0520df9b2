"""The public check page in a real browser (Debian's chromium, driven by selenium): a
valid proof, an invalid one, an unknown code, and the throttled client, each screenshot
saved under build/screenshots/check-page/ (or $SEALGATE_SCREENSHOTS) for a person to read."""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from sealgate.gateway.provision import init_home
from sealgate.hsm.softhsm import softhsm_available
from sealgate.verify.directory import Role
from tests.gateway.conftest import proof_request
from tests.gateway.serving import free_port, serving

pytestmark = pytest.mark.processes  # a gateway process and a browser

SCREENSHOTS = Path(
    os.environ.get("SEALGATE_SCREENSHOTS")
    or Path(__file__).resolve().parents[2] / "build" / "screenshots" / "check-page"
)
PER_MINUTE = 6  # the city's check_per_minute for this gateway


def call(base: str, method: str, path: str, token: str, body: Any | None = None) -> Any:
    request = urllib.request.Request(  # noqa: S310 - an http URL on loopback
        base + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - loopback
        return json.loads(answer.read())


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """A served gateway: its base URL, a valid proof's code and a revoked one's."""
    if not softhsm_available():
        pytest.fail("SoftHSM2 is required: run the suite with `make test`")
    home = tmp_path_factory.mktemp("check") / "home"
    _, credentials = init_home(home, demo=True)
    assert credentials is not None
    with (home / "config.toml").open("a") as config:
        config.write(f"check_per_minute = {PER_MINUTE}\n")
    tokens = {c.role: t for c, t in credentials.clients}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with serving(home, port):
        seal = credentials.seals[0].seal_id
        valid = call(base, "POST", "/v1/certificates", tokens[Role.SIGNER], proof_request(seal))
        revoked = call(base, "POST", "/v1/certificates", tokens[Role.SIGNER], proof_request(seal))
        call(
            base,
            "POST",
            f"/v1/certificates/{revoked['code']}/status",
            tokens[Role.ISSUER],
            {"status": "revoked", "reason": "测试吊销"},
        )
        yield base, valid["code"], revoked["code"]


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if binary is None or driver is None:
        pytest.fail("chromium and chromium-driver are required: run the suite with `make test`")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--lang=zh-CN"):
        options.add_argument(argument)
    options.add_argument("--window-size=800,640")
    chrome = webdriver.Chrome(options=options, service=Service(driver))
    try:
        yield chrome
    finally:
        chrome.quit()


LOADING = "查询中……"


def verdict(browser: webdriver.Chrome, kind: str) -> str:
    """The verdict shown once the answer is in, which must be of ``kind``."""
    WebDriverWait(browser, 20).until(
        lambda b: b.find_element(By.ID, "verdict").text not in ("", LOADING)
    )
    assert browser.find_element(By.ID, "result").get_attribute("class") == kind
    return str(browser.find_element(By.ID, "verdict").text)


def ask(browser: webdriver.Chrome, text: str) -> None:
    field = browser.find_element(By.ID, "code")
    field.clear()
    field.send_keys(text)
    browser.find_element(By.ID, "submit").click()


def shot(browser: webdriver.Chrome, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def test_valid_invalid_unknown_and_throttled(
    site: tuple[str, str, str], browser: webdriver.Chrome
) -> None:
    base, valid, revoked = site
    # A phone opening the link with the code: valid, with type, unit and dates only.
    browser.get(f"{base}/check?code={valid}")
    assert browser.title == "电子证明核验"
    assert "有效" in verdict(browser, "valid")
    assert browser.find_element(By.ID, "type").text == "无犯罪记录证明"
    assert browser.find_element(By.ID, "unit").text == "益阳市公安局"
    assert browser.find_element(By.ID, "dates").text == "2026-11-22 至 2027-05-21"
    page = browser.find_element(By.TAG_NAME, "body").text
    assert "张" not in page and "1231002X" not in page  # no holder data at all
    shot(browser, "valid")

    ask(browser, revoked)
    assert "无效" in verdict(browser, "invalid")
    shot(browser, "invalid")

    ask(browser, "430900-ZDXE31-DD2417-Z7GDVP")  # a code nobody issued
    assert "未查到" in verdict(browser, "invalid")

    # Three checks so far from this address: the rest of the minute's budget, then 429.
    for _ in range(PER_MINUTE - 3):
        ask(browser, valid)
        assert "有效" in verdict(browser, "valid")
    ask(browser, valid)
    message = verdict(browser, "notice")
    assert "查询过于频繁" in message and "秒后再试" in message
    shot(browser, "throttled")
