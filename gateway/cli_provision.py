"""The command line's changes to the directory: clients, their limits, seals, the gateway's
keys, the trust document. Each is audited ahead and after
(:class:`~sealgate.gateway.cli_audit.CliAudit`), by the operator it names, and signed by
the checkpoint the command makes as it ends.
"""

from __future__ import annotations

import argparse

from sealgate.crypto.key_trust import b64url
from sealgate.errors import Error
from sealgate.gateway.attestation import create_gateway_keys
from sealgate.gateway.cli_audit import CliAudit, CliError
from sealgate.gateway.provision import Provisioner
from sealgate.hsm.keystore import KeyAlgorithm, Keystore
from sealgate.verify.directory import Directory, LookupLimit, Role, SealKind, SealScope


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
    if args.command == "client" and args.action == "remove":
        audit.ahead("client-remove")(args.client)
        directory.remove_client(args.client)
        audit.outcome("client-remove", args.client)
        print(f"removed\t{args.client}")
        return 0
    if args.command == "client" and args.action == "set-limits":
        if args.default == (args.failed_lookups is not None):
            raise CliError("give --failed-lookups N [--window SECONDS], or --default")
        try:
            limit = None if args.default else LookupLimit(args.failed_lookups, args.window)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        shown = "default" if limit is None else f"{limit.failures}/{limit.window_seconds:g}s"
        audit.ahead("client-set-limits", failed_lookups=shown)(args.client)
        directory.set_lookup_limit(args.client, limit)
        audit.outcome("client-set-limits", args.client, failed_lookups=shown)
        print(f"limits\t{args.client}\tfailed lookups {shown}")
        return 0
    if args.command == "client" and args.action == "add":
        client, token = provisioner.add_client(
            directory,
            name=args.name,
            role=Role(args.role),
            seals=args.seal,
            purposes=args.purpose,
            office=args.office,
            ahead=audit.ahead("client-add", role=args.role),
        )
        audit.outcome("client-add", client.client_id, role=client.role.value)
        print(f"{client.role.value}\t{client.client_id}\t{token}")
        return 0
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
