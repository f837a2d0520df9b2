"""The event loop's share of sealing a batch, per piece: parsing the request, writing each
proof's canonical content, and writing the 201 body (the signature and the registry write
are measured in test_seal_bench and by the capacity harness). Each round handles a batch
of 100; divide by 100 per proof."""

from __future__ import annotations

import json

from pytest_benchmark.fixture import BenchmarkFixture

from sealgate.bench.population import proof_request
from sealgate.crypto.canonical import canonical_json
from sealgate.gateway.requests import decode_json, parse_seal_body
from sealgate.gateway.sealing import document_json, format_code, proofs_json
from sealgate.verify.directory import Seal, SealKind
from sealgate.verify.registry import ProofRecord, Status

BATCH = 100
BODY = json.dumps(
    {"items": [proof_request("SEAL-BENCH00001", i) for i in range(BATCH)]}, ensure_ascii=False
).encode()


def test_seal_request_parsed(benchmark: BenchmarkFixture) -> None:
    proofs, batch = benchmark(lambda: parse_seal_body(decode_json(BODY)))
    assert batch and len(proofs) == BATCH


def test_proof_documents_written(benchmark: BenchmarkFixture) -> None:
    """The content each proof seals (RFC 8785 JSON), member by member as sealing writes it."""
    requests, _ = parse_seal_body(decode_json(BODY))
    seal = Seal("SEAL-BENCH00001", SealKind.PROOF, "益阳市公安局", "11430900006151330B", 0.0, ())
    code, issued_at = "430900-ZDXE31-DD2417-Z7GDVP", "2026-12-03T10:00:00Z"
    documents = benchmark(lambda: [document_json(code, r, seal, issued_at) for r in requests])
    assert len(documents) == BATCH
    assert json.loads(documents[0])["holder"]["name"] == requests[0].holder_name
    assert documents[0] == canonical_json(json.loads(documents[0]))


def test_seal_answer_written(benchmark: BenchmarkFixture) -> None:
    records = [
        ProofRecord(
            code=f"430900ZDXE31DD2417Z7G{n:03d}",
            seal_id="SEAL-BENCH00001",
            unit_name="益阳市公安局",
            unit_code="11430900006151330B",
            type="无犯罪记录证明",
            holder_kind="person",
            holder_name_masked="张*",
            holder_id_masked="1101**********002X",
            holder_key=bytes(32),
            valid_from="2026-11-01",
            valid_until="2027-10-31",
            expires_at=None,
            issued_at=1_764_547_200.0,
            status=Status.VALID,
            status_changed_at=1_764_547_200.0,
            superseded_by=None,
            signer_client="C-BENCH",
            document=bytes(1600),  # the size of a sealed proof
        )
        for n in range(BATCH)
    ]
    codes = [format_code(r.code) for r in records]
    body = benchmark(lambda: proofs_json(records, codes, batch=True, at=1_764_547_200.0))
    assert len(json.loads(body)["items"]) == BATCH
