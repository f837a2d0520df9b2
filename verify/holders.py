"""Proof holders: identity-number checks, masking, and the keyed lookup hash.

The registry never stores a holder's identity number in clear: verify responses show it
masked, and lookups go through :meth:`HolderKeys.key`, an HMAC under a secret of the
home, so a leaked registry cannot be searched with a list of identity numbers.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import operator

from sealgate.errors import ConfigError, Error


class HolderKind(enum.StrEnum):
    PERSON = "person"  # 居民身份证号码, GB 11643
    ORG = "org"  # 统一社会信用代码, GB 32100


class InvalidHolderId(Error, ValueError):
    """The identity number fails its format or check character."""


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"  # ISO 7064 MOD 11-2, as GB 11643 applies it

_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100: no I, O, Z, S, V
_USCC_VALUE = {c: i for i, c in enumerate(_USCC_ALPHABET)}
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


_ID_ZERO_OFFSET = ord("0") * sum(_ID_WEIGHTS)


def resident_id_check(first17: str) -> str:
    """The check character of 17 ASCII digits."""
    if len(first17) != 17:
        raise ValueError("a resident identity number's check covers 17 digits")
    # Over the digits' code points, then take the '0's back out: no int() per digit.
    total = sum(map(operator.mul, first17.encode("ascii"), _ID_WEIGHTS)) - _ID_ZERO_OFFSET
    return _ID_CHECK[total % 11]


def uscc_check(first17: str) -> str:
    total = sum(_USCC_VALUE[c] * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_ALPHABET[(31 - total % 31) % 31]


def normalise_holder_id(kind: HolderKind, holder_id: str) -> str:
    """Upper-cased, checked identity number; raises :class:`InvalidHolderId`."""
    value = holder_id.strip().upper()
    if kind is HolderKind.PERSON:
        if len(value) != 18 or not value[:17].isdigit() or not value[:17].isascii():
            raise InvalidHolderId("a resident identity number has 17 digits and a check character")
        if resident_id_check(value[:17]) != value[17]:
            raise InvalidHolderId("the resident identity number's check character is wrong")
        return value
    if len(value) != 18 or any(c not in _USCC_VALUE for c in value):
        raise InvalidHolderId("a unified social credit code has 18 characters of GB 32100")
    if uscc_check(value[:17]) != value[17]:
        raise InvalidHolderId("the unified social credit code's check character is wrong")
    return value


def require_birth_date(resident_id: str) -> None:
    """Raise :class:`InvalidHolderId` unless the birth date in a (normalised) resident
    identity number is a day that has been (with a day's grace for time zones; the
    standard's own example was born in 1880).

    For issuing only: a lookup must still find proofs issued before this was checked.
    """
    digits = resident_id[6:14]
    try:
        born = dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        born = None
    if born is None or born.year < 1800 or born > dt.date.today() + dt.timedelta(days=1):
        raise InvalidHolderId("the resident identity number's birth date is not a real day")


def mask_name(name: str) -> str:
    """``张三`` → ``张*``; organisations keep their name (it is public)."""
    name = name.strip()
    if len(name) <= 1:
        return "*"
    return name[0] + "*" * (len(name) - 1)


def mask_id(holder_id: str) -> str:
    """``430902199001011234`` → ``4309**********1234``."""
    if len(holder_id) <= 8:
        return "*" * len(holder_id)
    return holder_id[:4] + "*" * (len(holder_id) - 8) + holder_id[-4:]


class HolderKeys:
    """Derives the registry's lookup key for a holder; holds a secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ConfigError("the holder key secret needs at least 32 bytes")
        self._secret = secret

    def __repr__(self) -> str:
        return "HolderKeys(<secret>)"

    def key(self, kind: HolderKind, holder_id: str) -> bytes:
        message = f"sealgate/holder/v1|{kind.value}|{holder_id}".encode()
        return hmac.digest(self._secret, message, hashlib.sha256)

    def keyed_hash(self, domain: str, value: bytes) -> bytes:
        """A keyed hash of what a client sent that must not be kept as sent (a request
        id, an idempotency key, a body): comparable, and nothing to read or guess without
        the secret. The same secret as the holders' keys, in a domain of its own (every
        instance of a city holds it, so the hashes agree across instances)."""
        return hmac.digest(self._secret, f"sealgate/{domain}/v1|".encode() + value, hashlib.sha256)
