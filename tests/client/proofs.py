"""Proof requests the client tests seal."""

from __future__ import annotations

from sealgate.client import Holder, HolderKind, ProofRequest

HOLDER_ID = "11010519491231002X"
PROOF_TYPE = "无犯罪记录证明"


def proof(seal_id: str, n: int = 0, holder_id: str = HOLDER_ID) -> ProofRequest:
    return ProofRequest(
        seal_id=seal_id,
        type=PROOF_TYPE,
        holder=Holder(HolderKind.PERSON, holder_id, "张三"),
        content={"结论": "经查询，未发现有犯罪记录", "n": n},
        valid_from="2026-11-22",
        valid_until="2027-11-21",
        # no endorsement: a signer may not type one (422 endorsement-not-typed)
    )
