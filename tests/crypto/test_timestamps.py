"""Signature timestamps (CAdES-B-T): a proof judged at the TSA's time (through the
``timestamp=`` seam of :func:`sealgate.crypto.assessment.assess`), and every way a token
can lie refused (BadTimestamp)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import pytest
from asn1crypto import core, tsp
from asn1crypto import x509 as asn1_x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sealgate.crypto import (
    BadTimestamp,
    MalformedProof,
    SealNotValidAtSigningTime,
    TimestampRefused,
    TrustList,
    _der,
    verify_proof,
)
from sealgate.crypto.assessment import CLOCK_SKEW, TIMESTAMP, Assessment, assess
from sealgate.crypto.errors import SignedInTheFuture
from sealgate.crypto.timestamps import (
    read_response,
    signature_timestamp_attributes,
    timestamp_check,
    timestamp_request,
    verify_token,
)
from sealgate.tsa.authority import DEVELOPMENT_POLICY, RequestRejected
from tests.crypto.signers import NOW, Pki, make_pki
from tests.crypto.soft_tsa import SoftTsa


@pytest.fixture(scope="module")
def tsa() -> SoftTsa:
    return SoftTsa()


@pytest.fixture(scope="module")
def tsa_trust(tsa: SoftTsa) -> TrustList:
    return TrustList.from_der([tsa.root])


def stamped(
    pki: Pki, tsa: SoftTsa, *, signing_time: datetime = NOW, gen_time: datetime = NOW
) -> bytes:
    """A proof signed at ``signing_time`` whose signature the TSA stamped at ``gen_time``."""
    pending = pki.sealer().prepare(
        b'{"n":1}', code="C-1", seal_id="3302000012345", signing_time=signing_time
    )
    signature = pending.signature_value(pki.seal_signer.sign(pending.digest))
    token = tsa.token(signature, gen_time)
    return pending.finish(signature, signature_timestamp_attributes(token))


def judged(proof: bytes, trust: TrustList, tsa_trust: TrustList | None) -> Assessment:
    """The proof verified and assessed (a week after NOW), its timestamp checked against
    ``tsa_trust`` (None: not checked)."""
    return assess(
        verify_proof(proof, trust),
        now=NOW + timedelta(days=7),
        retired_at=None,
        retirement_source=None,
        timestamp=None if tsa_trust is None else timestamp_check(tsa_trust),
    )


def test_a_stamped_proof_is_judged_at_the_timestamps_time(
    pki: Pki, trust: TrustList, tsa: SoftTsa, tsa_trust: TrustList
) -> None:
    proof = stamped(pki, tsa, gen_time=NOW + timedelta(seconds=2))
    assessment = judged(proof, trust, tsa_trust)
    assert assessment.judged_at == NOW + timedelta(seconds=2)
    assert assessment.time_source == TIMESTAMP
    verified = verify_proof(proof, trust)
    assert verified.signing_time == NOW
    assert verified.timestamp_token is not None
    stamp = verify_token(verified.timestamp_token, verified.signature, tsa_trust)
    assert (stamp.tsa_name, stamp.policy) == ("测试时间戳服务", DEVELOPMENT_POLICY)
    # Without the TSA's roots the token is not checked, and the answer says so.
    unchecked = judged(proof, trust, None)
    assert unchecked.judged_at == NOW
    assert "not checked" in unchecked.time_source


def test_a_backdated_signature_stamped_after_the_seal_ended_is_refused(
    tsa: SoftTsa, tsa_trust: TrustList
) -> None:
    """The forgery of issue 25: a key whose certificate has ended signs with a signing time
    inside its validity. The self-asserted time passes; the TSA's time does not."""
    pki = make_pki(validity=(NOW - timedelta(days=30), NOW + timedelta(days=1)))
    trust = TrustList.from_der([pki.root])
    proof = stamped(pki, tsa, signing_time=NOW, gen_time=NOW + timedelta(days=2))
    assert judged(proof, trust, None).judged_at == NOW
    with pytest.raises(SealNotValidAtSigningTime, match="timestamp"):
        judged(proof, trust, tsa_trust)


