"""An office's system seals a batch of proofs, then revokes one of them.

    SEALGATE_SIGNER_TOKEN=<signer token> SEALGATE_ISSUER_TOKEN=<issuer token> \
        python examples/office_batch.py SEAL_ID [--count 3] [--url http://127.0.0.1:8080]

The signer (the issuing system) seals the batch atomically, under one Idempotency-Key
(a retry after a lost answer returns the same proofs, never a second set); the issuer
(the office itself) revokes the first and reads back its history.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys

from sealgate.client import (
    Client,
    ClientError,
    Holder,
    HolderKind,
    ProofRequest,
    Status,
)

# Demo holders: identity numbers with a valid check character (GB 11643).
HOLDERS = [("11010519491231002X", "张三"), ("110105194912310038", "李四"),
           ("110105194912310054", "王五")]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("seal_id", help="a proof seal (电子证明专用章) granted to the signer")
    parser.add_argument("--count", type=int, default=3, choices=range(1, len(HOLDERS) + 1))
    parser.add_argument("--url", default=os.environ.get("SEALGATE_URL", "http://127.0.0.1:8080"))
    args = parser.parse_args()

    today = dt.date.today()
    proofs = [
        ProofRequest(
            seal_id=args.seal_id,
            type="无犯罪记录证明",
            holder=Holder(HolderKind.PERSON, holder_id, name),
            content={"结论": "经查询，未发现有犯罪记录"},
            valid_from=today.isoformat(),
            valid_until=(today + dt.timedelta(days=180)).isoformat(),
            # no endorsement: the gateway fills one only in a verification request's answer
        )
        for holder_id, name in HOLDERS[: args.count]
    ]
    with (
        Client(args.url, token=os.environ["SEALGATE_SIGNER_TOKEN"]) as signer,
        Client(args.url, token=os.environ["SEALGATE_ISSUER_TOKEN"]) as office,
    ):
        sealed = signer.seal_batch(proofs)
        for proof in sealed:
            print(f"sealed  {proof.code}  {proof.status.value}  {len(proof.document)} bytes")
        first = sealed[0].code
        history = office.change_status(first, Status.REVOKED, reason="发现错误，予以吊销")
        print(f"revoked {first}  now {history.status.value}")
        for change in history.changes:
            print(f"  {change.at:%Y-%m-%d %H:%M:%S}  {change.from_status.value} -> "
                  f"{change.to_status.value}  by {change.by}: {change.reason}")  # fmt: skip
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ClientError as exc:
        sys.exit(f"sealgate: {exc}")
