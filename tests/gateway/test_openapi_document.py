"""The document itself: its limits are the ones enforced, its problem codes the ones sent,
its example a real code, its schemas exact (test_openapi_conformance.py checks it against
a running gateway)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

import sealgate.gateway
from sealgate.crypto.errors import ContentError, MalformedProof
from sealgate.gateway.auth import unauthenticated
from sealgate.gateway.middleware import audit_unavailable
from sealgate.gateway.openapi import EXAMPLE_CODE, OPENAPI, PROBLEM_CODES
from sealgate.gateway.problems import Problem, invalid, problem_for, protocol_problem
from sealgate.gateway.requests import (
    InvalidRequest,
    parse_holder_query,
    parse_idempotency_key,
    parse_proof_request,
    parse_purpose,
    parse_status_change,
)
from sealgate.gateway.throttle import Throttled, too_many_failed_lookups
from sealgate.hsm.errors import HsmError, HsmUnavailable
from sealgate.verify.code import is_well_formed, parse_code
from sealgate.verify.directory import DirectoryUnavailable
from sealgate.verify.lifecycle import (
    InvalidSupersession,
    NotYetValid,
    TerminalStatus,
    TransitionNotAllowed,
    ValidityEnded,
)
from sealgate.verify.registry import (
    IdempotencyConflict,
    ProofNotFound,
    RegistryCorrupted,
    RegistryUnavailable,
    WrongOffice,
)
from tests.gateway.conftest import proof_request

DOCUMENT: dict[str, Any] = json.loads(json.dumps(OPENAPI))  # as served
PATHS = DOCUMENT["paths"]
SCHEMAS = DOCUMENT["components"]["schemas"]


def matches(schema: dict[str, Any], instance: Any) -> bool:
    """Whether ``instance`` is valid under ``schema`` (its $refs read in the document)."""
    root = {**schema, "components": DOCUMENT["components"]}
    return bool(jsonschema_rs.Draft202012Validator(root).is_valid(instance))


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def parameter(path: str, method: str, name: str) -> dict[str, Any]:
    found = [p for p in PATHS[path][method]["parameters"] if p["name"] == name]
    return dict(found[0]["schema"])


def test_the_example_code_is_a_valid_code() -> None:
    assert is_well_formed(EXAMPLE_CODE)
    assert str(parse_code(EXAMPLE_CODE)) == EXAMPLE_CODE


def proof(**change: Any) -> dict[str, Any]:
    return proof_request("SEAL-X", **change)


def holder(name: str) -> dict[str, Any]:
    return {"kind": "person", "id": "11010519491231002X", "name": name}


def status_change(**change: Any) -> dict[str, Any]:
    return {"status": "pledged", "reason": "r", **change}


PROOF = SCHEMAS["ProofRequest"]["properties"]
STATUS_BODY = PATHS["/v1/certificates/{code}/status"]["post"]["requestBody"]["content"][
    "application/json"
]["schema"]["properties"]

# (what, its published schema, a parse of a value of that length)
LIMITS: list[tuple[str, dict[str, Any], Callable[[str], object]]] = [
    ("seal_id", PROOF["seal_id"], lambda v: parse_proof_request(proof(seal_id=v))),
    ("type", PROOF["type"], lambda v: parse_proof_request(proof(type=v))),
    (
        "holder.name",
        PROOF["holder"]["properties"]["name"],
        lambda v: parse_proof_request(proof(holder=holder(v))),
    ),
    (
        "endorsement.verifying_unit",
        PROOF["endorsement"]["properties"]["verifying_unit"],
        lambda v: parse_proof_request(proof(endorsement={"verifying_unit": v})),
    ),
    ("purpose", parameter("/v1/proofs", "get", "purpose"), parse_purpose),
    (
        "proofs' type",
        parameter("/v1/proofs", "get", "type"),
        lambda v: parse_holder_query("11010519491231002X", v),
    ),
    ("reason", STATUS_BODY["reason"], lambda v: parse_status_change(status_change(reason=v))),
    (
        "superseded_by",
        STATUS_BODY["superseded_by"],
        lambda v: parse_status_change(status_change(superseded_by=v)),
    ),
    (
        "Idempotency-Key",
        parameter("/v1/certificates", "post", "Idempotency-Key"),
        parse_idempotency_key,
    ),
]


@pytest.mark.parametrize(("what", "schema", "parse"), LIMITS, ids=[w for w, _, _ in LIMITS])
def test_a_published_length_is_the_one_enforced(
    what: str, schema: dict[str, Any], parse: Callable[[str], object]
) -> None:
    longest = schema["maxLength"]
    parse("x" * longest)
    with pytest.raises(InvalidRequest):
        parse("x" * (longest + 1))
    assert schema["minLength"] == 1
    with pytest.raises(InvalidRequest):
        parse("")


def test_a_published_identity_number_length_is_the_one_enforced() -> None:
    longest = PROOF["holder"]["properties"]["id"]["maxLength"]
    assert longest == parameter("/v1/proofs", "get", "holder_id")["maxLength"]
    parse_holder_query("11010519491231002X"[:longest], "t")
    with pytest.raises(InvalidRequest, match="at most"):
        parse_holder_query("9" * (longest + 1), "t")


def test_a_published_date_pattern_is_the_one_enforced() -> None:
    pattern = re.compile(PROOF["valid_from"]["pattern"])
    for good in ("2026-11-22", "2026-11-22T10:00:00+08:00", "2026-11-22T02:00:00.123Z"):
        assert pattern.search(good)
        parse_proof_request(proof(valid_from=good, valid_until=None))
    for bad in ("22/11/2026", "2026-11-22T10:00:00", "2026-11-22 "):
        assert not pattern.search(bad)
        if bad.strip() != "2026-11-22":
            with pytest.raises(InvalidRequest):
                parse_proof_request(proof(valid_from=bad, valid_until=None))


def test_the_batch_limit_is_published() -> None:
    from sealgate.gateway.requests import MAX_BATCH

    batch = PATHS["/v1/certificates"]["post"]["requestBody"]["content"]["application/json"]
    assert batch["schema"]["oneOf"][1]["properties"]["items"]["maxItems"] == MAX_BATCH
    assert SCHEMAS["SealedBatch"]["properties"]["items"]["maxItems"] == MAX_BATCH


SEALED = {
    "code": EXAMPLE_CODE,
    "status": "valid",
    "issued_at": "2026-11-22T03:08:04Z",
    "seal_id": "SEAL-X",
    "document": "MAA=",
}


def test_a_sealing_answer_matches_exactly_one_branch_of_the_201() -> None:
    """The review's finding: a single proof matched both branches, so oneOf refused it."""
    answer = PATHS["/v1/certificates"]["post"]["responses"]["201"]["content"]
    one_of = answer["application/json"]["schema"]
    single, batch = one_of["oneOf"]
    assert [matches(single, SEALED), matches(batch, SEALED)] == [True, False]
    items = {"items": [SEALED, SEALED]}
    assert [matches(single, items), matches(batch, items)] == [False, True]
    assert matches(one_of, SEALED)
    assert matches(one_of, items)
    assert not matches(one_of, {**SEALED, "extra": 1})
    assert not matches(one_of, {"items": []})


