"""The development TSA's home: its own SoftHSM2 token, key and certificates, made on first start.

Layout::

    DIR/softhsm/           the TSA's SoftHSM2 token (label ``sealgate-tsa``)
    DIR/secrets/token-pin  its user PIN (0600); the SO PIN is not kept
    DIR/tsa.pem            the TSA certificate (critical EKU timeStamping alone)
    DIR/tsa-root.pem       the root that issued it: what verifiers trust for timestamps

The root key signs the TSA certificate and is destroyed at once: no one, the TSA's
operator included, can issue a second TSA certificate under that root.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from sealgate.crypto.certificates import (
    PendingCertificate,
    certificate_pem,
    prepare_root_certificate,
    prepare_tsa_certificate,
)
from sealgate.errors import ConfigError
from sealgate.hsm.keystore import KeyAlgorithm, Keystore, KeystoreConfig, open_keystore
from sealgate.hsm.softhsm import SOFTHSM2_MODULE, create_softhsm_token, follow_moved_tokens

__all__ = ["TSA_KEY_LABEL", "TsaHome", "TsaHomeError", "open_tsa_home"]

TOKEN_LABEL = "sealgate-tsa"  # noqa: S105 - a label, not a secret
TSA_KEY_LABEL = "sealgate-tsa-1"
_ROOT_KEY_LABEL = "sealgate-tsa-root-1"
_ROOT_YEARS = 20
_TSA_YEARS = 10


class TsaHomeError(ConfigError):
    """The TSA's home cannot be made or used."""


@dataclass(frozen=True, slots=True)
class TsaHome:
    directory: Path
    keystore: KeystoreConfig
    certificate_der: bytes
    root_der: bytes

    @property
    def chain_pem(self) -> str:
        """The TSA certificate, then its root (PEM)."""
        return certificate_pem(self.certificate_der) + certificate_pem(self.root_der)


def open_tsa_home(directory: Path) -> TsaHome:
    """The TSA home in ``directory``, made there first if there is none."""
    directory = directory.absolute()
    certificate, root = directory / "tsa.pem", directory / "tsa-root.pem"
    if not certificate.exists():
        if (directory / "softhsm").exists():
            raise TsaHomeError(
                f"{directory} holds a TSA token but no tsa.pem: its first start was"
                " interrupted; remove the directory to make a new TSA"
            )
        _create(directory)
    return TsaHome(directory, _keystore_config(directory), _der(certificate), _der(root))


def _keystore_config(directory: Path) -> KeystoreConfig:
    conf = directory / "softhsm" / "softhsm2.conf"
    follow_moved_tokens(conf)
    try:
        pin = (directory / "secrets" / "token-pin").read_text()
    except FileNotFoundError:
        raise TsaHomeError(f"{directory}/secrets/token-pin is missing") from None
    return KeystoreConfig(
        backend="pkcs11",
        module=SOFTHSM2_MODULE,
        token_label=TOKEN_LABEL,
        pin=pin,
        softhsm2_conf=str(conf),
    )


def _create(directory: Path) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    pin = secrets.token_hex(16)
    secrets_dir = directory / "secrets"
    secrets_dir.mkdir(mode=0o700, exist_ok=True)
    (secrets_dir / "token-pin").touch(mode=0o600)
    (secrets_dir / "token-pin").write_text(pin)
    # The SO PIN only initialises the token; no one needs it afterwards.
    create_softhsm_token(directory / "softhsm", TOKEN_LABEL, pin, secrets.token_hex(16))
    now = datetime.now(UTC).replace(microsecond=0)
    with open_keystore(_keystore_config(directory)) as keystore:
        root_key = keystore.generate_key(_ROOT_KEY_LABEL, KeyAlgorithm.EC_P256)
        try:
            root = _signed(
                keystore,
                prepare_root_certificate(
                    root_key.public_key_der,
                    common_name="sealgate development TSA root",
                    organization="sealgate development (not a city's TSA)",
                    not_before=now - timedelta(minutes=5),
                    not_after=now + timedelta(days=365 * _ROOT_YEARS),
                    serial=secrets.randbits(127),
                ),
            )
            tsa_key = keystore.generate_key(TSA_KEY_LABEL, KeyAlgorithm.EC_P256)
            tsa = _signed(
                keystore,
                prepare_tsa_certificate(
                    tsa_key.public_key_der,
                    issuer_certificate_der=root,
                    common_name="sealgate development TSA",
                    organization="sealgate development (not a city's TSA)",
                    not_before=now - timedelta(minutes=5),
                    not_after=now + timedelta(days=365 * _TSA_YEARS),
                    serial=secrets.randbits(127),
                ),
            )
        finally:
            keystore.destroy_key(_ROOT_KEY_LABEL)
    (directory / "tsa-root.pem").write_text(certificate_pem(root))
    staged = directory / "tsa.pem.new"  # tsa.pem last: its presence says the home is whole
    staged.write_text(certificate_pem(tsa))
    staged.replace(directory / "tsa.pem")


def _signed(keystore: Keystore, pending: PendingCertificate) -> bytes:
    return pending.finish(keystore.sign_digest(_ROOT_KEY_LABEL, pending.digest))


def _der(path: Path) -> bytes:
    try:
        certificate = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise TsaHomeError(f"{path}: not a PEM certificate ({exc})") from None
    return certificate.public_bytes(serialization.Encoding.DER)
