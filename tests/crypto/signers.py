"""Software keys standing in for the HSM: test signers only, never production."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from sealgate.crypto import (
    Endorsement,
    ProofSealer,
    canonical_json,
    prepare_root_certificate,
    prepare_seal_certificate,
)

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

UNIT_NAME = "宁波市公安局"
UNIT_CODE = "11330200002985999X"
SEAL_ID = "3302000012345"
KIND_NAME = "电子证明专用章"
NOW = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
CONTENT = canonical_json(
    {"证明事项": "无犯罪记录证明", "姓名": "张三", "身份证号": "330203199001011234", "n": 1}
)
ENDORSEMENT = Endorsement("宁波银行股份有限公司", "宁波市大数据发展管理局", NOW)


class SoftSigner:
    """Signs SHA-256 digests the way the HSM does (DER ECDSA / PKCS#1 v1.5)."""

    def __init__(self, kind: str) -> None:
        self.key: PrivateKey = (
            ec.generate_private_key(ec.SECP256R1())
            if kind == "ec"
            else rsa.generate_private_key(65537, 3072)
        )

    @property
    def public_key_der(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, digest: bytes) -> bytes:
        prehashed = utils.Prehashed(hashes.SHA256())
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            return self.key.sign(digest, ec.ECDSA(prehashed))
        return self.key.sign(digest, padding.PKCS1v15(), prehashed)


@dataclass
class Pki:
    root_signer: SoftSigner
    seal_signer: SoftSigner
    root: bytes
    seal: bytes

    def sealer(self) -> ProofSealer:
        return ProofSealer(self.seal)

    def proof(
        self,
        content: bytes = CONTENT,
        *,
        code: str = "NB20260301-0001-7Q",
        signing_time: datetime = NOW,
        endorsement: Endorsement | None = ENDORSEMENT,
        sealer: ProofSealer | None = None,
    ) -> bytes:
        pending = (sealer or self.sealer()).prepare(
            content, code=code, seal_id=SEAL_ID, signing_time=signing_time, endorsement=endorsement
        )
        return pending.finish(self.seal_signer.sign(pending.digest))


def make_root(
    signer: SoftSigner,
    *,
    name: str = "宁波市无证明城市根CA",
    not_before: datetime = NOW - timedelta(days=365),
    not_after: datetime = NOW + timedelta(days=3650),
) -> bytes:
    pending = prepare_root_certificate(
        signer.public_key_der,
        common_name=name,
        organization="宁波市大数据发展管理局",
        not_before=not_before,
        not_after=not_after,
        serial=secrets.randbits(127),
    )
    return pending.finish(signer.sign(pending.digest))


def make_seal(
    root_signer: SoftSigner,
    root: bytes,
    seal_signer: SoftSigner,
    *,
    not_before: datetime = NOW - timedelta(days=30),
    not_after: datetime = NOW + timedelta(days=365),
    serial: int | None = None,
) -> bytes:
    pending = prepare_seal_certificate(
        seal_signer.public_key_der,
        issuer_certificate_der=root,
        unit_name=UNIT_NAME,
        unit_code=UNIT_CODE,
        seal_id=SEAL_ID,
        kind_name=KIND_NAME,
        not_before=not_before,
        not_after=not_after,
        serial=secrets.randbits(127) if serial is None else serial,
    )
    return pending.finish(root_signer.sign(pending.digest))


def make_pki(
    root_kind: str = "ec",
    seal_kind: str = "ec",
    *,
    validity: tuple[datetime, datetime] | None = None,
) -> Pki:
    """Root and seal; with ``validity``, both valid for exactly that span."""
    root_signer, seal_signer = SoftSigner(root_kind), SoftSigner(seal_kind)
    if validity is None:
        root = make_root(root_signer)
        return Pki(root_signer, seal_signer, root, make_seal(root_signer, root, seal_signer))
    start, end = validity
    root = make_root(root_signer, not_before=start, not_after=end)
    seal = make_seal(root_signer, root, seal_signer, not_before=start, not_after=end)
    return Pki(root_signer, seal_signer, root, seal)
