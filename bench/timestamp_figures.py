"""What trusted time costs a seal: sealing with a TSA's timestamps (CAdES-B-T) against the
same sealing without (B-B), in windows alternating between two gateways on one home.

A development TSA (``sealgate tsa serve``, its key in its own SoftHSM2 token) runs beside
them on this machine; its CPU is counted as a part of each timestamped seal, since a city's
TSA does that work too (elsewhere). Run by ``sealgate bench capacity --timestamps``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from sealgate.bench.options import Options
from sealgate.bench.processes import TSA
from sealgate.bench.results import Report
from sealgate.bench.tsa_server import TsaServer
from sealgate.bench.windows import Window, combined, measure, paired
from sealgate.bench.workspace import Workspace, step

__all__ = ["timestamp_figures"]

#: Batches in flight per gateway. Fewer than the batch figure's 16: each timestamped
#: batch waits on a hundred TSA round trips, and a window that ends leaves what is in
#: flight to finish during the next one (the other gateway's); 4 keep every process busy
#: and that overlap under half a second.
BATCH_CONNECTIONS = 4


def timestamp_figures(
    workspace: Workspace, report: Report, redis_url: str, signer: dict[str, str]
) -> None:
    """Batches and single sealings, timestamped and not, into ``report``. Uses the sealing
    bodies :func:`sealgate.bench.sealing_figures.sealing_figures` wrote."""
    options = workspace.options
    post = workspace.out / "post-path.txt"
    batch, single = workspace.out / "seal-batch.json", workspace.out / "seal-one.json"
    with TsaServer(workspace.out / "tsa" / "home") as tsa:
        tsa.trusted_by(workspace.home)
        stamped_env = {"SEALGATE_TSA_URL": tsa.url}
        assert tsa.pid is not None
        beside = {TSA: tsa.pid}
        with (
            workspace.gateway(redis_url, label="gateway-b-b") as plain,
            workspace.gateway(redis_url, label="gateway-b-t", env=stamped_env) as stamped,
        ):
            step(
                f"gateway: sealing in batches of {options.batch}, without and with timestamps"
                f" ({options.rounds} rounds)"
            )

            def batches(
                gateway: tuple[str, int], tsa_part: Mapping[str, int]
            ) -> Callable[[int], Window]:
                url, pid = gateway
                windows = 0

                def window(index: int) -> Window:
                    nonlocal windows
                    windows += 1
                    return _seal(
                        pid, url, post, batch, options, signer, BATCH_CONNECTIONS,
                        windows == 1, options.batch, tsa_part,
                    )  # fmt: skip

                return window

            plain_batches = batches(plain, {})
            paired(
                report,
                options.rounds,
                (
                    "seal_batch_untimestamped",
                    "seal, batches, no timestamps (B-B)",
                    lambda: plain_batches(0),
                ),
                (
                    "seal_batch_timestamped",
                    "seal, batches, timestamped (B-T)",
                    batches(stamped, beside),
                ),
                unit="seals/s",
                floor_unit="seals/s",
            )
            step("gateway: sealing one proof per request, without and with timestamps")
            for name, what, (url, pid), part in (
                (
                    "seal_single_untimestamped",
                    "seal, one per request, no timestamps (B-B)",
                    plain,
                    {},
                ),
                (
                    "seal_single_timestamped",
                    "seal, one per request, timestamped (B-T)",
                    stamped,
                    beside,
                ),
            ):
                window = _seal(pid, url, post, single, options, signer, 32, True, 1, part)
                report.add(combined(name, what, [window], "seals/s"))
    report.notes.append(_cost_note(report))


def _seal(
    pid: int,
    url: str,
    post: Path,
    body: Path,
    options: Options,
    signer: dict[str, str],
    connections: int,
    first: bool,
    per: int,
    beside: Mapping[str, int],
) -> Window:
    return measure(
        pid,
        url,
        post,
        options,
        connections=connections,
        body=body,
        headers=signer,
        warmup=2.0 if first else 0.0,
        per=per,
        beside=beside,
    )[1]


def _cost_note(report: Report) -> str:
    """What a timestamp adds to a seal, in CPU-µs: in the gateway, and in the TSA."""
    parts = []
    for kind in ("batch", "single"):
        plain = report.measurements[f"seal_{kind}_untimestamped"]
        stamped = report.measurements[f"seal_{kind}_timestamped"]
        if plain.cpu_us is None or stamped.cpu_us is None:  # pragma: no cover - measured
            continue
        tsa_us = stamped.cpu_parts.get(TSA, 0.0)
        gateway_us = stamped.cpu_us - tsa_us
        parts.append(
            f"{'batches' if kind == 'batch' else 'one per request'}: {plain.cpu_us:.0f} CPU-µs a"
            f" seal without, {gateway_us:.0f} with ({gateway_us - plain.cpu_us:+.0f}) in the"
            f" gateway, plus {tsa_us:.0f} in the TSA; {plain.rate:,.0f} against"
            f" {stamped.rate:,.0f} seals/s"
        )
    return "Timestamps (CAdES-B-T, a development TSA on this machine): " + "; ".join(parts) + "."
