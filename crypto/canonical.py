"""Canonical JSON (RFC 8785, JCS): the exact bytes a proof seals.

Sealing JSON needs one byte sequence per value, otherwise a bank re-serialising
the content would see a different digest. JCS gives that; ``rfc8785`` implements it.

Most proofs hold only objects, arrays, strings, safe integers, booleans and null, with
keys in the Basic Multilingual Plane. For those, JCS is exactly what the C encoder of
``json`` writes with sorted keys, no spaces and no ASCII escaping (same escapes, keys in
the same order), at a fraction of the cost; anything else (floats above all, whose JCS
form is ECMAScript's) goes through ``rfc8785``. Tests compare both on generated values.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

from sealgate.crypto.errors import ContentError

__all__ = ["canonical_json", "canonical_string"]

# One JSONEncoder, not one per call as json.dumps makes. No cycle check: only values
# that pass _plain reach it, and _plain bounds their depth.
_PLAIN_ENCODER = json.JSONEncoder(
    ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False, check_circular=False
)
_LONE_SURROGATE = "not canonicalizable as JSON (a lone surrogate)"
# The string escaper the encoder above uses: '"', '\\' and U+0000-U+001F, as RFC 8785.
_string_literal = json.encoder.encode_basestring


def canonical_json(obj: Any) -> bytes:
    """Return the RFC 8785 canonical UTF-8 encoding of ``obj``.

    Raises :class:`ContentError` for anything JSON cannot represent exactly:
    NaN/Infinity, integers beyond ±(2**53-1), non-string keys, lone surrogates,
    non-JSON types, cycles.
    """
    if _plain(obj, 0):
        try:
            return _PLAIN_ENCODER.encode(obj).encode()
        except UnicodeEncodeError:
            raise ContentError(_LONE_SURROGATE) from None
    try:
        return rfc8785.dumps(obj)
    # Messages name the kind of problem, never the value: content carries identity
    # numbers, and these messages may reach a client or a log.
    except UnicodeEncodeError:  # a lone surrogate in a key: rfc8785 sorts keys as UTF-16
        raise ContentError(_LONE_SURROGATE) from None
    except rfc8785.IntegerDomainError:
        raise ContentError("an integer is beyond ±(2**53-1): send it as a string") from None
    except rfc8785.FloatDomainError:
        raise ContentError("a number is NaN or infinite") from None
    except rfc8785.CanonicalizationError as exc:
        raise ContentError(f"not canonicalizable as JSON ({type(exc).__name__})") from None
    except RecursionError:
        raise ContentError("JSON value nested too deeply (or cyclic)") from None
    except (TypeError, AttributeError) as exc:
        raise ContentError(f"not a JSON value ({type(exc).__name__})") from None


def canonical_string(text: str) -> bytes:
    """The RFC 8785 encoding of the string ``text``, quotes included: what
    :func:`canonical_json` writes for it. For documents written from canonical parts.

    Raises :class:`ContentError` for a lone surrogate.
    """
    try:
        return _string_literal(text).encode()
    except UnicodeEncodeError:
        raise ContentError(_LONE_SURROGATE) from None


_MAX_SAFE = 2**53 - 1
_MAX_DEPTH = 64


def _plain(value: Any, depth: int) -> bool:
    """Whether ``value`` is in the subset where ``json``'s output is JCS (see above)."""
    kind = type(value)
    if kind is str or value is None or kind is bool:
        return True
    if kind is int:
        return bool(-_MAX_SAFE <= value <= _MAX_SAFE)
    if depth >= _MAX_DEPTH:
        return False
    if kind is dict:
        for key in value:
            if type(key) is not str or not (key.isascii() or max(key) < "\ud800"):
                return False
        members = value.values()
    elif kind is list:
        members = value
    else:
        return False
    # Loops, not all(<genexpr>), and leaves checked inline: sealing walks every proof.
    for member in members:
        kind = type(member)
        if kind is str or member is None or kind is bool:
            continue
        if kind is int:
            if not -_MAX_SAFE <= member <= _MAX_SAFE:
                return False
        elif not _plain(member, depth + 1):
            return False
    return True
