"""Reading an RFC 3161 TimeStampToken's parts straight from its DER, for speed.

Every sealing checks one token per proof before embedding it; asn1crypto's object trees
cost about 1.3 ms a token (a sealed proof costs 0.2 ms), walking the TLVs a few tens of
µs. Only the structure is read here, strictly (DER lengths checked first, every tag
where it must be); what the parts mean is judged in :mod:`sealgate.crypto.timestamps`.

The shape read (RFC 3161 §2.4.2, RFC 5652)::

    ContentInfo { id-signedData, [0] SignedData {
      version, digestAlgorithms, encapContentInfo { id-ct-TSTInfo, [0] OCTET STRING TSTInfo },
      certificates [0]?, crls [1]?,
      signerInfos SET { SignerInfo { version, sid, digestAlgorithm, signedAttrs [0],
                                     signatureAlgorithm, signature, unsignedAttrs [1]? } } } }
    TSTInfo { version, policy, messageImprint { hashAlgorithm, hashedMessage }, serialNumber,
              genTime, accuracy?, ordering?, nonce?, tsa [0]?, extensions [1]? }
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from asn1crypto import core

from sealgate.crypto import _der
from sealgate.crypto.errors import BadTimestamp

__all__ = [
    "TimestampQuery",
    "TokenParts",
    "TstInfo",
    "ess_certificate_hash",
    "read_query",
    "read_token",
    "split_response",
]

_SEQUENCE, _SET, _OCTETS, _OID, _INTEGER = 0x30, 0x31, 0x04, 0x06, 0x02
_BOOLEAN, _GENERALIZED_TIME = 0x01, 0x18


def _oid(dotted: str) -> bytes:
    contents: bytes = core.ObjectIdentifier(dotted).contents
    return contents


OID_SIGNED_DATA = _oid("1.2.840.113549.1.7.2")
OID_TST_INFO = _oid("1.2.840.113549.1.9.16.1.4")
OID_CONTENT_TYPE = _oid("1.2.840.113549.1.9.3")
OID_MESSAGE_DIGEST = _oid("1.2.840.113549.1.9.4")
OID_SIGNING_CERTIFICATE = _oid("1.2.840.113549.1.9.16.2.12")
OID_SIGNING_CERTIFICATE_V2 = _oid("1.2.840.113549.1.9.16.2.47")
#: Hash algorithms by their OID's contents.
HASHES = {
    _oid("2.16.840.1.101.3.4.2.1"): "sha256",
    _oid("2.16.840.1.101.3.4.2.2"): "sha384",
    _oid("2.16.840.1.101.3.4.2.3"): "sha512",
    _oid("1.3.14.3.2.26"): "sha1",
}


@dataclass(frozen=True, slots=True)
class TstInfo:
    """What a TSTInfo says."""

    imprint_algorithm: str  # a name of HASHES, or "" for another
    imprint: bytes
    policy_der: bytes  # the policy OID's contents
    serial: int
    gen_time: datetime
    nonce: int | None


@dataclass(frozen=True, slots=True)
class TokenParts:
    """A token's parts, as bytes where they are signed or compared."""

    tst_der: bytes  # the TSTInfo, as the message digest covers it
    tst: TstInfo
    certificates: tuple[bytes, ...]
    sid_der: bytes  # the SignerIdentifier, tag and all
    digest_algorithm: str  # a name of HASHES, or "" for another
    signature_algorithm_der: bytes  # the AlgorithmIdentifier, tag and all
    signed_attrs_set: bytes  # signedAttrs re-tagged as the SET OF that is signed
    attributes: dict[bytes, bytes]  # attribute OID contents → its one value's DER
    signature: bytes


def _element(data: bytes, pos: int, end: int) -> tuple[int, int, int, int]:
    """The element at ``pos``: (tag, its start, its contents' start, its end). Its length
    must be DER's (definite, minimal): what is not read here is covered by the token's
    signature, its TSTInfo's digest or the certificate's hash."""
    if pos + 2 > end:
        raise BadTimestamp("token truncated")
    tag, first = data[pos], data[pos + 1]
    if tag & 0x1F == 0x1F:
        raise BadTimestamp("token: high tag number")
    body = pos + 2
    if first & 0x80:
        size = first & 0x7F
        if not 1 <= size <= 4 or body + size > end or data[body] == 0:
            raise BadTimestamp("token: length not DER")
        length = int.from_bytes(data[body : body + size], "big")
        if length < 0x80:
            raise BadTimestamp("token: length not minimal")
        body += size
    else:
        length = first
    if body + length > end:
        raise BadTimestamp("token element runs past its container")
    return tag, pos, body, body + length


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    found = []
    while start < end:
        element = _element(data, start, end)
        found.append(element)
        start = element[3]
    return found


