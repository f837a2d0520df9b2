"""Fuzzing request bodies: the parsers raise only InvalidRequest / ContentError, and the
real app answers hostile bodies with a problem+json 4xx, never a 5xx, storing nothing.

Parsers: ``decode_json`` then ``parse_seal_body`` and ``parse_status_change`` on the
seed corpus (``corpus/json``), byte mutations of it, structural mutations of valid
requests, arbitrary JSON values and arbitrary bytes. HTTP: ``POST /v1/certificates``,
``POST /v1/verify/document`` and ``POST /v1/certificates/{code}/status`` on the demo app.
"""

from __future__ import annotations

import contextlib
import json
import random
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sealgate.crypto.errors import ContentError
from sealgate.gateway.requests import InvalidRequest, ProofRequest, decode_json
from sealgate.verify.directory import Role
from tests.fuzz.oracle import (
    check_json,
    corpus,
    corpus_files,
    corpus_params,
    known_bug,
    mutate,
    time_limit,
)
from tests.gateway.conftest import Demo, proof_request

SEEDS = corpus("json")
HTTP_SEEDS = corpus("json", "http")
DER_SEEDS = corpus("der", "http")
VALID = [json.loads(p.read_bytes()) for p in corpus_files("json") if p.name.startswith("valid-")]
FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ALLOWED = (InvalidRequest, ContentError)


def _check(data: bytes) -> Any:
    with time_limit():
        return check_json(data)


# --- strategies ----------------------------------------------------------------------

_text = st.one_of(
    st.text(
        st.characters(codec=None, exclude_categories=()),  # surrogates and controls included
        max_size=40,
    ),
    st.sampled_from(["\ud800", "x\udfff", "\x00", "\u2028", "\ufeff", "𠮷", "a" * 300]),
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**60), 2**60),
    st.floats(allow_nan=False, allow_infinity=False),
    _text,
    st.sampled_from(["", " ", "2026-11-22", "9999-12-31", "person", "org", "revoked"]),
)
json_values = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.one_of(_text, st.sampled_from(["items", "holder", "content", "status", "reason"])),
            children,
            max_size=5,
        )
    ),
    max_leaves=25,
)
_FIELDS = [
    ("seal_id",),
    ("type",),
    ("holder",),
    ("holder", "kind"),
    ("holder", "id"),
    ("holder", "name"),
    ("content",),
    ("valid_from",),
    ("valid_until",),
    ("endorsement",),
    ("endorsement", "extracting_unit"),
    ("status",),
    ("reason",),
    ("superseded_by",),
    ("items",),
]


@st.composite
def altered_requests(draw: st.DrawFn) -> Any:
    """A valid request (or status change) with a few fields replaced, added or dropped."""
    body = json.loads(json.dumps(draw(st.sampled_from(VALID))))
    target = body["items"][0] if "items" in body and draw(st.booleans()) else body
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_FIELDS))
        node = target
        for key in path[:-1]:
            node = node.setdefault(key, {}) if isinstance(node, dict) else node
        if not isinstance(node, dict):
            continue
        action = draw(st.sampled_from(["replace", "delete", "unknown"]))
        if action == "replace":
            node[path[-1]] = draw(json_values)
        elif action == "delete":
            node.pop(path[-1], None)
        else:
            node[draw(_text)] = draw(json_values)
    return body


def _encode(value: Any, ascii: bool = True) -> bytes:
    """JSON bytes; ``ascii`` escapes (lone surrogates become ``\\udXXX``), else raw UTF-8
    (lone surrogates become invalid CESU-8 bytes)."""
    return json.dumps(value, ensure_ascii=ascii).encode("utf-8", "surrogatepass")


# --- parsers -------------------------------------------------------------------------


@pytest.mark.parametrize("path", corpus_params("json"))
def test_corpus(path: Path) -> None:
    result = _check(path.read_bytes())
    if path.name.startswith("valid-single") or path.name == "valid-batch.json":
        assert isinstance(result[0], tuple), result
        assert all(isinstance(p, ProofRequest) for p in result[0][0])
    elif path.name.startswith(("deep-array", "deep-object", "deep-unclosed", "invalid-utf8")):
        assert isinstance(result, InvalidRequest)


@FUZZ
@given(
    seed=st.sampled_from(SEEDS),
    other=st.sampled_from(SEEDS),
    rng=st.randoms(use_true_random=False),
    rounds=st.integers(1, 6),
)
def test_mutated_corpus(seed: bytes, other: bytes, rng: random.Random, rounds: int) -> None:
    _check(mutate(seed, other, rng, rounds))


@FUZZ
@given(altered_requests(), st.booleans())
def test_altered_requests(body: Any, ascii: bool) -> None:
    _check(_encode(body, ascii))


