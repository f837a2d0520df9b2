"""The gateway's sealing figures: batches in windows alternating with the raw PKCS#11
sign rate, then one proof per request."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sealgate.bench.floor_windows import sign_floor
from sealgate.bench.population import Credentials, proof_request
from sealgate.bench.results import Report
from sealgate.bench.windows import Window, combined, measure, paired
from sealgate.bench.workspace import Workspace, step


@dataclass(frozen=True)
class BatchSealing:
    """The batches wrk sends (``body`` POSTed to the path in ``post``) and the gateway's
    windows of sealing them, for the peers' windows to alternate with."""

    post: Path
    body: Path
    windows: Callable[[int], Window]


def sealing_figures(
    workspace: Workspace, report: Report, pid: int, url: str, credentials: Credentials
) -> BatchSealing:
    """Seals in batches beside the sign floor, then one per request, into ``report``."""
    options = workspace.options
    signer = credentials.auth("signer")
    batch = workspace.out / "seal-batch.json"
    batch.write_text(
        json.dumps(
            {"items": [proof_request(credentials.proof_seal, i) for i in range(options.batch)]},
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    post = workspace.out / "post-path.txt"
    post.write_text("/v1/certificates\n", encoding="ascii")
    per_seal = options.batch

    def batches(index: int) -> Window:
        # 16 batches in flight: enough that the worker, its registry writer and the
        # signing process each always have one to work on (at 4 they wait on each
        # other: 3,595 against 4,253 seals/s measured back to back, 2026-12-01).
        return measure(
            pid,
            url,
            post,
            options,
            connections=16,
            body=batch,
            headers=signer,
            warmup=1.0 if index == 0 else 0.0,
            per=per_seal,
        )[1]

    step(f"gateway: sealing in batches of {per_seal} ({options.rounds} rounds with the floor)")
    paired(
        report,
        options.rounds,
        ("sign", "raw PKCS#11 sign", lambda: sign_floor(workspace)),
        ("seal_batch", f"seal, batches of {per_seal}", batches),
        unit="seals/s",
        floor_unit="signs/s",
    )

    step("gateway: sealing one proof per request")
    single = workspace.out / "seal-one.json"
    single.write_text(
        json.dumps(proof_request(credentials.proof_seal, 1), ensure_ascii=False),
        encoding="utf-8",
    )
    _, one_each = measure(
        pid, url, post, options, connections=32, body=single, headers=signer, warmup=1.0,
        seconds=options.seconds * 2,
    )  # fmt: skip
    report.add(combined("seal_single", "seal, one per request", [one_each], "seals/s"))
    return BatchSealing(post, batch, batches)
