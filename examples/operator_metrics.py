"""An operator reads a gateway's readiness and /metrics: answers by route and status.

    python examples/operator_metrics.py [--url http://127.0.0.1:8080]

No token: /readyz and /metrics are open (keep them on an operators' network). Exit status
1 when the gateway is not ready.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import sys

from sealgate.client import Client, ClientError

# One sample of the Prometheus text format: name{labels} value
_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][\w:]*)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """The samples of metric ``name`` in Prometheus exposition ``text``."""
    found = []
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and match["name"] == name:
            labels = dict(_LABEL.findall(match["labels"] or ""))
            found.append((labels, float(match["value"])))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("SEALGATE_URL", "http://127.0.0.1:8080"))
    args = parser.parse_args()
    with Client(args.url) as gateway:
        readiness = gateway.ready()
        text = gateway.metrics()
    print("ready" if readiness.ready else "NOT READY")
    for check, state in sorted(readiness.checks.items()):
        print(f"  {check:<12} {state}")
    answers: collections.Counter[tuple[str, str]] = collections.Counter()
    for labels, value in samples(text, "sealgate_requests_total"):
        answers[labels.get("route", "?"), labels.get("status", "?")] += int(value)
    print("answers by route and status:")
    for (route, status), count in sorted(answers.items()):
        print(f"  {count:>8}  {status}  {route}")
    return 0 if readiness.ready else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ClientError as exc:
        sys.exit(f"sealgate: {exc}")