def test_every_operation_describes_its_success_and_refusals() -> None:
    for path, operations in PATHS.items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert any(s.startswith("2") for s in responses), (method, path)
            for status, response in responses.items():
                if "$ref" in response:
                    name = response["$ref"].rsplit("/", 1)[1]
                    response = DOCUMENT["components"]["responses"][name]
                content = response.get("content")
                if status in ("204", "304"):  # RFC 9110 §15.3.5, §15.4.5: no content
                    assert content is None, (method, path)
                    continue
                assert content, (method, path, status)
                for media_type in content.values():
                    assert "schema" in media_type, (method, path, status)
                if status.startswith("4"):
                    assert list(content) == ["application/problem+json"]
            if operation.get("security"):
                assert {"401", "403"} <= set(responses), (method, path)


# Problem(status, "code", ...) as the gateway's modules write them.
_PROBLEM_CALL = re.compile(r"Problem\(\s*(\d{3}),\s*\"([a-z-]+)\"")


def test_every_problem_the_gateway_sends_is_documented() -> None:
    sources = Path(sealgate.gateway.__file__).parent.glob("*.py")
    sent = {
        (int(status), code)
        for source in sources
        for status, code in _PROBLEM_CALL.findall(source.read_text("utf-8"))
    }
    assert len(sent) > 15  # the pattern still finds them
    undocumented = {(s, c) for s, c in sent if s < 500 or s == 503} - {
        (s, c) for s, codes in PROBLEM_CODES.items() for c in codes
    }
    assert not undocumented


