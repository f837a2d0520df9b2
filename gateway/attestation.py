"""The gateway's own attestation keys: what signs QR payloads, status lists and consents.

Neither is signed by a seal key. A seal is an office's (宁波 第十五条: used only within
the rights granted), and a seal may be RSA-3072, whose 384-byte signature alone would
crowd a phone's QR code; a QR payload is signed again every minute or two for whoever
shows it, and says what the registry knows now, not what the office sealed then. So the
gateway signs them with keys of its own, EC P-256 in the token, each named in the trust
list with the one use it may sign for (:class:`sealgate.crypto.key_trust.Use`), so a
status-list key cannot vouch for a QR payload nor the other way round.

``sealgate init`` makes them; their public halves are in the home's ``gateway-keys.json``
(the trust document's ``keys``, with each key's label for the gateway's own use).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from sealgate.crypto.cose import PendingSign1
from sealgate.crypto.key_trust import KeyTrust, TrustedKey, Use
from sealgate.errors import ConfigError
from sealgate.hsm.errors import KeyNotFound
from sealgate.hsm.keystore import KeyAlgorithm, Keystore
from sealgate.hsm.service import SigningService

log = logging.getLogger(__name__)

QR_KEY_LABEL = "sealgate-qr-1"
STATUS_LIST_KEY_LABEL = "sealgate-status-list-1"
CONSENT_KEY_LABEL = "sealgate-consent-1"
GATEWAY_KEYS = {
    QR_KEY_LABEL: Use.QR,
    STATUS_LIST_KEY_LABEL: Use.STATUS_LIST,
    CONSENT_KEY_LABEL: Use.CONSENT,
}
KEYS_FILE = "gateway-keys.json"


@dataclass(frozen=True, slots=True)
class GatewayKeys:
    """The labels and key ids of the gateway's keys, by use, and the trust they make."""

    labels: dict[str, str]  # use → key label in the token
    kids: dict[str, bytes]  # use → key id
    trust: KeyTrust

    def signer(self, use: str) -> tuple[str, bytes]:
        try:
            return self.labels[use], self.kids[use]
        except KeyError:
            # 503 to the client: the operator runs `sealgate gateway-keys`.
            raise KeyNotFound(f"this home has no gateway key for {use}") from None

    @classmethod
    def load(cls, home: Path) -> GatewayKeys:
        """The home's gateway keys; none (what needs them answers 503) in a home made
        before they were, until `sealgate gateway-keys` makes them."""
        path = home / KEYS_FILE
        try:
            document = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            log.warning("%s is missing: run `sealgate gateway-keys` for QR codes", path)
            return cls({}, {}, KeyTrust([]))
        except ValueError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        trust = KeyTrust.from_document(document)
        labels: dict[str, str] = {}
        kids: dict[str, bytes] = {}
        for entry, key in zip(document["keys"], trust.keys(), strict=True):
            for use in key.uses:
                labels[use] = str(entry["label"])
                kids[use] = key.kid
        return cls(labels, kids, trust)


def create_gateway_keys(keystore: Keystore, home: Path) -> GatewayKeys:
    """Generate the gateway's keys the token lacks and write ``gateway-keys.json``."""
    entries = []
    for label, use in GATEWAY_KEYS.items():
        try:
            info = keystore.key(label)
        except KeyNotFound:
            info = keystore.generate_key(label, KeyAlgorithm.EC_P256)
        entry = TrustedKey.from_der(info.public_key_der, [use]).entry()
        entries.append({**entry, "label": label})
    (home / KEYS_FILE).write_text(json.dumps({"keys": entries}, indent=1) + "\n", "utf-8")
    return GatewayKeys.load(home)


async def sign_cose(signing: SigningService, label: str, pending: PendingSign1) -> bytes:
    """The finished COSE_Sign1, signed in the HSM by the key ``label``."""
    return pending.finish(await signing.sign_digest(label, pending.digest))
