"""Private keys in files: FOR DEVELOPMENT ONLY."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from sealgate.hsm.errors import HsmUnavailable, KeyExists, KeyNotFound, MechanismNotSupported
from sealgate.hsm.keystore import KeyAlgorithm, KeyInfo, Keystore

logger = logging.getLogger(__name__)

DIGEST_LEN = 32
_SUFFIX = ".key.pem"

_PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class SoftKeystore(Keystore):
    """**FOR DEVELOPMENT ONLY — NEVER IN PRODUCTION.** Private keys are plain files.

    Each key is an unencrypted PKCS#8 PEM file (mode 0600, directory 0700) named after
    the hex of its label, so any label works. Anyone who can read the directory can
    forge seals. Same semantics as :class:`sealgate.hsm.pkcs11.Pkcs11Keystore`: exactly one key per
    label, :class:`KeyExists` / :class:`KeyNotFound`, DER ECDSA and PKCS#1 v1.5 signatures.
    Opening one logs a WARNING.
    """

    backend = "soft"

    def __init__(self, directory: Path) -> None:
        self._directory = Path(directory)
        self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._keys: dict[str, tuple[_PrivateKey, KeyAlgorithm]] = {}
        logger.warning("soft keystore: private keys are in files, for development only")

    def generate_key(self, label: str, algorithm: KeyAlgorithm) -> KeyInfo:
        private: _PrivateKey
        if algorithm is KeyAlgorithm.EC_P256:
            private = ec.generate_private_key(ec.SECP256R1())
        else:
            private = rsa.generate_private_key(public_exponent=65537, key_size=3072)
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:
            # O_EXCL: refuse an existing label atomically, as a token would.
            fd = os.open(self._path(label), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise KeyExists(f"a key labelled {label!r} already exists") from None
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        self._keys[label] = (private, algorithm)
        return self._info(label, private, algorithm)

    def destroy_key(self, label: str) -> None:
        self._keys.pop(label, None)
        self._path(label).unlink(missing_ok=True)

    def key(self, label: str) -> KeyInfo:
        private, algorithm = self._load(label)
        return self._info(label, private, algorithm)

    def keys(self) -> list[KeyInfo]:
        labels = sorted(
            bytes.fromhex(p.name.removesuffix(_SUFFIX)).decode()
            for p in self._directory.glob(f"*{_SUFFIX}")
        )
        return [self.key(label) for label in labels]

    def sign_digest(self, label: str, digest: bytes) -> bytes:
        if len(digest) != DIGEST_LEN:
            raise ValueError(f"expected a {DIGEST_LEN}-byte SHA-256 digest, got {len(digest)}")
        private, _ = self._load(label)
        prehashed = Prehashed(hashes.SHA256())
        if isinstance(private, ec.EllipticCurvePrivateKey):
            return private.sign(digest, ec.ECDSA(prehashed))
        return private.sign(digest, padding.PKCS1v15(), prehashed)

    def check(self) -> None:
        if not self._directory.is_dir():
            raise HsmUnavailable(f"soft keystore directory {self._directory} is gone")

    def close(self) -> None:
        self._keys.clear()

    def _path(self, label: str) -> Path:
        return self._directory / f"{label.encode().hex()}{_SUFFIX}"

    def _load(self, label: str) -> tuple[_PrivateKey, KeyAlgorithm]:
        cached = self._keys.get(label)
        if cached is not None:
            return cached
        try:
            pem = self._path(label).read_bytes()
        except FileNotFoundError:
            raise KeyNotFound(f"no key labelled {label!r}") from None
        private = serialization.load_pem_private_key(pem, password=None)
        if isinstance(private, ec.EllipticCurvePrivateKey) and isinstance(
            private.curve, ec.SECP256R1
        ):
            loaded: tuple[_PrivateKey, KeyAlgorithm] = (private, KeyAlgorithm.EC_P256)
        elif isinstance(private, rsa.RSAPrivateKey) and private.key_size == 3072:
            loaded = (private, KeyAlgorithm.RSA_3072)
        else:
            raise MechanismNotSupported(f"key {label!r} is neither EC P-256 nor RSA-3072")
        self._keys[label] = loaded
        return loaded

    @staticmethod
    def _info(label: str, private: _PrivateKey, algorithm: KeyAlgorithm) -> KeyInfo:
        spki = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return KeyInfo(label=label, algorithm=algorithm, public_key_der=spki)
