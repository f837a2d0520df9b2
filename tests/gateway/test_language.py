"""Answers in Chinese for clients that ask (Accept-Language: zh-CN); codes stay as they are."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from sealgate.gateway.language import PROBLEM_TITLES_ZH, STATUS_LABELS_ZH, wants_chinese
from sealgate.gateway.openapi_schemas import PROBLEM_CODES
from sealgate.verify.directory import Role
from sealgate.verify.registry import Status
from tests.gateway.conftest import Demo, proof_request
from tests.gateway.test_checking import random_codes
from tests.gateway.test_dispatch import dispatch_of

ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}


@pytest.mark.parametrize(
    ("value", "chinese"),
    [
        ("zh-CN", True),
        ("zh-CN,zh;q=0.9,en;q=0.8", True),
        ("en-US,en;q=0.9,zh;q=0.5", False),
        ("en;q=0.5, zh-Hans;q=0.6", True),
        ("ZH-cn", True),
        ("*", False),
        ("zh;q=0", False),
        ("zh;q=0.5, *;q=0.5", False),  # a tie: English
        ("zh;q=abc", False),  # unparsable: English
        ("zh;q=2", False),
        ("fr, de", False),
        ("", False),
        (None, False),
    ],
)
def test_negotiation(value: str | None, chinese: bool) -> None:
    assert wants_chinese(value) is chinese


def test_every_problem_code_and_status_has_its_chinese() -> None:
    codes = {code for group in PROBLEM_CODES.values() for code in group}
    assert codes <= PROBLEM_TITLES_ZH.keys()
    assert set(STATUS_LABELS_ZH) == set(Status)


async def test_status_labels_and_titles_in_chinese_on_every_way(
    api: TestClient[Any, Any], demo: Demo
) -> None:
    r = await api.post(
        "/v1/certificates", json=proof_request(demo.proof_seal), headers=demo.auth(Role.SIGNER)
    )
    code = (await r.json())["code"]
    verifier = demo.auth(Role.VERIFIER)
    path = f"/v1/verify/{code}?purpose=demo"
    english = await (await api.get(path, headers=verifier)).json()
    assert "status_label" not in english
    # now remembered: the dispatch answers English, and leaves Chinese to the application
    dispatch = dispatch_of(api)
    answered = dispatch.answered
    chinese = await (await api.get(path, headers={**verifier, **ZH})).json()
    assert dispatch.answered == answered
    assert chinese["status"] == "valid" and chinese["status_label"] == "有效"
    assert {k: v for k, v in chinese.items() if k not in ("status_label", "checked_at")} == {
        k: v for k, v in english.items() if k != "checked_at"
    }
    assert "status_label" not in await (await api.get(path, headers=verifier)).json()

    unknown = random_codes(1, seed=41)[0]
    problem = await (
        await api.get(f"/v1/verify/{unknown}?purpose=demo", headers=ZH | verifier)
    ).json()
    assert problem["code"] == "unknown-code"
    assert problem["title"] == "没有电子证明使用此统一认证码"
    r = await api.post(
        f"/v1/certificates/{code}/status",
        json={"status": "pledged", "reason": "质押贷款"},
        headers={**demo.auth(Role.ISSUER), **ZH},
    )
    assert (await r.json())["status_label"] == "已质押"
    r = await api.post(
        "/v1/verify/batch",
        json={"purpose": "demo", "items": [{"code": code}, {"code": unknown}]},
        headers={**verifier, **ZH},
    )
    items = (await r.json())["items"]
    assert items[0]["status_label"] == "已质押"
    assert items[1]["problem"]["title"] == "没有电子证明使用此统一认证码"
    r = await api.get("/v1/verify/x?purpose=demo", headers=ZH)  # no token
    assert (await r.json())["title"] == PROBLEM_TITLES_ZH["unauthenticated"]
