"""Codes and identity numbers checked before a request leaves, by the gateway's own rules.

The same functions the gateway runs (:mod:`sealgate.verify.code`,
:mod:`sealgate.verify.holders`), so a code the client lets through is one the gateway
reads the same way, and a typing error costs no request (nor a failed lookup, which the
gateway counts against the client's budget).
"""

from __future__ import annotations

from sealgate.client.errors import InvalidCode, InvalidHolderId
from sealgate.verify import code as _code
from sealgate.verify import holders as _holders

__all__ = ["normalise_code", "normalise_holder_id"]


def normalise_code(text: str) -> str:
    """The canonical form (``430900-ZDXE31-DD2417-Z7GDVP``) of a code as typed: any case,
    with or without hyphens or spaces, O for 0 and I/L for 1, full-width forms and other
    dashes. Raises :class:`InvalidCode` for what is not a code, a mistyped one included
    (its check character catches every single typo and adjacent swap).

    Whether the code was issued is the gateway's to say: a well-formed code may still be
    unknown or forged (404 :class:`~sealgate.client.errors.UnknownCode`).
    """
    try:
        return str(_code.parse_code(text))
    except _code.MalformedCode as exc:
        raise InvalidCode(str(exc)) from None


def normalise_holder_id(holder_id: str) -> str:
    """An identity number (居民身份证号码, GB 11643) or unified social credit code
    (统一社会信用代码, GB 32100), upper-cased and check-character verified; raises
    :class:`InvalidHolderId` (without the number in the message)."""
    for kind in _holders.HolderKind:
        try:
            return _holders.normalise_holder_id(kind, holder_id)
        except _holders.InvalidHolderId:
            continue
    raise InvalidHolderId(
        "neither a resident identity number nor a unified social credit code"
        " (check the length and the last character)"
    )
