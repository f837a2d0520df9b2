"""Fuzzing ``verify_proof``: on any bytes it returns or raises a ProofError, and promptly.

Inputs: the seed corpus (``corpus/der``), seeded mutations of it (flip, insert, delete,
overwrite, truncate, duplicate, splice) and arbitrary bytes. Regenerate the corpus with
``tests/fuzz/make_corpus.py``; coverage-guided runs: ``make fuzz``.
"""

from __future__ import annotations

import random
import re
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sealgate.crypto.errors import MalformedProof, ProofError
from sealgate.crypto.verification import MAX_PROOF_SIZE, VerifiedProof
from tests.fuzz.oracle import (
    check_der,
    corpus,
    corpus_files,
    corpus_params,
    known_bug,
    mutate,
    time_limit,
)

SEEDS = corpus("der")
VALID = [p.read_bytes() for p in corpus_files("der") if p.name.startswith("valid-")]
NAME_BUG = "name-attribute-bitstring.der"
FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=False,
)


def _check(data: bytes) -> VerifiedProof | ProofError:
    with time_limit():
        result = check_der(data)
    assert isinstance(result, VerifiedProof | ProofError)
    return result


@pytest.mark.parametrize("path", corpus_params("der"))
def test_corpus(path: Path) -> None:
    result = _check(path.read_bytes())
    name = path.name
    if name.startswith("valid-"):
        assert isinstance(result, VerifiedProof), result
    elif name.startswith(("truncated-", "deep-", "length-4g", "length-8", "indefinite-nested")):
        assert isinstance(result, MalformedProof), result


def test_corpus_is_small_and_keyless() -> None:
    assert 20 <= len(SEEDS) <= 200
    assert all(len(s) <= 8 * 1024 for s in SEEDS)
    assert not any(b"PRIVATE KEY" in s for s in SEEDS)


@FUZZ
@given(
    seed=st.sampled_from(SEEDS),
    other=st.sampled_from(SEEDS),
    rng=st.randoms(use_true_random=False),
    rounds=st.integers(1, 8),
)
def test_mutated_corpus(seed: bytes, other: bytes, rng: random.Random, rounds: int) -> None:
    _check(mutate(seed, other, rng, rounds))


@FUZZ
@given(
    valid=st.sampled_from(VALID),
    position=st.integers(0, 4000),
    value=st.integers(0, 255),
)
def test_every_byte_of_a_valid_proof(valid: bytes, position: int, value: int) -> None:
    """One byte of a valid proof overwritten: a verdict, and a changed proof never passes
    with different content or code."""
    data = bytearray(valid)
    position %= len(data)
    data[position] = value
    result = _check(bytes(data))
    if isinstance(result, VerifiedProof) and bytes(data) != valid:
        original = check_der(valid)
        assert isinstance(original, VerifiedProof)
        assert (result.content, result.code, result.seal_id) == (
            original.content,
            original.code,
            original.seal_id,
        )


def _name_value_tags(proof: bytes) -> list[int]:
    """Offsets of the value tags of the X.520 name attributes (2.5.4.x) in a proof."""
    return [m.end() for m in re.finditer(re.escape(bytes.fromhex("06035504")) + b".", proof)]


@pytest.mark.xfail(
    known_bug(NAME_BUG, "parse") is not None, strict=True, reason=str(known_bug(NAME_BUG, "parse"))
)
def test_every_name_attribute_with_every_universal_tag() -> None:
    """Re-tag each issuer/subject attribute value (C, O, CN, ...) of a valid proof with
    each universal tag 0-30: a verdict each time (atheris found BIT STRING escaping)."""
    escaped: dict[str, list[tuple[int, int]]] = {}
    retagged = 0
    for valid in VALID:
        for offset in _name_value_tags(valid):
            retagged += 1
            for tag in range(31):
                data = bytearray(valid)
                data[offset] = tag
                try:
                    _check(bytes(data))
                except Exception as exc:
                    escaped.setdefault(f"{type(exc).__name__}: {exc}", []).append((offset, tag))
    assert retagged >= 2 * len(VALID), "no name attributes found: nothing was tested"
    assert not escaped, escaped


@FUZZ
@given(st.binary(max_size=4096))
def test_arbitrary_bytes(data: bytes) -> None:
    _check(data)


@FUZZ
@given(
    prefix=st.sampled_from([b"\x30", b"\x30\x80", b"\x30\x82\x07\x6c\x06\x09", b""]),
    data=st.binary(max_size=512),
)
def test_arbitrary_bytes_behind_a_plausible_header(prefix: bytes, data: bytes) -> None:
    _check(prefix + data)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\x30\x80" * 100_000, id="indefinite-100k-unterminated"),
        pytest.param(b"\x30\x80" * 50_000 + b"\x00\x00" * 50_000, id="indefinite-50k"),
        pytest.param(b"\xa0\x80" * 100_000, id="context-indefinite-100k"),
        pytest.param(b"\x30\x84\x7f\xff\xff\xff" * 50_000, id="definite-50k-lying"),
        pytest.param(
            bytes.fromhex("308006092a864886f70d010702a080") + b"\x30\x80" * 60_000,
            id="signeddata-then-deep",
        ),
        pytest.param(b"\x30" * 300_000, id="sequence-bytes-only"),
    ],
)
def test_deep_nesting_is_refused_without_recursion_error(data: bytes) -> None:
    limit = sys.getrecursionlimit()
    started = time.perf_counter()
    result = _check(data)
    assert isinstance(result, MalformedProof), result
    assert time.perf_counter() - started < 2
    assert sys.getrecursionlimit() == limit


def test_deep_definite_nesting() -> None:
    inner = b"\x05\x00"
    for _ in range(20_000):
        n = len(inner)
        size = (n.bit_length() + 7) // 8
        head = bytes((n,)) if n < 0x80 else bytes((0x80 | size,)) + n.to_bytes(size, "big")
        inner = b"\x30" + head + inner
    result = _check(inner)
    assert isinstance(result, MalformedProof)


def test_oversize_is_refused_before_parsing() -> None:
    result = _check(b"\x30\x84" + (MAX_PROOF_SIZE).to_bytes(4, "big") + b"\x00" * MAX_PROOF_SIZE)
    assert isinstance(result, MalformedProof)
    assert "larger than" in str(result)
