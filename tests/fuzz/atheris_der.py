"""Coverage-guided fuzzing of ``verify_proof`` with atheris (libFuzzer); not part of pytest.

    .venv/bin/python tests/fuzz/atheris_der.py tests/fuzz/corpus/der -max_total_time=60

Oracle: ``verify_proof`` returns or raises a ``ProofError``; any other exception is a
crash (libFuzzer writes the input to ``crash-<sha1>``; add it to the corpus as
``found-*.der`` once fixed). ``make fuzz`` runs this and ``atheris_json.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

with atheris.instrument_imports(include=["asn1crypto", "crypto", "tests.fuzz.oracle"]):
    from tests.fuzz.oracle import check_der


def test_one_input(data: bytes) -> None:
    check_der(data)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
