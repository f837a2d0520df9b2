"""The command line's root duties: the city root's PIN (a file or a prompt, never kept),
``seal revoke``, ``seal purge`` and ``crl issue`` (docs/design.md §7.2).
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import sys
from pathlib import Path

from sealgate.gateway.cli_audit import CliError, audit_ahead, audit_outcome
from sealgate.gateway.home import Settings
from sealgate.gateway.provision import Provisioner
from sealgate.gateway.revoking import issue_crl, purge_retired_keys, revoke_seal
from sealgate.verify.directory import RevocationReason
from sealgate.verify.validity import BadInstant, instant

ROOT_PIN_HELP = "a file holding the city root's PIN (default: ask for it); the PIN is never kept"


def add_root_pin(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root-pin-file", type=Path, metavar="FILE", help=ROOT_PIN_HELP)


def add_root_commands(
    seal: argparse._SubParsersAction[argparse.ArgumentParser],
    home: argparse.ArgumentParser,
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """``seal revoke``, ``seal purge`` and ``crl issue``."""
    revoke = seal.add_parser(
        "revoke", parents=[home], help="revoke a seal's certificates and issue the CRL saying so"
    )
    revoke.add_argument("seal", metavar="SEAL")
    revoke.add_argument(
        "--reason",
        choices=[r.value for r in RevocationReason],
        default=RevocationReason.UNSPECIFIED.value,
        help="RFC 5280 reason (keyCompromise, unspecified: proofs stand only if a trusted"
        " time puts them before --since)",
    )
    revoke.add_argument(
        "--since",
        metavar="TIME",
        help="when the key is known or feared compromised (RFC 3339; a date is its first"
        " moment in China time): the CRL's invalidityDate; default: now",
    )
    revoke.add_argument(
        "--version", type=int, help="revoke only this key version (default: every one)"
    )
    add_root_pin(revoke)
    seal.add_parser(
        "purge",
        parents=[home],
        help="destroy in the token the retired keys whose grace period has passed",
    )
    crl = sub.add_parser("crl", parents=[home], help="the city root's CRL").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    issue = crl.add_parser(
        "issue", parents=[home], help="issue a new CRL (before the current one's next update)"
    )
    add_root_pin(issue)


def root_pin(args: argparse.Namespace, *, backend: str, confirm: bool = False) -> str | None:
    """The root's PIN from ``--root-pin-file``, else typed at a terminal (twice for a new
    one). Refused without a terminal: nothing may wait on a prompt no one sees. The
    development-only soft backend keeps the root's key in a file and needs none."""
    path: Path | None = getattr(args, "root_pin_file", None)
    if path is None and backend == "soft":
        return None
    if path is not None:
        try:
            pin = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise CliError(f"cannot read {path}: {exc.strerror}") from None
        if not pin:
            raise CliError(f"{path} holds no PIN")
        return pin
    if not sys.stdin.isatty():
        raise CliError("the city root's PIN is needed: give --root-pin-file FILE")
    pin = getpass.getpass("city root PIN: ")
    if confirm and getpass.getpass("city root PIN again: ") != pin:
        raise CliError("the two PINs differ")
    return pin


def run_root_command(args: argparse.Namespace, settings: Settings) -> int:
    """``seal revoke``, ``seal purge`` or ``crl issue``."""
    trail = settings.audit_path
    if args.command == "crl":
        provisioner = Provisioner(settings, root_pin=root_pin(args, backend=settings.backend))
        directory = provisioner.directory()
        try:
            audit_ahead(trail, "crl-issue")("crl")
            crl = issue_crl(provisioner, directory)
        finally:
            directory.close()
        audit_outcome(trail, "crl-issue", "crl", number=crl.number)
        print(f"crl\t{crl.number}\tnext update {_when(crl.next_update)}")
        return 0
    if args.action == "purge":
        provisioner = Provisioner(settings)
        directory = provisioner.directory()
        try:
            with provisioner.keystore() as keystore:
                destroyed = purge_retired_keys(keystore, directory)
        finally:
            directory.close()
        for key in destroyed:
            audit_outcome(trail, "seal-key-destroy", key.seal_id, version=key.version)
            print(f"destroyed\t{key.seal_id}\tv{key.version}")
        return 0
    since = None
    if args.since is not None:
        try:
            since = instant(args.since, False)
        except BadInstant as exc:
            raise CliError(f"--since {exc}") from None
    provisioner = Provisioner(settings, root_pin=root_pin(args, backend=settings.backend))
    directory = provisioner.directory()
    reason = RevocationReason(args.reason)
    try:
        audit_ahead(trail, "seal-revoke", reason=reason.value)(args.seal)
        revoked, crl = revoke_seal(
            provisioner, directory, args.seal, reason=reason, since=since, version=args.version
        )
    finally:
        directory.close()
    versions = [key.version for key in revoked]
    audit_outcome(trail, "seal-revoke", args.seal, reason=reason.value, versions=versions)
    for key in revoked:
        print(f"revoked\t{key.seal_id}\tv{key.version}\t{reason.value}")
    print(f"crl\t{crl.number}\tnext update {_when(crl.next_update)}")
    return 0


def _when(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="seconds")
