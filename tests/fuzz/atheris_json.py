"""Coverage-guided fuzzing of the request parsers with atheris (libFuzzer); not in pytest.

    .venv/bin/python tests/fuzz/atheris_json.py tests/fuzz/corpus/json -max_total_time=60

Oracle: ``decode_json`` then ``parse_seal_body`` / ``parse_status_change`` raise only
``InvalidRequest`` or ``ContentError``; anything else is a crash (libFuzzer writes the
input to ``crash-<sha1>``; add it to the corpus as ``found-*.json`` once fixed).
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

with atheris.instrument_imports(
    include=["sealgate.gateway.requests", "sealgate.verify", "tests.fuzz.oracle"]
):
    from tests.fuzz.oracle import check_json


def test_one_input(data: bytes) -> None:
    check_json(data)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
