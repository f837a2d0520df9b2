"""Sealed documents encrypted at rest in the registry.

A sealed proof carries the holder's identity number in clear (it must, to stand on its
own), so the registry stores it encrypted: AES-256-GCM under a secret of the home, with
the proof's code as associated data, so a blob cannot be moved to another code. A leaked
registry then lists no identity numbers: only masks, keyed hashes and ciphertext.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sealgate.errors import ConfigError, Error

_VERSION = b"\x01"
_NONCE = 12


class DocumentCorrupted(Error):
    """A stored document fails authentication: altered, moved, or under another key."""


class DocumentCipher:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ConfigError("the document key has 32 bytes")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "DocumentCipher(<secret>)"

    def encrypt(self, code: str, document: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return _VERSION + nonce + self._aead.encrypt(nonce, document, code.encode())

    def decrypt(self, code: str, blob: bytes) -> bytes:
        if blob[:1] != _VERSION or len(blob) < 1 + _NONCE + 16:
            raise DocumentCorrupted(f"stored document of {code} has an unknown format")
        nonce = blob[1 : 1 + _NONCE]
        try:
            return self._aead.decrypt(nonce, blob[1 + _NONCE :], code.encode())
        except InvalidTag:
            raise DocumentCorrupted(f"stored document of {code} fails authentication") from None
