"""Rebuilding a sealed proof the way an attacker (or an older sealgate) would: other signed
attributes signed by some key, a flipped ECDSA S, added unsigned attributes, other
certificates. Test-only; the DER is assembled from the original's parts."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from asn1crypto import cms
from cryptography.hazmat.primitives.asymmetric import utils

from sealgate.crypto import _der
from sealgate.crypto.algorithms import P256_ORDER
from sealgate.crypto.attributes import (
    OID_SIGNING_CERTIFICATE_V2,
    ProofFormat,
    private_oids,
)

OID_SIGNING_TIME = "1.2.840.113549.1.9.5"

Attribute = tuple[str, bytes]  # (dotted OID, DER of its one value)


class Signer(Protocol):
    """Signs a SHA-256 digest as the HSM does (a SoftSigner, or a key in the token)."""

    def sign(self, digest: bytes) -> bytes: ...


def attribute_der(dotted: str, value: bytes) -> bytes:
    return _der.tlv(_der.SEQUENCE, _der.oid(dotted) + _der.tlv(_der.SET, value))


def signed_attributes(proof: bytes) -> list[Attribute]:
    signer = cms.ContentInfo.load(proof)["content"]["signer_infos"][0]
    return [(a["type"].dotted, a["values"][0].dump()) for a in signer["signed_attrs"]]


def reseal(
    proof: bytes,
    signer: Signer | None = None,
    *,
    attributes: Callable[[list[Attribute]], list[Attribute]] | None = None,
    unsigned: Sequence[Attribute] = (),
    flip_s: bool = False,
    certificates: Sequence[bytes] | None = None,
) -> bytes:
    """``proof`` rebuilt: signed attributes changed by ``attributes`` and signed anew by
    ``signer`` (else the original signature kept), S flipped to n - S, ``unsigned``
    attributes added, ``certificates`` instead of the original's."""
    info = cms.ContentInfo.load(proof)
    signed_data = info["content"]
    signer_info = signed_data["signer_infos"][0]
    attrs = signed_attributes(proof)
    if attributes is not None:
        attrs = attributes(attrs)
    attrs_body = b"".join(sorted(attribute_der(o, v) for o, v in attrs))
    signature = signer_info["signature"].native
    if signer is not None:
        signature = signer.sign(hashlib.sha256(_der.tlv(_der.SET, attrs_body)).digest())
    if flip_s:
        r, s = utils.decode_dss_signature(signature)
        signature = utils.encode_dss_signature(r, P256_ORDER - s)
    unsigned_der = b""
    if unsigned:
        unsigned_der = _der.tlv(0xA1, b"".join(sorted(attribute_der(o, v) for o, v in unsigned)))
    signer_info_der = _der.tlv(
        _der.SEQUENCE,
        signer_info["version"].dump()
        + signer_info["sid"].dump()
        + signer_info["digest_algorithm"].dump()
        + _der.tlv(0xA0, attrs_body)
        + signer_info["signature_algorithm"].dump()
        + _der.tlv(_der.OCTET_STRING, signature)
        + unsigned_der,
    )
    certs = (
        signed_data["certificates"].dump()
        if certificates is None
        else _der.tlv(0xA0, b"".join(certificates))
    )
    signed_data_der = _der.tlv(
        _der.SEQUENCE,
        signed_data["version"].dump()
        + signed_data["digest_algorithms"].dump()
        + signed_data["encap_content_info"].dump()
        + certs
        + _der.tlv(_der.SET, signer_info_der),
    )
    return _der.tlv(
        _der.SEQUENCE, info["content_type"].dump() + _der.tlv(0xA0, signed_data_der)
    )


def legacy(attrs: list[Attribute]) -> list[Attribute]:
    """A current proof's attributes as the first sealgate wrote them: UUID arc, no
    signing-certificate-v2."""
    current = dict(
        zip(private_oids(ProofFormat.CADES), private_oids(ProofFormat.LEGACY), strict=True)
    )
    return [(current.get(o, o), v) for o, v in attrs if o != OID_SIGNING_CERTIFICATE_V2]


def signed_at(when: datetime) -> Callable[[list[Attribute]], list[Attribute]]:
    """Attributes with another signing time (the forger's choice)."""

    def change(attrs: list[Attribute]) -> list[Attribute]:
        return [(o, _der.time(when) if o == OID_SIGNING_TIME else v) for o, v in attrs]

    return change
