"""Regenerate the fuzzing seed corpus in ``tests/fuzz/corpus/`` (deterministic, seeded).

    .venv/bin/python tests/fuzz/make_corpus.py

Keys are software test keys derived from a fixed seed: the corpus holds no secret (the
private keys are throw-away and never written out; only public certificates and proofs).

``corpus/trust/``  the test roots the DER fuzzers trust (public certificates)
``corpus/der/``    sealed proofs and broken variants: truncations, bit flips, deep
                   nesting, huge length headers, indefinite (BER) lengths
``corpus/json/``   request bodies: proof requests (single, batch), status changes and
                   hostile variants (types, unknown fields, depth, numbers, encodings)
"""

from __future__ import annotations

import json
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from sealgate.crypto import (  # noqa: E402
    Endorsement,
    ProofSealer,
    canonical_json,
    prepare_root_certificate,
    prepare_seal_certificate,
)

CORPUS = Path(__file__).resolve().parent / "corpus"
SEED = 20260301
NOW = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
SEAL_ID = "3302000012345"
UNIT_NAME = "宁波市公安局"
UNIT_CODE = "11330200002985999X"


# --- deterministic software keys ---------------------------------------------------


class Signer:
    """A test signer whose key comes from ``rng``; signatures are deterministic too."""

    def __init__(self, rng: random.Random, kind: str) -> None:
        self.key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
        if kind == "ec":
            order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
            self.key = ec.derive_private_key(rng.randrange(1, order), ec.SECP256R1())
        else:
            self.key = _rsa_key(rng, 2048)

    @property
    def public_key_der(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, digest: bytes) -> bytes:
        prehashed = utils.Prehashed(hashes.SHA256())
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            return self.key.sign(digest, ec.ECDSA(prehashed, deterministic_signing=True))
        return self.key.sign(digest, padding.PKCS1v15(), prehashed)


