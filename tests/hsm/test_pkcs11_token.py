"""What Pkcs11Keystore leaves on a real SoftHSM2 token, read back independently."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pkcs11
import pytest
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.exceptions import AttributeSensitive

from sealgate.hsm import DuplicateKey, KeyAlgorithm, KeystoreConfig, KeystoreConfigError
from sealgate.hsm.errors import HsmError, HsmUnavailable, KeyNotFound, MechanismNotSupported
from sealgate.hsm.pkcs11 import P256_EC_PARAMS, Pkcs11Keystore, _token_errors
from tests.hsm._support import unique_label


@pytest.fixture
def keystore(softhsm_token: KeystoreConfig) -> Iterator[Pkcs11Keystore]:
    with Pkcs11Keystore.open(softhsm_token) as store:
        yield store


@contextmanager
def inspection_session(config: KeystoreConfig, *, rw: bool = False) -> Iterator[pkcs11.Session]:
    """A second, independent session on the token.

    PKCS#11 login state belongs to the application, not the session: while the keystore's
    session is logged in, this one sees private objects without logging in again.
    """
    token = pkcs11.lib(config.module).get_token(token_label=config.token_label)
    with token.open(rw=rw) as session:
        yield session


def pkcs11_tool_objects(config: KeystoreConfig) -> list[dict[str, str]]:
    """``pkcs11-tool --list-objects`` parsed into one dict per object (another process)."""
    result = subprocess.run(
        [
            "pkcs11-tool",
            "--module",
            config.module,
            "--token-label",
            config.token_label,
            "--login",
            "--pin",
            config.pin,
            "--list-objects",
        ],
        env={**os.environ, "SOFTHSM2_CONF": config.softhsm2_conf},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    objects: list[dict[str, str]] = []
    for line in result.stdout.splitlines():
        if line and not line[0].isspace():
            objects.append({"kind": line.strip()})
        elif ":" in line and objects:
            name, _, value = line.strip().partition(":")
            objects[-1][name.strip()] = value.strip()
    return objects


def require(keystore: Pkcs11Keystore, algorithm: KeyAlgorithm) -> None:
    if not keystore.supports(algorithm):
        pytest.skip(f"token lacks the mechanisms for {algorithm}")


@pytest.mark.parametrize("algorithm", list(KeyAlgorithm))
def test_private_key_attributes_read_back_in_another_session(
    keystore: Pkcs11Keystore, softhsm_token: KeystoreConfig, algorithm: KeyAlgorithm
) -> None:
    require(keystore, algorithm)
    label = unique_label("attrs")
    keystore.generate_key(label, algorithm)

    with inspection_session(softhsm_token) as session:
        private = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
        public = session.get_key(object_class=ObjectClass.PUBLIC_KEY, label=label)
        assert private[Attribute.TOKEN] is True
        assert private[Attribute.PRIVATE] is True
        assert private[Attribute.SENSITIVE] is True
        assert private[Attribute.EXTRACTABLE] is False
        assert private[Attribute.ALWAYS_SENSITIVE] is True
        assert private[Attribute.NEVER_EXTRACTABLE] is True
        assert private[Attribute.SIGN] is True
        assert private[Attribute.DECRYPT] is False
        assert public[Attribute.TOKEN] is True
        assert public[Attribute.VERIFY] is True
        key_id = private[Attribute.ID]
        assert len(key_id) >= 8
        assert public[Attribute.ID] == key_id

        secret = (
            Attribute.VALUE if algorithm is KeyAlgorithm.EC_P256 else Attribute.PRIVATE_EXPONENT
        )
        with pytest.raises(AttributeSensitive):
            private[secret]
        if algorithm is KeyAlgorithm.EC_P256:
            assert private[Attribute.KEY_TYPE] == KeyType.EC
            assert public[Attribute.EC_PARAMS] == P256_EC_PARAMS
        else:
            assert private[Attribute.KEY_TYPE] == KeyType.RSA
            assert public[Attribute.MODULUS_BITS] == 3072


def test_pkcs11_tool_sees_a_sensitive_never_extractable_key(
    keystore: Pkcs11Keystore, softhsm_token: KeystoreConfig
) -> None:
    require(keystore, KeyAlgorithm.EC_P256)
    label = unique_label("tool")
    keystore.generate_key(label, KeyAlgorithm.EC_P256)

    objects = [o for o in pkcs11_tool_objects(softhsm_token) if o.get("label") == label]
    private = [o for o in objects if o["kind"].startswith("Private Key Object")]
    public = [o for o in objects if o["kind"].startswith("Public Key Object")]
    assert len(private) == 1
    assert len(public) == 1
    access = {flag.strip() for flag in private[0]["Access"].split(",")}
    assert {"sensitive", "always sensitive", "never extractable", "local"} <= access
    assert private[0]["Usage"] == "sign"
    assert private[0]["ID"] == public[0]["ID"]


def test_duplicate_private_keys_are_refused(
    keystore: Pkcs11Keystore, softhsm_token: KeystoreConfig
) -> None:
    require(keystore, KeyAlgorithm.EC_P256)
    label = unique_label("dup")
    keystore.generate_key(label, KeyAlgorithm.EC_P256)
    # A second pair under the same label, made behind the keystore's back.
    with inspection_session(softhsm_token, rw=True) as session:
        session.generate_keypair(
            KeyType.EC,
            label=label,
            id=b"second",
            store=True,
            public_template={Attribute.EC_PARAMS: P256_EC_PARAMS},
        )
    with pytest.raises(DuplicateKey):
        keystore.key(label)
    with pytest.raises(DuplicateKey):
        keystore.sign_digest(label, bytes(32))


def test_mechanism_report(keystore: Pkcs11Keystore) -> None:
    # Facts about SoftHSM2 2.6: raw ECDSA and RSA PKCS#1, no CKM_ECDSA_SHA256.
    assert keystore.supports_mechanism(Mechanism.ECDSA)
    assert keystore.supports_mechanism(Mechanism.RSA_PKCS)
    assert keystore.supports(KeyAlgorithm.EC_P256)
    assert Mechanism.ECDSA in keystore.mechanisms()


def test_wrong_pin_is_a_config_error(softhsm_token: KeystoreConfig) -> None:
    # In-process: nothing else of this test process is logged in here (fixtures close).
    from dataclasses import replace

    with pytest.raises(KeystoreConfigError) as info:
        Pkcs11Keystore.open(replace(softhsm_token, pin="wrong-pin"))
    assert "wrong-pin" not in str(info.value)


def test_unknown_token_and_module_are_config_errors(softhsm_token: KeystoreConfig) -> None:
    from dataclasses import replace

    with pytest.raises(KeystoreConfigError, match="exactly one token"):
        Pkcs11Keystore.open(replace(softhsm_token, token_label="no-such-token"))
    with pytest.raises(KeystoreConfigError, match="module not found"):
        Pkcs11Keystore.open(replace(softhsm_token, module="/nonexistent/libp11.so"))


def test_closed_keystore_is_unavailable(softhsm_token: KeystoreConfig) -> None:
    store = Pkcs11Keystore.open(softhsm_token)
    store.close()
    with pytest.raises(HsmUnavailable):
        store.sign_digest("anything", bytes(32))


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (pkcs11.exceptions.PinIncorrect(), KeystoreConfigError),
        (pkcs11.exceptions.PinLocked(), KeystoreConfigError),
        (pkcs11.exceptions.NoSuchToken(), KeystoreConfigError),
        (pkcs11.exceptions.MechanismInvalid(), MechanismNotSupported),
        (pkcs11.exceptions.SessionClosed(), HsmUnavailable),
        (pkcs11.exceptions.SessionHandleInvalid(), HsmUnavailable),
        (pkcs11.exceptions.DeviceRemoved(), HsmUnavailable),
        (pkcs11.exceptions.DeviceError(), HsmUnavailable),
        (pkcs11.exceptions.TokenNotPresent(), HsmUnavailable),
        (pkcs11.exceptions.GeneralError(), HsmUnavailable),
        (pkcs11.exceptions.NoSuchKey(), KeyNotFound),
        (pkcs11.exceptions.MultipleObjectsReturned(), DuplicateKey),
        (pkcs11.exceptions.PKCS11Error("OS exception while loading x"), KeystoreConfigError),
        (pkcs11.exceptions.WrappedKeyInvalid(), HsmError),
    ],
)
def test_every_pkcs11_error_maps_into_the_hsm_tree(
    raised: Exception, expected: type[HsmError]
) -> None:
    with pytest.raises(expected) as info, _token_errors("op"):
        raise raised
    assert info.value.__cause__ is raised