def _expect(element: tuple[int, int, int, int], tag: int, what: str) -> tuple[int, int]:
    if element[0] != tag:
        raise BadTimestamp(f"token: {what} is not where it must be")
    return element[2], element[3]


def _value(data: bytes, element: tuple[int, int, int, int], tag: int, what: str) -> bytes:
    """The contents of ``element``, which must have ``tag``."""
    start, end = _expect(element, tag, what)
    return data[start:end]


def _only(data: bytes, start: int, end: int, tag: int, what: str) -> tuple[int, int]:
    children = _children(data, start, end)
    if len(children) != 1:
        raise BadTimestamp(f"token: {what} must hold exactly one element")
    return _expect(children[0], tag, what)


def read_token(token: bytes) -> TokenParts:
    """The parts of a DER TimeStampToken; :class:`BadTimestamp` if it is not one."""
    top = _children(token, 0, len(token))
    if len(top) != 1:
        raise BadTimestamp("token: one ContentInfo expected")
    info = _children(token, *_expect(top[0], _SEQUENCE, "ContentInfo"))
    if len(info) != 2 or _value(token, info[0], _OID, "content type") != OID_SIGNED_DATA:
        raise BadTimestamp("token is not SignedData")
    signed_data = _children(
        token, *_only(token, *_expect(info[1], 0xA0, "content"), _SEQUENCE, "SignedData")
    )
    if len(signed_data) < 4 or _value(token, signed_data[0], _INTEGER, "version") != b"\x03":
        raise BadTimestamp("token: SignedData malformed, or its version is not 3")
    digest_algorithms = _children(token, *_expect(signed_data[1], _SET, "digestAlgorithms"))
    encap = _children(token, *_expect(signed_data[2], _SEQUENCE, "encapContentInfo"))
    if len(encap) != 2 or _value(token, encap[0], _OID, "eContentType") != OID_TST_INFO:
        raise BadTimestamp("token content is not TSTInfo")
    octets = _only(token, *_expect(encap[1], 0xA0, "eContent"), _OCTETS, "eContent")
    certificates: tuple[bytes, ...] = ()
    for element in signed_data[3:-1]:
        if element[0] == 0xA0:
            certificates = tuple(
                token[c[1] : c[3]]
                for c in _children(token, element[2], element[3])
                if c[0] == _SEQUENCE
            )
        elif element[0] != 0xA1:
            raise BadTimestamp("token: unexpected SignedData field")
    signers = _children(token, *_expect(signed_data[-1], _SET, "signerInfos"))
    if len(signers) != 1:
        raise BadTimestamp("token must have exactly one signer")
    signer = _children(token, *_expect(signers[0], _SEQUENCE, "SignerInfo"))
    if len(signer) not in (6, 7):
        raise BadTimestamp("token: SignerInfo malformed")
    sid = signer[1]
    version = {_SEQUENCE: b"\x01", 0x80: b"\x03"}.get(sid[0])
    if version is None or _value(token, signer[0], _INTEGER, "version") != version:
        raise BadTimestamp("token: SignerInfo version does not fit its signer id")
    digest = _children(token, *_expect(signer[2], _SEQUENCE, "digestAlgorithm"))
    if token[signer[2][1] : signer[2][3]] not in {token[d[1] : d[3]] for d in digest_algorithms}:
        raise BadTimestamp("token: the signer's digest algorithm is not among digestAlgorithms")
    attrs_start, attrs_end = _expect(signer[3], 0xA0, "signedAttrs")
    _expect(signer[4], _SEQUENCE, "signatureAlgorithm")
    signature = _value(token, signer[5], _OCTETS, "signature")
    attributes: dict[bytes, bytes] = {}
    for attribute in _children(token, attrs_start, attrs_end):
        parts = _children(token, *_expect(attribute, _SEQUENCE, "attribute"))
        if len(parts) != 2:
            raise BadTimestamp("token: attribute malformed")
        oid = _value(token, parts[0], _OID, "attribute type")
        values = _children(token, *_expect(parts[1], _SET, "attribute values"))
        if oid in attributes or len(values) != 1:
            raise BadTimestamp("token: a signed attribute twice, or without one value")
        attributes[oid] = token[values[0][1] : values[0][3]]
    signed = _der.header(_SET, attrs_end - attrs_start) + token[attrs_start:attrs_end]
    tst_der = token[octets[0] : octets[1]]
    return TokenParts(
        tst_der=tst_der,
        tst=_read_tst_info(tst_der),
        certificates=certificates,
        sid_der=token[sid[1] : sid[3]],
        digest_algorithm=HASHES.get(_value(token, digest[0], _OID, "digest"), ""),
        signature_algorithm_der=token[signer[4][1] : signer[4][3]],
        signed_attrs_set=signed,
        attributes=attributes,
        signature=signature,
    )