def mapped(exc: Exception) -> Problem:
    problem = problem_for(exc)
    assert problem is not None
    return problem


REFUSALS: dict[str, Callable[[], Problem]] = {
    "invalid": lambda: invalid("items[3].holder.id", "the check character is wrong"),
    "invalid body": lambda: invalid("", "malformed JSON at line 1 column 2"),
    "unauthenticated": unauthenticated,
    "throttled": lambda: too_many_failed_lookups(Throttled(0.2, "client")),
    "hsm unavailable": lambda: mapped(HsmUnavailable("gone", retry_after=2.5)),
    "hsm error": lambda: mapped(HsmError("key")),
    "registry unavailable": lambda: mapped(RegistryUnavailable("down")),
    "registry corrupted": lambda: mapped(RegistryCorrupted("database disk image is malformed")),
    "directory unavailable": lambda: mapped(DirectoryUnavailable("down")),
    "idempotency conflict": lambda: mapped(IdempotencyConflict("other body")),
    "not found": lambda: mapped(ProofNotFound("x")),
    "wrong office": lambda: mapped(WrongOffice("x")),
    "terminal": lambda: mapped(TerminalStatus("revoked")),
    "transition": lambda: mapped(TransitionNotAllowed("changed → pledged")),
    "supersession": lambda: mapped(InvalidSupersession("older")),
    "not yet valid": lambda: mapped(NotYetValid("the proof is not valid yet")),
    "validity ended": lambda: mapped(ValidityEnded("items[1].valid_until", "has passed")),
    "content": lambda: mapped(ContentError("content")),
    "invalid proof": lambda: mapped(MalformedProof("not DER")),
    "bad http": lambda: protocol_problem(400, "Invalid char in url query:\n\n  b'x'"),
    "expectation": lambda: protocol_problem(417, "Unknown Expect: 200-ok"),
}


@pytest.mark.parametrize("make", REFUSALS.values(), ids=REFUSALS.keys())
def test_a_refusal_is_as_its_status_is_described(make: Callable[[], Problem]) -> None:
    """Body and headers of the problems that no test run provokes easily (a dead HSM)."""
    answer = make().response("0123456789abcdef0123")
    answer.headers["X-Request-Id"] = "0123456789abcdef0123"  # the middleware's part
    described = DOCUMENT["components"]["responses"][f"Problem{answer.status}"]
    assert answer.content_type == "application/problem+json"
    assert matches(described["content"]["application/problem+json"]["schema"], _body(answer))
    for name, header in described["headers"].items():
        if header["required"]:
            assert name in answer.headers, name
        if name in answer.headers:
            assert matches(header["schema"], answer.headers[name]), name


def test_the_audit_refusal_is_as_described() -> None:
    answer = audit_unavailable("0123456789abcdef0123")
    described = DOCUMENT["components"]["responses"]["Problem503"]
    assert matches(described["content"]["application/problem+json"]["schema"], _body(answer))
    assert matches(described["headers"]["Retry-After"]["schema"], answer.headers["Retry-After"])


def test_a_corrupted_registry_is_not_answered_as_an_outage() -> None:
    """Damaged data does not mend by waiting: no Retry-After, a code of its own."""
    corrupted = mapped(RegistryCorrupted("database disk image is malformed")).response()
    outage = mapped(RegistryUnavailable("down")).response()
    assert (corrupted.status, outage.status) == (503, 503)
    assert "Retry-After" not in corrupted.headers and outage.headers["Retry-After"] == "1"
    assert _body(corrupted)["code"] == "registry-corrupted"


def _body(answer: Any) -> Any:
    assert isinstance(answer.body, bytes)
    return json.loads(answer.body)
