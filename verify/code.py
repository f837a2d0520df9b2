"""The unified verification code (统一认证码) printed on every sealed proof.

Canonical form ``RRRRRR-XXXXXX-XXXXXX-XXXXXC``: 27 characters, 24 without the hyphens.

- ``RRRRRR``: 6-digit region code, so codes from other cities can be routed.
- 17 body characters in Crockford base32: 9 random ones (45 bits from ``os.urandom``),
  then 8 of keyed tag (the first 40 bits of HMAC-SHA256 over region and random part).
  A guessed or altered code is thus refused without any cache or database access, and
  no part of a code depends on the holder, the issue order or the count issued.
- ``C``: ISO/IEC 7064 MOD 37-2 check character over region and body. 37 is prime, so it
  catches every single substitution and every adjacent transposition: a mistyped code
  is told apart from a forged one. Issuing redraws the random part until the check
  character is a Crockford symbol, so case and O→0, I/L→1 folding never change it.

Input is case-insensitive, folds O to 0 and I, L to 1, and ignores hyphens and spaces.

Exceptions::

    CodeError
    ├── MalformedCode   wrong length, alphabet, region or check character (a typing error)
    └── ForgedCode      well-formed but the keyed tag does not match (guessed or altered)
"""

from __future__ import annotations

import hashlib
import hmac
import os
import unicodedata
from dataclasses import dataclass
from operator import getitem

from sealgate.errors import ConfigError, Error

CROCKFORD_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# ISO/IEC 7064 MOD 37-2 characters; the index is the character's value, '*' is 36.
_ISO_SYMBOLS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*"
_ISO_VALUE = {symbol: value for value, symbol in enumerate(_ISO_SYMBOLS)}

REGION_LENGTH = 6
RANDOM_LENGTH = 9  # 45 bits
TAG_LENGTH = 8  # 40 bits
BODY_LENGTH = RANDOM_LENGTH + TAG_LENGTH
COMPACT_LENGTH = REGION_LENGTH + BODY_LENGTH + 1

_MODULUS = 37
_MIN_KEY_LENGTH = 32
_TAG_DOMAIN = b"sealgate/code/v1|"
_TAG_BYTES = TAG_LENGTH * 5 // 8
_RANDOM_END = REGION_LENGTH + RANDOM_LENGTH
_BODY_END = REGION_LENGTH + BODY_LENGTH
_MAX_INPUT = 64  # generous for 27 characters plus spacing; bounds the work on hostile input


class CodeError(Error):
    """Base of the verification code errors."""


class MalformedCode(CodeError):
    """Not a verification code: wrong length, alphabet, region or check character."""


class ForgedCode(CodeError):
    """Well-formed, but the keyed tag does not match: guessed, altered or another key's."""


@dataclass(frozen=True, slots=True)
class VerificationCode:
    """A syntactically valid code; obtain one from :func:`parse_code` or :class:`CodeAuthority`."""

    region: str  # 6 digits
    body: str  # 17 Crockford symbols: random 9 + tag 8, upper case
    check: str  # 1 Crockford symbol

    def __str__(self) -> str:
        tail = self.body + self.check
        return f"{self.region}-{tail[:6]}-{tail[6:12]}-{tail[12:]}"

    @property
    def compact(self) -> str:
        """Region, body and check without hyphens (24 characters): the registry key."""
        return self.region + self.body + self.check


def _fold_table() -> bytes:
    table = bytearray(range(256))
    for lower in range(ord("a"), ord("z") + 1):
        table[lower] = lower - 32
    for look_alike, symbol in (("O", "0"), ("I", "1"), ("L", "1")):
        table[ord(look_alike)] = table[ord(look_alike.lower())] = ord(symbol)
    return bytes(table)


# A symbol outside its field adds this to the checksum, pushing it past any valid total
# (24 * 36 at most), so one pass over the code checks both alphabet and check character.
_OUT_OF_FIELD = 1 << 16


