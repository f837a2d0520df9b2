"""The command line's audit duties: each provisioning step written to the trail ahead of
its effect and completed with its outcome, and ``sealgate audit verify``.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from sealgate.errors import Error
from sealgate.gateway.audit import INTENT
from sealgate.gateway.audit_store import append_now, read_records, unchained_journal_bytes
from sealgate.gateway.provision import Ahead
from sealgate.verify.audit import (
    AuditEvent,
    SignedHead,
    TrailBroken,
    TrailSummary,
    verify_trail,
)


class CliError(Error):
    """A failure to report in one line."""


def audit_ahead(trail: Path, action: str, **detail: object) -> Ahead:
    """What records a provisioning change's intent, committed to the trail before the
    directory is changed (a second database, or PostgreSQL: no one transaction holds
    both); if that fails the change is not made."""

    def ahead(subject: str) -> None:
        try:
            audit_cli(trail, action, subject, detail, result=INTENT)
        except (sqlite3.Error, OSError) as exc:
            raise CliError(
                f"the audit trail cannot be written ({type(exc).__name__}): nothing changed"
            ) from None

    return ahead


def audit_outcome(trail: Path, action: str, subject: str, **detail: object) -> None:
    """The outcome of a change made: if the trail refuses it now, the change stands
    (its intent is recorded) and the operator is told."""
    try:
        audit_cli(trail, action, subject, detail)
    except (sqlite3.Error, OSError) as exc:
        print(
            f"sealgate: warning: {action} {subject} done, its intent is in the audit trail;"
            f" its outcome could not be recorded ({type(exc).__name__})",
            file=sys.stderr,
        )


def audit_cli(
    trail: Path, action: str, subject: str, detail: dict[str, object], *, result: str = "ok"
) -> None:
    """Operations' changes go into the same trail as the gateway's requests."""
    operator = os.environ.get("SUDO_USER") or os.environ.get("USER") or "unknown"
    append_now(
        trail,
        [
            AuditEvent(
                action=action,
                client_id=f"cli:{operator}",
                role="operator",
                purpose=None,
                code=None,
                result=result,
                request_id="",
                at=time.time(),
                detail={"subject": subject, **detail},
            )
        ],
    )


def audit_verify(args: argparse.Namespace, home: Path) -> int:
    trail: Path = args.trail or home / "audit.db"
    head_path: Path = args.head or home / "audit-head.json"
    key_path: Path = args.key or home / "audit-key.pem"
    if args.max_unsigned_age < 0 or (args.max_unsigned_records or 0) < 0:
        raise CliError("--max-unsigned-age and --max-unsigned-records cannot be negative")
    if not trail.exists():
        raise CliError(f"no audit trail at {trail}")
    try:
        public = serialization.load_pem_public_key(key_path.read_bytes())
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read the audit key {key_path}: {exc}") from None
    key_der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    head = SignedHead.from_json(head_path.read_bytes()) if head_path.exists() else None
    try:
        summary = verify_trail(read_records(trail), key_der, head)
    except TrailBroken as exc:
        print(f"BROKEN: {exc}", file=sys.stderr)
        return 1
    except sqlite3.Error as exc:
        print(f"BROKEN: the trail cannot be read: {exc}", file=sys.stderr)
        return 1
    if head is None and summary.checkpoints and not args.no_head:
        # Every checkpoint also writes the head: its absence is itself a sign of tampering.
        print(
            f"BROKEN: the signed head {head_path} is missing, yet the trail holds"
            f" {summary.checkpoints} checkpoints: a cut-off end cannot be ruled out"
            " (--no-head checks what is there)",
            file=sys.stderr,
        )
        return 1
    if head is None:
        print(
            "warning: no signed head: a cut-off end of the trail cannot be detected",
            file=sys.stderr,
        )
    line = (
        f"{summary.records} records\t{summary.checkpoints} checkpoints\t"
        f"signed head at {head.seq if head else '-'}\t{summary.unsigned} unsigned"
    )
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
