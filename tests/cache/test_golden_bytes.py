"""Golden bytes of the cache wire format, kept as data in ``vectors/status-v2.json``.

Cached statuses outlive a deploy: during a rolling upgrade gateways of two releases read
each other's values from Redis. So the bytes the encoder writes are pinned here, exactly,
and the decoder must read them back; a later format must decode as a miss, and so must
every value of an earlier one (``vectors/status-v1.json``: format 1 cannot say whether
its proof is endorsed). A test that fails here means the wire format changed: bump
``FORMAT_VERSION`` and add new vectors, do not edit these.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sealgate.cache.codec import FORMAT_VERSION, CacheDataError, decode_status, encode_status
from sealgate.verify.registry import ProofStatus, Status

_DIR = Path(__file__).parent / "vectors"
VECTORS = json.loads((_DIR / "status-v2.json").read_text("utf-8"))
EARLIER = [json.loads((_DIR / "status-v1.json").read_text("utf-8"))]
TIME_FIELDS = ("expires_at", "issued_at", "status_changed_at")


def status_of(fields: dict[str, Any]) -> ProofStatus:
    return ProofStatus(**{**fields, "status": Status(fields["status"])})


def by_name(section: str, vectors: dict[str, Any] = VECTORS) -> list[Any]:
    return [
        pytest.param(vector, id=f"v{vectors['format']}-{vector['name']}")
        for vector in vectors[section]
    ]


def test_the_vectors_are_of_the_current_format() -> None:
    assert VECTORS["format"] == FORMAT_VERSION, (
        "FORMAT_VERSION changed: add vectors for the new format and keep these as rejected"
    )


@pytest.mark.parametrize("vector", by_name("round_trip"))
def test_the_encoder_writes_the_golden_bytes(vector: dict[str, Any]) -> None:
    assert encode_status(status_of(vector["status"])).hex() == vector["hex"]


@pytest.mark.parametrize("vector", by_name("round_trip") + by_name("read_only"))
def test_the_decoder_reads_the_golden_bytes(vector: dict[str, Any]) -> None:
    decoded = decode_status(bytes.fromhex(vector["hex"]))
    assert decoded == status_of(vector["status"])
    assert type(decoded.status) is Status
    for name in TIME_FIELDS:  # 1.0 == 1, so the type is checked apart
        value = getattr(decoded, name)
        assert value is None or type(value) is float, name


@pytest.mark.parametrize(
    "vector",
    by_name("rejected")
    + [v for old in EARLIER for s in ("round_trip", "read_only") for v in by_name(s, old)],
)
def test_other_formats_are_rejected_as_a_miss(vector: dict[str, Any]) -> None:
    with pytest.raises(CacheDataError):
        decode_status(bytes.fromhex(vector["hex"]))


def test_the_vectors_cover_every_status_and_every_optional_field() -> None:
    """A new status, or a field that may be absent, needs its own golden bytes."""
    statuses = [vector["status"] for vector in VECTORS["round_trip"]]
    assert {s["status"] for s in statuses} == {member.value for member in Status}
    optional = ("valid_until", "expires_at", "superseded_by")
    for name in (*optional, "data_owner", "extracting_unit", "verifying_unit"):
        assert any(s[name] is None for s in statuses), f"no vector without {name}"
        assert any(s[name] is not None for s in statuses), f"no vector with {name}"
    assert len({vector["hex"] for vector in VECTORS["round_trip"]}) == len(statuses)
