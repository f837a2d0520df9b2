"""The CLI's duties for verification requests: the working-day calendar (`calendar
load|list`) and a seal's suspension for misuse (`seal suspend|resume`), each audited
as provisioning is (its intent before the change)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from sealgate.gateway.casework import load_calendar
from sealgate.gateway.cli_audit import CliError, audit_ahead, audit_outcome
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
        seal.add_parser(action, parents=[home], help=what).add_argument("seal", metavar="SEAL")
    calendar = sub.add_parser(
        "calendar", parents=[home], help="the working-day calendar of request deadlines"
    ).add_subparsers(dest="action", required=True)
    load = calendar.add_parser(
        "load",
        parents=[home],
        help="load or correct a year (JSON: year, source, holidays, workdays)",
    )
    load.add_argument("file", type=Path)
    calendar.add_parser("list", parents=[home], help="the years known and their sources")


def calendar_or_suspension(args: argparse.Namespace, directory: Directory, trail: Path) -> int:
    if args.command == "calendar" and args.action == "list":
        for known, source in load_calendar(directory).years.items():
            print(f"{known}\t{source}")
        return 0
    if args.command == "calendar":
        try:
            year = parse_year(args.file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise CliError(f"{args.file}: {exc.strerror}") from None
        except CalendarError as exc:
            raise CliError(f"{args.file}: {exc}") from None
        audit_ahead(trail, "calendar-load", source=year.source)(str(year.year))
        directory.load_calendar_year(year.year, year.to_json())
        audit_outcome(trail, "calendar-load", str(year.year), source=year.source)
        print(f"calendar\t{year.year}\t{len(year.holidays)} holidays\t{len(year.workdays)} made up")
        return 0
    at = time.time() if args.action == "suspend" else None
    audit_ahead(trail, f"seal-{args.action}")(args.seal)
    directory.suspend_seal(args.seal, at)
    audit_outcome(trail, f"seal-{args.action}", args.seal)
    print(f"seal\t{args.seal}\t{'suspended' if at else 'in use'}")
    return 0