def test_a_signing_time_after_the_timestamp_is_refused(
    pki: Pki, trust: TrustList, tsa: SoftTsa, tsa_trust: TrustList
) -> None:
    late = NOW + CLOCK_SKEW + timedelta(seconds=1)
    proof = stamped(pki, tsa, signing_time=late, gen_time=NOW)
    with pytest.raises(SignedInTheFuture, match="after the proof's timestamp"):
        judged(proof, trust, tsa_trust)
    within = stamped(pki, tsa, signing_time=NOW + CLOCK_SKEW, gen_time=NOW)
    assert judged(within, trust, tsa_trust).judged_at == NOW


def test_a_token_over_another_signature_is_refused(
    pki: Pki, trust: TrustList, tsa: SoftTsa, tsa_trust: TrustList
) -> None:
    pending = pki.sealer().prepare(
        b'{"n":2}', code="C-2", seal_id="3302000012345", signing_time=NOW
    )
    signature = pending.signature_value(pki.seal_signer.sign(pending.digest))
    other = tsa.token(pki.seal_signer.sign(pending.digest))  # ECDSA: another signature
    proof = pending.finish(signature, signature_timestamp_attributes(other))
    with pytest.raises(BadTimestamp, match="other data"):
        judged(proof, trust, tsa_trust)


def test_a_token_of_an_untrusted_tsa_is_refused(pki: Pki, trust: TrustList) -> None:
    proof = stamped(pki, SoftTsa())
    with pytest.raises(BadTimestamp, match="trusted TSA root"):
        judged(proof, trust, TrustList.from_der([pki.root]))


def test_a_signer_without_the_timestamping_eku_is_refused(pki: Pki, trust: TrustList) -> None:
    """A seal certificate (documentSigning) cannot sign timestamps, even under a TSA root."""
    tsa = SoftTsa(eku_certificate=pki.seal)
    tsa.signer = pki.seal_signer
    proof = stamped(pki, tsa)
    with pytest.raises(BadTimestamp, match="timeStamping"):
        judged(proof, trust, TrustList.from_der([pki.root]))


def test_an_altered_token_is_refused(
    pki: Pki, trust: TrustList, tsa: SoftTsa, tsa_trust: TrustList
) -> None:
    proof = stamped(pki, tsa, gen_time=NOW)
    # genTime is the only GeneralizedTime in the proof; move it a year back.
    year = NOW.strftime("%Y%m%d%H%M%SZ").encode()
    assert proof.count(year) == 1
    earlier = proof.replace(year, str(NOW.year - 1).encode() + year[4:])
    verify_proof(earlier, trust)  # the token is no part of what the seal signed
    with pytest.raises(BadTimestamp, match="message-digest"):
        judged(earlier, trust, tsa_trust)


def test_two_timestamps_are_refused(pki: Pki, trust: TrustList, tsa: SoftTsa) -> None:
    pending = pki.sealer().prepare(
        b'{"n":3}', code="C-3", seal_id="3302000012345", signing_time=NOW
    )
    signature = pending.signature_value(pki.seal_signer.sign(pending.digest))
    one = signature_timestamp_attributes(tsa.token(signature))
    two = signature_timestamp_attributes(tsa.token(signature))
    # [1] { attribute, attribute }: both attributes' DER inside one unsignedAttrs.
    body = core.load(one).contents + core.load(two).contents
    proof = pending.finish(signature, _der.tlv(0xA1, body))
    with pytest.raises(MalformedProof, match="only one"):
        verify_proof(proof, trust)


def test_the_response_must_answer_this_request(tsa: SoftTsa, tsa_trust: TrustList) -> None:
    signature = b"a signature"
    request = timestamp_request(signature, 42)
    answer = tsa.response(request, NOW)
    assert read_response(answer, signature=signature, nonce=42, trust=tsa_trust).gen_time == NOW
    with pytest.raises(BadTimestamp, match="nonce"):
        read_response(answer, signature=signature, nonce=43, trust=tsa_trust)
    with pytest.raises(BadTimestamp, match="other data"):
        read_response(answer, signature=b"another", nonce=42, trust=tsa_trust)


