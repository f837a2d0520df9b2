"""Canonical JSON (RFC 8785, JCS): the exact bytes a proof seals.

Sealing JSON needs one byte sequence per value, otherwise a bank re-serialising
the content would see a different digest. JCS gives that; ``rfc8785`` implements it.
"""

from __future__ import annotations

from typing import Any

import rfc8785

from crypto.errors import ContentError

__all__ = ["canonical_json"]


def canonical_json(obj: Any) -> bytes:
    """Return the RFC 8785 canonical UTF-8 encoding of ``obj``.

    Raises :class:`ContentError` for anything JSON cannot represent exactly:
    NaN/Infinity, integers beyond ±(2**53-1), non-string keys, lone surrogates,
    non-JSON types, cycles.
    """
    try:
        return rfc8785.dumps(obj)
    # Messages name the kind of problem, never the value: content carries identity
    # numbers, and these messages may reach a client or a log.
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