def _is_probable_prime(n: int, rng: random.Random) -> bool:
    if n < 4:
        return n in (2, 3)
    for p in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for _ in range(40):
        x = pow(rng.randrange(2, n - 1), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(rng: random.Random, bits: int, e: int) -> int:
    while True:
        candidate = rng.getrandbits(bits) | (0b11 << (bits - 2)) | 1
        if (candidate - 1) % e and _is_probable_prime(candidate, rng):
            return candidate


def _rsa_key(rng: random.Random, bits: int) -> rsa.RSAPrivateKey:
    e = 65537
    p = _prime(rng, bits // 2, e)
    q = _prime(rng, bits // 2, e)
    while q == p:  # pragma: no cover - astronomically unlikely
        q = _prime(rng, bits // 2, e)
    d = pow(e, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p=p,
        q=q,
        d=d,
        dmp1=d % (p - 1),
        dmq1=d % (q - 1),
        iqmp=pow(q, -1, p),
        public_numbers=rsa.RSAPublicNumbers(e, p * q),
    )
    return numbers.private_key()


def _root(rng: random.Random, signer: Signer, name: str) -> bytes:
    pending = prepare_root_certificate(
        signer.public_key_der,
        common_name=name,
        organization="宁波市大数据发展管理局",
        not_before=NOW - timedelta(days=365),
        not_after=NOW + timedelta(days=3650),
        serial=rng.getrandbits(127),
    )
    return pending.finish(signer.sign(pending.digest))


def _seal(rng: random.Random, root_signer: Signer, root: bytes, seal_signer: Signer) -> bytes:
    pending = prepare_seal_certificate(
        seal_signer.public_key_der,
        issuer_certificate_der=root,
        unit_name=UNIT_NAME,
        unit_code=UNIT_CODE,
        seal_id=SEAL_ID,
        kind_name="电子证明专用章",
        not_before=NOW - timedelta(days=30),
        not_after=NOW + timedelta(days=365),
        serial=rng.getrandbits(127),
    )
    return pending.finish(root_signer.sign(pending.digest))


def _proof(
    seal: bytes,
    signer: Signer,
    chain: tuple[bytes, ...] = (),
    *,
    content: bytes,
    code: str = "NB20260301-0001-7Q",
    endorsement: Endorsement | None = None,
    signing_time: datetime = NOW,
) -> bytes:
    pending = ProofSealer(seal, chain).prepare(
        content, code=code, seal_id=SEAL_ID, signing_time=signing_time, endorsement=endorsement
    )
    return pending.finish(signer.sign(pending.digest))


# --- DER ---------------------------------------------------------------------------


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    size = (n.bit_length() + 7) // 8
    return bytes((0x80 | size,)) + n.to_bytes(size, "big")


def _header(der: bytes) -> tuple[int, int]:
    """(header length, content length) of the outermost element of definite-length DER."""
    first = der[1]
    if first < 0x80:
        return 2, first
    size = first & 0x7F
    return 2 + size, int.from_bytes(der[2 : 2 + size], "big")


def _indefinite_outer(der: bytes) -> bytes:
    """The same element with its outer length turned into BER indefinite form."""
    head, _ = _header(der)
    return der[:1] + b"\x80" + der[head:] + b"\x00\x00"


def _deep_definite(depth: int) -> bytes:
    inner = b"\x05\x00"
    for _ in range(depth):
        inner = b"\x30" + _length(len(inner)) + inner
    return inner


def der_corpus(rng: random.Random) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """(trust roots, DER seeds) by file name."""
    root_signer = Signer(rng, "ec")
    root = _root(rng, root_signer, "宁波市无证明城市根CA")
    ec_signer = Signer(rng, "ec")
    ec_seal = _seal(rng, root_signer, root, ec_signer)
    rsa_signer = Signer(rng, "rsa")
    rsa_seal = _seal(rng, root_signer, root, rsa_signer)
    rsa_root_signer = Signer(rng, "rsa")
    rsa_root = _root(rng, rsa_root_signer, "宁波市无证明城市根CA (RSA)")
    ec_under_rsa = _seal(rng, rsa_root_signer, rsa_root, ec_signer)
    other_signer = Signer(rng, "ec")
    other_root = _root(rng, other_signer, "不受信任的根CA")
    other_seal = _seal(rng, other_signer, other_root, ec_signer)

    content = canonical_json(
        {"证明事项": "无犯罪记录证明", "姓名": "张三", "身份证号": "330203199001011234", "n": 1}
    )
    endorsement = Endorsement("宁波银行股份有限公司", "宁波市大数据发展管理局", NOW)
    valid = {
        "valid-ec-seal-root-copy.der": _proof(
            ec_seal, ec_signer, (root,), content=content, endorsement=endorsement
        ),
        "valid-ec-seal-only.der": _proof(ec_seal, ec_signer, content=content),
        "valid-rsa-seal.der": _proof(
            rsa_seal, rsa_signer, (root,), content=content, endorsement=endorsement
        ),
        "valid-ec-seal-rsa-root.der": _proof(ec_under_rsa, ec_signer, (rsa_root,), content=content),
        "valid-empty-endorsement.der": _proof(
            ec_seal, ec_signer, content=b"{}", endorsement=Endorsement(), code="X"
        ),
    }
    base = valid["valid-ec-seal-root-copy.der"]
    seeds: dict[str, bytes] = dict(valid)
    seeds["untrusted-root.der"] = _proof(other_seal, ec_signer, (other_root,), content=content)
    seeds["signed-outside-validity.der"] = _proof(
        ec_seal, ec_signer, content=content, signing_time=NOW + timedelta(days=400)
    )
    seeds["wrong-signer-key.der"] = _proof(ec_seal, other_signer, content=content)
    seeds["root-certificate.der"] = root
    seeds["seal-certificate.der"] = ec_seal

    # Altered content (same length, digest no longer matches).
    i = base.index(content)
    seeds["content-altered.der"] = base[:i] + content.replace(b"1", b"2") + base[i + len(content) :]

    # A name attribute (the issuer's C) re-tagged as BIT STRING: atheris found that
    # cryptography raises TypeError (not ValueError) for it when the name is read.
    cn = bytes.fromhex("0603550406")
    bitstring = bytearray(valid["valid-ec-seal-only.der"])
    bitstring[bitstring.index(cn) + len(cn)] = 0x03
    seeds["name-attribute-bitstring.der"] = bytes(bitstring)

    # Truncations.
    for n in (0, 1, 2, 4, 16, len(base) // 2, len(base) - 1):
        seeds[f"truncated-{n:04d}.der"] = base[:n]
    # Seeded bit flips in the valid proofs.
    for k in range(10):
        name, source = rng.choice(sorted(valid.items()))
        data = bytearray(source)
        for _ in range(rng.randint(1, 3)):
            pos = rng.randrange(len(data))
            data[pos] ^= 1 << rng.randrange(8)
        seeds[f"bitflip-{k:02d}-{name}"] = bytes(data)
    seeds["trailing-garbage.der"] = base + b"\x00\x00"

    # BER indefinite lengths.
    seeds["indefinite-outer.der"] = _indefinite_outer(base)
    seeds["indefinite-nested.der"] = b"\x30\x80" * 200 + b"\x00\x00" * 200
    seeds["indefinite-unterminated.der"] = b"\x30\x80" * 200
    seeds["indefinite-primitive.der"] = b"\x04\x80" + b"\x00" * 8 + b"\x00\x00"

    # Deep nesting (definite and wrapped into a SignedData's content slot).
    seeds["deep-definite-1500.der"] = _deep_definite(1500)
    deep = _deep_definite(400)
    oid_signed = bytes.fromhex("06092a864886f70d010702")
    explicit = b"\xa0" + _length(len(deep)) + deep
    body = oid_signed + explicit
    seeds["deep-inside-contentinfo.der"] = b"\x30" + _length(len(body)) + body

    # Huge or malformed length headers.
    seeds["length-4g.der"] = b"\x30\x84\xff\xff\xff\xff" + base[4:64]
    seeds["length-8-octets.der"] = b"\x30\x88\xff\xff\xff\xff\xff\xff\xff\xff" + base[4:64]
    seeds["length-127-octets.der"] = b"\x30\xfe" + b"\xff" * 126 + b"\x01"
    seeds["length-reserved-ff.der"] = b"\x30\xff" + base[4:64]
    seeds["length-nonminimal.der"] = b"\x30\x84" + (len(base) - 4).to_bytes(4, "big") + base[4:]
    seeds["high-tag-number.der"] = b"\x1f" + b"\xff" * 40 + b"\x01\x00"
    seeds["oid-huge-arc.der"] = b"\x06\x20" + b"\xff" * 31 + b"\x7f"
    seeds["integer-huge.der"] = b"\x02\x82\x04\x00" + b"\x7f" + b"\xff" * 1023
    return {"root-ec.der": root, "root-rsa.der": rsa_root}, seeds


# --- JSON --------------------------------------------------------------------------


def _request(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "seal_id": SEAL_ID,
        "type": "无犯罪记录证明",
        "holder": {"kind": "person", "id": "11010519491231002X", "name": "张三"},
        "content": {"结论": "经查询，未发现有犯罪记录", "用途": "入职"},
        "valid_from": "2026-11-22",
        "valid_until": "2027-05-21",
    }
    body.update(overrides)
    return body


def _dump(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


def json_corpus(rng: random.Random) -> dict[str, bytes]:
    org = {"kind": "org", "id": "91330200MA2H7QXN32", "name": "宁波某某有限公司"}
    seeds: dict[str, bytes] = {
        "valid-single.json": _dump(_request()),
        "valid-single-ascii.json": json.dumps(_request()).encode(),
        "valid-endorsed.json": _dump(
            _request(endorsement={"extracting_unit": "宁波银行", "verifying_unit": "大数据局"})
        ),
        "valid-org-datetime.json": _dump(
            _request(holder=org, valid_from="2026-11-22T10:00:00+08:00", valid_until=None)
        ),
        "valid-batch.json": _dump(
            {"items": [_request(), _request(type="户籍证明"), _request(holder=org)]}
        ),
        "valid-status-revoke.json": _dump({"status": "revoked", "reason": "材料失效"}),
        "valid-status-superseded.json": _dump(
            {"status": "changed", "reason": "更正", "superseded_by": "NB20260301-0001-7Q"}
        ),
        # Wrong types.
        "wrong-top-array.json": _dump([_request()]),
        "wrong-top-string.json": b'"hello"',
        "wrong-top-null.json": b"null",
        "wrong-holder-string.json": _dump(_request(holder="张三")),
        "wrong-holder-id-number.json": b'{"seal_id":"1","type":"t","holder":{"kind":"person",'
        b'"id":110105194912310,"name":"x"},"content":{},"valid_from":"2026-01-01"}',
        "wrong-content-list.json": _dump(_request(content=[1, 2, 3])),
        "wrong-valid-from-number.json": _dump(_request(valid_from=20261122)),
        "wrong-items-object.json": _dump({"items": {"0": _request()}}),
        "wrong-items-empty.json": b'{"items": []}',
        "wrong-status-bool.json": b'{"status": true, "reason": ["x"]}',
        "wrong-kind.json": _dump(_request(holder={"kind": ["person"], "id": "1", "name": "x"})),
        "bad-dates.json": _dump(_request(valid_from="2026-02-30", valid_until="2026-01-01")),
        "bad-date-year-0.json": _dump(_request(valid_from="0000-01-01T00:00:00+14:00")),
        # Unknown fields.
        "unknown-field.json": _dump(_request(admin=True)),
        "unknown-holder-field.json": _dump(
            _request(holder={"kind": "person", "id": "1", "name": "x", "x": 1})
        ),
        "unknown-batch-sibling.json": _dump({"items": [_request()], "extra": 1}),
        "unknown-status-field.json": b'{"status":"revoked","reason":"r","by":"me"}',
        # Depth.
        "deep-array-1500.json": b"[" * 1500 + b"]" * 1500,
        "deep-object-1200.json": b'{"a":' * 1200 + b"1" + b"}" * 1200,
        "deep-content.json": _dump(_request(content={})).replace(
            b'"content": {}', b'"content": ' + b'{"a":' * 900 + b"1" + b"}" * 900
        ),
        "deep-unclosed.json": b"[" * 3000,
        # Numbers.
        "big-int.json": _dump(_request(content={"id": 430902199001011231})),
        "big-int-5000-digits.json": b'{"content": {"x": ' + b"9" * 3000 + b"}}",
        "big-float.json": b'{"content": {"x": 1e400}}',
        "big-negative-float.json": b'{"content": {"x": -1e400}}',
        "tiny-float.json": b'{"content": {"x": 1e-400}}',
        "nan.json": b'{"content": {"x": NaN}}',
        "infinity.json": b'{"content": {"x": -Infinity}}',
        "float-many-digits.json": b'{"x": 0.' + b"1" * 2000 + b"}",
        "negative-zero.json": _dump(_request(content={"x": -0.0})),
        # Strings and encodings.
        "surrogate-lone.json": b'{"content": {"x": "\\ud800"}}',
        "surrogate-in-name.json": _dump(_request())
        .replace("张三".encode(), b"\\udfff")
        .replace(b'"name"', b'"name"'),
        "surrogate-pair.json": _dump(_request(content={"x": "\U0001f600"})).replace(
            "\U0001f600".encode(), b"\\ud83d\\ude00"
        ),
        "surrogate-key.json": b'{"\\udc00": 1}',
        "surrogate-duplicate-key.json": b'{"\\ud800": 1, "\\ud800": 2}',
        "surrogate-holder-key.json": _dump(_request()).replace(
            b'"holder": {', b'"holder": {"\\udbff": 0, '
        ),
        "surrogate-batch-key.json": b'{"items": [{"\\udfff\\ud800": []}]}',
        "control-chars.json": _dump(_request(type="a\u0000b", seal_id="\u001f")),
        "invalid-utf8.json": b'{"type": "\xff\xfe"}',
        "invalid-utf8-overlong.json": b'{"type": "\xc0\xaf"}',
        "invalid-utf8-cesu.json": b'{"type": "\xed\xa0\x80"}',
        "utf8-bom.json": b"\xef\xbb\xbf" + _dump(_request()),
        "utf16.json": json.dumps(_request()).encode("utf-16"),
        "nul-bytes.json": b"\x00" * 64,
        "long-strings.json": _dump(_request(type="证" * 1000, seal_id="1" * 65)),
        # Duplicate keys.
        "duplicate-top.json": b'{"seal_id":"1","seal_id":"2"}',
        "duplicate-nested.json": _dump(_request())[:-1] + b',"holder":{}}',
        "duplicate-status.json": b'{"status":"revoked","status":"valid","reason":"r"}',
        # Syntax.
        "empty.json": b"",
        "whitespace.json": b" \t\r\n",
        "trailing-comma.json": b'{"a": 1,}',
        "single-quotes.json": b"{'a': 1}",
        "two-documents.json": b"{}{}",
        "truncated.json": _dump(_request())[:57],
    }
    # Seeded byte-level mutations of the valid request bodies.
    valids = sorted(v for k, v in seeds.items() if k.startswith("valid-"))
    for k in range(8):
        data = bytearray(rng.choice(valids))
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(data))
            data[pos] = rng.randrange(256)
        seeds[f"mutated-{k:02d}.json"] = bytes(data)
    return seeds


def write(directory: Path, files: dict[str, bytes]) -> None:
    """Replace the generated seeds; ``found-*`` files (fuzzer finds) are kept."""
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.iterdir():
        if not old.name.startswith("found-"):
            old.unlink()
    for name, data in sorted(files.items()):
        (directory / name).write_bytes(data)


def main() -> None:
    rng = random.Random(SEED)
    trust, der = der_corpus(rng)
    write(CORPUS / "trust", trust)
    write(CORPUS / "der", der)
    bodies = json_corpus(rng)
    write(CORPUS / "json", bodies)
    print(f"wrote {len(trust)} roots, {len(der)} DER and {len(bodies)} JSON seeds")


if __name__ == "__main__":
    main()
