"""The key-holding layer: keys that sign, wherever they live.

A :class:`~sealgate.hsm.keystore.Keystore` holds named signing keys and signs SHA-256 digests
with them. Two implementations:

- :class:`sealgate.hsm.pkcs11.Pkcs11Keystore`: a PKCS#11 token (SoftHSM2 in tests, a real HSM in
  production). Keys are generated inside the token, sensitive and non-extractable.
- :class:`sealgate.hsm.soft.SoftKeystore`: private keys in files, **for development only**.

Because python-pkcs11 with SoftHSM2 aborts when two threads sign at once, and a signing
thread beside a busy event loop starves on the GIL, the gateway never signs in its own
process: :class:`sealgate.hsm.service.SigningService` runs one keystore in a child process that
signs batches of digests, one at a time, on one session.

Exceptions (all from :mod:`sealgate.hsm.errors`)::

    HsmError
    ├── KeystoreConfigError      the token, module or PIN cannot be used as configured
    ├── KeyNotFound              no key has that label
    ├── KeyExists                a key with that label is already there
    ├── DuplicateKey             more than one key has that label
    ├── MechanismNotSupported    the token cannot do what was asked
    └── HsmUnavailable           the token or session failed; retry later
"""

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

__all__ = [
    "DuplicateKey",
    "HsmError",
    "HsmUnavailable",
    "KeyAlgorithm",
    "KeyExists",
    "KeyInfo",
    "KeyNotFound",
    "Keystore",
    "KeystoreConfig",
    "KeystoreConfigError",
    "MechanismNotSupported",
]
