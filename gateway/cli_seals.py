"""The command line's root duties: the city root's PIN (a file or a prompt, never kept),
``seal revoke``, ``seal purge``, ``crl issue``, and ``verify-file --crl``
(docs/design.md §7.2, §16).
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import sys
from pathlib import Path

from sealgate.crypto.assessment import RevocationCheck
from sealgate.crypto.errors import ProofError
from sealgate.crypto.revocation import Revocations, revocation_check
from sealgate.crypto.verification import TrustList
from sealgate.gateway.cli_audit import CliAudit, CliError, add_operator
from sealgate.gateway.cli_provision import publish_after
from sealgate.gateway.home import Settings
from sealgate.gateway.provision import Provisioner
from sealgate.gateway.revoking import issue_crl, purge_retired_keys, revoke_seal
from sealgate.verify.directory import Directory, RevocationReason, SealKey
from sealgate.verify.validity import BadInstant, instant

ROOT_PIN_HELP = "a file holding the city root's PIN (default: ask for it); the PIN is never kept"


def add_root_pin(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root-pin-file", type=Path, metavar="FILE", help=ROOT_PIN_HELP)


def add_root_options(init: argparse.ArgumentParser) -> None:
    """``init``'s: the root's own token and PIN, and where its CRL is published."""
    init.add_argument(
        "--root-token-label",
        help="the city root's own token (default: 'root-' + the token label); no gateway"
        " process opens it",
    )
    add_root_pin(init)
    init.add_argument(
        "--crl-url",
        help="where seal certificates say the CRL is published (default: the demo's"
        " http://127.0.0.1:8080/v1/crl); a city gives its gateway's public address",
    )


def add_revocation_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    seal: argparse._SubParsersAction[argparse.ArgumentParser],
    rotate: argparse.ArgumentParser,
    home: argparse.ArgumentParser,
) -> None:
    """``seal rotate --grace`` and the root PIN, ``seal revoke``, ``seal purge`` and ``crl
    issue``."""
    rotate.add_argument(
        "--grace",
        type=float,
        metavar="SECONDS",
        help="keep the retired key this long before destroying it (default: the city's"
        " retired_key_grace, 0: at once); 'seal purge' destroys it then",
    )
    add_root_pin(rotate)
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
    add_operator(revoke)
    add_operator(
        seal.add_parser(
            "purge",
            parents=[home],
            help="destroy in the token the retired keys whose grace period has passed",
        )
    )
    crl = sub.add_parser("crl", parents=[home], help="the city root's CRL").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    issue = crl.add_parser(
        "issue", parents=[home], help="issue a new CRL (before the current one's next update)"
    )
    add_root_pin(issue)
    add_operator(issue)


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


def run_revocation_command(args: argparse.Namespace, settings: Settings) -> int:
    """``seal revoke``, ``seal purge`` or ``crl issue``, audited by the operator named, the
    records signed by the audit key as the command ends."""
    audit = CliAudit(settings, args.operator)
    needs_root = args.command == "crl" or args.action == "revoke"
    pin = root_pin(args, backend=settings.backend) if needs_root else None
    provisioner = Provisioner(settings, root_pin=pin)
    directory = provisioner.directory()
    try:
        with provisioner.keystore() as keystore:
            try:
                if args.command == "crl":
                    audit.ahead("crl-issue")("crl")
                    crl = issue_crl(provisioner, directory)
                    audit.outcome("crl-issue", "crl", number=crl.number)
                    print(f"crl\t{crl.number}\tnext update {_when(crl.next_update)}")
                    return 0
                if args.action == "purge":
                    audit.ahead("seal-key-destroy")("retired keys")
                    for key in purge_retired_keys(keystore, directory):
                        audit.outcome("seal-key-destroy", key.seal_id, version=key.version)
                        print(f"destroyed\t{key.seal_id}\tv{key.version}")
                    return 0
                return _revoke(args, provisioner, directory, audit)
            finally:
                audit.checkpoint(keystore)
    finally:
        directory.close()


def _revoke(
    args: argparse.Namespace, provisioner: Provisioner, directory: Directory, audit: CliAudit
) -> int:
    since = None
    if args.since is not None:
        try:
            since = instant(args.since, False)
        except BadInstant as exc:
            raise CliError(f"--since {exc}") from None
    reason = RevocationReason(args.reason)
    audit.ahead("seal-revoke", reason=reason.value)(args.seal)
    revoked, crl = revoke_seal(
        provisioner, directory, args.seal, reason=reason, since=since, version=args.version
    )
    versions = [key.version for key in revoked]
    audit.outcome("seal-revoke", args.seal, reason=reason.value, versions=versions)
    for key in revoked:
        print(f"revoked\t{key.seal_id}\tv{key.version}\t{reason.value}")
    print(f"crl\t{crl.number}\tnext update {_when(crl.next_update)}")
    return publish_after(audit, provisioner, directory)


def crl_revocation(args: argparse.Namespace, home: Path) -> RevocationCheck | None:
    """``verify-file --crl FILE``: the seal's revocation judged by the root's CRL (read,
    and checked to be the trusted root's and current, here: a bad CRL is a usage error)."""
    if args.crl is None:
        return None
    trust_path: Path = args.trust or home / "root.pem"
    try:
        der = args.crl.read_bytes()
        trust = TrustList.from_pem(trust_path.read_bytes())
    except OSError as exc:
        raise CliError(f"cannot read {exc.filename}: {exc.strerror}") from None
    try:
        return revocation_check(Revocations.from_crl(der, trust))
    except ProofError as exc:
        raise CliError(f"--crl: {exc}") from None


def _when(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="seconds")


def key_events(key: SealKey) -> list[str]:
    """What happened to a key, for ``seal list``: retired, revoked, destroyed, when."""
    events = []
    for what, when in (
        ("retired", key.retired_at),
        (f"revoked {key.revocation_reason}", key.revoked_at),
        ("compromised since", key.invalid_since),
        ("destroyed", key.destroyed_at),
    ):
        if when is not None:
            events.append(f"{what} {_when(when)}")
    return events
