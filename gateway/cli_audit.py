"""The command line's audit duties for provisioning: each step written to the trail ahead
of its effect, completed with its outcome, and signed by a checkpoint at once.

The operator is named on the command line (``--operator``), never taken from ``$USER``
(which says only which account ran the command). A change's records are signed before
the command ends, whether or not a gateway runs: a record the CLI wrote after the last
checkpoint could otherwise be deleted without trace.
"""

from __future__ import annotations

import argparse
import getpass
import sqlite3
import sys
import time
from pathlib import Path

from sealgate.errors import Error
from sealgate.gateway.administration import Change, plain_text, record_detail
from sealgate.gateway.announcements import announce_now
from sealgate.gateway.audit import AUDIT_KEY_LABEL, INTENT
from sealgate.gateway.audit_store import append, append_now, open_store, stored_head, write_head
from sealgate.gateway.home import HomeError, Settings
from sealgate.gateway.provision import Ahead
from sealgate.hsm.keystore import Keystore
from sealgate.verify.audit import (
    AuditEvent,
    SignedHead,
    checkpoint_digest,
    checkpoint_event,
    head_digest,
)
from sealgate.verify.directory import Directory
from sealgate.verify.sqlite_toolkit import write_transaction


class CliError(Error):
    """A failure to report in one line."""


def add_operator(parser: argparse.ArgumentParser) -> None:
    """``--operator``, required of every command that changes the directory."""
    parser.add_argument(
        "--operator",
        required=True,
        help="who makes this change (a person's name or staff number), for the audit trail",
    )


class CliAudit:
    """The trail of the home a provisioning command changes, and who changes it."""

    def __init__(self, settings: Settings, operator: str) -> None:
        try:
            self.operator = plain_text("--operator", operator, 64)
        except HomeError as exc:
            raise CliError(str(exc)) from None
        self.settings = settings
        self.trail = settings.audit_path
        self._wrote = False  # whether this command wrote a record (it then signs them)

    def ahead(self, action: str, **detail: object) -> Ahead:
        """What records a change's intent, committed to the trail before the directory is
        changed (a second database, or PostgreSQL: no one transaction holds both); if
        that fails the change is not made."""

        def ahead(subject: str) -> None:
            try:
                self._append(action, subject, detail, result=INTENT)
            except (sqlite3.Error, OSError) as exc:
                raise CliError(
                    f"the audit trail cannot be written ({type(exc).__name__}): nothing changed"
                ) from None

        return ahead

    def make(self, change: Change, directory: Directory) -> None:
        """A checked change (:mod:`sealgate.gateway.administration`): its intent
        recorded, the change made, its outcome recorded, and the change announced to
        serving gateways (:mod:`sealgate.gateway.announcements`)."""
        self.ahead(change.action, **change.detail)(change.subject)
        change.write(directory)
        self.outcome(change.action, change.subject, **change.detail)

    def outcome(self, action: str, subject: str, **detail: object) -> None:
        """The outcome of a change made: if the trail refuses it now, the change stands
        (its intent is recorded) and the operator is told. Announced to serving gateways
        whichever (:mod:`sealgate.gateway.announcements`)."""
        try:
            self._append(action, subject, detail)
        except (sqlite3.Error, OSError) as exc:
            print(
                f"sealgate: warning: {action} {subject} done, its intent is in the audit trail;"
                f" its outcome could not be recorded ({type(exc).__name__})",
                file=sys.stderr,
            )
        announce_now(self.settings.redis_url, action, subject)

    def _append(
        self, action: str, subject: str, detail: dict[str, object], *, result: str = "ok"
    ) -> None:
        """Operations' changes go into the same trail as the gateway's requests."""
        self._wrote = True  # before: a write that failed may still have reached the disk
        append_now(
            self.trail,
            [
                AuditEvent(
                    action=action,
                    client_id=f"cli:{self.operator}",
                    role="operator",
                    purpose=None,
                    code=None,
                    result=result,
                    request_id="",
                    at=time.time(),
                    # as the admin's HTTP routes record it (Change.record), and the
                    # account that ran it beside the person it names
                    detail={
                        **record_detail(subject, self.operator, detail),
                        "account": getpass.getuser(),
                    },
                )
            ],
        )

    def checkpoint(self, keystore: Keystore) -> None:
        """Sign the trail's head now, write the head file and push it to the sink. A
        failure is told, and the change stands: its records wait for the next checkpoint
        (a gateway's, or the next command's), and ``audit verify`` counts them unsigned."""
        if not self._wrote:  # refused before anything was recorded: nothing to sign
            return
        try:
            head = sign_checkpoint(self.trail, keystore)
            if head is not None:
                write_head(self.settings.audit_head_path, head)
                if (sink := self.settings.head_sink()) is not None:
                    sink.push(head)
        except (sqlite3.Error, OSError, Error) as exc:
            print(
                f"sealgate: warning: this command's audit records are not yet signed ({exc}):"
                " the next checkpoint signs them",
                file=sys.stderr,
            )


def sign_checkpoint(trail: Path, keystore: Keystore) -> SignedHead | None:
    """Sign the stored head with the audit key and append the checkpoint, in one write
    transaction (no record slips between the head read and its checkpoint)."""
    conn = open_store(trail)
    try:
        with write_transaction(conn):
            stored = stored_head(conn)
            if stored is None:
                return None
            seq, head_hash = stored
            signature = keystore.sign_digest(AUDIT_KEY_LABEL, checkpoint_digest(seq, head_hash))
            head_signature = keystore.sign_digest(AUDIT_KEY_LABEL, head_digest(seq, head_hash))
            append(
                conn, [checkpoint_event(seq, head_hash, signature, AUDIT_KEY_LABEL, time.time())]
            )
            return SignedHead(seq, head_hash, head_signature, AUDIT_KEY_LABEL)
    finally:
        conn.close()