@FUZZ
@given(json_values, st.booleans())
def test_arbitrary_json_values(value: Any, ascii: bool) -> None:
    _check(_encode(value, ascii))


@FUZZ
@given(st.binary(max_size=2048))
def test_arbitrary_bytes(data: bytes) -> None:
    _check(data)


@FUZZ
@given(st.text(st.sampled_from('{}[]",:0123456789.eE-+ntrufalsx\\u'), max_size=200))
def test_json_alphabet_soup(text: str) -> None:
    _check(text.encode())


@pytest.mark.parametrize("depth", [1000, 10_000, 100_000])
@pytest.mark.parametrize("opener", [b"[", b'{"a":', b'{"content":{"a":'])
def test_deep_nesting_is_invalid_request(opener: bytes, depth: int) -> None:
    closer = b"]" if opener == b"[" else b"}"
    body = opener * depth + b"1" + closer * depth
    if opener.startswith(b'{"content"'):
        body = opener * depth + b"1" + closer * (2 * depth)
    try:
        decode_json(body)
    except InvalidRequest as exc:
        assert "deeply" in exc.message or "malformed" in exc.message
    _check(body)


# --- HTTP ----------------------------------------------------------------------------

HTTP = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
PROBLEM = "application/problem+json"


async def _count(demo: Demo) -> int:
    registry = demo.settings.open_registry()
    try:
        return await registry.count()
    finally:
        await registry.close()


def _known_http_bug(body: bytes) -> bool:
    """While the surrogate-key bug is open (see oracle.KNOWN_BUGS), bodies with an object
    key holding a lone surrogate are skipped: that 500 is reported and xfailed already."""
    if known_bug("surrogate-key.json", "http") is None:
        return False
    found = False

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal found
        found = found or any(0xD800 <= ord(c) <= 0xDFFF for key, _ in pairs for c in key)
        return dict(pairs)

    with contextlib.suppress(ValueError, RecursionError):
        json.loads(body.decode("utf-8"), object_pairs_hook=pairs_hook)
    return found


async def _refused(response: Any) -> None:
    """A 4xx problem+json (a 5xx is a bug, whatever the input)."""
    body = await response.read()
    assert response.status < 500, (response.status, body[:500])
    if response.status >= 400:
        assert response.content_type == PROBLEM, (response.status, response.content_type)
        problem = json.loads(body)
        assert problem["status"] == response.status


_json_bodies = st.one_of(
    st.sampled_from(HTTP_SEEDS),
    st.builds(
        mutate,
        st.sampled_from(HTTP_SEEDS),
        st.sampled_from(HTTP_SEEDS),
        st.randoms(use_true_random=False),
        st.integers(1, 6),
    ),
    st.builds(_encode, altered_requests(), st.booleans()),
    st.builds(_encode, json_values, st.booleans()),
    st.binary(max_size=512),
)


@pytest.mark.slow
@HTTP
@given(body=_json_bodies, content_type=st.sampled_from(["application/json", "text/plain", ""]))
async def test_http_seal_bodies(
    api: TestClient[Any, Any], demo: Demo, body: bytes, content_type: str
) -> None:
    assume(not _known_http_bug(body))
    before = await _count(demo)
    headers = {**demo.auth(Role.SIGNER)}
    if content_type:
        headers["Content-Type"] = content_type
    response = await api.post("/v1/certificates", data=body, headers=headers)
    await _refused(response)
    after = await _count(demo)
    if response.status >= 400:
        assert after == before, "a refused request stored something"
    else:  # the fuzzer built a valid request: sealed, and counted once per proof
        created = await response.json()
        assert after - before == len(created.get("items", [created]))


@pytest.fixture
async def sealed_document(api: TestClient[Any, Any], demo: Demo) -> tuple[str, bytes]:
    """A proof sealed by the demo app (a trusted seal), and its DER."""
    response = await api.post(
        "/v1/certificates", json=proof_request(demo.proof_seal), headers=demo.auth(Role.SIGNER)
    )
    assert response.status == 201, await response.text()
    code = (await response.json())["code"]
    auth = demo.auth(Role.VERIFIER)
    document = await api.get(f"/v1/certificates/{code}/document?purpose=demo", headers=auth)
    assert document.status == 200
    return code, await document.read()


@pytest.mark.slow
@HTTP
@given(
    choice=st.sampled_from(["trusted", "seed", "binary"]),
    seed=st.sampled_from(DER_SEEDS),
    rng=st.randoms(use_true_random=False),
    rounds=st.integers(0, 6),
    binary=st.binary(max_size=1024),
)
async def test_http_verify_documents(
    api: TestClient[Any, Any],
    demo: Demo,
    sealed_document: tuple[str, bytes],
    choice: str,
    seed: bytes,
    rng: random.Random,
    rounds: int,
    binary: bytes,
) -> None:
    _, trusted = sealed_document
    base = {"trusted": trusted, "seed": seed, "binary": binary}[choice]
    body = mutate(base, seed, rng, rounds) if rounds else base
    before = await _count(demo)
    response = await api.post(
        "/v1/verify/document?purpose=demo",
        data=body,
        headers={**demo.auth(Role.VERIFIER), "Content-Type": "application/pkcs7-mime"},
    )
    await _refused(response)
    if body == trusted:
        assert response.status == 200
        assert (await response.json())["registered"] is True
    assert await _count(demo) == before