def _position_tables() -> tuple[tuple[int, ...], ...]:
    """Per position, byte → ISO value × 2^(distance from the right) mod 37."""
    tables = []
    for position in range(COMPACT_LENGTH):
        field = "0123456789" if position < REGION_LENGTH else CROCKFORD_ALPHABET
        weight = pow(2, COMPACT_LENGTH - 1 - position, _MODULUS)
        row = [_OUT_OF_FIELD] * 256
        for symbol in field:
            row[ord(symbol)] = _ISO_VALUE[symbol] * weight % _MODULUS
        tables.append(tuple(row))
    return tuple(tables)


_FOLD = _fold_table()
_POSITION_TABLES = _position_tables()
_PAYLOAD_TABLES = _POSITION_TABLES[:-1]
# A random byte → the Crockford symbol of its low 5 bits (256 is a multiple of 32, so
# uniform bytes give uniform symbols).
_BYTE_TO_SYMBOL = bytes(ord(CROCKFORD_ALPHABET[b & 31]) for b in range(256))
# Every 10-bit value as its two Crockford symbols (base64's base32 is a Python loop).
_PAIRS = tuple(
    (CROCKFORD_ALPHABET[v >> 5] + CROCKFORD_ALPHABET[v & 31]).encode() for v in range(1024)
)
_ENTROPY_BYTES = RANDOM_LENGTH * 512  # one os.urandom call per ~500 codes
# int(..., 32) reads base32hex, whose symbols have the same values as Crockford's.
_CROCKFORD_TO_BASE32HEX = bytes.maketrans(
    CROCKFORD_ALPHABET.encode(), b"0123456789ABCDEFGHIJKLMNOPQRSTUV"
)


def _check_symbol_of(payload: bytes) -> str:
    """ISO/IEC 7064 MOD 37-2 (pure system) check character of region + body (23 bytes)."""
    return _ISO_SYMBOLS[(1 - sum(map(getitem, _PAYLOAD_TABLES, payload))) % _MODULUS]


def _is_region(region: str) -> bool:
    return len(region) == REGION_LENGTH and region.isascii() and region.isdigit()


# Chinese input methods type full-width forms (ＡＢ０１－, NFKC reads them as ASCII) and
# other dashes; word processors turn hyphens into en dashes.
_DASHES = str.maketrans(
    dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u30fc\ufe63", "-")
)


def _canonical(text: str) -> bytes:
    """The 24 canonical ASCII bytes of ``text``; raises :class:`MalformedCode`."""
    if len(text) > _MAX_INPUT:
        raise MalformedCode("not a verification code: too long")
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text).translate(_DASHES)
        if not text.isascii():
            raise MalformedCode("not a verification code: characters no code has")
    compact = text.encode("ascii").translate(_FOLD, b"- ")
    if len(compact) != COMPACT_LENGTH:
        raise MalformedCode(f"a verification code has {COMPACT_LENGTH} symbols")
    total = sum(map(getitem, _POSITION_TABLES, compact))
    if total >= _OUT_OF_FIELD:
        raise MalformedCode("a verification code is 6 digits then 18 Crockford base32 symbols")
    if total % _MODULUS != 1:  # a valid MOD 37-2 string sums to 1
        raise MalformedCode("check character does not match: the code was mistyped")
    return compact


def _from_canonical(compact: bytes) -> VerificationCode:
    text = compact.decode("ascii")
    return VerificationCode(text[:REGION_LENGTH], text[REGION_LENGTH:_BODY_END], text[_BODY_END])


def parse_code(text: str) -> VerificationCode:
    """Normalise ``text`` and check its syntax and check character; no key needed.

    Any region is accepted. Raises :class:`MalformedCode`.
    """
    return _from_canonical(_canonical(text))


#: What a record keeps in place of text that was sent as a code and is not one.
NOT_A_CODE = "(not a code)"


