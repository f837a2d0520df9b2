"""A bank checks a proof presented by a customer and matches it to the person in front
of the teller.

    SEALGATE_TOKEN=<verifier token> python examples/bank_check.py CODE ID_NUMBER NAME \
        --purpose demo [--url http://127.0.0.1:8080]

1. The code as the customer typed or read it is checked locally (a typo costs no request).
2. The gateway says its current status, the holder masked (张*, 1101**********002X);
   the customer's identity number and name must mask to the same.
3. The sealed proof is downloaded and checked offline against the city root, and the
   holder's full identity number in it compared with the one the teller has.

Exit status 0 when the proof is valid and the holder matches; nothing of the holder
beyond the gateway's masked forms is printed.
"""

from __future__ import annotations

import argparse
import os
import sys

from sealgate.client import (
    Client,
    ClientError,
    InvalidCode,
    Status,
    UnknownCode,
    normalise_holder_id,
    verify_offline,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("code", help="the unified verification code (统一认证码) as presented")
    parser.add_argument("holder_id", help="the customer's identity number, from their ID card")
    parser.add_argument("name", help="the customer's name")
    parser.add_argument("--purpose", required=True, help="the business, as granted to the bank")
    parser.add_argument("--url", default=os.environ.get("SEALGATE_URL", "http://127.0.0.1:8080"))
    args = parser.parse_args()

    with Client(args.url, token=os.environ["SEALGATE_TOKEN"]) as gateway:
        try:
            answer = gateway.verify(args.code, purpose=args.purpose)
        except InvalidCode as exc:
            print(f"mistyped code: {exc}; ask the customer to read it again")
            return 2
        except UnknownCode:
            print("no proof has this code")
            return 1
        print(f"{answer.code}  {answer.type}  {answer.status.value}")
        print(f"issued by {answer.issuer.unit_name}, holder {answer.holder.name}")
        if answer.status is not Status.VALID:
            print(f"not usable: the proof is {answer.status.value}")
            return 1
        if not answer.holder.could_be(args.holder_id, args.name):
            print("the holder does not match the person in front of you")
            return 1

        # The masked forms narrow it down; the sealed proof holds the full number.
        proof = verify_offline(gateway.document(answer.code, purpose=args.purpose), gateway.trust())
    if proof.holder_id != normalise_holder_id(args.holder_id):
        print("the holder does not match the person in front of you")
        return 1
    print(f"seal verified offline: {proof.unit_name}, signed {proof.signing_time:%Y-%m-%d}")
    print("OK: valid, and the holder matches")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ClientError as exc:
        sys.exit(f"sealgate: {exc}")
