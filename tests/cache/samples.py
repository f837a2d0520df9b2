"""Sample proof statuses for the cache tests."""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import strategies as st

from sealgate.verify.registry import ProofStatus, Status

BASE = ProofStatus(
    code="430900ZDXE31DD2417Z7GDVP",
    seal_id="seal-430900-0001",
    unit_name="某市公安局某分局",
    unit_code="11430900MB1234567X",
    type="无犯罪记录证明",
    holder_kind="person",
    holder_name_masked="张*",
    holder_id_masked="110105********002X",
    valid_from="2025-01-01",
    valid_until="2025-12-31",
    expires_at=1767225600.0,
    issued_at=1735689600.5,
    status=Status.VALID,
    status_changed_at=1735689600.5,
    superseded_by=None,
    version=1,
)
# A platform seal's answer to a verification request: data owner and endorsement set.
ENDORSED = dataclasses.replace(
    BASE,
    unit_name="某市大数据中心",
    unit_code="12430900MB0000000P",
    data_owner="11430900MB1234567X",
    extracting_unit="某市人民法院",
    verifying_unit="某市公安局某分局",
)


def status_for(code: str, **changes: Any) -> ProofStatus:
    """A status of its own for ``code``: the code is also in other fields, so a value
    handed to the wrong caller cannot be mistaken for the right one."""
    return dataclasses.replace(
        BASE, code=code, seal_id=f"seal-{code}", holder_id_masked=f"id-{code}", **changes
    )


_text = st.text(max_size=40)
_time = st.floats(allow_nan=False)

statuses = st.builds(
    ProofStatus,
    code=_text,
    seal_id=_text,
    unit_name=_text,
    unit_code=_text,
    type=_text,
    holder_kind=_text,
    holder_name_masked=_text,
    holder_id_masked=_text,
    valid_from=_text,
    valid_until=st.none() | _text,
    expires_at=st.none() | _time,
    issued_at=_time,
    status=st.sampled_from(Status),
    status_changed_at=_time,
    superseded_by=st.none() | _text,
    version=st.integers(min_value=-(2**63), max_value=2**64 - 1),
    data_owner=st.none() | _text,
    extracting_unit=st.none() | _text,
    verifying_unit=st.none() | _text,
)


# What a registry can actually hold: text without lone surrogates, times a calendar shows.
_stored_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
_stored_time = st.floats(min_value=0, max_value=4e9)
stored_statuses = st.builds(
    ProofStatus,
    code=_stored_text,
    seal_id=_stored_text,
    unit_name=_stored_text,
    unit_code=_stored_text,
    type=_stored_text,
    holder_kind=_stored_text,
    holder_name_masked=_stored_text,
    holder_id_masked=_stored_text,
    valid_from=_stored_text,
    valid_until=st.none() | _stored_text,
    expires_at=st.none() | _stored_time,
    issued_at=_stored_time,
    status=st.sampled_from(Status),
    status_changed_at=_stored_time,
    superseded_by=st.none() | _stored_text,
    version=st.integers(min_value=0, max_value=2**63),
    data_owner=st.none() | _stored_text,
    extracting_unit=st.none() | _stored_text,
    verifying_unit=st.none() | _stored_text,
)
