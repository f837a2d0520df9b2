"""A time-stamping authority with a software key: a test stand-in for ``sealgate tsa serve``."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from asn1crypto import tsp

from sealgate.crypto import timestamps
from sealgate.crypto.certificates import prepare_tsa_certificate
from sealgate.tsa.authority import TokenIssuer
from tests.crypto.signers import NOW, SoftSigner, make_root


class SoftTsa:
    """A TSA root and its TSA certificate, both valid from a year before ``NOW``."""

    def __init__(self, *, eku_certificate: bytes | None = None) -> None:
        self.root_signer, self.signer = SoftSigner("ec"), SoftSigner("ec")
        self.root = make_root(self.root_signer, name="测试时间戳根")
        if eku_certificate is None:
            pending = prepare_tsa_certificate(
                self.signer.public_key_der,
                issuer_certificate_der=self.root,
                common_name="测试时间戳服务",
                organization="测试",
                not_before=NOW - timedelta(days=365),
                not_after=NOW + timedelta(days=3650),
                serial=secrets.randbits(127),
            )
            eku_certificate = pending.finish(self.root_signer.sign(pending.digest))
        self.certificate = eku_certificate
        self.issuer = TokenIssuer(self.certificate)

    def response(self, request: bytes, gen_time: datetime) -> bytes:
        pending = self.issuer.prepare(request, gen_time=gen_time, serial=secrets.randbits(127))
        return pending.finish(self.signer.sign(pending.digest))

    def token(self, signature: bytes, gen_time: datetime = NOW) -> bytes:
        """The token of a granted answer over ``signature``."""
        request = timestamps.timestamp_request(signature, secrets.randbits(63) | 1)
        answer = tsp.TimeStampResp.load(self.response(request, gen_time))
        token: bytes = answer["time_stamp_token"].dump()
        return token
