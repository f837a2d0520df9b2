"""The one interface of the key-holding layer: a store of labelled keys that sign digests."""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self


class KeyAlgorithm(enum.StrEnum):
    EC_P256 = "ec-p256"
    RSA_3072 = "rsa-3072"


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """Public facts about a key: never the private part."""

    label: str
    algorithm: KeyAlgorithm
    public_key_der: bytes  # SubjectPublicKeyInfo, DER


@dataclass(frozen=True, slots=True)
class KeystoreConfig:
    """Where the keys live; picklable, so a signing process can open its own keystore.

    ``backend`` is ``"pkcs11"`` or ``"soft"``. For PKCS#11, ``module`` is the library
    path, ``token_label`` names the token and ``pin`` is the user PIN; ``softhsm2_conf``
    (SoftHSM2 only) is exported as ``SOFTHSM2_CONF`` before the library loads. For the
    soft backend, ``directory`` holds the key files.
    """

    backend: str
    module: str = ""
    token_label: str = ""
    pin: str = field(default="", repr=False)
    softhsm2_conf: str = ""
    directory: Path | None = None


class Keystore(ABC):
    """Labelled signing keys. Exactly one key per label, or an error.

    Signatures are over a SHA-256 digest computed by the caller, and come back in the
    encoding X.509 and CMS use: DER ``ECDSA-Sig-Value`` for EC, PKCS#1 v1.5 for RSA.
    Implementations are not thread-safe; use one per thread (see :mod:`hsm.service`).
    """

    backend: str

    @abstractmethod
    def generate_key(self, label: str, algorithm: KeyAlgorithm) -> KeyInfo:
        """Create a new key pair inside the store. Raises :class:`KeyExists`."""

    @abstractmethod
    def key(self, label: str) -> KeyInfo:
        """The key with this label. Raises :class:`KeyNotFound` or :class:`DuplicateKey`."""

    @abstractmethod
    def keys(self) -> list[KeyInfo]:
        """Every key in the store, sorted by label."""

    @abstractmethod
    def sign_digest(self, label: str, digest: bytes) -> bytes:
        """Sign a 32-byte SHA-256 digest with the key of this label."""

    def check(self) -> None:  # noqa: B027 - optional hook: most stores have nothing to probe
        """Raise :class:`HsmUnavailable` if the store cannot sign right now (readiness)."""

    @abstractmethod
    def close(self) -> None:
        """Release sessions and handles."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_keystore(config: KeystoreConfig) -> Keystore:
    """Open the keystore that ``config`` describes, in this process."""
    if config.backend == "pkcs11":
        from hsm.pkcs11 import Pkcs11Keystore

        return Pkcs11Keystore.open(config)
    if config.backend == "soft":
        from hsm.soft import SoftKeystore

        if config.directory is None:
            from hsm.errors import KeystoreConfigError

            raise KeystoreConfigError("the soft keystore needs a directory")
        return SoftKeystore(config.directory)
    from hsm.errors import KeystoreConfigError

    raise KeystoreConfigError(f"unknown keystore backend {config.backend!r}")
