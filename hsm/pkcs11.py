"""Keys held in a PKCS#11 token, through python-pkcs11.

One :class:`Pkcs11Keystore` owns ONE read-write session, logged in ONCE with the user
PIN, for its whole life. It is not thread-safe and must not be shared across threads or
carried across ``fork()``: python-pkcs11 0.10.1 with SoftHSM2 aborts ("double free") when
two threads sign at once, even on separate sessions. Serve concurrent callers through
:class:`sealgate.hsm.service.ProcessSigningService` instead.

Every ``pkcs11`` exception becomes an :mod:`sealgate.hsm.errors` exception in exactly one place,
:func:`_token_errors`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pkcs11
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

from sealgate.hsm.errors import (
    DuplicateKey,
    HsmError,
    HsmUnavailable,
    KeyExists,
    KeyNotFound,
    KeystoreConfigError,
    MechanismNotSupported,
)
from sealgate.hsm.keystore import KeyAlgorithm, KeyInfo, Keystore, KeystoreConfig

if TYPE_CHECKING:
    from pkcs11._pkcs11 import lib as _lib

logger = logging.getLogger(__name__)

#: DER ``ECParameters`` naming P-256 (secp256r1, 1.2.840.10045.3.1.7).
P256_EC_PARAMS = encode_named_curve_parameters("secp256r1")
RSA_BITS = 3072
#: DER ``DigestInfo`` prefix for SHA-256 (RFC 8017 §9.2 note 1): CKM_RSA_PKCS signs
#: whatever it is given, so the caller wraps the digest itself.
SHA256_DIGEST_INFO_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")
DIGEST_LEN = 32

#: Mechanisms each algorithm needs: key-pair generation, then signing.
REQUIRED_MECHANISMS: dict[KeyAlgorithm, tuple[Mechanism, Mechanism]] = {
    KeyAlgorithm.EC_P256: (Mechanism.EC_KEY_PAIR_GEN, Mechanism.ECDSA),
    KeyAlgorithm.RSA_3072: (Mechanism.RSA_PKCS_KEY_PAIR_GEN, Mechanism.RSA_PKCS),
}

# The exception table of _token_errors(), most specific first.
_CONFIG_ERRORS: tuple[type[p11.PKCS11Error], ...] = (
    p11.PinIncorrect,
    p11.PinInvalid,
    p11.PinLenRange,
    p11.PinExpired,
    p11.PinLocked,
    p11.UserPinNotInitialized,
    p11.UserAlreadyLoggedIn,
    p11.AnotherUserAlreadyLoggedIn,
    p11.UserTooManyTypes,
    p11.NoSuchToken,
    p11.MultipleTokensReturned,
    p11.TokenNotRecognised,
    p11.TokenWriteProtected,
    p11.SessionReadOnly,
    p11.SlotIDInvalid,
)
_MECHANISM_ERRORS: tuple[type[p11.PKCS11Error], ...] = (
    p11.MechanismInvalid,
    p11.MechanismParamInvalid,
    p11.FunctionNotSupported,
    p11.KeyTypeInconsistent,
    p11.KeySizeRange,
    p11.DomainParamsInvalid,
)
_UNAVAILABLE_ERRORS: tuple[type[p11.PKCS11Error], ...] = (
    p11.SessionClosed,
    p11.SessionHandleInvalid,
    p11.SessionCount,
    p11.DeviceRemoved,
    p11.DeviceError,
    p11.DeviceMemory,
    p11.HostMemory,
    p11.TokenNotPresent,
    p11.GeneralError,
    p11.FunctionFailed,
    p11.FunctionCancelled,
    p11.OperationActive,
    p11.UserNotLoggedIn,
    p11.ObjectHandleInvalid,
    p11.KeyHandleInvalid,
)


@contextlib.contextmanager
def _token_errors(what: str) -> Iterator[None]:
    """The one place where PKCS#11 return codes become :mod:`sealgate.hsm.errors` exceptions.

    Messages name the operation and the CKR_ class, never a PIN.
    """
    try:
        yield
    except p11.NoSuchKey as exc:
        raise KeyNotFound(f"{what}: no such key") from exc
    except p11.MultipleObjectsReturned as exc:
        raise DuplicateKey(f"{what}: more than one object matches") from exc
    except _CONFIG_ERRORS as exc:
        raise KeystoreConfigError(f"{what}: {type(exc).__name__}") from exc
    except _MECHANISM_ERRORS as exc:
        raise MechanismNotSupported(f"{what}: {type(exc).__name__}") from exc
    except _UNAVAILABLE_ERRORS as exc:
        raise HsmUnavailable(f"{what}: {type(exc).__name__}") from exc
    except p11.PKCS11Error as exc:
        if type(exc) is p11.PKCS11Error:
            # python-pkcs11 raises the bare base class only when dlopen() of the module
            # fails: a wrong path or architecture.
            raise KeystoreConfigError(f"{what}: {exc}") from exc
        raise HsmError(f"{what}: {type(exc).__name__}") from exc


@dataclass(slots=True)
class _ModuleState:
    softhsm2_conf: str
    users: int = 0  # open Pkcs11Keystores on this module in this process


# python-pkcs11 keeps one initialised library per module path and process, and SoftHSM2
# reads SOFTHSM2_CONF only in C_Initialize. To open a token of another SoftHSM2
# configuration (a test run, a second home) the library must be re-initialised, which
# closes every session of the module: allowed only while no keystore uses it.
_modules: dict[str, _ModuleState] = {}


def _initialise(module: str, softhsm2_conf: str) -> _lib:
    state = _modules.get(module)
    if state is None:
        if softhsm2_conf:
            os.environ["SOFTHSM2_CONF"] = softhsm2_conf
        lib = pkcs11.lib(module)
        _modules[module] = _ModuleState(os.environ.get("SOFTHSM2_CONF", ""))
        return lib
    lib = pkcs11.lib(module)
    if softhsm2_conf and softhsm2_conf != state.softhsm2_conf:
        if state.users:
            raise KeystoreConfigError(
                f"this process already has a keystore open on {module} with SoftHSM2 "
                f"configuration {state.softhsm2_conf!r}"
            )
        os.environ["SOFTHSM2_CONF"] = softhsm2_conf
        lib.reinitialize()
        state.softhsm2_conf = softhsm2_conf
    return lib


@dataclass(frozen=True, slots=True)
class _SigningKey:
    handle: pkcs11.SignMixin
    algorithm: KeyAlgorithm


class Pkcs11Keystore(Keystore):
    """Keys generated inside a PKCS#11 token: sensitive, never extractable.

    Open with :meth:`open`; use as a context manager so the session is closed (and the
    user logged out) on exit.
    """

    backend = "pkcs11"

    def __init__(self, token: pkcs11.Token, session: pkcs11.Session) -> None:
        self._token = token
        self._session: pkcs11.Session | None = session
        # Private key handles, looked up once per label: C_FindObjects is slower than
        # C_Sign on many tokens.
        self._signing_keys: dict[str, _SigningKey] = {}
        self._mechanisms: frozenset[Mechanism] | None = None
        self._module = ""

    @classmethod
    def open(cls, config: KeystoreConfig) -> Pkcs11Keystore:
        """Load the module, find the token by label and log in once with the user PIN."""
        if not config.module or not os.path.exists(config.module):
            raise KeystoreConfigError(f"PKCS#11 module not found: {config.module!r}")
        if not config.token_label:
            raise KeystoreConfigError("no token label configured")
        with _token_errors("load PKCS#11 module"):
            lib = _initialise(config.module, config.softhsm2_conf)
        with _token_errors(f"find token {config.token_label!r}"):
            tokens = list(lib.get_tokens(token_label=config.token_label))
        if len(tokens) != 1:
            raise KeystoreConfigError(
                f"expected exactly one token labelled {config.token_label!r}, found {len(tokens)}"
            )
        (token,) = tokens
        # Log in once, for the life of this object. (If C_Login fails, python-pkcs11 leaves
        # the fresh session open; it holds nothing and dies with the process.)
        with _token_errors(f"log in to token {config.token_label!r}"):
            try:
                session = token.open(rw=True, user_pin=config.pin)
            except p11.UserAlreadyLoggedIn:
                # PKCS#11 logs in an application, not a session: another keystore of this
                # process is logged in to the token (a home whose root key shares the
                # gateway's token), and a new session shares its login.
                session = token.open(rw=True)
        _modules[config.module].users += 1
        store = cls(token, session)
        store._module = config.module
        return store

    # -- mechanisms -----------------------------------------------------------------

    def mechanisms(self) -> frozenset[Mechanism]:
        """The mechanisms the token's slot offers (C_GetMechanismList), cached."""
        if self._mechanisms is None:
            with _token_errors("list mechanisms"):
                self._mechanisms = frozenset(self._token.slot.get_mechanisms())
        return self._mechanisms

    def supports_mechanism(self, mechanism: Mechanism) -> bool:
        """Whether the token offers ``mechanism``."""
        return mechanism in self.mechanisms()

    def supports(self, algorithm: KeyAlgorithm) -> bool:
        """Whether the token can both generate and sign with ``algorithm``."""
        return all(self.supports_mechanism(m) for m in REQUIRED_MECHANISMS[algorithm])

    # -- Keystore -------------------------------------------------------------------

    def generate_key(self, label: str, algorithm: KeyAlgorithm) -> KeyInfo:
        session = self._open_session()
        gen_mechanism, _ = REQUIRED_MECHANISMS[algorithm]
        if not self.supports_mechanism(gen_mechanism):
            raise MechanismNotSupported(f"token does not offer {gen_mechanism.name}")
        with _token_errors(f"generate key {label!r}"):
            for object_class in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY):
                # list(): a half-read C_FindObjects search would hold the session's
                # operation lock.
                if list(
                    session.get_objects({Attribute.CLASS: object_class, Attribute.LABEL: label})
                ):
                    raise KeyExists(f"a key labelled {label!r} already exists")
            # CKA_ID links the two halves, as PKCS#11 §4.8 and certificate tooling expect.
            key_id = secrets.token_bytes(16)
            public_template: dict[Attribute, Any] = {
                Attribute.TOKEN: True,
                Attribute.PRIVATE: False,
                Attribute.VERIFY: True,
                Attribute.ENCRYPT: False,
                Attribute.WRAP: False,
            }
            private_template: dict[Attribute, Any] = {
                Attribute.TOKEN: True,
                Attribute.PRIVATE: True,
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
                Attribute.SIGN: True,
                Attribute.DECRYPT: False,
                Attribute.UNWRAP: False,
                Attribute.DERIVE: False,
            }
            if algorithm is KeyAlgorithm.EC_P256:
                public_template[Attribute.EC_PARAMS] = P256_EC_PARAMS
                session.generate_keypair(
                    KeyType.EC,
                    id=key_id,
                    label=label,
                    store=True,
                    capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
                    mechanism=Mechanism.EC_KEY_PAIR_GEN,
                    public_template=public_template,
                    private_template=private_template,
                )
            else:
                session.generate_keypair(
                    KeyType.RSA,
                    RSA_BITS,
                    id=key_id,
                    label=label,
                    store=True,
                    capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
                    mechanism=Mechanism.RSA_PKCS_KEY_PAIR_GEN,
                    public_template=public_template,
                    private_template=private_template,
                )
        return self.key(label)

    def destroy_key(self, label: str) -> None:
        session = self._open_session()
        self._signing_keys.pop(label, None)
        with _token_errors(f"destroy key {label!r}"):
            for object_class in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY):
                # list(): destroying while a C_FindObjects search is open is not allowed.
                for obj in list(
                    session.get_objects({Attribute.CLASS: object_class, Attribute.LABEL: label})
                ):
                    obj.destroy()

    def key(self, label: str) -> KeyInfo:
        session = self._open_session()
        with _token_errors(f"read key {label!r}"):
            private = self._find_private_key(label)
            algorithm = self._algorithm_of(private, label)
            public: Any = session.get_key(
                object_class=ObjectClass.PUBLIC_KEY, label=label, id=private[Attribute.ID]
            )
            if algorithm is KeyAlgorithm.EC_P256:
                spki = encode_ec_public_key(public)
            else:
                spki = (
                    rsa.RSAPublicNumbers(
                        int.from_bytes(public[Attribute.PUBLIC_EXPONENT], "big"),
                        int.from_bytes(public[Attribute.MODULUS], "big"),
                    )
                    .public_key()
                    .public_bytes(
                        serialization.Encoding.DER,
                        serialization.PublicFormat.SubjectPublicKeyInfo,
                    )
                )
        return KeyInfo(label=label, algorithm=algorithm, public_key_der=spki)

    def keys(self) -> list[KeyInfo]:
        session = self._open_session()
        with _token_errors("list keys"):
            labels = {
                obj[Attribute.LABEL]
                for obj in session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})
            }
        return [self.key(label) for label in sorted(labels)]

    def sign_digest(self, label: str, digest: bytes) -> bytes:
        if len(digest) != DIGEST_LEN:
            raise ValueError(f"expected a {DIGEST_LEN}-byte SHA-256 digest, got {len(digest)}")
        signing_key = self._signing_keys.get(label)
        if signing_key is None:
            signing_key = self._signing_key(label)
        try:
            with _token_errors(f"sign with {label!r}"):
                if signing_key.algorithm is KeyAlgorithm.EC_P256:
                    # CKM_ECDSA over the digest: SoftHSM2 lacks CKM_ECDSA_SHA256, and the
                    # caller has hashed already. The token answers r || s.
                    raw = signing_key.handle.sign(
                        digest, mechanism=Mechanism.ECDSA, buffer_size=128
                    )
                    half = len(raw) // 2
                    return encode_dss_signature(
                        int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
                    )
                return signing_key.handle.sign(
                    SHA256_DIGEST_INFO_PREFIX + digest,
                    mechanism=Mechanism.RSA_PKCS,
                    buffer_size=1024,
                )
        except HsmError:
            # The handle may be the stale part (key deleted, session reset): look it up
            # afresh next time.
            self._signing_keys.pop(label, None)
            raise

    def check(self) -> None:
        session = self._open_session()
        with _token_errors("probe token"):
            # A cheap round trip through the session: fails if the session, slot or
            # device is gone.
            session.generate_random(64)

    def close(self) -> None:
        session, self._session = self._session, None
        self._signing_keys.clear()
        if session is not None:
            if self._module in _modules:
                _modules[self._module].users -= 1
            with _token_errors("close session"):
                session.close()

    # -- helpers --------------------------------------------------------------------

    def _open_session(self) -> pkcs11.Session:
        if self._session is None:
            raise HsmUnavailable("keystore is closed")
        return self._session

    def _find_private_key(self, label: str) -> Any:
        """Exactly one private key with this label, or NoSuchKey / MultipleObjectsReturned.

        Typed Any: python-pkcs11 returns a runtime class mixing PrivateKey and SignMixin.
        """
        session = self._open_session()
        return session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)

    def _signing_key(self, label: str) -> _SigningKey:
        with _token_errors(f"find key {label!r}"):
            private = self._find_private_key(label)
            signing_key = _SigningKey(private, self._algorithm_of(private, label))
        self._signing_keys[label] = signing_key
        return signing_key

    @staticmethod
    def _algorithm_of(private: Any, label: str) -> KeyAlgorithm:
        key_type = private[Attribute.KEY_TYPE]
        if key_type == KeyType.EC and private[Attribute.EC_PARAMS] == P256_EC_PARAMS:
            return KeyAlgorithm.EC_P256
        if key_type == KeyType.RSA and len(private[Attribute.MODULUS]) * 8 == RSA_BITS:
            return KeyAlgorithm.RSA_3072
        raise MechanismNotSupported(f"key {label!r} is neither EC P-256 nor RSA-3072")