@pytest.mark.parametrize(
    ("request_der", "failure"),
    [
        (b"\x30\x03\x02\x01\x01", "bad_data_format"),
        (b"not DER at all", "bad_data_format"),
        (
            tsp.TimeStampReq(
                {
                    "version": "v1",
                    "message_imprint": {
                        "hash_algorithm": {"algorithm": "sha1"},
                        "hashed_message": bytes(20),
                    },
                }
            ).dump(),
            "bad_alg",
        ),
        (
            tsp.TimeStampReq(
                {
                    "version": "v1",
                    "message_imprint": {
                        "hash_algorithm": {"algorithm": "sha256"},
                        "hashed_message": bytes(20),
                    },
                }
            ).dump(),
            "bad_data_format",
        ),
        (
            tsp.TimeStampReq(
                {
                    "version": "v1",
                    "message_imprint": {
                        "hash_algorithm": {"algorithm": "sha256"},
                        "hashed_message": bytes(32),
                    },
                    "req_policy": "1.2.3.4",
                }
            ).dump(),
            "unaccepted_policy",
        ),
    ],
)
def test_requests_the_tsa_cannot_answer_are_refused_in_the_protocol(
    tsa: SoftTsa, tsa_trust: TrustList, request_der: bytes, failure: str
) -> None:
    with pytest.raises(RequestRejected) as refused:
        tsa.response(request_der, NOW)
    assert refused.value.failure == failure
    answer = refused.value.response()
    status = tsp.PKIStatusInfo.load(answer[2:])
    assert status["status"].native == "rejection"
    assert status["fail_info"].native == {failure}
    with pytest.raises(TimestampRefused, match="rejection"):
        read_response(answer, signature=b"x", nonce=1, trust=tsa_trust)


def test_requests_carry_a_positive_nonce() -> None:
    for nonce in (1, 127, 128, 255, 256, (1 << 63) + 5, (1 << 64) - 1):
        request = tsp.TimeStampReq.load(timestamp_request(b"s", nonce), strict=True)
        assert request["nonce"].native == nonce
        assert request["cert_req"].native is True
    with pytest.raises(ValueError, match="nonce"):
        timestamp_request(b"s", 0)


def test_the_hand_written_token_is_what_asn1crypto_reads(tsa: SoftTsa) -> None:
    """The TSA writes its tokens' DER by hand; asn1crypto reads them strictly, to the same
    values, the ESS signing-certificate-v2 naming the TSA certificate by hash and serial."""
    request = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {
                "hash_algorithm": {"algorithm": "sha512"},
                "hashed_message": bytes(range(64)),
            },
            "req_policy": DEVELOPMENT_POLICY,
        }
    ).dump()
    answer = tsp.TimeStampResp.load(tsa.response(request, NOW), strict=True)
    token = answer["time_stamp_token"]
    info = token["content"]["encap_content_info"]["content"].parsed
    assert info["message_imprint"]["hashed_message"].native == bytes(range(64))
    assert info["nonce"].native is None
    assert info["gen_time"].native == NOW
    assert isinstance(token["content"]["certificates"], core.Void)  # certReq absent: none
    signer = token["content"]["signer_infos"][0]
    ess = next(a for a in signer["signed_attrs"] if a["type"].native == "signing_certificate_v2")
    cert_id = ess["values"][0]["certs"][0]
    assert cert_id["cert_hash"].native == hashlib.sha256(tsa.certificate).digest()
    serial = asn1_x509.Certificate.load(tsa.certificate).serial_number
    assert cert_id["issuer_serial"]["serial_number"].native == serial


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_every_byte_of_a_token_counts(
    tsa: SoftTsa, tsa_trust: TrustList, data: st.DataObject
) -> None:
    """Whatever byte of a token changes (structure, TSTInfo, attributes, certificate,
    signature), or wherever it is cut, it is refused as BadTimestamp and nothing else."""
    signature = b"the signature value"
    token = _TOKENS.setdefault("one", tsa.token(signature))
    position = data.draw(st.integers(0, len(token) - 1))
    if data.draw(st.booleans()):
        changed = bytearray(token)
        changed[position] ^= data.draw(st.integers(1, 255))
        altered = bytes(changed)
    else:
        altered = token[:position]
    with pytest.raises(BadTimestamp):
        verify_token(altered, signature, tsa_trust)


_TOKENS: dict[str, bytes] = {}
