"""``sealgate verify-qr PAYLOAD|IMAGE``: 扫码 at a counter, without the gateway.

The payload is the text a scanner read, or a picture of the QR code (PNG, JPEG: read with
zxing-cpp). The keys come from the root-signed trust document (``--trust-document FILE``,
the JSON of ``GET /v1/trust``, its signature checked against the roots of ``--roots``,
default the home's ``root.pem``), or, without one, from an unsigned list of keys
(``--trust``, default the home's ``gateway-keys.json``); the status from a status list
token saved earlier (``--status-list FILE``) or fetched now from the gateway or its CDN
(``--gateway URL``).
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from sealgate.crypto.errors import ContentError, CoseError
from sealgate.crypto.key_trust import KeyTrust
from sealgate.crypto.qr_payload import PREFIX, read_payload
from sealgate.crypto.trust_document import TrustDocumentError, read_trust_document
from sealgate.crypto.verification import TrustList
from sealgate.errors import Error
from sealgate.gateway.attestation import KEYS_FILE
from sealgate.verify.qr import verify_qr

MAX_STATUS_LIST = 64 * 1024 * 1024


class QrCliError(Error):
    """verify-qr cannot run as asked (a file unreadable, no QR code in a picture)."""


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], home: argparse.ArgumentParser
) -> None:
    check = sub.add_parser(
        "verify-qr",
        parents=[home],
        help="check a proof's QR payload (or a picture of its QR code) offline",
    )
    check.add_argument("payload", help="the scanned text (SG1:...), or a picture file of the code")
    keys = check.add_mutually_exclusive_group()
    keys.add_argument(
        "--trust-document",
        type=Path,
        help="the root-signed trust document (GET /v1/trust): its gateway keys, once its"
        " signature is checked against --roots",
    )
    keys.add_argument(
        "--trust", type=Path, help=f"an unsigned list of keys (default: the home's {KEYS_FILE})"
    )
    check.add_argument(
        "--roots", type=Path, help="PEM file of trusted roots (default: the home's root.pem)"
    )
    where = check.add_mutually_exclusive_group(required=True)
    where.add_argument("--status-list", type=Path, help="a status list token saved earlier")
    where.add_argument("--gateway", help="fetch the status list from this base URL (or CDN)")
    check.add_argument("--holder-id", help="also check the identity number read from an ID card")


def read_picture(path: Path) -> str:
    """The text of the one QR code in a picture."""
    import zxingcpp
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            found = zxingcpp.read_barcodes(image.convert("L"))
    except (OSError, UnidentifiedImageError) as exc:
        raise QrCliError(f"cannot read the picture {path}: {exc}") from None
    found = [f for f in found if f.format == zxingcpp.BarcodeFormat.QRCode]
    if len(found) != 1:
        raise QrCliError(f"the picture holds {len(found)} QR codes, not one")
    return str(found[0].text)


def fetch_status_list(base: str, uri: str) -> bytes:
    url = urllib.parse.urljoin(base.rstrip("/") + "/", uri)
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise QrCliError("the status list URL is not http(s)")
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - scheme checked
            return bytes(answer.read(MAX_STATUS_LIST))
    except OSError as exc:
        raise QrCliError(f"cannot fetch the status list {url}: {exc}") from None


def _unsigned_keys(path: Path) -> KeyTrust:
    try:
        return KeyTrust.from_json(path.read_bytes())
    except ContentError as exc:
        raise QrCliError(f"{path}: {exc}") from None


def run(args: argparse.Namespace, home: Path) -> int:
    if args.roots is not None and args.trust_document is None:
        raise QrCliError("--roots checks a --trust-document: give one")
    # A payload is no file name: Base45 has '/' and a long run asks the OS ENAMETOOLONG.
    text = args.payload if args.payload.startswith(PREFIX) else read_picture(Path(args.payload))
    try:
        token = args.status_list.read_bytes() if args.status_list else None
        if args.trust_document is not None:
            roots = TrustList.from_pem((args.roots or home / "root.pem").read_bytes())
            trust = read_trust_document(args.trust_document.read_bytes(), roots).keys
        else:
            trust = _unsigned_keys(args.trust or home / KEYS_FILE)
    except OSError as exc:
        raise QrCliError(f"cannot read {exc.filename}: {exc.strerror}") from None
    except TrustDocumentError as exc:
        print(f"INVALID: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    now = time.time()
    try:
        if token is None:
            token = fetch_status_list(args.gateway, read_payload(text, trust, now=now).status_list)
        verdict = verify_qr(text, trust, token, now=now)
        if args.holder_id:
            verdict.claims.require_holder(args.holder_id)
    except CoseError as exc:
        print(f"INVALID: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    claims = verdict.claims
    fields = (claims.code, claims.type, claims.unit_name, claims.holder_name_masked)
    if verdict.status != "valid":
        print("\t".join(("NOT VALID", verdict.status, *fields)))
        return 1
    print("\t".join(("VALID", *fields, claims.valid_from, claims.valid_until or "")))
    return 0
