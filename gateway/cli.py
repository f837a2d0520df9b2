"""The ``sealgate`` command line.

Errors are one line on stderr and a non-zero exit, never a traceback: 1 for a failed
check or operation, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from sealgate.crypto.certificates import certificate_validity
from sealgate.errors import Error
from sealgate.gateway import cli_qr
from sealgate.gateway.cli_audit import CliAudit, CliError, add_operator
from sealgate.gateway.cli_matters import add_matter_commands, list_matters, matter_command
from sealgate.gateway.cli_provision import add_client_commands, provision
from sealgate.gateway.cli_requests import (
    add_request_commands,
    calendar_or_suspension,
    list_calendar,
)
from sealgate.gateway.cli_seals import (
    add_revocation_commands,
    add_root_options,
    add_root_pin,
    crl_revocation,
    key_events,
    root_pin,
    run_revocation_command,
)
from sealgate.gateway.cli_trail import add_audit_commands, audit_command
from sealgate.gateway.cli_verify import add_verify_file, verify_file
from sealgate.gateway.config_file import load_settings
from sealgate.gateway.home import resolve_home, tighten_home
from sealgate.gateway.provision import Provisioner, init_home
from sealgate.gateway.server import serve
from sealgate.hsm.keystore import KeyAlgorithm
from sealgate.verify.directory import SealKind


def _parser() -> argparse.ArgumentParser:
    home_help = "the sealgate home (default: $SEALGATE_HOME or ./.sealgate)"
    # --home is accepted before or after the command; SUPPRESS keeps a subcommand's
    # absent flag from overwriting one given before it.
    home = argparse.ArgumentParser(add_help=False)
    home.add_argument("--home", default=argparse.SUPPRESS, help=home_help)
    parser = argparse.ArgumentParser(
        prog="sealgate", description="Signing and verification gateway of a certificate-free city."
    )
    parser.add_argument("--home", default=None, help=home_help)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    init = sub.add_parser("init", parents=[home], help="create a home: token, root CA, config")
    init.add_argument(
        "--backend",
        choices=("pkcs11", "soft"),
        default="pkcs11",
        help="where keys live (soft: files, for development only)",
    )
    init.add_argument(
        "--demo",
        action="store_true",
        help="also create a demo office, its seals and one client of each role",
    )
    init.add_argument("--region", default="430900", help="6-digit region code of this city")
    init.add_argument("--city", default="益阳市", help="the city's name, for the root CA")
    init.add_argument(
        "--pkcs11-module",
        help="PKCS#11 library of a real HSM (default: a "
        "SoftHSM2 token inside the home); its PIN comes from SEALGATE_PKCS11_PIN",
    )
    init.add_argument("--token-label", default="sealgate")
    add_root_options(init)
    init.add_argument(
        "--database-url",
        help="where the registry and directory live (default: $SEALGATE_DATABASE_URL, else "
        "the SQLite file in the home); postgresql://HOST/DB at city scale, kept in the "
        "config file, so without a password (use PGPASSWORD or ~/.pgpass)",
    )

    db = sub.add_parser("db", parents=[home], help="the registry's database").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    migrate = db.add_parser(
        "migrate", parents=[home], help="apply the schema migrations the database lacks"
    )
    migrate.add_argument("--database-url", help="overrides SEALGATE_DATABASE_URL")

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
    add_operator(create)
    add_root_pin(create)
    seal.add_parser("list", parents=[home], help="list seals and their key versions")
    rotate = seal.add_parser("rotate", parents=[home], help="give a seal a new key")
    rotate.add_argument("seal", metavar="SEAL")
    rotate.add_argument(
        "--algorithm", default=KeyAlgorithm.EC_P256.value, choices=[a.value for a in KeyAlgorithm]
    )
    add_operator(rotate)
    add_revocation_commands(sub, seal, rotate, home)

    add_request_commands(sub, seal, home)
    add_client_commands(sub, home)
    add_matter_commands(sub, home)

    serve = sub.add_parser("serve", parents=[home], help="run the HTTP gateway")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--database-url", help="overrides SEALGATE_DATABASE_URL")
    serve.add_argument("--redis-url", help="overrides SEALGATE_REDIS_URL")

    add_audit_commands(sub, home)

    bench = sub.add_parser("bench", help="measure capacity (bench/ in the repository)")
    bench_sub = bench.add_subparsers(dest="action", required=True, metavar="ACTION")
    capacity = bench_sub.add_parser(
        "capacity",
        help="floors and the gateway in one run on this machine: ratios, machines needed, "
        "a Markdown report with plots",
    )
    capacity.add_argument(
        "--out",
        type=Path,
        default=Path("capacity-report"),
        help="report and work directory (its home and population are reused by the next run)",
    )
    capacity.add_argument("--population", type=int, default=1_000_000, help="proofs to seed")
    capacity.add_argument(
        "--seconds", type=float, default=3.0, help="each measured window's length"
    )
    capacity.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="gateway windows per figure, each between two windows of its floor",
    )
    capacity.add_argument("--zipf", type=float, default=1.0, help="popularity exponent")
    capacity.add_argument("--connections", type=int, default=64, help="wrk connections")
    capacity.add_argument("--batch", type=int, default=100, help="proofs per sealing batch")
    capacity.add_argument(
        "--locust", type=int, default=20, metavar="SECONDS", help="the locust mix (0: skip)"
    )
    capacity.add_argument(
        "--database-url", help="registry for the harness's home (default: SQLite in it)"
    )
    capacity.add_argument(
        "--requests",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="the automated 30-minute tier: requests created, answered, sealed (0: skip)",
    )
    capacity.add_argument(
        "--peers",
        action="store_true",
        help="also measure the peers side by side (FastAPI dict and Redis verifiers, pyHanko)",
    )
    target = capacity.add_argument_group(
        "a running deployment (--target): measured from outside, read-only unless told"
    )
    target.add_argument("--target", metavar="URL", help="the gateway (or its balancer) to measure")
    target.add_argument(
        "--token-file", type=Path, help="a verifier's token (not on the command line: ps shows it)"
    )
    target.add_argument("--purpose", default="demo", help="a purpose the verifier is granted")
    target.add_argument("--codes", type=Path, help="codes registered on the target, one a line")
    target.add_argument(
        "--allow-sealing", action="store_true", help="also measure sealing (its proofs stay)"
    )
    target.add_argument("--seal-token-file", type=Path, help="a signer's token")
    target.add_argument("--seal", help="the seal to seal with")
    capacity.add_argument(
        "--timestamps",
        action="store_true",
        help="also seal with a development TSA's timestamps (CAdES-B-T) against without, "
        "alternating: what trusted time costs a seal",
    )

    tsa = sub.add_parser(
        "tsa", help="a development RFC 3161 time-stamping authority"
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    tsa_serve = tsa.add_parser(
        "serve",
        help="serve the TSA of --home (default ./.sealgate-tsa); its token, key and "
        "certificates are made there on first start",
    )
    tsa_serve.add_argument("--home", default=None, help="the TSA's own directory")
    tsa_serve.add_argument("--host", default="127.0.0.1")
    tsa_serve.add_argument("--port", type=int, default=8318)

    add_verify_file(sub, home)
    trust = sub.add_parser(
        "trust", parents=[home], help="the root-signed trust document"
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    publish = trust.add_parser(
        "publish",
        parents=[home],
        help="sign the directory's roots, seal keys and gateway keys with the root as the next"
        " version",
    )
    add_operator(publish)
    add_root_pin(publish)
    cli_qr.add_parser(sub, home)
    gateway_keys = sub.add_parser(
        "gateway-keys",
        parents=[home],
        help="make the gateway's QR, status-list and consent keys a home lacks, and publish"
        " them in the next trust document",
    )
    add_operator(gateway_keys)
    add_root_pin(gateway_keys)
    return parser


def _run(args: argparse.Namespace) -> int:
    home = resolve_home(args.home)
    if args.command == "init":
        pin = None
        if args.root_pin_file is not None or not args.demo:
            pin = root_pin(args, backend=args.backend, confirm=True)
        _, credentials = init_home(
            home,
            backend=args.backend,
            demo=args.demo,
            region=args.region,
            city=args.city,
            pkcs11_module=args.pkcs11_module,
            token_label=args.token_label,
            root_token_label=args.root_token_label,
            root_pin=pin,
            database_url=args.database_url,
            crl_url=args.crl_url,
        )
        if args.backend == "soft":
            print(
                "warning: soft keystore: private keys are in files, for development only",
                file=sys.stderr,
            )
        print(f"initialised {home}", file=sys.stderr)
        if credentials is not None:
            print("\n".join(credentials.lines()))
        return 0

    if args.command == "bench":
        return _bench_capacity(args)
    if args.command == "tsa":
        from sealgate.tsa.server import serve_tsa

        if not 1 <= args.port <= 65535:
            raise CliError("--port must be between 1 and 65535")
        serve_tsa(Path(args.home or ".sealgate-tsa"), args.host, args.port)
        return 0
    if args.command == "verify-file":
        return verify_file(args, home, revocation=crl_revocation(args, home))
    if args.command == "verify-qr":
        return cli_qr.run(args, home)
    if args.command == "audit":
        return audit_command(args, home)

    settings = load_settings(
        home,
        database_url=getattr(args, "database_url", None),
        redis_url=getattr(args, "redis_url", None),
    )
    if args.command == "db":
        version = settings.migrate_database()
        print(f"{settings.database_label}\tschema version {version}")
        return 0
    if args.command == "serve":
        if args.workers < 1:
            raise CliError("--workers must be at least 1")
        most = MAX_WORKERS_PER_CPU * (os.cpu_count() or 1)
        if args.workers > most:
            raise CliError(f"--workers is at most {most} here ({MAX_WORKERS_PER_CPU} per CPU)")
        if not 1 <= args.port <= 65535:
            raise CliError("--port must be between 1 and 65535")
        serve(settings, args.host, args.port, args.workers)
        return 0

    if args.command == "crl" or (args.command == "seal" and args.action in ("revoke", "purge")):
        return run_revocation_command(args, settings)
    needs_root = args.command in ("trust", "gateway-keys") or (
        args.command == "seal" and args.action in ("create", "rotate")
    )
    pin = root_pin(args, backend=settings.backend) if needs_root else None
    provisioner = Provisioner(settings, root_pin=pin)
    directory = provisioner.directory()
    try:
        if args.command == "seal" and args.action == "list":
            for seal in directory.seals():
                for key in seal.keys:
                    print(
                        "\t".join(
                            (
                                seal.seal_id,
                                seal.kind.value,
                                seal.unit_name,
                                seal.unit_code,
                                f"v{key.version}",
                                key.state.value,
                                f"until {certificate_validity(key.certificate)[1]:%Y-%m-%d}",
                                *key_events(key),
                            )
                        )
                    )
            return 0
        if args.command == "client" and args.action == "list":
            for c in directory.clients():
                grants = sorted(c.seals) or sorted(c.purposes) or ([c.office] if c.office else [])
                limit = c.lookup_limit
                own = [] if limit is None else [f"{limit.failures}/{limit.window_seconds:g}s"]
                print("\t".join((c.client_id, c.role.value, c.name, ",".join(grants), *own)))
            return 0
        if args.command == "calendar" and args.action == "list":
            return list_calendar(directory)
        if args.command == "matter" and args.action == "list":
            return list_matters(directory)
        audit = CliAudit(settings, args.operator)
        # The audit key signs each change's records before the command ends: the token
        # is opened first, so a change that could not be signed is not made.
        with provisioner.keystore() as keystore:
            try:
                action = getattr(args, "action", "")  # gateway-keys has none
                if args.command == "calendar" or action in ("suspend", "resume"):
                    return calendar_or_suspension(args, directory, audit)
                if args.command == "matter":
                    return matter_command(args, directory, audit)
                return provision(args, provisioner, directory, keystore, audit)
            finally:
                audit.checkpoint(keystore)
    finally:
        directory.close()


def _bench_capacity(args: argparse.Namespace) -> int:
    try:
        from sealgate.bench.capacity import Options, run_capacity
    except ImportError as exc:  # pragma: no cover - an install without bench/
        raise CliError(f"the capacity harness is not installed ({exc})") from None
    if args.target is not None:
        return _bench_target(args)
    if (
        args.population < 1
        or args.seconds <= 0
        or args.rounds < 1
        or args.batch < 1
        or args.connections < 1
    ):
        raise CliError(
            "--population, --seconds, --rounds, --batch and --connections must be positive"
        )
    run_capacity(
        Options(
            out=args.out.resolve(),
            population=args.population,
            seconds=args.seconds,
            rounds=args.rounds,
            zipf=args.zipf,
            connections=args.connections,
            batch=min(args.batch, 1000),
            locust_seconds=max(0, args.locust),
            database_url=args.database_url,
            requests_seconds=max(0.0, args.requests),
            peers=args.peers,
            timestamps=args.timestamps,
        )
    )
    return 0


def _read_token(path: Path | None, flag: str) -> str:
    if path is None:
        raise CliError(f"{flag} FILE is required with --target")
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    if not token:
        raise CliError(f"{path} is empty")
    return token


def _bench_target(args: argparse.Namespace) -> int:
    from sealgate.bench.target import TargetError, TargetOptions, run_target

    if args.seconds <= 0 or args.rounds < 1 or args.connections < 1 or args.batch < 1:
        raise CliError("--seconds, --rounds, --connections and --batch must be positive")
    try:
        run_target(
            TargetOptions(
                url=args.target.rstrip("/"),
                out=args.out.resolve(),
                token=_read_token(args.token_file, "--token-file"),
                purpose=args.purpose,
                codes_file=args.codes,
                seconds=args.seconds,
                rounds=args.rounds,
                connections=args.connections,
                zipf=args.zipf,
                allow_sealing=args.allow_sealing,
                seal_token=(
                    _read_token(args.seal_token_file, "--seal-token-file")
                    if args.allow_sealing
                    else None
                ),
                seal_id=args.seal,
                batch=min(args.batch, 1000),
            )
        )
    except TargetError as exc:
        raise CliError(str(exc)) from None
    return 0


#: More workers than this only contend for the cores (each also has a signing process).
MAX_WORKERS_PER_CPU = 4


def _terminated(signum: int, frame: object) -> None:
    # An exception rather than the default death, so that a step under way undoes itself
    # on the way out (a half-made seal key is destroyed again).
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Everything sealgate writes in a home (registry.db, audit.db, config.toml, the head,
    # journals, secrets) is its owner's alone; the home's older files are tightened too.
    umask = os.umask(0o077)
    if args.command != "init":
        try:
            tighten_home(resolve_home(args.home))
        except BaseException:
            os.umask(umask)
            raise
    if args.command not in ("serve", "tsa"):  # these stop gracefully on their own
        signal.signal(signal.SIGTERM, _terminated)
    try:
        return _run(args)
    except KeyboardInterrupt:
        return 130
    except Error as exc:  # every failure sealgate names (sealgate.errors draws the tree)
        print(f"sealgate: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"sealgate: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    finally:
        os.umask(umask)  # as it was, for a caller that runs the command in its process


if __name__ == "__main__":
    sys.exit(main())