_codes = st.one_of(
    st.just("TRUSTED"),
    st.just("TRUSTED"),
    st.just("TRUSTED"),
    st.text(
        st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="/?#%"),
        min_size=1,
        max_size=40,
    ),
    st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=20).filter(
        lambda s: (
            "/" not in s
            and "?" not in s
            and "#" not in s
            and "%" not in s
            and s.strip() == s
            and s not in {".", ".."}
        )
    ),
)


@pytest.mark.slow
@HTTP
@given(code=_codes, body=_json_bodies)
async def test_http_status_changes(
    api: TestClient[Any, Any],
    demo: Demo,
    sealed_document: tuple[str, bytes],
    code: str,
    body: bytes,
) -> None:
    assume(not _known_http_bug(body))
    trusted_code, _ = sealed_document
    before = await _count(demo)
    response = await api.post(
        f"/v1/certificates/{trusted_code if code == 'TRUSTED' else code}/status",
        data=body,
        headers={**demo.auth(Role.ISSUER), "Content-Type": "application/json"},
    )
    await _refused(response)
    assert await _count(demo) == before


async def _answers(response: Any) -> str | None:
    """None for a 2xx/4xx (problem+json) answer, else what was wrong."""
    try:
        await _refused(response)
    except AssertionError as exc:
        return str(exc)[:300]
    return None


def _expected_http_failures(kind: str) -> set[str]:
    return {p.name for p in corpus_files(kind) if known_bug(p.name, "http") is not None}


async def test_http_verify_every_der_seed(api: TestClient[Any, Any], demo: Demo) -> None:
    """Every DER seed, as is, to POST /v1/verify/document: an answer, never a 5xx.
    Exactly the known bugs fail (remove an oracle.KNOWN_BUGS entry once it is fixed)."""
    before = await _count(demo)
    failures = {}
    for path in corpus_files("der"):
        response = await api.post(
            "/v1/verify/document?purpose=demo",
            data=path.read_bytes(),
            headers={**demo.auth(Role.VERIFIER), "Content-Type": "application/pkcs7-mime"},
        )
        if (failure := await _answers(response)) is not None:
            failures[path.name] = failure
    assert set(failures) == _expected_http_failures("der"), failures
    assert await _count(demo) == before
    assert (await api.get("/healthz")).status == 200


async def test_http_every_json_seed(
    api: TestClient[Any, Any], demo: Demo, sealed_document: tuple[str, bytes]
) -> None:
    """Every JSON seed, as is, to POST /v1/certificates and as a status change of a real
    proof (so the body is parsed, not refused for the code). Exactly the known bugs fail.
    The corpus names a software test seal, not the demo's: nothing is ever sealed."""
    code, _ = sealed_document
    before = await _count(demo)
    failures = {}
    for path in corpus_files("json"):
        body = path.read_bytes()
        for url, role in (
            ("/v1/certificates", Role.SIGNER),
            (f"/v1/certificates/{code}/status", Role.ISSUER),
        ):
            response = await api.post(
                url, data=body, headers={**demo.auth(role), "Content-Type": "application/json"}
            )
            if (failure := await _answers(response)) is not None:
                failures[path.name] = f"{url}: {failure}"
        assert await _count(demo) == before, path.name
    assert set(failures) == _expected_http_failures("json"), failures
    assert (await api.get("/healthz")).status == 200


async def test_http_oversize_headers(api: TestClient[Any, Any], demo: Demo) -> None:
    """Huge or many headers: a clear 4xx, and the server still answers afterwards."""
    cases: list[dict[str, str]] = [
        {"X-Big": "a" * 65536},
        {f"X-Many-{i}": "v" for i in range(200)},
        {"Authorization": "Bearer " + "t" * 65536},
        {"X-Request-Id": "r" * 65536},
    ]
    for extra in cases:
        try:
            response = await api.post(
                "/v1/certificates", data=b"{}", headers={**demo.auth(Role.SIGNER), **extra}
            )
        except Exception as exc:  # the server may close the connection
            pytest.fail(f"no HTTP answer to oversize headers: {exc!r}")
        assert 400 <= response.status < 500, response.status
        await response.read()
        health = await api.get("/healthz")
        assert health.status == 200
        assert (await health.json()) == {"status": "ok"}