def _read_tst_info(tst: bytes) -> TstInfo:
    top = _children(tst, 0, len(tst))
    if len(top) != 1:
        raise BadTimestamp("TSTInfo: one SEQUENCE expected")
    fields = _children(tst, *_expect(top[0], _SEQUENCE, "TSTInfo"))
    if len(fields) < 5 or _value(tst, fields[0], _INTEGER, "version") != b"\x01":
        raise BadTimestamp("TSTInfo version is not 1")
    imprint = _children(tst, *_expect(fields[2], _SEQUENCE, "messageImprint"))
    if len(imprint) != 2:
        raise BadTimestamp("TSTInfo: messageImprint malformed")
    algorithm = _children(tst, *_expect(imprint[0], _SEQUENCE, "imprint algorithm"))
    nonce = None
    for element in fields[5:]:
        if element[0] == _INTEGER:
            nonce = int.from_bytes(tst[element[2] : element[3]], "big", signed=True)
        elif element[0] not in (_SEQUENCE, _BOOLEAN, 0xA0, 0xA1):
            raise BadTimestamp("TSTInfo: unexpected field")
    serial = _value(tst, fields[3], _INTEGER, "serial")
    return TstInfo(
        imprint_algorithm=HASHES.get(_value(tst, algorithm[0], _OID, "imprint hash"), ""),
        imprint=_value(tst, imprint[1], _OCTETS, "hashedMessage"),
        policy_der=_value(tst, fields[1], _OID, "policy"),
        serial=int.from_bytes(serial, "big", signed=True),
        gen_time=_generalized_time(_value(tst, fields[4], _GENERALIZED_TIME, "genTime")),
        nonce=nonce,
    )


def _generalized_time(text: bytes) -> datetime:
    """RFC 3161's genTime: ``YYYYMMDDhhmmss[.s+]Z``, always UTC (fractions dropped)."""
    if len(text) < 15 or not text.endswith(b"Z") or (len(text) > 15 and text[14:15] != b"."):
        raise BadTimestamp("genTime is not a UTC GeneralizedTime")
    digits = text[:14]
    if not digits.isdigit():
        raise BadTimestamp("genTime is not a date")
    try:
        return datetime(
            int(digits[0:4]), int(digits[4:6]), int(digits[6:8]),
            int(digits[8:10]), int(digits[10:12]), int(digits[12:14]), tzinfo=UTC,
        )  # fmt: skip
    except ValueError as exc:
        raise BadTimestamp("genTime is not a date") from exc


def split_response(response: bytes) -> tuple[int, bytes | None]:
    """A TimeStampResp's PKIStatus and its token's DER (None when it has none)."""
    top = _children(response, 0, len(response))
    if len(top) != 1:
        raise BadTimestamp("one TimeStampResp expected")
    fields = _children(response, *_expect(top[0], _SEQUENCE, "TimeStampResp"))
    if not 1 <= len(fields) <= 2:
        raise BadTimestamp("TimeStampResp malformed")
    status_info = _children(response, *_expect(fields[0], _SEQUENCE, "PKIStatusInfo"))
    if not status_info:
        raise BadTimestamp("PKIStatusInfo malformed")
    status = int.from_bytes(_value(response, status_info[0], _INTEGER, "status"), "big")
    token = response[fields[1][1] : fields[1][3]] if len(fields) == 2 else None
    return status, token


