"""``sealgate verify-file``: a sealed proof checked offline, and what the check stood on.

The first line is ``VALID`` (tab-separated: code, seal, unit, signing time) or, on
stderr, ``INVALID: <check>: <why>``; then one ``checked`` line per source (time,
retirement, revocation, registry), each naming what it consulted or saying
``not checked offline``. The registry never is: this command reaches no gateway.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from sealgate.crypto.assessment import RevocationCheck, TimestampCheck, assess
from sealgate.crypto.errors import ProofError
from sealgate.crypto.timestamps import timestamp_check
from sealgate.crypto.trust_document import TrustDocumentError, read_trust_document
from sealgate.crypto.verification import TrustList, verify_proof
from sealgate.gateway.cli_audit import CliError


def add_verify_file(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], home: argparse.ArgumentParser
) -> None:
    check = sub.add_parser(
        "verify-file",
        parents=[home],
        help="check a sealed proof (DER CMS) against the trust list, offline",
    )
    check.add_argument("file", type=Path)
    check.add_argument(
        "--trust", type=Path, help="PEM file of trusted roots (default: the home's root.pem)"
    )
    check.add_argument(
        "--trust-document",
        type=Path,
        help="the signed trust document (GET /v1/trust): refuses proofs signed after their "
        "key's retirement (without it, retirement is not checked)",
    )
    check.add_argument(
        "--crl",
        type=Path,
        metavar="FILE",
        help="the city root's CRL (DER, GET /v1/crl): refuses a proof whose seal was revoked"
        " by the time it is judged at (without it, revocation is not checked)",
    )
    check.add_argument(
        "--tsa-trust",
        type=Path,
        help="PEM file of trusted TSA roots: the proof's signature timestamp is checked and "
        "the proof judged at its time (default: the home's tsa-roots.pem, if there is one)",
    )


def verify_file(
    args: argparse.Namespace,
    home: Path,
    *,
    timestamp: TimestampCheck | None = None,
    revocation: RevocationCheck | None = None,
) -> int:
    """Check ``args.file``; ``timestamp`` and ``revocation``: how its signature timestamp
    and its seal's revocation are checked (None: they are not, and the output says so).
    Without ``timestamp``, the TSA roots of ``--tsa-trust`` (or the home's) check it."""
    trust_path: Path = args.trust or home / "root.pem"
    tsa_path: Path | None = args.tsa_trust
    if tsa_path is None and (home / "tsa-roots.pem").exists():
        tsa_path = home / "tsa-roots.pem"
    try:
        trust = TrustList.from_pem(trust_path.read_bytes())
        if timestamp is None and tsa_path is not None:
            timestamp = timestamp_check(TrustList.from_pem(tsa_path.read_bytes()))
        der = args.file.read_bytes()
        document = None if args.trust_document is None else args.trust_document.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {exc.filename}: {exc.strerror}") from None
    try:
        proof = verify_proof(der, trust)
        retired_at, source = None, None
        if document is not None:
            listed = read_trust_document(document, trust)
            source = f"trust document version {listed.version} of {listed.issued_at.isoformat()}"
            try:
                retired_at = listed.retirements[proof.seal_certificate_der]
            except KeyError:
                raise TrustDocumentError(f"the seal certificate is not in the {source}") from None
        assessment = assess(
            proof,
            now=dt.datetime.now(dt.UTC),
            retired_at=retired_at,
            retirement_source=source,
            timestamp=timestamp,
            revocation=revocation,
        )
    except ProofError as exc:
        print(f"INVALID: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(
        f"VALID\t{proof.code}\t{proof.seal_id}\t{proof.unit_name}\t{proof.signing_time.isoformat()}"
    )
    for name, value in assessment.checked().items():
        print(f"checked\t{name}\t{value}")
    return 0
