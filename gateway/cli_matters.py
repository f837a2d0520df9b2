"""``sealgate matter add|list|remove``: the city's table of matters (docs/design.md §17).

Each change names its operator and is audited ahead and after, like every provisioning
command; a matter is checked whole before anything is written.
"""

from __future__ import annotations

import argparse
import time

from sealgate.gateway.cli_audit import CliAudit, CliError, add_operator
from sealgate.verify.directory import Directory
from sealgate.verify.matters import InvalidMatter, new_matter


def add_matter_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], home: argparse.ArgumentParser
) -> None:
    matter = sub.add_parser(
        "matter", parents=[home], help="the city's table of matters (事项) purposes name"
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    add = matter.add_parser(
        "add",
        parents=[home],
        help="add a matter: a verifier granted it (--purpose) checks codes for it, and reads"
        " the content of the proof types given with --content",
    )
    add.add_argument("matter", metavar="MATTER", help="its id, as purposes name it")
    add.add_argument("--name", required=True, help="what the matter is called (事项名称)")
    add.add_argument(
        "--content",
        action="append",
        default=[],
        metavar="TYPE[=FIELD,...]",
        help="a proof type whose content it may read: every field, or those named",
    )
    add_operator(add)
    matter.add_parser("list", parents=[home], help="list the matters and what each reads")
    remove = matter.add_parser(
        "remove", parents=[home], help="remove a matter no client is granted"
    )
    remove.add_argument("matter", metavar="MATTER")
    add_operator(remove)


def list_matters(directory: Directory) -> int:
    for matter in directory.matters():
        print("\t".join((matter.matter_id, matter.name, matter.describe() or "(status only)")))
    return 0


def matter_command(args: argparse.Namespace, directory: Directory, audit: CliAudit) -> int:
    if args.action == "remove":
        # Refused before the intent is recorded; the store checks again in its transaction.
        if args.matter not in {m.matter_id for m in directory.matters()}:
            raise CliError(f"no matter {args.matter}")
        granted = sorted(c.client_id for c in directory.clients() if args.matter in c.purposes)
        if granted:
            raise CliError(
                f"matter {args.matter} is granted to {', '.join(granted)}: remove them first"
            )
        audit.ahead("matter-remove")(args.matter)
        directory.remove_matter(args.matter)
        audit.outcome("matter-remove", args.matter)
        print(f"removed\t{args.matter}")
        return 0
    try:
        matter = new_matter(args.matter, args.name, args.content, time.time())
    except InvalidMatter as exc:
        raise CliError(str(exc)) from None
    contents = matter.describe()
    if matter.matter_id in {m.matter_id for m in directory.matters()}:
        raise CliError(f"matter {matter.matter_id} already exists")
    audit.ahead("matter-add", contents=contents)(matter.matter_id)
    directory.add_matter(matter)
    audit.outcome("matter-add", matter.matter_id, contents=contents)
    print(f"matter\t{matter.matter_id}\t{contents or '(status only)'}")
    return 0
