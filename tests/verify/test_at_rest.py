"""Documents at rest: encrypted, bound to their code, and refused when altered."""

from __future__ import annotations

import os

import pytest

from sealgate.verify.at_rest import DocumentCipher, DocumentCorrupted


def test_round_trip_and_binding_to_the_code() -> None:
    cipher = DocumentCipher(os.urandom(32))
    document = "张三 11010519491231002X".encode()
    blob = cipher.encrypt("CODE1", document)
    assert document not in blob
    assert cipher.decrypt("CODE1", blob) == document
    with pytest.raises(DocumentCorrupted):
        cipher.decrypt("CODE2", blob)  # moved to another proof
    with pytest.raises(DocumentCorrupted):
        DocumentCipher(os.urandom(32)).decrypt("CODE1", blob)
    for position in range(len(blob)):
        altered = bytearray(blob)
        altered[position] ^= 0x80
        with pytest.raises(DocumentCorrupted):
            cipher.decrypt("CODE1", bytes(altered))
    assert cipher.encrypt("CODE1", document) != blob  # fresh nonce each time
    assert "secret" in repr(cipher)


def test_key_length_is_checked() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        DocumentCipher(b"short")
