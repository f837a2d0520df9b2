"""What the fuzzers share: the seed corpus, byte mutations, and the oracles.

An oracle feeds one input to the code under test and lets through only the exceptions
the contract allows; anything else (or a call that runs too long) propagates as a bug.
Used by the hypothesis tests and by the standalone atheris scripts alike.
"""

from __future__ import annotations

import contextlib
import random
import signal
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the atheris scripts run outside pytest
    sys.path.insert(0, str(ROOT))

from sealgate.crypto.errors import ContentError, ProofError  # noqa: E402
from sealgate.crypto.verification import TrustList, VerifiedProof, verify_proof  # noqa: E402
from sealgate.gateway.requests import (  # noqa: E402
    InvalidRequest,
    decode_json,
    parse_seal_body,
    parse_status_change,
)

CORPUS = Path(__file__).resolve().parent / "corpus"
#: One input must be answered well within this; a hang is a bug (seconds).
TIME_LIMIT = 5.0


#: Corpus files that still make the code under test fail: file name -> (where, why).
#: ``where`` is "parse" (the parser/verifier itself), "http" (only through the app) or
#: "both". The tests mark them xfail(strict) there and keep them out of the mutation
#: pools. Delete an entry once the bug is fixed (the strict xfail then reminds you).
_NAME_BITSTRING = (
    "both",
    "verify_proof: TypeError from cryptography when a certificate name attribute is a "
    "BIT STRING (cert.issuer in sealgate.crypto.verification._split_certificates)",
)
_SURROGATE_FIELD = (
    "http",
    "a lone surrogate in a JSON key lands in the problem's field/detail, and "
    "Problem.response fails to encode it as UTF-8: 500 instead of 400",
)
KNOWN_BUGS: dict[str, tuple[str, str]] = {}


def known_bug(name: str, where: str) -> str | None:
    """Why ``name`` still fails ``where`` ("parse" or "http"), or None."""
    scope, reason = KNOWN_BUGS.get(name, ("", ""))
    return reason if scope in (where, "both") else None


def corpus(kind: str, where: str = "parse") -> list[bytes]:
    """The seed files of ``corpus/<kind>/`` (``der`` or ``json``) in name order, without
    the known bugs of ``where``."""
    return [p.read_bytes() for p in corpus_files(kind) if known_bug(p.name, where) is None]


def corpus_files(kind: str) -> list[Path]:
    return sorted(p for p in (CORPUS / kind).iterdir() if p.is_file())


def corpus_params(kind: str, where: str = "parse") -> list[Any]:
    """The corpus files as pytest params; known bugs of ``where`` are xfail(strict)."""
    import pytest

    params = []
    for path in corpus_files(kind):
        reason = known_bug(path.name, where)
        marks = [] if reason is None else [pytest.mark.xfail(strict=True, reason=reason)]
        params.append(pytest.param(path, id=path.name, marks=marks))
    return params


@cache
def trust() -> TrustList:
    """The test roots the DER seeds were sealed under (public certificates only)."""
    return TrustList.from_der(p.read_bytes() for p in sorted((CORPUS / "trust").iterdir()))


class Hang(BaseException):  # not an Exception: no `except Exception` may swallow it
    """The call under test ran past :data:`TIME_LIMIT`."""


@contextlib.contextmanager
def time_limit(seconds: float = TIME_LIMIT) -> Iterator[None]:
    """Raise :class:`Hang` in the main thread if the block runs past ``seconds``."""

    def expired(signum: int, frame: Any) -> None:
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def check_der(data: bytes) -> VerifiedProof | ProofError:
    """``verify_proof`` returns or raises a ProofError; anything else escapes."""
    try:
        return verify_proof(data, trust())
    except ProofError as exc:
        return exc


def check_json(data: bytes) -> Any:
    """Decoding and parsing raise only InvalidRequest / ContentError; anything else escapes.

    Every decoded value is given to both body parsers (seal and status change).
    """
    try:
        value = decode_json(data)
    except (InvalidRequest, ContentError) as exc:
        return exc
    results: list[Any] = []
    for parse in (parse_seal_body, parse_status_change):
        try:
            results.append(parse(value))
        except (InvalidRequest, ContentError) as exc:
            results.append(exc)
    return results


# --- mutations -----------------------------------------------------------------------

_INTERESTING = (
    b"\x00",
    b"\xff",
    b"\x7f",
    b"\x80",
    b"\x81",
    b"\x82\xff\xff",
    b"\x84\xff\xff\xff\xff",
    b"\x30\x80",
    b"\x00\x00",
    b'"',
    b"{",
    b"[",
    b"\\u",
    b"\\ud800",
    b"1e999",
    b"null",
)


def mutate(data: bytes, other: bytes, rng: random.Random, rounds: int = 1) -> bytes:
    """Flip, insert, delete, overwrite, truncate, duplicate, or splice with ``other``."""
    out = bytearray(data)
    for _ in range(rounds):
        op = rng.randrange(8)
        pos = rng.randrange(len(out) + 1)
        if op == 0 and out:  # bit flip
            i = min(pos, len(out) - 1)
            out[i] ^= 1 << rng.randrange(8)
        elif op == 1:  # insert random bytes
            out[pos:pos] = rng.randbytes(rng.randint(1, 8))
        elif op == 2 and out:  # delete a run
            del out[pos : pos + rng.randint(1, 16)]
        elif op == 3 and out:  # overwrite one byte
            out[min(pos, len(out) - 1)] = rng.randrange(256)
        elif op == 4:  # truncate
            del out[pos:]
        elif op == 5:  # insert an interesting token
            out[pos:pos] = rng.choice(_INTERESTING)
        elif op == 6 and out:  # duplicate a slice
            start = rng.randrange(len(out))
            out[pos:pos] = out[start : start + rng.randint(1, 64)]
        else:  # splice: our head, the other's tail
            cut = rng.randrange(len(other) + 1)
            out = out[:pos] + other[cut:]
    return bytes(out)
