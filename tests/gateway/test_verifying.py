"""The verify route's remembered answers say exactly what a freshly built view says."""

from __future__ import annotations

import dataclasses
import gc
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from sealgate.gateway.checking import status_view
from sealgate.gateway.verifying import StatusAnswers
from sealgate.verify.registry import ProofStatus, Status
from tests.cache.samples import BASE, stored_statuses


@settings(max_examples=300, deadline=None)
@given(stored_statuses, st.floats(min_value=0, max_value=4e9))
def test_a_remembered_answer_is_the_fresh_view(status: ProofStatus, now: float) -> None:
    answers = StatusAnswers()
    first = json.loads(answers.body(status, now))
    assert first == status_view(status, now)
    # and again from memory, a second later
    assert json.loads(answers.body(status, now + 1)) == status_view(status, now + 1)


def test_the_answer_turns_expired_at_valid_until_with_no_new_version() -> None:
    answers = StatusAnswers()
    assert BASE.expires_at is not None
    before = json.loads(answers.body(BASE, BASE.expires_at - 1))
    after = json.loads(answers.body(BASE, BASE.expires_at))
    assert before["status"] == "valid"
    assert after["status"] == "expired"


def test_the_answer_turns_valid_at_valid_from_with_no_new_version() -> None:
    # 2025-01-01 starts at 2024-12-31T16:00:00Z: China Standard Time
    answers = StatusAnswers()
    start = 1735660800.0
    ahead = dataclasses.replace(BASE, issued_at=start - 86400, status_changed_at=start - 86400)
    before = json.loads(answers.body(ahead, start - 1))
    after = json.loads(answers.body(ahead, start))
    assert before["status"] == "not-yet-valid"
    assert after["status"] == "valid"


def test_a_new_version_is_a_new_answer() -> None:
    answers = StatusAnswers()
    now = BASE.issued_at + 10
    assert json.loads(answers.body(BASE, now))["status"] == "valid"
    revoked = dataclasses.replace(BASE, status=Status.REVOKED, version=BASE.version + 1)
    assert json.loads(answers.body(revoked, now))["status"] == "revoked"


def test_memory_is_bounded() -> None:
    answers = StatusAnswers(max_entries=10)
    for version in range(25):
        answers.body(dataclasses.replace(BASE, version=version), BASE.issued_at)
    assert len(answers._prefixes) <= 10


def test_the_purpose_memo_tells_apart_queries_that_decode_alike() -> None:
    from aiohttp.test_utils import make_mocked_request

    from sealgate.gateway.verifying import VerifyEndpoint

    endpoint = VerifyEndpoint(auth=None, checker=None, limiter=None)  # type: ignore[arg-type]
    first = make_mocked_request("GET", "/v1/verify/X?purpose=a%2526")
    second = make_mocked_request("GET", "/v1/verify/X?purpose=a%26")
    assert endpoint.purpose(first) == "a%26"
    assert endpoint.purpose(second) == "a&"
    assert endpoint.purpose(first) == "a%26"  # and from memory


def test_remembered_answers_are_not_left_for_the_garbage_collector_to_scan() -> None:
    # As with the in-process tier (tests/cache/test_local.py): tracked entries made every
    # full collection a long pause of the worker.
    answers = StatusAnswers()
    gc.collect()
    before = len(gc.get_objects())
    for n in range(20_000):
        answers.body(dataclasses.replace(BASE, code=f"code-{n}"), 1_750_000_000.0)
    gc.collect()
    assert len(gc.get_objects()) - before < 1000
