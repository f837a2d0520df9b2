"""Behaviour every Keystore shares, run against a real SoftHSM2 token and the soft store."""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Iterator

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key

from sealgate.hsm import (
    HsmUnavailable,
    KeyAlgorithm,
    KeyExists,
    KeyNotFound,
    Keystore,
    KeystoreConfig,
)
from sealgate.hsm.keystore import open_keystore
from sealgate.hsm.pkcs11 import Pkcs11Keystore
from tests.hsm._support import unique_label, verify


@pytest.fixture(params=["pkcs11", "soft"])
def keystore(
    request: pytest.FixtureRequest, soft_keystore_config: KeystoreConfig
) -> Iterator[Keystore]:
    if request.param == "pkcs11":
        config: KeystoreConfig = request.getfixturevalue("softhsm_token")
    else:
        config = soft_keystore_config
    with open_keystore(config) as store:
        yield store


def require(keystore: Keystore, algorithm: KeyAlgorithm) -> None:
    """Skip unless the store can generate and sign with ``algorithm`` (pyHanko-style gate)."""
    if isinstance(keystore, Pkcs11Keystore) and not keystore.supports(algorithm):
        pytest.skip(f"token lacks the mechanisms for {algorithm}")


@pytest.mark.parametrize("algorithm", list(KeyAlgorithm))
def test_signature_verifies_against_spki(keystore: Keystore, algorithm: KeyAlgorithm) -> None:
    require(keystore, algorithm)
    label = unique_label("sig")
    info = keystore.generate_key(label, algorithm)
    assert info.label == label
    assert info.algorithm is algorithm
    assert keystore.key(label) == info

    public = load_der_public_key(info.public_key_der)
    if algorithm is KeyAlgorithm.EC_P256:
        assert isinstance(public, ec.EllipticCurvePublicKey)
        assert isinstance(public.curve, ec.SECP256R1)
    else:
        assert isinstance(public, rsa.RSAPublicKey)
        assert public.key_size == 3072

    for message in (b"", b"seal me", b"x" * 10_000):
        digest = hashlib.sha256(message).digest()
        signature = keystore.sign_digest(label, digest)
        verify(info, digest, signature)
        with pytest.raises(InvalidSignature):
            verify(info, hashlib.sha256(message + b"!").digest(), signature)


def test_existing_label_is_refused(keystore: Keystore) -> None:
    require(keystore, KeyAlgorithm.EC_P256)
    label = unique_label("exists")
    first = keystore.generate_key(label, KeyAlgorithm.EC_P256)
    with pytest.raises(KeyExists):
        keystore.generate_key(label, KeyAlgorithm.EC_P256)
    assert keystore.key(label) == first  # the original key is untouched


def test_destroying_a_key_removes_both_halves_and_nothing_else(keystore: Keystore) -> None:
    kept, doomed = unique_label("kept"), unique_label("doomed")
    kept_info = keystore.generate_key(kept, KeyAlgorithm.EC_P256)
    keystore.generate_key(doomed, KeyAlgorithm.EC_P256)
    keystore.sign_digest(doomed, bytes(32))  # a cached signing handle goes too
    keystore.destroy_key(doomed)
    with pytest.raises(KeyNotFound):
        keystore.key(doomed)
    with pytest.raises(KeyNotFound):
        keystore.sign_digest(doomed, bytes(32))
    everything = keystore.keys()
    assert doomed not in [k.label for k in everything]
    keystore.destroy_key(doomed)  # nothing there: nothing happens
    # The label is free again: no public half was left behind to refuse it.
    keystore.generate_key(doomed, KeyAlgorithm.EC_P256)
    assert keystore.key(kept) == kept_info


def test_unknown_label(keystore: Keystore) -> None:
    label = unique_label("missing")
    with pytest.raises(KeyNotFound):
        keystore.key(label)
    with pytest.raises(KeyNotFound):
        keystore.sign_digest(label, bytes(32))


def test_digest_must_be_sha256_sized(keystore: Keystore) -> None:
    require(keystore, KeyAlgorithm.EC_P256)
    label = unique_label("len")
    keystore.generate_key(label, KeyAlgorithm.EC_P256)
    with pytest.raises(ValueError, match="32-byte"):
        keystore.sign_digest(label, b"short")


def test_keys_lists_generated_keys_sorted(keystore: Keystore) -> None:
    require(keystore, KeyAlgorithm.EC_P256)
    labels = [unique_label("list") for _ in range(3)]
    infos = {label: keystore.generate_key(label, KeyAlgorithm.EC_P256) for label in labels}
    everything = keystore.keys()
    listed = [info for info in everything if info.label in infos]
    assert [info.label for info in listed] == sorted(labels)
    assert all(info == infos[info.label] for info in listed)


def test_keys_survive_reopening(keystore: Keystore, request: pytest.FixtureRequest) -> None:
    require(keystore, KeyAlgorithm.EC_P256)
    label = unique_label("persist")
    info = keystore.generate_key(label, KeyAlgorithm.EC_P256)
    keystore.close()
    config: KeystoreConfig = request.getfixturevalue(
        "softhsm_token" if keystore.backend == "pkcs11" else "soft_keystore_config"
    )
    with open_keystore(config) as reopened:
        assert reopened.key(label) == info
        digest = hashlib.sha256(b"after reopen").digest()
        verify(info, digest, reopened.sign_digest(label, digest))


def test_check_passes_on_a_healthy_store(keystore: Keystore) -> None:
    keystore.check()  # the failing cases of each store follow


def test_token_check_fails_once_the_keystore_is_closed(softhsm_token: KeystoreConfig) -> None:
    store = open_keystore(softhsm_token)
    store.check()
    store.close()
    with pytest.raises(HsmUnavailable, match="closed"):
        store.check()


def test_token_check_fails_when_the_token_forgot_the_session(
    softhsm_token: KeystoreConfig,
) -> None:
    """The probe is a round trip to the token, not a look at local state: a session the
    token no longer knows (device gone, token re-initialised) fails it."""
    store = open_keystore(softhsm_token)
    assert isinstance(store, Pkcs11Keystore)
    store.check()
    store._open_session().close()  # ended on the token, still held by the keystore
    try:
        with pytest.raises(HsmUnavailable):
            store.check()
    finally:
        with contextlib.suppress(HsmUnavailable):  # closing a dead session fails too
            store.close()


def test_soft_check_fails_when_the_key_directory_is_gone(
    soft_keystore_config: KeystoreConfig,
) -> None:
    assert soft_keystore_config.directory is not None
    with open_keystore(soft_keystore_config) as store:
        store.check()
        soft_keystore_config.directory.rmdir()  # an unmounted volume, a wrong path
        with pytest.raises(HsmUnavailable, match="is gone"):
            store.check()


def test_soft_keystore_warns_and_keeps_keys_private(
    soft_keystore_config: KeystoreConfig, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="sealgate.hsm.soft"):
        store = open_keystore(soft_keystore_config)
    assert "soft keystore: private keys are in files, for development only" in caplog.text
    with store:
        assert store.backend == "soft"
        store.generate_key(unique_label("perm"), KeyAlgorithm.EC_P256)
    assert soft_keystore_config.directory is not None
    files = list(soft_keystore_config.directory.iterdir())
    assert files
    assert all(f.stat().st_mode & 0o077 == 0 for f in files)
    assert soft_keystore_config.directory.stat().st_mode & 0o077 == 0
