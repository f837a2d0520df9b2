"""The CLI's duties for verification requests: the working-day calendar (`calendar
load|list`) and a seal's suspension for misuse (`seal suspend|resume`), each audited
as provisioning is (its intent before the change)."""

from __future__ import annotations

import argparse
from pathlib import Path

from sealgate.gateway.administration import suspend_seal
from sealgate.gateway.casework import load_calendar
from sealgate.gateway.cli_audit import CliAudit, CliError, add_operator
from sealgate.verify.directory import Directory
from sealgate.verify.workdays import CalendarError, parse_year


def add_request_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    seal: argparse._SubParsersAction[argparse.ArgumentParser],
    home: argparse.ArgumentParser,
) -> None:
    """`seal suspend|resume SEAL` and `calendar load FILE|list`."""
    for action, what in (
        ("suspend", "suspend a seal (misuse): nothing is sealed with it"),
        ("resume", "resume a suspended seal"),
    ):
        parser = seal.add_parser(action, parents=[home], help=what)
        parser.add_argument("seal", metavar="SEAL")
        add_operator(parser)
    calendar = sub.add_parser(
        "calendar", parents=[home], help="the working-day calendar of request deadlines"
    ).add_subparsers(dest="action", required=True)
    load = calendar.add_parser(
        "load",
        parents=[home],
        help="load or correct a year (JSON: year, source, holidays, workdays)",
    )
    load.add_argument("file", type=Path)
    add_operator(load)
    calendar.add_parser("list", parents=[home], help="the years known and their sources")


def list_calendar(directory: Directory) -> int:
    for known, source in load_calendar(directory).years.items():
        print(f"{known}\t{source}")
    return 0


def calendar_or_suspension(args: argparse.Namespace, directory: Directory, audit: CliAudit) -> int:
    """`calendar load` or `seal suspend|resume`, audited by the operator named."""
    if args.command == "calendar":
        try:
            year = parse_year(args.file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise CliError(f"{args.file}: {exc.strerror}") from None
        except CalendarError as exc:
            raise CliError(f"{args.file}: {exc}") from None
        audit.ahead("calendar-load", source=year.source)(str(year.year))
        directory.load_calendar_year(year.year, year.to_json())
        audit.outcome("calendar-load", str(year.year), source=year.source)
        print(f"calendar\t{year.year}\t{len(year.holidays)} holidays\t{len(year.workdays)} made up")
        return 0
    suspend = args.action == "suspend"
    audit.make(suspend_seal(args.seal, suspend=suspend), directory)
    print(f"seal\t{args.seal}\t{'suspended' if suspend else 'in use'}")
    return 0
