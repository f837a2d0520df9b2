"""``sealgate audit verify`` and ``sealgate audit query``: the trail checked, and read.

``verify`` fails closed: a trail with records and no checkpoint, or with no signed head
beside it, is BROKEN unless the operator says to check what is there
(``--no-checkpoints``, ``--no-head``); ``--against SINK`` also requires every head the
instance pushed to its append-only sink (:mod:`sealgate.gateway.audit_sink`).

``query`` reads the trails of several instances (each keeps its own; an operator copies
or mounts them) and merges their records in time order, as tab-separated lines or CSV.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import heapq
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from sealgate.gateway.audit import unsigned_limit
from sealgate.gateway.audit_sink import HeadSink, SinkError, instance_name
from sealgate.gateway.audit_store import read_records, unchained_journal_bytes
from sealgate.gateway.cli_audit import CliError
from sealgate.verify.audit import AuditError, SignedHead, TrailBroken, TrailSummary, verify_trail
from sealgate.verify.code import MalformedCode, parse_code

CHINA = dt.timezone(dt.timedelta(hours=8))
QUERY_COLUMNS = (
    "at",
    "trail",
    "seq",
    "action",
    "client",
    "role",
    "purpose",
    "code",
    "result",
    "request",
    "detail",
)


def add_audit_commands(sub: argparse._SubParsersAction, home: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    audit = sub.add_parser("audit", parents=[home], help="the audit trail").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    verify = audit.add_parser(
        "verify", parents=[home], help="check the trail's chain, checkpoints and signed head"
    )
    verify.add_argument("--trail", type=Path, help="the audit store (default: the home's)")
    verify.add_argument("--head", type=Path, help="the signed head (default: the home's)")
    verify.add_argument(
        "--no-head",
        action="store_true",
        help="check a trail that has no signed head beside it (a cut-off end goes unnoticed)",
    )
    verify.add_argument(
        "--no-checkpoints",
        action="store_true",
        help="check a trail that holds no checkpoint (all of it could have been rewritten)",
    )
    verify.add_argument(
        "--against",
        metavar="SINK",
        help="also require every head this instance pushed to its append-only sink"
        " (redis://USER@HOST:PORT/DB, as the audit_sink setting)",
    )
    verify.add_argument("--key", type=Path, help="the audit key, PEM (default: the home's)")
    verify.add_argument(
        "--max-unsigned-age",
        type=float,
        default=unsigned_limit(),
        metavar="SECONDS",
        help="fail if a record no signed checkpoint covers is older than this (default:"
        f" {unsigned_limit():g}, two checkpoint intervals and a round of the gateway's duties)",
    )
    verify.add_argument(
        "--max-unsigned-records",
        type=int,
        metavar="N",
        help="fail if more than N records are covered by no signed checkpoint (default: no"
        " limit on their number, only on their age)",
    )
    query = audit.add_parser(
        "query", parents=[home], help="records of one or more trails, merged in time order"
    )
    query.add_argument(
        "--trail",
        type=Path,
        action="append",
        default=[],
        help="an instance's audit store, once per instance (default: the home's)",
    )
    query.add_argument("--code", help="records of this verification code (as typed anywhere)")
    query.add_argument("--client", help="records of this client id (cli:NAME for an operator)")
    query.add_argument("--from", dest="since", help="from this time on (RFC 3339, or a date)")
    query.add_argument("--to", dest="until", help="before this time (RFC 3339, or a date)")
    query.add_argument("--format", choices=("tsv", "csv"), default="tsv")


def audit_command(args: argparse.Namespace, home: Path) -> int:
    if args.action == "query":
        return audit_query(args, home)
    return audit_verify(args, home)


def _key_der(path: Path) -> bytes:
    try:
        public = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read the audit key {path}: {exc}") from None
    return public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _broken(message: str) -> int:
    print(f"BROKEN: {message}", file=sys.stderr)
    return 1


def audit_verify(args: argparse.Namespace, home: Path) -> int:
    trail: Path = args.trail or home / "audit.db"
    head_path: Path = args.head or home / "audit-head.json"
    key_der = _key_der(args.key or home / "audit-key.pem")
    if args.max_unsigned_age < 0 or (args.max_unsigned_records or 0) < 0:
        raise CliError("--max-unsigned-age and --max-unsigned-records cannot be negative")
    if not trail.exists():
        raise CliError(f"no audit trail at {trail}")
    try:
        head = SignedHead.from_json(head_path.read_bytes()) if head_path.exists() else None
    except AuditError as exc:
        return _broken(f"{head_path}: {exc}")
    pushed: list[SignedHead] = []
    if args.against:
        try:
            pushed = HeadSink(args.against, instance_name(key_der)).heads()
        except SinkError as exc:
            return _broken(str(exc))
    try:
        summary = verify_trail(read_records(trail), key_der, head, pushed)
    except TrailBroken as exc:
        return _broken(str(exc))
    except sqlite3.Error as exc:
        return _broken(f"the trail cannot be read: {exc}")
    if summary.records and not summary.checkpoints and not args.no_checkpoints:
        # Every gateway and every provisioning command signs what it wrote: a trail
        # without one checkpoint may have been rewritten whole from its first record.
        return _broken(
            f"{summary.records} records and no checkpoint: nothing shows they were not all"
            " rewritten (--no-checkpoints checks what is there)"
        )
    if head is None and summary.records and not args.no_head:
        return _broken(
            f"the signed head {head_path} is missing: a cut-off end cannot be ruled out"
            " (--no-head checks what is there)"
        )
    if head is None:
        print(
            "warning: no signed head: a cut-off end of the trail cannot be detected",
            file=sys.stderr,
        )
    if args.against and summary.records and not pushed:
        return _broken("the sink holds no head of this trail")
    line = (
        f"{summary.records} records\t{summary.checkpoints} checkpoints\t"
        f"signed head at {head.seq if head else '-'}\t{summary.unsigned} unsigned"
    )
    if args.against:
        line += f"\t{len(pushed)} heads in the sink"
    if unsigned := unsigned_tail(summary, args):
        print(f"UNSIGNED\t{line}")
        print(f"UNSIGNED: {unsigned}", file=sys.stderr)
        return 1
    print(f"OK\t{line}")
    if waiting := unchained_journal_bytes(trail):
        print(
            f"note: {waiting} bytes of records wait in the audit journal, not yet in the"
            " trail: the gateway's audit writer chains them (a stopped gateway's, when it"
            " next starts)",
            file=sys.stderr,
        )
    return 0


def unsigned_tail(summary: TrailSummary, args: argparse.Namespace) -> str | None:
    """What is wrong with the records no signed checkpoint covers, or ``None``: nothing
    proves them unaltered, so past the operator's bounds the trail does not pass."""
    if summary.unsigned == 0 or summary.oldest_unsigned_at is None:
        return None
    age = time.time() - summary.oldest_unsigned_at
    what = (
        f"{summary.unsigned} records after record {summary.covered_seq} are covered by no"
        f" signed checkpoint, the oldest written {age:.0f} s ago"
    )
    why = "the audit key has not signed since (a lost or reinitialised token?)"
    if age > args.max_unsigned_age:
        return f"{what}, more than --max-unsigned-age {args.max_unsigned_age:g}: {why}"
    if args.max_unsigned_records is not None and summary.unsigned > args.max_unsigned_records:
        return f"{what}, more than --max-unsigned-records {args.max_unsigned_records}: {why}"
    return None


