"""The command line's changes to the directory: clients, their limits, seals, the gateway's
keys, the trust document. Each is audited ahead and after
(:class:`~sealgate.gateway.cli_audit.CliAudit`), by the operator it names, and signed by
the checkpoint the command makes as it ends.
"""

from __future__ import annotations

import argparse

from sealgate.crypto.key_trust import b64url
from sealgate.errors import Error
from sealgate.gateway import administration
from sealgate.gateway.administration import Grants, InvalidChange
from sealgate.gateway.attestation import create_gateway_keys
from sealgate.gateway.cli_audit import CliAudit, CliError, add_operator
from sealgate.gateway.provision import Provisioner
from sealgate.hsm.keystore import KeyAlgorithm, Keystore
from sealgate.verify.directory import Directory, Role, SealKind, SealScope


def add_client_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], home: argparse.ArgumentParser
) -> None:
    """``client add|list|remove|set-grants|set-limits``."""
    client = sub.add_parser("client", parents=[home], help="manage API clients").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    add = client.add_parser("add", parents=[home], help="add a client; prints its token once")
    add.add_argument("--name", required=True)
    grants = client.add_parser(
        "set-grants",
        parents=[home],
        help="replace a client's role, seals, purposes and office (in force at once with Redis,"
        " else within 10 s)",
    )
    grants.add_argument("client", metavar="CLIENT")
    for parser in (add, grants):
        parser.add_argument("--role", required=True, choices=[r.value for r in Role])
        parser.add_argument("--seal", action="append", default=[], help="a seal a signer may use")
        parser.add_argument(
            "--purpose",
            action="append",
            default=[],
            help="a purpose a verifier may check codes for",
        )
        parser.add_argument(
            "--office",
            help="the office (its 统一社会信用代码) of an issuer, a requester, or a signer that"
            " answers the requests addressed to it",
        )
        add_operator(parser)
    client.add_parser("list", parents=[home], help="list clients")
    remove = client.add_parser(
        "remove",
        parents=[home],
        help="remove a client: its token stops working at once with Redis, else within 10 s",
    )
    remove.add_argument("client", metavar="CLIENT")
    add_operator(remove)
    limits = client.add_parser(
        "set-limits",
        parents=[home],
        help="a client's own limit on failed lookups (at once with Redis, else within 10 s)",
    )
    limits.add_argument("client", metavar="CLIENT")
    limits.add_argument(
        "--failed-lookups", type=int, metavar="N", help="failed lookups allowed in a window"
    )
    limits.add_argument(
        "--window",
        type=float,
        default=administration.DEFAULT_LIMIT_WINDOW,
        metavar="SECONDS",
        help=f"(default {administration.DEFAULT_LIMIT_WINDOW:g})",
    )
    limits.add_argument("--default", action="store_true", help="back to the city's limit")
    add_operator(limits)


def provision(
    args: argparse.Namespace,
    provisioner: Provisioner,
    directory: Directory,
    keystore: Keystore,
    audit: CliAudit,
) -> int:
    """The change ``args`` ask for; its records are signed by the caller afterwards."""
    if args.command == "gateway-keys":
        audit.ahead("gateway-keys")("gateway")
        keys = create_gateway_keys(keystore, provisioner.settings.home)
        audit.outcome("gateway-keys", "gateway")
        for use, label in sorted(keys.labels.items()):
            print(f"{use}\t{label}\t{b64url(keys.kids[use])}")
        return publish_after(audit, provisioner, directory)  # the keys, signed by the root
    if args.command == "client":
        return _client(args, directory, audit)
    if args.command == "trust":
        audit.ahead("trust-publish")("trust")
        version = provisioner.publish_trust(directory)  # in the root's own token, its PIN
        audit.outcome("trust-publish", "trust", version=version)
        print(f"trust document\tversion {version}")
        return 0
    if args.action == "create":
        seal = provisioner.create_seal(
            keystore,
            directory,
            unit_name=args.unit_name.strip(),
            unit_code=args.unit_code.strip().upper(),
            kind=SealKind(args.kind),
            scope=SealScope.PLATFORM if args.platform else SealScope.UNIT,
            algorithm=KeyAlgorithm(args.algorithm),
            ahead=audit.ahead("seal-create", kind=args.kind),
        )
        audit.outcome("seal-create", seal.seal_id, kind=seal.kind.value)
        print(f"seal\t{seal.seal_id}\t{seal.kind.value}")
        return publish_after(audit, provisioner, directory)
    key = provisioner.rotate_seal(
        keystore,
        directory,
        args.seal,
        KeyAlgorithm(args.algorithm),
        ahead=audit.ahead("seal-rotate"),
        grace=args.grace,
    )
    audit.outcome("seal-rotate", key.seal_id, version=key.version, key=key.key_label)
    print(f"seal\t{key.seal_id}\tv{key.version}")
    return publish_after(audit, provisioner, directory)


_FLAGS = {"seals": "--seal", "purposes": "--purpose", "failed_lookups": "--failed-lookups"}


def _client(args: argparse.Namespace, directory: Directory, audit: CliAudit) -> int:
    """``client add|remove|set-grants|set-limits``: the changes the admin's HTTP routes
    make too, checked by the same operations."""
    try:
        return _client_change(args, directory, audit)
    except InvalidChange as exc:
        raise CliError(f"{_FLAGS.get(exc.field, '--' + exc.field)}: {exc}") from None


def _client_change(args: argparse.Namespace, directory: Directory, audit: CliAudit) -> int:
    if args.action == "remove":
        audit.make(administration.remove_client(args.client), directory)
        print(f"removed\t{args.client}")
        return 0
    if args.action == "set-limits":
        if args.default == (args.failed_lookups is not None):
            raise CliError("give --failed-lookups N [--window SECONDS], or --default")
        limit = None
        if not args.default:
            limit = administration.lookup_limit(args.failed_lookups, args.window)
        change = administration.set_limits(args.client, limit)
        audit.make(change, directory)
        print(f"limits\t{args.client}\tfailed lookups {change.detail['failed_lookups']}")
        return 0
    grants = Grants.checked(
        directory,
        role=Role(args.role),
        seals=args.seal,
        purposes=args.purpose,
        office=args.office,
    )
    if args.action == "set-grants":
        audit.make(administration.set_grants(args.client, grants), directory)
        print(f"grants\t{args.client}\t{grants.role.value}")
        return 0
    change, client, token = administration.add_client(args.name, grants)
    audit.make(change, directory)
    print(f"{client.role.value}\t{client.client_id}\t{token}")
    return 0


def publish_after(audit: CliAudit, provisioner: Provisioner, directory: Directory) -> int:
    """A change to the seal keys publishes the next trust document, signed in the root's
    token; if that fails, the change stands and the operator is told how to publish
    (exit 1)."""
    try:
        audit.ahead("trust-publish")("trust")
        version = provisioner.publish_trust(directory)
    except Error as exc:
        raise CliError(
            f"done, but the trust document was not published ({exc}): run 'sealgate trust publish'"
        ) from None
    audit.outcome("trust-publish", "trust", version=version)
    return 0
