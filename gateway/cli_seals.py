"""The command line's seal commands: ``seal list|create|rotate|revoke|purge`` and ``crl
issue``, with the city root's PIN (a file or a prompt, never kept) for those that need the
root (docs/design.md §7.2, §13).
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import sys
from pathlib import Path

from sealgate.crypto.assessment import RevocationCheck
from sealgate.crypto.certificates import certificate_validity
from sealgate.crypto.errors import ProofError
from sealgate.crypto.revocation import Revocations, revocation_check
from sealgate.crypto.verification import TrustList
from sealgate.errors import Error
from sealgate.gateway.cli_audit import CliError, audit_ahead, audit_outcome
from sealgate.gateway.home import Settings
from sealgate.gateway.provision import Provisioner
from sealgate.gateway.revoking import issue_crl, purge_retired_keys, revoke_seal
from sealgate.gateway.trust_publication import publish_trust_document, root_signer
from sealgate.hsm.keystore import KeyAlgorithm
from sealgate.verify.directory import (
    Directory,
    RevocationReason,
    SealKey,
    SealKind,
    SealScope,
)
from sealgate.verify.validity import BadInstant, instant

ROOT_PIN_HELP = "a file holding the city root's PIN (default: ask for it); the PIN is never kept"


def add_root_pin(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root-pin-file", type=Path, metavar="FILE", help=ROOT_PIN_HELP)


def add_seal_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], home: argparse.ArgumentParser
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """``seal create|list|rotate|revoke|purge`` and ``crl issue``; returns the ``seal``
    subcommands, for others to add theirs."""
    seal = sub.add_parser("seal", parents=[home], help="manage seals").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    create = seal.add_parser("create", parents=[home], help="create a seal and its key")
    create.add_argument("--unit-name", required=True, help="the office's name")
    create.add_argument("--unit-code", required=True, help="the office's 统一社会信用代码")
    create.add_argument(
        "--kind",
        required=True,
        choices=[k.value for k in SealKind],
        help="proof: 电子证明专用章; verification: 查询核验专用章",
    )
    create.add_argument(
        "--algorithm", default=KeyAlgorithm.EC_P256.value, choices=[a.value for a in KeyAlgorithm]
    )
    create.add_argument(
        "--platform",
        action="store_true",
        help="the city's seal (unit: the platform), used by the signers granted it; the"
        " data-owning office of each proof is the signer's --office",
    )
    add_root_pin(create)
    seal.add_parser("list", parents=[home], help="list seals and their key versions")
    rotate = seal.add_parser("rotate", parents=[home], help="give a seal a new key")
    rotate.add_argument("seal", metavar="SEAL")
    rotate.add_argument(
        "--algorithm", default=KeyAlgorithm.EC_P256.value, choices=[a.value for a in KeyAlgorithm]
    )
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
    return seal


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


def run_seal_command(args: argparse.Namespace, settings: Settings) -> int:
    """``seal list|create|rotate|revoke|purge``, ``crl issue`` or ``trust publish``."""
    trail = settings.audit_path
    if args.command == "seal" and args.action in ("list", "create", "rotate"):
        return _seal_list_create_rotate(args, settings)
    if args.command == "trust":
        provisioner = Provisioner(settings, root_pin=root_pin(args, backend=settings.backend))
        directory = provisioner.directory()
        try:
            _publish(trail, provisioner, directory, after=None)
        finally:
            directory.close()
        return 0
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
        versions = [key.version for key in revoked]
        audit_outcome(trail, "seal-revoke", args.seal, reason=reason.value, versions=versions)
        for key in revoked:
            print(f"revoked\t{key.seal_id}\tv{key.version}\t{reason.value}")
        print(f"crl\t{crl.number}\tnext update {_when(crl.next_update)}")
        return _publish(trail, provisioner, directory, after="the revocation")
    finally:
        directory.close()


def _publish(
    trail: Path, provisioner: Provisioner, directory: Directory, *, after: str | None
) -> int:
    """The next trust document, signed in the root's token. ``after``: the change to the
    seal keys that calls for it; if publishing then fails, that change stands and the
    operator is told how to publish (exit 1)."""
    try:
        audit_ahead(trail, "trust-publish")("trust")
        with provisioner.root_keystore() as root:
            version = publish_trust_document(directory, root_signer(root, directory))
    except Error as exc:
        if after is None:
            raise
        raise CliError(
            f"{after} is done, but the trust document was not published ({exc}):"
            " run 'sealgate trust publish'"
        ) from None
    audit_outcome(trail, "trust-publish", "trust", version=version)
    if after is None:  # 'trust publish' itself; after a change, its own line says it all
        print(f"trust document\tversion {version}")
    return 0


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


def _seal_list_create_rotate(args: argparse.Namespace, settings: Settings) -> int:
    trail = settings.audit_path
    needs_root = args.action in ("create", "rotate")
    pin = root_pin(args, backend=settings.backend) if needs_root else None
    provisioner = Provisioner(settings, root_pin=pin)
    directory = provisioner.directory()
    try:
        if args.action == "list":
            for seal in directory.seals():
                for key in seal.keys:
                    ends = certificate_validity(key.certificate)[1]
                    columns = (seal.seal_id, seal.kind.value, seal.unit_name, seal.unit_code)
                    state = (f"v{key.version}", key.state.value, f"until {ends:%Y-%m-%d}")
                    print("\t".join((*columns, *state, *_key_events(key))))
            return 0
        with provisioner.keystore() as keystore:
            if args.action == "create":
                seal = provisioner.create_seal(
                    keystore,
                    directory,
                    unit_name=args.unit_name.strip(),
                    unit_code=args.unit_code.strip().upper(),
                    kind=SealKind(args.kind),
                    scope=SealScope.PLATFORM if args.platform else SealScope.UNIT,
                    algorithm=KeyAlgorithm(args.algorithm),
                    ahead=audit_ahead(trail, "seal-create", kind=args.kind),
                )
                audit_outcome(trail, "seal-create", seal.seal_id, kind=seal.kind.value)
                print(f"seal\t{seal.seal_id}\t{seal.kind.value}")
                return _publish(trail, provisioner, directory, after="the seal's creation")
            key = provisioner.rotate_seal(
                keystore,
                directory,
                args.seal,
                KeyAlgorithm(args.algorithm),
                ahead=audit_ahead(trail, "seal-rotate"),
                grace=args.grace,
            )
        audit_outcome(trail, "seal-rotate", key.seal_id, version=key.version, key=key.key_label)
        print(f"seal\t{key.seal_id}\tv{key.version}")
        return _publish(trail, provisioner, directory, after="the rotation")
    finally:
        directory.close()


def _key_events(key: SealKey) -> list[str]:
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