def is_well_formed(text: str) -> bool:
    """Whether ``text`` passes :func:`parse_code` (syntax and check character)."""
    try:
        _canonical(text)
    except MalformedCode:
        return False
    return True


def recordable_code(text: str) -> str:
    """``text`` if it is a well-formed code, else :data:`NOT_A_CODE`.

    For the audit trail and the logs: what a client typed where a code goes may be
    anything, a holder's identity number among the likeliest, which must not be kept.
    """
    return text if is_well_formed(text) else NOT_A_CODE


class CodeAuthority:
    """Issues codes and checks their keyed tag. Holds the secret tag key (never log or repr it).

    Codes of every region are checked, not just ours: a code from another city is
    well-formed, and its tag fails (:class:`ForgedCode`) unless that city shares our key.
    Route on ``parse_code(text).region`` first when other cities' codes are expected.
    """

    __slots__ = ("_entropy", "_entropy_used", "_key", "_mac", "_region")

    def __init__(self, key: bytes, region: str) -> None:
        if len(key) < _MIN_KEY_LENGTH:
            raise ConfigError(f"the tag key must be at least {_MIN_KEY_LENGTH} bytes")
        if not _is_region(region):
            raise ConfigError("the region must be 6 ASCII digits")
        self._key = bytes(key)  # a private copy: a caller's bytearray may change later
        self._mac = hmac.new(self._key, digestmod=hashlib.sha256)
        self._region = region
        self._entropy = b""
        self._entropy_used = 0

    def __repr__(self) -> str:
        return f"CodeAuthority(region={self._region!r})"

    @property
    def region(self) -> str:
        return self._region

    def _tag(self, region: bytes, random_part: bytes) -> bytes:
        # A copy of the keyed state skips re-keying on every check (~0.7 µs of ~2).
        mac = self._mac.copy()
        mac.update(_TAG_DOMAIN + region + b"|" + random_part)
        return mac.digest()[:_TAG_BYTES]

    def issue(self) -> VerificationCode:
        """A fresh code of our region: 45 random bits, 40 tag bits, a Crockford check symbol."""
        region = self._region.encode()
        while True:
            random_part = self._random_bytes(RANDOM_LENGTH).translate(_BYTE_TO_SYMBOL)
            tag = self._tag(region, random_part)
            t = int.from_bytes(tag, "big")  # 40 bits: 8 symbols, two per 10 bits
            pairs = _PAIRS
            body = b"".join(
                (random_part, pairs[t >> 30], pairs[(t >> 20) & 1023], pairs[(t >> 10) & 1023],
                 pairs[t & 1023])
            )  # fmt: skip
            check = _check_symbol_of(region + body)
            # I, L, O, U and '*' (5 of 37 values) would not survive input folding: redraw.
            if check in CROCKFORD_ALPHABET:
                return VerificationCode(self._region, body.decode("ascii"), check)

    def _random_bytes(self, count: int) -> bytes:
        # From os.urandom (the kernel CSPRNG, as :mod:`secrets`), drawn in blocks: one
        # system call per code was a measurable part of sealing.
        start = self._entropy_used
        if start + count > len(self._entropy):
            self._entropy, start = os.urandom(_ENTROPY_BYTES), 0
        self._entropy_used = start + count
        return self._entropy[start : start + count]

    def check(self, text: str) -> VerificationCode:
        """Parse ``text`` and check its keyed tag.

        Raises :class:`MalformedCode` for a mistyped code, :class:`ForgedCode` for a
        well-formed one whose tag does not match this key (including other regions').
        """
        compact = _canonical(text)
        expected = self._tag(compact[:REGION_LENGTH], compact[REGION_LENGTH:_RANDOM_END])
        claimed = int(compact[_RANDOM_END:_BODY_END].translate(_CROCKFORD_TO_BASE32HEX), 32)
        if not hmac.compare_digest(expected, claimed.to_bytes(_TAG_BYTES, "big")):
            raise ForgedCode("verification code was not issued under this key")
        return _from_canonical(compact)
