"""The retry policy and the reading of refusals, on answers built in memory."""

from __future__ import annotations

import datetime as dt
import email.utils

import httpx
import pytest

from sealgate.client import (
    Conflict,
    InvalidCode,
    Problem,
    RetryPolicy,
    TooManyRequests,
    TrustDocument,
    Unavailable,
    UnexpectedAnswer,
    UnknownCode,
    normalise_code,
)
from sealgate.client.calls import problem_of, retry_after


def answer(status: int, retry: str | None = None, **json: object) -> httpx.Response:
    headers = {"Content-Type": "application/problem+json"}
    if retry is not None:
        headers["Retry-After"] = retry
    return httpx.Response(status, headers=headers, json=json or {"code": "x"})


def test_retry_after_in_seconds_and_as_a_date() -> None:
    assert retry_after(answer(503, "7")) == 7
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=120)
    seconds = retry_after(answer(503, email.utils.format_datetime(later, usegmt=True)))
    assert seconds is not None and 100 < seconds <= 120
    assert retry_after(answer(503)) is None
    assert retry_after(answer(503, "soon")) is None


def test_only_429_and_503_with_a_bounded_retry_after_are_retried() -> None:
    policy = RetryPolicy(attempts=3, max_wait=10)
    assert policy.after_answer(answer(503, "2"), attempt=1) == 2
    assert policy.after_answer(answer(429, "10"), attempt=2) == 10
    assert policy.after_answer(answer(503, "2"), attempt=3) is None  # attempts spent
    assert policy.after_answer(answer(503, "11"), attempt=1) is None  # past the bound
    assert policy.after_answer(answer(503), attempt=1) is None  # registry-corrupted
    assert policy.after_answer(answer(500, "1"), attempt=1) is None
    assert policy.after_answer(answer(409, "1"), attempt=1) is None


def test_no_answer_is_retried_only_when_repeating_is_safe() -> None:
    policy = RetryPolicy(attempts=3, backoff=0.5)
    assert policy.after_failure(1, replayable=True) == 0.5
    assert policy.after_failure(2, replayable=True) == 1.0
    assert policy.after_failure(3, replayable=True) is None
    assert policy.after_failure(1, replayable=False) is None


def test_problems_map_to_the_tree() -> None:
    unknown = problem_of(answer(404, code="unknown-code", title="No proof", request_id="r1"))
    assert isinstance(unknown, UnknownCode) and unknown.code == "unknown-code"
    assert unknown.request_id == "r1"
    assert isinstance(problem_of(answer(409, code="status-terminal")), Conflict)
    throttled = problem_of(answer(429, "60", code="too-many-failed-lookups"))
    assert isinstance(throttled, TooManyRequests) and throttled.retry_after == 60
    assert isinstance(problem_of(answer(502)), Unavailable)
    assert isinstance(problem_of(answer(418)), Problem)
    # a proxy's page is not the gateway's problem document
    page = httpx.Response(502, headers={"Content-Type": "text/html"}, text="<h1>Bad Gateway</h1>")
    assert isinstance(problem_of(page), UnexpectedAnswer)


def test_codes_are_normalised_as_the_gateway_reads_them() -> None:
    code = "430900-ZDXE31-DD2417-Z7GDVP"
    full_width = (
        "４３０９００–ＺＤＸＥ３１–ＤＤ２４１７–Ｚ７ＧＤＶＰ"  # as an input method types it
    )
    for typed in (code, code.lower(), code.replace("-", ""), full_width):
        assert normalise_code(typed) == code
    with pytest.raises(InvalidCode, match="mistyped"):
        normalise_code("430900-ZDXE31-DD2417-Z7GDVQ")


def test_a_trust_document_reads_its_gateway_keys_and_an_older_one_has_none() -> None:
    document = {
        "format": "sealgate-trust/1",
        "version": 2,
        "issued_at": "2026-12-07T09:00:00Z",
        "roots": ["-----BEGIN CERTIFICATE-----\n"],
        "seals": [],
    }
    assert TrustDocument.parse({"document": document}).keys == ()
    key = {"kid": "AAECAwQFBgc", "use": ["qr"], "public_key": "-----BEGIN PUBLIC KEY-----\n"}
    parsed = TrustDocument.parse({"document": {**document, "keys": [key]}})
    assert [(k.kid, k.uses) for k in parsed.keys] == [("AAECAwQFBgc", ("qr",))]
    with pytest.raises(UnexpectedAnswer, match="keys"):
        TrustDocument.parse({"document": {**document, "keys": [{**key, "use": "qr"}]}})