def ess_certificate_hash(value: bytes, *, v2: bool) -> tuple[str, bytes]:
    """The first certificate id of an ESS signing-certificate(-v2) attribute value
    (RFC 2634 / RFC 5035): its hash algorithm's name (v1: SHA-1; v2: SHA-256 unless said)
    and the certificate hash."""
    top = _children(value, 0, len(value))
    if len(top) != 1:
        raise BadTimestamp("ESS attribute malformed")
    outer = _children(value, *_expect(top[0], _SEQUENCE, "SigningCertificate"))
    if not outer:
        raise BadTimestamp("ESS attribute malformed")
    ids = _children(value, *_expect(outer[0], _SEQUENCE, "ESS certs"))
    if not ids:
        raise BadTimestamp("ESS attribute names no certificate")
    first = _children(value, *_expect(ids[0], _SEQUENCE, "ESSCertID"))
    algorithm = "sha256" if v2 else "sha1"
    if v2 and first and first[0][0] == _SEQUENCE:
        hash_oid = _children(value, first[0][2], first[0][3])
        algorithm = HASHES.get(_value(value, hash_oid[0], _OID, "ESS hash"), "")
        first = first[1:]
    if not first:
        raise BadTimestamp("ESS attribute malformed")
    return algorithm, _value(value, first[0], _OCTETS, "certHash")


@dataclass(frozen=True, slots=True)
class TimestampQuery:
    """A TimeStampReq's parts (RFC 3161 §2.4.1); ``imprint_der`` whole, to be copied."""

    version: bytes  # the INTEGER's contents
    imprint_der: bytes
    imprint_algorithm: str  # a name of HASHES, or "" for another
    imprint_parameters_ok: bool  # absent or NULL
    imprint: bytes
    policy_der: bytes | None  # the reqPolicy OID's contents
    nonce_der: bytes | None  # the nonce INTEGER, tag and all, to be copied
    cert_req: bool
    has_extensions: bool


def read_query(query: bytes) -> TimestampQuery:
    """The parts of a DER TimeStampReq; :class:`BadTimestamp` if it is not one."""
    top = _children(query, 0, len(query))
    if len(top) != 1:
        raise BadTimestamp("one TimeStampReq expected")
    fields = _children(query, *_expect(top[0], _SEQUENCE, "TimeStampReq"))
    if len(fields) < 2:
        raise BadTimestamp("TimeStampReq too short")
    imprint = _children(query, *_expect(fields[1], _SEQUENCE, "messageImprint"))
    if len(imprint) != 2:
        raise BadTimestamp("messageImprint malformed")
    algorithm = _children(query, *_expect(imprint[0], _SEQUENCE, "hashAlgorithm"))
    if not algorithm:
        raise BadTimestamp("hashAlgorithm malformed")
    parameters = algorithm[1:]
    policy = nonce = None
    cert_req = extensions = False
    rest = fields[2:]
    if rest and rest[0][0] == _OID:
        policy, rest = _value(query, rest[0], _OID, "reqPolicy"), rest[1:]
    if rest and rest[0][0] == _INTEGER:
        nonce, rest = query[rest[0][1] : rest[0][3]], rest[1:]
    if rest and rest[0][0] == _BOOLEAN:
        flag, rest = _value(query, rest[0], _BOOLEAN, "certReq"), rest[1:]
        if flag not in (b"\x00", b"\xff"):
            raise BadTimestamp("certReq is not a DER BOOLEAN")
        cert_req = flag == b"\xff"
    if rest and rest[0][0] == 0xA0:
        extensions, rest = True, rest[1:]
    if rest:
        raise BadTimestamp("TimeStampReq has unexpected fields")
    return TimestampQuery(
        version=_value(query, fields[0], _INTEGER, "version"),
        imprint_der=query[fields[1][1] : fields[1][3]],
        imprint_algorithm=HASHES.get(_value(query, algorithm[0], _OID, "hash"), ""),
        imprint_parameters_ok=not parameters
        or (len(parameters) == 1 and query[parameters[0][1] : parameters[0][3]] == b"\x05\x00"),
        imprint=_value(query, imprint[1], _OCTETS, "hashedMessage"),
        policy_der=policy,
        nonce_der=nonce,
        cert_req=cert_req,
        has_extensions=extensions,
    )