def _instant(text: str | None, what: str) -> int | None:
    """``text`` as Unix milliseconds; a date alone is its first moment in China time."""
    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"{what}: not an RFC 3339 time or a date: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=CHINA)
    return round(moment.timestamp() * 1000)


def _compact(text: str | None) -> str | None:
    try:
        return None if text is None else parse_code(text).compact
    except MalformedCode:
        return None


Row = tuple[int, str, int, str, str, str, str | None, str | None, str, str, str]


def _rows(
    trail: Path, client: str | None, since: int | None, until: int | None, code: str | None
) -> Iterator[Row]:
    """One trail's matching records, by time (then ``seq``)."""
    conn = sqlite3.connect(f"file:{trail}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT at_ms, seq, action, client, role, purpose, code, result, request, detail"
            " FROM audit WHERE (? IS NULL OR client = ?) AND (? IS NULL OR at_ms >= ?)"
            " AND (? IS NULL OR at_ms < ?) ORDER BY at_ms, seq",
            (client, client, since, since, until, until),
        )
        for at_ms, seq, action, who, role, purpose, typed, result, request, detail in rows:
            if code is not None and _compact(typed) != code:
                continue
            yield (
                at_ms,
                str(trail),
                seq,
                action,
                who,
                role,
                purpose,
                typed,
                result,
                request,
                detail,
            )
    finally:
        conn.close()


def audit_query(args: argparse.Namespace, home: Path) -> int:
    trails: list[Path] = args.trail or [home / "audit.db"]
    for trail in trails:
        if not trail.exists():
            raise CliError(f"no audit trail at {trail}")
    code = None
    if args.code is not None:
        code = _compact(args.code)
        if code is None:
            raise CliError("--code is not a well-formed verification code")
    since, until = _instant(args.since, "--from"), _instant(args.until, "--to")
    merged = heapq.merge(
        *(_rows(t, args.client, since, until, code) for t in trails),
        key=lambda row: (row[0], row[1], row[2]),
    )
    writer = csv.writer(sys.stdout) if args.format == "csv" else None
    if writer is not None:
        writer.writerow(QUERY_COLUMNS)
    try:
        for row in merged:
            at = dt.datetime.fromtimestamp(row[0] / 1000, CHINA).isoformat(timespec="milliseconds")
            fields = [at, *("" if v is None else str(v) for v in row[1:])]
            if writer is not None:
                writer.writerow(fields)
            else:
                print("\t".join(f.replace("\t", " ").replace("\n", " ") for f in fields))
    except sqlite3.Error as exc:
        raise CliError(f"a trail cannot be read: {exc}") from None
    return 0
